/* http.h - one HTTP exchange at a time per call, over a pool of reusable
 * libcurl handles that share connections, DNS and TLS sessions.
 * Owns: struct http_client (handle pool, share object). Calls: libcurl,
 * common. http_perform is thread-safe; the pool is guarded by a mutex and the
 * share object by one mutex per curl lock data kind.
 * Retry policy lives with the caller (a backend), because whether a reply is
 * worth retrying often depends on its body; this module supplies the backoff.
 */
#ifndef MFS_NET_HTTP_H
#define MFS_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

struct http_client;

struct http_opts {
	long connect_timeout_s;	/* TCP/TLS connect, default 10 */
	long stall_timeout_s;	/* abort when < 1 byte/s for this long, 30 */
	long total_timeout_s;	/* whole exchange, 0 = none */
	const char *ca_file;	/* NULL = system default */
	const char *name;	/* the remote's name for messages (copied);
				 * NULL = none */
};

struct http_header {
	char *name;	/* lowercased */
	char *value;	/* trimmed */
};

/* May the transport send a request again on its own? libcurl does when a
 * reused connection dies before the answer: it rewinds the body and
 * resends it on a new connection. For a request that is not idempotent
 * (an ImageKit upload, a TUS PATCH, a multipart completion) that can do
 * the thing twice, so such a request always goes on a fresh connection
 * (which is never replayed) and its body is never rewound: a connection
 * lost before the answer is an MFS_ETRANSIENT for the caller, whose own
 * re-check decides what happened. */
enum http_replay {
	HTTP_REPLAY_METHOD = 0,	/* by method: GET HEAD PUT DELETE OPTIONS
				 * may be replayed, POST and PATCH not */
	HTTP_REPLAY_SAFE,	/* this POST may be sent twice */
	HTTP_REPLAY_NEVER,	/* never send this one twice */
};

struct http_response;

struct http_request {
	const char *method;		/* GET HEAD PUT POST DELETE */
	enum http_replay replay;
	const char *url;		/* fully encoded; sent as is */
	const char *const *headers;	/* NULL-terminated "Name: value" */
	/* Request body: memory (body != NULL) or a file range (body_fd >= 0).
	 * body_len bytes either way; sent with Content-Length. */
	const void *body;
	int body_fd;
	off_t body_off;
	uint64_t body_len;
	/* Response body sink. With dst: 2xx bodies go to dst (at most dst_cap
	 * bytes; more is an error), after dropping skip bytes when the server
	 * answered 200 to a ranged request (skip = range start). Without dst,
	 * or for non-2xx: into resp->body, capped at max_body (default 1 MiB).
	 */
	char *dst;
	size_t dst_cap;
	uint64_t skip_on_200;
	size_t max_body;
	/* Or a sink (dst NULL, sink set): 2xx bodies are handed to sink piece
	 * by piece as they arrive, after skip_on_200 and up to dst_cap bytes
	 * as for dst; resp->dst_len counts the bytes handed over before the
	 * piece (the headers are complete at the first call). An error from
	 * sink ends the transfer and is http_perform's result (eb filled by
	 * sink). Such a transfer has no total time limit: the calling
	 * thread's deadline moves on with each piece taken (time spent in
	 * sink does not count), so it ends when no byte arrives for that
	 * long. */
	enum mfs_err (*sink)(void *ud, const struct http_response *resp,
			     const char *p, size_t n, struct errbuf *eb);
	void *sink_ud;
};

struct http_response {
	long status;
	struct buf body;
	size_t dst_len;		/* bytes stored in dst */
	struct http_header *hdr;
	int nhdr;
	double seconds;
};

/* Create a client. Returns NULL on allocation failure. */
struct http_client *http_client_new(const struct http_opts *opts);
void http_client_free(struct http_client *c);

void http_response_init(struct http_response *r);
void http_response_cleanup(struct http_response *r);
/* Value of a response header (name lowercase), NULL if absent. */
const char *http_header(const struct http_response *r, const char *name);

/* Perform one exchange. MFS_OK when a complete HTTP response arrived,
 * whatever its status (the caller classifies it); MFS_ETRANSIENT for
 * connection failures, resets, timeouts and truncated bodies; MFS_EPROTO when
 * a body exceeds its cap; MFS_EINVAL for a bad URL; MFS_ETIMEDOUT when the
 * calling thread's deadline (common/deadline.h) has passed or passes during
 * the exchange (never retried); MFS_EINTR when the calling operation's
 * caller was interrupted (deadline_interrupted) before or during the
 * exchange (never retried). eb says what happened. */
enum mfs_err http_perform(struct http_client *c, const struct http_request *req,
			  struct http_response *resp, struct errbuf *eb);

/* May req be sent twice (see enum http_replay)? */
int http_replay_safe(const struct http_request *req);

/* Is this status worth retrying on its own (429, 500, 502, 503, 504)? */
int http_status_transient(long status);
/* Full-jitter exponential backoff for attempt 0, 1, ...: a random delay in
 * [0, min(cap_ms, base_ms * 2^attempt)], at least 1/4 of it. */
long http_backoff_ms(int attempt, long base_ms, long cap_ms);
/* Sleep ms, at most until the calling thread's deadline or until its
 * caller is interrupted. */
void http_sleep_ms(long ms);

#endif
