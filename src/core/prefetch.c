/* prefetch.c - the read path of one open file: what to fetch, and when.
 * The record of fetched and in-flight ranges is the object's struct dobj
 * (core/dcache), shared by every handle on the object, so no range is
 * fetched twice however the kernel orders or interleaves its reads.
 * p->lock guards the fields marked; background fetches own their claimed
 * range and count themselves in p->nbg. Calls: backend, core/dcache.
 *
 * The policy: a first read at offset 0 smaller than FIRST_BLOCK fetches
 * FIRST_BLOCK (a type sniffer reads a few KiB, and is done); a larger one
 * is a stream's (the kernel's first read-ahead of cat, cp, a thumbnailer)
 * and fetches FIRST_STREAM, so a file of up to 1 MiB costs one GET. Other
 * reads fetch what was asked, rounded to pages. A read that starts where
 * one of the last RECENT reads ended is sequential: from such a read on, a
 * window after the data fetched or in flight is fetched in the background
 * when less than a window is left (so two can be in flight), and the
 * window doubles up to max_window. The kernel sends its reads of a stream concurrently and a
 * little out of order: a read that arrives before its predecessor fetches
 * only its own pages and keeps the window (it is near the stream), and a
 * read whose pages are in flight waits for them instead of fetching them
 * again. A random reader's reads start where no read ended: they fetch
 * what they ask, nothing ahead.
 *
 * On a backend that can stream (ops->get_stream), the first read-ahead of
 * a confirmed stream with more than max_window left starts one request for
 * the rest of the object instead (a struct dstream of core/dcache): its
 * bytes fill the data cache and wake the waiting reads as they arrive, it
 * holds while max_window ahead of the reads, and a seek far ahead takes the
 * rest from it. One stream per handle; while it runs, windows still fill
 * what it does not cover (after such a seek). A stream that breaks ends:
 * its readers fetch what it did not bring, and the next read-ahead starts
 * another from there.
 */
#include "core/prefetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/deadline.h"
#include "common/log.h"

#define FIRST_BLOCK (64 * 1024)
#define FIRST_STREAM (1024 * 1024)
#define MIN_WINDOW (256 * 1024)
#define RECENT 8
#define MIN_LEAD (1024 * 1024)		/* a stream's lead, at least */
#define MIN_CUT (16 * 1024 * 1024)	/* a seek this far ahead of a
					 * stream cuts it, at least */

struct prefetch {
	struct backend *be;
	char *key;
	char *etag;
	struct dobj *o;		/* owned reference */
	uint64_t size;
	size_t max_window;

	pthread_mutex_t lock;
	pthread_cond_t idle;	/* nbg dropped */
	int nbg;		/* lock: background fetches running */
	int noroom;		/* lock: the data cache could not keep a
				 * fetch (its disk is full): no read-ahead,
				 * no stream, each read fetches its own bytes
				 * (before: 205 GETs and 46x the bytes of a
				 * 20 MB read, a review) */
	int nreads;		/* lock: reads so far */
	uint64_t ends[RECENT];	/* lock: where recent reads ended */
	size_t window;		/* lock: read-ahead window, 0 = none yet */
	uint64_t eof;		/* lock: where the server's object ended
				 * short of size (size when it did not) */
	struct dstream *stream;	/* lock: the running stream, or NULL */
	int stop;		/* lock: closing: streams end */
};

struct job {
	struct prefetch *p;
	uint64_t off;
	size_t len;
	long limit_ms;		/* op_timeout of the read that started it */
};

struct prefetch *prefetch_new(struct backend *be, const char *key,
			      const char *etag, struct dobj *o,
			      size_t max_window)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	if (!p) {
		dcache_close(o);
		return NULL;
	}
	p->be = be;
	p->o = o;
	p->key = strdup(key);
	p->etag = strdup(etag ? etag : "");
	p->size = dobj_size(o);
	p->eof = p->size;
	p->max_window = max_window < MIN_WINDOW ? MIN_WINDOW : max_window;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (!p->key || !p->etag) {
		prefetch_free(p);
		return NULL;
	}
	return p;
}

/* The data cache could not keep a fetch (ENOSPC): said once a handle. */
static void no_room(struct prefetch *p, const struct errbuf *eb)
{
	int first;

	pthread_mutex_lock(&p->lock);
	first = !p->noroom;
	p->noroom = 1;
	pthread_mutex_unlock(&p->lock);
	if (first)
		log_warn("%s; reading %s without the data cache, no read-ahead",
			 eb && eb->msg[0] ? eb->msg : "the data cache is full",
			 p->key);
}

/* Fetch a claimed range into the object's record. When the record cannot
 * store it (the cache's disk is full) and the range holds all of the
 * reader's [roff, roff + rlen), the reader's bytes are copied to dst and
 * *served set: a full disk costs speed, not the read. A short answer (the
 * object ends before its listed size) serves a reader that starts in the
 * range the same way, up to the end: the record keeps whole pages only,
 * so the last, partial one would be fetched again and again (#15.53). */
static enum mfs_err fetch(struct prefetch *p, uint64_t off, size_t len,
			  uint64_t roff, size_t rlen, char *dst, int *served,
			  struct errbuf *eb)
{
	char *buf = malloc(len ? len : 1);
	size_t got = 0;
	enum mfs_err rc;
	int quiet = 0;

	if (!buf) {
		dobj_fail(p->o, off, len);
		return MFS_ENOMEM;
	}
	rc = p->be->ops->get(p->be, p->key, off, len, p->etag, buf, &got,
			     eb);
	if (rc) {
		dobj_fail(p->o, off, len);
	} else {
		if (got < len) {	/* shorter than listed */
			pthread_mutex_lock(&p->lock);
			if (off + got < p->eof)
				p->eof = off + got;
			pthread_mutex_unlock(&p->lock);
		}
		rc = dobj_fill(p->o, off, len, buf, got, eb);
		if (rc == MFS_ENOSPC) {
			no_room(p, eb);
			quiet = 1;
		}
		if (!rc && got < len && dst && roff >= off) {
			if (roff < off + got)
				memcpy(dst, buf + (roff - off),
				       rlen < off + got - roff ?
				       rlen : (size_t)(off + got - roff));
			*served = 1;
		} else if (rc && dst && roff >= off && roff + rlen <= off + got) {
			if (!quiet)
				log_warn("%s; reading %s without the data cache",
					 eb ? eb->msg : "data cache", p->key);
			memcpy(dst, buf + (roff - off), rlen);
			*served = 1;
			rc = MFS_OK;
		}
	}
	free(buf);
	return rc;
}

static void *fetcher(void *arg)
{
	struct job *j = arg;
	struct prefetch *p = j->p;
	struct errbuf eb = { 0 };

	deadline_start(j->limit_ms);	/* as the read that started it */
	/* a failure leaves the pages EMPTY: the reader that needs them
	 * fetches them itself and sees the error */
	if (fetch(p, j->off, j->len, 0, 0, NULL, NULL, &eb))
		log_dbg(LOG_SUB_CACHE, "read-ahead of %s at %llu: %s", p->key,
			  (unsigned long long)j->off, eb.msg);
	free(j);
	pthread_mutex_lock(&p->lock);
	p->nbg--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct sjob {
	struct prefetch *p;
	struct dstream *s;
	uint64_t off, len;	/* the run requested */
	uint64_t got;		/* bytes handed over */
	long limit_ms;
};

static enum mfs_err stream_sink(void *ud, const char *d, size_t n,
				struct errbuf *eb)
{
	struct sjob *j = ud;

	j->got += n;
	return dstream_put(j->s, d, n, eb);
}

static void *streamer(void *arg)
{
	struct sjob *j = arg;
	struct prefetch *p = j->p;
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	deadline_start(j->limit_ms);	/* moved on by every piece */
	rc = p->be->ops->get_stream(p->be, p->key, j->off, j->len, p->etag,
				    stream_sink, j, &eb);
	if (rc == MFS_ENOSPC)
		no_room(p, &eb);
	pthread_mutex_lock(&p->lock);
	if (!rc && j->got < j->len && j->off + j->got < p->eof)
		p->eof = j->off + j->got;	/* shorter than listed */
	p->stream = NULL;
	pthread_mutex_unlock(&p->lock);
	if (rc && rc != MFS_ENODATA)
		log_dbg(LOG_SUB_CACHE, "stream of %s at %llu ended after %llu bytes: %s",
			p->key, (unsigned long long)j->off,
			(unsigned long long)j->got, eb.msg);
	/* what did not come is EMPTY again: its readers fetch it */
	dstream_end(j->s);
	free(j);
	pthread_mutex_lock(&p->lock);
	p->nbg--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start fn(arg) on a detached thread; 0 when it runs, -1 when no thread
 * could be made (the caller then takes the work back). */
static int spawn_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int made = 0;

	if (!pthread_attr_init(&a)) {
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		made = !pthread_create(&t, &a, fn, arg);
		pthread_attr_destroy(&a);
	}
	return made ? 0 : -1;
}

/* Caller holds p->lock. Start a stream of the run of EMPTY pages from
 * start on, its reader at reader_end. Non-zero when none was started
 * (nothing EMPTY, no memory, no thread). */
static int stream_ahead(struct prefetch *p, uint64_t start,
			uint64_t reader_end)
{
	struct sjob *j = calloc(1, sizeof(*j));
	uint64_t lead = p->max_window < MIN_LEAD ? MIN_LEAD : p->max_window;

	if (!j)
		return -1;
	j->p = p;
	j->limit_ms = deadline_limit_ms();
	if (dstream_new(p->o, start, p->eof, reader_end, lead,
			2 * lead < MIN_CUT ? MIN_CUT : 2 * lead, &j->s, &j->off,
			&j->len)) {
		free(j);
		return -1;
	}
	p->stream = j->s;
	p->nbg++;
	if (spawn_detached(streamer, j)) {
		p->nbg--;
		p->stream = NULL;
		dstream_end(j->s);	/* fetched on demand */
		free(j);
		return -1;
	}
	return 0;
}

/* Caller holds p->lock. Claim the window after start and fetch it in the
 * background (or here, when no thread can be made). */
static void read_ahead(struct prefetch *p, uint64_t start)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return;
	j->p = p;
	j->limit_ms = deadline_limit_ms();
	if (dobj_claim(p->o, start, start + p->window, p->window, &j->off,
		       &j->len)) {
		free(j);
		return;
	}
	p->nbg++;
	if (spawn_detached(fetcher, j)) {
		p->nbg--;
		dobj_fail(p->o, j->off, j->len);	/* fetched on demand */
		free(j);
	}
}

enum mfs_err prefetch_read(struct prefetch *p, uint64_t off, size_t len,
			   char *dst, size_t *got, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	uint64_t want_end, roff, eof;
	size_t rlen;
	int seq, near, tries, i, served = 0, shorts = 0;

	*got = 0;
	pthread_mutex_lock(&p->lock);
	eof = p->eof;
	if (off >= eof) {
		pthread_mutex_unlock(&p->lock);
		return MFS_OK;
	}
	if (len > eof - off)
		len = (size_t)(eof - off);
	seq = near = 0;
	for (i = 0; i < RECENT && i < p->nreads; i++) {
		seq |= off == p->ends[i];
		near |= off + p->max_window >= p->ends[i] &&
			off <= p->ends[i] + p->max_window;
	}
	want_end = off + len;
	if (p->noroom)
		seq = 0;	/* nothing ahead: it could not be kept */
	else if (!p->nreads && !off)	/* a sniffer's read, or a stream's */
		want_end = len < FIRST_BLOCK ? FIRST_BLOCK :
			   len < FIRST_STREAM ? FIRST_STREAM : want_end;
	if (want_end > eof)
		want_end = eof;
	p->ends[p->nreads % RECENT] = off + len;
	p->nreads++;
	if (!seq) {
		/* a stream's reads out of order keep its window */
		if (!near)
			p->window = 0;
	} else {
		uint64_t start = dobj_frontier(p->o, off);

		if (!p->window)
			p->window = MIN_WINDOW;
		if (start < want_end)
			start = want_end;
		if (start < eof && start - (off + len) < p->window &&
		    (!p->be->ops->get_stream || p->stream || p->stop ||
		     eof - start <= p->max_window ||
		     stream_ahead(p, start, off + len))) {
			read_ahead(p, start);
			if (p->window < p->max_window)
				p->window *= 2;
			if (p->window > p->max_window)
				p->window = p->max_window;
		}
	}
	pthread_mutex_unlock(&p->lock);

	for (tries = 0; tries < 8; tries++) {
		while (!rc && !served &&
		       !dobj_claim(p->o, off, want_end, SIZE_MAX, &roff, &rlen)) {
			rc = fetch(p, roff, rlen, off, len, dst, &served, eb);
			pthread_mutex_lock(&p->lock);
			eof = p->eof;
			pthread_mutex_unlock(&p->lock);
			if (rc || served || eof >= roff + rlen)
				continue;
			/* the object ended inside the range: claim no
			 * further (pages past its end stay empty); a reader
			 * that starts before the range and ends in its
			 * partial last page cannot be served from whole
			 * pages: EIO, not fetches without end (#15.53) */
			if (want_end > eof)
				want_end = eof;
			if (shorts++)
				rc = eb_set(eb, MFS_EIO,
					    "%s on the server is shorter (%llu bytes) than its listed size (%llu)",
					    p->key, (unsigned long long)eof,
					    (unsigned long long)p->size);
		}
		if (rc)
			return rc;
		pthread_mutex_lock(&p->lock);
		eof = p->eof;
		pthread_mutex_unlock(&p->lock);
		if (served) {
			/* (a short fetch served up to the object's end) */
			*got = off >= eof ? 0 : len > eof - off ?
			       (size_t)(eof - off) : len;
			return MFS_OK;
		}
		if (off >= eof)
			return MFS_OK;
		if (len > eof - off)
			len = (size_t)(eof - off);
		rc = dobj_read(p->o, off, len, dst, eb);
		if (rc != MFS_ENODATA)
			break;
		rc = MFS_OK;	/* a read-ahead failed: fetch it here */
	}
	if (rc == MFS_ENODATA)
		return eb_set(eb, MFS_EIO, "read of %s at %llu kept failing",
			      p->key, (unsigned long long)off);
	if (!rc)
		*got = len;
	return rc;
}

void prefetch_free(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	if (p->stream)
		dstream_stop(p->stream);
	while (p->nbg)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	dcache_close(p->o);
	free(p->key);
	free(p->etag);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->idle);
	free(p);
}
