/* fuse_ll.h - the libfuse3 low-level adapter: fuse_req -> fs_* ->
 * fuse_reply_*. Owns: the operation table and the one errno mapping.
 * Calls: core/fs, common. Makes no decisions of its own.
 */
#ifndef MFS_FUSE_FUSE_LL_H
#define MFS_FUSE_FUSE_LL_H

#include "common/err.h"
#include "core/fs.h"

struct fuse_args;

struct fuse_mount_opts {
	int foreground;
	int single_thread;
	unsigned max_idle_threads;
	long op_timeout_ms;	/* time limit of one request that talks to a
				 * server (lookup, read, ...), 0 = none */
	/* called once mounted and daemonised, before serving: start threads
	 * here (they would not survive the fork) */
	void (*started)(void *ud);
	/* called once mounted, before started: inval(ctx, ino) drops the
	 * kernel's cached attributes and pages of ino */
	void (*set_inval)(void *ud, void (*inval)(void *ctx, uint64_t ino),
			  void *ctx);
	void *ud;
};

/* Mount fs at mountpoint with the FUSE options in args (allow_other, ...),
 * daemonise unless foreground, and serve until unmounted or signalled.
 * Returns 0 on a clean unmount. */
int fuse_ll_run(struct fs *fs, struct fuse_args *args, const char *mountpoint,
		const struct fuse_mount_opts *o);

/* The errno for an error code (the only place this conversion happens). */
int fuse_ll_errno(enum mfs_err rc);

#endif
