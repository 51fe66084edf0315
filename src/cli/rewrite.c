/* rewrite.c - mediactl rewrite: point an application database at the
 * migrated media, driven by the journal, safely.
 *
 * Two phases. PLAN reads the table in primary-key order (keyset pages of
 * PAGE rows: bounded memory at any size), computes every change and stores
 * it in the journal (rewrite_changes: key, before, after) — that is the
 * dry run, and the undo record. APPLY replays the stored changes in
 * batches of BATCH, each batch one transaction in the application database,
 * every UPDATE compare-and-set on the value the plan read (a row the
 * application changed meanwhile is skipped and reported, never
 * clobbered); RETURNING gives the value as the database stored it, so a
 * rollback's compare-and-set matches jsonb's normalised text too.
 * ROLLBACK restores the before values the same way.
 * Kinds: prefix (text column, prefix A -> B), map (old URL -> new URL from
 * the journal's pairs, in a text column or inside JSON values, with extra
 * fields from templates), insert (one row per uploaded object, values from
 * templates). This file plans and parses the commands; rewrite_apply.c
 * applies and rolls back. Calls: cli/db, cli/maps, meta/journal,
 * net/json, backend, common. */
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "meta/db.h"
#include "cli/maps.h"
#include "rewrite_int.h"
#include "common/buf.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/json.h"

#define PAGE 1000
#define MAX_SETS 32
#define SAMPLES 3
#define MAX_MAPS 32
#define SHOWN_UNRESOLVED 5

enum kind { K_PREFIX, K_MAP, K_INSERT };
static const char *const kind_names[] = { "prefix", "map", "insert" };

/* One journal pair: an object that moved (old URL -> new URL) or, for
 * inserts, one uploaded object. Strings owned. */
struct pair {
	char *upload_id, *remote, *key, *old_url, *new_url, *file_id;
	char *uploaded_at, *size, *ctype, *sha256, *etag, *label;
	struct js *vars;	/* a plan's captures and lookups, or NULL */
};

struct rw {
	struct cli *c;
	struct db *db;
	enum kind kind;
	const char *conn, *table, *column, *pk_opt, *where, *log_table;
	const char *from, *to, *json_field, *label, *mirror, *keys;
	const char *sets[MAX_SETS], *jsets[MAX_SETS], *first;
	int nsets, njsets;
	int only_verified, apply;
	long limit;
	char *pk, *qt, *qc, *qpk, *ctext;	/* quoted names, text expr */
	struct pair *pairs;
	size_t npairs, cap;
	struct idmap *by_old;	/* map: old URL -> index in pairs */
	struct idmap *verified;	/* prefix --only-verified: uploaded URLs */
	struct idmap *maps[MAX_MAPS];	/* --map: {NAME[x]}, {NAME[x].col} */
	int nmaps;
	int64_t id;		/* the rewrite's journal id */
	uint64_t scanned, planned, nosource;
	uint64_t unresolved;	/* templates without a value: nothing kept */
	int nsamples;
};

static void pair_free(struct pair *p)
{
	free(p->upload_id);
	free(p->remote);
	free(p->key);
	free(p->old_url);
	free(p->new_url);
	free(p->file_id);
	free(p->uploaded_at);
	free(p->size);
	free(p->ctype);
	free(p->sha256);
	free(p->etag);
	free(p->label);
	js_free(p->vars);
}

/* ---- templates ---- */

static int field(const struct rw *w, const struct pair *p, const char *name,
		 size_t n, struct buf *out);

/* {MAP[x]} or {MAP[x].column} with a --map of the rewrite: x is any
 * template name ({svc[sid].stylistId}, {users[path[1]]}). 1: not such a
 * name or no value. */
static int map_field(const struct rw *w, const struct pair *p,
		     const char *name, size_t n, struct buf *out)
{
	const char *br = memchr(name, '[', n), *rb = NULL, *col = NULL, *v;
	const struct idmap *m = NULL;
	struct buf key;
	size_t i, coln = 0;
	int depth = 0, r;
	char cb[128];

	if (!br)
		return 1;
	for (i = (size_t)(br - name); i < n && !rb; i++) {
		if (name[i] == '[')
			depth++;
		else if (name[i] == ']' && !--depth)
			rb = name + i;
	}
	if (!rb)
		return 1;
	if (rb + 1 < name + n) {
		if (rb[1] != '.' || (coln = (size_t)(name + n - rb - 2)) == 0 ||
		    coln >= sizeof(cb))
			return 1;
		memcpy(cb, rb + 2, coln);
		cb[coln] = '\0';
		col = cb;
	}
	for (i = 0; i < (size_t)w->nmaps && !m; i++)
		if (strlen(idmap_name(w->maps[i])) == (size_t)(br - name) &&
		    !strncmp(idmap_name(w->maps[i]), name, (size_t)(br - name)))
			m = w->maps[i];
	if (!m)
		return 1;
	buf_init(&key, 0);
	r = field(w, p, br + 1, (size_t)(rb - br - 1), &key);
	if (!r && !key.data)
		r = buf_adds(&key, "") ? -1 : 0;
	if (r) {
		buf_cleanup(&key);
		return r;
	}
	v = idmap_col(m, key.data, col);
	buf_cleanup(&key);
	if (!v)
		return 1;
	return buf_adds(out, v) ? -1 : 0;
}

/* The value of {name} for pair p into out (may point into p): 0, 1 when
 * the name has no value, -1 out of memory. */
static int field(const struct rw *w, const struct pair *p, const char *name,
		 size_t n, struct buf *out)
{
	static const struct {
		const char *name;
		size_t off;
	} f[] = {
		{ "key", offsetof(struct pair, key) },
		{ "remote", offsetof(struct pair, remote) },
		{ "old_url", offsetof(struct pair, old_url) },
		{ "new_url", offsetof(struct pair, new_url) },
		{ "url", offsetof(struct pair, new_url) },
		{ "file_id", offsetof(struct pair, file_id) },
		{ "uploaded_at", offsetof(struct pair, uploaded_at) },
		{ "size", offsetof(struct pair, size) },
		{ "content_type", offsetof(struct pair, ctype) },
		{ "sha256", offsetof(struct pair, sha256) },
		{ "etag", offsetof(struct pair, etag) },
		{ "label", offsetof(struct pair, label) },
		{ "upload_id", offsetof(struct pair, upload_id) },
	};
	size_t i;
	char name0[128];

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (strlen(f[i].name) == n && !strncmp(f[i].name, name, n)) {
			const char *v = *(char *const *)((const char *)p +
							 f[i].off);

			return buf_adds(out, v ? v : "") ? -1 : 0;
		}
	if (n > 6 && !strncmp(name, "path[", 5) && name[n - 1] == ']') {
		/* {path[N]}: segment N of the key (from 0; -1 the last) */
		long k = strtol(name + 5, NULL, 10), seg = 0, total = 1;
		const char *s = p->key ? p->key : "", *e;

		for (e = s; *e; e++)
			total += *e == '/';
		if (k < 0)
			k += total;
		for (; k >= 0 && seg < k && (s = strchr(s, '/')); seg++)
			s++;
		if (k < 0 || !s || seg != k)
			return 1;
		e = strchr(s, '/');
		return buf_add(out, s, e ? (size_t)(e - s) : strlen(s)) ? -1 : 0;
	}
	/* a plan's capture or map lookup ({old}, {users[old]}) */
	if (p->vars && n < sizeof(name0)) {
		const char *s;

		memcpy(name0, name, n);
		name0[n] = '\0';
		s = js_str(js_get(p->vars, name0));
		if (s)
			return buf_adds(out, s) ? -1 : 0;
	}
	return map_field(w, p, name, n, out);
}

/* Expand tpl for p into a malloc'd string; NULL with the reason in why
 * when a name has no value. */
static char *expand(const struct rw *w, const char *tpl, const struct pair *p,
		    char *why, size_t cap)
{
	struct buf b;
	const char *s = tpl, *open, *close;

	buf_init(&b, 0);
	while ((open = strchr(s, '{')) && (close = strchr(open, '}'))) {
		int r;

		if (buf_add(&b, s, (size_t)(open - s)))
			goto nomem;
		r = field(w, p, open + 1, (size_t)(close - open - 1), &b);
		if (r < 0)
			goto nomem;
		if (r) {
			snprintf(why, cap, "no value for %.*s in template '%s'",
				 (int)(close - open + 1), open, tpl);
			buf_cleanup(&b);
			return NULL;
		}
		s = close + 1;
	}
	if (buf_adds(&b, s))
		goto nomem;
	if (!b.data && buf_adds(&b, ""))
		goto nomem;
	return buf_take(&b);
nomem:
	buf_cleanup(&b);
	snprintf(why, cap, "out of memory");
	return NULL;
}

/* ---- pairs from the journal ---- */

static int pair_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	struct rw *w = ud;
	struct pair *p;
	char t[32];

	(void)ncol;
	(void)names;
	if (w->npairs == w->cap) {
		struct pair *np = realloc(w->pairs, sizeof(*np) *
					  (w->cap = w->cap ? w->cap * 2 : 1024));

		if (!np)
			return 1;
		w->pairs = np;
	}
	p = &w->pairs[w->npairs++];
	memset(p, 0, sizeof(*p));
	p->upload_id = cli_dup0(v[0]);
	p->remote = cli_dup0(v[1]);
	p->key = cli_dup0(v[2]);
	p->old_url = cli_dup0(v[3]);
	p->new_url = cli_dup0(v[4]);
	p->file_id = cli_dup0(v[5]);
	cli_iso(v[6] ? strtod(v[6], NULL) : 0, t, sizeof(t));
	p->uploaded_at = strdup(t);
	p->size = cli_dup0(v[7]);
	p->ctype = cli_dup0(v[8]);
	p->sha256 = cli_dup0(v[9]);
	p->etag = cli_dup0(v[10]);
	p->label = cli_dup0(v[11]);
	if (v[12])
		js_parse(v[12], strlen(v[12]), &p->vars, NULL);
	return 0;
}

#define UPLOAD_COLS \
	"u.id,u.remote,u.key,%s,u.url,u.file_id,u.updated_at,u.size," \
	"u.content_type,u.sha256,u.etag,u.label,%s"
/* newest finished upload of each key, not rolled back */
#define NEWEST \
	"u.id IN (SELECT max(id) FROM uploads WHERE state IN ('done'," \
	"'rolledback') GROUP BY remote,key) AND u.state='done'" \
	" AND substr(u.key,length(u.key),1)!='/'"

/* The journal holds the shared ledger's tables (cli/ledger: a plan
 * copied by 'mediactl work' on many hosts): 1, else 0. */
static int has_ledger(struct rw *w)
{
	return !journal_sql(w->c->j, "SELECT 1 FROM ledger_entries LIMIT 0",
			    NULL, 0, NULL, NULL, NULL);
}

/* A ledger entry of label ?1: the plan's name or label, or the upload's. */
#define LEDGER_LABEL \
	"(CAST(?1 AS TEXT) IS NULL OR u.label=?1 OR e.plan=?1 OR EXISTS" \
	" (SELECT 1 FROM ledger_plans lp WHERE lp.name=e.plan AND lp.label=?1))"

static int load_pairs(struct rw *w)
{
	struct errbuf eb = { 0 };
	char *sql = NULL, *lsql = NULL;
	const char *p[] = { w->label };
	int ledger = has_ledger(w);

	if (w->kind == K_INSERT) {
		/* the source of each upload: a copy's, else a ledger entry's */
		const char *src = ledger ?
			"coalesce((SELECT c.src_url FROM copies c WHERE"
			" c.dst_remote=u.remote AND c.dst_key=u.key AND"
			" c.state='done' ORDER BY c.id DESC LIMIT 1),"
			" (SELECT e.src_url FROM ledger_entries e WHERE"
			" e.dst_remote=u.remote AND e.dst_key=u.key AND"
			" e.state='done' ORDER BY e.finished_at DESC LIMIT 1))" :
			"(SELECT c.src_url FROM copies c WHERE"
			" c.dst_remote=u.remote AND c.dst_key=u.key AND"
			" c.state='done' ORDER BY c.id DESC LIMIT 1)";
		const char *vars = ledger ?
			"coalesce((SELECT c.vars FROM copies c WHERE"
			" c.dst_remote=u.remote AND c.dst_key=u.key AND"
			" c.state='done' ORDER BY c.id DESC LIMIT 1),"
			" (SELECT e.vars FROM ledger_entries e WHERE"
			" e.dst_remote=u.remote AND e.dst_key=u.key AND"
			" e.state='done' ORDER BY e.finished_at DESC LIMIT 1))" :
			"(SELECT c.vars FROM copies c WHERE"
			" c.dst_remote=u.remote AND c.dst_key=u.key AND"
			" c.state='done' ORDER BY c.id DESC LIMIT 1)";

		sql = str_fmt("SELECT " UPLOAD_COLS " FROM uploads u WHERE "
			      NEWEST " AND (CAST(?1 AS TEXT) IS NULL OR"
			      " u.label=?1) ORDER BY u.remote,u.key", src, vars);
	} else if (!w->mirror) {
		/* mediactl copy's pairs, then the ledger's (mediactl work) */
		sql = str_fmt("SELECT " UPLOAD_COLS " FROM copies c JOIN uploads u"
			      " ON u.remote=c.dst_remote AND u.key=c.dst_key WHERE "
			      NEWEST " AND c.state='done' AND c.src_url IS NOT NULL"
			      " AND (CAST(?1 AS TEXT) IS NULL OR c.label=?1 OR"
			      " u.label=?1) ORDER BY c.id",
			      "c.src_url", "c.vars");
		if (sql && ledger)
			lsql = str_fmt("SELECT " UPLOAD_COLS " FROM ledger_entries e"
				       " JOIN uploads u ON u.remote=e.dst_remote AND"
				       " u.key=e.dst_key WHERE " NEWEST " AND"
				       " e.state='done' AND e.src_url IS NOT NULL AND "
				       LEDGER_LABEL " ORDER BY e.plan,e.seq",
				       "e.src_url", "e.vars");
		if (ledger && !lsql) {
			free(sql);
			sql = NULL;
		}
	} else {
		sql = str_fmt("SELECT " UPLOAD_COLS " FROM uploads u WHERE "
			      NEWEST " AND (CAST(?1 AS TEXT) IS NULL OR"
			      " u.label=?1) ORDER BY u.remote,u.key", "NULL", "NULL");
	}
	if (!sql)
		return cli_fail(EXIT_STORE, "out of memory");
	if (journal_sql(w->c->j, sql, p, 1, pair_row, w, &eb) ||
	    (lsql && journal_sql(w->c->j, lsql, p, 1, pair_row, w, &eb))) {
		free(sql);
		free(lsql);
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	}
	free(sql);
	free(lsql);
	if (w->mirror) {
		/* SRC[:PREFIX]=DST[:PREFIX]: the same relative key on both */
		char *spec = strdup(w->mirror), *eq = spec ? strchr(spec, '=') : NULL;
		char *sp, *dp, *src, *dst;
		struct backend *be;
		size_t i, k = 0;

		if (!eq) {
			free(spec);
			return cli_fail(EXIT_USAGE, "--mirror SRC[:PREFIX]=DST[:PREFIX], please");
		}
		*eq = '\0';
		src = spec;
		dst = eq + 1;
		sp = strchr(src, ':');
		dp = strchr(dst, ':');
		if (sp)
			*sp++ = '\0';
		if (dp)
			*dp++ = '\0';
		be = cli_backend(w->c, src);
		if (!be) {
			free(spec);
			return EXIT_USAGE;
		}
		for (i = 0; i < w->npairs; i++) {
			struct pair *q = &w->pairs[i];
			size_t dl = dp ? strlen(dp) : 0;
			char *skey, *url = NULL;

			if (strcmp(q->remote, dst) ||
			    (dl && (strncmp(q->key, dp, dl) ||
				    q->key[dl] != '/'))) {
				pair_free(q);
				continue;
			}
			skey = sp && *sp ? str_fmt("%s/%s", sp, q->key +
						   (dl ? dl + 1 : 0))
					 : strdup(q->key + (dl ? dl + 1 : 0));
			if (!skey || be->ops->url(be, skey, &url)) {
				free(skey);
				pair_free(q);
				continue;
			}
			free(skey);
			free(q->old_url);
			q->old_url = url;
			w->pairs[k++] = *q;
		}
		w->npairs = k;
		free(spec);
	}
	return 0;
}

static int index_pairs(struct rw *w)
{
	struct errbuf eb = { 0 };
	char idx[32];
	size_t i;

	w->by_old = idmap_new("pairs");
	if (!w->by_old)
		return cli_fail(EXIT_STORE, "out of memory");
	for (i = 0; i < w->npairs; i++) {
		if (!w->pairs[i].old_url || !*w->pairs[i].old_url)
			continue;
		snprintf(idx, sizeof(idx), "%zu", i);
		/* the same old URL copied twice: the newer pair wins */
		if (idmap_get(w->by_old, w->pairs[i].old_url))
			continue;
		if (idmap_put(w->by_old, w->pairs[i].old_url, idx, &eb))
			return cli_fail(EXIT_STORE, "%s", eb.msg);
	}
	return 0;
}

static const struct pair *pair_for(struct rw *w, const char *old)
{
	const char *i = idmap_get(w->by_old, old);

	return i ? &w->pairs[strtoul(i, NULL, 10)] : NULL;
}

/* ---- planning ---- */

static int found_cb(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	(void)ncol;
	(void)v;
	(void)names;
	*(int *)ud = 1;
	return 1;
}

static int url_row(void *ud, int ncol, const char *const *v,
		   const char *const *names)
{
	(void)ncol;
	(void)names;
	return v[0] && idmap_put(ud, v[0], "1", NULL) != MFS_OK;
}

/* --only-verified: every URL of a finished upload, in a set. */
static int load_verified(struct rw *w)
{
	struct errbuf eb = { 0 };

	w->verified = idmap_new("verified");
	if (!w->verified)
		return cli_fail(EXIT_STORE, "out of memory");
	if (journal_sql(w->c->j, "SELECT DISTINCT u.url FROM uploads u WHERE "
			NEWEST, NULL, 0, url_row, w->verified, &eb))
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	return 0;
}

static void record(struct rw *w, const char *pk, const char *before,
		   const char *after, const char *extra, const char *source,
		   const char *old_url, const char *new_url)
{
	char id[32];
	const char *p[] = { id, pk, before, after, extra, source, old_url,
			    new_url };

	snprintf(id, sizeof(id), "%lld", (long long)w->id);
	journal_exec(w->c->j,
		     "INSERT INTO rewrite_changes(rewrite_id,pk,before,after,"
		     "extra,source,old_url,new_url,state) VALUES"
		     "(?1,?2,?3,?4,?5,?6,?7,?8,'planned')", p, 8, NULL, NULL);
	w->planned++;
	if (w->nsamples < SAMPLES) {
		w->nsamples++;
		if (w->kind == K_INSERT)
			printf("  sample insert: %s\n", extra);
		else
			printf("  sample %s=%s:\n    before: %.300s\n    after:  %.300s\n",
			       w->pk, pk, before, after);
	}
}

/* A template without a value for p: counted, the first few shown; the
 * rewrite is then refused as a whole (nothing recorded, exit 2). */
static void unresolved(struct rw *w, const struct pair *p, const char *why)
{
	if (w->unresolved++ < SHOWN_UNRESOLVED)
		fprintf(stderr, "mediactl: %s:%s: %s\n", p->remote ? p->remote : "",
			p->key ? p->key : "", why);
}

/* Extra columns of a text-column rewrite: {"col":[before,after]} from
 * --set templates, before as the row holds it (null for NULL). */
static char *extra_for(struct rw *w, const struct pair *p,
		       const char *const *cur, char *why, size_t cap)
{
	struct js *o;
	char *s = NULL;
	int i, bad = 0;

	if (!w->nsets)
		return NULL;
	o = js_obj();
	for (i = 0; i < w->nsets && !bad; i++) {
		const char *eq = strchr(w->sets[i], '=');
		char *col = str_ndup(w->sets[i], (size_t)(eq - w->sets[i]));
		char *v = expand(w, eq + 1, p, why, cap);
		struct js *a = js_arr(), *nul = NULL;

		if (!col || !v) {
			bad = 1;
		} else {
			if (cur[i])
				js_push_str(a, cur[i]);
			else if (!js_parse("null", 4, &nul, NULL))
				js_push(a, nul);
			js_push_str(a, v);
			js_set(o, col, a);
			a = NULL;
		}
		js_free(a);
		free(col);
		free(v);
	}
	if (!bad)
		s = js_dump(o, 0);
	js_free(o);
	return s;
}

/* A JSON value with every element (or the object itself) whose
 * json_field is a mapped old URL rewritten; NULL when nothing matched. */
static char *rewrite_json(struct rw *w, const char *text, const char **first_old,
			  const char **first_new, const char **source,
			  char *why, size_t cap)
{
	struct js *v = NULL;
	size_t i, n;
	int hits = 0, j;
	char *out = NULL;

	if (js_parse(text, strlen(text), &v, NULL)) {
		snprintf(why, cap, "not JSON");
		return NULL;
	}
	n = js_is_arr(v) ? js_len(v) : 1;
	for (i = 0; i < n; i++) {
		struct js *e = (struct js *)(js_is_arr(v) ? js_at(v, i) : v);
		const char *u = js_str(js_get(e, w->json_field));
		const struct pair *p = u ? pair_for(w, u) : NULL;

		if (!p)
			continue;
		if (!hits) {
			*first_old = p->old_url;
			*first_new = p->new_url;
			*source = p->upload_id;
		}
		hits++;
		js_set_str(e, w->json_field, p->new_url);
		for (j = 0; j < w->nsets; j++) {
			const char *eq = strchr(w->sets[j], '=');
			char *f = str_ndup(w->sets[j], (size_t)(eq - w->sets[j]));
			char *val = expand(w, eq + 1, p, why, cap);

			if (f && val)
				js_set_str(e, f, val);
			else if (f)
				unresolved(w, p, why);
			free(f);
			free(val);
		}
		for (j = 0; j < w->njsets; j++) {
			const char *eq = strchr(w->jsets[j], '=');
			char *f = str_ndup(w->jsets[j], (size_t)(eq - w->jsets[j]));
			struct js *jv = NULL;

			if (f && !js_parse(eq + 1, strlen(eq + 1), &jv, NULL))
				js_set(e, f, jv);
			free(f);
		}
	}
	if (hits)
		out = js_dump(v, 0);
	js_free(v);
	return out;
}

struct page {
	struct rw *w;
	char *last;		/* the last key seen */
	int rows;
	int nextra;
};

static int plan_row(void *ud, int ncol, const char *const *v)
{
	struct page *pg = ud;
	struct rw *w = pg->w;
	char why[512] = "", *after = NULL, *extra = NULL;
	const char *old = NULL, *nw = NULL, *src = NULL;
	const struct pair *p = NULL;

	(void)ncol;
	free(pg->last);
	pg->last = cli_dup0(v[0]);
	pg->rows++;
	w->scanned++;
	if (!v[1] || (w->limit > 0 && w->planned >= (uint64_t)w->limit))
		return 0;
	if (w->kind == K_PREFIX) {
		if (!str_starts(v[1], w->from))
			return 0;
		after = str_fmt("%s%s", w->to, v[1] + strlen(w->from));
		if (after && w->only_verified &&
		    !idmap_get(w->verified, after)) {
			w->nosource++;	/* not (yet) a finished upload */
			free(after);
			return 0;
		}
		old = v[1];
		nw = after;
	} else if (w->json_field) {
		after = rewrite_json(w, v[1], &old, &nw, &src, why, sizeof(why));
		if (!after)
			return 0;
	} else {
		p = pair_for(w, v[1]);
		if (!p)
			return 0;
		after = strdup(p->new_url);
		old = p->old_url;
		nw = p->new_url;
		src = p->upload_id;
		extra = extra_for(w, p, v + 2, why, sizeof(why));
		if (w->nsets && !extra)
			unresolved(w, p, why);
	}
	if (w->unresolved) {
		free(after);
		free(extra);
		return 0;	/* nothing is kept: the rewrite is refused */
	}
	if (after && strcmp(after, v[1]))
		record(w, v[0], v[1], after, extra, src, old, nw);
	free(after);
	free(extra);
	return 0;
}

static int plan_update(struct rw *w)
{
	struct page pg = { w, NULL, 0, 0 };
	struct errbuf eb = { 0 };
	struct buf cols;
	char *sql1 = NULL, *sql2 = NULL, *pkt = w->db->ops->as_text(w->qpk);
	const char *cond;
	int i, ret = 0;

	buf_init(&cols, 0);
	for (i = 0; i < w->nsets && !w->json_field; i++) {
		char *c = str_ndup(w->sets[i], (size_t)(strchr(w->sets[i], '=') -
							w->sets[i]));
		char *qc = c ? db_ident(c) : NULL;
		char *t = qc ? w->db->ops->as_text(qc) : NULL;

		buf_addf(&cols, ",%s AS mctl_x%d", t ? t : "NULL", i);
		free(c);
		free(qc);
		free(t);
	}
	cond = w->where ? w->where : "TRUE";
	/* the text expressions get their own names: ORDER BY "id" must mean
	 * the column, not an output column called id (PostgreSQL) */
	sql1 = str_fmt("SELECT %s AS mctl_pk,%s AS mctl_val%s FROM %s WHERE (%s)"
		       " ORDER BY %s LIMIT %d",
		       pkt, w->ctext, cols.data ? cols.data : "", w->qt, cond,
		       w->qpk, PAGE);
	sql2 = str_fmt("SELECT %s AS mctl_pk,%s AS mctl_val%s FROM %s WHERE (%s)"
		       " AND %s > $1 ORDER BY %s LIMIT %d",
		       pkt, w->ctext, cols.data ? cols.data : "", w->qt, cond,
		       w->qpk, w->qpk, PAGE);
	buf_cleanup(&cols);
	if (!sql1 || !sql2 || !pkt) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	journal_exec(w->c->j, "BEGIN", NULL, 0, NULL, NULL);
	for (;;) {
		const char *p[] = { pg.last };
		enum mfs_err rc;

		pg.rows = 0;
		rc = w->db->ops->query(w->db, pg.last ? sql2 : sql1, p,
				       pg.last ? 1 : 0, plan_row, &pg, &eb);
		if (rc) {
			ret = cli_fail(EXIT_USAGE, "reading %s: %s", w->table,
				       eb.msg);
			break;
		}
		if (pg.rows < PAGE ||
		    (w->limit > 0 && w->planned >= (uint64_t)w->limit))
			break;
		if (isatty(2))
			fprintf(stderr, "%llu rows read, %llu to change\n",
				(unsigned long long)w->scanned,
				(unsigned long long)w->planned);
	}
	journal_exec(w->c->j, w->unresolved ? "ROLLBACK" : "COMMIT", NULL, 0,
		     NULL, NULL);
out:
	free(pg.last);
	free(sql1);
	free(sql2);
	free(pkt);
	return ret;
}

/* ---- inserts ---- */

static int plan_insert(struct rw *w)
{
	char why[512], prevgroup[1024] = "";
	size_t i;
	int k, dups = 0;
	const char *fcol = NULL;
	char *fgroup = NULL;

	if (w->first) {
		const char *eq = strchr(w->first, '=');

		fcol = w->first;
		fgroup = str_ndup(eq + 1, strlen(eq + 1));
	}
	journal_exec(w->c->j, "BEGIN", NULL, 0, NULL, NULL);
	for (i = 0; i < w->npairs; i++) {
		const struct pair *p = &w->pairs[i];
		struct js *o;
		char *row, *g = NULL;
		int bad = 0, seen = 0;

		if (w->keys && fnmatch(w->keys, p->key, 0))
			continue;
		if (w->limit > 0 && w->planned >= (uint64_t)w->limit)
			break;
		{
			/* inserted by an earlier rewrite into this table */
			const char *q[] = { w->table, p->upload_id };

			journal_sql(w->c->j,
				    "SELECT 1 FROM rewrite_changes rc JOIN rewrites r"
				    " ON r.id=rc.rewrite_id WHERE r.kind='insert'"
				    " AND r.tbl=?1 AND rc.state='applied' AND"
				    " rc.source=?2 LIMIT 1",
				    q, 2, found_cb, &seen, NULL);
		}
		o = js_obj();
		for (k = 0; k < w->nsets && !bad; k++) {
			const char *eq = strchr(w->sets[k], '=');
			char *col = str_ndup(w->sets[k], (size_t)(eq - w->sets[k]));
			char *v = expand(w, eq + 1, p, why, sizeof(why));

			if (!col || !v) {
				unresolved(w, p, why);
				bad = 1;
			} else {
				js_set_str(o, col, v);
			}
			free(col);
			free(v);
		}
		if (!bad && fcol) {
			char col[256];

			g = expand(w, fgroup, p, why, sizeof(why));
			if (!g) {
				unresolved(w, p, why);
				bad = 1;
			}
			snprintf(col, sizeof(col), "%.*s",
				 (int)(strchr(fcol, '=') - fcol), fcol);
			/* 1/0: a boolean to PostgreSQL and SQLite alike */
			js_set_str(o, col, g && strcmp(g, prevgroup) ? "1" : "0");
			if (g)
				snprintf(prevgroup, sizeof(prevgroup), "%s", g);
		}
		free(g);
		row = w->unresolved || seen ? NULL : js_dump(o, 0);
		js_free(o);
		if (seen)
			dups++;
		if (row)
			record(w, NULL, NULL, NULL, row, p->upload_id,
			       p->old_url, p->new_url);
		free(row);
	}
	journal_exec(w->c->j, w->unresolved ? "ROLLBACK" : "COMMIT", NULL, 0,
		     NULL, NULL);
	free(fgroup);
	if (dups)
		printf("  %d objects were inserted by an earlier rewrite into %s: not again\n",
		       dups, w->table);
	return 0;
}

/* ---- commands ---- */

static int list_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	(void)ncol;
	(void)names;
	if (!(*(int *)ud)++)
		printf("%-4s %-19s %-6s %-24s %-10s %8s %8s %8s  %s\n", "id",
		       "created (UTC)", "kind", "table.column", "state",
		       "planned", "applied", "skipped", "database");
	{
		char tc[256], t[32];

		snprintf(tc, sizeof(tc), "%s%s%s", v[3], *v[4] ? "." : "", v[4]);
		cli_iso(v[1] ? strtod(v[1], NULL) : 0, t, sizeof(t));
		t[19] = '\0';	/* the column says UTC */
		printf("%-4s %-19s %-6s %-24s %-10s %8s %8s %8s  %s\n", v[0],
		       t, v[2], tc, v[5], v[6], v[7], v[8], v[9]);
	}
	return 0;
}

static void rewrite_usage(FILE *f)
{
	fprintf(f,
"usage: mediactl rewrite prefix --db CONN --table T --column C --from A --to B\n"
"                        [--only-verified] [COMMON]\n"
"       mediactl rewrite map --db CONN --table T --column C [--json-field F]\n"
"                        [--set F=TEMPLATE]... [--set-json F=JSON]...\n"
"                        [--label L] [--mirror SRC[:P]=DST[:P]] [COMMON]\n"
"       mediactl rewrite insert --db CONN --table T --set COL=TEMPLATE...\n"
"                        [--first COL=GROUP-TEMPLATE] [--label L] [--keys GLOB]\n"
"                        [--map NAME=FILE[,key=F][,value=F]]...\n"
"                        [--limit N] [--apply]\n"
"       mediactl rewrite apply ID --db CONN\n"
"       mediactl rewrite list\n"
"       mediactl rollback --rewrite ID --db CONN [--dry-run]\n"
"  COMMON: [--where SQL] [--limit N] [--pk COLUMN] [--log-table T] [--apply]\n"
"  CONN: sqlite:PATH, postgres://user:pw@host:port/db, 'host=… dbname=…', or ''\n"
"        (the PG* environment). Without --apply it is a dry run: the changes\n"
"        are planned and stored in the journal (rewrite #ID), counts and\n"
"        samples printed, nothing written; 'rewrite apply ID' writes them.\n"
"  Templates: {old_url} {new_url} {key} {remote} {file_id} {uploaded_at}\n"
"        {size} {content_type} {sha256} {etag} {label} {path[N]} (segment N of\n"
"        the key; -1 the last), a copy plan's captures and lookups ({old},\n"
"        {users[old]}, {svc[sid].stylistId}: every --map of the plan by every\n"
"        capture, every column), and {NAME[X]} / {NAME[X].COLUMN} with a\n"
"        --map NAME=FILE[,key=F] given here, X any template name ({path[1]}).\n"
"        A template without a value refuses the whole rewrite (exit 2).\n");
}

static int cmd_list(struct cli *c)
{
	int n = 0;

	journal_sql(c->j, "SELECT id,created_at,kind,tbl,"
		    "coalesce(col,''),state,coalesce(planned,0),"
		    "coalesce(applied,0),coalesce(skipped,0),db FROM rewrites"
		    " ORDER BY id", NULL, 0, list_row, &n, NULL);
	if (!n)
		printf("no rewrites in the journal\n");
	return 0;
}

/* Open the database for a stored rewrite; a different database than the
 * one it was planned on is refused. */
static int check_set(const char *s, const char *opt)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s)
		return cli_fail(EXIT_USAGE, "%s %s: NAME=VALUE, please", opt, s);
	return 0;
}

int cmd_rewrite(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "table", required_argument, NULL, 't' },
		{ "column", required_argument, NULL, 'C' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 'T' },
		{ "only-verified", no_argument, NULL, 'v' },
		{ "json-field", required_argument, NULL, 'J' },
		{ "set", required_argument, NULL, 's' },
		{ "set-json", required_argument, NULL, 'S' },
		{ "label", required_argument, NULL, 'l' },
		{ "mirror", required_argument, NULL, 'm' },
		{ "keys", required_argument, NULL, 'k' },
		{ "first", required_argument, NULL, 'F' },
		{ "where", required_argument, NULL, 'w' },
		{ "limit", required_argument, NULL, 'n' },
		{ "pk", required_argument, NULL, 'p' },
		{ "log-table", required_argument, NULL, 'L' },
		{ "apply", no_argument, NULL, 'a' },
		{ "map", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rw w = { 0 };
	struct errbuf eb = { 0 };
	struct buf args;
	const char *sub = argc > 1 ? argv[1] : "";
	int ch, ret = 0, i;
	char idtxt[32];

	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		rewrite_usage(stdout);
		return 0;
	}
	if (!strcmp(sub, "list")) {
		ret = cli_journal_shared(c);
		return ret ? ret : cmd_list(c);
	}
	w.c = c;
	if (!strcmp(sub, "prefix")) {
		w.kind = K_PREFIX;
	} else if (!strcmp(sub, "map")) {
		w.kind = K_MAP;
	} else if (!strcmp(sub, "insert")) {
		w.kind = K_INSERT;
	} else if (strcmp(sub, "apply")) {
		rewrite_usage(stderr);
		return EXIT_USAGE;
	}
	buf_init(&args, 0);
	buf_adds(&args, sub);
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		for (i = 0; opts[i].name && ch != 'd'; i++)
			if (opts[i].val == ch)
				buf_addf(&args, " --%s%s%s%s", opts[i].name,
					 optarg ? " '" : "", optarg ? optarg : "",
					 optarg ? "'" : "");
		switch (ch) {
		case 'd': w.conn = optarg; break;
		case 't': w.table = optarg; break;
		case 'C': w.column = optarg; break;
		case 'f': w.from = optarg; break;
		case 'T': w.to = optarg; break;
		case 'v': w.only_verified = 1; break;
		case 'J': w.json_field = optarg; break;
		case 's':
			if (w.nsets == MAX_SETS || check_set(optarg, "--set"))
				goto usage;
			w.sets[w.nsets++] = optarg;
			break;
		case 'S':
			if (w.njsets == MAX_SETS || check_set(optarg, "--set-json"))
				goto usage;
			{
				struct js *jv = NULL;

				if (js_parse(strchr(optarg, '=') + 1,
					     strlen(strchr(optarg, '=') + 1), &jv,
					     &eb)) {
					ret = cli_fail(EXIT_USAGE, "--set-json %s: %s",
						       optarg, eb.msg);
					goto out;
				}
				js_free(jv);
			}
			w.jsets[w.njsets++] = optarg;
			break;
		case 'l': w.label = optarg; break;
		case 'm': w.mirror = optarg; break;
		case 'k': w.keys = optarg; break;
		case 'F':
			if (check_set(optarg, "--first"))
				goto usage;
			w.first = optarg;
			break;
		case 'w': w.where = optarg; break;
		case 'n': w.limit = strtol(optarg, NULL, 10); break;
		case 'p': w.pk_opt = optarg; break;
		case 'L': w.log_table = optarg; break;
		case 'a': w.apply = 1; break;
		case 'M':
			if (w.nmaps == MAX_MAPS) {
				ret = cli_fail(EXIT_USAGE, "at most %d maps", MAX_MAPS);
				goto out;
			}
			if (idmap_load(optarg, &w.maps[w.nmaps], &eb)) {
				ret = cli_fail(EXIT_USAGE, "%s", eb.msg);
				goto out;
			}
			w.nmaps++;
			break;
		case 'h':
			rewrite_usage(stdout);
			goto out;
		default:
			goto usage;
		}
	}
	if (!strcmp(sub, "apply")) {
		struct db *db = NULL;

		if (optind + 1 != argc - 1 || !w.conn) {
			ret = cli_fail(EXIT_USAGE, "rewrite apply ID --db CONN");
			goto out;
		}
		ret = cli_journal_shared(c);
		if (!ret)
			ret = rewrite_open(c, argv[optind + 1], w.conn, &db);
		if (!ret)
			ret = rewrite_apply(c, db, argv[optind + 1], 0, 0);
		db_close(db);
		goto out;
	}
	if (optind != argc - 1) {
		ret = cli_fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!w.conn || !w.table ||
	    (w.kind != K_INSERT && !w.column) ||
	    (w.kind == K_PREFIX && (!w.from || !w.to)) ||
	    (w.kind == K_INSERT && !w.nsets)) {
		ret = cli_fail(EXIT_USAGE, "rewrite %s needs %s (mediactl rewrite --help)",
			       sub, w.kind == K_PREFIX ? "--db, --table, --column, --from and --to" :
			       w.kind == K_MAP ? "--db, --table and --column" :
			       "--db, --table and at least one --set");
		goto out;
	}
	if (w.kind != K_MAP && (w.json_field || w.njsets || w.mirror)) {
		ret = cli_fail(EXIT_USAGE, "--json-field, --set-json and --mirror are for 'rewrite map'");
		goto out;
	}
	if (w.kind == K_PREFIX && w.nsets) {
		ret = cli_fail(EXIT_USAGE, "'rewrite prefix' sets no other columns");
		goto out;
	}
	ret = cli_journal_shared(c);
	if (ret)
		goto out;
	if (db_open(w.conn, &w.db, &eb)) {
		ret = cli_fail(EXIT_STORE, "%s", eb.msg);
		goto out;
	}
	if (w.pk_opt)
		w.pk = strdup(w.pk_opt);
	else if (w.db->ops->primary_key(w.db, w.table, &w.pk, &eb)) {
		ret = cli_fail(EXIT_USAGE, "%s", eb.msg);
		goto out;
	}
	w.qt = db_ident(w.table);
	w.qpk = db_ident(w.pk);
	w.qc = w.column ? db_ident(w.column) : NULL;
	w.ctext = w.qc ? w.db->ops->as_text(w.qc) : NULL;
	if (w.kind != K_PREFIX) {
		ret = load_pairs(&w);
		if (!ret && w.kind == K_MAP)
			ret = index_pairs(&w);
	} else if (w.only_verified) {
		ret = load_verified(&w);
	}
	if (ret)
		goto out;
	{
		char *red = db_redacted(w.conn), now[32];
		const char *p[] = { now, red, kind_names[w.kind], w.table,
				    w.column, w.pk, args.data, w.log_table };

		snprintf(now, sizeof(now), "%.3f", cli_now());
		journal_sql(c->j, "INSERT INTO rewrites(created_at,db,kind,tbl,col,"
			    "pk,args,log_table,state) VALUES(?1,?2,?3,?4,?5,?6,"
			    "?7,?8,'planned') RETURNING id", p, 8, cli_int_row, &w.id,
			    NULL);
		free(red);
	}
	if (!w.id) {
		ret = cli_fail(EXIT_STORE, "cannot record the rewrite in the journal");
		goto out;
	}
	snprintf(idtxt, sizeof(idtxt), "%lld", (long long)w.id);
	printf("rewrite #%s: %s of %s%s%s\n", idtxt, kind_names[w.kind], w.table,
	       w.column ? "." : "", w.column ? w.column : "");
	if (w.kind == K_MAP)
		printf("  %zu moved objects in the journal%s%s\n", w.npairs,
		       w.label ? " with label " : "", w.label ? w.label : "");
	ret = w.kind == K_INSERT ? plan_insert(&w) : plan_update(&w);
	if (!ret && w.unresolved) {
		const char *p[] = { idtxt };

		journal_exec(c->j, "DELETE FROM rewrite_changes WHERE rewrite_id=?1",
			     p, 1, NULL, NULL);
		journal_exec(c->j, "DELETE FROM rewrites WHERE id=?1", p, 1,
			     NULL, NULL);
		ret = cli_fail(EXIT_USAGE, "%llu template values could not be resolved%s: rewrite #%s not recorded, nothing written",
			       (unsigned long long)w.unresolved,
			       w.unresolved > SHOWN_UNRESOLVED ? " (the first shown above)" : "",
			       idtxt);
	}
	if (ret)
		goto out;
	{
		char n[32];
		const char *p[] = { idtxt, n };

		snprintf(n, sizeof(n), "%llu", (unsigned long long)w.planned);
		journal_exec(c->j, "UPDATE rewrites SET planned=?2 WHERE id=?1", p,
			     2, NULL, NULL);
	}
	if (w.kind == K_INSERT)
		printf("  %llu rows to insert\n", (unsigned long long)w.planned);
	else
		printf("  %llu rows read, %llu to change\n",
		       (unsigned long long)w.scanned,
		       (unsigned long long)w.planned);
	if (w.nosource)
		printf("  %llu rows left alone: their new URL is not a finished upload in the journal (--only-verified)\n",
		       (unsigned long long)w.nosource);
	if (!w.apply) {
		char *red = db_redacted(w.conn);

		printf("dry run: nothing written. Apply with: mediactl rewrite apply %s --db '%s'\n",
		       idtxt, red ? red : "");
		free(red);
	} else {
		ret = rewrite_apply(c, w.db, idtxt, 0, 0);
	}
	goto out;
usage:
	ret = EXIT_USAGE;
out:
	for (i = 0; i < (int)w.npairs; i++)
		pair_free(&w.pairs[i]);
	free(w.pairs);
	idmap_free(w.by_old);
	idmap_free(w.verified);
	for (i = 0; i < w.nmaps; i++)
		idmap_free(w.maps[i]);
	db_close(w.db);
	free(w.pk);
	free(w.qt);
	free(w.qpk);
	free(w.qc);
	free(w.ctext);
	buf_cleanup(&args);
	return ret;
}
