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
 * templates). Calls: cli/db, cli/maps, meta/journal, net/json, backend,
 * common. */
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/maps.h"
#include "common/buf.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/json.h"

#define PAGE 1000
#define BATCH 500
#define MAX_SETS 32
#define SAMPLES 3

enum kind { K_PREFIX, K_MAP, K_INSERT };
static const char *const kind_names[] = { "prefix", "map", "insert" };

/* One journal pair: an object that moved (old URL -> new URL) or, for
 * inserts, one uploaded object. Strings owned. */
struct pair {
	char *upload_id, *remote, *key, *old_url, *new_url, *file_id;
	char *uploaded_at, *size, *ctype, *sha256, *etag, *label, *vars;
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
	struct idmap *by_old;	/* old URL -> index in pairs */
	int64_t id;		/* the rewrite's journal id */
	uint64_t scanned, planned, nosource;
	int nsamples;
	char *argline;
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
	free(p->vars);
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void iso(double t, char *out, size_t cap)
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- templates ---- */

/* The value of {name} for pair p into out (may point into p). */
static int field(const struct pair *p, const char *name, size_t n,
		 struct buf *out)
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
		struct js *v = NULL;
		const char *s;

		memcpy(name0, name, n);
		name0[n] = '\0';
		if (!js_parse(p->vars, strlen(p->vars), &v, NULL) &&
		    (s = js_str(js_get(v, name0)))) {
			int r = buf_adds(out, s) ? -1 : 0;

			js_free(v);
			return r;
		}
		js_free(v);
	}
	return 1;
}

/* Expand tpl for p into a malloc'd string; NULL with the reason in why
 * when a name has no value. */
static char *expand(const char *tpl, const struct pair *p, char *why,
		    size_t cap)
{
	struct buf b;
	const char *s = tpl, *open, *close;

	buf_init(&b, 0);
	while ((open = strchr(s, '{')) && (close = strchr(open, '}'))) {
		int r;

		if (buf_add(&b, s, (size_t)(open - s)))
			goto nomem;
		r = field(p, open + 1, (size_t)(close - open - 1), &b);
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
	p->upload_id = dup0(v[0]);
	p->remote = dup0(v[1]);
	p->key = dup0(v[2]);
	p->old_url = dup0(v[3]);
	p->new_url = dup0(v[4]);
	p->file_id = dup0(v[5]);
	iso(v[6] ? strtod(v[6], NULL) : 0, t, sizeof(t));
	p->uploaded_at = strdup(t);
	p->size = dup0(v[7]);
	p->ctype = dup0(v[8]);
	p->sha256 = dup0(v[9]);
	p->etag = dup0(v[10]);
	p->label = dup0(v[11]);
	p->vars = dup0(v[12]);
	return 0;
}

#define UPLOAD_COLS \
	"u.id,u.remote,u.key,%s,u.url,u.file_id,u.updated_at,u.size," \
	"u.content_type,u.sha256,u.etag,u.label,%s"
/* newest finished upload of each key, not rolled back */
#define NEWEST \
	"u.id IN (SELECT max(id) FROM uploads WHERE state IN ('done'," \
	"'rolledback') GROUP BY remote,key) AND u.state='done'" \
	" AND substr(u.key,-1)!='/'"

static int load_pairs(struct rw *w)
{
	struct errbuf eb = { 0 };
	char *sql = NULL;
	const char *p[] = { w->label };

	if (w->kind == K_INSERT) {
		sql = str_fmt("SELECT " UPLOAD_COLS " FROM uploads u LEFT JOIN"
			      " copies c ON c.dst_remote=u.remote AND"
			      " c.dst_key=u.key AND c.state='done' WHERE "
			      NEWEST " AND (?1 IS NULL OR u.label=?1)"
			      " GROUP BY u.id ORDER BY u.remote,u.key",
			      "c.src_url", "c.vars");
	} else if (!w->mirror) {
		/* mediactl copy's pairs */
		sql = str_fmt("SELECT " UPLOAD_COLS " FROM copies c JOIN uploads u"
			      " ON u.remote=c.dst_remote AND u.key=c.dst_key WHERE "
			      NEWEST " AND c.state='done' AND c.src_url IS NOT NULL"
			      " AND (?1 IS NULL OR c.label=?1 OR u.label=?1)"
			      " GROUP BY c.id ORDER BY c.id",
			      "c.src_url", "c.vars");
	} else {
		sql = str_fmt("SELECT " UPLOAD_COLS " FROM uploads u WHERE "
			      NEWEST " AND (?1 IS NULL OR u.label=?1)"
			      " ORDER BY u.remote,u.key", "NULL", "NULL");
	}
	if (!sql)
		return cli_fail(EXIT_STORE, "out of memory");
	if (journal_sql(w->c->j, sql, p, 1, pair_row, w, &eb)) {
		free(sql);
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	}
	free(sql);
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
	return v[0] && idmap_put(ud, v[0], "1", NULL) != MFS_OK &&
	       !idmap_get(ud, v[0]);
}

/* --only-verified: every URL of a finished upload, in a set. */
static int load_verified(struct rw *w)
{
	struct errbuf eb = { 0 };

	w->by_old = idmap_new("verified");
	if (!w->by_old)
		return cli_fail(EXIT_STORE, "out of memory");
	if (journal_sql(w->c->j, "SELECT DISTINCT u.url FROM uploads u WHERE "
			NEWEST, NULL, 0, url_row, w->by_old, &eb))
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
		char *v = expand(eq + 1, p, why, cap);
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
			char *val = expand(eq + 1, p, why, cap);

			if (f && val)
				js_set_str(e, f, val);
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
	pg->last = dup0(v[0]);
	pg->rows++;
	w->scanned++;
	if (!v[1] || (w->limit > 0 && w->planned >= (uint64_t)w->limit))
		return 0;
	if (w->kind == K_PREFIX) {
		if (!str_starts(v[1], w->from))
			return 0;
		after = str_fmt("%s%s", w->to, v[1] + strlen(w->from));
		if (after && w->only_verified &&
		    !idmap_get(w->by_old, after)) {
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
			fprintf(stderr, "\r%llu rows read, %llu to change\033[K",
				(unsigned long long)w->scanned,
				(unsigned long long)w->planned);
	}
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
	journal_exec(w->c->j, "COMMIT", NULL, 0, NULL, NULL);
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
			char *v = expand(eq + 1, p, why, sizeof(why));

			if (!col || !v) {
				fprintf(stderr, "mediactl: %s:%s: %s; not inserted\n",
					p->remote, p->key, why);
				bad = 1;
			} else {
				js_set_str(o, col, v);
			}
			free(col);
			free(v);
		}
		if (!bad && fcol) {
			char col[256];

			g = expand(fgroup, p, why, sizeof(why));
			snprintf(col, sizeof(col), "%.*s",
				 (int)(strchr(fcol, '=') - fcol), fcol);
			/* 1/0: a boolean to PostgreSQL and SQLite alike */
			js_set_str(o, col, g && strcmp(g, prevgroup) ? "1" : "0");
			if (g)
				snprintf(prevgroup, sizeof(prevgroup), "%s", g);
		}
		free(g);
		row = bad || seen ? NULL : js_dump(o, 0);
		js_free(o);
		if (seen)
			dups++;
		if (row)
			record(w, NULL, NULL, NULL, row, p->upload_id,
			       p->old_url, p->new_url);
		free(row);
	}
	journal_exec(w->c->j, "COMMIT", NULL, 0, NULL, NULL);
	free(fgroup);
	if (dups)
		printf("  %d objects were inserted by an earlier rewrite into %s: not again\n",
		       dups, w->table);
	return 0;
}

/* ---- apply and rollback ---- */

struct change {
	char *id, *pk, *before, *after, *extra, *old_url, *new_url;
	const char *state;	/* static strings */
	char *detail, *newpk, *stored;
};

struct rwinfo {
	char *kind, *tbl, *col, *pk, *log_table, *state, *db;
};

struct batch {
	struct change *ch;
	int n;
};

static int info_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	struct rwinfo *r = ud;

	(void)ncol;
	(void)names;
	r->kind = dup0(v[0]);
	r->tbl = dup0(v[1]);
	r->col = dup0(v[2]);
	r->pk = dup0(v[3]);
	r->log_table = dup0(v[4]);
	r->state = dup0(v[5]);
	r->db = dup0(v[6]);
	return 1;
}

static void info_free(struct rwinfo *r)
{
	free(r->kind);
	free(r->tbl);
	free(r->col);
	free(r->pk);
	free(r->log_table);
	free(r->state);
	free(r->db);
}

static int change_row(void *ud, int ncol, const char *const *v,
		      const char *const *names)
{
	struct batch *b = ud;
	struct change *c = &b->ch[b->n++];

	(void)ncol;
	(void)names;
	memset(c, 0, sizeof(*c));
	c->id = dup0(v[0]);
	c->pk = dup0(v[1]);
	c->before = dup0(v[2]);
	c->after = dup0(v[3]);
	c->extra = dup0(v[4]);
	c->old_url = dup0(v[5]);
	c->new_url = dup0(v[6]);
	return b->n == BATCH;
}

static void batch_clear(struct batch *b)
{
	int i;

	for (i = 0; i < b->n; i++) {
		struct change *c = &b->ch[i];

		free(c->id);
		free(c->pk);
		free(c->before);
		free(c->after);
		free(c->extra);
		free(c->old_url);
		free(c->new_url);
		free(c->detail);
		free(c->newpk);
		free(c->stored);
	}
	b->n = 0;
}

static int first_text(void *ud, int ncol, const char *const *v)
{
	char **out = ud;

	(void)ncol;
	free(*out);
	*out = dup0(v[0]);
	return 0;
}

/* The first column of the first row as an integer (a count, an id). */
static int int_row(void *ud, int ncol, const char *const *v,
		   const char *const *names)
{
	(void)ncol;
	(void)names;
	*(int64_t *)ud = v[0] ? strtoll(v[0], NULL, 10) : 0;
	return 1;
}

struct applier {
	struct db *db;
	const struct rwinfo *ri;
	char *qt, *qc, *qpk, *ctext, *qlog;
	char *ctype, *pktype;	/* casts for the batched UPDATE, or NULL */
	int fast;		/* batched UPDATEs possible (PostgreSQL) */
	const char *rwid;
	int undo;		/* rollback instead of apply */
};

struct xset {
	struct buf *sql;
	const char **params;
	int *n, take;
	enum mfs_err rc;
};

static int xset_member(void *ud, const char *key, const struct js *val)
{
	struct xset *x = ud;
	char *q = db_ident(key);
	const struct js *v = js_at(val, (size_t)x->take);

	if (!q) {
		x->rc = MFS_ENOMEM;
		return 1;
	}
	x->params[*x->n] = js_str(v);	/* NULL for null: SQL NULL */
	(*x->n)++;
	if (buf_addf(x->sql, ",%s=$%d", q, *x->n))
		x->rc = MFS_ENOMEM;
	free(q);
	return x->rc != MFS_OK || *x->n >= 60;
}

/* The extra columns of a text rewrite ({"col":[before,after]}) as SET
 * clauses with their params (take 0: before, 1: after). *hold keeps the
 * parsed JSON the params point into. */
static enum mfs_err extra_sets(const char *extra, int take, struct buf *sql,
			       const char **params, int *n, struct js **hold)
{
	struct xset x = { sql, params, n, take, MFS_OK };

	*hold = NULL;
	if (!extra)
		return MFS_OK;
	if (js_parse(extra, strlen(extra), hold, NULL))
		return MFS_EPROTO;
	js_each(*hold, xset_member, &x);
	return x.rc;
}

struct icol {
	struct buf *cols, *vals;
	const char **params;
	int n;
	enum mfs_err rc;
};

static int icol_member(void *ud, const char *key, const struct js *val)
{
	struct icol *x = ud;
	char *q = db_ident(key);

	if (!q || x->n >= 60) {
		x->rc = q ? MFS_EINVAL : MFS_ENOMEM;
		free(q);
		return 1;
	}
	x->params[x->n++] = js_str(val);
	if (buf_addf(x->cols, "%s%s", x->n > 1 ? "," : "", q) ||
	    buf_addf(x->vals, "%s$%d", x->n > 1 ? "," : "", x->n))
		x->rc = MFS_ENOMEM;
	free(q);
	return x->rc != MFS_OK;
}

/* One change, applied (or undone) in the current transaction: 0 done,
 * 1 skipped (the row changed meanwhile: c->detail says how), -1 an error
 * (eb). */
static int one(struct applier *a, struct change *c, struct errbuf *eb)
{
	const char *params[64];
	struct buf sql;
	struct js *hold = NULL;
	enum mfs_err rc = MFS_OK;
	int n = 0, ret = 0;
	char *got = NULL;

	buf_init(&sql, 0);
	if (!strcmp(a->ri->kind, "insert") && !a->undo) {
		struct buf cols, vals;
		struct icol x = { &cols, &vals, params, 0, MFS_OK };

		buf_init(&cols, 0);
		buf_init(&vals, 0);
		if (js_parse(c->extra, strlen(c->extra), &hold, eb))
			rc = MFS_EPROTO;
		if (!rc) {
			js_each(hold, icol_member, &x);
			rc = x.rc;
		}
		if (!rc)
			rc = buf_addf(&sql, "INSERT INTO %s(%s) VALUES(%s)", a->qt,
				      cols.data ? cols.data : "",
				      vals.data ? vals.data : "");
		if (!rc)
			rc = a->db->ops->insert(a->db, sql.data, params, x.n,
						a->ri->pk, &c->newpk, eb);
		buf_cleanup(&cols);
		buf_cleanup(&vals);
	} else if (!strcmp(a->ri->kind, "insert")) {
		int64_t ch = 0;

		params[0] = c->pk;
		rc = buf_addf(&sql, "DELETE FROM %s WHERE %s=$1", a->qt, a->qpk);
		if (!rc)
			rc = a->db->ops->exec(a->db, sql.data, params, 1, &ch, eb);
		if (!rc && ch != 1) {
			c->detail = strdup("the row is gone already");
			ret = 1;
		}
	} else {
		/* compare-and-set on the value read (apply) or written (undo) */
		params[0] = a->undo ? c->before : c->after;
		params[1] = c->pk;
		params[2] = a->undo ? c->after : c->before;
		n = 3;
		rc = buf_addf(&sql, "UPDATE %s SET %s=$1", a->qt, a->qc);
		if (!rc)
			rc = extra_sets(c->extra, a->undo ? 0 : 1, &sql, params,
					&n, &hold);
		if (!rc)
			rc = buf_addf(&sql, " WHERE %s=$2 AND %s=$3 RETURNING %s",
				      a->qpk, a->ctext, a->ctext);
		if (!rc)
			rc = a->db->ops->query(a->db, sql.data, params, n,
					       first_text, &got, eb);
		if (!rc && !got) {
			c->detail = strdup(a->undo ?
				"changed since the rewrite: kept as it is" :
				"changed since the plan: not rewritten");
			ret = 1;
		} else if (!rc) {
			c->stored = got;
			got = NULL;
		}
	}
	if (rc && rc != MFS_ENOMEM && !eb->msg[0])
		eb_set(eb, rc, "%s", mfs_strerror(rc));
	free(got);
	js_free(hold);
	buf_cleanup(&sql);
	return rc ? -1 : ret;
}

static void log_row(struct applier *a, const struct change *c,
		    const char *status)
{
	const char *p[] = { a->rwid, a->ri->tbl, c->pk ? c->pk : c->newpk,
			    c->old_url, c->new_url,
			    status, c->detail };
	char *sql;

	if (!a->qlog || a->undo)
		return;
	sql = str_fmt("INSERT INTO %s(rewrite_id,table_name,record_id,old_url,"
		      "new_url,migration_status,error_message,migrated_at)"
		      " VALUES($1,$2,$3,$4,$5,$6,$7,%s)", a->qlog,
		      strcmp(a->db->ops->name, "sqlite") ?
		      "to_char(now() AT TIME ZONE 'UTC','YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" :
		      "strftime('%Y-%m-%dT%H:%M:%SZ','now')");
	if (sql)
		a->db->ops->exec(a->db, sql, p, 7, NULL, NULL);
	free(sql);
}

struct returned {
	struct idmap *stored;	/* pk -> the value as stored */
};

static int returned_row(void *ud, int ncol, const char *const *v)
{
	(void)ncol;
	return v[0] && idmap_put(ud, v[0], v[1] ? v[1] : "", NULL) != MFS_OK;
}

/* A batch of plain column updates in one compare-and-set statement:
 * UPDATE t SET c = v.a FROM (VALUES (k, before, after), …) v WHERE
 * t.pk = v.k AND t.c::text = v.b RETURNING the keys it changed. One round
 * trip instead of one a row (PostgreSQL). 0 done (states set), -1 an error:
 * the caller redoes the batch row by row. */
static int fast_batch(struct applier *a, struct batch *b, struct errbuf *eb)
{
	const char **params = calloc((size_t)b->n * 3, sizeof(*params));
	struct idmap *got = idmap_new("returned");
	struct buf sql;
	char *kc = a->pktype ? str_fmt("::%s", a->pktype) : strdup("");
	char *vc = a->ctype ? str_fmt("::%s", a->ctype) : strdup("");
	int i, ret = -1;

	buf_init(&sql, 0);
	if (!params || !got || !kc || !vc)
		goto out;
	buf_addf(&sql, "UPDATE %s AS mctl_t SET %s = mctl_v.a%s FROM (VALUES ",
		 a->qt, a->qc, vc);
	for (i = 0; i < b->n; i++) {
		struct change *c = &b->ch[i];

		params[3 * i] = c->pk;
		params[3 * i + 1] = a->undo ? c->after : c->before;
		params[3 * i + 2] = a->undo ? c->before : c->after;
		buf_addf(&sql, "%s($%d::text,$%d::text,$%d::text)", i ? "," : "",
			 3 * i + 1, 3 * i + 2, 3 * i + 3);
	}
	buf_addf(&sql, ") AS mctl_v(k, b, a) WHERE mctl_t.%s = mctl_v.k%s AND"
		 " (mctl_t.%s)::text = mctl_v.b RETURNING (mctl_t.%s)::text,"
		 " (mctl_t.%s)::text", a->qpk, kc, a->qc, a->qpk, a->qc);
	if (!sql.data || a->db->ops->exec(a->db, "BEGIN", NULL, 0, NULL, eb))
		goto out;
	if (a->db->ops->query(a->db, sql.data, params, 3 * b->n, returned_row,
			      got, eb)) {
		a->db->ops->exec(a->db, "ROLLBACK", NULL, 0, NULL, NULL);
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		struct change *c = &b->ch[i];
		const char *v = idmap_get(got, c->pk);

		free(c->detail);
		free(c->stored);
		c->detail = c->stored = NULL;
		if (v) {
			c->state = a->undo ? "rolledback" : "applied";
			c->stored = strdup(v);
		} else {
			c->state = a->undo ? "kept" : "skipped";
			c->detail = strdup(a->undo ?
				"changed since the rewrite: kept as it is" :
				"changed since the plan: not rewritten");
		}
		log_row(a, c, v ? "migrated" : "skipped");
	}
	ret = a->db->ops->exec(a->db, "COMMIT", NULL, 0, NULL, eb) ? -1 : 0;
out:
	buf_cleanup(&sql);
	free(params);
	free(kc);
	free(vc);
	idmap_free(got);
	return ret;
}

/* Apply (or undo) one batch in one transaction; on an error, the batch
 * again with a savepoint per row so one bad row fails alone. */
static int run_batch(struct applier *a, struct batch *b, struct errbuf *eb)
{
	int i, r, careful;
	const char *ok = a->undo ? "rolledback" : "applied";
	const char *kept = a->undo ? "kept" : "skipped";

	if (a->fast) {
		struct errbuf feb = { 0 };

		for (i = 0; i < b->n && !b->ch[i].extra; i++)
			;
		if (i == b->n && !fast_batch(a, b, &feb))
			return 0;
		/* extra columns, or it failed: row by row below */
	}
	for (careful = 0; careful < 2; careful++) {
		int failed = 0;

		if (a->db->ops->exec(a->db, "BEGIN", NULL, 0, NULL, eb))
			return -1;
		for (i = 0; i < b->n; i++) {
			struct change *c = &b->ch[i];
			struct errbuf reb = { 0 };

			free(c->detail);
			c->detail = NULL;
			free(c->newpk);
			c->newpk = NULL;
			free(c->stored);
			c->stored = NULL;
			if (careful)
				a->db->ops->exec(a->db, "SAVEPOINT mctl", NULL, 0,
						 NULL, NULL);
			r = one(a, c, &reb);
			if (r < 0 && !careful) {
				failed = 1;
				break;
			}
			if (r < 0) {
				a->db->ops->exec(a->db, "ROLLBACK TO SAVEPOINT mctl",
						 NULL, 0, NULL, NULL);
				c->detail = strdup(reb.msg);
				c->state = "failed";
			} else {
				if (careful)
					a->db->ops->exec(a->db, "RELEASE SAVEPOINT mctl",
							 NULL, 0, NULL, NULL);
				c->state = r ? kept : ok;
			}
			log_row(a, c, r < 0 ? "failed" : r ? "skipped" : "migrated");
		}
		if (!failed)
			break;
		a->db->ops->exec(a->db, "ROLLBACK", NULL, 0, NULL, NULL);
	}
	if (a->db->ops->exec(a->db, "COMMIT", NULL, 0, NULL, eb))
		return -1;
	return 0;
}

static int do_apply(struct cli *c, struct db *db, const char *rwid, int undo,
		    int dry)
{
	struct rwinfo ri = { 0 };
	struct applier a = { 0 };
	struct batch b = { NULL, 0 };
	struct errbuf eb = { 0 };
	const char *p[] = { rwid, NULL };
	char last[32] = "0";
	uint64_t n_ok = 0, n_kept = 0, n_fail = 0;
	int64_t total = 0;
	int ret = 0, i;
	double t0 = cli_now(), tlast = 0;

	journal_sql(c->j, "SELECT kind,tbl,col,pk,log_table,state,db FROM rewrites"
		    " WHERE id=?1", p, 1, info_row, &ri, NULL);
	if (!ri.kind) {
		ret = cli_fail(EXIT_USAGE, "no rewrite #%s in %s ('mediactl rewrite list')",
			       rwid, c->journal_path);
		goto out;
	}
	if (!undo && strcmp(ri.state, "planned")) {
		ret = cli_fail(EXIT_USAGE, "rewrite #%s is %s already", rwid,
			       ri.state);
		goto out;
	}
	if (undo && !strcmp(ri.state, "planned")) {
		ret = cli_fail(EXIT_USAGE, "rewrite #%s was never applied: nothing to roll back",
			       rwid);
		goto out;
	}
	{
		const char *q[] = { rwid, undo ? "applied" : "planned" };

		journal_sql(c->j, "SELECT count(*) FROM rewrite_changes WHERE"
			    " rewrite_id=?1 AND state=?2", q, 2, int_row,
			    &total, NULL);
	}
	if (dry) {
		printf("rollback of rewrite #%s (dry run): %llu changes of %s would be restored (compare-and-set)%s\n",
		       rwid, (unsigned long long)total, ri.tbl,
		       ri.log_table ? ", and its log rows deleted" : "");
		goto out;
	}
	a.db = db;
	a.ri = &ri;
	a.rwid = rwid;
	a.undo = undo;
	a.qt = db_ident(ri.tbl);
	a.qc = ri.col ? db_ident(ri.col) : NULL;
	a.qpk = db_ident(ri.pk);
	a.ctext = a.qc ? db->ops->as_text(a.qc) : NULL;
	a.qlog = ri.log_table ? db_ident(ri.log_table) : NULL;
	if (strcmp(ri.kind, "insert") && !strcmp(db->ops->name, "postgresql")) {
		a.ctype = db->ops->column_type(db, ri.tbl, ri.col);
		a.pktype = db->ops->column_type(db, ri.tbl, ri.pk);
		a.fast = a.ctype && a.pktype;
	}
	if (a.qlog && !undo) {
		char *sql = str_fmt("CREATE TABLE IF NOT EXISTS %s(id %s,"
				    " rewrite_id integer, table_name text,"
				    " record_id text, old_url text, new_url text,"
				    " migration_status text, error_message text,"
				    " migrated_at text)", a.qlog,
				    strcmp(db->ops->name, "sqlite") ?
				    "bigserial PRIMARY KEY" :
				    "integer PRIMARY KEY AUTOINCREMENT");

		if (!sql || db->ops->exec(db, sql, NULL, 0, NULL, &eb)) {
			free(sql);
			ret = cli_fail(EXIT_STORE, "creating the log table: %s",
				       eb.msg);
			goto out;
		}
		free(sql);
	}
	b.ch = calloc(BATCH, sizeof(*b.ch));
	if (!b.ch) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	for (;;) {
		const char *q[] = { rwid, undo ? "applied" : "planned", last };

		journal_sql(c->j, "SELECT id,pk,before,coalesce(after,''),extra,"
			    "old_url,new_url FROM rewrite_changes WHERE"
			    " rewrite_id=?1 AND state=?2 AND id>?3 ORDER BY id"
			    " LIMIT 500", q, 3, change_row, &b, NULL);
		if (!b.n)
			break;
		snprintf(last, sizeof(last), "%s", b.ch[b.n - 1].id);
		if (run_batch(&a, &b, &eb)) {
			ret = cli_fail(EXIT_STORE, "%s: %s", ri.tbl, eb.msg);
			batch_clear(&b);
			break;
		}
		journal_exec(c->j, "BEGIN", NULL, 0, NULL, NULL);
		for (i = 0; i < b.n; i++) {
			struct change *ch = &b.ch[i];
			const char *u[] = { ch->id, ch->state, ch->detail,
					    ch->newpk, ch->stored };

			journal_exec(c->j, "UPDATE rewrite_changes SET state=?2,"
				     "detail=?3,pk=coalesce(?4,pk),"
				     "after=coalesce(?5,after) WHERE id=?1",
				     u, 5, NULL, NULL);
			if (!strcmp(ch->state, "failed"))
				n_fail++;
			else if (!strcmp(ch->state, undo ? "kept" : "skipped"))
				n_kept++;
			else
				n_ok++;
			if (ch->detail && strcmp(ch->state, undo ? "rolledback" : "applied"))
				fprintf(stderr, "mediactl: %s %s=%s: %s\n", ri.tbl,
					ri.pk, ch->pk ? ch->pk : "(new)",
					ch->detail);
		}
		journal_exec(c->j, "COMMIT", NULL, 0, NULL, NULL);
		batch_clear(&b);
		if (cli_now() - tlast >= (isatty(2) ? 0.5 : 10)) {
			char eta[32];
			double el = cli_now() - t0, done = (double)(n_ok + n_kept + n_fail);

			cli_duration(done > 0 ? el / done * ((double)total - done) : 0,
				     eta, sizeof(eta));
			fprintf(stderr, "%s%llu/%llu rows, %.0f rows/s, ETA %s%s",
				isatty(2) ? "\n" : "",
				(unsigned long long)(n_ok + n_kept + n_fail),
				(unsigned long long)total,
				el > 0 ? done / el : 0.0, eta,
				isatty(2) ? "[K" : "\n");
			tlast = cli_now();
		}
	}
	if (isatty(2))
		fprintf(stderr, "\n[K");
	if (!ret && undo && a.qlog) {
		char *sql = str_fmt("DELETE FROM %s WHERE rewrite_id=$1", a.qlog);

		if (sql)
			db->ops->exec(db, sql, p, 1, NULL, NULL);
		free(sql);
	}
	{
		char ok[32], kept[32], now[32], el[32];
		const char *u[] = { rwid, undo ? "rolledback" : "applied", ok,
				    kept, now };

		snprintf(ok, sizeof(ok), "%llu", (unsigned long long)n_ok);
		snprintf(kept, sizeof(kept), "%llu",
			 (unsigned long long)(n_kept + n_fail));
		snprintf(now, sizeof(now), "%.3f", cli_now());
		if (!ret)
			journal_exec(c->j, undo ?
				     "UPDATE rewrites SET state=?2,rolledback_at=?5 WHERE id=?1" :
				     "UPDATE rewrites SET state=?2,applied=?3,skipped=?4,"
				     "applied_at=?5 WHERE id=?1", u, 5, NULL, NULL);
		cli_duration(cli_now() - t0, el, sizeof(el));
		printf("rewrite #%s %s: %llu rows %s, %llu %s (changed meanwhile), %llu failed, in %s (%.0f rows/s)\n",
		       rwid, undo ? "rolled back" : "applied",
		       (unsigned long long)n_ok, undo ? "restored" : "changed",
		       (unsigned long long)n_kept, undo ? "kept" : "skipped",
		       (unsigned long long)n_fail, el,
		       cli_now() - t0 > 0 ? (double)(n_ok + n_kept + n_fail) /
		       (cli_now() - t0) : 0.0);
	}
	if (!ret && (n_kept || n_fail))
		ret = EXIT_PROBLEMS;
out:
	free(b.ch);
	free(a.qt);
	free(a.qc);
	free(a.qpk);
	free(a.ctext);
	free(a.qlog);
	free(a.ctype);
	free(a.pktype);
	info_free(&ri);
	return ret;
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
		char tc[256];

		snprintf(tc, sizeof(tc), "%s%s%s", v[3], *v[4] ? "." : "", v[4]);
		printf("%-4s %-19s %-6s %-24s %-10s %8s %8s %8s  %s\n", v[0],
		       v[1], v[2], tc, v[5], v[6], v[7], v[8], v[9]);
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
"        the key; -1 the last) and a copy plan's captures ({old}, {users[old]}).\n");
}

static int cmd_list(struct cli *c)
{
	int n = 0;

	journal_sql(c->j, "SELECT id,strftime('%Y-%m-%dT%H:%M:%S',created_at,"
		    "'unixepoch'),kind,tbl,"
		    "coalesce(col,''),state,coalesce(planned,0),"
		    "coalesce(applied,0),coalesce(skipped,0),db FROM rewrites"
		    " ORDER BY id", NULL, 0, list_row, &n, NULL);
	if (!n)
		printf("no rewrites in %s\n", c->journal_path);
	return 0;
}

/* Open the database for a stored rewrite; a different database than the
 * one it was planned on is refused. */
static int open_for(struct cli *c, const char *rwid, const char *conn,
		    struct db **db)
{
	struct errbuf eb = { 0 };
	struct rwinfo ri = { 0 };
	const char *p[] = { rwid };
	char *red = db_redacted(conn);
	int ret = 0;

	*db = NULL;
	journal_sql(c->j, "SELECT kind,tbl,col,pk,log_table,state,db FROM rewrites"
		    " WHERE id=?1", p, 1, info_row, &ri, NULL);
	if (!ri.db)
		ret = cli_fail(EXIT_USAGE, "no rewrite #%s in %s ('mediactl rewrite list')",
			       rwid, c->journal_path);
	else if (!red || strcmp(red, ri.db))
		ret = cli_fail(EXIT_USAGE, "rewrite #%s was planned on '%s', not '%s'",
			       rwid, ri.db, red ? red : "");
	else if (db_open(conn, db, &eb))
		ret = cli_fail(EXIT_STORE, "%s", eb.msg);
	free(red);
	info_free(&ri);
	return ret;
}

int rewrite_rollback(struct cli *c, const char *rwid, const char *conn,
		     int dry)
{
	struct db *db = NULL;
	int ret;

	if (!conn)
		return cli_fail(EXIT_USAGE, "rollback --rewrite needs --db (the same database)");
	ret = cli_journal(c);
	if (!ret)
		ret = open_for(c, rwid, conn, &db);
	if (!ret)
		ret = do_apply(c, db, rwid, 1, dry);
	db_close(db);
	return ret;
}

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
		ret = cli_journal(c);
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
		ret = cli_journal(c);
		if (!ret)
			ret = open_for(c, argv[optind + 1], w.conn, &db);
		if (!ret)
			ret = do_apply(c, db, argv[optind + 1], 0, 0);
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
	ret = cli_journal(c);
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
			    "?7,?8,'planned') RETURNING id", p, 8, int_row, &w.id,
			    NULL);
		free(red);
	}
	if (!w.id) {
		ret = cli_fail(EXIT_STORE, "cannot record the rewrite in %s",
			       c->journal_path);
		goto out;
	}
	snprintf(idtxt, sizeof(idtxt), "%lld", (long long)w.id);
	printf("rewrite #%s: %s of %s%s%s\n", idtxt, kind_names[w.kind], w.table,
	       w.column ? "." : "", w.column ? w.column : "");
	if (w.kind == K_MAP)
		printf("  %zu moved objects in the journal%s%s\n", w.npairs,
		       w.label ? " with label " : "", w.label ? w.label : "");
	ret = w.kind == K_INSERT ? plan_insert(&w) : plan_update(&w);
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
		ret = do_apply(c, w.db, idtxt, 0, 0);
	}
	goto out;
usage:
	ret = EXIT_USAGE;
out:
	for (i = 0; i < (int)w.npairs; i++)
		pair_free(&w.pairs[i]);
	free(w.pairs);
	idmap_free(w.by_old);
	db_close(w.db);
	free(w.pk);
	free(w.qt);
	free(w.qpk);
	free(w.qc);
	free(w.ctext);
	buf_cleanup(&args);
	return ret;
}
