/* rewrite_apply.c - mediactl rewrite, second half (rewrite.c plans):
 * apply a planned rewrite, or undo an applied one, in batches of BATCH
 * changes, each one transaction in the application database, every
 * change compare-and-set; PostgreSQL gets one UPDATE … FROM (VALUES …)
 * RETURNING a batch, and a batch that fails is redone row by row with
 * savepoints. States and stored values go back into the journal.
 * Calls: cli/db, cli/maps, meta/journal, net/json, common. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "meta/db.h"
#include "cli/maps.h"
#include "common/buf.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/json.h"
#include "rewrite_int.h"

#define BATCH 500

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
	r->kind = cli_dup0(v[0]);
	r->tbl = cli_dup0(v[1]);
	r->col = cli_dup0(v[2]);
	r->pk = cli_dup0(v[3]);
	r->log_table = cli_dup0(v[4]);
	r->state = cli_dup0(v[5]);
	r->db = cli_dup0(v[6]);
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
	c->id = cli_dup0(v[0]);
	c->pk = cli_dup0(v[1]);
	c->before = cli_dup0(v[2]);
	c->after = cli_dup0(v[3]);
	c->extra = cli_dup0(v[4]);
	c->old_url = cli_dup0(v[5]);
	c->new_url = cli_dup0(v[6]);
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
	*out = cli_dup0(v[0]);
	return 0;
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

/* DELETE's compare-and-set: "AND col=$n" for every inserted column (the
 * database converts the text parameter to the column's type, as the
 * INSERT did). */
struct dcol {
	struct buf *sql;
	const char **params;
	int n;
	enum mfs_err rc;
};

static int dcol_member(void *ud, const char *key, const struct js *val)
{
	struct dcol *x = ud;
	char *q = db_ident(key);

	if (!q || x->n >= 60 || !js_str(val)) {
		x->rc = q ? MFS_EINVAL : MFS_ENOMEM;
		free(q);
		return 1;
	}
	x->params[x->n++] = js_str(val);
	if (buf_addf(x->sql, " AND %s=$%d", q, x->n))
		x->rc = MFS_ENOMEM;
	free(q);
	return x->rc != MFS_OK;
}

static int found_row(void *ud, int ncol, const char *const *v)
{
	(void)ncol;
	(void)v;
	*(int *)ud = 1;
	return 0;
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
		/* a row holding every value already (an apply interrupted
		 * between the database's commit and the journal's) is this
		 * change: a re-run does not insert it twice */
		if (!rc) {
			struct dcol d = { &sql, params, 0, MFS_OK };

			rc = buf_addf(&sql, "SELECT %s FROM %s WHERE 1=1",
				      a->qpk, a->qt);
			if (!rc)
				js_each(hold, dcol_member, &d);
			rc = rc ? rc : d.rc;
			if (!rc)
				rc = buf_adds(&sql, " LIMIT 1");
			if (!rc)
				rc = a->db->ops->query(a->db, sql.data, params,
						       d.n, first_text, &c->newpk,
						       eb);
			buf_reset(&sql);
		}
		if (!rc && c->newpk) {
			c->detail = strdup("in the table already (an interrupted apply wrote it): not inserted again");
		} else {
			if (!rc)
				rc = buf_addf(&sql, "INSERT INTO %s(%s) VALUES(%s)",
					      a->qt, cols.data ? cols.data : "",
					      vals.data ? vals.data : "");
			if (!rc)
				rc = a->db->ops->insert(a->db, sql.data, params,
							x.n, a->ri->pk,
							&c->newpk, eb);
		}
		buf_cleanup(&cols);
		buf_cleanup(&vals);
	} else if (!strcmp(a->ri->kind, "insert")) {
		/* compare-and-set: only a row still holding every value the
		 * rewrite inserted is deleted */
		struct dcol x = { &sql, params, 1, MFS_OK };
		int64_t ch = 0;
		int found = 0;

		params[0] = c->pk;
		rc = buf_addf(&sql, "DELETE FROM %s WHERE %s=$1", a->qt, a->qpk);
		if (!rc && js_parse(c->extra, strlen(c->extra), &hold, eb))
			rc = MFS_EPROTO;
		if (!rc) {
			js_each(hold, dcol_member, &x);
			rc = x.rc;
		}
		if (!rc)
			rc = a->db->ops->exec(a->db, sql.data, params, x.n, &ch,
					      eb);
		if (!rc && ch != 1) {
			char *q = str_fmt("SELECT 1 FROM %s WHERE %s=$1", a->qt,
					  a->qpk);

			if (q)
				rc = a->db->ops->query(a->db, q, params, 1,
						       found_row, &found, eb);
			free(q);
			c->detail = strdup(found ?
				"changed since the rewrite: kept as it is" :
				"the row is gone already");
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

		/* SQLite: the write lock at once, waiting (busy timeout) for
		 * another writer of the database; a plain BEGIN would read
		 * first and then fail every row at once ("database is
		 * locked": a reader may not wait for a writer) */
		if (a->db->ops->exec(a->db, strcmp(a->db->ops->name, "sqlite") ?
				     "BEGIN" : "BEGIN IMMEDIATE", NULL, 0,
				     NULL, eb))
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

int rewrite_apply(struct cli *c, struct db *db, const char *rwid, int undo,
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
		ret = cli_fail(EXIT_USAGE, "no rewrite #%s in the journal ('mediactl rewrite list')",
			       rwid);
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
			    " rewrite_id=?1 AND state=?2", q, 2, cli_int_row,
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
			fprintf(stderr, "%llu/%llu rows, %.0f rows/s, ETA %s\n",
				(unsigned long long)(n_ok + n_kept + n_fail),
				(unsigned long long)total,
				el > 0 ? done / el : 0.0, eta);
			tlast = cli_now();
		}
	}
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

int rewrite_open(struct cli *c, const char *rwid, const char *conn,
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
		ret = cli_fail(EXIT_USAGE, "no rewrite #%s in the journal ('mediactl rewrite list')",
			       rwid);
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
	ret = cli_journal_shared(c);
	if (!ret)
		ret = rewrite_open(c, rwid, conn, &db);
	if (!ret)
		ret = rewrite_apply(c, db, rwid, 1, dry);
	db_close(db);
	return ret;
}
