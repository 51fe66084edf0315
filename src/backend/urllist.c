/* urllist.c - read-only remotes built from a list of URLs (type = http):
 * a text manifest (one URL a line) and/or JSON files found by a glob with
 * the fields that hold URLs. Each URL's path (percent-decoded, minus
 * strip_prefix) is its key; duplicates collapse. The tree is a sorted
 * array of (key, URL), built on first use (a mount whose cache is fresh
 * never reads the manifest); a directory lists by binary search.
 * Listings carry no sizes: BE_CAP_LAZY_ATTRS tells the core to HEAD files
 * when someone asks for their attributes. Reads are ranged GETs (a 200 to
 * a ranged GET is handled by net/http). 404 and 410 (and what
 * missing_status adds, e.g. 403 from CloudFront in front of S3) are
 * MFS_ENOTFOUND; 429, 5xx, resets and timeouts are retried with backoff.
 * Calls: net (http, json), common. lock guards the lazy build; the built
 * tree is read-only, so ops are thread-safe.
 */
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "common/log.h"
#include "common/str.h"
#include "net/http.h"
#include "net/json.h"

#define MAX_FIELDS 16
#define MAX_MISSING 8

struct uentry {
	char *key;
	char *url;
};

struct ulist {
	struct http_client *http;
	char *manifest, *json_glob, *strip;
	char *fields[MAX_FIELDS];
	int nfields;
	long missing[MAX_MISSING];
	int nmissing;
	int retries;
	long backoff_ms;
	pthread_mutex_t lock;
	int built;		/* guarded by lock until 1, then read-only */
	enum mfs_err build_rc;
	char build_err[256];
	struct uentry *e;
	size_t n, cap;
	size_t skipped, dups;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct uentry *)a)->key,
		      ((const struct uentry *)b)->key);
}

/* The tree path of url: its path, decoded, minus strip_prefix. NULL when
 * it is not an http(s) URL or makes no usable path. */
static char *url_key(const struct ulist *u, const char *url)
{
	const char *p = strstr(url, "://"), *end;
	char *dec = NULL, *k, *seg;

	if (!p || (strncmp(url, "http", 4)))
		return NULL;
	p = strchr(p + 3, '/');
	if (!p)
		return NULL;
	end = p + strcspn(p, "?#");
	if (str_uri_decode(p, (size_t)(end - p), 0, &dec))
		return NULL;
	k = dec;
	if (u->strip && str_starts(k, u->strip))
		k += strlen(u->strip);
	while (*k == '/')
		k++;
	if (!*k) {
		free(dec);
		return NULL;
	}
	for (seg = k;;) {
		char *slash = strchr(seg, '/');
		size_t len = slash ? (size_t)(slash - seg) : strlen(seg);

		if (str_bad_name(seg, len)) {
			free(dec);
			return NULL;
		}
		if (!slash)
			break;
		seg = slash + 1;
	}
	k = strdup(k);
	free(dec);
	return k;
}

static enum mfs_err add_url(struct ulist *u, const char *url)
{
	char *k = url_key(u, url);

	if (!k) {
		if (u->skipped++ < 5)
			log_warn("http: '%.200s' makes no path of a tree; left out",
				 url);
		return MFS_OK;
	}
	if (u->n == u->cap) {
		struct uentry *ne = realloc(u->e, sizeof(*ne) *
					    (u->cap = u->cap ? u->cap * 2 : 4096));

		if (!ne) {
			free(k);
			return MFS_ENOMEM;
		}
		u->e = ne;
	}
	u->e[u->n].key = k;
	u->e[u->n].url = strdup(url);
	if (!u->e[u->n].url) {
		free(k);
		return MFS_ENOMEM;
	}
	u->n++;
	return MFS_OK;
}

static enum mfs_err read_manifest(struct ulist *u, struct errbuf *eb)
{
	FILE *f = fopen(u->manifest, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	enum mfs_err rc = MFS_OK;

	if (!f)
		return eb_set(eb, MFS_ECONFIG, "http: cannot open manifest %s: %s",
			      u->manifest, strerror(errno));
	while (!rc && (len = getline(&line, &cap, f)) > 0) {
		char *s = line;

		while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
			       s[len - 1] == ' ' || s[len - 1] == '\t'))
			s[--len] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s && *s != '#')
			rc = add_url(u, s);
	}
	free(line);
	fclose(f);
	return rc;
}

struct jwalk {
	struct ulist *u;
	enum mfs_err rc;
};

static void walk_json(struct jwalk *w, const struct js *v);

static int walk_member(void *ud, const char *key, const struct js *val)
{
	struct jwalk *w = ud;
	int i;

	for (i = 0; i < w->u->nfields; i++)
		if (!strcmp(key, w->u->fields[i]) && js_str(val) &&
		    *js_str(val)) {
			w->rc = add_url(w->u, js_str(val));
			return w->rc != MFS_OK;
		}
	walk_json(w, val);
	return w->rc != MFS_OK;
}

/* Every string of a listed field, at any depth. */
static void walk_json(struct jwalk *w, const struct js *v)
{
	size_t i;

	if (js_is_obj(v))
		js_each(v, walk_member, w);
	else if (js_is_arr(v))
		for (i = 0; i < js_len(v) && !w->rc; i++)
			walk_json(w, js_at(v, i));
}

static enum mfs_err read_json_files(struct ulist *u, struct errbuf *eb)
{
	glob_t g;
	size_t i;
	enum mfs_err rc = MFS_OK;
	int r = glob(u->json_glob, 0, NULL, &g);

	if (r == GLOB_NOMATCH)
		return eb_set(eb, MFS_ECONFIG, "http: json_glob '%s' matches no file",
			      u->json_glob);
	if (r)
		return eb_set(eb, MFS_ECONFIG, "http: json_glob '%s' failed",
			      u->json_glob);
	for (i = 0; !rc && i < g.gl_pathc; i++) {
		FILE *f = fopen(g.gl_pathv[i], "rb");
		char *data = NULL;
		size_t cap = 0, n = 0, got;
		struct js *j = NULL;
		struct jwalk w = { u, MFS_OK };
		struct errbuf jeb = { 0 };

		if (!f) {
			log_warn("http: cannot read %s: %s", g.gl_pathv[i],
				 strerror(errno));
			continue;
		}
		do {
			if (n + 65536 > cap) {
				char *nd = realloc(data, cap = (n + 65536) * 2);

				if (!nd) {
					rc = MFS_ENOMEM;
					break;
				}
				data = nd;
			}
			got = fread(data + n, 1, 65536, f);
			n += got;
		} while (got);
		fclose(f);
		if (!rc && js_parse(data, n, &j, &jeb))
			log_warn("http: %s: %s; its URLs are left out",
				 g.gl_pathv[i], jeb.msg);
		else if (!rc)
			walk_json(&w, j);
		if (!rc)
			rc = w.rc;
		js_free(j);
		free(data);
	}
	globfree(&g);
	return rc;
}

/* Build the tree once (under lock). */
static enum mfs_err build(struct backend *be, struct errbuf *eb)
{
	struct ulist *u = be->priv;
	enum mfs_err rc = MFS_OK;
	size_t i, k;

	pthread_mutex_lock(&u->lock);
	if (u->built) {
		rc = u->build_rc;
		if (rc)
			eb_set(eb, rc, "%s", u->build_err);
		pthread_mutex_unlock(&u->lock);
		return rc;
	}
	if (u->manifest)
		rc = read_manifest(u, eb);
	if (!rc && u->json_glob)
		rc = read_json_files(u, eb);
	if (!rc) {
		qsort(u->e, u->n, sizeof(*u->e), cmp_entry);
		for (i = k = 0; i < u->n; i++) {
			if (k && !strcmp(u->e[k - 1].key, u->e[i].key)) {
				if (strcmp(u->e[k - 1].url, u->e[i].url) &&
				    u->dups++ < 5)
					log_warn("http: %s and %s make the same path %s; keeping the first",
						 u->e[k - 1].url, u->e[i].url,
						 u->e[i].key);
				free(u->e[i].key);
				free(u->e[i].url);
				continue;
			}
			u->e[k++] = u->e[i];
		}
		u->n = k;
		log_info("remote [%s]: %zu URLs in the tree%s", be->name, u->n,
			 u->skipped ? " (some left out: see above)" : "");
	}
	u->built = 1;
	u->build_rc = rc;
	if (rc)
		snprintf(u->build_err, sizeof(u->build_err), "%.200s",
			 eb && eb->msg[0] ? eb->msg : mfs_strerror(rc));
	pthread_mutex_unlock(&u->lock);
	return rc;
}

/* First entry whose key is >= s. */
static size_t lower(const struct ulist *u, const char *s)
{
	size_t lo = 0, hi = u->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(u->e[mid].key, s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct uentry *find(const struct ulist *u, const char *key)
{
	size_t i = lower(u, key);

	return i < u->n && !strcmp(u->e[i].key, key) ? &u->e[i] : NULL;
}

static enum mfs_err ul_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb)
{
	struct ulist *u = be->priv;
	char *prefix = *dir ? str_fmt("%s/", dir) : strdup("");
	char last[1024] = "";
	enum mfs_err rc = prefix ? build(be, eb) : MFS_ENOMEM;
	size_t i, plen;

	if (rc) {
		free(prefix);
		return rc;
	}
	plen = strlen(prefix);
	for (i = lower(u, prefix); !rc && i < u->n &&
	     !strncmp(u->e[i].key, prefix, plen); i++) {
		const char *rest = u->e[i].key + plen;
		const char *slash = strchr(rest, '/');
		struct obj_meta m = { 0 };
		char name[1024];

		if (slash) {
			snprintf(name, sizeof(name), "%.*s",
				 (int)(slash - rest), rest);
			if (!strcmp(name, last))
				continue;
			snprintf(last, sizeof(last), "%s", name);
			m.kind = OBJ_DIR;
		} else {
			/* a file and a folder of the same name: the folder
			 * wins (it sorts after "name" and before "name0") */
			size_t j = i + 1, l = strlen(rest);

			if (j < u->n && !strncmp(u->e[j].key, u->e[i].key,
						 plen + l) &&
			    u->e[j].key[plen + l] == '/') {
				log_warn("http: %s is both a file and a folder; showing the folder",
					 u->e[i].key);
				continue;
			}
			snprintf(name, sizeof(name), "%s", rest);
			m.kind = OBJ_FILE;
		}
		rc = cb(ud, name, &m);
	}
	if (!*dir && !u->n)
		log_warn("remote [%s]: the manifest holds no URL", be->name);
	free(prefix);
	return rc;
}

/* One request with retries; resp holds the final answer. */
static enum mfs_err call(struct backend *be, struct http_request *req,
			 struct http_response *resp, unsigned long *counter,
			 struct errbuf *eb)
{
	struct ulist *u = be->priv;
	enum mfs_err rc = MFS_OK;
	int attempt, i;

	for (attempt = 0; attempt <= u->retries; attempt++) {
		if (attempt) {
			__atomic_add_fetch(&be->stats.retries, 1,
					   __ATOMIC_RELAXED);
			http_sleep_ms(http_backoff_ms(attempt - 1, u->backoff_ms,
						      20000));
			http_response_cleanup(resp);
			http_response_init(resp);
		}
		__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
		rc = http_perform(u->http, req, resp, eb);
		if (rc == MFS_ETRANSIENT)
			continue;
		if (rc)
			return rc;
		if (resp->status == 404 || resp->status == 410)
			return eb_set(eb, MFS_ENOTFOUND, "%s: HTTP %ld", req->url,
				      resp->status);
		for (i = 0; i < u->nmissing; i++)
			if (resp->status == u->missing[i])
				return eb_set(eb, MFS_ENOTFOUND, "%s: HTTP %ld",
					      req->url, resp->status);
		if (resp->status < 400)
			return MFS_OK;
		if (!http_status_transient(resp->status))
			return eb_set(eb, MFS_EIO, "%s: HTTP %ld", req->url,
				      resp->status);
		eb_set(eb, MFS_ETRANSIENT, "%s: HTTP %ld", req->url,
		       resp->status);
		rc = MFS_ETRANSIENT;
	}
	eb_prefix(eb, "gave up after %d retries", u->retries);
	return MFS_EIO;
}

static void meta_from(const struct http_response *resp, struct obj_meta *m)
{
	const char *v;
	int64_t ns;

	memset(m, 0, sizeof(*m));
	m->kind = OBJ_FILE;
	m->full = 1;
	v = http_header(resp, "content-length");
	if (v)
		m->size = strtoull(v, NULL, 10);
	v = http_header(resp, "last-modified");
	if (v && !str_parse_http_date(v, &ns))
		m->mtime_ns = m->server_mtime_ns = ns;
	v = http_header(resp, "etag");
	if (v) {
		size_t l;

		if (!strncmp(v, "W/", 2))
			v += 2;
		if (*v == '"')
			v++;
		l = strcspn(v, "\"");
		snprintf(m->etag, sizeof(m->etag), "%.*s", (int)l, v);
	}
	v = http_header(resp, "content-type");
	if (v)
		snprintf(m->content_type, sizeof(m->content_type), "%s", v);
}

static enum mfs_err ul_head(struct backend *be, const char *key,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct ulist *u = be->priv;
	const struct uentry *e;
	struct http_response resp;
	struct http_request req = { .method = "HEAD", .body_fd = -1 };
	enum mfs_err rc = build(be, eb);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	e = find(u, key);
	if (!e) {
		/* a folder of the tree? */
		size_t i = lower(u, key), l = strlen(key);

		if (i < u->n && !strncmp(u->e[i].key, key, l) &&
		    u->e[i].key[l] == '/') {
			out->kind = OBJ_DIR;
			return MFS_OK;
		}
		return MFS_ENOTFOUND;
	}
	req.url = e->url;
	http_response_init(&resp);
	rc = call(be, &req, &resp, &be->stats.head, eb);
	if (!rc)
		meta_from(&resp, out);
	http_response_cleanup(&resp);
	return rc;
}

static enum mfs_err ul_get(struct backend *be, const char *key, uint64_t off,
			   size_t len, const char *etag, char *dst,
			   size_t *got, struct errbuf *eb)
{
	struct ulist *u = be->priv;
	const struct uentry *e;
	struct http_response resp;
	struct http_request req = { .method = "GET", .body_fd = -1 };
	char range[64];
	const char *hdr[2] = { range, NULL };
	enum mfs_err rc = build(be, eb);

	(void)etag;	/* origins rarely honour If-Match; sizes are checked */
	*got = 0;
	if (rc)
		return rc;
	if (!len)
		return MFS_OK;
	e = find(u, key);
	if (!e)
		return MFS_ENOTFOUND;
	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	req.url = e->url;
	req.headers = hdr;
	req.dst = dst;
	req.dst_cap = len;
	req.skip_on_200 = off;
	http_response_init(&resp);
	rc = call(be, &req, &resp, &be->stats.get, eb);
	if (rc == MFS_EIO && resp.status == 416)
		rc = MFS_OK;	/* past the end */
	else if (!rc)
		*got = resp.dst_len;
	http_response_cleanup(&resp);
	return rc;
}

static enum mfs_err ul_url(struct backend *be, const char *key, char **out)
{
	struct ulist *u = be->priv;
	const struct uentry *e;

	*out = NULL;
	if (build(be, NULL))
		return MFS_EIO;
	e = find(u, key);
	if (!e)
		return MFS_ENOTFOUND;
	*out = strdup(e->url);
	return *out ? MFS_OK : MFS_ENOMEM;
}

static void ul_free(struct backend *be)
{
	struct ulist *u;
	size_t i;
	int k;

	if (!be)
		return;
	u = be->priv;
	if (u) {
		for (i = 0; i < u->n; i++) {
			free(u->e[i].key);
			free(u->e[i].url);
		}
		free(u->e);
		for (k = 0; k < u->nfields; k++)
			free(u->fields[k]);
		free(u->manifest);
		free(u->json_glob);
		free(u->strip);
		http_client_free(u->http);
		pthread_mutex_destroy(&u->lock);
	}
	backend_dealloc(be);
}

static const struct backend_ops ulist_ops = {
	.type = "http",
	.caps = BE_CAP_RANGE_READ | BE_CAP_LAZY_ATTRS,
	.list = ul_list,
	.head = ul_head,
	.get = ul_get,
	.url = ul_url,
	.free = ul_free,
};

static const char *const ulist_keys[] = {
	"type", "manifest", "json_glob", "json_fields", "strip_prefix",
	"missing_status", "retries", "retry_base_ms", NULL
};

/* What the tree is made of, for the cache's ident: a changed manifest
 * drops the cached listings. */
static char *fingerprint(const struct ulist *u)
{
	unsigned long long sz = 0, mt = 0, n = 0;
	struct stat st;
	glob_t g;
	size_t i;

	if (u->manifest && !stat(u->manifest, &st)) {
		sz += (unsigned long long)st.st_size;
		mt ^= (unsigned long long)st.st_mtim.tv_sec * 1000000007ULL +
		      (unsigned long long)st.st_mtim.tv_nsec;
	}
	if (u->json_glob && !glob(u->json_glob, 0, NULL, &g)) {
		for (i = 0; i < g.gl_pathc; i++)
			if (!stat(g.gl_pathv[i], &st)) {
				n++;
				sz += (unsigned long long)st.st_size;
				mt ^= (unsigned long long)st.st_mtim.tv_sec *
				      1000000007ULL +
				      (unsigned long long)st.st_mtim.tv_nsec + i;
			}
		globfree(&g);
	}
	return str_fmt("http %s %s %s fields=%d strip=%s %llu/%llu/%llx",
		       u->manifest ? u->manifest : "-",
		       u->json_glob ? u->json_glob : "-",
		       u->nfields ? u->fields[0] : "-", u->nfields,
		       u->strip ? u->strip : "", n, sz, mt);
}

enum mfs_err urllist_backend_create(struct ini *ini, struct ini_section *sec,
				    struct backend **out, struct errbuf *eb)
{
	struct backend *be = backend_alloc(&ulist_ops, sec, sizeof(struct ulist));
	struct ulist *u;
	const char *v;
	enum mfs_err rc;

	*out = NULL;
	if (!be)
		return MFS_ENOMEM;
	u = be->priv;
	pthread_mutex_init(&u->lock, NULL);
	rc = backend_check_keys(ini, sec, ulist_keys, eb);
	if (!rc && (v = ini_get(sec, "manifest")) && *v)
		u->manifest = realpath(v, NULL);
	if (!rc && ini_get(sec, "manifest") && !u->manifest)
		rc = eb_set(eb, MFS_ECONFIG, "%s:%d: [%s] manifest '%s': %s",
			    ini->path, sec->line, sec->name,
			    ini_get(sec, "manifest"), strerror(errno));
	if (!rc && (v = ini_get(sec, "json_glob")) && *v)
		u->json_glob = strdup(v);
	if (!rc && !u->manifest && !u->json_glob)
		rc = eb_set(eb, MFS_EINVAL,
			    "%s:%d: [%s] needs 'manifest = FILE' and/or 'json_glob = PATTERN'",
			    ini->path, sec->line, sec->name);
	v = ini_get(sec, "json_fields");
	if (!rc && u->json_glob && (!v || !*v))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s:%d: [%s] json_glob needs 'json_fields = image_url,thumb_url'",
			    ini->path, sec->line, sec->name);
	if (!rc && v) {
		const char *s = v;

		while (*s && u->nfields < MAX_FIELDS) {
			size_t l = strcspn(s, ", ");

			if (l && !(u->fields[u->nfields++] = str_ndup(s, l)))
				rc = MFS_ENOMEM;
			s += l;
			while (*s == ',' || *s == ' ')
				s++;
		}
	}
	if (!rc && (v = ini_get(sec, "strip_prefix")) && *v)
		u->strip = strdup(v);
	if (!rc && (v = ini_get(sec, "missing_status"))) {
		const char *s = v;

		while (*s && u->nmissing < MAX_MISSING) {
			long st = strtol(s, (char **)&s, 10);

			if (st < 400 || st > 599) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: [%s] missing_status: HTTP statuses 400-599, comma-separated",
					    ini->path, sec->line, sec->name);
				break;
			}
			u->missing[u->nmissing++] = st;
			while (*s == ',' || *s == ' ')
				s++;
		}
	}
	if (!rc)
		rc = backend_http(sec, 5, sec->name, &u->retries,
				  &u->backoff_ms, &u->http, eb);
	if (!rc) {
		be->ident = fingerprint(u);
		if (!be->ident || !be->name)
			rc = MFS_ENOMEM;
	}
	if (rc) {
		ul_free(be);
		return rc;
	}
	*out = be;
	return MFS_OK;
}
