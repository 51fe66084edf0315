/* fuse_ll.c - libfuse3 low-level adapter. Each handler asks core/fs and
 * answers; no state of its own beyond the fs pointer in the session's
 * userdata. Handlers run on libfuse's worker threads. Calls: core/fs,
 * common.
 */
#define FUSE_USE_VERSION 34
#include "fuse/fuse_ll.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "common/deadline.h"
#include "common/log.h"

static const int errnos[MFS_ERR_COUNT] = {
	[MFS_OK] = 0,
	[MFS_ENOTFOUND] = ENOENT,
	[MFS_EEXIST] = EEXIST,
	[MFS_EACCES] = EACCES,
	[MFS_ETRANSIENT] = EAGAIN,
	[MFS_ECONFLICT] = ESTALE,
	[MFS_EUNSUPP] = EOPNOTSUPP,
	[MFS_EINVAL] = EINVAL,
	[MFS_EPROTO] = EIO,
	[MFS_ENOMEM] = ENOMEM,
	[MFS_EIO] = EIO,
	[MFS_ENOTDIR] = ENOTDIR,
	[MFS_EISDIR] = EISDIR,
	[MFS_ENOTEMPTY] = ENOTEMPTY,
	[MFS_ENOSPC] = ENOSPC,
	[MFS_EROFS] = EROFS,
	[MFS_ENAMETOOLONG] = ENAMETOOLONG,
	[MFS_ERANGE] = ERANGE,
	[MFS_ENODATA] = ENODATA,
	[MFS_ECONFIG] = EIO,
	[MFS_EXDEV] = EXDEV,
	[MFS_EFBIG] = EFBIG,
	[MFS_ETIMEDOUT] = ETIMEDOUT,
	[MFS_EINTR] = EINTR,
};

int fuse_ll_errno(enum mfs_err rc)
{
	if ((unsigned)rc >= MFS_ERR_COUNT || !errnos[rc])
		return EIO;
	return errnos[rc];
}

/* In a request whose entry notices go to the notifier (struct later). */
static __thread int deferring;

/* The session's userdata. */
struct ll_ctx {
	struct fs *fs;
	long op_timeout_ms;	/* one request's time limit, 0 = none */
};

static struct fs *fs_of(fuse_req_t req)
{
	return ((struct ll_ctx *)fuse_req_userdata(req))->fs;
}

/* Start the request's time limit (-o op_timeout) on this thread. */
static void op_start(fuse_req_t req)
{
	deadline_start(((struct ll_ctx *)fuse_req_userdata(req))->op_timeout_ms);
}

/* fs_of for the first call of a handler that may talk to a server: starts
 * the request's time limit (-o op_timeout) on this thread. */
static struct fs *op_fs(fuse_req_t req)
{
	op_start(req);
	return fs_of(req);
}

/* A caller that gives up (ls killed, ^C): libfuse calls this from the
 * thread that read the kernel's INTERRUPT, with the request's lock held;
 * flag is the handler's (on its stack, see op_watch). */
static void on_interrupt(fuse_req_t req, void *flag)
{
	(void)req;
	atomic_store((atomic_int *)flag, 1);
}

/* op_fs for a handler whose caller may give up meanwhile (a lookup or an
 * opendir that pages a long listing): also hands the request's interrupt
 * to the operation (common/deadline.h), which stops talking to the server
 * and fails with MFS_EINTR. flag lives on the handler's stack; op_unwatch
 * must run before the reply. */
static struct fs *op_watch(fuse_req_t req, atomic_int *flag)
{
	op_start(req);
	atomic_init(flag, 0);
	deadline_watch(flag);
	fuse_req_interrupt_func(req, on_interrupt, flag);
	return fs_of(req);
}

/* After op_unwatch returns, on_interrupt is not running and never runs
 * again for req (libfuse takes the request's lock for both). */
static void op_unwatch(fuse_req_t req)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	deadline_watch(NULL);
}

/* Errors a user did not cause are logged with their detail. */
static void reply_err(fuse_req_t req, enum mfs_err rc,
		      const struct errbuf *eb, const char *op)
{
	if (rc == MFS_EINTR)
		log_info("%s: %s%s%s", op, mfs_strerror(rc),
			 eb && eb->msg[0] ? ": " : "",
			 eb && eb->msg[0] ? eb->msg : "");
	else if (rc != MFS_ENOTFOUND && rc != MFS_ENODATA &&
		 rc != MFS_ERANGE && rc != MFS_ENOTDIR && rc != MFS_EISDIR &&
		 rc != MFS_ENAMETOOLONG)
		log_warn("%s: %s%s%s", op, mfs_strerror(rc),
			 eb && eb->msg[0] ? ": " : "",
			 eb && eb->msg[0] ? eb->msg : "");
	fuse_reply_err(req, fuse_ll_errno(rc));
}

/* Bytes per WRITE request (max_write), and st_blksize. */
#define IO_SIZE (1024 * 1024)

static void to_stat(const struct fs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	/* the preferred I/O size: cp and cat size their buffers by it
	 * (coreutils: at least 128 KiB, else st_blksize), so a cp into the
	 * mount writes 1 MiB at a time, up to max_write, not 128 KiB: 8
	 * times fewer WRITE requests, and as many fewer getxattr
	 * (security.capability) the kernel sends before each write */
	st->st_blksize = IO_SIZE;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static void to_entry(struct fs *fs, const struct fs_attr *a,
		     struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	/* nodeid 0 in readdirplus: a name without attributes (the kernel
	 * looks it up when asked); the dirent keeps st_ino */
	e->ino = a->unknown ? 0 : a->ino;
	e->generation = 1;
	to_stat(a, &e->attr);
	e->attr_timeout = fs_ttl(fs);
	e->entry_timeout = fs_ttl(fs);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* always plus: ls -l and find then need no per-entry lookup */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* O_TRUNC arrives with open, not as a separate truncate that would
	 * queue an upload of an empty file first */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_readahead = 1024 * 1024;
	/* 1 MiB writes (the kernel's max_pages allows it): 8 times fewer
	 * round trips than the default 128 KiB for a cp of large files */
	conn->max_write = IO_SIZE;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct errbuf eb = { 0 };
	struct fs_attr a;
	atomic_int intr;
	enum mfs_err rc = fs_lookup(op_watch(req, &intr), parent, name, &a,
				    &eb);

	op_unwatch(req);
	if (rc == MFS_ENOTFOUND) {
		/* a negative entry the kernel may keep for negative_ttl */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_negative_ttl(fs_of(req));
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		reply_err(req, rc, &eb, "lookup");
		return;
	}
	to_entry(fs_of(req), &a, &e);
	fuse_reply_entry(req, &e);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	struct fs_attr a;
	struct stat st;
	atomic_int intr;
	enum mfs_err rc = fs_getattr(op_watch(req, &intr), ino, &a, &eb);

	op_unwatch(req);
	(void)fi;
	if (rc) {
		reply_err(req, rc, &eb, "getattr");
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, fs_ttl(fs_of(req)));
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	struct fs_dir *d;
	atomic_int intr;
	enum mfs_err rc = fs_opendir(op_watch(req, &intr), ino, &d, &eb);

	op_unwatch(req);
	if (rc) {
		reply_err(req, rc, &eb, "opendir");
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	struct fs *fs = fs_of(req);
	char *buf = malloc(size), *p = buf;
	size_t left = size, idx;
	const char *name;
	struct fs_attr a;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (idx = (size_t)off; !fs_readdir(d, idx, &name, &a); idx++) {
		size_t n;

		if (plus) {
			struct fuse_entry_param e;

			to_entry(fs, &a, &e);
			n = fuse_add_direntry_plus(req, p, left, name, &e,
						   (off_t)idx + 1);
		} else {
			struct stat st;

			to_stat(&a, &st);
			n = fuse_add_direntry(req, p, left, name, &st,
					      (off_t)idx + 1);
		}
		if (n > left)
			break;
		p += n;
		left -= n;
	}
	fuse_reply_buf(req, buf, size - left);
	free(buf);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 0);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 1);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	fs_releasedir((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	struct fs_file *f;
	enum mfs_err rc = fs_open(op_fs(req), ino, fi->flags, &f, &eb);

	if (rc) {
		reply_err(req, rc, &eb, "open");
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = fs_keep_cache(f);
	fi->direct_io = fs_direct_io(f);
	fuse_reply_open(req, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	struct errbuf eb = { 0 };
	char *buf = malloc(size ? size : 1);
	size_t got = 0;
	enum mfs_err rc;

	op_start(req);
	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	deferring = 1;		/* (a file gone on the server: its notice) */
	rc = fs_read(f, (uint64_t)off, size, buf, &got, &eb);
	deferring = 0;
	if (rc)
		reply_err(req, rc, &eb, "read");
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	deadline_clear();
	(void)ino;
	fs_release((struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void reply_sized(fuse_req_t req, enum mfs_err rc, const char *buf,
			size_t size, size_t len, const struct errbuf *eb,
			const char *op)
{
	if (rc)
		reply_err(req, rc, eb, op);
	else if (!size)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct errbuf eb = { 0 };
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	enum mfs_err rc;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_getxattr(op_fs(req), ino, name, buf, size, &len, &eb);
	reply_sized(req, rc, buf, size, len, &eb, "getxattr");
	free(buf);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	enum mfs_err rc;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_listxattr(op_fs(req), ino, buf, size, &len);
	reply_sized(req, rc, buf, size, len, NULL, "listxattr");
	free(buf);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	/* Object stores have no fixed size: report a large, mostly free
	 * filesystem so df and copy tools do not refuse to write. */
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = 1ULL << 40;
	sv.f_bfree = 1ULL << 40;
	sv.f_bavail = 1ULL << 40;
	sv.f_files = 1ULL << 32;
	sv.f_ffree = 1ULL << 32;
	sv.f_favail = 1ULL << 32;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* Modifying operations that mediafs does not do at all. */
static void refuse(fuse_req_t req, fuse_ino_t ino)
{
	enum mfs_err rc = fs_check_writable(fs_of(req), ino);

	fuse_reply_err(req, rc ? fuse_ll_errno(rc) : EPERM);
}

/* Answer an operation that returns no data. */
static void reply_status(fuse_req_t req, enum mfs_err rc,
			 const struct errbuf *eb, const char *op)
{
	if (rc)
		reply_err(req, rc, eb, op);
	else
		fuse_reply_err(req, 0);
}

static void reply_entry_or_err(fuse_req_t req, enum mfs_err rc,
			       const struct fs_attr *a,
			       const struct errbuf *eb, const char *op)
{
	struct fuse_entry_param e;

	if (rc) {
		reply_err(req, rc, eb, op);
		return;
	}
	to_entry(fs_of(req), a, &e);
	fuse_reply_entry(req, &e);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct errbuf eb = { 0 };
	struct fs_file *f = NULL;
	struct fs_attr a;
	enum mfs_err rc;

	(void)rdev;
	if (!S_ISREG(mode)) {
		refuse(req, parent);
		return;
	}
	/* mknod(2) of a regular file: an empty file, like create + close */
	rc = fs_create(op_fs(req), parent, name, mode,
		       O_WRONLY | O_CREAT | O_EXCL, &a, &f, &eb);
	fs_release(f);
	reply_entry_or_err(req, rc, &a, &eb, "mknod");
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct errbuf eb = { 0 };
	struct fs_attr a;
	enum mfs_err rc = fs_mkdir(op_fs(req), parent, name, mode, &a, &eb);

	reply_entry_or_err(req, rc, &a, &eb, "mkdir");
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc = fs_unlink(op_fs(req), parent, name, &eb);

	reply_status(req, rc, &eb, "unlink");
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc = fs_rmdir(op_fs(req), parent, name, &eb);

	reply_status(req, rc, &eb, "rmdir");
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct errbuf eb = { 0 };
	unsigned f = (flags & RENAME_NOREPLACE ? FS_RENAME_NOREPLACE : 0) |
		     (flags & RENAME_EXCHANGE ? FS_RENAME_EXCHANGE : 0);
	enum mfs_err rc = fs_rename(op_fs(req), parent, name, newparent,
				    newname, f, &eb);

	reply_status(req, rc, &eb, "rename");
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs_setattr sa = { 0 };
	struct errbuf eb = { 0 };
	struct fs_attr a;
	struct stat st;
	enum mfs_err rc;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.mask |= FS_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.mask |= FS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.mask |= FS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.mask |= FS_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa.mask |= FS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.mask |= FS_SET_MTIME;
		sa.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 +
			      attr->st_mtim.tv_nsec;
	}
	rc = fs_setattr(op_fs(req), ino, &sa, &a, &eb);
	if (rc) {
		reply_err(req, rc, &eb, "setattr");
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, fs_ttl(fs_of(req)));
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct errbuf eb = { 0 };
	struct fs_file *f;
	struct fs_attr a;
	enum mfs_err rc = fs_create(op_fs(req), parent, name, mode, fi->flags,
				    &a, &f, &eb);

	if (rc) {
		reply_err(req, rc, &eb, "create");
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	to_entry(fs_of(req), &a, &e);
	if (fuse_reply_create(req, &e, fi))
		fs_release(f);	/* interrupted */
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	size_t done = 0;
	enum mfs_err rc;

	op_start(req);
	rc = fs_write((struct fs_file *)(uintptr_t)fi->fh, (uint64_t)off, buf,
		      size, &done, &eb);
	(void)ino;
	if (rc)
		reply_err(req, rc, &eb, "write");
	else
		fuse_reply_write(req, done);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	deadline_clear();	/* may wait for an upload (sync_close) */
	rc = fs_flush((struct fs_file *)(uintptr_t)fi->fh, &eb);
	(void)ino;
	reply_status(req, rc, &eb, "close");
}

/* For a wait with no time limit (fsync): the caller's interrupt only.
 * A process killed in fsync cannot exit before the answer (the kernel
 * waits for it uninterruptibly once the request is sent), and one whose
 * other thread held the journal's lock when it died kept the lock: the
 * upload it waited for could never be recorded, a deadlock (seen in a
 * clean-clone make check: test_mediactl's mediactl copy killed with -9). */
static struct fs *op_watch_only(fuse_req_t req, atomic_int *flag)
{
	deadline_clear();
	atomic_init(flag, 0);
	deadline_watch(flag);
	fuse_req_interrupt_func(req, on_interrupt, flag);
	return fs_of(req);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	atomic_int intr;
	enum mfs_err rc;

	/* waits for the upload, however long, unless interrupted */
	op_watch_only(req, &intr);
	rc = fs_fsync((struct fs_file *)(uintptr_t)fi->fh, &eb);
	op_unwatch(req);
	(void)ino;
	(void)datasync;
	reply_status(req, rc, &eb, "fsync");
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct errbuf eb = { 0 };
	atomic_int intr;
	enum mfs_err rc;

	/* waits for uploads, however long, unless interrupted */
	rc = fs_fsyncdir(op_watch_only(req, &intr), ino, &eb);
	op_unwatch(req);
	(void)datasync;
	(void)fi;
	reply_status(req, rc, &eb, "fsyncdir");
}

/* Entry notices asked for inside a request (a setxattr's
 * user.mediafs.refresh, or a read, finding the file gone on the server)
 * are sent by a thread of their own. The kernel's entry invalidation takes
 * the folder's lock, and an unlink or rename of the same file holds that
 * lock while it waits for the file's lock (which the kernel holds for a
 * setxattr until it is answered) or for the answer to its own request
 * (which, with -s, only the thread sending the notice could give): sent
 * from the request's thread, they waited on each other for ever (libfuse:
 * never "in the execution path of a related filesystem operation"). The
 * notifier sends them in order, as soon as the folder is free. */
struct later {
	struct later *next;
	void *ctx;
	uint64_t parent;
	char name[];
};
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct later *head, *tail;	/* lock */
	int stop;			/* lock */
	int started;			/* set before the loop, then read */
	pthread_t th;
} ntf = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL,
	  0, 0, 0 };

/* Every notice goes through the session only while it lives: the upload
 * queue drains after the loop has ended (a hook's new size, a late
 * object's entry), and a notice then read the freed session and wrote to
 * whatever its descriptor number had become (a review). notify_live is
 * read-locked around each notice, and cleared, write-locked, before the
 * session goes. */
static pthread_rwlock_t notify_lock = PTHREAD_RWLOCK_INITIALIZER;
static int notify_live;		/* notify_lock */
static atomic_int notify_closing;	/* no new notice starts */

/* 1 with the read lock held when a notice may go (notify_end after it),
 * 0 when the session is going or gone. */
static int notify_begin(void)
{
	if (atomic_load(&notify_closing) ||
	    pthread_rwlock_rdlock(&notify_lock))
		return 0;
	if (notify_live)
		return 1;
	pthread_rwlock_unlock(&notify_lock);
	return 0;
}

static void notify_end(void)
{
	pthread_rwlock_unlock(&notify_lock);
}

static void send_entry(void *ctx, uint64_t parent, const char *name)
{
	int r;

	if (!notify_begin())
		return;
	r = fuse_lowlevel_notify_inval_entry(ctx, (fuse_ino_t)parent, name,
					     strlen(name));
	notify_end();
	if (r && r != -ENOENT)
		log_dbg(LOG_SUB_FUSE, "entry inval of %llu/%s: %s",
			(unsigned long long)parent, name, strerror(-r));
}

static void *notifier(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ntf.lock);
	for (;;) {
		struct later *l;

		while (!ntf.head && !ntf.stop)
			pthread_cond_wait(&ntf.cv, &ntf.lock);
		if (ntf.stop)
			break;
		l = ntf.head;
		ntf.head = l->next;
		if (!ntf.head)
			ntf.tail = NULL;
		pthread_mutex_unlock(&ntf.lock);
		send_entry(l->ctx, l->parent, l->name);
		free(l);
		pthread_mutex_lock(&ntf.lock);
	}
	pthread_mutex_unlock(&ntf.lock);
	return NULL;
}

/* No notice from now on; 0 when one is stuck in the kernel after 2 s (as
 * notifier_stop). */
static int notify_close(void)
{
	struct timespec ts;

	atomic_store(&notify_closing, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	if (pthread_rwlock_timedwrlock(&notify_lock, &ts)) {
		log_warn("a kernel notice is still waiting at unmount; the session ends with the process");
		return 0;
	}
	notify_live = 0;
	pthread_rwlock_unlock(&notify_lock);
	return 1;
}

/* 1 when the notifier ended (its pending notices dropped: the session is
 * over) and no notice goes any more (notify_close); 0 when a notice is
 * stuck after 2 s (a request nobody will answer now holds the folder):
 * the session must not be freed under it, and is left to the process's
 * exit. */
static int notifier_stop(void)
{
	struct timespec ts;
	struct later *l;

	atomic_store(&notify_closing, 1);	/* no new notice, also if the
						 * notifier is stuck (a review) */
	if (!ntf.started)
		return notify_close();
	pthread_mutex_lock(&ntf.lock);
	ntf.stop = 1;
	pthread_cond_signal(&ntf.cv);
	pthread_mutex_unlock(&ntf.lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	if (pthread_timedjoin_np(ntf.th, NULL, &ts)) {
		log_warn("a kernel entry notice is still waiting at unmount; the session ends with the process");
		return 0;
	}
	while ((l = ntf.head)) {
		ntf.head = l->next;
		free(l);
	}
	ntf.tail = NULL;
	return notify_close();
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	(void)flags;
	deferring = 1;
	rc = fs_setxattr(op_fs(req), ino, name, value, size, &eb);
	deferring = 0;
	reply_status(req, rc, &eb, "setxattr");
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	refuse(req, ino);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link, (void)name;
	refuse(req, parent);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)newparent, (void)newname;
	refuse(req, ino);
}

static const struct fuse_lowlevel_ops ll_ops = {
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.write = ll_write,
	.flush = ll_flush,
	.fsync = ll_fsync,
	.fsyncdir = ll_fsyncdir,
	.rename = ll_rename,
	.setattr = ll_setattr,
	.create = ll_create,
	.setxattr = ll_setxattr,
	.removexattr = ll_removexattr,
	.symlink = ll_symlink,
	.link = ll_link,
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.getattr = ll_getattr,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.open = ll_open,
	.read = ll_read,
	.release = ll_release,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.statfs = ll_statfs,
};

static void ll_inval(void *ctx, uint64_t ino)
{
	int r;

	if (!notify_begin())
		return;
	r = fuse_lowlevel_notify_inval_inode(ctx, (fuse_ino_t)ino, 0, 0);
	notify_end();
	if (r && r != -ENOENT)
		log_dbg(LOG_SUB_FUSE, "inval of inode %llu: %s",
			(unsigned long long)ino, strerror(-r));
}

/* Attributes only: safe from within a read of ino (no page is locked). */
static void ll_inval_attr(void *ctx, uint64_t ino)
{
	int r;

	if (!notify_begin())
		return;
	r = fuse_lowlevel_notify_inval_inode(ctx, (fuse_ino_t)ino, -1, 0);
	notify_end();
	if (r && r != -ENOENT)
		log_dbg(LOG_SUB_FUSE, "attribute inval of inode %llu: %s",
			(unsigned long long)ino, strerror(-r));
}

/* Never from a request on parent (its lock is held then); from a request
 * on the child or a read, by the notifier (see struct later). */
static void ll_inval_entry(void *ctx, uint64_t parent, const char *name)
{
	size_t n = strlen(name);
	struct later *l;

	if (!deferring || !ntf.started) {
		send_entry(ctx, parent, name);
		return;
	}
	l = malloc(sizeof(*l) + n + 1);
	if (!l) {		/* the kernel keeps the name until its ttl */
		log_warn("entry inval of %llu/%s: out of memory",
			 (unsigned long long)parent, name);
		return;
	}
	l->next = NULL;
	l->ctx = ctx;
	l->parent = parent;
	memcpy(l->name, name, n + 1);
	pthread_mutex_lock(&ntf.lock);
	if (ntf.tail)
		ntf.tail->next = l;
	else
		ntf.head = l;
	ntf.tail = l;
	pthread_cond_signal(&ntf.cv);
	pthread_mutex_unlock(&ntf.lock);
}

int fuse_ll_run(struct fs *fs, struct fuse_args *args, const char *mountpoint,
		const struct fuse_mount_opts *o)
{
	struct fuse_session *se;
	struct fuse_loop_config lc = { 0 };
	struct ll_ctx ctx = { fs, o->op_timeout_ms };
	int ret = 1;

	se = fuse_session_new(args, &ll_ops, sizeof(ll_ops), &ctx);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, mountpoint))
		goto out_handlers;
	if (fuse_daemonize(o->foreground))
		goto out_unmount;
	if (!o->foreground)
		log_use_syslog("mediafs");
	if (o->set_inval)
		o->set_inval(o->ud, ll_inval, se);
	notify_live = 1;	/* (no notice runs yet: nothing set them) */
	ntf.started = !pthread_create(&ntf.th, NULL, notifier, NULL);
	if (!ntf.started)
		log_warn("no thread for kernel entry notices: they go from the request that asks for them");
	fs_set_notify(fs, ll_inval_attr, ll_inval_entry, se);
	if (o->started)
		o->started(o->ud);
	log_info("mounted at %s", mountpoint);
	if (o->single_thread) {
		ret = fuse_session_loop(se);
	} else {
		lc.clone_fd = 0;
		lc.max_idle_threads = o->max_idle_threads ? o->max_idle_threads
							  : 16;
		ret = fuse_session_loop_mt(se, &lc);
	}
	/* libfuse answers the signal that ended the loop; SIGTERM (systemd's
	 * stop, kill) and SIGINT/SIGHUP are a clean shutdown, not an error */
	if (ret == SIGTERM || ret == SIGINT || ret == SIGHUP)
		ret = 0;
	log_info("unmounting %s", mountpoint);
	if (!notifier_stop()) {
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		return ret ? 1 : 0;	/* se stays: the notifier holds it */
	}
out_unmount:
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
