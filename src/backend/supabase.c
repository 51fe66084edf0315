/* supabase.c - Supabase Storage through its REST API (API-NOTES B, D2, F).
 * The remote's namespace is "bucket/key": the top level lists buckets, and
 * mkdir/rmdir there create and delete buckets. Listing with list-v2 (cursor
 * paging), falling back to v1 (offset paging) on servers without it; stat
 * from /object/info (user metadata: mtime, mode); ranged downloads from
 * /object/authenticated; uploads by one PUT (upsert) up to tus_threshold,
 * TUS 1.0.0 in 6 MiB chunks above it (resumed by HEAD after a failure);
 * server-side move and copy; batch delete. Empty directories are
 * ".emptyFolderPlaceholder" objects, hidden from listings. Errors are
 * classified by the JSON body's code/statusCode, never by the HTTP status
 * alone (the server answers 400 for nearly everything); 423, 429, 5xx and
 * 544 are retried with backoff.
 * ETags: a single-request upload answers no ETag, so put computes the MD5
 * of what it sent (the server's ETag for such an object); after TUS the
 * ETag is read back with one info request. Calls: net (http, json),
 * common.
 * lock guards the bucket table and the list-v1 fallback flag; the rest of
 * struct supa is read-only after creation, so ops are thread-safe.
 */
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"
#include "net/http.h"
#include "net/json.h"

#define PLACEHOLDER ".emptyFolderPlaceholder"
#define TUS_CHUNK (6 * 1024 * 1024)
#define LIST_LIMIT 1000
#define LIST_MAX_BODY (16 * 1024 * 1024)
#define MAX_PAGES 1000000

struct bucket_info {
	char *name;
	int public;
};

struct supa {
	char *base;		/* ".../storage/v1", no trailing '/' */
	char *key;		/* secret: never logged, wiped on free */
	int jwt;		/* legacy key: also sent as Bearer */
	int public_new;		/* buckets made by mkdir are public */
	uint64_t tus_threshold;	/* larger uploads go through TUS */
	int retries;
	long backoff_ms;
	struct http_client *http;

	pthread_mutex_t lock;
	int v1_only;			/* guarded: list-v2 unavailable */
	struct bucket_info *buckets;	/* guarded */
	int nbuckets;			/* guarded */
};

/* One request as this backend sees it. */
struct sb_call {
	const char *method;
	const char *url;		/* full, encoded */
	const char *what;		/* for messages: "bucket/key" */
	const char *const *headers;	/* extra "Name: value", NULL-ended */
	const char *json;		/* JSON body */
	const struct put_body *fbody;	/* or a file range */
	const void *body;		/* or memory (body_len bytes) */
	size_t body_len;
	char *dst;
	size_t dst_cap;
	uint64_t skip_on_200;
	size_t max_body;
	unsigned long *counter;		/* be->stats field */
};

struct sb_error {
	long status;		/* body statusCode (string or number) */
	char code[64];
	char error[64];
	char message[256];
};

/* ---- keys and names ---- */

static int key_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("_/!.*'() &$=@;:+,?-", c);
}

/* Supabase's key rule (API-NOTES B2, F10), for one name or a whole key. */
static int sb_check_key(struct backend *be, const char *key, int is_dir,
			char *why, size_t cap)
{
	const char *slash = strchr(key, '/'), *p;
	const char *last = strrchr(key, '/');

	(void)be;
	if (!slash && !is_dir) {
		snprintf(why, cap, "files must be inside a bucket (the top level of a supabase remote holds buckets only)");
		return 1;
	}
	if (!slash && strlen(key) > 100) {
		snprintf(why, cap, "bucket names are at most 100 characters");
		return 1;
	}
	for (p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80) {
			snprintf(why, cap, "Supabase Storage refuses non-ASCII characters in keys");
			return 1;
		}
		if (!key_char_ok(c)) {
			snprintf(why, cap, c < 0x20 || c == 0x7f ?
				 "Supabase Storage refuses control character 0x%02x in keys" :
				 "Supabase Storage refuses '%c' in keys (allowed: letters, digits and _/!.*'() &$=@;:+,?-)",
				 c);
			return 1;
		}
	}
	if (!strcmp(last ? last + 1 : key, PLACEHOLDER)) {
		snprintf(why, cap, "'%s' is reserved for empty folders",
			 PLACEHOLDER);
		return 1;
	}
	return 0;
}

/* Split "bucket/rest" into a malloc'd bucket and a pointer into key. */
static enum mfs_err split(const char *key, char **bucket, const char **rest)
{
	const char *s = strchr(key, '/');

	*bucket = s ? str_ndup(key, (size_t)(s - key)) : strdup(key);
	*rest = s ? s + 1 : key + strlen(key);
	return *bucket ? MFS_OK : MFS_ENOMEM;
}

/* base + "/" + part + "/" + encoded key (per segment). */
static char *obj_url(struct supa *sb, const char *part, const char *bucket,
		     const char *rest)
{
	struct buf b;

	buf_init(&b, 0);
	if (buf_addf(&b, "%s/%s/", sb->base, part) ||
	    str_uri_encode(&b, bucket, strlen(bucket), 0) ||
	    (*rest && (buf_adds(&b, "/") ||
		       str_uri_encode(&b, rest, strlen(rest), 1)))) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* A directory marker "d/" of the core is the placeholder object. */
static char *real_key(const char *key)
{
	size_t n = strlen(key);

	if (n && key[n - 1] == '/')
		return str_fmt("%s%s", key, PLACEHOLDER);
	return strdup(key);
}

/* ---- the request loop ---- */

static void parse_error(const struct buf *body, struct sb_error *e)
{
	struct js *j = NULL;
	int64_t st;

	memset(e, 0, sizeof(*e));
	if (!body->len || js_parse(body->data, body->len, &j, NULL))
		return;
	if (!js_int(js_get(j, "statusCode"), &st))	/* "404" or 404 */
		e->status = (long)st;
	if (js_str(js_get(j, "code")))
		snprintf(e->code, sizeof(e->code), "%s",
			 js_str(js_get(j, "code")));
	if (js_str(js_get(j, "error")))
		snprintf(e->error, sizeof(e->error), "%s",
			 js_str(js_get(j, "error")));
	if (js_str(js_get(j, "message")))
		snprintf(e->message, sizeof(e->message), "%s",
			 js_str(js_get(j, "message")));
	js_free(j);
}

static int code_is(const struct sb_error *e, const char *c)
{
	return !strcmp(e->code, c);
}

static int retryable(long http_status, const struct sb_error *e)
{
	static const long st[] = { 423, 429, 500, 502, 503, 504, 544 };
	size_t i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (e->status == st[i] || http_status == st[i])
			return 1;
	return code_is(e, "SlowDown") || code_is(e, "ResourceLocked") ||
	       code_is(e, "LockTimeout") || code_is(e, "DatabaseTimeout") ||
	       code_is(e, "InternalError");
}

static enum mfs_err classify(struct backend *be, const struct sb_call *c,
			     long http_status, const struct sb_error *e,
			     struct errbuf *eb)
{
	long st = e->status ? e->status : http_status;
	const char *what = c->what;
	const char *msg = e->message[0] ? e->message : e->error;

	if (code_is(e, "NoSuchKey"))
		return eb_set(eb, MFS_ENOTFOUND, "%s: no such object", what);
	if (code_is(e, "NoSuchBucket") || !strcmp(e->error, "Bucket not found"))
		return eb_set(eb, MFS_ENOTFOUND,
			      "remote [%s]: no such bucket (%s)", be->name,
			      what);
	if (code_is(e, "KeyAlreadyExists") ||
	    code_is(e, "ResourceAlreadyExists") ||
	    code_is(e, "BucketAlreadyExists") ||
	    (st == 409 && !strcmp(e->error, "Duplicate")))
		return eb_set(eb, MFS_EEXIST, "%s: already exists", what);
	if (code_is(e, "InvalidKey"))
		return eb_set(eb, MFS_EINVAL, "%s: the server refused the key: %s",
			      what, msg);
	if (code_is(e, "AccessDenied") || code_is(e, "InvalidJWT") ||
	    st == 403 || st == 401)
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: the server refused the key (%s): key must be the project's service_role key or an sb_secret_ key",
			      be->name, msg[0] ? msg : "access denied");
	if (code_is(e, "EntityTooLarge") || st == 413)
		return eb_set(eb, MFS_EIO,
			      "%s: too large for the bucket or the project's upload limit (%s)",
			      what, msg);
	if (code_is(e, "InvalidMimeType") || st == 415)
		return eb_set(eb, MFS_EIO,
			      "%s: the bucket does not accept this content type (%s)",
			      what, msg);
	if (code_is(e, "InvalidRange") || st == 416)
		return eb_set(eb, MFS_ERANGE, "%s: range beyond the end", what);
	if (code_is(e, "FeatureNotEnabled"))
		return eb_set(eb, MFS_EUNSUPP, "%s: %s", what, msg);
	if (st == 409 && strstr(e->message, "not empty"))
		return eb_set(eb, MFS_ENOTEMPTY, "%s: bucket not empty", what);
	if (http_status == 404 && !e->code[0])
		return eb_set(eb, MFS_EUNSUPP,
			      "remote [%s]: the server has no route %s %s (is url the project URL?)",
			      be->name, c->method, c->url);
	if (retryable(http_status, e))
		return eb_set(eb, MFS_EIO,
			      "%s %s: server kept failing (HTTP %ld, %s), gave up",
			      c->method, what, http_status,
			      e->code[0] ? e->code : "no code");
	return eb_set(eb, MFS_EIO, "%s %s: HTTP %ld%s%s%s%s", c->method, what,
		      http_status, e->code[0] ? " " : "", e->code,
		      msg[0] ? ": " : "", msg);
}

static enum mfs_err sb_do(struct backend *be, const struct sb_call *c,
			  struct http_response *resp, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	const char *hdr[16];
	char *auth = NULL, *bearer = NULL;
	enum mfs_err rc = MFS_EIO;
	int attempt, n = 0, i;

	auth = str_fmt("apikey: %s", sb->key);
	if (sb->jwt)
		bearer = str_fmt("Authorization: Bearer %s", sb->key);
	if (!auth || (sb->jwt && !bearer)) {
		rc = MFS_ENOMEM;
		goto out;
	}
	hdr[n++] = auth;
	if (bearer)
		hdr[n++] = bearer;
	hdr[n++] = "Expect:";
	if (c->json)
		hdr[n++] = "Content-Type: application/json";
	for (i = 0; c->headers && c->headers[i] && n < 15; i++)
		hdr[n++] = c->headers[i];
	hdr[n] = NULL;

	for (attempt = 0; attempt <= sb->retries; attempt++) {
		struct http_request req = { 0 };
		struct sb_error e;

		if (attempt) {
			const char *ra = http_header(resp, "retry-after");
			long ms = http_backoff_ms(attempt - 1, sb->backoff_ms,
						  20000);

			if (ra && atol(ra) > 0 && atol(ra) < 60)
				ms = atol(ra) * 1000;
			__atomic_add_fetch(&be->stats.retries, 1,
					   __ATOMIC_RELAXED);
			http_sleep_ms(ms);
		}
		req.method = c->method;
		req.url = c->url;
		req.headers = hdr;
		req.body_fd = -1;
		if (c->fbody) {
			req.body_fd = c->fbody->fd;
			req.body_off = (off_t)c->fbody->off;
			req.body_len = c->fbody->len;
		} else if (c->json) {
			req.body = c->json;
			req.body_len = strlen(c->json);
		} else if (c->body) {
			req.body = c->body;
			req.body_len = c->body_len;
		}
		req.dst = c->dst;
		req.dst_cap = c->dst_cap;
		req.skip_on_200 = c->skip_on_200;
		req.max_body = c->max_body;
		__atomic_add_fetch(c->counter ? c->counter : &be->stats.other,
				   1, __ATOMIC_RELAXED);
		rc = http_perform(sb->http, &req, resp, eb);
		if (rc == MFS_ETRANSIENT)
			continue;
		if (rc)
			goto out;
		if (resp->status >= 200 && resp->status < 300)
			goto out;
		parse_error(&resp->body, &e);
		if (!retryable(resp->status, &e) || attempt == sb->retries) {
			rc = classify(be, c, resp->status, &e, eb);
			goto out;
		}
		log_dbg(LOG_SUB_HTTP, "%s %s: HTTP %ld %s, retrying", c->method,
			c->what, resp->status, e.code);
		rc = MFS_ETRANSIENT;
	}
	if (rc == MFS_ETRANSIENT) {
		eb_prefix(eb, "%s %s: gave up after %d retries", c->method,
			  c->what, sb->retries);
		rc = MFS_EIO;
	}
out:
	if (auth)
		explicit_bzero(auth, strlen(auth));
	if (bearer)
		explicit_bzero(bearer, strlen(bearer));
	free(auth);
	free(bearer);
	return rc;
}

/* Run a call whose 2xx body is JSON; *out gets it (js_free it). */
static enum mfs_err sb_json(struct backend *be, struct sb_call *c,
			    struct js **out, struct errbuf *eb)
{
	struct http_response resp;
	enum mfs_err rc;

	*out = NULL;
	if (!c->max_body)
		c->max_body = LIST_MAX_BODY;
	http_response_init(&resp);
	rc = sb_do(be, c, &resp, eb);
	if (!rc) {
		rc = js_parse(resp.body.data, resp.body.len, out, eb);
		if (rc)
			eb_prefix(eb, "%s %s: reply", c->method, c->what);
	}
	http_response_cleanup(&resp);
	return rc;
}

static int64_t jtime(const struct js *o, const char *k)
{
	const char *s = js_get_str(o, k);
	int64_t ns = 0;

	if (s && str_parse_iso8601(s, &ns))
		ns = 0;
	return ns;
}

static uint64_t jsize(const struct js *o, const char *k)
{
	int64_t n;

	return !js_int(js_get(o, k), &n) && n > 0 ? (uint64_t)n : 0;
}

static void strip_etag(const char *in, char *out, size_t cap)
{
	size_t n;

	out[0] = '\0';
	if (!in)
		return;
	if (!strncmp(in, "W/", 2))
		in += 2;
	if (*in == '"')
		in++;
	n = strlen(in);
	if (n && in[n - 1] == '"')
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* System metadata of a listing entry (API-NOTES B5). */
static void meta_from_sys(const struct js *entry, struct obj_meta *m)
{
	const struct js *sm = js_get(entry, "metadata");
	const char *v;

	memset(m, 0, sizeof(*m));
	m->kind = OBJ_FILE;
	m->server_mtime_ns = jtime(entry, "updated_at");
	m->mtime_ns = m->server_mtime_ns;
	if (!js_is_obj(sm))
		return;
	m->size = jsize(sm, "size");
	if (!m->size)
		m->size = jsize(sm, "contentLength");
	strip_etag(js_get_str(sm, "eTag"), m->etag, sizeof(m->etag));
	v = js_get_str(sm, "mimetype");
	if (v)
		snprintf(m->content_type, sizeof(m->content_type), "%s", v);
	v = js_get_str(sm, "cacheControl");
	if (v)
		snprintf(m->cache_control, sizeof(m->cache_control), "%s", v);
}

/* User metadata: mtime (rclone style decimal seconds) and mode. */
static void meta_from_user(const struct js *um, struct obj_meta *m)
{
	const struct js *v;
	int64_t ns, n;
	uint64_t mode;
	double d;

	if (!js_is_obj(um))
		return;
	v = js_get(um, "mtime");
	if (js_str(v) && !str_parse_mtime(js_str(v), &ns))
		m->mtime_ns = ns;
	else if (!js_num(v, &d))
		m->mtime_ns = (int64_t)(d * 1e9);
	v = js_get(um, "mode");
	if (js_str(v) && !str_parse_u64(js_str(v), &mode) && mode <= 0177777)
		m->mode = (uint32_t)mode & 07777;
	else if (!js_str(v) && !js_int(v, &n) && n >= 0 && n <= 0177777)
		m->mode = (uint32_t)n & 07777;
}

/* ---- buckets ---- */

static void remember_bucket(struct supa *sb, const char *name, int public)
{
	struct bucket_info *p;
	int i;

	pthread_mutex_lock(&sb->lock);
	for (i = 0; i < sb->nbuckets; i++)
		if (!strcmp(sb->buckets[i].name, name)) {
			sb->buckets[i].public = public;
			goto out;
		}
	p = realloc(sb->buckets, sizeof(*p) * (size_t)(sb->nbuckets + 1));
	if (p) {
		sb->buckets = p;
		p[sb->nbuckets].name = strdup(name);
		p[sb->nbuckets].public = public;
		if (p[sb->nbuckets].name)
			sb->nbuckets++;
	}
out:
	pthread_mutex_unlock(&sb->lock);
}

static void forget_bucket(struct supa *sb, const char *name)
{
	int i;

	pthread_mutex_lock(&sb->lock);
	for (i = 0; i < sb->nbuckets; i++)
		if (!strcmp(sb->buckets[i].name, name)) {
			free(sb->buckets[i].name);
			sb->buckets[i] = sb->buckets[--sb->nbuckets];
			break;
		}
	pthread_mutex_unlock(&sb->lock);
}

/* 1 public, 0 private, -1 not known yet. */
static int known_bucket(struct supa *sb, const char *name)
{
	int i, r = -1;

	pthread_mutex_lock(&sb->lock);
	for (i = 0; i < sb->nbuckets; i++)
		if (!strcmp(sb->buckets[i].name, name))
			r = sb->buckets[i].public;
	pthread_mutex_unlock(&sb->lock);
	return r;
}

/* GET /bucket/{id}: existence and the public flag (cached). */
static enum mfs_err bucket_info(struct backend *be, const char *bucket,
				struct obj_meta *out, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	struct js *j = NULL;
	enum mfs_err rc;
	char *url = obj_url(sb, "bucket", bucket, "");

	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = bucket;
	c.counter = &be->stats.head;
	rc = sb_json(be, &c, &j, eb);
	if (!rc && !js_is_obj(j))
		rc = eb_set(eb, MFS_EPROTO, "bucket %s: reply is not an object",
			    bucket);
	if (!rc) {
		remember_bucket(sb, bucket,
				js_is_true(js_get(j, "public")));
		if (out) {
			memset(out, 0, sizeof(*out));
			out->kind = OBJ_DIR;
			out->full = 1;
			out->mtime_ns = jtime(j, "updated_at");
			out->server_mtime_ns = out->mtime_ns;
		}
	}
	js_free(j);
	free(url);
	return rc;
}

static enum mfs_err list_buckets(struct backend *be, backend_list_cb cb,
				 void *ud, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	struct js *j = NULL;
	enum mfs_err rc;
	size_t i;
	char *url = str_fmt("%s/bucket", sb->base);

	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = "(buckets)";
	c.counter = &be->stats.list;
	rc = sb_json(be, &c, &j, eb);
	if (!rc && !js_is_arr(j))
		rc = eb_set(eb, MFS_EPROTO, "bucket list is not an array");
	for (i = 0; !rc && i < js_len(j); i++) {
		const struct js *b = js_at(j, i);
		const char *name = js_get_str(b, "id") ? js_get_str(b, "id")
						  : js_get_str(b, "name");
		struct obj_meta m = { 0 };
		char why[200];

		if (!name)
			continue;
		remember_bucket(sb, name,
				js_is_true(js_get(b, "public")));
		if (sb_check_key(be, name, 1, why, sizeof(why)) ||
		    str_bad_name(name, strlen(name))) {
			log_warn("remote [%s]: bucket '%s' cannot be shown", be->name,
				 name);
			continue;
		}
		m.kind = OBJ_DIR;
		m.mtime_ns = jtime(b, "updated_at");
		m.server_mtime_ns = m.mtime_ns;
		rc = cb(ud, name, &m);
		if (rc)
			break;
	}
	js_free(j);
	free(url);
	return rc;
}

/* ---- listing ---- */

/* Emit one entry named below prefix (full key or relative name). */
static enum mfs_err emit(struct backend *be, const char *name, int dir,
			 const struct obj_meta *m, backend_list_cb cb, void *ud)
{
	size_t n = strlen(name);
	const char *bad;
	char *copy;
	enum mfs_err rc;

	if (dir && n && name[n - 1] == '/')
		n--;
	if (!n || (!dir && !strcmp(name, PLACEHOLDER)))
		return MFS_OK;
	bad = str_bad_name(name, n);
	if (!bad && memchr(name, '/', n))
		bad = "nested name in a one-level listing";
	if (bad) {
		log_warn("remote [%s]: '%.*s' cannot be shown: %s", be->name,
			 (int)n, name, bad);
		return MFS_OK;
	}
	copy = str_ndup(name, n);
	if (!copy)
		return MFS_ENOMEM;
	rc = cb(ud, copy, m);
	free(copy);
	return rc;
}

static char *list_body(const char *prefix, const char *cursor, int v2,
		       uint64_t offset)
{
	struct js *j = js_obj(), *sort = js_obj();
	enum mfs_err rc = MFS_OK;
	char *s = NULL;

	if (!sort || js_set_str(sort, "column", "name") ||
	    js_set_str(sort, "order", "asc"))
		rc = MFS_ENOMEM;
	if (js_set(j, "sortBy", sort))	/* takes sort, even on failure */
		rc = MFS_ENOMEM;
	if (!rc && (js_set_str(j, "prefix", prefix) ||
		    js_set_int(j, "limit", LIST_LIMIT)))
		rc = MFS_ENOMEM;
	if (!rc && v2 && (js_set_bool(j, "with_delimiter", 1) ||
			  (cursor && js_set_str(j, "cursor", cursor))))
		rc = MFS_ENOMEM;
	if (!rc && !v2 && js_set_int(j, "offset", (int64_t)offset))
		rc = MFS_ENOMEM;
	if (!rc)
		s = js_dump(j, 0);
	js_free(j);
	return s;
}

/* One listing request with body (taken: freed here). */
static enum mfs_err list_page(struct backend *be, const char *url,
			      const char *bucket, char *body, struct js **j,
			      struct errbuf *eb)
{
	struct sb_call c = { 0 };
	enum mfs_err rc;

	*j = NULL;
	if (!body)
		return MFS_ENOMEM;
	c.method = "POST";
	c.url = url;
	c.what = bucket;
	c.json = body;
	c.counter = &be->stats.list;
	rc = sb_json(be, &c, j, eb);
	free(body);
	return rc;
}

static enum mfs_err list_v2(struct backend *be, const char *bucket,
			    const char *prefix, backend_list_cb cb, void *ud,
			    struct errbuf *eb)
{
	struct supa *sb = be->priv;
	char *url = obj_url(sb, "object/list-v2", bucket, "");
	char *cursor = NULL;
	enum mfs_err rc = MFS_OK;
	size_t plen = strlen(prefix);
	int pages = 0;

	if (!url)
		return MFS_ENOMEM;
	do {
		struct js *j = NULL;
		const struct js *f, *o;
		const char *next;
		size_t i;

		rc = list_page(be, url, bucket, list_body(prefix, cursor, 1, 0),
			       &j, eb);
		f = js_get(j, "folders");
		o = js_get(j, "objects");
		if (!rc && (!js_is_obj(j) || (!js_is_arr(o) && !js_is_arr(f))))
			rc = eb_set(eb, MFS_EPROTO,
				    "list-v2 reply is not an object with objects and folders");
		for (i = 0; !rc && i < js_len(f); i++) {
			const char *name = js_get_str(js_at(f, i), "name");
			struct obj_meta m = { 0 };

			if (!name || strncmp(name, prefix, plen))
				continue;
			m.kind = OBJ_DIR;
			rc = emit(be, name + plen, 1, &m, cb, ud);
		}
		for (i = 0; !rc && i < js_len(o); i++) {
			const char *name = js_get_str(js_at(o, i), "name");
			struct obj_meta m;

			if (!name || strncmp(name, prefix, plen))
				continue;
			meta_from_sys(js_at(o, i), &m);
			rc = emit(be, name + plen, 0, &m, cb, ud);
		}
		next = rc ? NULL : js_get_str(j, "nextCursor");
		if (!rc && js_is_true(js_get(j, "hasNext")) && !next)
			rc = eb_set(eb, MFS_EPROTO,
				    "list-v2 says hasNext but sent no nextCursor");
		if (!rc && next && cursor && !strcmp(next, cursor))
			rc = eb_set(eb, MFS_EPROTO,
				    "server repeated the same list cursor");
		free(cursor);
		cursor = !rc && next && js_is_true(js_get(j, "hasNext"))
			 ? strdup(next) : NULL;
		js_free(j);
	} while (!rc && cursor && ++pages < MAX_PAGES);
	free(cursor);
	free(url);
	return rc;
}

static enum mfs_err list_v1(struct backend *be, const char *bucket,
			    const char *prefix, backend_list_cb cb, void *ud,
			    struct errbuf *eb)
{
	struct supa *sb = be->priv;
	char *url = obj_url(sb, "object/list", bucket, "");
	enum mfs_err rc = MFS_OK;
	uint64_t offset = 0;
	size_t rows;

	if (!url)
		return MFS_ENOMEM;
	do {
		struct js *j = NULL;
		size_t i;

		rc = list_page(be, url, bucket, list_body(prefix, NULL, 0, offset),
			       &j, eb);
		if (!rc && !js_is_arr(j))
			rc = eb_set(eb, MFS_EPROTO, "list reply is not an array");
		rows = rc ? 0 : js_len(j);
		for (i = 0; !rc && i < rows; i++) {
			const struct js *e = js_at(j, i);
			const char *name = js_get_str(e, "name");
			struct obj_meta m = { 0 };
			int dir = !js_get(e, "id") || js_is_null(js_get(e, "id"));

			if (!name)
				continue;
			if (dir)
				m.kind = OBJ_DIR;
			else
				meta_from_sys(e, &m);
			rc = emit(be, name, dir, &m, cb, ud);
		}
		js_free(j);
		offset += rows;
	} while (!rc && rows == LIST_LIMIT);
	free(url);
	return rc;
}

static enum mfs_err sb_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	const char *rest;
	char *bucket = NULL, *prefix = NULL;
	enum mfs_err rc;
	int v1;

	if (!*dir)
		return list_buckets(be, cb, ud, eb);
	rc = split(dir, &bucket, &rest);
	if (rc)
		return rc;
	/* v1 lists a missing bucket as empty: ask once per bucket */
	if (!*rest && known_bucket(sb, bucket) < 0)
		rc = bucket_info(be, bucket, NULL, eb);
	prefix = *rest ? str_fmt("%s/", rest) : strdup("");
	if (!rc && !prefix)
		rc = MFS_ENOMEM;
	pthread_mutex_lock(&sb->lock);
	v1 = sb->v1_only;
	pthread_mutex_unlock(&sb->lock);
	if (!rc && !v1) {
		rc = list_v2(be, bucket, prefix, cb, ud, eb);
		if (rc == MFS_EUNSUPP) {
			log_info("remote [%s]: list-v2 not available (%s); listing with v1",
				 be->name, eb ? eb->msg : "");
			pthread_mutex_lock(&sb->lock);
			sb->v1_only = v1 = 1;
			pthread_mutex_unlock(&sb->lock);
		}
	}
	if (!rc || v1) {
		if (v1)
			rc = list_v1(be, bucket, prefix, cb, ud, eb);
	}
	if (rc)
		eb_prefix(eb, "listing '%s' in remote [%s]", dir, be->name);
	free(bucket);
	free(prefix);
	return rc;
}

/* ---- objects ---- */

static enum mfs_err sb_head(struct backend *be, const char *key,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	struct js *j = NULL;
	const char *rest, *v;
	char *bucket, *url;
	enum mfs_err rc = split(key, &bucket, &rest);

	if (rc)
		return rc;
	if (!*rest) {
		rc = bucket_info(be, bucket, out, eb);
		free(bucket);
		return rc;
	}
	url = obj_url(sb, "object/info/authenticated", bucket, rest);
	free(bucket);
	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = key;
	c.counter = &be->stats.head;
	rc = sb_json(be, &c, &j, eb);
	if (!rc && !js_is_obj(j))
		rc = eb_set(eb, MFS_EPROTO, "info %s: reply is not an object",
			    key);
	if (!rc) {
		memset(out, 0, sizeof(*out));
		out->kind = OBJ_FILE;
		out->full = 1;
		out->size = jsize(j, "size");
		out->server_mtime_ns = jtime(j, "last_modified");
		if (!out->server_mtime_ns)
			out->server_mtime_ns = jtime(j, "updated_at");
		out->mtime_ns = out->server_mtime_ns;
		strip_etag(js_get_str(j, "etag"), out->etag, sizeof(out->etag));
		v = js_get_str(j, "content_type");
		if (v)
			snprintf(out->content_type, sizeof(out->content_type),
				 "%s", v);
		v = js_get_str(j, "cache_control");
		if (v)
			snprintf(out->cache_control,
				 sizeof(out->cache_control), "%s", v);
		meta_from_user(js_get(j, "metadata"), out);
	}
	js_free(j);
	free(url);
	return rc;
}

static enum mfs_err sb_get(struct backend *be, const char *key, uint64_t off,
			   size_t len, const char *etag, char *dst, size_t *got,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *rest, *h[2] = { NULL, NULL };
	char range[80], *bucket, *url, seen[80];
	enum mfs_err rc = split(key, &bucket, &rest);

	*got = 0;
	if (rc || !len)
		return rc;
	url = obj_url(sb, "object/authenticated", bucket, rest);
	free(bucket);
	if (!url)
		return MFS_ENOMEM;
	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	h[0] = range;
	c.method = "GET";
	c.url = url;
	c.what = key;
	c.headers = h;
	c.dst = dst;
	c.dst_cap = len;
	c.skip_on_200 = off;
	c.counter = &be->stats.get;
	http_response_init(&resp);
	rc = sb_do(be, &c, &resp, eb);
	if (!rc) {
		/* no If-Match on this API: compare after the fact */
		strip_etag(http_header(&resp, "etag"), seen, sizeof(seen));
		if (etag && *etag && seen[0] && strcmp(seen, etag))
			rc = eb_set(eb, MFS_ECONFLICT,
				    "%s changed on the server meanwhile", key);
		else
			*got = resp.dst_len;
	} else if (rc == MFS_ERANGE) {
		rc = MFS_OK;	/* at or past the end (or a 0-byte object) */
	}
	http_response_cleanup(&resp);
	free(url);
	return rc;
}

static enum mfs_err sb_url(struct backend *be, const char *key, char **out)
{
	struct supa *sb = be->priv;
	const char *rest;
	char *bucket;
	enum mfs_err rc = split(key, &bucket, &rest);
	int pub;

	*out = NULL;
	if (rc)
		return rc;
	pub = known_bucket(sb, bucket);
	if (pub < 0 && !bucket_info(be, bucket, NULL, NULL))
		pub = known_bucket(sb, bucket);
	*out = obj_url(sb, pub == 1 ? "object/public" : "object/authenticated",
		       bucket, rest);
	free(bucket);
	return *out ? MFS_OK : MFS_ENOMEM;
}

/* ---- writes ---- */

/* base64 of s (malloc'd). */
static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s,
				(int)n);
	return out;
}

/* The user metadata JSON for meta (mtime, mode, owner), malloc'd. */
static char *user_meta_json(const struct put_meta *m)
{
	struct js *j = js_obj();
	char v[64], *s = NULL;
	enum mfs_err rc = j ? MFS_OK : MFS_ENOMEM;

	if (!rc && m && m->mtime_ns) {
		int64_t sec = m->mtime_ns / 1000000000;
		int64_t ns = m->mtime_ns % 1000000000;

		if (ns < 0) {
			ns += 1000000000;
			sec--;
		}
		snprintf(v, sizeof(v), "%lld.%09lld", (long long)sec,
			 (long long)ns);
		rc = js_set_str(j, "mtime", v);
	}
	if (!rc && m && m->mode) {
		snprintf(v, sizeof(v), "%u", m->mode);
		rc = js_set_str(j, "mode", v);
	}
	if (!rc && m && m->has_owner) {
		snprintf(v, sizeof(v), "%u", m->uid);
		rc = js_set_str(j, "uid", v);
		snprintf(v, sizeof(v), "%u", m->gid);
		if (!rc)
			rc = js_set_str(j, "gid", v);
	}
	if (!rc)
		s = js_dump(j, 1);
	js_free(j);
	return s;
}

static void out_from_meta(struct obj_meta *out, uint64_t size,
			  const struct put_meta *meta)
{
	memset(out, 0, sizeof(*out));
	out->kind = OBJ_FILE;
	out->size = size;
	out->full = 1;
	if (!meta)
		return;
	out->mtime_ns = meta->mtime_ns;
	out->mode = meta->mode & 07777;
	snprintf(out->content_type, sizeof(out->content_type), "%s",
		 meta->content_type && *meta->content_type ?
		 meta->content_type : "application/octet-stream");
	if (meta->cache_control)
		snprintf(out->cache_control, sizeof(out->cache_control), "%s",
			 meta->cache_control);
}

/* MD5 of the body's bytes: the server's ETag of a single-request upload. */
static enum mfs_err body_md5(const struct put_body *body, char out[80],
			     struct errbuf *eb)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	char buf[65536];
	uint64_t done = 0;
	unsigned int mdlen = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return MFS_ENOMEM;
	}
	while (done < body->len) {
		size_t want = body->len - done < sizeof(buf) ?
			      (size_t)(body->len - done) : sizeof(buf);
		ssize_t n = pread(body->fd, buf, want,
				  (off_t)(body->off + done));

		if (n <= 0) {
			EVP_MD_CTX_free(ctx);
			return eb_set(eb, MFS_EIO, "reading the staged file: %s",
				      n < 0 ? strerror(errno) : "short file");
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		done += (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	str_hex(md, mdlen, out);
	return MFS_OK;
}

static enum mfs_err put_single(struct backend *be, const char *bucket,
			       const char *rest, const char *key,
			       const struct put_body *body,
			       const char *ctype, const char *cc,
			       const char *meta_b64, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *h[5];
	char *hct, *hcc = NULL, *hmd = NULL, *url;
	enum mfs_err rc = MFS_ENOMEM;
	int n = 0;

	url = obj_url(sb, "object", bucket, rest);
	hct = str_fmt("Content-Type: %s", ctype);
	if (cc && *cc)
		hcc = str_fmt("Cache-Control: %s", cc);
	if (meta_b64)
		hmd = str_fmt("x-metadata: %s", meta_b64);
	if (!url || !hct || (cc && *cc && !hcc) || (meta_b64 && !hmd))
		goto out;
	h[n++] = hct;
	if (hcc)
		h[n++] = hcc;
	if (hmd)
		h[n++] = hmd;
	h[n++] = "x-upsert: true";
	h[n] = NULL;
	c.method = "PUT";
	c.url = url;
	c.what = key;
	c.headers = h;
	c.fbody = body;
	c.counter = &be->stats.put;
	http_response_init(&resp);
	rc = sb_do(be, &c, &resp, eb);
	http_response_cleanup(&resp);
out:
	free(url);
	free(hct);
	free(hcc);
	free(hmd);
	return rc;
}

/* TUS "key base64(value)" pair, appended to b. */
static enum mfs_err tus_pair(struct buf *b, const char *k, const char *v)
{
	char *e = b64(v);
	enum mfs_err rc = e ? buf_addf(b, "%s%s %s", b->len ? "," : "", k, e)
			    : MFS_ENOMEM;

	free(e);
	return rc;
}

/* HEAD the upload: where the server is. */
static enum mfs_err tus_offset(struct backend *be, const char *loc,
			       const char *key, uint64_t *off,
			       struct errbuf *eb)
{
	static const char *const h[] = { "Tus-Resumable: 1.0.0", NULL };
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *v;
	enum mfs_err rc;

	c.method = "HEAD";
	c.url = loc;
	c.what = key;
	c.headers = h;
	c.counter = &be->stats.head;
	http_response_init(&resp);
	rc = sb_do(be, &c, &resp, eb);
	v = rc ? NULL : http_header(&resp, "upload-offset");
	if (!rc && (!v || str_parse_u64(v, off)))
		rc = eb_set(eb, MFS_EPROTO, "TUS HEAD %s: no Upload-Offset",
			    key);
	http_response_cleanup(&resp);
	return rc;
}

/* TUS 1.0.0 (API-NOTES B13): create, PATCH 6 MiB chunks; after a failed
 * chunk ask the server its offset and go on from there. */
static enum mfs_err put_tus(struct backend *be, const char *bucket,
			    const char *rest, const char *key,
			    const struct put_body *body, const char *ctype,
			    const char *cc, const char *meta_json,
			    struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	struct buf md;
	const char *h[6];
	char *url = str_fmt("%s/upload/resumable", sb->base);
	char *hlen = str_fmt("Upload-Length: %llu",
			     (unsigned long long)body->len);
	char *hmd = NULL, *loc = NULL;
	uint64_t off = 0;
	enum mfs_err rc;
	int stuck = 0;

	buf_init(&md, 0);
	rc = url && hlen ? MFS_OK : MFS_ENOMEM;
	if (!rc)
		rc = tus_pair(&md, "bucketName", bucket);
	if (!rc)
		rc = tus_pair(&md, "objectName", rest);
	if (!rc)
		rc = tus_pair(&md, "contentType", ctype);
	if (!rc && cc && *cc)
		rc = tus_pair(&md, "cacheControl", cc);
	if (!rc && meta_json)
		rc = tus_pair(&md, "metadata", meta_json);
	if (!rc) {
		hmd = str_fmt("Upload-Metadata: %s", md.data);
		if (!hmd)
			rc = MFS_ENOMEM;
	}
	if (rc)
		goto out;
	h[0] = "Tus-Resumable: 1.0.0";
	h[1] = hlen;
	h[2] = hmd;
	h[3] = "x-upsert: true";
	h[4] = NULL;
	c.method = "POST";
	c.url = url;
	c.what = key;
	c.headers = h;
	c.body = "";
	c.counter = &be->stats.put;
	http_response_init(&resp);
	rc = sb_do(be, &c, &resp, eb);
	if (!rc && resp.status != 201)
		rc = eb_set(eb, MFS_EPROTO, "TUS create %s: HTTP %ld, not 201",
			    key, resp.status);
	if (!rc) {
		const char *l = http_header(&resp, "location");

		if (!l || !*l)
			rc = eb_set(eb, MFS_EPROTO,
				    "TUS create %s: no Location", key);
		else if (str_starts(l, "http://") || str_starts(l, "https://"))
			loc = strdup(l);
		else	/* relative: on the same server */
			loc = str_fmt("%.*s%s", (int)(strstr(sb->base, "/storage/v1") ?
				      strstr(sb->base, "/storage/v1") - sb->base :
				      (long)strlen(sb->base)), sb->base, l);
		if (!rc && !loc)
			rc = MFS_ENOMEM;
	}
	http_response_cleanup(&resp);
	while (!rc && off < body->len) {
		struct put_body chunk = { body->fd, body->off + off,
					  body->len - off < TUS_CHUNK ?
					  body->len - off : TUS_CHUNK, NULL, NULL };
		char hoff[64];
		const char *ph[4];
		struct sb_call pc = { 0 };
		struct errbuf peb = { 0 };
		enum mfs_err prc;

		snprintf(hoff, sizeof(hoff), "Upload-Offset: %llu",
			 (unsigned long long)off);
		ph[0] = "Tus-Resumable: 1.0.0";
		ph[1] = hoff;
		ph[2] = "Content-Type: application/offset+octet-stream";
		ph[3] = NULL;
		pc.method = "PATCH";
		pc.url = loc;
		pc.what = key;
		pc.headers = ph;
		pc.fbody = &chunk;
		pc.counter = &be->stats.put;
		http_response_init(&resp);
		prc = sb_do(be, &pc, &resp, &peb);
		http_response_cleanup(&resp);
		if (!prc) {
			off += chunk.len;
			stuck = 0;
			continue;
		}
		/* 409 offset conflict, a reset mid-chunk, a 5xx: where is
		 * the server? (bounded: the same offset at most retries
		 * times) */
		if (++stuck > sb->retries) {
			rc = prc;
			if (eb)
				*eb = peb;
			break;
		}
		log_dbg(LOG_SUB_HTTP, "TUS %s: chunk at %llu failed (%s); asking the server",
			key, (unsigned long long)off, peb.msg);
		http_sleep_ms(http_backoff_ms(stuck - 1, sb->backoff_ms, 20000));
		rc = tus_offset(be, loc, key, &off, eb);
		if (!rc && off > body->len)
			rc = eb_set(eb, MFS_EPROTO,
				    "TUS %s: server offset past the end", key);
	}
out:
	buf_cleanup(&md);
	free(url);
	free(hlen);
	free(hmd);
	free(loc);
	return rc;
}

static enum mfs_err sb_put(struct backend *be, const char *key,
			   const struct put_body *body,
			   const struct put_meta *meta, struct obj_meta *out,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	const char *rest;
	const char *ctype = meta && meta->content_type && *meta->content_type ?
			    meta->content_type : "application/octet-stream";
	const char *cc = meta ? meta->cache_control : NULL;
	char *bucket = NULL, *mj = user_meta_json(meta), *mb = NULL;
	char *rk = real_key(key);
	char md5[80];
	enum mfs_err rc;

	rc = mj && rk ? split(rk, &bucket, &rest) : MFS_ENOMEM;
	if (!rc && !*rest)
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: files must be inside a bucket", key);
	if (!rc && !strcmp(mj, "{}")) {
		free(mj);
		mj = NULL;
	}
	if (!rc && mj && !(mb = b64(mj)))
		rc = MFS_ENOMEM;
	if (!rc && body->len <= sb->tus_threshold) {
		rc = body_md5(body, md5, eb);
		if (!rc)
			rc = put_single(be, bucket, rest, key, body, ctype, cc,
					mb, eb);
		if (!rc && out) {
			out_from_meta(out, body->len, meta);
			snprintf(out->etag, sizeof(out->etag), "%s", md5);
		}
	} else if (!rc) {
		rc = put_tus(be, bucket, rest, key, body, ctype, cc, mj, eb);
		if (!rc && out) {
			/* TUS answers no ETag: read what the server holds */
			rc = sb_head(be, rk, out, eb);
			if (!rc && out->size != body->len)
				rc = eb_set(eb, MFS_EIO,
					    "%s: server holds %llu bytes after TUS, sent %llu",
					    key, (unsigned long long)out->size,
					    (unsigned long long)body->len);
		}
	}
	free(bucket);
	free(mj);
	free(mb);
	free(rk);
	return rc;
}

/* POST /object/move or /object/copy between "bucket/key"s. */
static enum mfs_err move_or_copy(struct backend *be, const char *op,
				 const char *src, const char *dst,
				 const struct put_meta *meta, struct js **reply,
				 struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	const char *sr, *dr, *h[3] = { NULL, NULL, NULL };
	char *sbk = NULL, *dbk = NULL, *url = NULL, *body = NULL;
	char *mj = NULL, *mb = NULL, *hmd = NULL;
	struct js *j = NULL;
	enum mfs_err rc;
	int copy = !strcmp(op, "copy"), n = 0;

	rc = split(src, &sbk, &sr);
	if (!rc)
		rc = split(dst, &dbk, &dr);
	if (!rc && (!*sr || !*dr))
		rc = eb_set(eb, MFS_EINVAL, "%s %s -> %s: not inside a bucket",
			    op, src, dst);
	if (rc)
		goto out;
	j = js_obj();
	if (!j || js_set_str(j, "bucketId", sbk) ||
	    js_set_str(j, "sourceKey", sr) ||
	    js_set_str(j, "destinationKey", dr) ||
	    js_set_str(j, "destinationBucket", dbk))
		rc = MFS_ENOMEM;
	if (!rc && copy && meta) {
		struct js *sm = js_obj();

		if (js_set_bool(j, "copyMetadata", 0) ||
		    js_set_str(sm, "mimetype", meta->content_type &&
			       *meta->content_type ? meta->content_type :
			       "application/octet-stream") ||
		    (meta->cache_control && *meta->cache_control &&
		     js_set_str(sm, "cacheControl", meta->cache_control)))
			rc = MFS_ENOMEM;
		if (js_set(j, "metadata", sm))
			rc = MFS_ENOMEM;
		mj = user_meta_json(meta);
		mb = mj ? b64(mj) : NULL;
		hmd = mb ? str_fmt("x-metadata: %s", mb) : NULL;
		if (!hmd)
			rc = MFS_ENOMEM;
		else
			h[n++] = hmd;
	}
	if (copy)
		h[n++] = "x-upsert: true";
	body = j ? js_dump(j, 0) : NULL;
	url = str_fmt("%s/object/%s", sb->base, op);
	if (!rc && (!body || !url))
		rc = MFS_ENOMEM;
	js_free(j);
	if (rc)
		goto out;
	c.method = "POST";
	c.url = url;
	c.what = src;
	c.headers = h;
	c.json = body;
	c.counter = copy ? &be->stats.copy : &be->stats.other;
	rc = sb_json(be, &c, reply, eb);
out:
	free(sbk);
	free(dbk);
	free(url);
	free(body);
	free(mj);
	free(mb);
	free(hmd);
	return rc;
}

static enum mfs_err sb_copy(struct backend *be, const char *src,
			    const char *dst, const struct put_meta *meta,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct js *j = NULL;
	enum mfs_err rc = move_or_copy(be, "copy", src, dst, meta, &j, eb);

	if (!rc && out) {
		meta_from_sys(j, out);
		if (meta) {
			struct obj_meta m;

			out_from_meta(&m, out->size, meta);
			memcpy(m.etag, out->etag, sizeof(m.etag));
			*out = m;
		} else {
			meta_from_user(js_get(j, "user_metadata"), out);
		}
	}
	js_free(j);
	return rc;
}

/* Server-side move; the API never replaces, so a target is deleted first
 * (not atomic: API-NOTES D2). */
static enum mfs_err sb_move(struct backend *be, const char *src,
			    const char *dst, struct errbuf *eb);

static enum mfs_err sb_del(struct backend *be, const char *key,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *rest;
	char *rk = real_key(key), *bucket = NULL, *url = NULL;
	enum mfs_err rc = rk ? split(rk, &bucket, &rest) : MFS_ENOMEM;

	if (!rc && !*rest)
		rc = eb_set(eb, MFS_EINVAL, "%s: not inside a bucket", key);
	if (!rc && !(url = obj_url(sb, "object", bucket, rest)))
		rc = MFS_ENOMEM;
	if (!rc) {
		c.method = "DELETE";
		c.url = url;
		c.what = key;
		c.counter = &be->stats.del;
		http_response_init(&resp);
		rc = sb_do(be, &c, &resp, eb);
		http_response_cleanup(&resp);
		if (rc == MFS_ENOTFOUND)
			rc = MFS_OK;
	}
	free(rk);
	free(bucket);
	free(url);
	return rc;
}

static enum mfs_err sb_move(struct backend *be, const char *src,
			    const char *dst, struct errbuf *eb)
{
	struct js *j = NULL;
	enum mfs_err rc = move_or_copy(be, "move", src, dst, NULL, &j, eb);

	js_free(j);
	if (rc == MFS_EEXIST) {
		j = NULL;
		rc = sb_del(be, dst, eb);
		if (!rc)
			rc = move_or_copy(be, "move", src, dst, NULL, &j, eb);
		js_free(j);
	}
	return rc;
}

/* Batch delete, one request per bucket run of at most 1000 keys; missing
 * keys are skipped by the server. */
static enum mfs_err sb_del_many(struct backend *be, const char *const *keys,
				int n, int *failed, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	enum mfs_err rc = MFS_OK;
	int i = 0;

	*failed = 0;
	while (i < n && !rc) {
		struct js *arr = js_arr(), *j = NULL;
		struct sb_call c = { 0 };
		const char *rest;
		char *bucket = NULL, *rk = real_key(keys[i]), *url = NULL;
		char *body = NULL;
		size_t blen;

		rc = rk && arr ? split(rk, &bucket, &rest) : MFS_ENOMEM;
		free(rk);
		blen = bucket ? strlen(bucket) : 0;
		for (; !rc && i < n; i++) {
			rk = real_key(keys[i]);
			if (!rk) {
				rc = MFS_ENOMEM;
				break;
			}
			if (strncmp(rk, bucket, blen) || rk[blen] != '/') {
				free(rk);
				break;	/* another bucket: next request */
			}
			if (js_push_str(arr, rk + blen + 1))
				rc = MFS_ENOMEM;
			free(rk);
		}
		if (!rc && js_len(arr)) {
			struct js *o = js_obj();

			if (js_set(o, "prefixes", arr))
				rc = MFS_ENOMEM;
			arr = NULL;
			body = rc ? NULL : js_dump(o, 0);
			js_free(o);
			url = obj_url(sb, "object", bucket, "");
			if (!body || !url)
				rc = MFS_ENOMEM;
			c.method = "DELETE";
			c.url = url;
			c.what = bucket;
			c.json = body;
			c.counter = &be->stats.del;
			if (!rc)
				rc = sb_json(be, &c, &j, eb);
			js_free(j);
		}
		js_free(arr);
		free(bucket);
		free(url);
		free(body);
	}
	return rc;
}

static enum mfs_err sb_mkdir(struct backend *be, const char *dir,
			     const struct put_meta *meta, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct put_body empty = { -1, 0, 0, NULL, NULL };
	struct sb_call c = { 0 };
	struct js *j = NULL;
	char *body = NULL, *url, *k;
	enum mfs_err rc;

	(void)meta;
	if (strchr(dir, '/')) {
		/* an empty folder: its placeholder object */
		const char *rest;
		char *bucket = NULL;

		k = str_fmt("%s/%s", dir, PLACEHOLDER);
		rc = k ? split(k, &bucket, &rest) : MFS_ENOMEM;
		if (!rc)
			rc = put_single(be, bucket, rest, k, &empty,
					"application/octet-stream", NULL, NULL,
					eb);
		free(bucket);
		free(k);
		return rc;
	}
	j = js_obj();
	if (!js_set_str(j, "id", dir) && !js_set_str(j, "name", dir) &&
	    !js_set_bool(j, "public", sb->public_new))
		body = js_dump(j, 0);
	js_free(j);
	j = NULL;
	url = str_fmt("%s/bucket", sb->base);
	if (!body || !url) {
		free(body);
		free(url);
		return MFS_ENOMEM;
	}
	c.method = "POST";
	c.url = url;
	c.what = dir;
	c.json = body;
	rc = sb_json(be, &c, &j, eb);
	js_free(j);
	if (!rc) {
		remember_bucket(sb, dir, sb->public_new);
		log_info("remote [%s]: created %s bucket '%s'", be->name,
			 sb->public_new ? "public" : "private", dir);
	}
	free(body);
	free(url);
	return rc;
}

static enum mfs_err sb_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	char *k, *url;
	enum mfs_err rc;

	if (strchr(dir, '/')) {
		k = str_fmt("%s/", dir);
		rc = k ? sb_del(be, k, eb) : MFS_ENOMEM;
		free(k);
		return rc;
	}
	url = obj_url(sb, "bucket", dir, "");
	if (!url)
		return MFS_ENOMEM;
	c.method = "DELETE";
	c.url = url;
	c.what = dir;
	http_response_init(&resp);
	rc = sb_do(be, &c, &resp, eb);
	http_response_cleanup(&resp);
	if (!rc) {
		forget_bucket(sb, dir);
		log_info("remote [%s]: deleted bucket '%s'", be->name, dir);
	}
	free(url);
	return rc;
}

static void sb_free(struct backend *be)
{
	struct supa *sb;
	int i;

	if (!be)
		return;
	sb = be->priv;
	if (sb) {
		http_client_free(sb->http);
		free(sb->base);
		if (sb->key) {
			explicit_bzero(sb->key, strlen(sb->key));
			free(sb->key);
		}
		for (i = 0; i < sb->nbuckets; i++)
			free(sb->buckets[i].name);
		free(sb->buckets);
		pthread_mutex_destroy(&sb->lock);
	}
	backend_dealloc(be);
}

static const struct backend_ops sb_ops = {
	.type = "supabase",
	.caps = BE_CAP_RANGE_READ | BE_CAP_WRITE | BE_CAP_SERVER_COPY |
		BE_CAP_USER_MTIME | BE_CAP_DIR_MARKERS | BE_CAP_BUCKETS,
	.list = sb_list,
	.head = sb_head,
	.get = sb_get,
	.url = sb_url,
	.put = sb_put,
	.copy = sb_copy,
	.move = sb_move,
	.del = sb_del,
	.del_many = sb_del_many,
	.mkdir = sb_mkdir,
	.rmdir = sb_rmdir,
	.check_key = sb_check_key,
	.free = sb_free,
};

/* ---- configuration ---- */

static const char *const sb_keys[] = {
	"type", "url", "key", "public_buckets", "tus_threshold", "retries",
	"retry_base_ms", "ca_file", NULL
};

enum mfs_err supabase_backend_create(struct ini *ini, struct ini_section *sec,
				     struct backend **out, struct errbuf *eb)
{
	struct backend *be = backend_alloc(&sb_ops, sec, sizeof(struct supa));
	struct supa *sb;
	const char *v;
	char where[300], what[160];
	enum mfs_err rc;
	int b = 0;

	*out = NULL;
	if (!be)
		return MFS_ENOMEM;
	sb = be->priv;
	pthread_mutex_init(&sb->lock, NULL);
	snprintf(where, sizeof(where), "%s:%d: [%s]", ini->path, sec->line,
		 sec->name);
	rc = backend_check_keys(ini, sec, sb_keys, eb);
	v = ini_get(sec, "url");
	if (rc)
		;
	else if (!v || (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s needs 'url = https://<project-ref>.supabase.co' (http:// or https://)",
			    where);
	else {
		size_t len = strlen(v);

		while (len && v[len - 1] == '/')
			len--;
		if (len >= 11 && !strncmp(v + len - 11, "/storage/v1", 11))
			sb->base = str_ndup(v, len);
		else
			sb->base = str_fmt("%.*s/storage/v1", (int)len, v);
		if (!sb->base)
			rc = MFS_ENOMEM;
	}
	v = ini_get(sec, "key");
	if (!rc && (!v || !*v))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s needs 'key = env:SUPABASE_SERVICE_ROLE_KEY' (or file:PATH, or the key)",
			    where);
	snprintf(what, sizeof(what), "key in [%s]", sec->name);
	if (!rc)
		rc = secret_resolve(ini, v, what, &sb->key, eb);
	if (!rc && !*sb->key)
		rc = eb_set(eb, MFS_EINVAL, "%s: the key is empty", where);
	if (!rc)
		sb->jwt = !str_starts(sb->key, "sb_secret_") &&
			  !str_starts(sb->key, "sb_publishable_");
	v = ini_get(sec, "public_buckets");
	if (!rc && v && str_parse_bool(v, &b))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: public_buckets must be true or false, not '%s'",
			    where, v);
	sb->public_new = b;
	if (!rc)
		rc = backend_opt_u64(sec, "tus_threshold", TUS_CHUNK, 5ULL << 30,
				     where, &sb->tus_threshold, eb);
	if (!rc)
		rc = backend_http(sec, 10, where, &sb->retries, &sb->backoff_ms,
				  &sb->http, eb);
	if (!rc) {
		be->ident = str_fmt("supabase %s", sb->base);
		if (!be->name || !be->ident)
			rc = MFS_ENOMEM;
	}
	if (rc) {
		sb_free(be);
		return rc;
	}
	*out = be;
	return MFS_OK;
}
