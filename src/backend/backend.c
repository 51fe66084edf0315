/* backend.c - registry of providers, and option parsing they share.
 * Calls: common, net (http). */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

#include "common/str.h"
#include "net/http.h"

static const struct {
	const char *type;
	enum mfs_err (*create)(struct ini *, struct ini_section *,
			       struct backend **, struct errbuf *);
} registry[] = {
	{ "s3", s3_backend_create },
	{ "local", local_backend_create },
	{ "supabase", supabase_backend_create },
	{ "imagekit", imagekit_backend_create },
	{ "http", urllist_backend_create },
};

enum mfs_err backend_create(struct ini *ini, struct ini_section *sec,
			    struct backend **out, struct errbuf *eb)
{
	const char *type = ini_get(sec, "type");
	size_t i;

	*out = NULL;
	if (!type)
		return eb_set(eb, MFS_EINVAL,
			      "%s:%d: remote [%s] has no 'type' (one of: s3, local, supabase, imagekit, http)",
			      ini->path, sec->line, sec->name);
	for (i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
		if (!strcmp(registry[i].type, type))
			return registry[i].create(ini, sec, out, eb);
	return eb_set(eb, MFS_EINVAL,
		      "%s:%d: remote [%s] has unknown type '%s' (known: s3, local, supabase, imagekit, http)",
		      ini->path, sec->line, sec->name, type);
}

void backend_free(struct backend *be)
{
	if (be)
		be->ops->free(be);
}

static const char *const *extra_keys;

void backend_accept_keys(const char *const *keys)
{
	extra_keys = keys;
}

static int known_key(const char *const *list, const char *key)
{
	int j;

	for (j = 0; list && list[j]; j++)
		if (!strcmp(list[j], key))
			return 1;
	return 0;
}

enum mfs_err backend_check_keys(const struct ini *ini,
				const struct ini_section *sec,
				const char *const *known, struct errbuf *eb)
{
	int i;

	for (i = 0; i < sec->nkv; i++)
		if (!known_key(known, sec->kv[i].key) &&
		    !known_key(extra_keys, sec->kv[i].key))
			return eb_set(eb, MFS_EINVAL,
				      "%s:%d: unknown key '%s' in [%s]",
				      ini->path, sec->kv[i].line,
				      sec->kv[i].key, sec->name);
	return MFS_OK;
}

uint64_t backend_part_size(uint64_t size)
{
	const uint64_t mib = 1024 * 1024;
	uint64_t p = (size + 9999) / 10000;

	p = (p + mib - 1) / mib * mib;
	return p < 8 * mib ? 8 * mib : p;
}

enum mfs_err backend_opt_u64(struct ini_section *sec, const char *key,
			     uint64_t def, uint64_t max, const char *where,
			     uint64_t *out, struct errbuf *eb)
{
	const char *v = ini_get(sec, key);

	*out = def;
	if (v && (str_parse_u64(v, out) || *out > max)) {
		*out = def;
		return eb_set(eb, MFS_EINVAL, "%s: %s must be 0..%llu, not '%s'",
			      where, key, (unsigned long long)max, v);
	}
	return MFS_OK;
}

enum mfs_err backend_http(struct ini_section *sec, int def_retries,
			  const char *where, int *retries, long *backoff_ms,
			  struct http_client **http, struct errbuf *eb)
{
	struct http_opts ho = { 0 };
	uint64_t n = 0;
	enum mfs_err rc;

	*http = NULL;
	rc = backend_opt_u64(sec, "retries", (uint64_t)def_retries, 100, where,
			     &n, eb);
	*retries = (int)n;
	if (!rc)
		rc = backend_opt_u64(sec, "retry_base_ms", 200, 60000, where,
				     &n, eb);
	*backoff_ms = (long)n;
	ho.ca_file = ini_get(sec, "ca_file");
	ho.name = sec->name;
	if (!rc && !(*http = http_client_new(&ho)))
		rc = MFS_ENOMEM;
	return rc;
}

struct backend *backend_alloc(const struct backend_ops *ops,
			      const struct ini_section *sec, size_t priv_size)
{
	struct backend *be = calloc(1, sizeof(*be));

	if (!be)
		return NULL;
	be->ops = ops;
	be->priv = calloc(1, priv_size);
	be->name = strdup(sec->name);
	if (!be->priv || !be->name) {
		backend_dealloc(be);
		return NULL;
	}
	return be;
}

void backend_dealloc(struct backend *be)
{
	if (!be)
		return;
	free(be->priv);
	free(be->name);
	free(be->ident);
	free(be);
}

struct sweep {
	char **ids;
	int n, cap;
	int64_t since_ns;
	const char *keep;
};

static enum mfs_err sweep_cb(void *ud, const char *upload_id,
			     int64_t initiated_ns)
{
	struct sweep *w = ud;
	char **nv;

	if (initiated_ns < w->since_ns || (w->keep &&
					   !strcmp(upload_id, w->keep)))
		return MFS_OK;
	if (w->n == w->cap) {
		nv = realloc(w->ids, sizeof(*nv) * (size_t)(w->cap * 2 + 4));
		if (!nv)
			return MFS_ENOMEM;
		w->ids = nv;
		w->cap = w->cap * 2 + 4;
	}
	w->ids[w->n] = strdup(upload_id);
	if (!w->ids[w->n])
		return MFS_ENOMEM;
	w->n++;
	return MFS_OK;
}

enum mfs_err backend_mp_sweep(struct backend *be, const char *key,
			      int64_t since_ns, const char *keep,
			      int *aborted, struct errbuf *eb)
{
	struct sweep w = { NULL, 0, 0, since_ns, keep };
	enum mfs_err rc;
	int i;

	*aborted = 0;
	if (!be->ops->mp_list || !be->ops->mp_abort)
		return MFS_EUNSUPP;
	rc = be->ops->mp_list(be, key, sweep_cb, &w, eb);
	for (i = 0; i < w.n; i++) {
		if (!rc) {
			rc = be->ops->mp_abort(be, key, w.ids[i], eb);
			if (!rc)
				(*aborted)++;
		}
		free(w.ids[i]);
	}
	free(w.ids);
	return rc;
}
