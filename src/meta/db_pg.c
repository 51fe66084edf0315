/* db_pg.c - the PostgreSQL driver of meta/db (db.h), over libpq. Values go
 * as untyped text parameters (PQexecParams), so PostgreSQL infers each
 * one's type from its place (a jsonb column takes JSON text, an integer
 * key '42'). Rows come back as text. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "meta/db.h"
#include "common/log.h"
#include "common/str.h"

static PGconn *H(struct db *d)
{
	return d->priv;
}

static enum mfs_err pg_err(struct db *d, PGresult *r, struct errbuf *eb)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char msg[512];
	size_t n;

	snprintf(msg, sizeof(msg), "%s", r ? PQresultErrorMessage(r) :
		 PQerrorMessage(H(d)));
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return eb_set(eb, state && !strncmp(state, "23", 2) ? MFS_ECONFLICT :
		      state && !strncmp(state, "42", 2) ? MFS_EINVAL : MFS_EIO,
		      "postgresql: %s", msg);
}

/* Reconnecting. A statement that fails because the connection is gone
 * (the server restarted, a proxy or the network cut it) while no
 * transaction was open is sent again on a new connection: PQreset with
 * backoff (RETRY_FIRST_MS doubling up to RETRY_MAX_MS) for up to
 * RETRY_FOR_S seconds, each try logged. A restart (pg_ctl restart, any
 * mode) aborts what was running, so the statement ran not at all and
 * runs once; a connection cut after the server committed but before its
 * answer arrived runs it twice (the journal's writes are updates by id,
 * or inserts the journal tolerates twice). Inside a transaction nothing
 * is retried: the transaction is lost with the connection and the caller
 * gets the error (after a reset, so its next statement finds a
 * connection). The caller's lock covers all of it (cli/db is used under
 * one). */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000
#define RETRY_FOR_S 120

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reset the connection until it is up or RETRY_FOR_S passed since t0:
 * 1 when up. */
static int reconnect(struct db *d, double t0)
{
	long ms = RETRY_FIRST_MS;
	int tries = 0;

	for (;;) {
		struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };

		nanosleep(&nap, NULL);
		tries++;
		PQreset(H(d));
		if (PQstatus(H(d)) == CONNECTION_OK) {
			log_warn("postgresql: reconnected (after %d tries, %.1f s)",
				 tries, mono_s() - t0);
			return 1;
		}
		if (mono_s() - t0 > RETRY_FOR_S)
			return 0;
		ms = ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2;
	}
}

static enum mfs_err run(struct db *d, const char *sql,
			const char *const *params, int n, PGresult **out,
			struct errbuf *eb)
{
	PGTransactionStatusType ts = PQtransactionStatus(H(d));
	/* no transaction of ours open (UNKNOWN: the connection is bad) */
	int idle = ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN;
	double t0 = 0;

	*out = NULL;
	for (;;) {
		PGresult *r = PQexecParams(H(d), sql, n, NULL, params, NULL,
					   NULL, 0);
		ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		enum mfs_err rc;

		if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
			*out = r;
			return MFS_OK;
		}
		rc = pg_err(d, r, eb);
		PQclear(r);
		if (PQstatus(H(d)) != CONNECTION_BAD)
			return rc;
		if (!t0) {
			char msg[512];

			t0 = mono_s();
			snprintf(msg, sizeof(msg), "%s", eb ? eb->msg : "");
			log_redact(msg);
			log_warn("%s: the connection is lost; reconnecting%s", msg,
				 idle ? "" : " (the open transaction is lost)");
		}
		if (!reconnect(d, t0) || !idle)
			return eb_set(eb, MFS_ETRANSIENT, "postgresql: the connection was lost%s",
				      idle ? " and not back in time" :
				      " inside a transaction");
	}
}

static enum mfs_err pq_query(struct db *d, const char *sql,
			     const char *const *params, int n, db_row_cb cb,
			     void *ud, struct errbuf *eb)
{
	const char *vals[64];
	PGresult *r;
	enum mfs_err rc = run(d, sql, params, n, &r, eb);
	int i, j, ncol;

	if (rc)
		return rc;
	ncol = PQnfields(r) > 64 ? 64 : PQnfields(r);
	for (i = 0; i < PQntuples(r); i++) {
		for (j = 0; j < ncol; j++)
			vals[j] = PQgetisnull(r, i, j) ? NULL :
				  PQgetvalue(r, i, j);
		if (cb && cb(ud, ncol, vals))
			break;
	}
	PQclear(r);
	return MFS_OK;
}

static enum mfs_err pq_exec(struct db *d, const char *sql,
			    const char *const *params, int n,
			    int64_t *changes, struct errbuf *eb)
{
	PGresult *r;
	enum mfs_err rc = run(d, sql, params, n, &r, eb);

	if (changes)
		*changes = rc ? 0 : strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rc;
}

static enum mfs_err pq_insert(struct db *d, const char *sql,
			      const char *const *params, int n,
			      const char *pk, char **id, struct errbuf *eb)
{
	char *qpk = db_ident(pk);
	char *s = qpk ? str_fmt("%s RETURNING %s::text", sql, qpk) : NULL;
	PGresult *r = NULL;
	enum mfs_err rc = s ? run(d, s, params, n, &r, eb) : MFS_ENOMEM;

	*id = NULL;
	if (!rc && PQntuples(r) == 1)
		*id = strdup(PQgetvalue(r, 0, 0));
	else if (!rc)
		rc = eb_set(eb, MFS_EIO, "postgresql: INSERT returned no key");
	PQclear(r);
	free(s);
	free(qpk);
	return rc;
}

struct pk_acc {
	char *name;
	int n;
};

static int pk_row(void *ud, int ncol, const char *const *v)
{
	struct pk_acc *a = ud;

	(void)ncol;
	if (!a->n++)
		a->name = v[0] ? strdup(v[0]) : NULL;
	return 0;
}

static enum mfs_err pq_primary_key(struct db *d, const char *table,
				   char **out, struct errbuf *eb)
{
	struct pk_acc a = { NULL, 0 };
	char *qt = db_ident(table);
	const char *p[] = { qt };
	enum mfs_err rc;

	*out = NULL;
	if (!qt)
		return MFS_ENOMEM;
	rc = pq_query(d, "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
		      " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
		      " WHERE i.indrelid = $1::regclass AND i.indisprimary",
		      p, 1, pk_row, &a, eb);
	free(qt);
	if (!rc && a.n != 1) {
		free(a.name);
		return eb_set(eb, MFS_EINVAL,
			      a.n ? "table %s has a primary key of several columns; name one unique column with --pk" :
			      "table %s has no primary key; name a unique column with --pk",
			      table);
	}
	*out = a.name;
	return rc;
}

static int type_row(void *ud, int ncol, const char *const *v)
{
	(void)ncol;
	*(char **)ud = v[0] ? strdup(v[0]) : NULL;
	return 1;
}

static char *pq_column_type(struct db *d, const char *table,
			    const char *column)
{
	char *qt = db_ident(table), *out = NULL;
	const char *p[] = { qt, column };

	if (qt)
		pq_query(d, "SELECT format_type(atttypid, atttypmod) FROM"
			 " pg_attribute WHERE attrelid = $1::regclass AND"
			 " attname = $2 AND NOT attisdropped", p, 2, type_row,
			 &out, NULL);
	free(qt);
	return out;
}

static char *pq_as_text(const char *expr)
{
	return str_fmt("%s::text", expr);
}

static void pq_close(struct db *d)
{
	PQfinish(H(d));
	free(d);
}

static const struct db_ops pg_ops = {
	.name = "postgresql",
	.exec = pq_exec,
	.query = pq_query,
	.insert = pq_insert,
	.primary_key = pq_primary_key,
	.column_type = pq_column_type,
	.as_text = pq_as_text,
	.close = pq_close,
};

enum mfs_err db_pg_open(const char *conn, struct db **out, struct errbuf *eb)
{
	PQconninfoOption *opts, *o;
	struct db *d;
	PGconn *h;
	char *red;

	*out = NULL;
	/* the password never reaches a log line or an error message */
	opts = PQconninfoParse(conn, NULL);
	for (o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val)
			log_add_secret(o->val);
	PQconninfoFree(opts);
	if (getenv("PGPASSWORD"))
		log_add_secret(getenv("PGPASSWORD"));
	h = PQconnectdb(conn);
	if (!h || PQstatus(h) != CONNECTION_OK) {
		char msg[512];
		size_t n;

		snprintf(msg, sizeof(msg), "%s", h ? PQerrorMessage(h) : "no memory");
		n = strlen(msg);
		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		log_redact(msg);
		red = db_redacted(conn);
		PQfinish(h);
		eb_set(eb, MFS_EACCES, "cannot connect to PostgreSQL '%s': %s",
		       red ? red : "", msg);
		free(red);
		return MFS_EACCES;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		PQfinish(h);
		return MFS_ENOMEM;
	}
	d->ops = &pg_ops;
	d->priv = h;
	*out = d;
	return MFS_OK;
}
