/* db.c - driver choice and identifier quoting for SQL databases
 * (db.h). */
#include "meta/db.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"

enum mfs_err db_open(const char *conn, struct db **out, struct errbuf *eb)
{
	*out = NULL;
	if (str_starts(conn, "sqlite:"))
		return db_sqlite_open(conn + 7, out, eb);
	return db_pg_open(conn, out, eb);
}

void db_close(struct db *d)
{
	if (d)
		d->ops->close(d);
}

char *db_redacted(const char *conn)
{
	const char *at, *colon, *scheme = strstr(conn, "://");
	const char *pw = strstr(conn, "password=");
	char *s;

	if (scheme && (at = strchr(scheme + 3, '@')) &&
	    (colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3))))
		return str_fmt("%.*s:***%s", (int)(colon - conn), conn, at);
	if (pw) {
		const char *end = pw + 9;

		if (*end == '\'') {
			for (end++; *end && *end != '\''; end++)
				if (*end == '\\' && end[1])
					end++;
			if (*end)
				end++;
		} else {
			while (*end && *end != ' ')
				end++;
		}
		s = str_fmt("%.*spassword=***%s", (int)(pw - conn), conn, end);
		return s;
	}
	return strdup(conn);
}

char *db_ident(const char *name)
{
	struct buf b;
	const char *p;

	buf_init(&b, 0);
	if (buf_adds(&b, "\""))
		return NULL;
	for (p = name; *p; p++) {
		if (*p == '"' ? buf_adds(&b, "\"\"") :
		    *p == '.' ? buf_adds(&b, "\".\"") : buf_add(&b, p, 1)) {
			buf_cleanup(&b);
			return NULL;
		}
	}
	if (buf_adds(&b, "\"")) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

char *db_conn_with_password(const char *conn, const char *password)
{
	static const char hex[] = "0123456789ABCDEF";
	int url = str_starts(conn, "postgres://") ||
		  str_starts(conn, "postgresql://");
	const char *p;
	struct buf b;

	buf_init(&b, 0);
	if (buf_adds(&b, conn) ||
	    buf_adds(&b, url ? (strchr(conn, '?') ? "&password=" : "?password=")
			     : (*conn ? " password='" : "password='")))
		goto oom;
	for (p = password; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (url && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || strchr("-._~", c))) {
			if (buf_add(&b, e, 3))
				goto oom;
		} else if (!url && (c == '\'' || c == '\\')) {
			if (buf_adds(&b, "\\") || buf_add(&b, p, 1))
				goto oom;
		} else if (buf_add(&b, p, 1)) {
			goto oom;
		}
	}
	if (!url && buf_adds(&b, "'"))
		goto oom;
	return buf_take(&b);
oom:
	if (b.data)
		memset(b.data, 0, b.len);
	buf_cleanup(&b);
	return NULL;
}

char *db_placeholders(const char *sql, char from, char to)
{
	struct buf b;
	char q = 0;
	const char *p;

	buf_init(&b, 0);
	for (p = sql; *p; p++) {
		char c = *p;

		if (q) {
			if (c == q)
				q = 0;
		} else if (c == '\'' || c == '"') {
			q = c;
		} else if (c == from && p[1] >= '0' && p[1] <= '9') {
			c = to;
		}
		if (buf_add(&b, &c, 1)) {
			buf_cleanup(&b);
			return NULL;
		}
	}
	if (!b.data && buf_adds(&b, ""))
		return NULL;
	return buf_take(&b);
}
