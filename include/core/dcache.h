/* dcache.h - file data on local disk: what was fetched of each object, and
 * what is being fetched. Owns: the directory of cached data (one data file
 * and one map file per object, named by a hash of remote and key), the
 * size bound and its LRU eviction, and the open objects' page states.
 * Calls: common only (no backend: callers fetch and hand the bytes in).
 *
 * An object is cached as long as its ETag is the one the caller names: an
 * open with another ETag starts the entry afresh, so a changed object is
 * never served from the old bytes. With a limit of 0 (or an object without
 * an ETag, or one larger than half the limit) the data lives in an unlinked
 * temporary file for as long as the object is open: the range bookkeeping
 * is the same, nothing survives the last close.
 *
 * Page states (4 KiB pages): EMPTY, INFLIGHT (claimed by one fetcher),
 * PRESENT. Claiming turns EMPTY pages INFLIGHT under the object's lock, so
 * concurrent readers never fetch a page twice; a reader that needs an
 * INFLIGHT page waits for it. A failed fetch turns its pages EMPTY again
 * and wakes the waiters, who claim and fetch them themselves.
 * Thread-safe: dc->lock guards the open-object table and the byte count;
 * each object's lock guards its page states.
 */
#ifndef MFS_CORE_DCACHE_H
#define MFS_CORE_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DCACHE_PAGE 4096

struct dcache;
struct dobj;

/* Open (create) the cache in dir; limit in bytes, 0 = nothing persists.
 * dir is copied. */
enum mfs_err dcache_new(const char *dir, uint64_t limit, struct dcache **out,
			struct errbuf *eb);
void dcache_free(struct dcache *dc);
/* Bytes of cached data on disk (persistent entries), and the limit. */
void dcache_usage(struct dcache *dc, uint64_t *used, uint64_t *limit);

/* The object named id (e.g. "remote/key"; any bytes but NUL) whose
 * current ETag is etag ("" = unknown: not kept) and size is size bytes.
 * Handles on the same id and ETag share one struct dobj (refcounted). */
enum mfs_err dcache_open(struct dcache *dc, const char *id, const char *etag,
			 uint64_t size, struct dobj **out, struct errbuf *eb);
/* The first len bytes (capped at size) of the object named id at ETag etag
 * and size bytes into dst, *got set, only when the cache already holds
 * them (an open object's PRESENT pages, or a kept entry on disk): nothing
 * is created, claimed or fetched. MFS_ENODATA otherwise (also for an
 * unknown ETag ""). Thread-safe. */
enum mfs_err dcache_peek(struct dcache *dc, const char *id, const char *etag,
			 uint64_t size, size_t len, char *dst, size_t *got);
/* Drop one reference; NULL is a no-op. */
void dcache_close(struct dobj *o);

uint64_t dobj_size(const struct dobj *o);
/* 1 when the page holding off is INFLIGHT or PRESENT. */
int dobj_have(struct dobj *o, uint64_t off);
/* The end of the run of INFLIGHT or PRESENT pages starting at off's page
 * (off rounded down), capped at the object's size; off itself if empty. */
uint64_t dobj_frontier(struct dobj *o, uint64_t off);
/* Claim the first run of EMPTY pages in [off, end) (page-aligned outward,
 * capped at the size), at most max bytes long: they become INFLIGHT and the
 * caller must dobj_fill or dobj_fail exactly that range. Returns 0 and sets
 * *roff and *rlen, or MFS_ENODATA when nothing in range is EMPTY. */
enum mfs_err dobj_claim(struct dobj *o, uint64_t off, uint64_t end,
			size_t max, uint64_t *roff, size_t *rlen);
/* Store len fetched bytes of a claimed range at roff (len may be shorter
 * than claimed only at the object's end). The pages become PRESENT. */
enum mfs_err dobj_fill(struct dobj *o, uint64_t roff, size_t rlen,
		       const char *data, size_t len, struct errbuf *eb);
/* A claimed range was not fetched: its pages become EMPTY again. */
void dobj_fail(struct dobj *o, uint64_t roff, size_t rlen);
/* Copy [off, off+len) into dst, waiting for INFLIGHT pages. MFS_ENODATA
 * when a page in range is (or became) EMPTY: claim and fetch, then again.
 * The read steers the object's streams (below). */
enum mfs_err dobj_read(struct dobj *o, uint64_t off, size_t len, char *dst,
		       struct errbuf *eb);

/* A stream: one fetcher that fills a long claimed run of pages in order as
 * the bytes of one request arrive, so readers waiting for its pages get
 * them piece by piece. The readers steer it (dobj_read):
 * - it holds (blocks in dstream_put) while it is lead bytes or more ahead
 *   of the furthest read inside its run, so a paused reader does not make
 *   it fetch the whole object;
 * - a read cut bytes or more ahead of where it has got takes the rest of
 *   the run away from it (the pages become EMPTY, the reader fetches its
 *   own), so a seek never waits for the bytes in between.
 * Claim the first run of EMPTY pages in [off, end) (as dobj_claim, without
 * a length cap) and register the stream; reader_end is where its reader
 * has read up to. *roff, *rlen: the run to request. MFS_ENODATA when
 * nothing in range is EMPTY. */
struct dstream;
enum mfs_err dstream_new(struct dobj *o, uint64_t off, uint64_t end,
			 uint64_t reader_end, uint64_t lead, uint64_t cut,
			 struct dstream **out, uint64_t *roff, uint64_t *rlen);
/* The next n bytes of the run (n = 0: only ask). MFS_ENODATA when no more
 * are wanted (stopped, or the run was cut before them): end the request.
 * Other errors: the data cache could not store them. The stream's own
 * thread only. */
enum mfs_err dstream_put(struct dstream *s, const char *p, size_t n,
			 struct errbuf *eb);
/* Ask the stream to end (its next dstream_put says MFS_ENODATA); any
 * thread, while the stream exists. */
void dstream_stop(struct dstream *s);
/* Keep the bytes handed over, give the pages that never came back
 * (EMPTY: readers fetch them), unregister and free. NULL is a no-op. */
void dstream_end(struct dstream *s);

#endif
