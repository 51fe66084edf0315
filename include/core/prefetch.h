/* prefetch.h - sequential read-ahead for one open file.
 * Owns: the read windows of one file handle. Calls: backend.
 * Reads that continue where the last one ended double the window (up to
 * max_window) and start fetching the next window in the background while
 * the current one is served, so a streaming reader sees the server's
 * throughput rather than its round-trip time. A random read fetches only a
 * small window. All calls on one struct prefetch are serialised by its
 * lock; separate handles are independent.
 */
#ifndef MFS_CORE_PREFETCH_H
#define MFS_CORE_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

struct prefetch;

/* key and etag are copied. size is the object's size as cached. */
struct prefetch *prefetch_new(struct backend *be, const char *key,
			      const char *etag, uint64_t size,
			      size_t max_window);
/* Read up to len bytes at off; *got < len only at the end of the object. */
enum mfs_err prefetch_read(struct prefetch *p, uint64_t off, size_t len,
			   char *dst, size_t *got, struct errbuf *eb);
/* Waits for a background fetch, then frees. NULL is a no-op. */
void prefetch_free(struct prefetch *p);

#endif
