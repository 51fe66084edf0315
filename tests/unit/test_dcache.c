/* test_dcache.c - the data cache: page claims (no range handed out twice,
 * also to concurrent claimers), fills and failures, reads that wait for
 * in-flight pages, persistence across a reopen of the cache, invalidation
 * by a new ETag, anonymous objects, peeks at what is there (no fetch, no
 * new entry), and the LRU size bound. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "core/dcache.h"
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
