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
 * TUS errors are text/plain: their text is the reason. api_path ("/" for
 * a server without the gateway, F16) prefixes every route.
 * Writes (and their proof) live in supabase_write.c. Calls: net (http,
 * json), common.
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
#include "supabase_int.h"

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
enum mfs_err supabase_split(const char *key, char **bucket, const char **rest)
{
	const char *s = strchr(key, '/');

	*bucket = s ? str_ndup(key, (size_t)(s - key)) : strdup(key);
	*rest = s ? s + 1 : key + strlen(key);
	return *bucket ? MFS_OK : MFS_ENOMEM;
}

/* base + "/" + part + "/" + encoded key (per segment). */
char *supabase_obj_url(struct supa *sb, const char *part, const char *bucket,
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
char *supabase_real_key(const char *key)
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
	if (!body->len)
		return;
	if (js_parse(body->data, body->len, &j, NULL) || !js_is_obj(j)) {
		/* TUS answers text/plain ("Maximum size exceeded",
		 * API-NOTES F12, F15): the text is the reason */
		size_t i, n = 0;

		js_free(j);
		for (i = 0; i < body->len && n < sizeof(e->message) - 1; i++) {
			unsigned char ch = (unsigned char)body->data[i];

			e->message[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch
								  : ' ';
		}
		while (n && e->message[n - 1] == ' ')
			n--;
		e->message[n] = '\0';
		return;
	}
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
	    (st == 409 && !strcmp(e->error, "Duplicate")) ||
	    (st == 409 && !e->code[0] && strstr(e->message, "already exists")))
		return eb_set(eb, MFS_EEXIST, "%s: already exists", what);
	if (st == 409 && !e->code[0] && strstr(e->message, "Offset"))
		return eb_set(eb, MFS_ECONFLICT, "%s: %s", what, e->message);
	if (code_is(e, "InvalidKey"))
		return eb_set(eb, MFS_EINVAL, "%s: the server refused the key: %s",
			      what, msg);
	if (code_is(e, "AccessDenied") || code_is(e, "InvalidJWT") ||
	    st == 403 || st == 401)
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: the server refused the key (%s): key must be the project's service_role key or an sb_secret_ key",
			      be->name, msg[0] ? msg : "access denied");
	if (code_is(e, "EntityTooLarge") || st == 413)
		return eb_set(eb, MFS_EFBIG,
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
			      "remote [%s]: the server has no route %s %s (is url the project URL? a server without the API gateway wants api_path = /)",
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

enum mfs_err supabase_do(struct backend *be, const struct sb_call *c,
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
		if (rc == MFS_ETRANSIENT && c->once)
			goto out;
		if (rc == MFS_ETRANSIENT)
			continue;
		if (rc)
			goto out;
		if (resp->status >= 200 && resp->status < 300)
			goto out;
		parse_error(&resp->body, &e);
		if (retryable(resp->status, &e) && c->once) {
			classify(be, c, resp->status, &e, eb);
			rc = MFS_ETRANSIENT;
			goto out;
		}
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
enum mfs_err supabase_json(struct backend *be, struct sb_call *c,
			    struct js **out, struct errbuf *eb)
{
	struct http_response resp;
	enum mfs_err rc;

	*out = NULL;
	if (!c->max_body)
		c->max_body = LIST_MAX_BODY;
	http_response_init(&resp);
	rc = supabase_do(be, c, &resp, eb);
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

void supabase_strip_etag(const char *in, char *out, size_t cap)
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
void supabase_meta_from_sys(const struct js *entry, struct obj_meta *m)
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
	supabase_strip_etag(js_get_str(sm, "eTag"), m->etag, sizeof(m->etag));
	v = js_get_str(sm, "mimetype");
	if (v)
		snprintf(m->content_type, sizeof(m->content_type), "%s", v);
	v = js_get_str(sm, "cacheControl");
	if (v)
		snprintf(m->cache_control, sizeof(m->cache_control), "%s", v);
}

/* User metadata: mtime (rclone style decimal seconds) and mode. */
void supabase_meta_from_user(const struct js *um, struct obj_meta *m)
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
	else if (!js_num(v, &d) && !str_secs_to_ns(d, &ns))
		m->mtime_ns = ns;
	v = js_get(um, "mode");
	if (js_str(v) && !str_parse_u64(js_str(v), &mode) && mode <= 0177777)
		m->mode = (uint32_t)mode & 07777;
	else if (!js_str(v) && !js_int(v, &n) && n >= 0 && n <= 0177777)
		m->mode = (uint32_t)n & 07777;
}

/* ---- buckets ---- */

void supabase_remember_bucket(struct supa *sb, const char *name, int public)
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

void supabase_forget_bucket(struct supa *sb, const char *name)
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
	char *url = supabase_obj_url(sb, "bucket", bucket, "");

	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = bucket;
	c.counter = &be->stats.head;
	rc = supabase_json(be, &c, &j, eb);
	if (!rc && !js_is_obj(j))
		rc = eb_set(eb, MFS_EPROTO, "bucket %s: reply is not an object",
			    bucket);
	if (!rc) {
		supabase_remember_bucket(sb, bucket,
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
	rc = supabase_json(be, &c, &j, eb);
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
		supabase_remember_bucket(sb, name,
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
	if (!n)
		return MFS_OK;
	if (!dir && !strcmp(name, PLACEHOLDER)) {
		/* the folder's own marker: named "" */
		struct obj_meta dm = *m;

		dm.kind = OBJ_DIR;
		dm.size = 0;
		return cb(ud, "", &dm);
	}
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
	rc = supabase_json(be, &c, j, eb);
	free(body);
	return rc;
}

static enum mfs_err list_v2(struct backend *be, const char *bucket,
			    const char *prefix, backend_list_cb cb, void *ud,
			    struct errbuf *eb)
{
	struct supa *sb = be->priv;
	char *url = supabase_obj_url(sb, "object/list-v2", bucket, "");
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
			supabase_meta_from_sys(js_at(o, i), &m);
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
	char *url = supabase_obj_url(sb, "object/list", bucket, "");
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
				supabase_meta_from_sys(e, &m);
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
	rc = supabase_split(dir, &bucket, &rest);
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

enum mfs_err supabase_info(struct backend *be, const char *key,
			   struct obj_meta *out, char *version,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	struct js *j = NULL;
	const char *rest, *v;
	char *bucket, *url;
	enum mfs_err rc = supabase_split(key, &bucket, &rest);

	if (rc)
		return rc;
	if (!*rest) {
		rc = bucket_info(be, bucket, out, eb);
		free(bucket);
		return rc;
	}
	url = supabase_obj_url(sb, "object/info/authenticated", bucket, rest);
	free(bucket);
	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = key;
	c.counter = &be->stats.head;
	rc = supabase_json(be, &c, &j, eb);
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
		supabase_strip_etag(js_get_str(j, "etag"), out->etag, sizeof(out->etag));
		v = js_get_str(j, "content_type");
		if (v)
			snprintf(out->content_type, sizeof(out->content_type),
				 "%s", v);
		v = js_get_str(j, "cache_control");
		if (v)
			snprintf(out->cache_control,
				 sizeof(out->cache_control), "%s", v);
		supabase_meta_from_user(js_get(j, "metadata"), out);
		if (version)
			snprintf(version, 80, "%s",
				 js_get_str(j, "version") ?
				 js_get_str(j, "version") : "");
	}
	js_free(j);
	free(url);
	return rc;
}

enum mfs_err supabase_head(struct backend *be, const char *key,
			   struct obj_meta *out, struct errbuf *eb)
{
	return supabase_info(be, key, out, NULL, eb);
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
	enum mfs_err rc = supabase_split(key, &bucket, &rest);

	*got = 0;
	if (rc || !len)
		return rc;
	url = supabase_obj_url(sb, "object/authenticated", bucket, rest);
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
	rc = supabase_do(be, &c, &resp, eb);
	if (!rc) {
		/* no If-Match on this API: compare after the fact */
		supabase_strip_etag(http_header(&resp, "etag"), seen, sizeof(seen));
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
	enum mfs_err rc = supabase_split(key, &bucket, &rest);
	int pub;

	*out = NULL;
	if (rc)
		return rc;
	pub = known_bucket(sb, bucket);
	if (pub < 0 && !bucket_info(be, bucket, NULL, NULL))
		pub = known_bucket(sb, bucket);
	*out = supabase_obj_url(sb, pub == 1 ? "object/public" : "object/authenticated",
		       bucket, rest);
	free(bucket);
	return *out ? MFS_OK : MFS_ENOMEM;
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
		keylock_free(sb->moves);
		free(sb->base);
		free(sb->origin);
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
		BE_CAP_USER_MTIME | BE_CAP_DIR_MARKERS | BE_CAP_BUCKETS |
		BE_CAP_TYPES |
		BE_CAP_MARKER_OBJECTS,
	.list = sb_list,
	.head = supabase_head,
	.get = sb_get,
	.url = sb_url,
	.put = supabase_put,
	.copy = supabase_copy,
	.move = supabase_move,
	.del = supabase_del,
	.del_many = supabase_del_many,
	.mkdir = supabase_mkdir,
	.rmdir = supabase_rmdir,
	.check_key = sb_check_key,
	.free = sb_free,
};

/* ---- configuration ---- */

static const char *const sb_keys[] = {
	"type", "url", "api_path", "key", "public_buckets", "tus_threshold",
	"retries", "retry_base_ms", "ca_file", NULL
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
	sb->moves = keylock_new();
	if (!sb->moves) {
		sb_free(be);
		return MFS_ENOMEM;
	}
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

		const char *ap = ini_get(sec, "api_path");
		const char *host = strstr(v, "://") + 3;
		size_t hl = strcspn(host, "/");

		while (len && v[len - 1] == '/')
			len--;
		if (!ap)	/* the gateway's prefix (API-NOTES F16) */
			ap = "/storage/v1";
		while (*ap == '/')
			ap++;
		if (len >= 11 && !strncmp(v + len - 11, "/storage/v1", 11))
			sb->base = str_ndup(v, len);
		else
			sb->base = str_fmt("%.*s%s%s", (int)len, v,
					   *ap ? "/" : "", ap);
		sb->origin = str_ndup(v, (size_t)(host - v) + hl);
		if (!sb->base || !sb->origin)
			rc = MFS_ENOMEM;
		else if (strlen(sb->base) > 1 &&
			 sb->base[strlen(sb->base) - 1] == '/')
			sb->base[strlen(sb->base) - 1] = '\0';
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
