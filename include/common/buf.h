/* buf.h - growable byte buffers with a hard cap.
 * Owns: struct buf. Calls: libc. Not thread-safe; one owner at a time.
 * Every buffer filled from the network is created with a cap, so a server
 * cannot make the daemon allocate without bound.
 */
#ifndef MFS_COMMON_BUF_H
#define MFS_COMMON_BUF_H

#include <stddef.h>

#include "common/err.h"

struct buf {
	char *data;	/* always NUL-terminated when non-NULL */
	size_t len;	/* bytes used, not counting the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* hard limit on len; 0 = unlimited */
};

/* Caller-owned struct; max = 0 means no cap. */
void buf_init(struct buf *b, size_t max);
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);
/* Append n bytes. MFS_ERANGE past the cap, MFS_ENOMEM on allocation. */
enum mfs_err buf_add(struct buf *b, const void *p, size_t n);
enum mfs_err buf_adds(struct buf *b, const char *s);
enum mfs_err buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the data to the caller (free() it); b is left empty. */
char *buf_take(struct buf *b);

#endif
