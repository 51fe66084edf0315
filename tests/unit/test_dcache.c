/* test_dcache.c - the data cache: page claims (no range handed out twice,
 * also to concurrent claimers), fills and failures, reads that wait for
 * in-flight pages, streams (in-order fills, holding for their readers, cut
 * by a read far ahead, stopped), persistence across a reopen of the cache,
 * invalidation by a new ETag, anonymous objects, peeks at what is there (no
 * fetch, no new entry), the LRU size bound, and prefetch's reads of an
 * object shorter on the server than its listed size (#15.53). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "core/dcache.h"
#include "core/prefetch.h"
#include "unit.h"

TEST_MAIN("test_dcache")

#define P DCACHE_PAGE

static char tmpl[] = "/tmp/test_dcache.XXXXXX";

static char *pattern(size_t n, int seed)
{
	char *b = malloc(n);
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (char)(i * 7 + (size_t)seed);
	return b;
}

static void test_claims(struct dcache *dc)
{
	struct dobj *o, *o2;
	uint64_t off;
	size_t len;
	char *data = pattern(10 * P + 100, 1), buf[3 * P];

	CASE("claims");
	CHECK(!dcache_open(dc, "r/claims", "e1", 10 * P + 100, &o, NULL));
	CHECK(!dcache_open(dc, "r/claims", "e1", 10 * P + 100, &o2, NULL));
	CHECK(o == o2);		/* handles share one record */
	dcache_close(o2);
	/* a claim rounds outward to pages */
	CHECK(!dobj_claim(o, 100, 200, SIZE_MAX, &off, &len));
	CHECK(off == 0 && len == P);
	/* in flight: not handed out again */
	CHECK(dobj_claim(o, 0, P, SIZE_MAX, &off, &len) == MFS_ENODATA);
	CHECK(dobj_have(o, 0) && !dobj_have(o, P));
	CHECK(dobj_frontier(o, 0) == P);
	/* the next claim skips the in-flight page; max caps it */
	CHECK(!dobj_claim(o, 0, 6 * P, 2 * P, &off, &len));
	CHECK(off == P && len == 2 * P);
	CHECK(!dobj_fill(o, 0, P, data, P, NULL));
	CHECK(!dobj_fill(o, P, 2 * P, data + P, 2 * P, NULL));
	CHECK(dobj_frontier(o, 0) == 3 * P);
	CHECK(!dobj_read(o, 10, 3 * P - 10, buf, NULL));
	CHECK(!memcmp(buf, data + 10, 3 * P - 10));
	/* a failed fetch leaves its pages empty for the next claimer */
	CHECK(!dobj_claim(o, 3 * P, 4 * P, SIZE_MAX, &off, &len));
	dobj_fail(o, off, len);
	CHECK(!dobj_have(o, 3 * P));
	CHECK(dobj_read(o, 3 * P, 10, buf, NULL) == MFS_ENODATA);
	/* the last page is short: a claim ends at the size */
	CHECK(!dobj_claim(o, 10 * P, 11 * P, SIZE_MAX, &off, &len));
	CHECK(off == 10 * P && len == 100);
	CHECK(!dobj_fill(o, off, len, data + off, len, NULL));
	CHECK(!dobj_read(o, 10 * P + 50, 50, buf, NULL));
	CHECK(!memcmp(buf, data + 10 * P + 50, 50));
	CHECK(dobj_frontier(o, 10 * P) == 10 * P + 100);
	dcache_close(o);
	free(data);
}

struct racer {
	struct dobj *o;
	uint64_t claimed;	/* bytes this thread claimed */
	const char *data;
	int bad;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	uint64_t off;
	size_t len;
	char buf[P];
	uint64_t i;

	/* claim small runs all over, fill them, then read everything */
	for (i = 0; i < 256; i += 3)
		while (!dobj_claim(r->o, i * P, (i + 5) * P, 2 * P, &off,
				   &len)) {
			r->claimed += len;
			if (dobj_fill(r->o, off, len, r->data + off, len,
				      NULL))
				r->bad = 1;
		}
	for (i = 0; i < 256; i++) {
		while (!dobj_claim(r->o, i * P, (i + 1) * P, P, &off, &len)) {
			r->claimed += len;
			dobj_fill(r->o, off, len, r->data + off, len, NULL);
		}
		if (dobj_read(r->o, i * P, P, buf, NULL) ||
		    memcmp(buf, r->data + i * P, P))
			r->bad = 1;
	}
	return NULL;
}

static void test_concurrent(struct dcache *dc)
{
	struct racer r[4];
	pthread_t t[4];
	struct dobj *o;
	uint64_t total = 0;
	char *data = pattern(256 * P, 3);
	int i, bad = 0;

	CASE("concurrent claims");
	CHECK(!dcache_open(dc, "r/race", "e", 256 * P, &o, NULL));
	for (i = 0; i < 4; i++) {
		r[i] = (struct racer){ .o = o, .data = data };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += r[i].claimed;
		bad |= r[i].bad;
	}
	CHECK(!bad);
	CHECK(total == 256 * P);	/* every page claimed exactly once */
	dcache_close(o);
	free(data);
}

/* A stream fills its run in order: pieces of any size, whole pages
 * become readable as they come; what never came is EMPTY again. */
static void test_stream_fill(struct dcache *dc)
{
	size_t size = 100 * P + 100, at, k;
	char *data = pattern(size, 5), *buf = malloc(size);
	struct dstream *s;
	struct dobj *o;
	uint64_t off, len;
	size_t clen;

	CASE("stream fill");
	CHECK(!dcache_open(dc, "r/stream", "e", size, &o, NULL));
	/* page 0 is someone else's: the run starts after it */
	CHECK(!dobj_claim(o, 0, P, P, &off, &clen));
	CHECK(!dobj_fill(o, 0, P, data, P, NULL));
	CHECK(!dstream_new(o, 0, size, size, 64 * P, 128 * P, &s, &off,
			   &len));
	CHECK(off == P && len == size - P);
	CHECK(dobj_claim(o, 0, size, SIZE_MAX, &off, &clen) == MFS_ENODATA);
	for (at = P; at < size; at += k) {
		k = at % 3 ? 10007 : 70001;
		if (k > size - at)
			k = size - at;
		CHECK(!dstream_put(s, data + at, k, NULL));
	}
	CHECK(!dstream_put(s, NULL, 0, NULL));	/* a poll: go on */
	CHECK(dstream_put(s, data, 1, NULL) == MFS_ENODATA); /* too much */
	dstream_end(s);
	CHECK(!dobj_read(o, 0, size, buf, NULL));
	CHECK(!memcmp(buf, data, size));
	dcache_close(o);

	/* a stream that breaks after 30 pages and a bit keeps the whole
	 * pages it got; the rest can be claimed again */
	CHECK(!dcache_open(dc, "r/stream2", "e", size, &o, NULL));
	CHECK(!dstream_new(o, 0, size, size, 64 * P, 128 * P, &s, &off,
			   &len));
	CHECK(!dstream_put(s, data, 30 * P + 10, NULL));
	dstream_end(s);
	CHECK(!dobj_read(o, 0, 30 * P, buf, NULL));
	CHECK(!memcmp(buf, data, 30 * P));
	CHECK(!dobj_claim(o, 0, size, SIZE_MAX, &off, &clen));
	CHECK(off == 30 * P && clen == size - 30 * P);
	dobj_fail(o, off, clen);
	dcache_close(o);
	free(data);
	free(buf);
}

struct feeder {
	struct dstream *s;
	const char *data;
	size_t size;
	size_t handed;		/* atomic: bytes taken by dstream_put */
	enum mfs_err rc;	/* of the last put */
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	size_t at = 0, k;

	while (at < f->size) {
		k = f->size - at < 5000 ? f->size - at : 5000;
		f->rc = dstream_put(f->s, f->data + at, k, NULL);
		if (f->rc)
			break;
		at += k;
		__atomic_store_n(&f->handed, at, __ATOMIC_RELEASE);
	}
	return NULL;
}

static size_t handed(struct feeder *f)
{
	return __atomic_load_n(&f->handed, __ATOMIC_ACQUIRE);
}

/* Wait until f has taken nothing more for 100 ms (it holds), at most 6 s. */
static void settle(struct feeder *f)
{
	size_t last = SIZE_MAX;
	int i;

	for (i = 0; i < 60 && handed(f) != last; i++) {
		last = handed(f);
		usleep(100000);
	}
}

/* Its readers steer a stream: it holds lead bytes ahead of them, a read
 * far ahead takes the rest of the run away, dstream_stop ends it. */
static void test_stream_steer(struct dcache *dc)
{
	size_t size = 512 * P, clen;
	char *data = pattern(size, 9), buf[P];
	struct feeder f = { 0 };
	struct dobj *o;
	uint64_t off, len, lead = 64 * P, cut = 128 * P, i;
	pthread_t t;
	int bad = 0;

	CASE("stream steer");
	CHECK(!dcache_open(dc, "r/steer", "e", size, &o, NULL));
	CHECK(!dstream_new(o, 0, size, 0, lead, cut, &f.s, &off, &len));
	f.data = data;
	f.size = size;
	pthread_create(&t, NULL, feed, &f);
	/* no reader yet: it fills 256 KiB (64 pages, >= lead), gathers the
	 * next 256 KiB and holds */
	settle(&f);
	CHECK(handed(&f) < 128 * P);
	/* a read moves it on (to 64 pages past the read, then the next
	 * multiple of 64: at most 192) */
	CHECK(!dobj_read(o, 100 * P, P, buf, NULL));
	CHECK(!memcmp(buf, data + 100 * P, P));
	settle(&f);
	CHECK(handed(&f) < 256 * P);
	/* a read far ahead of it (450 >= 192 + 128 pages) takes the rest of
	 * the run: those pages are EMPTY, the reader fetches its own */
	CHECK(dobj_read(o, 450 * P, P, buf, NULL) == MFS_ENODATA);
	CHECK(!dobj_claim(o, 450 * P, 451 * P, P, &off, &clen));
	CHECK(off == 450 * P && clen == P);
	CHECK(!dobj_fill(o, off, clen, data + off, clen, NULL));
	/* the pages before the cut come from the stream, as read */
	for (i = 101; i < 450; i++)
		if (dobj_read(o, i * P, P, buf, NULL) ||
		    memcmp(buf, data + i * P, P))
			bad = 1;
	CHECK(!bad);
	pthread_join(t, NULL);
	CHECK(f.rc == MFS_ENODATA);	/* the run ended at the cut */
	dstream_end(f.s);
	CHECK(!dobj_claim(o, 0, size, SIZE_MAX, &off, &clen));
	CHECK(off == 451 * P && clen == size - 451 * P);
	dobj_fail(o, off, clen);
	dcache_close(o);

	/* stopped while it holds: it ends, keeping what it gathered (64
	 * pages filled, 64 in hand), and the rest is EMPTY */
	CHECK(!dcache_open(dc, "r/steer2", "e", size, &o, NULL));
	CHECK(!dstream_new(o, 0, size, 0, lead, cut, &f.s, &off, &len));
	f.handed = 0;
	pthread_create(&t, NULL, feed, &f);
	settle(&f);
	dstream_stop(f.s);
	pthread_join(t, NULL);
	CHECK(f.rc == MFS_ENODATA);
	dstream_end(f.s);
	CHECK(!dobj_claim(o, 0, size, SIZE_MAX, &off, &clen));
	CHECK(off <= 128 * P && off % P == 0 && off + clen == size);
	dobj_fail(o, off, clen);
	dcache_close(o);
	free(data);
}

static void test_persist(const char *dir)
{
	struct dcache *dc;
	struct dobj *o;
	uint64_t off, used, limit;
	size_t len;
	char *data = pattern(8 * P, 5), buf[P];

	CASE("persistence");
	CHECK(!dcache_new(dir, 1 << 20, &dc, NULL));
	CHECK(!dcache_open(dc, "r/keep", "v1", 8 * P, &o, NULL));
	CHECK(!dobj_claim(o, 0, 8 * P, SIZE_MAX, &off, &len));
	CHECK(!dobj_fill(o, off, len, data, len, NULL));
	dcache_close(o);
	dcache_usage(dc, &used, &limit);
	CHECK(used >= 8 * P && limit == 1 << 20);
	dcache_free(dc);

	/* a new cache on the same directory (a remount) has it */
	CHECK(!dcache_new(dir, 1 << 20, &dc, NULL));
	dcache_usage(dc, &used, &limit);
	CHECK(used >= 8 * P);
	CHECK(!dcache_open(dc, "r/keep", "v1", 8 * P, &o, NULL));
	CHECK(dobj_frontier(o, 0) == 8 * P);
	CHECK(dobj_claim(o, 0, 8 * P, SIZE_MAX, &off, &len) == MFS_ENODATA);
	CHECK(!dobj_read(o, 5 * P, P, buf, NULL));
	CHECK(!memcmp(buf, data + 5 * P, P));
	dcache_close(o);

	/* another ETag: nothing of the old version is served */
	CASE("invalidation");
	CHECK(!dcache_open(dc, "r/keep", "v2", 8 * P, &o, NULL));
	CHECK(!dobj_have(o, 0) && dobj_frontier(o, 0) == 0);
	CHECK(dobj_read(o, 0, 10, buf, NULL) == MFS_ENODATA);
	dcache_close(o);
	CHECK(!dcache_open(dc, "r/keep", "v1", 8 * P, &o, NULL));
	CHECK(!dobj_have(o, 0));
	dcache_close(o);

	/* no ETag: kept only while open */
	CASE("anonymous");
	CHECK(!dcache_open(dc, "r/anon", "", 2 * P, &o, NULL));
	CHECK(!dobj_claim(o, 0, 2 * P, SIZE_MAX, &off, &len));
	CHECK(!dobj_fill(o, off, len, data, len, NULL));
	CHECK(!dobj_read(o, 0, P, buf, NULL) && !memcmp(buf, data, P));
	dcache_close(o);
	CHECK(!dcache_open(dc, "r/anon", "", 2 * P, &o, NULL));
	CHECK(!dobj_have(o, 0));
	dcache_close(o);
	dcache_free(dc);
	free(data);
}

static void test_bound(const char *dir)
{
	struct dcache *dc;
	struct dobj *o;
	uint64_t off, used, limit;
	size_t len;
	char *data = pattern(16 * P, 9), id[32];
	int i;

	CASE("size bound");
	CHECK(!dcache_new(dir, 40 * P, &dc, NULL));
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "r/lru%d", i);
		CHECK(!dcache_open(dc, id, "e", 16 * P, &o, NULL));
		while (!dobj_claim(o, 0, 16 * P, SIZE_MAX, &off, &len))
			dobj_fill(o, off, len, data + off, len, NULL);
		dcache_close(o);
		dcache_usage(dc, &used, &limit);
		CHECK(used <= limit);
	}
	/* the newest is kept, the oldest went */
	CHECK(!dcache_open(dc, "r/lru9", "e", 16 * P, &o, NULL));
	CHECK(dobj_frontier(o, 0) == 16 * P);
	dcache_close(o);
	CHECK(!dcache_open(dc, "r/lru0", "e", 16 * P, &o, NULL));
	CHECK(!dobj_have(o, 0));
	dcache_close(o);
	/* larger than half the limit: not kept */
	CHECK(!dcache_open(dc, "r/huge", "e", 30 * P, &o, NULL));
	dcache_close(o);
	dcache_usage(dc, &used, &limit);
	CHECK(used <= limit);
	dcache_free(dc);
	free(data);
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* dcache_peek: the first bytes only when they are there (open or kept),
 * never a new entry or a claim. */
static void test_peek(const char *dir)
{
	struct dcache *dc;
	struct dobj *o;
	uint64_t off;
	size_t len, got;
	char *data = pattern(3 * P, 9), buf[2 * P];
	DIR *d;
	struct dirent *e;
	int files = 0;

	CASE("peek");
	CHECK(!dcache_new(dir, 1 << 20, &dc, NULL));
	/* nothing cached: nothing answered, and nothing created */
	CHECK(dcache_peek(dc, "r/pk", "v1", 3 * P, P, buf, &got) ==
	      MFS_ENODATA && got == 0);
	d = opendir(dir);
	while (d && (e = readdir(d)))
		files += e->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECK(files == 0);
	CHECK(!dcache_open(dc, "r/pk", "v1", 3 * P, &o, NULL));
	/* in flight is not there yet */
	CHECK(!dobj_claim(o, 0, P, SIZE_MAX, &off, &len));
	CHECK(dcache_peek(dc, "r/pk", "v1", 3 * P, P, buf, &got) ==
	      MFS_ENODATA);
	CHECK(!dobj_fill(o, off, len, data, len, NULL));
	/* open: its pages answer; more than is there is not answered */
	CHECK(!dcache_peek(dc, "r/pk", "v1", 3 * P, P, buf, &got));
	CHECK(got == P && !memcmp(buf, data, P));
	CHECK(dcache_peek(dc, "r/pk", "v1", 3 * P, 2 * P, buf, &got) ==
	      MFS_ENODATA);
	/* another ETag or size is another version */
	CHECK(dcache_peek(dc, "r/pk", "v2", 3 * P, P, buf, &got) ==
	      MFS_ENODATA);
	CHECK(dcache_peek(dc, "r/pk", "v1", 3 * P + 1, P, buf, &got) ==
	      MFS_ENODATA);
	CHECK(dcache_peek(dc, "r/pk", "", 3 * P, P, buf, &got) ==
	      MFS_ENODATA);
	dcache_close(o);
	/* closed, kept on disk: still there, also after a remount */
	CHECK(!dcache_peek(dc, "r/pk", "v1", 3 * P, P, buf, &got));
	CHECK(got == P && !memcmp(buf, data, P));
	dcache_free(dc);
	CHECK(!dcache_new(dir, 1 << 20, &dc, NULL));
	memset(buf, 0, sizeof(buf));
	CHECK(!dcache_peek(dc, "r/pk", "v1", 3 * P, P, buf, &got));
	CHECK(got == P && !memcmp(buf, data, P));
	CHECK(dcache_peek(dc, "r/pk", "v2", 3 * P, P, buf, &got) ==
	      MFS_ENODATA);
	/* a small object: capped at its size */
	CHECK(!dcache_open(dc, "r/small", "s1", 100, &o, NULL));
	CHECK(!dobj_claim(o, 0, 100, SIZE_MAX, &off, &len));
	CHECK(!dobj_fill(o, off, len, data, 100, NULL));
	dcache_close(o);
	CHECK(!dcache_peek(dc, "r/small", "s1", 100, P, buf, &got));
	CHECK(got == 100 && !memcmp(buf, data, 100));
	dcache_free(dc);
	free(data);
}

/* A server whose object is shorter than the size the cache lists (same
 * ETag): 4 pages and 500 bytes, listed as 10 pages and 100. */
static const char *short_obj;
static size_t short_len;
static int short_gets;

static enum mfs_err short_get(struct backend *be, const char *key,
			      uint64_t off, size_t len, const char *etag,
			      char *dst, size_t *got, struct errbuf *eb)
{
	size_t n = off >= short_len ? 0 : short_len - (size_t)off;

	(void)be;
	(void)key;
	(void)etag;
	if (++short_gets > 50)	/* (the hang before #15.53's fix) */
		return eb_set(eb, MFS_EIO, "more than 50 GETs");
	if (n > len)
		n = len;
	memcpy(dst, short_obj + off, n);
	*got = n;
	return MFS_OK;
}

static void test_short_object(struct dcache *dc)
{
	static const struct backend_ops ops = { .get = short_get };
	struct backend be = { .ops = &ops, .name = (char *)"t" };
	struct prefetch *p;
	struct dobj *o;
	char *data = pattern(10 * P + 100, 5), *buf = malloc(10 * P + 100);
	size_t got = 0;
	int before;

	CASE("prefetch: an object shorter than its listed size (#15.53)");
	short_obj = data;
	short_len = 4 * P + 500;
	CHECK(!dcache_open(dc, "r/short", "e1", 10 * P + 100, &o, NULL));
	p = prefetch_new(&be, "k", "e1", o, 1 << 20);
	CHECK(p != NULL);
	if (!p || !buf)
		goto out;
	/* the whole file: what there is, then the end */
	CHECK(!prefetch_read(p, 0, 10 * P + 100, buf, &got, NULL));
	CHECK(got == 4 * P + 500 && !memcmp(buf, data, got));
	CHECK(short_gets == 1);
	/* a read in the partial last page (not kept: fetched again) */
	before = short_gets;
	CHECK(!prefetch_read(p, 4 * P + 100, 1000, buf, &got, NULL));
	CHECK(got == 400 && !memcmp(buf, data + 4 * P + 100, 400));
	CHECK(short_gets - before == 1);
	/* from kept pages into the partial one: an error, not GETs
	 * without end (before the fix: 50 GETs, then the fake's EIO) */
	before = short_gets;
	CHECK(prefetch_read(p, 0, 10 * P, buf, &got, NULL) == MFS_EIO);
	CHECK(short_gets - before <= 3);
	/* past the end: nothing, no GET */
	before = short_gets;
	CHECK(!prefetch_read(p, 6 * P, 100, buf, &got, NULL) && got == 0);
	CHECK(short_gets == before);
out:
	prefetch_free(p);
	free(data);
	free(buf);
}

int main(void)
{
	char *dir = mkdtemp(tmpl), sub[64];
	struct dcache *dc;

	if (!dir)
		return 1;
	snprintf(sub, sizeof(sub), "%s/a", dir);
	CASE("new");
	CHECK(!dcache_new(sub, 0, &dc, NULL));
	test_claims(dc);
	test_concurrent(dc);
	test_stream_fill(dc);
	test_stream_steer(dc);
	test_short_object(dc);
	dcache_free(dc);
	rm_dir(sub);
	snprintf(sub, sizeof(sub), "%s/b", dir);
	test_persist(sub);
	rm_dir(sub);
	snprintf(sub, sizeof(sub), "%s/p", dir);
	test_peek(sub);
	rm_dir(sub);
	snprintf(sub, sizeof(sub), "%s/c", dir);
	test_bound(sub);
	rm_dir(sub);
	rmdir(dir);
	return unit_report();
}
