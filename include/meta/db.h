/* db.h - SQL databases (the journal when it lives in PostgreSQL, and the
 * application databases mediactl rewrites): a small vtable with
 * two drivers, PostgreSQL (libpq, meta/db_pg) and SQLite (meta/db_sqlite).
 * SQL is written once with $1, $2 … placeholders (the SQLite driver maps
 * them to ?1, ?2 …); every value travels as a text parameter, never inside
 * the SQL. Identifiers go through db_ident. Owns: one connection.
 * Calls: libpq or sqlite3, common. Not thread-safe (one connection).
 * Connection strings: "sqlite:PATH", or anything libpq takes:
 * "postgres://user:pw@host:port/db", "host=… dbname=…", or "" (PG*
 * environment). Passwords are registered as secrets (never logged).
 */
#ifndef MFS_META_DB_H
#define MFS_META_DB_H

#include <stdint.h>

#include "common/err.h"

struct db;

/* Each result row as text (NULL for SQL NULL), valid during the call; a
 * non-zero return stops the query. */
typedef int (*db_row_cb)(void *ud, int ncol, const char *const *vals);

struct db_ops {
	const char *name;	/* "postgresql" or "sqlite" */
	enum mfs_err (*exec)(struct db *d, const char *sql,
			     const char *const *params, int n,
			     int64_t *changes, struct errbuf *eb);
	enum mfs_err (*query)(struct db *d, const char *sql,
			      const char *const *params, int n, db_row_cb cb,
			      void *ud, struct errbuf *eb);
	/* Run an INSERT and return the new row's primary key pk (text,
	 * malloc'd) in *id. */
	enum mfs_err (*insert)(struct db *d, const char *sql,
			       const char *const *params, int n,
			       const char *pk, char **id, struct errbuf *eb);
	/* The single-column primary key of table (malloc'd), or an error
	 * naming the table when it has none or several. */
	enum mfs_err (*primary_key)(struct db *d, const char *table,
				    char **out, struct errbuf *eb);
	/* The declared type of table.column for a cast ("jsonb",
	 * "bigint"; malloc'd), or NULL where values need no cast (SQLite). */
	char *(*column_type)(struct db *d, const char *table,
			     const char *column);
	/* The SQL expression for column expr as text ("expr::text" in
	 * PostgreSQL), malloc'd. */
	char *(*as_text)(const char *expr);
	void (*close)(struct db *d);
};

struct db {
	const struct db_ops *ops;
	void *priv;
};

/* Connect; the error says which database and why, password redacted. */
enum mfs_err db_open(const char *conn, struct db **out, struct errbuf *eb);
void db_close(struct db *d);
/* The connection string fit for printing and the journal (password
 * replaced by ***), malloc'd. */
char *db_redacted(const char *conn);
/* A quoted identifier: "name", or "schema"."table" for a dotted name;
 * malloc'd. */
char *db_ident(const char *name);
/* sql with each placeholder FROM followed by a digit written TO ('$1' as
 * SQLite's '?1', mediactl's '?1' as libpq's '$1'), outside quotes;
 * malloc'd, NULL when out of memory. */
char *db_placeholders(const char *sql, char from, char to);

enum mfs_err db_pg_open(const char *conn, struct db **out, struct errbuf *eb);
enum mfs_err db_sqlite_open(const char *path, struct db **out,
			    struct errbuf *eb);
/* The journal's SQLite file: created when create is set, no SQLite mutex
 * (the caller serialises every call). */
enum mfs_err db_sqlite_create(const char *path, int create, struct db **out,
			      struct errbuf *eb);
/* conn (a libpq connection string or URL) with password added, for a
 * password resolved from the config (env:, file:); malloc'd, a secret:
 * wipe before free. */
char *db_conn_with_password(const char *conn, const char *password);

#endif
