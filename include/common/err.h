/* err.h - the project error enum and the caller-supplied error buffer.
 * Owns: enum mfs_err, struct errbuf. Calls: libc only. Thread-safe (no state).
 * Every function that can fail returns an enum mfs_err; detail (a message, an
 * HTTP status, a provider code) goes into a struct errbuf the caller owns.
 */
#ifndef MFS_COMMON_ERR_H
#define MFS_COMMON_ERR_H

#include <stddef.h>

enum mfs_err {
	MFS_OK = 0,
	MFS_ENOTFOUND,	/* no such object, bucket or file */
	MFS_EEXIST,	/* already exists */
	MFS_EACCES,	/* credentials refused or permission denied */
	MFS_ETRANSIENT,	/* worth retrying: 5xx, throttling, reset, timeout */
	MFS_ECONFLICT,	/* precondition failed or concurrent change */
	MFS_EUNSUPP,	/* the backend cannot do this */
	MFS_EINVAL,	/* bad argument, name or configuration */
	MFS_EPROTO,	/* malformed or unexpected reply from a server */
	MFS_ENOMEM,
	MFS_EIO,	/* anything else: local I/O, gave up after retries */
	MFS_ENOTDIR,
	MFS_EISDIR,
	MFS_ENOTEMPTY,
	MFS_ENOSPC,
	MFS_EROFS,
	MFS_ENAMETOOLONG,
	MFS_ERANGE,	/* value does not fit the caller's buffer */
	MFS_ENODATA,	/* no such attribute */
	MFS_ECONFIG,	/* the remote is misconfigured (region, bucket) */
	MFS_EXDEV,	/* across remotes */
	MFS_EFBIG,	/* larger than the store accepts */
	MFS_ETIMEDOUT,	/* an operation's time limit was reached */
	MFS_EINTR,	/* the operation's caller was interrupted */
	MFS_ERR_COUNT
};

/* Error detail filled by callees; msg is always NUL-terminated. */
struct errbuf {
	char msg[512];
	int http_status;	/* last HTTP status seen, 0 if none */
};

/* Human name of an error code ("not found"); never NULL. */
const char *mfs_strerror(enum mfs_err rc);

/* Format into eb->msg (eb may be NULL: then nothing happens). Returns rc so
 * callers can write "return eb_set(eb, MFS_EINVAL, ...)". */
enum mfs_err eb_set(struct errbuf *eb, enum mfs_err rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the existing message with a context string ("listing a/: ..."). */
void eb_prefix(struct errbuf *eb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void eb_clear(struct errbuf *eb);

#endif
