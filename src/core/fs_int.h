/* fs_int.h - what fs.c, fs_file.c and fs_ns.c share: struct fs, open-file
 * state and helpers. Private to core/fs; nothing outside includes it.
 *
 * fs->lock guards listing[] (directories being listed) and the wfiles
 * list: the per-inode staging state of files open for writing. A wfile's
 * fd is used without the lock (pwrite/pread are thread-safe); its other
 * fields are guarded by fs->lock.
 */
#ifndef MFS_CORE_FS_INT_H
#define MFS_CORE_FS_INT_H

#include <pthread.h>

#include "core/fs.h"
#include "core/upq.h"

#define MAX_LISTING 64

/* A file open for writing: one staging file per inode, shared by every
 * handle that writes it. */
struct wfile {
	struct wfile *next;	/* guarded */
	uint64_t ino;
	int fd;			/* staging file, read-write */
	char *path;
	int refs;		/* guarded: handles using it */
	int dirty;		/* guarded: content differs from the server */
	int committed;		/* guarded: the staging file was handed to the
				 * upload queue; a later write reclaims it */
	int unlinked;		/* guarded: discard at the last release */
	enum mfs_err failed;	/* guarded: a write failed (ENOSPC...): never
				 * upload a partial file; discarded */
	struct upq_meta meta;	/* guarded: attributes set while open */
	unsigned meta_set;	/* guarded: enum upq_meta_bits */
	/* Content is fetched from the server at the first read or write,
	 * not at open (touch, chmod through an fd need none of it). */
	pthread_mutex_t load_lock;
	int loaded;		/* guarded by load_lock; set under fs->lock */
	unsigned long gen;	/* guarded by fs->lock: changes when fd is
				 * another file or its content is loaded
				 * (readers follow, fs_read) */
	/* The hashes of the staged bytes while they are written strictly
	 * in order from offset 0 (a new or emptied file); any other change
	 * drops them (NULL) and the upload hashes the file itself.
	 * hash_lock also orders a write (its reclaim and pwrite) against a
	 * commit, so a queued file is never written under its digest.
	 * Lock order: load_lock, hash_lock, fs->lock. */
	pthread_mutex_t hash_lock;
	struct upq_hasher *hash;	/* guarded by hash_lock */
	int rid;		/* what to fetch: */
	char *key;
	char etag[80];
	uint64_t size;
};

#define OPENED_SLOTS 1024
#define NEG_SLOTS 4096

struct fs {
	struct fs_config cfg;	/* read-only after fs_new */
	char *mount_id;
	struct mcache *mc;
	int64_t start_ns;	/* mtime of directories with none */

	pthread_mutex_t lock;
	pthread_cond_t listed;
	uint64_t listing[MAX_LISTING];	/* guarded by lock */
	int nlisting;			/* guarded by lock */
	struct wfile *wfiles;		/* guarded by lock */
	unsigned long wgen;		/* guarded by lock: last wfile gen */
	struct fs_file *files;		/* guarded by lock: open handles */
	struct fs_dir *dirs;		/* guarded by lock: open directories */
	/* The ETag each inode was last opened for reading at, so a reopen
	 * of the same version keeps the kernel's pages: a small table,
	 * slot = ino % OPENED_SLOTS, a collision only costs a re-read. */
	struct { uint64_t ino; char etag[80]; } opened[OPENED_SLOTS];
					/* guarded by lock */
	/* Names a store check found absent lately (fs_fresh.c): slot =
	 * hash % NEG_SLOTS, a collision only costs one more check. */
	struct { uint64_t hash; int64_t at; } negs[NEG_SLOTS];
					/* guarded by lock; at in seconds */
	void (*inval)(void *ctx, uint64_t ino);	/* set once, at mount */
	void *inval_ctx;
	/* set once, at mount (fs_set_notify) */
	void (*inval_attr)(void *ctx, uint64_t ino);
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
	void *notify_ctx;
};

struct fs_file {
	struct fs_file *next, *prev;	/* guarded by fs->lock */
	struct fs *fs;
	uint64_t ino;
	struct prefetch *pf;	/* reading an object on the server, or */
	int rfd;		/* reading staged content (-1 = none), the
				 * file of a writer's wfile of gen rgen, or */
	unsigned long rgen;	/* atomic; changed under pf_lock, as rfd */
	struct wfile *w;	/* writing */
	int keep_cache;		/* set by fs_open, see fs_keep_cache */
	int sniff;		/* 1: type the first bytes read (the store
				 * says octet-stream or nothing) */
	char etag[80];		/* of the object read (for the sniffed
				 * type's record) */
	int served;		/* atomic: bytes of the server's version
				 * were answered, it may not change under
				 * it */
	/* pf is used under a read lock, replaced under the write lock
	 * (a version changed on the server before anything was read) */
	pthread_rwlock_t pf_lock;
	unsigned pf_gen;	/* guarded by pf_lock: replacements so far */
	char vetag[80];		/* guarded by fs->lock: the version of the
				 * object it reads from the store ("": staged
				 * content or a write) */
	int direct;		/* set before it is linked: another handle
				 * reads another version, so this one reads
				 * past the kernel's page cache (fs_direct_io) */
	int orphan;		/* guarded by fs->lock: unlinked while open */
	struct fs_attr oattr;	/* guarded by fs->lock: its attributes then */
};

int64_t fsi_now_ns(void);
int64_t fsi_now_s(void);	/* the same clock, in seconds */
/* fs_fresh.c. name is not in d's listing: when the listing is older than
 * negative_ttl and the name (not a hidden one) was not checked within it,
 * ask the store (one HEAD); an object found there joins the listing and *out gets it.
 * MFS_ENOTFOUND otherwise (also when the store cannot be reached: the
 * listing's answer holds). */
enum mfs_err fsi_neg_recheck(struct fs *fs, const struct mc_node *d,
			     const char *name, struct mc_node *out,
			     struct errbuf *eb);
/* The mount learned of ino on the store (an object of another writer,
 * found by name or by a listing): the folders above hold it, so a marker
 * the cache knows is stored for them goes (one DELETE each, none when no
 * marker is known), as when an upload lands below (upq_clear_markers): no
 * folder that holds something keeps a marker, whoever filled it and
 * however fast. Nothing on a read-only remote. */
void fsi_filled(struct fs *fs, uint64_t ino);
/* The mount itself removed parent/name (unlink, rename): its absence is
 * known for negative_ttl without asking (an upload of it may still be
 * landing before its delete). */
void fsi_neg_note(struct fs *fs, uint64_t parent, const char *name);
/* user.mediafs.refresh of ino: a directory lists again at its next use; a
 * file is asked of the store now (one HEAD): a new version's size and ETag
 * replace the cached ones, a deleted object leaves the cache and the
 * kernel. A file with local changes is left alone. */
enum mfs_err fsi_refresh(struct fs *fs, uint64_t ino);
struct fs_remote *fsi_remote(struct fs *fs, int rid);
/* fs_resume.c: the remote called name (a journal row's), or NULL. */
struct fs_remote *fsi_remote_named(struct fs *fs, const char *name);
int fsi_multi_root(const struct fs *fs, uint64_t ino);
/* Attributes of n, with the live size/mtime of a file being written. */
void fsi_attr(struct fs *fs, const struct mc_node *n, struct fs_attr *a);
/* Make d's listing fresh (see fs.h); d is refreshed from the cache. */
enum mfs_err fsi_listed(struct fs *fs, struct mc_node *d, struct errbuf *eb);
/* Directory ino, MFS_ENOTDIR if it is a file. */
enum mfs_err fsi_get_dir(struct fs *fs, uint64_t ino, struct mc_node *d);
/* 1 when a content type says nothing of the bytes ("", octet-stream). */
int fsi_vague_type(const char *type);
/* HEAD n once to learn its content type and user metadata. */
enum mfs_err fsi_full(struct fs *fs, struct mc_node *n, struct errbuf *eb);
/* Child name of directory parent, its listing made fresh first. */
enum mfs_err fsi_child(struct fs *fs, uint64_t parent, const char *name,
		       struct mc_node *out, struct errbuf *eb);
/* The directory a remote's keys start from. */
enum mfs_err fsi_remote_top(struct fs *fs, struct fs_remote *r,
			    struct mc_node *out, struct errbuf *eb);
/* fs_moves.c: settle one such move now (a rename that failed half way);
 * MFS_OK when the store matches what the mount shows. */
enum mfs_err fsi_settle_move(struct fs *fs, struct fs_remote *rem,
			     const char *src, const char *dst, int dir,
			     struct errbuf *eb);
/* Caller holds fs->lock. */
struct wfile *fsi_wfile(struct fs *fs, uint64_t ino);
/* May name (a new entry of directory key pkey of r) be created? Checks the
 * generic rules, then the provider's (backend check_key); a refusal is
 * logged with its rule and answered EINVAL (ENAMETOOLONG for length)
 * before any request. *key gets the new entry's full key. */
enum mfs_err fsi_new_key(struct fs_remote *r, const char *pkey,
			 const char *name, int is_dir, char **key,
			 struct errbuf *eb);
/* key (a directory's when is_dir) as r's store holds it: MFS_OK, else
 * ENAMETOOLONG (longer than it holds) or EINVAL, logged, before any
 * request. */
enum mfs_err fsi_check_key(struct fs_remote *r, const char *key, int is_dir,
			   struct errbuf *eb);
/* n (a file) is being unlinked: open handles keep it usable until the
 * last close (POSIX) — a writer's content is fetched now if it was not yet
 * (the server's copy is about to go), it is marked for discarding at the
 * last release, and every handle keeps n's attributes for fsi_orphan_attr.
 * Returns the writer's upq_meta.tried_jid (an upload it took back was
 * tried: what that left may be on the store), 0 if none. Caller does not
 * hold fs->lock. */
int64_t fsi_orphan(struct fs *fs, const struct mc_node *n);
/* Attributes of ino if it is an unlinked file still open, else
 * MFS_ENOTFOUND. */
enum mfs_err fsi_orphan_attr(struct fs *fs, uint64_t ino, struct fs_attr *a);
/* Write access to ino's remote, or MFS_EROFS. */
enum mfs_err fsi_writable(struct fs *fs, const struct mc_node *n,
			  struct fs_remote **r);

#endif
