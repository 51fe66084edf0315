/* prefetch.h - the read path of one open file on a server.
 * Owns: the read pattern of one file handle (sequential or not, the
 * read-ahead window) and its background fetches. Calls: backend,
 * core/dcache (the object's record of fetched and in-flight ranges, shared
 * by all handles on it, kept on disk when the data cache is on).
 * A first small read fetches at most 64 KiB; other reads fetch what they
 * ask, rounded to 4 KiB pages; from the second sequential read on, windows
 * that double up to max_window are fetched ahead in the background, or,
 * when the backend can stream and more than max_window is left, one
 * request for the rest (held to max_window ahead of the reads). No range
 * is fetched twice while the object's record lives. Thread-safe: the
 * kernel may send reads on one handle concurrently and out of order.
 */
#ifndef MFS_CORE_PREFETCH_H
#define MFS_CORE_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/dcache.h"

struct prefetch;

/* key and etag are copied; the reference o is taken (released by
 * prefetch_free, or here on failure). The object's size is o's. */
struct prefetch *prefetch_new(struct backend *be, const char *key,
			      const char *etag, struct dobj *o,
			      size_t max_window);
/* Read up to len bytes at off; *got < len only at the end of the object. */
enum mfs_err prefetch_read(struct prefetch *p, uint64_t off, size_t len,
			   char *dst, size_t *got, struct errbuf *eb);
/* Waits for background fetches, then frees. NULL is a no-op. */
void prefetch_free(struct prefetch *p);

#endif
