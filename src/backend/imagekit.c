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
 * An upload is done only when proven (imagekit_write.c): its reply names
 * the file and a new version, or a search finds the file with the size and
 * mtime sent and proof that it is new (updated after the attempt on
 * ImageKit's clock, or the same bytes); never retried blindly.
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
#include "imagekit_int.h"

/* ---- names ---- */

int imagekit_name_char_ok(unsigned char c)
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

		if (c == '/' || imagekit_name_char_ok(c))
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
char *imagekit_path(const struct ik *ik, const char *key)
{
	return *key ? str_fmt("%s/%s", ik->root, key)
		    : strdup(*ik->root ? ik->root : "/");
}

/* The folder path holding key ("/" at the top) and key's last name. */
/* The last name of key. */
const char *imagekit_base_name(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? s + 1 : key;
}

char *imagekit_parent(const struct ik *ik, const char *key,
		       const char **name)
{
	const char *s = strrchr(key, '/');

	*name = imagekit_base_name(key);
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

void imagekit_ent_free(struct ik_ent *e)
{
	free(e->key);
	free(e->file_id);
	free(e->url);
	free(e->version);
	free(e);
}

void imagekit_idx_put(struct ik *ik, const char *key, const char *file_id,
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
		imagekit_ent_free(e);
		return;
	}
	pthread_mutex_lock(&ik->lock);
	for (pp = &ik->idx[h]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key)) {
			struct ik_ent *old = *pp;

			e->next = old->next;
			*pp = e;
			imagekit_ent_free(old);
			pthread_mutex_unlock(&ik->lock);
			return;
		}
	e->next = ik->idx[h];
	ik->idx[h] = e;
	pthread_mutex_unlock(&ik->lock);
}

/* A copy of key's entry (caller frees with ent_free), NULL if unknown. */
struct ik_ent *imagekit_idx_get(struct ik *ik, const char *key)
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
			imagekit_ent_free(c);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&ik->lock);
	return c;
}

/* Forget key, or with prefix set everything at or below key/. */
void imagekit_idx_drop(struct ik *ik, const char *key, int prefix)
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
				imagekit_ent_free(e);
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

enum mfs_err imagekit_do(struct backend *be, const struct ik_call *c,
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
		if (!rc && c->date_ns) {
			const char *d = http_header(resp, "date");

			if (!d || str_parse_http_date(d, c->date_ns))
				*c->date_ns = 0;
		}
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
enum mfs_err imagekit_json(struct backend *be, struct ik_call *c,
			    struct js **out, struct errbuf *eb)
{
	struct http_response resp;
	enum mfs_err rc;

	if (out)
		*out = NULL;
	http_response_init(&resp);
	rc = imagekit_do(be, c, &resp, eb);
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
enum mfs_err imagekit_api(struct backend *be, const char *method,
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
	rc = imagekit_json(be, &c, out, eb);
	free(url);
	return rc;
}

/* An API call whose body is {k1: v1[, k2: v2][, "purgeCache": false]}
 * (k2 NULL: one member). */
enum mfs_err imagekit_api2(struct backend *be, const char *method,
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
	rc = body ? imagekit_api(be, method, path, body, what, out, eb) : MFS_ENOMEM;
	free(body);
	return rc;
}

/* ---- files as our metadata ---- */

void imagekit_meta_from_file(const struct js *f, struct obj_meta *m)
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

void imagekit_remember(struct ik *ik, const char *key, const struct js *f)
{
	imagekit_idx_put(ik, key, js_get_str(f, "fileId"), js_get_str(f, "url"),
		js_get_str(js_get(f, "versionInfo"), "id"));
}

/* GET /v1/files with the query q (already encoded). */
static enum mfs_err files_query(struct backend *be, const char *q,
				const char *what, unsigned long *counter,
				int64_t *date_ns, struct js **out,
				struct errbuf *eb)
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
	c.date_ns = date_ns;
	rc = imagekit_json(be, &c, out, eb);
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

enum mfs_err imagekit_find_dated(struct backend *be, const char *key,
				 int dirs, struct obj_meta *m, int64_t *date_ns,
				 struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *name, *kinds[] = { "file", "folder" }, *p;
	char *folder = imagekit_parent(ik, key, &name);
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
			rc = files_query(be, q.data, key, &be->stats.head, date_ns,
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
				imagekit_meta_from_file(o, m);
				imagekit_remember(ik, key, o);
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

enum mfs_err imagekit_find(struct backend *be, const char *key, int dirs,
			   struct obj_meta *m, struct errbuf *eb)
{
	return imagekit_find_dated(be, key, dirs, m, NULL, eb);
}

/* key's entry from the index, else from a search. */
enum mfs_err imagekit_lookup(struct backend *be, const char *key,
			   struct ik_ent **out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct obj_meta m;
	enum mfs_err rc;

	*out = imagekit_idx_get(ik, key);
	if (*out)
		return MFS_OK;
	rc = imagekit_find(be, key, 0, &m, eb);
	if (rc)
		return rc;
	*out = imagekit_idx_get(ik, key);
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

enum mfs_err imagekit_list_all(struct backend *be, const char *dir,
			       int moving, backend_list_cb cb, void *ud,
			       struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct seen seen = { 0 };
	char *folder = imagekit_path(ik, dir);
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
					 &be->stats.list, NULL, &arr, eb);
		buf_cleanup(&q);
		if (rc)
			break;
		got = js_len(arr);
		for (i = 0; i < got && !rc; i++) {
			const struct js *o = js_at(arr, i);
			const char *name = js_get_str(o, "name"), *type = js_get_str(o, "type");
			struct obj_meta m = { 0 };
			int fresh;

			if (!name || !*name || strchr(name, '/') ||
			    (!moving && str_starts(name, IK_MOVE_PREFIX)))
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

				imagekit_meta_from_file(o, &m);
				if (key)
					imagekit_remember(ik, key, o);
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

enum mfs_err imagekit_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb)
{
	return imagekit_list_all(be, dir, 0, cb, ud, eb);
}

static enum mfs_err ik_head(struct backend *be, const char *key,
			    struct obj_meta *out, struct errbuf *eb)
{
	if (!*key) {
		memset(out, 0, sizeof(*out));
		out->kind = OBJ_DIR;
		return MFS_OK;
	}
	return imagekit_find(be, key, 1, out, eb);
}

/* The URL the API gave for key, else the endpoint's; no request. */
static enum mfs_err ik_url(struct backend *be, const char *key, char **out)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = imagekit_idx_get(ik, key);
	char *p;

	if (e && e->url) {
		*out = strdup(e->url);
	} else {
		p = imagekit_path(ik, key);
		*out = p ? str_uri_join(ik->endpoint, p) : NULL;
		free(p);
	}
	if (e)
		imagekit_ent_free(e);
	return *out ? MFS_OK : MFS_ENOMEM;
}

enum mfs_err imagekit_get(struct backend *be, const char *key, uint64_t off,
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
	rc = imagekit_lookup(be, key, &e, eb);
	if (rc)
		return rc;
	if (etag && *etag && e->version[0] && strcmp(etag, e->version)) {
		imagekit_ent_free(e);
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
	imagekit_ent_free(e);
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
	rc = imagekit_do(be, &c, &resp, eb);
	if (!rc)
		*got = resp.dst_len;
	else if (rc == MFS_ERANGE)
		rc = MFS_OK;	/* at or past the end */
	else if (rc == MFS_ENOTFOUND)
		imagekit_idx_drop(ik, key, 0);
	http_response_cleanup(&resp);
	buf_cleanup(&u);
	return rc;
}

static enum mfs_err ik_file_id(struct backend *be, const char *key,
			       char **out)
{
	struct errbuf eb = { 0 };
	struct ik_ent *e;
	enum mfs_err rc = imagekit_lookup(be, key, &e, &eb);

	*out = NULL;
	if (rc)
		return rc == MFS_ENOTFOUND ? MFS_ENODATA : rc;
	*out = strdup(e->file_id);
	imagekit_ent_free(e);
	return *out ? MFS_OK : MFS_ENOMEM;
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
				imagekit_ent_free(e);
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
	.list = imagekit_list,
	.head = ik_head,
	.get = imagekit_get,
	.url = ik_url,
	.file_id = ik_file_id,
	.put = imagekit_put,
	.copy = imagekit_copy,
	.move = imagekit_move,
	.move_dir = imagekit_move_dir,
	.move_undo = imagekit_move_undo,
	.move_steps = imagekit_move_steps,
	.del = imagekit_del,
	.del_many = imagekit_del_many,
	.mkdir = imagekit_mkdir,
	.rmdir = imagekit_rmdir,
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
