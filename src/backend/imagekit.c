/* imagekit.c - the ImageKit media library through its REST API (API-NOTES
 * C, D3). Folders are directories; the remote's keys are file paths below
 * an optional root folder.
 *
 * Listing: GET /v1/files?path=&type=all&sort=ASC_NAME, skip/limit paging
 * (no cursor: a fixed sort, and names seen on an earlier page are dropped).
 * Listings carry everything stat needs, custom metadata included, so the
 * core never asks head for a listed file; head is a name search in the
 * parent folder (file, then folder). Reads fetch the file's URL with
 * tr=orig-true (the original bytes, not the CDN's optimised ones) and the
 * version id as a cache-buster (a CDN may serve the previous version of an
 * overwritten file under the plain URL), ranged, tolerating 200.
 * Uploads: multipart POST with useUniqueFileName=false and overwriteFile=true
 * (an overwrite is a new version of the same fileId), mtime and mode in the
 * custom metadata fields "mtime" and "mode" (created once when missing).
 * An upload is never retried blindly: after a failure the folder is searched
 * first, and an object of the right size and mtime counts as uploaded.
 * Names are checked before anything is sent: ImageKit would silently turn
 * every character but letters, digits, '.', '-' and '_' into '_'.
 * Rename: same folder = the rename API; other folder = move (+ rename); a
 * target that exists is refused (the API would stack the source onto it as
 * versions). Directory rename = the renameFolder/moveFolder bulk jobs,
 * polled to completion. rmdir deletes a folder only after checking it is
 * empty (the API's delete is recursive). Empty files cannot be stored.
 *
 * Errors are classified by HTTP status (ImageKit's bodies only carry a
 * message): 429 waits X-RateLimit-Reset milliseconds; 408, 500, 502, 503
 * and 504 are retried with backoff.
 * A path -> (fileId, url, version) index, filled by listings, searches and
 * uploads, spares a search before deletes, reads and renames.
 * Calls: net (http, json), common. The index is guarded by lock; the rest
 * of struct ik is read-only after creation (fields: fields_lock).
 */
#include <openssl/evp.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"
#include "net/http.h"
#include "net/json.h"

#define LIST_MAX_BODY (64 * 1024 * 1024)
#define IDX_BUCKETS 4096
#define MAX_429 200		/* rate-limited answers before giving up */
#define JOB_TIMEOUT_S 3600
#define SEEN_BACK 2000		/* names compared for page overlaps */

struct ik_ent {
	char *key;
	char *file_id;
	char *url;
	char *version;
	struct ik_ent *next;
};

struct ik {
	char *api;		/* "https://api.imagekit.io", no trailing '/' */
	char *upload;		/* "https://upload.imagekit.io" */
	char *endpoint;		/* URL endpoint, no trailing '/' */
	char *root;		/* "" or "/folder" (no trailing '/') */
	char *auth;		/* "Authorization: Basic ..." (secret) */
	int retries;
	long backoff_ms;
	int list_limit;
	struct http_client *http;

	pthread_mutex_t fields_lock;
	int fields;		/* guarded: 0 unknown, 1 ready, -1 unusable */

	pthread_mutex_t lock;
	struct ik_ent *idx[IDX_BUCKETS];	/* guarded */
};

struct ik_call {
	const char *method;
	const char *url;
	const char *what;		/* for messages */
	const char *json;		/* JSON body */
	const void *body;		/* or memory */
	size_t body_len;
	const char *ctype;		/* of body */
	const char *range;		/* "Range: ..." */
	int noauth;			/* delivery: never send the key */
	int once;			/* no retry (uploads) */
	char *dst;
	size_t dst_cap;
	uint64_t skip_on_200;
	unsigned long *counter;
};

/* ---- names ---- */

static int name_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int ik_check_key(struct backend *be, const char *key, int is_dir,
			char *why, size_t cap)
{
	const char *p;

	(void)be;
	(void)is_dir;
	for (p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '/' || name_char_ok(c))
			continue;
		if (c >= 0x80)
			snprintf(why, cap, "ImageKit would store non-ASCII characters as '_' (names keep only letters, digits, '.', '-' and '_')");
		else
			snprintf(why, cap, "ImageKit would store '%c' as '_' (names keep only letters, digits, '.', '-' and '_')",
				 c);
		return 1;
	}
	return 0;
}

/* "/root/key" (the file or folder path on ImageKit), malloc'd. */
static char *ik_path(const struct ik *ik, const char *key)
{
	return *key ? str_fmt("%s/%s", ik->root, key)
		    : strdup(*ik->root ? ik->root : "/");
}

/* The folder path holding key ("/" at the top) and key's last name. */
/* The last name of key. */
static const char *base_name(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? s + 1 : key;
}

static char *ik_parent(const struct ik *ik, const char *key,
		       const char **name)
{
	const char *s = strrchr(key, '/');

	*name = base_name(key);
	if (!s)
		return strdup(*ik->root ? ik->root : "/");
	return str_fmt("%s/%.*s", ik->root, (int)(s - key), key);
}

/* ---- the path index ---- */

static unsigned idx_hash(const char *s)
{
	unsigned h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h % IDX_BUCKETS;
}

static void ent_free(struct ik_ent *e)
{
	free(e->key);
	free(e->file_id);
	free(e->url);
	free(e->version);
	free(e);
}

static void idx_put(struct ik *ik, const char *key, const char *file_id,
		    const char *url, const char *version)
{
	struct ik_ent *e, **pp;
	unsigned h = idx_hash(key);

	if (!file_id || !*file_id)
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->key = strdup(key);
	e->file_id = strdup(file_id);
	e->url = url ? strdup(url) : NULL;
	e->version = strdup(version ? version : "");
	if (!e->key || !e->file_id || !e->version || (url && !e->url)) {
		ent_free(e);
		return;
	}
	pthread_mutex_lock(&ik->lock);
	for (pp = &ik->idx[h]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key)) {
			struct ik_ent *old = *pp;

			e->next = old->next;
			*pp = e;
			ent_free(old);
			pthread_mutex_unlock(&ik->lock);
			return;
		}
	e->next = ik->idx[h];
	ik->idx[h] = e;
	pthread_mutex_unlock(&ik->lock);
}

/* A copy of key's entry (caller frees with ent_free), NULL if unknown. */
static struct ik_ent *idx_get(struct ik *ik, const char *key)
{
	struct ik_ent *e, *c = NULL;

	pthread_mutex_lock(&ik->lock);
	for (e = ik->idx[idx_hash(key)]; e; e = e->next)
		if (!strcmp(e->key, key))
			break;
	if (e && (c = calloc(1, sizeof(*c)))) {
		c->key = strdup(e->key);
		c->file_id = strdup(e->file_id);
		c->url = e->url ? strdup(e->url) : NULL;
		c->version = strdup(e->version);
		if (!c->key || !c->file_id || !c->version ||
		    (e->url && !c->url)) {
			ent_free(c);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&ik->lock);
	return c;
}

/* Forget key, or with prefix set everything at or below key/. */
static void idx_drop(struct ik *ik, const char *key, int prefix)
{
	size_t n = strlen(key);
	int b;

	pthread_mutex_lock(&ik->lock);
	for (b = prefix ? 0 : (int)idx_hash(key);
	     b < (prefix ? IDX_BUCKETS : (int)idx_hash(key) + 1); b++) {
		struct ik_ent **pp = &ik->idx[b];

		while (*pp) {
			struct ik_ent *e = *pp;
			int hit = prefix ? !strncmp(e->key, key, n) &&
					   (e->key[n] == '/' || !e->key[n])
					 : !strcmp(e->key, key);

			if (hit) {
				*pp = e->next;
				ent_free(e);
			} else {
				pp = &e->next;
			}
		}
	}
	pthread_mutex_unlock(&ik->lock);
}

/* ---- the request loop ---- */

static enum mfs_err classify(struct backend *be, const struct ik_call *c,
			     const struct http_response *resp,
			     struct errbuf *eb)
{
	struct js *j = NULL;
	char msg[300] = "";
	long st = resp->status;

	if (resp->body.len &&
	    !js_parse(resp->body.data, resp->body.len, &j, NULL) &&
	    js_str(js_get(j, "message")))
		snprintf(msg, sizeof(msg), "%s", js_str(js_get(j, "message")));
	js_free(j);
	if (st == 401 || st == 403)
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: ImageKit refused the private key (%s)",
			      be->name, msg[0] ? msg : "access denied");
	if (st == 404)
		return eb_set(eb, MFS_ENOTFOUND, "%s: not found%s%s", c->what,
			      msg[0] ? ": " : "", msg);
	if (st == 409)
		return eb_set(eb, MFS_EEXIST, "%s: %s", c->what,
			      msg[0] ? msg : "already exists");
	if (st == 416)
		return eb_set(eb, MFS_ERANGE, "%s: range beyond the end",
			      c->what);
	if (st == 413)
		return eb_set(eb, MFS_EFBIG,
			      "%s: too large for the account's upload limit (%s)",
			      c->what, msg);
	if (st == 400)
		return eb_set(eb, MFS_EINVAL, "%s %s: ImageKit refused it: %s",
			      c->method, c->what, msg[0] ? msg : "HTTP 400");
	return eb_set(eb, MFS_EIO, "%s %s: HTTP %ld%s%s", c->method, c->what,
		      st, msg[0] ? ": " : "", msg);
}

static int worth_retrying(long st)
{
	return st == 408 || st == 500 || st == 502 || st == 503 || st == 504;
}

static enum mfs_err ik_do(struct backend *be, const struct ik_call *c,
			  struct http_response *resp, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *hdr[8];
	char *ctype = NULL;
	enum mfs_err rc = MFS_EIO;
	int attempt = 0, limited = 0, n = 0;

	if (!c->noauth)
		hdr[n++] = ik->auth;
	hdr[n++] = "Expect:";
	if (c->json)
		hdr[n++] = "Content-Type: application/json";
	else if (c->ctype && (ctype = str_fmt("Content-Type: %s", c->ctype)))
		hdr[n++] = ctype;
	if (c->range)
		hdr[n++] = c->range;
	hdr[n] = NULL;

	for (;;) {
		struct http_request req = { 0 };
		long wait = -1;

		req.method = c->method;
		req.url = c->url;
		req.headers = hdr;
		req.body_fd = -1;
		if (c->json) {
			req.body = c->json;
			req.body_len = strlen(c->json);
		} else if (c->body) {
			req.body = c->body;
			req.body_len = c->body_len;
		}
		req.dst = c->dst;
		req.dst_cap = c->dst_cap;
		req.skip_on_200 = c->skip_on_200;
		req.max_body = LIST_MAX_BODY;
		__atomic_add_fetch(c->counter ? c->counter : &be->stats.other,
				   1, __ATOMIC_RELAXED);
		rc = http_perform(ik->http, &req, resp, eb);
		if (!rc && resp->status >= 200 && resp->status < 300)
			break;
		if (!rc && resp->status == 429 && ++limited <= MAX_429) {
			/* the rate limiter says how long, in milliseconds */
			const char *r = http_header(resp, "x-ratelimit-reset");

			wait = r && atol(r) > 0 ? atol(r) : 1000;
			if (wait > 60000)
				wait = 60000;
			log_dbg(LOG_SUB_HTTP, "%s %s: rate limited, waiting %ld ms",
				c->method, c->what, wait);
		} else if (!rc && !worth_retrying(resp->status)) {
			rc = classify(be, c, resp, eb);
			break;
		} else if (rc && rc != MFS_ETRANSIENT) {
			break;
		}
		if (c->once && wait < 0) {
			/* the caller re-checks before any retry (a 429 was
			 * refused before any work: that one waits here) */
			if (!rc)
				classify(be, c, resp, eb);
			rc = MFS_ETRANSIENT;
			break;
		}
		if (wait < 0) {
			if (attempt >= ik->retries) {
				if (!rc)
					classify(be, c, resp, eb);
				eb_prefix(eb, "%s %s: gave up after %d retries",
					  c->method, c->what, ik->retries);
				rc = MFS_EIO;
				break;
			}
			wait = http_backoff_ms(attempt++, ik->backoff_ms, 20000);
		}
		__atomic_add_fetch(&be->stats.retries, 1, __ATOMIC_RELAXED);
		http_sleep_ms(wait);
	}
	free(ctype);
	return rc;
}

/* A call whose 2xx body is JSON (or empty: *out stays NULL). */
static enum mfs_err ik_json(struct backend *be, struct ik_call *c,
			    struct js **out, struct errbuf *eb)
{
	struct http_response resp;
	enum mfs_err rc;

	if (out)
		*out = NULL;
	http_response_init(&resp);
	rc = ik_do(be, c, &resp, eb);
	if (!rc && out && resp.body.len) {
		rc = js_parse(resp.body.data, resp.body.len, out, eb);
		if (rc)
			eb_prefix(eb, "%s %s: reply", c->method, c->what);
	}
	http_response_cleanup(&resp);
	return rc;
}

/* A JSON request to the API: method path body, reply in *out (may be
 * NULL). */
static enum mfs_err api(struct backend *be, const char *method,
			const char *path, const char *json, const char *what,
			struct js **out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_call c = { 0 };
	char *url = str_fmt("%s%s", ik->api, path);
	enum mfs_err rc;

	if (!url)
		return MFS_ENOMEM;
	c.method = method;
	c.url = url;
	c.what = what;
	c.json = json;
	rc = ik_json(be, &c, out, eb);
	free(url);
	return rc;
}

/* An API call whose body is {k1: v1[, k2: v2][, "purgeCache": false]}
 * (k2 NULL: one member). */
static enum mfs_err api2(struct backend *be, const char *method,
			 const char *path, const char *what, const char *k1,
			 const char *v1, const char *k2, const char *v2,
			 int purge, struct js **out, struct errbuf *eb)
{
	struct js *j = js_obj();
	char *body = NULL;
	enum mfs_err rc;

	if (j && !js_set_str(j, k1, v1) && (!k2 || !js_set_str(j, k2, v2)) &&
	    (!purge || !js_set_bool(j, "purgeCache", 0)))
		body = js_dump(j, 0);
	js_free(j);
	rc = body ? api(be, method, path, body, what, out, eb) : MFS_ENOMEM;
	free(body);
	return rc;
}

/* ---- files as our metadata ---- */

static void meta_from_file(const struct js *f, struct obj_meta *m)
{
	const struct js *cm = js_get(f, "customMetadata");
	const char *v;
	int64_t n, ns;
	double d;

	memset(m, 0, sizeof(*m));
	m->kind = OBJ_FILE;
	m->full = 1;	/* listings carry the custom metadata */
	if (!js_int(js_get(f, "size"), &n) && n > 0)
		m->size = (uint64_t)n;
	v = js_get_str(f, "updatedAt");
	if (v && str_parse_iso8601(v, &m->server_mtime_ns))
		m->server_mtime_ns = 0;
	m->mtime_ns = m->server_mtime_ns;
	if (!js_num(js_get(cm, "mtime"), &d) && d > 0 &&
	    !str_secs_to_ns(d + 0.5e-9, &ns))
		m->mtime_ns = ns;
	if (!js_int(js_get(cm, "mode"), &n) && n > 0)
		m->mode = (uint32_t)n & 07777;
	v = js_get_str(js_get(f, "versionInfo"), "id");
	snprintf(m->etag, sizeof(m->etag), "%s", v ? v : "");
	v = js_get_str(f, "mime");
	snprintf(m->content_type, sizeof(m->content_type), "%s", v ? v : "");
	v = js_get_str(f, "fileId");
	snprintf(m->id, sizeof(m->id), "%s", v ? v : "");
}

static void remember(struct ik *ik, const char *key, const struct js *f)
{
	idx_put(ik, key, js_get_str(f, "fileId"), js_get_str(f, "url"),
		js_get_str(js_get(f, "versionInfo"), "id"));
}

/* GET /v1/files with the query q (already encoded). */
static enum mfs_err files_query(struct backend *be, const char *q,
				const char *what, unsigned long *counter,
				struct js **out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_call c = { 0 };
	char *url = str_fmt("%s/v1/files?%s", ik->api, q);
	enum mfs_err rc;

	if (!url)
		return MFS_ENOMEM;
	c.method = "GET";
	c.url = url;
	c.what = what;
	c.counter = counter;
	rc = ik_json(be, &c, out, eb);
	if (!rc && !js_is_arr(*out)) {
		js_free(*out);
		*out = NULL;
		rc = eb_set(eb, MFS_EPROTO, "listing %s: the reply is not a JSON array",
			    what);
	}
	free(url);
	return rc;
}

static enum mfs_err add_enc(struct buf *b, const char *s)
{
	return str_uri_encode(b, s, strlen(s), 0);
}

/* Search the folder of key for it: a file (kind OBJ_FILE, remembered in
 * the index), else with dirs a folder. MFS_ENOTFOUND when neither. */
static enum mfs_err find(struct backend *be, const char *key, int dirs,
			 struct obj_meta *m, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *name, *kinds[] = { "file", "folder" }, *p;
	char *folder = ik_parent(ik, key, &name);
	enum mfs_err rc = folder ? MFS_ENOTFOUND : MFS_ENOMEM;
	int k;

	memset(m, 0, sizeof(*m));
	for (k = 0; k < (dirs ? 2 : 1) && rc == MFS_ENOTFOUND; k++) {
		struct buf q, sq;
		struct js *arr = NULL;
		size_t i;

		buf_init(&q, 0);
		buf_init(&sq, 0);
		/* quote the name for the query language */
		rc = buf_addf(&sq, "type = \"%s\" AND name = \"", kinds[k]);
		for (p = name; !rc && *p; p++)
			rc = (*p == '"' || *p == '\\') ? buf_addf(&sq, "\\%c", *p)
						       : buf_add(&sq, p, 1);
		if (!rc)
			rc = buf_adds(&sq, "\"");
		if (!rc)
			rc = buf_adds(&q, "path=");
		if (!rc)
			rc = add_enc(&q, folder);
		if (!rc)
			rc = buf_adds(&q, "&searchQuery=");
		if (!rc)
			rc = str_uri_encode(&q, sq.data, sq.len, 0);
		if (!rc)
			rc = buf_adds(&q, "&limit=10");
		if (!rc)
			rc = files_query(be, q.data, key, &be->stats.head,
					 &arr, eb);
		buf_cleanup(&q);
		buf_cleanup(&sq);
		if (rc)
			break;
		rc = MFS_ENOTFOUND;
		for (i = 0; i < js_len(arr); i++) {
			const struct js *o = js_at(arr, i);
			const char *n = js_get_str(o, "name");

			if (!n || strcmp(n, name))
				continue;	/* the query is a filter only */
			if (k == 0 && !strcmp(js_get_str(o, "type") ? js_get_str(o, "type")
					      : "file", "file")) {
				meta_from_file(o, m);
				remember(ik, key, o);
				rc = MFS_OK;
				break;
			}
			if (k == 1) {
				m->kind = OBJ_DIR;
				rc = MFS_OK;
				break;
			}
		}
		js_free(arr);
	}
	free(folder);
	return rc;
}

/* key's entry from the index, else from a search. */
static enum mfs_err lookup(struct backend *be, const char *key,
			   struct ik_ent **out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct obj_meta m;
	enum mfs_err rc;

	*out = idx_get(ik, key);
	if (*out)
		return MFS_OK;
	rc = find(be, key, 0, &m, eb);
	if (rc)
		return rc;
	*out = idx_get(ik, key);
	return *out ? MFS_OK : MFS_ENOMEM;
}

/* ---- reads ---- */

struct seen {
	char **names;
	size_t n, cap;
};

static int seen_add(struct seen *s, const char *name)
{
	size_t i;

	/* sorted by name, a name shifted onto the next page by a concurrent
	 * change is among the last page's: look no further back */
	for (i = 0; i < s->n && i < SEEN_BACK; i++)
		if (!strcmp(s->names[s->n - 1 - i], name))
			return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char **p = realloc(s->names, ncap * sizeof(*p));

		if (!p)
			return -1;
		s->names = p;
		s->cap = ncap;
	}
	s->names[s->n] = strdup(name);
	return s->names[s->n] ? (s->n++, 1) : -1;
}

static enum mfs_err ik_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct seen seen = { 0 };
	char *folder = ik_path(ik, dir);
	enum mfs_err rc = folder ? MFS_OK : MFS_ENOMEM;
	long skip = 0;
	size_t i;

	while (!rc) {
		struct buf q;
		struct js *arr = NULL;
		size_t got;

		buf_init(&q, 0);
		rc = buf_adds(&q, "path=");
		if (!rc)
			rc = add_enc(&q, folder);
		if (!rc)
			rc = buf_addf(&q, "&type=all&sort=ASC_NAME&limit=%d&skip=%ld",
				      ik->list_limit, skip);
		if (!rc)
			rc = files_query(be, q.data, *dir ? dir : "/",
					 &be->stats.list, &arr, eb);
		buf_cleanup(&q);
		if (rc)
			break;
		got = js_len(arr);
		for (i = 0; i < got && !rc; i++) {
			const struct js *o = js_at(arr, i);
			const char *name = js_get_str(o, "name"), *type = js_get_str(o, "type");
			struct obj_meta m = { 0 };
			int fresh;

			if (!name || !*name || strchr(name, '/'))
				continue;
			fresh = seen_add(&seen, name);
			if (fresh < 0)
				rc = MFS_ENOMEM;
			if (fresh <= 0)
				continue;
			if (type && !strcmp(type, "folder")) {
				m.kind = OBJ_DIR;
			} else {
				char *key = *dir ? str_fmt("%s/%s", dir, name)
						 : strdup(name);

				meta_from_file(o, &m);
				if (key)
					remember(ik, key, o);
				free(key);
			}
			if (!rc)
				rc = cb(ud, name, &m);
		}
		js_free(arr);
		if (got < (size_t)ik->list_limit)
			break;
		skip += ik->list_limit;
	}
	for (i = 0; i < seen.n; i++)
		free(seen.names[i]);
	free(seen.names);
	free(folder);
	return rc;
}

static enum mfs_err ik_head(struct backend *be, const char *key,
			    struct obj_meta *out, struct errbuf *eb)
{
	if (!*key) {
		memset(out, 0, sizeof(*out));
		out->kind = OBJ_DIR;
		return MFS_OK;
	}
	return find(be, key, 1, out, eb);
}

/* The URL the API gave for key, else the endpoint's; no request. */
static enum mfs_err ik_url(struct backend *be, const char *key, char **out)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = idx_get(ik, key);
	char *p;

	if (e && e->url) {
		*out = strdup(e->url);
	} else {
		p = ik_path(ik, key);
		*out = p ? str_uri_join(ik->endpoint, p) : NULL;
		free(p);
	}
	if (e)
		ent_free(e);
	return *out ? MFS_OK : MFS_ENOMEM;
}

static enum mfs_err ik_get(struct backend *be, const char *key, uint64_t off,
			   size_t len, const char *etag, char *dst,
			   size_t *got, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct http_response resp;
	struct ik_call c = { 0 };
	struct ik_ent *e = NULL;
	struct buf u;
	char range[80], *base = NULL;
	enum mfs_err rc;

	*got = 0;
	if (!len)
		return MFS_OK;
	rc = lookup(be, key, &e, eb);
	if (rc)
		return rc;
	if (etag && *etag && e->version[0] && strcmp(etag, e->version)) {
		ent_free(e);
		return eb_set(eb, MFS_ECONFLICT,
			      "%s changed on the server meanwhile", key);
	}
	buf_init(&u, 0);
	rc = ik_url(be, key, &base);
	if (!rc)
		rc = buf_adds(&u, base);
	free(base);
	/* the original bytes, this version's (a CDN keys on the query) */
	if (!rc)
		rc = buf_addf(&u, "%ctr=orig-true&v=", strchr(u.data, '?') ?
			      '&' : '?');
	if (!rc)
		rc = add_enc(&u, e->version);
	ent_free(e);
	if (rc) {
		buf_cleanup(&u);
		return rc;
	}
	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	c.method = "GET";
	c.url = u.data;
	c.what = key;
	c.range = range;
	c.noauth = 1;
	c.dst = dst;
	c.dst_cap = len;
	c.skip_on_200 = off;
	c.counter = &be->stats.get;
	http_response_init(&resp);
	rc = ik_do(be, &c, &resp, eb);
	if (!rc)
		*got = resp.dst_len;
	else if (rc == MFS_ERANGE)
		rc = MFS_OK;	/* at or past the end */
	else if (rc == MFS_ENOTFOUND)
		idx_drop(ik, key, 0);
	http_response_cleanup(&resp);
	buf_cleanup(&u);
	return rc;
}

static enum mfs_err ik_file_id(struct backend *be, const char *key,
			       char **out)
{
	struct errbuf eb = { 0 };
	struct ik_ent *e;
	enum mfs_err rc = lookup(be, key, &e, &eb);

	*out = NULL;
	if (rc)
		return rc == MFS_ENOTFOUND ? MFS_ENODATA : rc;
	*out = strdup(e->file_id);
	ent_free(e);
	return *out ? MFS_OK : MFS_ENOMEM;
}

/* ---- custom metadata fields ---- */

static const char *const FIELDS[] = { "mtime", "mode" };

/* Make sure the fields "mtime" and "mode" exist (once per mount). Returns
 * 1 when uploads may carry them. */
static int fields_ready(struct backend *be)
{
	struct ik *ik = be->priv;
	struct errbuf eb = { 0 };
	struct js *arr = NULL;
	enum mfs_err rc;
	size_t i, f;
	int ok;

	pthread_mutex_lock(&ik->fields_lock);
	if (ik->fields) {
		ok = ik->fields > 0;
		pthread_mutex_unlock(&ik->fields_lock);
		return ok;
	}
	rc = api(be, "GET", "/v1/customMetadataFields", NULL,
		 "custom metadata fields", &arr, &eb);
	for (f = 0; !rc && f < 2; f++) {
		int have = 0;
		char *body;

		for (i = 0; i < js_len(arr); i++) {
			const struct js *o = js_at(arr, i);
			const char *n = js_get_str(o, "name");
			const char *t = js_get_str(js_get(o, "schema"), "type");

			if (!n || strcmp(n, FIELDS[f]))
				continue;
			have = 1;
			if (!t || strcmp(t, "Number"))
				rc = eb_set(&eb, MFS_EINVAL,
					    "the account's field '%s' is of type %s, not Number",
					    FIELDS[f], t ? t : "unknown");
		}
		if (have)
			continue;
		body = str_fmt("{\"name\":\"%s\",\"label\":\"%s\",\"schema\":{\"type\":\"Number\"}}",
			       FIELDS[f], FIELDS[f]);
		rc = body ? api(be, "POST", "/v1/customMetadataFields", body,
				"custom metadata field", NULL, &eb)
			  : MFS_ENOMEM;
		free(body);
		if (!rc)
			log_info("remote [%s]: created the custom metadata field '%s' (mediafs keeps mtime and mode there)",
				 be->name, FIELDS[f]);
	}
	js_free(arr);
	if (rc == MFS_ENOMEM || rc == MFS_ETRANSIENT || rc == MFS_EIO) {
		/* try again with the next upload */
		pthread_mutex_unlock(&ik->fields_lock);
		log_warn("remote [%s]: custom metadata fields: %s", be->name,
			 eb.msg);
		return 0;
	}
	ik->fields = rc ? -1 : 1;
	if (rc)
		log_warn("remote [%s]: cannot use custom metadata fields mtime/mode (%s): mtimes are not kept; use rsync --size-only",
			 be->name, eb.msg);
	pthread_mutex_unlock(&ik->fields_lock);
	return !rc;
}

/* {"mtime":S.NNN,"mode":N} for m, malloc'd; "{}" without them. */
static char *custom_meta(const struct put_meta *m, int fields)
{
	if (!fields || (!m->mtime_ns && !m->mode))
		return strdup("{}");
	if (!m->mode)
		return str_fmt("{\"mtime\":%lld.%09lld}",
			       (long long)(m->mtime_ns / 1000000000),
			       (long long)(m->mtime_ns % 1000000000));
	if (!m->mtime_ns)
		return str_fmt("{\"mode\":%u}", m->mode & 07777);
	return str_fmt("{\"mtime\":%lld.%09lld,\"mode\":%u}",
		       (long long)(m->mtime_ns / 1000000000),
		       (long long)(m->mtime_ns % 1000000000), m->mode & 07777);
}

/* ---- writes ---- */

static enum mfs_err form_field(struct buf *b, const char *bound,
			       const char *name, const char *value)
{
	return buf_addf(b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n",
			bound, name, value);
}

/* The multipart body of an upload: fields, then the file's bytes. */
static enum mfs_err upload_body(const struct put_body *body, const char *name,
				const char *folder, const char *cmeta,
				const char *bound, struct buf *b,
				struct errbuf *eb)
{
	enum mfs_err rc;
	uint64_t done = 0;

	rc = form_field(b, bound, "fileName", name);
	if (!rc)
		rc = form_field(b, bound, "folder", folder);
	if (!rc)
		rc = form_field(b, bound, "useUniqueFileName", "false");
	if (!rc)
		rc = form_field(b, bound, "overwriteFile", "true");
	if (!rc)
		rc = form_field(b, bound, "customMetadata", cmeta);
	if (!rc)
		rc = form_field(b, bound, "responseFields", "customMetadata");
	if (!rc)
		rc = buf_addf(b, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
			      bound, name);
	while (!rc && done < body->len) {
		char chunk[65536];
		size_t want = body->len - done < sizeof(chunk) ?
			      (size_t)(body->len - done) : sizeof(chunk);
		ssize_t n = pread(body->fd, chunk, want,
				  (off_t)(body->off + done));

		if (n <= 0)
			return eb_set(eb, MFS_EIO, "reading the staged file: %s",
				      n ? strerror(errno) : "short file");
		rc = buf_add(b, chunk, (size_t)n);
		done += (uint64_t)n;
	}
	if (!rc)
		rc = buf_addf(b, "\r\n--%s--\r\n", bound);
	return rc;
}

/* After a failed upload: does the server hold what we sent (size, and
 * mtime when fields carry it)? */
static int landed(struct backend *be, const char *key, uint64_t size,
		  const struct put_meta *pm, int fields, struct obj_meta *out)
{
	struct errbuf eb = { 0 };

	if (find(be, key, 0, out, &eb))
		return 0;
	if (out->size != size)
		return 0;
	/* custom metadata numbers are doubles: microseconds survive */
	if (fields && pm->mtime_ns && llabs(out->mtime_ns - pm->mtime_ns) > 1000)
		return 0;
	return 1;
}

static enum mfs_err ik_put(struct backend *be, const char *key,
			   const struct put_body *body,
			   const struct put_meta *meta, struct obj_meta *out,
			   struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct put_meta none = { 0 };
	const char *name;
	char *folder = ik_parent(ik, key, &name), *cmeta = NULL, *url = NULL;
	char bound[64], *want = NULL;
	struct buf b;
	enum mfs_err rc;
	int fields, attempt;

	memset(out, 0, sizeof(*out));
	buf_init(&b, 0);
	if (!meta)
		meta = &none;
	if (!folder)
		return MFS_ENOMEM;
	if (!body->len) {
		free(folder);
		return eb_set(eb, MFS_EUNSUPP,
			      "%s: ImageKit cannot store empty files", key);
	}
	fields = fields_ready(be);
	cmeta = custom_meta(meta, fields);
	url = str_fmt("%s/api/v1/files/upload", ik->upload);
	want = ik_path(ik, key);
	snprintf(bound, sizeof(bound), "mediafs-%08lx%08lx",
		 (unsigned long)random(), (unsigned long)time(NULL));
	rc = cmeta && url && want ? upload_body(body, name, folder, cmeta,
						bound, &b, eb)
				  : MFS_ENOMEM;
	for (attempt = 0; !rc; attempt++) {
		struct ik_call c = { 0 };
		struct js *j = NULL;
		char ctype[120];

		snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s",
			 bound);
		c.method = "POST";
		c.url = url;
		c.what = key;
		c.body = b.data;
		c.body_len = b.len;
		c.ctype = ctype;
		c.once = 1;
		c.counter = &be->stats.put;
		rc = ik_json(be, &c, &j, eb);
		if (!rc) {
			const char *fp = js_get_str(j, "filePath");

			meta_from_file(j, out);
			if (!out->size)
				out->size = body->len;
			if (fp && strcmp(fp, want)) {
				/* sanitised after all: do not leave it */
				char *p = str_fmt("/v1/files/%s", out->id);

				if (p && out->id[0])
					api(be, "DELETE", p, NULL, fp, NULL,
					    NULL);
				free(p);
				rc = eb_set(eb, MFS_EINVAL,
					    "%s: ImageKit stored it as %s (a name it rewrites); removed",
					    key, fp);
			} else {
				remember(ik, key, j);
				out->mtime_ns = meta->mtime_ns ?
						meta->mtime_ns : out->mtime_ns;
				out->mode = meta->mode & 07777;
			}
			js_free(j);
			break;
		}
		js_free(j);
		if (rc != MFS_ETRANSIENT)
			break;
		/* never upload again blindly: maybe it landed and only the
		 * reply was lost */
		if (landed(be, key, body->len, meta, fields, out)) {
			log_info("%s: the upload's reply was lost, but ImageKit holds it (%llu bytes): not sent again",
				 key, (unsigned long long)body->len);
			rc = MFS_OK;
			break;
		}
		if (attempt >= ik->retries) {
			eb_prefix(eb, "upload of %s: gave up after %d retries",
				  key, ik->retries);
			rc = MFS_EIO;
			break;
		}
		__atomic_add_fetch(&be->stats.retries, 1, __ATOMIC_RELAXED);
		http_sleep_ms(http_backoff_ms(attempt, ik->backoff_ms, 20000));
		rc = MFS_OK;
	}
	buf_cleanup(&b);
	free(folder);
	free(cmeta);
	free(url);
	free(want);
	return rc;
}

/* Update mtime/mode in place: PATCH the file's details. */
static enum mfs_err patch_meta(struct backend *be, const char *key,
			       const struct put_meta *meta,
			       struct obj_meta *out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = NULL;
	struct js *j = NULL;
	char *cm, *body = NULL, *path = NULL;
	enum mfs_err rc;

	if (!fields_ready(be))
		return eb_set(eb, MFS_EUNSUPP,
			      "%s: mtime and mode cannot be kept (no custom metadata fields)",
			      key);
	rc = lookup(be, key, &e, eb);
	if (rc)
		return rc;
	cm = custom_meta(meta, 1);
	if (cm)
		body = str_fmt("{\"customMetadata\":%s}", cm);
	path = str_fmt("/v1/files/%s/details", e->file_id);
	rc = body && path ? api(be, "PATCH", path, body, key, &j, eb)
			  : MFS_ENOMEM;
	if (!rc) {
		meta_from_file(j, out);
		remember(ik, key, j);
	}
	js_free(j);
	ent_free(e);
	free(cm);
	free(body);
	free(path);
	return rc;
}

static enum mfs_err ik_copy(struct backend *be, const char *src,
			    const char *dst, const struct put_meta *meta,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sp = NULL, *dfold = ik_parent(ik, dst, &dn), *body = NULL;
	struct js *j = NULL;
	enum mfs_err rc;

	if (!strcmp(src, dst)) {
		free(dfold);
		return meta ? patch_meta(be, src, meta, out, eb) : MFS_OK;
	}
	sn = base_name(src);
	if (!dfold)
		return MFS_ENOMEM;
	if (strcmp(sn, dn)) {
		free(dfold);
		return eb_set(eb, MFS_EUNSUPP,
			      "ImageKit copies keep the file's name (%s -> %s)",
			      src, dst);
	}
	sp = ik_path(ik, src);
	j = js_obj();
	if (sp && j && !js_set_str(j, "sourceFilePath", sp) &&
	    !js_set_str(j, "destinationPath", dfold) &&
	    !js_set_bool(j, "includeFileVersions", 0))
		body = js_dump(j, 0);
	js_free(j);
	rc = body ? api(be, "POST", "/v1/files/copy", body, src, NULL, eb)
		  : MFS_ENOMEM;
	if (!rc)
		rc = meta ? patch_meta(be, dst, meta, out, eb)
			  : find(be, dst, 0, out, eb);
	free(sp);
	free(dfold);
	free(body);
	return rc;
}

/* Does key exist on the server (as file or folder)? 1 yes, 0 no, <0 error
 * (in *rc). */
static int exists(struct backend *be, const char *key, enum mfs_err *rc,
		  struct errbuf *eb)
{
	struct obj_meta m;

	*rc = find(be, key, 1, &m, eb);
	if (*rc == MFS_ENOTFOUND) {
		*rc = MFS_OK;
		return 0;
	}
	return *rc ? -1 : 1;
}

/* The key "dir/name" of a name in key's folder, malloc'd. */
static char *sibling(const char *key, const char *name)
{
	const char *s = strrchr(key, '/');

	return s ? str_fmt("%.*s/%s", (int)(s - key), key, name)
		 : strdup(name);
}

/* Start a bulk job (kind: "moveFolder" with sourceFolderPath and
 * destinationPath, "renameFolder" with folderPath and newFolderName) and
 * wait until ImageKit says it completed. */
static enum mfs_err bulk_job(struct backend *be, const char *kind,
			     const char *a, const char *av, const char *b,
			     const char *bv, const char *what,
			     struct errbuf *eb)
{
	struct js *j = NULL;
	char *path = str_fmt("/v1/bulkJobs/%s", kind), *id = NULL;
	enum mfs_err rc;
	time_t until = time(NULL) + JOB_TIMEOUT_S;
	long wait = 100;

	rc = path ? api2(be, "POST", path, what, a, av, b, bv,
			 !strcmp(kind, "renameFolder"), &j, eb)
		  : MFS_ENOMEM;
	if (!rc && !js_get_str(j, "jobId"))
		rc = eb_set(eb, MFS_EPROTO, "%s %s: no jobId in the reply",
			    kind, what);
	if (!rc)
		id = str_fmt("/v1/bulkJobs/%s", js_get_str(j, "jobId"));
	js_free(j);
	j = NULL;
	if (!rc && !id)
		rc = MFS_ENOMEM;
	while (!rc) {
		const char *st;

		http_sleep_ms(wait);
		rc = api(be, "GET", id, NULL, what, &j, eb);
		st = rc ? NULL : js_get_str(j, "status");
		if (!rc && st && !strcasecmp(st, "Completed")) {
			js_free(j);
			break;
		}
		if (!rc && st && strcasecmp(st, "Pending") &&
		    strcasecmp(st, "Running") && strcasecmp(st, "In_Progress"))
			rc = eb_set(eb, MFS_EIO, "%s %s: the job ended as %s",
				    kind, what, st);
		js_free(j);
		j = NULL;
		if (!rc && time(NULL) > until)
			rc = eb_set(eb, MFS_EIO,
				    "%s %s: the job was still pending after %d s",
				    kind, what, JOB_TIMEOUT_S);
		if (wait < 2000)
			wait *= 2;
	}
	if (!rc)
		log_info("remote [%s]: %s %s: job completed", be->name, kind,
			 what);
	free(path);
	free(id);
	return rc;
}

/* The two steps of a rename on ImageKit: within a folder, and into
 * another folder (keeping the name); a file's through the file APIs, a
 * folder's (dir) through bulk jobs, polled until done. */
static enum mfs_err step_rename(struct backend *be, int dir, const char *path,
				const char *newname, const char *what,
				struct errbuf *eb)
{
	return dir ? bulk_job(be, "renameFolder", "folderPath", path,
			      "newFolderName", newname, what, eb)
		   : api2(be, "PUT", "/v1/files/rename", what, "filePath",
			  path, "newFileName", newname, 1, NULL, eb);
}

static enum mfs_err step_move(struct backend *be, int dir, const char *path,
			      const char *folder, const char *what,
			      struct errbuf *eb)
{
	return dir ? bulk_job(be, "moveFolder", "sourceFolderPath", path,
			      "destinationPath", folder, what, eb)
		   : api2(be, "POST", "/v1/files/move", what, "sourceFilePath",
			  path, "destinationPath", folder, 0, NULL, eb);
}

/* Rename file or folder (dir) src to dst. A target that exists is refused:
 * ImageKit would stack a file onto it as new versions, or merge folders.
 * Same folder: one rename. Another folder: a move (which keeps the name),
 * then a rename there for a new name; when the old name is taken in the
 * target folder, the rename comes first. */
static enum mfs_err relocate(struct backend *be, const char *src,
			     const char *dst, int dir, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sfold = ik_parent(ik, src, &sn), *dfold = ik_parent(ik, dst, &dn);
	char *sp = ik_path(ik, src), *mid = NULL, *midp = NULL, *tmp = NULL;
	enum mfs_err rc = sfold && dfold && sp ? MFS_OK : MFS_ENOMEM;
	int e;

	if (!rc && exists(be, dst, &rc, eb) > 0)
		rc = eb_set(eb, MFS_EEXIST,
			    "%s exists on ImageKit: mediafs does not rename onto it",
			    dst);
	if (rc)
		goto out;
	if (!strcmp(sfold, dfold)) {
		rc = step_rename(be, dir, sp, dn, src, eb);
		goto done;
	}
	mid = sibling(dst, sn);	/* where a move puts it */
	if (!mid) {
		rc = MFS_ENOMEM;
		goto out;
	}
	if (!strcmp(sn, dn) || exists(be, mid, &rc, eb) == 0) {
		rc = step_move(be, dir, sp, dfold, src, eb);
		if (!rc && strcmp(sn, dn)) {
			midp = ik_path(ik, mid);
			rc = midp ? step_rename(be, dir, midp, dn, mid, eb)
				  : MFS_ENOMEM;
		}
		goto done;
	}
	if (rc)
		goto out;
	tmp = sibling(src, dn);	/* renamed first, in the old folder */
	e = tmp ? exists(be, tmp, &rc, eb) : -1;
	if (!tmp)
		rc = MFS_ENOMEM;
	else if (e > 0)
		rc = eb_set(eb, MFS_EEXIST,
			    "rename %s -> %s: both %s and %s are taken on ImageKit",
			    src, dst, mid, tmp);
	if (!rc)
		rc = step_rename(be, dir, sp, dn, src, eb);
	if (!rc) {
		midp = ik_path(ik, tmp);
		rc = midp ? step_move(be, dir, midp, dfold, tmp, eb)
			  : MFS_ENOMEM;
	}
done:
	if (!rc)	/* the new path's url is found again when needed */
		idx_drop(ik, src, dir);
out:
	free(sfold);
	free(dfold);
	free(sp);
	free(mid);
	free(midp);
	free(tmp);
	return rc;
}

static enum mfs_err ik_move(struct backend *be, const char *src,
			    const char *dst, struct errbuf *eb)
{
	return relocate(be, src, dst, 0, eb);
}

static enum mfs_err delete_id(struct backend *be, const char *key,
			      const char *id, struct errbuf *eb)
{
	char *p = str_fmt("/v1/files/%s", id);
	enum mfs_err rc;

	if (!p)
		return MFS_ENOMEM;
	__atomic_add_fetch(&be->stats.del, 1, __ATOMIC_RELAXED);
	rc = api(be, "DELETE", p, NULL, key, NULL, eb);
	free(p);
	return rc == MFS_ENOTFOUND ? MFS_OK : rc;
}

static enum mfs_err ik_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb);

static enum mfs_err ik_del(struct backend *be, const char *key,
			   struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = NULL;
	size_t n = strlen(key);
	enum mfs_err rc;

	if (n && key[n - 1] == '/') {	/* a directory marker */
		char *d = str_ndup(key, n - 1);

		rc = d ? ik_rmdir(be, d, eb) : MFS_ENOMEM;
		free(d);
		return rc;
	}
	rc = lookup(be, key, &e, eb);
	if (rc == MFS_ENOTFOUND)
		return MFS_OK;
	if (!rc)
		rc = delete_id(be, key, e->file_id, eb);
	if (!rc)
		idx_drop(ik, key, 0);
	if (e)
		ent_free(e);
	return rc;
}

static enum mfs_err ik_del_many(struct backend *be, const char *const *keys,
				int n, int *failed, struct errbuf *eb)
{
	int i;

	*failed = 0;
	for (i = 0; i < n; i++) {
		struct errbuf e1 = { 0 };

		if (ik_del(be, keys[i], &e1)) {
			if (!*failed)
				*eb = e1;
			(*failed)++;
		}
	}
	return MFS_OK;
}

/* ---- folders ---- */

static enum mfs_err ik_mkdir(struct backend *be, const char *dir,
			     const struct put_meta *meta, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *name;
	char *parent = ik_parent(ik, dir, &name), *pp = NULL;
	enum mfs_err rc;

	(void)meta;
	if (parent)
		pp = str_fmt("%s%s", parent, strcmp(parent, "/") ? "/" : "");
	rc = pp ? api2(be, "POST", "/v1/folder", dir, "folderName", name,
		       "parentFolderPath", pp, 0, NULL, eb)
		: MFS_ENOMEM;
	free(parent);
	free(pp);
	return rc;
}

static enum mfs_err count_one(void *ud, const char *name,
			      const struct obj_meta *m)
{
	(void)name;
	(void)m;
	(*(int *)ud)++;
	return MFS_EEXIST;	/* one is enough: stop */
}

static enum mfs_err ik_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb)
{
	struct ik *ik = be->priv;
	char *p = ik_path(ik, dir), *fp = NULL;
	enum mfs_err rc;
	int children = 0;

	/* the API deletes recursively: look first */
	rc = ik_list(be, dir, count_one, &children, eb);
	if (rc == MFS_EEXIST)
		rc = MFS_OK;
	if (!rc && children)
		rc = eb_set(eb, MFS_ENOTEMPTY,
			    "%s: not empty on ImageKit (the folder holds files this mount has not listed)",
			    dir);
	if (!rc) {
		fp = p ? str_fmt("%s/", p) : NULL;
		rc = fp ? api2(be, "DELETE", "/v1/folder", dir, "folderPath", fp,
			       NULL, NULL, 0, NULL, eb)
			: MFS_ENOMEM;
		if (rc == MFS_ENOTFOUND)
			rc = MFS_OK;
	}
	free(p);
	free(fp);
	return rc;
}

static enum mfs_err ik_move_dir(struct backend *be, const char *src,
				const char *dst, struct errbuf *eb)
{
	struct obj_meta m;
	enum mfs_err rc = find(be, src, 1, &m, eb);

	if (rc == MFS_ENOTFOUND || (!rc && m.kind != OBJ_DIR))
		return MFS_OK;	/* never stored (its marker is still queued) */
	return rc ? rc : relocate(be, src, dst, 1, eb);
}

static void ik_free(struct backend *be)
{
	struct ik *ik;
	int b;

	if (!be)
		return;
	ik = be->priv;
	if (ik) {
		http_client_free(ik->http);
		free(ik->api);
		free(ik->upload);
		free(ik->endpoint);
		free(ik->root);
		if (ik->auth) {
			explicit_bzero(ik->auth, strlen(ik->auth));
			free(ik->auth);
		}
		for (b = 0; b < IDX_BUCKETS; b++)
			while (ik->idx[b]) {
				struct ik_ent *e = ik->idx[b];

				ik->idx[b] = e->next;
				ent_free(e);
			}
		pthread_mutex_destroy(&ik->lock);
		pthread_mutex_destroy(&ik->fields_lock);
	}
	backend_dealloc(be);
}

static const struct backend_ops ik_ops = {
	.type = "imagekit",
	.caps = BE_CAP_RANGE_READ | BE_CAP_WRITE | BE_CAP_SERVER_COPY |
		BE_CAP_USER_MTIME | BE_CAP_FOLDERS | BE_CAP_NO_EMPTY |
		BE_CAP_NO_CLOBBER,
	.list = ik_list,
	.head = ik_head,
	.get = ik_get,
	.url = ik_url,
	.file_id = ik_file_id,
	.put = ik_put,
	.copy = ik_copy,
	.move = ik_move,
	.move_dir = ik_move_dir,
	.del = ik_del,
	.del_many = ik_del_many,
	.mkdir = ik_mkdir,
	.rmdir = ik_rmdir,
	.check_key = ik_check_key,
	.free = ik_free,
};

/* ---- configuration ---- */

static const char *const ik_keys[] = {
	"type", "private_key", "public_key", "url_endpoint", "api_url",
	"upload_url", "root", "list_limit", "retries", "retry_base_ms",
	"ca_file", NULL
};

/* v (an http(s) URL) without trailing '/', or def; NULL + error. */
static char *base_url(const char *v, const char *def, const char *key,
		      const char *where, enum mfs_err *rc, struct errbuf *eb)
{
	size_t len;

	if (*rc)
		return NULL;
	if (!v)
		v = def;
	if (!v || (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))) {
		*rc = eb_set(eb, MFS_EINVAL, "%s needs '%s = https://...'",
			     where, key);
		return NULL;
	}
	len = strlen(v);
	while (len && v[len - 1] == '/')
		len--;
	return str_ndup(v, len);
}

enum mfs_err imagekit_backend_create(struct ini *ini, struct ini_section *sec,
				     struct backend **out, struct errbuf *eb)
{
	struct backend *be = backend_alloc(&ik_ops, sec, sizeof(struct ik));
	struct ik *ik;
	char where[300], what[160], *key = NULL, *cred = NULL;
	const char *v;
	enum mfs_err rc;
	uint64_t n = 0;

	*out = NULL;
	if (!be)
		return MFS_ENOMEM;
	ik = be->priv;
	pthread_mutex_init(&ik->lock, NULL);
	pthread_mutex_init(&ik->fields_lock, NULL);
	snprintf(where, sizeof(where), "%s:%d: [%s]", ini->path, sec->line,
		 sec->name);
	rc = backend_check_keys(ini, sec, ik_keys, eb);
	ik->endpoint = base_url(ini_get(sec, "url_endpoint"), NULL,
				"url_endpoint", where, &rc, eb);
	if (rc == MFS_EINVAL && !ini_get(sec, "url_endpoint"))
		eb_set(eb, MFS_EINVAL,
		       "%s needs 'url_endpoint = https://ik.imagekit.io/<imagekit_id>'",
		       where);
	ik->api = base_url(ini_get(sec, "api_url"), "https://api.imagekit.io",
			   "api_url", where, &rc, eb);
	ik->upload = base_url(ini_get(sec, "upload_url"),
			      "https://upload.imagekit.io", "upload_url", where,
			      &rc, eb);
	if (!rc && (!ik->endpoint || !ik->api || !ik->upload))
		rc = MFS_ENOMEM;
	v = ini_get(sec, "root");
	if (!rc) {
		const char *s = v ? v : "";
		size_t len;

		while (*s == '/')
			s++;
		len = strlen(s);
		while (len && s[len - 1] == '/')
			len--;
		ik->root = len ? str_fmt("/%.*s", (int)len, s) : strdup("");
		if (!ik->root)
			rc = MFS_ENOMEM;
		else if (ik_check_key(be, ik->root, 1, what, sizeof(what)))
			rc = eb_set(eb, MFS_EINVAL, "%s: root: %s", where, what);
	}
	v = ini_get(sec, "private_key");
	if (!rc && (!v || !*v))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s needs 'private_key = env:IMAGEKIT_PRIVATE_KEY' (or file:PATH, or the key)",
			    where);
	snprintf(what, sizeof(what), "private_key in [%s]", sec->name);
	if (!rc)
		rc = secret_resolve(ini, v, what, &key, eb);
	if (!rc && !*key)
		rc = eb_set(eb, MFS_EINVAL, "%s: the private key is empty",
			    where);
	if (!rc) {
		/* Basic auth: the key as user, no password (API-NOTES C1) */
		char *pair = str_fmt("%s:", key);
		size_t len = pair ? strlen(pair) : 0;

		cred = pair ? malloc(4 * ((len + 2) / 3) + 1) : NULL;
		if (cred) {
			EVP_EncodeBlock((unsigned char *)cred,
					(const unsigned char *)pair, (int)len);
			log_add_secret(cred);
			ik->auth = str_fmt("Authorization: Basic %s", cred);
		}
		if (pair) {
			explicit_bzero(pair, len);
			free(pair);
		}
		if (!ik->auth)
			rc = MFS_ENOMEM;
	}
	if (cred) {
		explicit_bzero(cred, strlen(cred));
		free(cred);
	}
	if (key)
		secret_free(key);
	if (!rc)
		rc = backend_opt_u64(sec, "list_limit", 1000, 1000, where, &n,
				     eb);
	ik->list_limit = n ? (int)n : 1000;
	if (!rc)
		rc = backend_http(sec, 10, where, &ik->retries, &ik->backoff_ms,
				  &ik->http, eb);
	if (!rc) {
		be->ident = str_fmt("imagekit %s%s", ik->endpoint, ik->root);
		if (!be->name || !be->ident)
			rc = MFS_ENOMEM;
	}
	if (rc) {
		ik_free(be);
		return rc;
	}
	*out = be;
	return MFS_OK;
}
