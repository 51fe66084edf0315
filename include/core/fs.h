/* fs.h - filesystem semantics, free of libfuse types: lookup, getattr,
 * readdir, open, read, xattrs, statfs over the remotes of one mount.
 * Owns: struct fs (remotes, cache handle, in-flight listing table), open
 * file and directory handles. Calls: backend, meta, core/prefetch, common.
 * All functions are thread-safe; see fs.c for the locking.
 * Consistency policy: a directory listing is trusted for ttl seconds (kept
 * across remounts in the metadata cache); lookups in a directory whose
 * listing is stale list the whole directory (one LIST per 1,000 entries)
 * rather than HEAD the name, because the callers that matter (ls -l, find,
 * rsync) go on to look at its siblings. A name absent from a listing older
 * than neg_ttl seconds is asked of the store (one HEAD, at most once per
 * name per neg_ttl; never for a hidden name), so an object another client wrote is found by name
 * within seconds; a handle that meets a changed version before it read
 * anything moves to the new one (see fs_read); setxattr
 * user.mediafs.refresh makes a listing stale at once.
 */
#ifndef MFS_CORE_FS_H
#define MFS_CORE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "common/err.h"
#include "meta/journal.h"
#include "meta/mcache.h"

struct upq;
struct stage;
struct dcache;
struct sniff;

struct fs_remote {
	char *name;		/* borrowed from the backend */
	struct backend *be;	/* owned by the caller of fs_new */
	char *prefix;		/* key prefix inside the bucket, no '/' ends */
	int rid;		/* set by fs_new */
};

struct fs_config {
	struct fs_remote *remotes;
	int nremotes;
	int single;		/* 1: the root is remotes[0] at its prefix */
	int64_t ttl_s;		/* listing lifetime, seconds */
	int64_t neg_ttl_s;	/* seconds a name absent from a listing stays
				 * absent without asking the store; >= ttl_s:
				 * as long as the listing */
	uid_t uid;
	gid_t gid;
	uint32_t file_mode;	/* default permission bits, 0644 */
	uint32_t dir_mode;	/* 0755 */
	size_t readahead_max;	/* bytes, largest read-ahead window */
	struct dcache *dc;	/* file data; borrowed, required */
	struct sniff *sniff;	/* types of what is read; borrowed, or NULL */
	/* Writing: all three set, or none (read-only mount). Borrowed. */
	struct upq *upq;
	struct stage *stage;
	struct journal *journal;
	const char *mount_id;	/* copied */
	int sync_close;		/* 1: the last close() of a written file
				 * waits for its upload and returns its
				 * error (-o sync_close) */
	int cache_new;		/* 1: the metadata cache was made anew at
				 * this mount (lost, deleted): what it shows
				 * is the store's listing, not what the
				 * mount showed before */
};

struct fs_attr {
	uint64_t ino;
	uint32_t mode;		/* type and permission bits (S_IFREG|0644) */
	uint32_t nlink;
	uint64_t size;
	int64_t mtime_ns;
	uid_t uid;
	gid_t gid;
	int unknown;		/* size and times not fetched yet (a URL-list
				 * file): readdirplus gives no attributes,
				 * so a stat comes back through lookup */
};

struct fs;
struct fs_dir;
struct fs_file;

/* cfg is copied (the arrays too, not the backends); mc is borrowed. */
enum mfs_err fs_new(const struct fs_config *cfg, struct mcache *mc,
		    struct fs **out, struct errbuf *eb);
void fs_free(struct fs *fs);
/* fn(ctx, ino) tells the kernel that ino's attributes changed behind its
 * back (a file refused at close is gone). Once, when mounted. */
void fs_set_inval(struct fs *fs, void (*fn)(void *ctx, uint64_t ino),
		  void *ctx);
/* attr(ctx, ino) drops the kernel's cached attributes of ino only
 * (callable while a read of ino waits for its answer); entry(ctx, parent,
 * name) drops the kernel's entry of a name (not callable from an operation
 * on parent). Once, when mounted. */
void fs_set_notify(struct fs *fs, void (*attr)(void *ctx, uint64_t ino),
		   void (*entry)(void *ctx, uint64_t parent,
				 const char *name),
		   void *ctx);
/* Make sure the top of every remote is listed (from the cache when still
 * fresh, so a warm remount sends nothing). Configuration and credential
 * errors are returned, so the mount command can fail with the message;
 * transient errors are only logged. */
enum mfs_err fs_prime(struct fs *fs, struct errbuf *eb);
/* At mount, before fs_prime (its listings would make the cache show both
 * names) and fs_resume_uploads (a resumed row may drop what such a move
 * left): settle the renames on the server a killed daemon left half done
 * (core/moves.h), so that the store matches what the mount showed.
 * Failures are logged; their records stay for the next mount. */
void fs_settle_moves(struct fs *fs);
/* At mount, before the cache answers: forget the cached files the journal
 * says `mediactl rollback` deleted from the stores since the cache last
 * looked (its events with op 'rollback'; the cache keeps the mark), so a
 * listing cached across remounts does not show them. Journal errors are
 * logged only (the listings still expire with cache_ttl). */
void fs_forget_rolled_back(struct fs *fs);
/* After a crash: queue again every upload the journal holds as pending for
 * this mount, and make the files visible in the cache. Sets *resumed and
 * *lost (rows whose staged file is gone; marked failed). */
enum mfs_err fs_resume_uploads(struct fs *fs, int *resumed, int *lost,
			       struct errbuf *eb);
/* Seconds the kernel may cache entries and attributes. */
double fs_ttl(const struct fs *fs);
/* Seconds the kernel may keep a negative entry (a name lookup did not
 * find): negative_ttl, at most the listing TTL. */
double fs_negative_ttl(const struct fs *fs);

enum mfs_err fs_lookup(struct fs *fs, uint64_t parent, const char *name,
		       struct fs_attr *out, struct errbuf *eb);
enum mfs_err fs_getattr(struct fs *fs, uint64_t ino, struct fs_attr *out,
			struct errbuf *eb);

/* A snapshot of a directory taken at open, so offsets stay stable. */
enum mfs_err fs_opendir(struct fs *fs, uint64_t ino, struct fs_dir **out,
			struct errbuf *eb);
/* Entry idx (0-based; "." and ".." first) or MFS_ENOTFOUND past the end. */
enum mfs_err fs_readdir(struct fs_dir *d, size_t idx, const char **name,
			struct fs_attr *attr);
void fs_releasedir(struct fs_dir *d);

/* flags are open(2) flags. A file opened for writing is staged locally;
 * its upload is queued when the last handle is flushed or released. */
enum mfs_err fs_open(struct fs *fs, uint64_t ino, int flags,
		     struct fs_file **out, struct errbuf *eb);
enum mfs_err fs_create(struct fs *fs, uint64_t parent, const char *name,
		       uint32_t mode, int flags, struct fs_attr *attr,
		       struct fs_file **out, struct errbuf *eb);
/* 1 when the kernel may keep the pages it cached of this file from an
 * earlier open: the object on the server is the one it read then (same
 * ETag) and nothing local is newer. */
int fs_keep_cache(const struct fs_file *f);
/* 1: the handle reads past the kernel's page cache (direct I/O): another
 * handle of the file reads another version of the object. */
int fs_direct_io(const struct fs_file *f);
enum mfs_err fs_read(struct fs_file *f, uint64_t off, size_t len, char *dst,
		     size_t *got, struct errbuf *eb);
enum mfs_err fs_write(struct fs_file *f, uint64_t off, const char *src,
		      size_t len, size_t *done, struct errbuf *eb);
/* close(2) of one descriptor: queues the upload when it is the last
 * writer, so a journal failure is reported to close(). */
enum mfs_err fs_flush(struct fs_file *f, struct errbuf *eb);
/* Waits for the file's upload and returns its result. */
enum mfs_err fs_fsync(struct fs_file *f, struct errbuf *eb);
/* fsync of a directory: waits until no upload at or below it is queued or
 * running (on every remote for the all-remotes root); MFS_OK when none of
 * them failed, else the first failure's error (its key and reason in eb). */
enum mfs_err fs_fsyncdir(struct fs *fs, uint64_t ino, struct errbuf *eb);
void fs_release(struct fs_file *f);

enum fs_set_bits {
	FS_SET_MODE = 1, FS_SET_UID = 2, FS_SET_GID = 4, FS_SET_SIZE = 8,
	FS_SET_MTIME = 16, FS_SET_MTIME_NOW = 32,
};

struct fs_setattr {
	unsigned mask;		/* enum fs_set_bits */
	uint32_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	int64_t mtime_ns;
};

/* utimens, chmod, chown, truncate (of an open file: through its staging
 * file, the upload follows its last close). */
enum mfs_err fs_setattr(struct fs *fs, uint64_t ino,
			const struct fs_setattr *sa, struct fs_attr *out,
			struct errbuf *eb);
enum mfs_err fs_unlink(struct fs *fs, uint64_t parent, const char *name,
		       struct errbuf *eb);
enum mfs_err fs_mkdir(struct fs *fs, uint64_t parent, const char *name,
		      uint32_t mode, struct fs_attr *out, struct errbuf *eb);
enum mfs_err fs_rmdir(struct fs *fs, uint64_t parent, const char *name,
		      struct errbuf *eb);
/* flags: 0 or FS_RENAME_NOREPLACE; exchange is not supported. Renaming a
 * directory copies and deletes every object below it: O(n). */
#define FS_RENAME_NOREPLACE 1
#define FS_RENAME_EXCHANGE 2
enum mfs_err fs_rename(struct fs *fs, uint64_t parent, const char *name,
		       uint64_t newparent, const char *newname,
		       unsigned flags, struct errbuf *eb);
enum mfs_err fs_setxattr(struct fs *fs, uint64_t ino, const char *name,
			 const char *value, size_t size, struct errbuf *eb);

/* Whether things may be created, changed or removed at ino: MFS_EROFS on
 * a read-only mount or remote, for the all-remotes root. */
enum mfs_err fs_check_writable(struct fs *fs, uint64_t ino);

/* Extended attributes. With cap == 0, *len gets the size only.
 * MFS_ENODATA for an unknown name, MFS_ERANGE when cap is too small.
 * user.mediafs.upload_state (not listed, so rsync -X does not copy it): of
 * a file "done", "pending", "uploading" or "failed: REASON"; of a
 * directory "done", "pending: N pending, N uploading, N failed" while
 * uploads at or below it are on their way, else "failed: N failed" followed
 * by one line "REMOTE:KEY: REASON" per failed upload. */
enum mfs_err fs_getxattr(struct fs *fs, uint64_t ino, const char *name,
			 char *dst, size_t cap, size_t *len,
			 struct errbuf *eb);
enum mfs_err fs_listxattr(struct fs *fs, uint64_t ino, char *dst, size_t cap,
			  size_t *len);

#endif
