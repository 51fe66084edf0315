/* prefetch.c - read windows with one background fetch ahead.
 * lock guards every field below it; the background thread owns its
 * struct window while state == W_FETCHING and publishes under lock, then
 * signals done. Calls: backend.
 */
#include "core/prefetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/deadline.h"
#include "common/log.h"

#define MIN_WINDOW (256 * 1024)

enum wstate { W_EMPTY, W_FETCHING, W_READY };

struct window {
	uint64_t off;
	size_t len;		/* bytes valid in data */
	size_t want;		/* bytes asked for */
	char *data;
	size_t cap;
	enum wstate state;
	enum mfs_err rc;
	struct errbuf eb;
};

struct prefetch {
	struct backend *be;
	char *key;
	char *etag;
	uint64_t size;
	size_t max_window;

	pthread_mutex_t lock;
	pthread_cond_t done;	/* next.state left W_FETCHING */
	/* The kernel sends async reads slightly out of order, so the window
	 * just passed (prev) is kept as well as the current one. */
	struct window prev;	/* guarded by lock */
	struct window cur;	/* guarded by lock */
	struct window next;	/* guarded by lock, owned by the fetcher
				 * while W_FETCHING */
	pthread_t thread;	/* valid while thread_live */
	int thread_live;	/* guarded by lock */
	uint64_t hi;		/* guarded by lock: highest end read so far */
	size_t window;		/* guarded by lock: current window size */
	long limit_ms;		/* guarded by lock: op_timeout of the read
				 * that started the fetch, for the fetcher */
};

struct prefetch *prefetch_new(struct backend *be, const char *key,
			      const char *etag, uint64_t size,
			      size_t max_window)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->be = be;
	p->key = strdup(key);
	p->etag = strdup(etag ? etag : "");
	p->size = size;
	p->max_window = max_window < MIN_WINDOW ? MIN_WINDOW : max_window;
	p->window = MIN_WINDOW;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	if (!p->key || !p->etag) {
		prefetch_free(p);
		return NULL;
	}
	return p;
}

static enum mfs_err fill(struct prefetch *p, struct window *w)
{
	if (w->cap < w->want) {
		char *d = realloc(w->data, w->want);

		if (!d)
			return MFS_ENOMEM;
		w->data = d;
		w->cap = w->want;
	}
	eb_clear(&w->eb);
	return p->be->ops->get(p->be, p->key, w->off, w->want, p->etag,
			       w->data, &w->len, &w->eb);
}

static void *fetcher(void *arg)
{
	struct prefetch *p = arg;
	struct window *w = &p->next;
	enum mfs_err rc;

	pthread_mutex_lock(&p->lock);
	deadline_start(p->limit_ms);	/* as the read that started it */
	pthread_mutex_unlock(&p->lock);
	rc = fill(p, w);

	pthread_mutex_lock(&p->lock);
	w->rc = rc;
	w->state = W_READY;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Caller holds lock. Wait for a background fetch and reap its thread. */
static void settle(struct prefetch *p)
{
	while (p->next.state == W_FETCHING)
		pthread_cond_wait(&p->done, &p->lock);
	if (p->thread_live) {
		pthread_join(p->thread, NULL);
		p->thread_live = 0;
	}
}

static void swap(struct window *a, struct window *b)
{
	struct window t = *a;

	*a = *b;
	*b = t;
}

static size_t clip(const struct prefetch *p, uint64_t off, size_t want)
{
	if (off >= p->size)
		return 0;
	return p->size - off < want ? (size_t)(p->size - off) : want;
}

/* Caller holds lock. Start fetching the window after cur. */
static void start_next(struct prefetch *p)
{
	uint64_t off = p->cur.off + p->cur.len;
	size_t want = clip(p, off, p->window);

	if (!want || p->next.state != W_EMPTY)
		return;
	p->next.off = off;
	p->next.want = want;
	p->next.len = 0;
	p->next.state = W_FETCHING;
	p->limit_ms = deadline_limit_ms();
	if (pthread_create(&p->thread, NULL, fetcher, p)) {
		p->next.state = W_EMPTY;	/* fall back to sync reads */
		return;
	}
	p->thread_live = 1;
}

static int covers(const struct window *w, uint64_t off)
{
	return w->state == W_READY && !w->rc && off >= w->off &&
	       off < w->off + w->len;
}

/* Caller holds lock: the ready window holding off, or NULL. */
static struct window *find(struct prefetch *p, uint64_t off)
{
	if (covers(&p->cur, off))
		return &p->cur;
	if (covers(&p->prev, off))
		return &p->prev;
	if (p->next.state == W_FETCHING && off >= p->next.off &&
	    off < p->next.off + p->next.want)
		settle(p);
	if (covers(&p->next, off)) {
		/* advance: prev <- cur <- next, next reuses prev's buffer */
		swap(&p->prev, &p->cur);
		swap(&p->cur, &p->next);
		p->next.state = W_EMPTY;
		return &p->cur;
	}
	return NULL;
}

enum mfs_err prefetch_read(struct prefetch *p, uint64_t off, size_t len,
			   char *dst, size_t *got, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	uint64_t slack;
	int sequential;
	size_t done = 0;

	*got = 0;
	len = clip(p, off, len);
	if (!len)
		return MFS_OK;
	pthread_mutex_lock(&p->lock);
	/* near the furthest point read so far counts as sequential */
	slack = p->window > 2 * 1024 * 1024 ? p->window : 2 * 1024 * 1024;
	sequential = off == 0 || (off + slack >= p->hi && off <= p->hi + slack);
	while (done < len && !rc) {
		uint64_t o = off + done;
		struct window *w = find(p, o);
		size_t n;

		if (!w) {
			/* miss: fetch synchronously into cur */
			settle(p);
			p->next.state = W_EMPTY;
			if (!sequential)
				p->window = MIN_WINDOW;
			swap(&p->prev, &p->cur);
			p->cur.off = o;
			p->cur.want = clip(p, o, p->window > len - done ?
					   p->window : len - done);
			p->cur.state = W_FETCHING;
			rc = fill(p, &p->cur);
			p->cur.state = W_READY;
			p->cur.rc = rc;
			if (rc) {
				if (eb)
					*eb = p->cur.eb;
				break;
			}
			if (!p->cur.len)
				break;	/* object shorter than cached */
			w = &p->cur;
		}
		n = (size_t)(w->off + w->len - o);
		if (n > len - done)
			n = len - done;
		memcpy(dst + done, w->data + (o - w->off), n);
		done += n;
	}
	if (!rc && sequential && p->cur.state == W_READY &&
	    p->next.state == W_EMPTY) {
		if (p->window < p->max_window)
			p->window *= 2;
		start_next(p);
	}
	if (p->next.state == W_READY && p->next.rc)
		p->next.state = W_EMPTY;  /* retried synchronously if needed */
	if (off + done > p->hi)
		p->hi = off + done;
	*got = done;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void prefetch_free(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	settle(p);
	pthread_mutex_unlock(&p->lock);
	free(p->prev.data);
	free(p->cur.data);
	free(p->next.data);
	free(p->key);
	free(p->etag);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->done);
	free(p);
}
