/* db_sqlite.c - the SQLite driver of meta/db (db.h). $N placeholders become
 * ?N outside quotes; values bind as text (SQLite's column affinity turns
 * '42' into 42 where the column is INTEGER). */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "meta/db.h"
#include "common/str.h"

/* Prepared statements kept for reuse, keyed by their SQL text: the
 * journal runs the same few statements for every file, and parsing them
 * cost more than running them. A slot is busy while its statement runs
 * (a query's callback may run the same SQL again: that one is prepared
 * apart and finalized after use). */
#define SQ_SLOTS 24

struct sq_slot {
	char *sql;		/* as the caller wrote it; NULL: empty slot */
	sqlite3_stmt *st;
	int busy;
};

struct sq {
	sqlite3 *h;
	struct sq_slot slot[SQ_SLOTS];
	unsigned next;		/* the slot the next new statement takes */
};

static sqlite3 *H(struct db *d)
{
	return ((struct sq *)d->priv)->h;
}

/* Done with st (from prepare): back into its slot, reset, bindings
 * dropped; or finalized when it has none. */
static void unprepare(struct db *d, sqlite3_stmt *st)
{
	struct sq *q = d->priv;
	int i;

	if (!st)
		return;
	for (i = 0; i < SQ_SLOTS; i++)
		if (q->slot[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			q->slot[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

/* Keep st for sql in a slot that is not busy (st is then busy). */
static void remember(struct sq *q, const char *sql, sqlite3_stmt *st)
{
	struct sq_slot *sl = NULL;
	char *copy;
	int i;

	for (i = 0; i < SQ_SLOTS && !sl; i++) {
		struct sq_slot *c = &q->slot[(q->next + (unsigned)i) % SQ_SLOTS];

		if (!c->busy)
			sl = c;
	}
	if (!sl || !(copy = strdup(sql)))
		return;
	q->next = (unsigned)(sl - q->slot + 1) % SQ_SLOTS;
	sqlite3_finalize(sl->st);
	free(sl->sql);
	sl->sql = copy;
	sl->st = st;
	sl->busy = 1;
}

static enum mfs_err prepare(struct db *d, const char *sql,
			    const char *const *params, int n,
			    sqlite3_stmt **st, struct errbuf *eb)
{
	struct sq *q = d->priv;
	char *s;
	int i;

	*st = NULL;
	for (i = 0; i < SQ_SLOTS; i++)
		if (q->slot[i].sql && !q->slot[i].busy &&
		    !strcmp(q->slot[i].sql, sql)) {
			*st = q->slot[i].st;
			q->slot[i].busy = 1;
			break;
		}
	if (!*st) {
		if (!(s = db_placeholders(sql, '$', '?')))
			return MFS_ENOMEM;
		if (sqlite3_prepare_v2(H(d), s, -1, st, NULL) != SQLITE_OK) {
			/* a full disk is the user's ENOSPC, not bad SQL */
			int full = (sqlite3_errcode(H(d)) & 0xff) ==
				   SQLITE_FULL;
			enum mfs_err rc = eb_set(eb, full ? MFS_ENOSPC :
						 MFS_EINVAL, "sqlite: %s",
						 sqlite3_errmsg(H(d)));

			sqlite3_finalize(*st);
			*st = NULL;
			free(s);
			return rc;
		}
		free(s);
		if (*st)	/* (NULL for SQL that is only a comment) */
			remember(q, sql, *st);
	}
	for (i = 0; *st && i < n; i++) {
		if (params[i])
			sqlite3_bind_text(*st, i + 1, params[i], -1,
					  SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(*st, i + 1);
	}
	return MFS_OK;
}

static enum mfs_err step_all(struct db *d, sqlite3_stmt *st, db_row_cb cb,
			     void *ud, struct errbuf *eb)
{
	const char *vals[64];
	int r, i, ncol = sqlite3_column_count(st);

	if (ncol > 64)
		ncol = 64;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < ncol; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		if (cb && cb(ud, ncol, vals))
			return MFS_OK;
	}
	if (r != SQLITE_DONE)
		return eb_set(eb, r == SQLITE_CONSTRAINT ? MFS_ECONFLICT :
			      (r & 0xff) == SQLITE_FULL ? MFS_ENOSPC : MFS_EIO,
			      "sqlite: %s", sqlite3_errmsg(H(d)));
	return MFS_OK;
}

static enum mfs_err sq_query(struct db *d, const char *sql,
			     const char *const *params, int n, db_row_cb cb,
			     void *ud, struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc = prepare(d, sql, params, n, &st, eb);

	if (!rc && st)
		rc = step_all(d, st, cb, ud, eb);
	unprepare(d, st);
	return rc;
}

static enum mfs_err sq_exec(struct db *d, const char *sql,
			    const char *const *params, int n,
			    int64_t *changes, struct errbuf *eb)
{
	enum mfs_err rc = sq_query(d, sql, params, n, NULL, NULL, eb);

	if (changes)
		*changes = rc ? 0 : sqlite3_changes64(H(d));
	return rc;
}

static enum mfs_err sq_insert(struct db *d, const char *sql,
			      const char *const *params, int n,
			      const char *pk, char **id, struct errbuf *eb)
{
	enum mfs_err rc = sq_exec(d, sql, params, n, NULL, eb);

	(void)pk;	/* a single-column key: the rowid or its alias */
	*id = rc ? NULL : str_fmt("%lld",
				  (long long)sqlite3_last_insert_rowid(H(d)));
	return rc || *id ? rc : MFS_ENOMEM;
}

static int pk_row(void *ud, int ncol, const char *const *v)
{
	char **out = ud;

	/* table_info: cid, name, type, notnull, dflt, pk */
	if (ncol >= 6 && v[5] && strcmp(v[5], "0")) {
		if (*out) {
			free(*out);
			*out = strdup("");	/* more than one column */
			return 1;
		}
		*out = strdup(v[1]);
	}
	return 0;
}

static enum mfs_err sq_primary_key(struct db *d, const char *table,
				   char **out, struct errbuf *eb)
{
	const char *p[] = { table };
	enum mfs_err rc;

	*out = NULL;
	rc = sq_query(d, "SELECT * FROM pragma_table_info($1)", p, 1, pk_row,
		      out, eb);
	if (!rc && *out && !**out) {
		free(*out);
		*out = NULL;
		return eb_set(eb, MFS_EINVAL,
			      "table %s has a primary key of several columns; name one unique column with --pk",
			      table);
	}
	if (!rc && !*out)
		*out = strdup("rowid");	/* SQLite always has one */
	return rc;
}

static char *sq_column_type(struct db *d, const char *table,
			    const char *column)
{
	(void)d;
	(void)table;
	(void)column;
	return NULL;	/* affinity does the conversions */
}

static char *sq_as_text(const char *expr)
{
	return strdup(expr);
}

static void sq_close(struct db *d)
{
	struct sq *q = d->priv;
	int i;

	for (i = 0; i < SQ_SLOTS; i++) {
		sqlite3_finalize(q->slot[i].st);
		free(q->slot[i].sql);
	}
	sqlite3_close(q->h);
	free(q);
	free(d);
}

static const struct db_ops sqlite_ops = {
	.name = "sqlite",
	.exec = sq_exec,
	.query = sq_query,
	.insert = sq_insert,
	.primary_key = sq_primary_key,
	.column_type = sq_column_type,
	.as_text = sq_as_text,
	.close = sq_close,
};

/* Open path (creating it with create); NOMUTEX: callers serialise. */
static enum mfs_err open_flags(const char *path, int flags, struct db **out,
			       struct errbuf *eb)
{
	struct db *d = calloc(1, sizeof(*d));
	struct sq *q = calloc(1, sizeof(*q));
	sqlite3 *h = NULL;

	*out = NULL;
	if (!d || !q) {
		free(d);
		free(q);
		return MFS_ENOMEM;
	}
	if (sqlite3_open_v2(path, &h, flags, NULL) != SQLITE_OK) {
		enum mfs_err rc = eb_set(eb, MFS_ENOTFOUND,
					 "cannot open SQLite database %s: %s",
					 path, h ? sqlite3_errmsg(h) : "no memory");

		sqlite3_close(h);
		free(q);
		free(d);
		return rc;
	}
	sqlite3_busy_timeout(h, 10000);
	d->ops = &sqlite_ops;
	q->h = h;
	d->priv = q;
	*out = d;
	return MFS_OK;
}

enum mfs_err db_sqlite_open(const char *path, struct db **out,
			    struct errbuf *eb)
{
	return open_flags(path, SQLITE_OPEN_READWRITE, out, eb);
}

enum mfs_err db_sqlite_create(const char *path, int create, struct db **out,
			      struct errbuf *eb)
{
	return open_flags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
			  (create ? SQLITE_OPEN_CREATE : 0), out, eb);
}
