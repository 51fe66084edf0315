/* http.c - libcurl handle pool and one-shot exchanges.
 * pool_lock guards free_handles[]; share_locks[] guard the curl share object
 * (connections, DNS, TLS sessions) as libcurl asks through lock callbacks.
 * Handles are reset, not freed, between uses, so their connections live on.
 */
#include "net/http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/str.h"

#define POOL_MAX 64
#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_HEADERS 128
#define DEFAULT_MAX_BODY (1024 * 1024)
#define SINK_PIECE (256L * 1024)	/* receive buffer of a streamed body */

struct http_client {
	struct http_opts opts;
	char *ca_file;
	char *name;		/* the remote's, for messages */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *free_handles[POOL_MAX];	/* guarded by pool_lock */
	int nfree;			/* guarded by pool_lock */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a,
		       void *ud)
{
	struct http_client *c = ud;

	(void)h;
	(void)a;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct http_client *c = ud;

	(void)h;
	pthread_mutex_unlock(&c->share_locks[data]);
}

struct http_client *http_client_new(const struct http_opts *opts)
{
	struct http_client *c;
	int i;

	pthread_once(&global_once, global_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (opts)
		c->opts = *opts;
	if (!c->opts.connect_timeout_s)
		c->opts.connect_timeout_s = 10;
	if (!c->opts.stall_timeout_s)
		c->opts.stall_timeout_s = 30;
	if (opts && opts->ca_file)
		c->ca_file = strdup(opts->ca_file);
	c->opts.ca_file = c->ca_file;
	if (opts && opts->name)
		c->name = strdup(opts->name);
	c->opts.name = c->name;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	c->share = curl_share_init();
	if (!c->share) {
		http_client_free(c);
		return NULL;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	return c;
}

void http_client_free(struct http_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->nfree; i++)
		curl_easy_cleanup(c->free_handles[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	free(c->ca_file);
	free(c->name);
	free(c);
}

static CURL *take_handle(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->nfree)
		h = c->free_handles[--c->nfree];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void give_handle(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->nfree < POOL_MAX) {
		c->free_handles[c->nfree++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

void http_response_init(struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, DEFAULT_MAX_BODY);
}

void http_response_cleanup(struct http_response *r)
{
	int i;

	for (i = 0; i < r->nhdr; i++) {
		free(r->hdr[i].name);
		free(r->hdr[i].value);
	}
	free(r->hdr);
	buf_cleanup(&r->body);
	memset(r, 0, sizeof(*r));
}

const char *http_header(const struct http_response *r, const char *name)
{
	int i;

	for (i = r->nhdr - 1; i >= 0; i--)
		if (!strcmp(r->hdr[i].name, name))
			return r->hdr[i].value;
	return NULL;
}

struct xfer {
	CURL *h;
	const struct http_request *req;
	struct http_response *resp;
	uint64_t sent;		/* request body bytes handed to curl */
	int no_rewind;		/* the request must not be sent twice */
	uint64_t skip;		/* response bytes still to drop */
	int skip_decided;
	int overflow;		/* body exceeded its cap */
	int read_error;		/* errno from the body file */
	size_t hdr_bytes;
	struct errbuf *eb;	/* http_perform's, for the sink */
	enum mfs_err sink_rc;	/* the sink's error, MFS_OK when none */
};

/* libcurl calls this about once a second, and more often while data
 * flows: a non-zero return aborts the exchange (CURLE_ABORTED_BY_CALLBACK)
 * when the calling operation's caller was interrupted. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	(void)ud;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return deadline_interrupted();
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	struct http_response *r = x->resp;
	size_t len = size * n;
	char *colon, *name, *value, *end;
	struct http_header *nh;

	x->hdr_bytes += len;
	if (x->hdr_bytes > MAX_HEADER_BYTES) {
		x->overflow = 1;
		return 0;
	}
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		/* A new status line (after 100 Continue or a redirect):
		 * forget headers of the previous response. */
		int i;

		for (i = 0; i < r->nhdr; i++) {
			free(r->hdr[i].name);
			free(r->hdr[i].value);
		}
		r->nhdr = 0;
		return len;
	}
	colon = memchr(p, ':', len);
	if (!colon || r->nhdr >= MAX_HEADERS)
		return len;
	name = str_ndup(p, (size_t)(colon - p));
	value = colon + 1;
	end = p + len;
	while (value < end && (*value == ' ' || *value == '\t'))
		value++;
	while (end > value && isspace((unsigned char)end[-1]))
		end--;
	value = str_ndup(value, (size_t)(end - value));
	nh = realloc(r->hdr, sizeof(*nh) * (size_t)(r->nhdr + 1));
	if (!name || !value || !nh) {
		free(name);
		free(value);
		if (nh)
			r->hdr = nh;
		return 0;
	}
	r->hdr = nh;
	for (end = name; *end; end++)
		*end = (char)tolower((unsigned char)*end);
	r->hdr[r->nhdr].name = name;
	r->hdr[r->nhdr].value = value;
	r->nhdr++;
	return len;
}

/* Hand n body bytes to dst or the sink; non-zero when the sink refused
 * them (x->sink_rc says why). */
static int store(struct xfer *x, const char *p, size_t n)
{
	const struct http_request *req = x->req;
	struct http_response *r = x->resp;

	if (!req->sink) {
		memcpy(req->dst + r->dst_len, p, n);
		r->dst_len += n;
		return 0;
	}
	if (!n)
		return 0;
	x->sink_rc = req->sink(req->sink_ud, r, p, n, x->eb);
	if (x->sink_rc)
		return -1;
	r->dst_len += n;
	deadline_progress();	/* bytes arrived; time in sink is not idle */
	return 0;
}

/* A streamed transfer's only time limit: the calling operation's
 * deadline, moved on by every piece (store). */
static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow,
		   curl_off_t ultotal, curl_off_t ulnow)
{
	(void)ud;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return deadline_left_ms() == 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const struct http_request *req = x->req;
	struct http_response *r = x->resp;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if ((!req->dst && !req->sink) || status < 200 || status > 299) {
		if (buf_add(&r->body, p, len)) {
			x->overflow = 1;
			return 0;
		}
		return len;
	}
	r->status = status;	/* for a sink's first look */
	if (!x->skip_decided) {
		x->skip_decided = 1;
		x->skip = status == 200 ? req->skip_on_200 : 0;
	}
	if (x->skip) {
		size_t d = x->skip < len ? (size_t)x->skip : len;

		x->skip -= d;
		p += d;
		len -= d;
		if (!len)
			return size * n;
	}
	if (r->dst_len + len > req->dst_cap) {
		/* A server that ignored Range sends the whole object: keep
		 * what was asked for and stop the transfer. */
		size_t room = req->dst_cap - r->dst_len;

		if (store(x, p, room))
			return 0;
		x->overflow = status == 200 ? 2 : 1;
		return 0;
	}
	if (store(x, p, len))
		return 0;
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const struct http_request *req = x->req;
	uint64_t left = req->body_len - x->sent;
	size_t want = size * n;
	ssize_t got;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (req->body) {
		memcpy(p, (const char *)req->body + x->sent, want);
		got = (ssize_t)want;
	} else {
		got = pread(req->body_fd, p, want,
			    req->body_off + (off_t)x->sent);
		if (got <= 0) {
			x->read_error = got < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	x->sent += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct xfer *x = ud;

	if (origin != SEEK_SET || off < 0 ||
	    (uint64_t)off > x->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	/* A rewind of a body already (partly) sent is a resend. */
	if (x->no_rewind && (uint64_t)off != x->sent)
		return CURL_SEEKFUNC_FAIL;
	x->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static void setup(struct http_client *c, CURL *h, struct xfer *x,
		  struct curl_slist *hl)
{
	const struct http_request *req = x->req;
	int has_body = req->body || req->body_fd >= 0;

	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (x->no_rewind)	/* only a reused connection is replayed */
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->opts.connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->opts.stall_timeout_s);
	if (req->sink) {
		/* a stream: no limit on the whole, the deadline moves on with
		 * each piece (store) and is checked as the transfer goes */
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, SINK_PIECE);
	} else {
		/* the whole exchange: the client's limit, shortened to what
		 * is left of the calling operation's deadline */
		long total_ms = c->opts.total_timeout_s * 1000;
		long left = deadline_left_ms();

		if (left > 0 && (!total_ms || left < total_ms))
			total_ms = left;
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
	}
	if (c->opts.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->opts.ca_file);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (has_body || !strcmp(req->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(has_body ? req->body_len : 0));
		if (strcmp(req->method, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
					 req->method);
	} else if (strcmp(req->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
}

/* The calling operation's deadline passed: say where it was waiting. */
static enum mfs_err timed_out(const struct http_client *c,
			      const struct http_request *req,
			      struct errbuf *eb)
{
	return eb_set(eb, MFS_ETIMEDOUT,
		      "%s%s%sno answer within the operation's time limit (%ld s, -o op_timeout): %s %s",
		      c->name ? "remote [" : "", c->name ? c->name : "",
		      c->name ? "]: " : "", deadline_limit_ms() / 1000,
		      req->method, req->url);
}

/* The calling operation's caller was interrupted (a killed ls). */
static enum mfs_err interrupted(const struct http_client *c,
				const struct http_request *req,
				struct errbuf *eb)
{
	return eb_set(eb, MFS_EINTR,
		      "%s%s%sthe caller was interrupted: stopped %s %s",
		      c->name ? "remote [" : "", c->name ? c->name : "",
		      c->name ? "]: " : "", req->method, req->url);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum mfs_err http_perform(struct http_client *c, const struct http_request *req,
			  struct http_response *resp, struct errbuf *eb)
{
	struct curl_slist *hl = NULL, *t;
	struct xfer x = { 0 };
	enum mfs_err rc = MFS_OK;
	double t0 = now_s();
	CURLcode cc;
	CURL *h;
	int i;

	http_response_cleanup(resp);
	http_response_init(resp);
	if (deadline_interrupted())
		return interrupted(c, req, eb);
	if (!deadline_left_ms())
		return timed_out(c, req, eb);
	if (req->max_body)
		resp->body.max = req->max_body;
	h = take_handle(c);
	if (!h)
		return eb_set(eb, MFS_ENOMEM, "cannot create an HTTP handle");
	for (i = 0; req->headers && req->headers[i]; i++) {
		t = curl_slist_append(hl, req->headers[i]);
		if (!t)
			goto nomem;
		hl = t;
	}
	/* No "Expect: 100-continue" (R2 rejects it; curl stalls ~1 s). */
	t = curl_slist_append(hl, "Expect:");
	if (!t)
		goto nomem;
	hl = t;
	x.h = h;
	x.req = req;
	x.resp = resp;
	x.no_rewind = !http_replay_safe(req);
	x.eb = eb;
	setup(c, h, &x, hl);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->seconds = now_s() - t0;
	if (x.sink_rc) {
		rc = x.sink_rc;	/* the sink said why */
		cc = CURLE_OK;
	} else if (cc == CURLE_WRITE_ERROR && x.overflow == 2) {
		cc = CURLE_OK;	/* got the range we wanted from a 200 */
	} else if (x.overflow) {
		rc = eb_set(eb, MFS_EPROTO,
			    "%s %s: reply larger than expected (%zu bytes max)",
			    req->method, req->url,
			    req->dst || req->sink ? req->dst_cap :
			    resp->body.max);
	} else if (x.read_error) {
		rc = eb_set(eb, MFS_EIO, "reading upload body: %s",
			    strerror(x.read_error));
	}
	if (!rc && cc != CURLE_OK) {
		switch (cc) {
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
			rc = MFS_EINVAL;
			break;
		case CURLE_OUT_OF_MEMORY:
			rc = MFS_ENOMEM;
			break;
		default:
			/* resets, timeouts, refused, partial bodies */
			rc = MFS_ETRANSIENT;
			break;
		}
		eb_set(eb, rc, "%s %s: %s", req->method, req->url,
		       curl_easy_strerror(cc));
		if (cc == CURLE_ABORTED_BY_CALLBACK || deadline_interrupted())
			rc = interrupted(c, req, eb);
		else if (!deadline_left_ms())
			rc = timed_out(c, req, eb);
	}
	if (!rc && resp->status >= 200 && resp->status < 300)
		deadline_progress();
	if (eb)
		eb->http_status = (int)resp->status;
	log_dbg(LOG_SUB_HTTP, "%s %s -> %ld %s(%.1f ms)", req->method,
		req->url, resp->status, rc ? mfs_strerror(rc) : "",
		resp->seconds * 1000);
	curl_slist_free_all(hl);
	give_handle(c, h);
	return rc;
nomem:
	curl_slist_free_all(hl);
	give_handle(c, h);
	return eb_set(eb, MFS_ENOMEM, "out of memory building a request");
}

int http_replay_safe(const struct http_request *req)
{
	if (req->replay != HTTP_REPLAY_METHOD)
		return req->replay == HTTP_REPLAY_SAFE;
	return strcmp(req->method, "POST") && strcmp(req->method, "PATCH");
}

int http_status_transient(long status)
{
	return status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504 || status == 408;
}

long http_backoff_ms(int attempt, long base_ms, long cap_ms)
{
	static __thread unsigned seed;
	long span = base_ms;
	int i;

	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	for (i = 0; i < attempt && span < cap_ms; i++)
		span *= 2;
	if (span > cap_ms)
		span = cap_ms;
	if (span <= 0)
		return 0;
	return span / 4 + (long)(rand_r(&seed) % (unsigned long)(span - span / 4 + 1));
}

void http_sleep_ms(long ms)
{
	long left = deadline_left_ms();

	if (left >= 0 && left < ms)
		ms = left;
	/* in slices of at most 100 ms, to see an interrupt */
	while (ms > 0 && !deadline_interrupted()) {
		long step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, step * 1000000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		ms -= step;
	}
}
