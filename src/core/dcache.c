/* dcache.c - file data on local disk with per-page states (see dcache.h).
 * Locks: dc->lock guards dc->open, dc->used and every object's refs and
 * next; it is held for the file operations of open and eviction (cheap).
 * o->lock guards o->st; o->dfd/o->mfd are written with pwrite outside it
 * (a claimed page has one writer; PRESENT pages are never rewritten).
 * Calls: common.
 *
 * On disk, per object, NAME = 32 hex digits of two FNV-1a hashes of the id:
 *   NAME.d  the data, a sparse file of the object's size
 *   NAME.m  a 4 KiB header ("mediafs-dcache 1", size, etag, id; NUL padded)
 *           then one byte per page, 1 = present. Its mtime is the entry's
 *           last use (LRU).
 * The data is written before the map byte that declares it.
 */
#include "core/dcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define HDR 4096
#define P_EMPTY 0
#define P_INFLIGHT 1
#define P_PRESENT 2
#define PEEK_MAX_PAGES 16	/* dcache_peek reads at most this many */
#define MEM_FALLBACK_MAX (256ULL << 20)	/* anon_file's, in memory */

struct dobj {
	struct dcache *dc;
	struct dobj *next;	/* dc->lock */
	int refs;		/* dc->lock */
	int counted;		/* dc->lock: in dc->open_bytes, open_disk */
	uint64_t disk;		/* dc->lock: bytes on disk (counted) */
	char *id;
	char *etag;
	char name[33];		/* "" when not persistent */
	uint64_t size;		/* bytes */
	size_t npages;
	int dfd;		/* data */
	int mfd;		/* map, -1 when not persistent */
	pthread_mutex_t lock;
	pthread_cond_t changed;	/* a page left INFLIGHT, or a stream's
				 * readers moved on */
	unsigned char *st;	/* lock: P_* per page */
	struct dstream *streams;	/* lock: the running streams */
};

/* See dcache.h. The run [pos, end) is the stream's: INFLIGHT pages only it
 * fills. It fills [pos, fill_end) outside the lock; a cut never goes below
 * fill_end. */
#define STREAM_BUF (256 * 1024)	/* bytes gathered before a fill */

struct dstream {
	struct dobj *o;
	struct dstream *next;	/* o->lock */
	uint64_t pos;		/* o->lock: filled up to here */
	uint64_t fill_end;	/* o->lock: being filled up to here */
	uint64_t end;		/* o->lock: the run ends here (a cut lowers
				 * it) */
	uint64_t reader_end;	/* o->lock: the furthest read in the run */
	uint64_t lead;		/* bytes it may run ahead of reader_end */
	uint64_t cut;		/* a read this far ahead of pos cuts */
	int stop;		/* o->lock */
	int paused;		/* o->lock: waiting for its readers */
	char *buf;		/* the stream's thread only: bytes not yet */
	size_t nbuf;		/* filled, from pos on */
};

struct dcache {
	char *dir;
	uint64_t limit;		/* bytes; 0 = nothing persists */
	pthread_mutex_t lock;
	struct dobj *open;	/* lock */
	uint64_t used;		/* lock: bytes of persistent data on disk */
	/* lock: of the open persistent objects, the sizes (what they may
	 * grow to) and the bytes on disk: a new one is kept only where the
	 * closed entries left room for them all (the limit holds while
	 * readers keep files open, not only once they close) */
	uint64_t open_bytes, open_disk;
};

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void entry_name(const char *id, char out[33])
{
	snprintf(out, 33, "%016" PRIx64 "%016" PRIx64,
		 fnv(id, 0xcbf29ce484222325ULL),
		 fnv(id, 0x84222325cbf29ce4ULL));
}

static uint64_t blocks_of(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, 0))
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

enum mfs_err dcache_new(const char *dir, uint64_t limit, struct dcache **out,
			struct errbuf *eb)
{
	struct dcache *dc;
	DIR *d;
	struct dirent *e;

	*out = NULL;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return eb_set(eb, MFS_EIO, "cannot create data cache %s: %s",
			      dir, strerror(errno));
	dc = calloc(1, sizeof(*dc));
	if (!dc || !(dc->dir = strdup(dir))) {
		free(dc);
		return MFS_ENOMEM;
	}
	dc->limit = limit;
	pthread_mutex_init(&dc->lock, NULL);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n == 34 && !strcmp(e->d_name + 32, ".d"))
			dc->used += blocks_of(dirfd(d), e->d_name);
	}
	if (d)
		closedir(d);
	*out = dc;
	return MFS_OK;
}

void dcache_free(struct dcache *dc)
{
	if (!dc)
		return;
	pthread_mutex_destroy(&dc->lock);
	free(dc->dir);
	free(dc);
}

void dcache_usage(struct dcache *dc, uint64_t *used, uint64_t *limit)
{
	pthread_mutex_lock(&dc->lock);
	*used = dc->used;
	*limit = dc->limit;
	pthread_mutex_unlock(&dc->lock);
}

/* ---- eviction ---- */

struct victim {
	char name[33];
	int64_t mtime_ns;
	uint64_t bytes;
};

static int by_age(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

static int is_open(struct dcache *dc, const char *name)
{
	struct dobj *o;

	for (o = dc->open; o; o = o->next)
		if (!strcmp(o->name, name))
			return 1;
	return 0;
}

static void unlink_entry(int dfd, const char *name)
{
	char p[40];

	snprintf(p, sizeof(p), "%s.d", name);
	unlinkat(dfd, p, 0);
	snprintf(p, sizeof(p), "%s.m", name);
	unlinkat(dfd, p, 0);
}

/* Caller holds dc->lock. Least recently used entries that are not open go
 * until they and what the open ones may grow to are under 90% of the
 * limit; dc->used is recounted. */
static void evict(struct dcache *dc)
{
	struct victim *v = NULL;
	size_t nv = 0, cap = 0, i;
	uint64_t total = 0, closed = 0;
	DIR *d = opendir(dc->dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char dn[40];

		if (strlen(e->d_name) != 34 || strcmp(e->d_name + 32, ".m"))
			continue;
		snprintf(dn, sizeof(dn), "%.32s.d", e->d_name);
		if (fstatat(dirfd(d), dn, &st, 0))
			continue;
		total += (uint64_t)st.st_blocks * 512;
		if (nv == cap) {
			struct victim *nvv;

			cap = cap ? 2 * cap : 64;
			nvv = realloc(v, cap * sizeof(*v));
			if (!nvv)
				break;
			v = nvv;
		}
		snprintf(v[nv].name, sizeof(v[nv].name), "%.32s", e->d_name);
		v[nv].bytes = (uint64_t)st.st_blocks * 512;
		if (is_open(dc, v[nv].name))
			continue;
		closed += v[nv].bytes;
		if (fstatat(dirfd(d), e->d_name, &st, 0))
			continue;
		v[nv].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
				 st.st_mtim.tv_nsec;
		nv++;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), by_age);
	for (i = 0; i < nv && closed + dc->open_bytes > dc->limit / 10 * 9;
	     i++) {
		unlink_entry(dirfd(d), v[i].name);
		total -= v[i].bytes < total ? v[i].bytes : total;
		closed -= v[i].bytes < closed ? v[i].bytes : closed;
	}
	closedir(d);
	free(v);
	dc->used = total;
}

/* ---- objects ---- */

static int open_in(struct dcache *dc, const char *name, const char *ext)
{
	char p[40];
	int dfd = open(dc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;

	if (dfd < 0)
		return -1;
	snprintf(p, sizeof(p), "%s%s", name, ext);
	fd = openat(dfd, p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	close(dfd);
	return fd;
}

static int full_pwrite(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;

	while (n) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int full_pread(int fd, void *p, size_t n, uint64_t off)
{
	char *c = p;

	while (n) {
		ssize_t r = pread(fd, c, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int make_header(const struct dobj *o, char hdr[HDR])
{
	int n;

	memset(hdr, 0, HDR);
	n = snprintf(hdr, HDR, "mediafs-dcache 1\n%" PRIu64 "\n%s\n%s\n",
		     o->size, o->etag, o->id);
	return n > 0 && n < HDR ? 0 : -1;
}

/* Caller holds dc->lock. Attach o to its entry on disk: reuse what the
 * entry holds when it is of this id, etag and size, else start it afresh.
 * Returns -1 when the entry cannot be used (o then stays anonymous). */
static int attach(struct dcache *dc, struct dobj *o)
{
	char *hdr = malloc(HDR), *old = malloc(HDR), dn[40];
	int rc = -1;
	size_t i;

	if (!hdr || !old || make_header(o, hdr))
		goto out;
	o->mfd = open_in(dc, o->name, ".m");
	o->dfd = open_in(dc, o->name, ".d");
	if (o->mfd < 0 || o->dfd < 0)
		goto out;
	if (!full_pread(o->mfd, old, HDR, 0) && !memcmp(hdr, old, HDR) &&
	    !full_pread(o->mfd, o->st, o->npages, HDR)) {
		for (i = 0; i < o->npages; i++)
			o->st[i] = o->st[i] == 1 ? P_PRESENT : P_EMPTY;
	} else {
		int dirfd_ = open(dc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		uint64_t b;

		snprintf(dn, sizeof(dn), "%s.d", o->name);
		b = dirfd_ >= 0 ? blocks_of(dirfd_, dn) : 0;
		if (dirfd_ >= 0)
			close(dirfd_);
		dc->used -= b < dc->used ? b : dc->used;
		memset(o->st, P_EMPTY, o->npages);
		if (ftruncate(o->dfd, 0) || ftruncate(o->mfd, 0) ||
		    ftruncate(o->dfd, (off_t)o->size) ||
		    ftruncate(o->mfd, (off_t)(HDR + o->npages)) ||
		    full_pwrite(o->mfd, hdr, HDR, 0))
			goto out;
	}
	futimens(o->mfd, NULL);	/* last use */
	{
		struct stat st;

		o->disk = fstat(o->dfd, &st) ? 0 :
			  (uint64_t)st.st_blocks * 512;
	}
	rc = 0;
out:
	if (rc) {
		if (o->mfd >= 0)
			close(o->mfd);
		if (o->dfd >= 0)
			close(o->dfd);
		o->mfd = o->dfd = -1;
	}
	free(hdr);
	free(old);
	return rc;
}

static int anon_file(struct dcache *dc, uint64_t size)
{
	int fd = open(dc->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		size_t n = strlen(dc->dir) + 16;
		char *p = malloc(n);

		if (!p)
			return -1;
		snprintf(p, n, "%s/tmp.XXXXXX", dc->dir);
		fd = mkostemp(p, O_CLOEXEC);
		if (fd >= 0)
			unlink(p);
		free(p);
	}
	if (fd < 0 && size <= MEM_FALLBACK_MAX) {
		/* the directory holds no file (read-only, full): in memory,
		 * while open, rather than fail the open (a review: every
		 * open for reading failed with EIO) */
		int e = errno;

		fd = memfd_create("mediafs-data", MFD_CLOEXEC);
		if (fd >= 0)
			log_warn("data cache: no file in %s (%s): reading in memory",
				 dc->dir, strerror(e));
		else
			errno = e;
	}
	if (fd >= 0 && ftruncate(fd, (off_t)size)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void dobj_free(struct dobj *o)
{
	if (o->mfd >= 0) {
		futimens(o->mfd, NULL);
		close(o->mfd);
	}
	if (o->dfd >= 0)
		close(o->dfd);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->changed);
	free(o->st);
	free(o->id);
	free(o->etag);
	free(o);
}

enum mfs_err dcache_open(struct dcache *dc, const char *id, const char *etag,
			 uint64_t size, struct dobj **out, struct errbuf *eb)
{
	struct dobj *o;
	char name[33];
	int persist;

	*out = NULL;
	entry_name(id, name);
	pthread_mutex_lock(&dc->lock);
	for (o = dc->open; o; o = o->next)
		if (o->size == size && !strcmp(o->id, id) &&
		    !strcmp(o->etag, etag) && etag[0]) {
			o->refs++;
			pthread_mutex_unlock(&dc->lock);
			*out = o;
			return MFS_OK;
		}
	/* another version of it open: this one stays in memory's reach only;
	 * the open ones may fill the limit: the same */
	persist = dc->limit && etag[0] && size <= dc->limit / 2 &&
		  !is_open(dc, name) && dc->open_bytes + size <= dc->limit;
	o = calloc(1, sizeof(*o));
	if (!o)
		goto nomem;
	o->dc = dc;
	o->refs = 1;
	o->size = size;
	o->npages = (size_t)((size + DCACHE_PAGE - 1) / DCACHE_PAGE);
	o->dfd = o->mfd = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->changed, NULL);
	o->id = strdup(id);
	o->etag = strdup(etag);
	o->st = calloc(o->npages ? o->npages : 1, 1);
	if (!o->id || !o->etag || !o->st) {
		dobj_free(o);
		goto nomem;
	}
	if (persist) {
		memcpy(o->name, name, sizeof(name));
		if (attach(dc, o)) {
			o->name[0] = '\0';
		} else {
			o->counted = 1;
			dc->open_bytes += size;
			dc->open_disk += o->disk;
		}
	}
	if (o->dfd < 0 && (o->dfd = anon_file(dc, size)) < 0) {
		int e = errno;

		pthread_mutex_unlock(&dc->lock);
		dobj_free(o);
		return eb_set(eb, MFS_EIO, "data cache file in %s: %s",
			      dc->dir, strerror(e));
	}
	o->next = dc->open;
	dc->open = o;
	/* room for it (open now, so not evicted itself): the closed
	 * entries' bytes (used less the open ones') and what the open ones
	 * may hold */
	if (o->counted &&
	    (dc->used > dc->open_disk ? dc->used - dc->open_disk : 0) +
	    dc->open_bytes > dc->limit)
		evict(dc);
	pthread_mutex_unlock(&dc->lock);
	*out = o;
	return MFS_OK;
nomem:
	pthread_mutex_unlock(&dc->lock);
	return MFS_ENOMEM;
}

/* Caller holds dc->lock. The first n bytes of the kept entry name when its
 * header is id's at etag and size and its first pages are present. */
static int peek_disk(struct dcache *dc, const char *name, const char *id,
		     const char *etag, uint64_t size, size_t n, char *dst)
{
	struct dobj k = { .id = (char *)id, .etag = (char *)etag,
			  .size = size };
	char *hdr = malloc(HDR), *old = malloc(HDR), p[40];
	unsigned char map[PEEK_MAX_PAGES];
	size_t np = (n + DCACHE_PAGE - 1) / DCACHE_PAGE, i;
	int dfd = open(dc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int mfd = -1, fd = -1, rc = -1;

	if (!hdr || !old || dfd < 0 || np > sizeof(map) || make_header(&k, hdr))
		goto out;
	snprintf(p, sizeof(p), "%s.m", name);
	mfd = openat(dfd, p, O_RDONLY | O_CLOEXEC);
	if (mfd < 0 || full_pread(mfd, old, HDR, 0) || memcmp(hdr, old, HDR) ||
	    (np && full_pread(mfd, map, np, HDR)))
		goto out;
	for (i = 0; i < np; i++)
		if (map[i] != 1)
			goto out;
	snprintf(p, sizeof(p), "%s.d", name);
	fd = openat(dfd, p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (!n || !full_pread(fd, dst, n, 0)))
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (mfd >= 0)
		close(mfd);
	if (dfd >= 0)
		close(dfd);
	free(hdr);
	free(old);
	return rc;
}

enum mfs_err dcache_peek(struct dcache *dc, const char *id, const char *etag,
			 uint64_t size, size_t len, char *dst, size_t *got)
{
	struct dobj *o;
	char name[33];
	size_t n = size < len ? (size_t)size : len, i;
	int rc = -1;

	*got = 0;
	if (!etag[0])
		return MFS_ENODATA;
	entry_name(id, name);
	pthread_mutex_lock(&dc->lock);
	for (o = dc->open; o; o = o->next)
		if (o->size == size && !strcmp(o->id, id) &&
		    !strcmp(o->etag, etag))
			break;
	if (o) {
		/* open: its pages say (INFLIGHT ones are not there yet) */
		pthread_mutex_lock(&o->lock);
		for (i = 0; i < (n + DCACHE_PAGE - 1) / DCACHE_PAGE; i++)
			if (o->st[i] != P_PRESENT)
				break;
		rc = i < (n + DCACHE_PAGE - 1) / DCACHE_PAGE ? -1 : 0;
		pthread_mutex_unlock(&o->lock);
		if (!rc && n && full_pread(o->dfd, dst, n, 0))
			rc = -1;
	} else if (dc->limit && !is_open(dc, name)) {
		rc = peek_disk(dc, name, id, etag, size, n, dst);
	}
	pthread_mutex_unlock(&dc->lock);
	if (rc)
		return MFS_ENODATA;
	*got = n;
	return MFS_OK;
}

void dcache_close(struct dobj *o)
{
	struct dcache *dc;
	struct dobj **pp;
	int last, over;

	if (!o)
		return;
	dc = o->dc;
	pthread_mutex_lock(&dc->lock);
	last = --o->refs == 0;
	if (last && o->counted) {
		dc->open_bytes -= o->size;
		dc->open_disk -= o->disk < dc->open_disk ? o->disk
							 : dc->open_disk;
	}
	if (last)
		for (pp = &dc->open; *pp; pp = &(*pp)->next)
			if (*pp == o) {
				*pp = o->next;
				break;
			}
	if (last)
		dobj_free(o);
	over = dc->limit && dc->used > dc->limit;
	if (over)
		evict(dc);
	pthread_mutex_unlock(&dc->lock);
}

uint64_t dobj_size(const struct dobj *o)
{
	return o->size;
}

int dobj_have(struct dobj *o, uint64_t off)
{
	int r;

	if (off >= o->size)
		return 0;
	pthread_mutex_lock(&o->lock);
	r = o->st[off / DCACHE_PAGE] != P_EMPTY;
	pthread_mutex_unlock(&o->lock);
	return r;
}

uint64_t dobj_frontier(struct dobj *o, uint64_t off)
{
	size_t i;

	if (off >= o->size)
		return o->size;
	pthread_mutex_lock(&o->lock);
	for (i = (size_t)(off / DCACHE_PAGE); i < o->npages; i++)
		if (o->st[i] == P_EMPTY)
			break;
	pthread_mutex_unlock(&o->lock);
	if (i == (size_t)(off / DCACHE_PAGE))
		return off;
	return (uint64_t)i * DCACHE_PAGE < o->size ?
	       (uint64_t)i * DCACHE_PAGE : o->size;
}

/* Caller holds o->lock: dobj_claim's work; end is capped already. */
static enum mfs_err claim_locked(struct dobj *o, uint64_t off, uint64_t end,
				 size_t maxp, uint64_t *roff, uint64_t *rlen)
{
	size_t i, j, last = (size_t)((end + DCACHE_PAGE - 1) / DCACHE_PAGE);

	for (i = (size_t)(off / DCACHE_PAGE); i < last; i++)
		if (o->st[i] == P_EMPTY)
			break;
	if (i == last)
		return MFS_ENODATA;
	for (j = i; j < last && j - i < maxp && o->st[j] == P_EMPTY; j++)
		o->st[j] = P_INFLIGHT;
	*roff = (uint64_t)i * DCACHE_PAGE;
	*rlen = ((uint64_t)j * DCACHE_PAGE < o->size ?
		 (uint64_t)j * DCACHE_PAGE : o->size) - *roff;
	return MFS_OK;
}

enum mfs_err dobj_claim(struct dobj *o, uint64_t off, uint64_t end,
			size_t max, uint64_t *roff, size_t *rlen)
{
	size_t maxp = max / DCACHE_PAGE;
	uint64_t n;
	enum mfs_err rc;

	if (end > o->size)
		end = o->size;
	if (off >= end)
		return MFS_ENODATA;
	if (!maxp)
		maxp = 1;
	pthread_mutex_lock(&o->lock);
	rc = claim_locked(o, off, end, maxp, roff, &n);
	pthread_mutex_unlock(&o->lock);
	if (!rc)
		*rlen = (size_t)n;
	return rc;
}

static void set_pages(struct dobj *o, uint64_t off, uint64_t end,
		      unsigned char to)
{
	size_t i, last = (size_t)((end + DCACHE_PAGE - 1) / DCACHE_PAGE);

	pthread_mutex_lock(&o->lock);
	for (i = (size_t)(off / DCACHE_PAGE); i < last && i < o->npages; i++)
		o->st[i] = to;
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
}

enum mfs_err dobj_fill(struct dobj *o, uint64_t roff, size_t rlen,
		       const char *data, size_t len, struct errbuf *eb)
{
	uint64_t whole = roff + len;	/* end of whole pages held */
	int e;

	if (len > rlen)
		len = rlen;
	if (whole < o->size)
		whole -= whole % DCACHE_PAGE;
	if (full_pwrite(o->dfd, data, len, roff)) {
		e = errno;
		dobj_fail(o, roff, rlen);
		return eb_set(eb, e == ENOSPC ? MFS_ENOSPC : MFS_EIO,
			      "writing the data cache: %s", strerror(e));
	}
	if (o->mfd >= 0 && whole > roff) {
		size_t n = (size_t)((whole - roff + DCACHE_PAGE - 1) /
				    DCACHE_PAGE);
		unsigned char *ones = malloc(n);

		if (ones) {
			memset(ones, 1, n);
			if (full_pwrite(o->mfd, ones, n,
					HDR + roff / DCACHE_PAGE))
				log_warn("data cache map: %s",
					 strerror(errno));
			free(ones);
		}
		pthread_mutex_lock(&o->dc->lock);
		o->dc->used += whole - roff;
		if (o->counted) {
			o->disk += whole - roff;
			o->dc->open_disk += whole - roff;
		}
		pthread_mutex_unlock(&o->dc->lock);
	}
	if (whole > roff)
		set_pages(o, roff, whole, P_PRESENT);
	if (whole < roff + rlen)
		set_pages(o, whole, roff + rlen, P_EMPTY);
	return MFS_OK;
}

void dobj_fail(struct dobj *o, uint64_t roff, size_t rlen)
{
	set_pages(o, roff, roff + rlen, P_EMPTY);
}

/* Caller holds o->lock. A read of [off, end) steers the streams it
 * reaches into (see dcache.h). */
static void steer(struct dobj *o, uint64_t off, uint64_t end)
{
	uint64_t page = off - off % DCACHE_PAGE;
	struct dstream *s;
	size_t i;

	for (s = o->streams; s; s = s->next) {
		if (off >= s->end || end <= s->reader_end)
			continue;
		if (page >= s->fill_end && page >= s->pos + s->cut) {
			/* a seek far ahead: the reader fetches its own */
			for (i = (size_t)(page / DCACHE_PAGE);
			     i < (size_t)((s->end + DCACHE_PAGE - 1) /
					  DCACHE_PAGE); i++)
				o->st[i] = P_EMPTY;
			s->end = page;
			pthread_cond_broadcast(&o->changed);
			continue;
		}
		s->reader_end = end < s->end ? end : s->end;
		if (s->paused)
			pthread_cond_broadcast(&o->changed);
	}
}

enum mfs_err dobj_read(struct dobj *o, uint64_t off, size_t len, char *dst,
		       struct errbuf *eb)
{
	size_t i, last;

	if (off + len > o->size || off + len < off)
		return eb_set(eb, MFS_EINVAL, "read past the cached size");
	if (!len)
		return MFS_OK;
	last = (size_t)((off + len + DCACHE_PAGE - 1) / DCACHE_PAGE);
	pthread_mutex_lock(&o->lock);
	steer(o, off, off + len);
	for (i = (size_t)(off / DCACHE_PAGE); i < last; i++) {
		while (o->st[i] == P_INFLIGHT)
			pthread_cond_wait(&o->changed, &o->lock);
		if (o->st[i] == P_EMPTY) {
			pthread_mutex_unlock(&o->lock);
			return MFS_ENODATA;
		}
	}
	pthread_mutex_unlock(&o->lock);
	if (full_pread(o->dfd, dst, len, off))
		return eb_set(eb, MFS_EIO, "reading the data cache: %s",
			      errno ? strerror(errno) : "short read");
	return MFS_OK;
}

/* ---- streams ---- */

enum mfs_err dstream_new(struct dobj *o, uint64_t off, uint64_t end,
			 uint64_t reader_end, uint64_t lead, uint64_t cut,
			 struct dstream **out, uint64_t *roff, uint64_t *rlen)
{
	struct dstream *s;
	enum mfs_err rc;

	*out = NULL;
	if (end > o->size)
		end = o->size;
	if (off >= end)
		return MFS_ENODATA;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->buf = malloc(STREAM_BUF))) {
		free(s);
		return MFS_ENOMEM;
	}
	s->o = o;
	s->lead = lead;
	s->cut = cut > STREAM_BUF ? cut : STREAM_BUF;
	pthread_mutex_lock(&o->lock);
	rc = claim_locked(o, off, end, SIZE_MAX, roff, rlen);
	if (!rc) {
		s->pos = s->fill_end = *roff;
		s->end = *roff + *rlen;
		s->reader_end = reader_end;
		s->next = o->streams;
		o->streams = s;
	}
	pthread_mutex_unlock(&o->lock);
	if (rc) {
		free(s->buf);
		free(s);
		return rc;
	}
	*out = s;
	return MFS_OK;
}

/* Fill the gathered bytes from s->pos on: whole pages, or all of them
 * when they complete the run or with last (the request ended; a partial
 * page is given back). Unless they complete the run, holds first while the
 * stream is lead bytes ahead of its readers. MFS_ENODATA when stopped. */
static enum mfs_err flush(struct dstream *s, int last, struct errbuf *eb)
{
	struct dobj *o = s->o;
	uint64_t at;
	size_t n;
	enum mfs_err rc;

	pthread_mutex_lock(&o->lock);
	while (!last && !s->stop && s->pos + s->nbuf < s->end &&
	       s->pos >= s->reader_end + s->lead) {
		s->paused = 1;
		pthread_cond_wait(&o->changed, &o->lock);
	}
	s->paused = 0;
	if (!last && s->stop) {
		pthread_mutex_unlock(&o->lock);
		return eb_set(eb, MFS_ENODATA, "stream stopped");
	}
	n = s->nbuf;
	if (n >= s->end - s->pos)	/* the rest of the run (cut or not) */
		n = (size_t)(s->end - s->pos);
	else if (!last)
		n -= n % DCACHE_PAGE;
	at = s->pos;
	s->fill_end = at + n;
	pthread_mutex_unlock(&o->lock);
	if (!n)
		return MFS_OK;
	rc = dobj_fill(o, at, n, s->buf, n, eb);
	pthread_mutex_lock(&o->lock);
	s->pos = at + n;
	pthread_mutex_unlock(&o->lock);
	memmove(s->buf, s->buf + n, s->nbuf - n);
	s->nbuf -= n;
	return rc;
}

enum mfs_err dstream_put(struct dstream *s, const char *p, size_t n,
			 struct errbuf *eb)
{
	struct dobj *o = s->o;
	uint64_t want;
	enum mfs_err rc;
	size_t k;
	int stop;

	for (;;) {
		pthread_mutex_lock(&o->lock);
		stop = s->stop;
		want = s->end > s->pos + s->nbuf ?
		       s->end - s->pos - s->nbuf : 0;
		pthread_mutex_unlock(&o->lock);
		if (stop)
			return eb_set(eb, MFS_ENODATA, "stream stopped");
		if (!n)
			return MFS_OK;
		if (!want)	/* more than the run (cut meanwhile) */
			return eb_set(eb, MFS_ENODATA, "stream cut");
		k = STREAM_BUF - s->nbuf;
		if (k > n)
			k = n;
		if (k > want)
			k = (size_t)want;
		memcpy(s->buf + s->nbuf, p, k);
		s->nbuf += k;
		p += k;
		n -= k;
		if ((s->nbuf == STREAM_BUF || k == want) &&
		    (rc = flush(s, 0, eb)))
			return rc;
	}
}

void dstream_stop(struct dstream *s)
{
	pthread_mutex_lock(&s->o->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->o->changed);
	pthread_mutex_unlock(&s->o->lock);
}

void dstream_end(struct dstream *s)
{
	struct dobj *o;
	struct dstream **pp;
	struct errbuf eb = { 0 };

	if (!s)
		return;
	o = s->o;
	if (s->nbuf && flush(s, 1, &eb))
		log_warn("%s", eb.msg);
	pthread_mutex_lock(&o->lock);
	for (pp = &o->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&o->lock);
	/* unregistered: no cut moves s->end any more */
	if (s->pos < s->end)
		dobj_fail(o, s->pos, (size_t)(s->end - s->pos));
	free(s->buf);
	free(s);
}
