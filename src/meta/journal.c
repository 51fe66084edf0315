/* journal.c - the durable journal, written once over meta/db's vtable: a
 * SQLite file (one host) or a PostgreSQL database (many hosts, one
 * journal). The SQL is the same for both; what differs lives here in a few
 * named places: the column types of the DDL (pg_type), schema upgrades
 * (SQLite's user_version; PostgreSQL's tables are created whole), '?N'
 * placeholders of mediactl's queries ($N for libpq), the pragmas.
 * lock guards d. Calls: meta/db, common. */
#include "meta/journal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"
#include "meta/db.h"

/* One statement an entry; SQLite types (PostgreSQL: pg_type()). */
static const char *const schema[] = {
	"CREATE TABLE IF NOT EXISTS uploads("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" state TEXT NOT NULL,"	/* pending | done | failed | cancelled */
	" stage_path TEXT,"
	" size INTEGER,"
	" sha256 TEXT,"
	" etag TEXT,"
	" url TEXT,"
	" content_type TEXT,"
	" cache_control TEXT,"
	" mtime_ns INTEGER,"
	" mode INTEGER,"
	" label TEXT,"
	" error TEXT,"
	" created_at REAL NOT NULL,"
	" updated_at REAL NOT NULL,"
	" orig_size INTEGER,"	/* what was written, before a hook */
	" orig_sha256 TEXT,"
	" hook TEXT,"		/* "compress", "exec:tool", NULL */
	" hook_result TEXT,"
	" file_id TEXT,"	/* the provider's id of the object (ImageKit) */
	/* while an upload runs: a key it may land under that must go (it was
	 * renamed or deleted meanwhile), and whether the file was deleted */
	" drop_key TEXT,"
	" discard INTEGER)",
	"CREATE INDEX IF NOT EXISTS uploads_state ON uploads(mount_id, state)",
	/* multipart uploads started on a server and not yet completed nor
	 * aborted: what a daemon killed meanwhile leaves there (billed) */
	"CREATE TABLE IF NOT EXISTS multipart("
	" upload_id TEXT NOT NULL,"
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" upload INTEGER,"	/* uploads.id */
	" created_at REAL NOT NULL,"
	" PRIMARY KEY(remote, upload_id))",
	"CREATE INDEX IF NOT EXISTS uploads_key ON uploads(remote, key)",
	/* moves on a server in steps (journal_move_open) begun and not yet
	 * finished: what a daemon killed between the steps leaves half done */
	"CREATE TABLE IF NOT EXISTS moves("
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" src TEXT NOT NULL,"
	" dst TEXT NOT NULL,"
	" dir INTEGER NOT NULL,"
	" created_at REAL NOT NULL,"
	" PRIMARY KEY(mount_id, remote, src, dst))",
	"CREATE TABLE IF NOT EXISTS events("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time REAL NOT NULL,"
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" op TEXT NOT NULL,"	/* rename | delete | mkdir | rmdir | setattr */
	" key TEXT NOT NULL,"
	" new_key TEXT,"
	" detail TEXT)",
	/* mediactl copy: one row a (plan, source) pair, the old -> new map */
	"CREATE TABLE IF NOT EXISTS copies("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" plan TEXT NOT NULL,"	/* the plan file's absolute path */
	" label TEXT,"
	" src TEXT NOT NULL,"	/* absolute paths in the mount */
	" rel TEXT,"		/* src relative to the plan's --from */
	" dst TEXT NOT NULL,"
	" src_remote TEXT, src_key TEXT, src_url TEXT,"
	" dst_remote TEXT, dst_key TEXT, dst_url TEXT,"
	" size INTEGER,"
	" vars TEXT,"		/* the rule's captures, JSON */
	" state TEXT NOT NULL,"	/* done | failed | skipped | rolledback */
	" skip_kind TEXT,"	/* no-rule | skip-rule | no-mapping | … */
	" error TEXT,"
	" started_at REAL, finished_at REAL,"
	" UNIQUE(plan, src))",
	"CREATE INDEX IF NOT EXISTS copies_dst ON copies(dst_remote, dst_key)",
	/* running daemons, for mediactl to find their control sockets */
	"CREATE TABLE IF NOT EXISTS daemons("
	" mount_id TEXT PRIMARY KEY,"
	" pid INTEGER NOT NULL,"
	" socket TEXT NOT NULL,"
	" mountpoint TEXT,"
	" label TEXT,"
	" started_at REAL NOT NULL)",
	/* mediactl rewrite: one row a rewrite of an application database,
	 * one row a change (the undo record) */
	"CREATE TABLE IF NOT EXISTS rewrites("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" created_at REAL NOT NULL,"
	" db TEXT NOT NULL,"	/* connection string, password redacted */
	" kind TEXT NOT NULL,"	/* prefix | map | insert */
	" tbl TEXT NOT NULL, col TEXT, pk TEXT NOT NULL,"
	" args TEXT,"		/* the command line, for the record */
	" log_table TEXT,"
	" state TEXT NOT NULL,"	/* planned | applied | rolledback */
	" planned INTEGER, applied INTEGER, skipped INTEGER,"
	" applied_at REAL, rolledback_at REAL)",
	"CREATE TABLE IF NOT EXISTS rewrite_changes("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" rewrite_id INTEGER NOT NULL,"
	" pk TEXT,"		/* the row's key (set at apply for inserts) */
	" before TEXT, after TEXT,"	/* the column as text */
	" extra TEXT,"		/* other columns: {"col":[before,after]} or
				 * an insert's {"col":value} */
	" source TEXT,"		/* the journal row it came from */
	" old_url TEXT, new_url TEXT,"
	" state TEXT NOT NULL,"	/* planned | applied | skipped |
				 * rolledback | kept */
	" detail TEXT)",
	"CREATE INDEX IF NOT EXISTS rewrite_changes_rw ON "
	"rewrite_changes(rewrite_id, state, id)",
};


/* Columns added since the first schema (user_version 0 -> 1), SQLite. */
static const char *const upgrade_1[] = {
	"ALTER TABLE uploads ADD COLUMN orig_size INTEGER",
	"ALTER TABLE uploads ADD COLUMN orig_sha256 TEXT",
	"ALTER TABLE uploads ADD COLUMN hook TEXT",
	"ALTER TABLE uploads ADD COLUMN hook_result TEXT",
};

static const char *const state_names[] = { "pending", "done", "failed",
					   "cancelled", "rolledback" };

struct journal {
	pthread_mutex_t lock;
	struct db *d;	/* guarded by lock */
	char *where;	/* path or connection string (may hold a password:
			 * never printed; wiped at close) */
	int pg;		/* d is PostgreSQL */
	int sync_full;
};

int journal_is_shared(const char *where)
{
	return where && (str_starts(where, "postgres://") ||
			 str_starts(where, "postgresql://") ||
			 strstr(where, "dbname=") || strstr(where, "host="));
}

static void now_txt(char *out, size_t cap)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, cap, "%.6f",
		 (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* The journal's message for a failed statement: "journal: WHAT: why". */
static enum mfs_err jerr(struct errbuf *eb, enum mfs_err rc, const char *what,
			 const struct errbuf *why)
{
	return eb_set(eb, rc, "journal: %s: %s", what, why->msg);
}

/* Run one statement; caller holds lock. */
static enum mfs_err jexec(struct journal *j, const char *sql,
			  const char *const *p, int n, int64_t *changes,
			  struct errbuf *eb, const char *what)
{
	struct errbuf e = { 0 };
	enum mfs_err rc = j->d->ops->exec(j->d, sql, p, n, changes, &e);

	return rc ? jerr(eb, rc, what, &e) : MFS_OK;
}

static enum mfs_err jquery(struct journal *j, const char *sql,
			   const char *const *p, int n, db_row_cb cb,
			   void *ud, struct errbuf *eb, const char *what)
{
	struct errbuf e = { 0 };
	enum mfs_err rc = j->d->ops->query(j->d, sql, p, n, cb, ud, &e);

	return rc ? jerr(eb, rc, what, &e) : MFS_OK;
}

/* jexec under the journal's lock. */
static enum mfs_err jexec_locked(struct journal *j, const char *sql,
				 const char *const *p, int n, struct errbuf *eb,
				 const char *what)
{
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	rc = jexec(j, sql, p, n, NULL, eb, what);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* The rows of sql ($1: mount_id) to cb, under the journal's lock. */
static enum mfs_err jlist_mount(struct journal *j, const char *sql,
				const char *mount_id, db_row_cb cb, void *ud,
				const char *what)
{
	const char *p[] = { mount_id };
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	rc = jquery(j, sql, p, 1, cb, ud, NULL, what);
	pthread_mutex_unlock(&j->lock);
	return rc ? MFS_EIO : MFS_OK;
}

static int64_t num(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static uint64_t unum(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

/* A SQLite column type in the DDL as PostgreSQL's: 64-bit integers and
 * doubles (SQLite's INTEGER and REAL hold both), a bigserial key. */
static char *pg_type(const char *ddl)
{
	static const char *const map[][2] = {
		{ "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY" },
		{ "INTEGER", "BIGINT" },
		{ "REAL", "DOUBLE PRECISION" },
	};
	struct buf b;
	const char *p = ddl;
	size_t i, n;

	buf_init(&b, 0);
	while (*p) {
		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
			n = strlen(map[i][0]);
			if (p > ddl && p[-1] == ' ' && !strncmp(p, map[i][0], n) &&
			    (p[n] == ',' || p[n] == ' ' || p[n] == ')' || !p[n]))
				break;
		}
		if (i < sizeof(map) / sizeof(map[0])) {
			if (buf_adds(&b, map[i][1]))
				goto oom;
			p += strlen(map[i][0]);
		} else {
			if (buf_add(&b, p, 1))
				goto oom;
			p++;
		}
	}
	if (!b.data && buf_adds(&b, ""))
		return NULL;
	return buf_take(&b);
oom:
	buf_cleanup(&b);
	return NULL;
}

static int first_int(void *ud, int ncol, const char *const *v)
{
	(void)ncol;
	*(int64_t *)ud = num(v[0]);
	return 1;
}

static int find_column(void *ud, int ncol, const char *const *v)
{
	const char **col = ud;

	/* table_info: cid, name, type, notnull, dflt, pk */
	if (ncol > 1 && v[1] && !strcmp(v[1], *col)) {
		*col = NULL;
		return 1;
	}
	return 0;
}

static int has_column(struct journal *j, const char *col)
{
	const char *want = col;

	if (jquery(j, "PRAGMA table_info(uploads)", NULL, 0, find_column,
		   &want, NULL, "schema"))
		return 0;
	return want == NULL;
}

/* Bring an older SQLite journal's schema up to date (kept rows, new
 * columns). */
static enum mfs_err upgrade(struct journal *j, struct errbuf *eb)
{
	int64_t v = -1;
	enum mfs_err rc = MFS_OK;
	size_t i;

	jquery(j, "PRAGMA user_version", NULL, 0, first_int, &v, NULL,
	       "schema");
	if (v >= 3)
		return MFS_OK;
	if (!has_column(j, "orig_size"))
		for (i = 0; !rc && i < sizeof(upgrade_1) / sizeof(upgrade_1[0]);
		     i++)
			rc = jexec(j, upgrade_1[i], NULL, 0, NULL, eb,
				   "upgrading the schema");
	if (!rc && !has_column(j, "file_id"))
		rc = jexec(j, "ALTER TABLE uploads ADD COLUMN file_id TEXT",
			   NULL, 0, NULL, eb, "upgrading the schema");
	if (!rc && !has_column(j, "drop_key")) {
		rc = jexec(j, "ALTER TABLE uploads ADD COLUMN drop_key TEXT",
			   NULL, 0, NULL, eb, "upgrading the schema");
		if (!rc)
			rc = jexec(j, "ALTER TABLE uploads ADD COLUMN discard "
				   "INTEGER", NULL, 0, NULL, eb,
				   "upgrading the schema");
	}
	if (!rc)
		rc = jexec(j, "PRAGMA user_version=3", NULL, 0, NULL, eb,
			   "upgrading the schema");
	return rc;
}

/* Create the tables; caller holds lock (or owns j alone). PostgreSQL:
 * one transaction under an advisory lock, so daemons starting together
 * do not race on CREATE TABLE IF NOT EXISTS. */
static enum mfs_err create_schema(struct journal *j, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	size_t i;

	if (j->pg) {
		rc = jexec(j, "SET client_min_messages TO warning", NULL, 0,
			   NULL, eb, "schema");
		if (!rc)
			rc = jexec(j, "BEGIN", NULL, 0, NULL, eb, "schema");
		if (!rc)
			rc = jexec(j, "SELECT pg_advisory_xact_lock(1970170739)",
				   NULL, 0, NULL, eb, "schema");
	}
	for (i = 0; !rc && i < sizeof(schema) / sizeof(schema[0]); i++) {
		char *s = j->pg ? pg_type(schema[i]) : NULL;

		if (j->pg && !s)
			return MFS_ENOMEM;
		rc = jexec(j, s ? s : schema[i], NULL, 0, NULL, eb, "schema");
		free(s);
	}
	if (j->pg)
		jexec(j, rc ? "ROLLBACK" : "COMMIT", NULL, 0, NULL,
		      rc ? NULL : eb, "schema");
	else if (!rc)
		rc = upgrade(j, eb);
	return rc;
}

/* Connect (and for SQLite set the pragmas); caller holds lock. */
static enum mfs_err connect_db(struct journal *j, int create,
			       struct errbuf *eb)
{
	struct errbuf e = { 0 };
	enum mfs_err rc;

	if (j->pg) {
		rc = db_pg_open(j->where, &j->d, &e);
		if (rc)
			return eb_set(eb, rc, "cannot open journal: %s", e.msg);
		return MFS_OK;
	}
	rc = db_sqlite_create(j->where, create, &j->d, &e);
	if (rc)
		return eb_set(eb, MFS_EIO, "cannot open journal %s: %s",
			      j->where, e.msg);
	if (create)	/* WAL stays set in the file */
		rc = jexec(j, "PRAGMA journal_mode=WAL", NULL, 0, NULL, eb,
			   j->where);
	if (!rc)
		rc = jexec(j, j->sync_full ? "PRAGMA synchronous=FULL" :
			   "PRAGMA synchronous=NORMAL", NULL, 0, NULL, eb,
			   j->where);
	return rc;
}

enum mfs_err journal_open(const char *where, int sync_full,
			  struct journal **out, struct errbuf *eb)
{
	struct journal *j = calloc(1, sizeof(*j));
	enum mfs_err rc;

	*out = NULL;
	if (!j)
		return MFS_ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	j->sync_full = sync_full;
	j->pg = journal_is_shared(where);
	j->where = strdup(where);
	if (!j->where) {
		journal_close(j);
		return MFS_ENOMEM;
	}
	rc = connect_db(j, 1, eb);
	if (!rc)
		rc = create_schema(j, eb);
	if (rc) {
		journal_close(j);
		return rc;
	}
	*out = j;
	return MFS_OK;
}

int journal_shared(const struct journal *j)
{
	return j->pg;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	db_close(j->d);
	pthread_mutex_destroy(&j->lock);
	if (j->where) {
		/* a connection string may carry the password */
		memset(j->where, 0, strlen(j->where));
		free(j->where);
	}
	free(j);
}

enum mfs_err journal_reopen(struct journal *j, struct errbuf *eb)
{
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	db_close(j->d);
	j->d = NULL;
	rc = connect_db(j, 0, eb);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_add_pending(struct journal *j, struct jrow *r,
				 struct errbuf *eb)
{
	char size[24], mtime[24], mode[16], now[32], *id = NULL;
	const char *p[] = { r->mount_id, r->remote, r->key, r->stage_path,
			    size, mtime, mode, r->content_type,
			    r->cache_control, r->label, now };
	struct errbuf e = { 0 };
	enum mfs_err rc;

	snprintf(size, sizeof(size), "%llu", (unsigned long long)r->size);
	snprintf(mtime, sizeof(mtime), "%lld", (long long)r->mtime_ns);
	snprintf(mode, sizeof(mode), "%u", (unsigned)r->mode);
	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = j->d->ops->insert(j->d, "INSERT INTO uploads(mount_id,remote,key,"
			       "state,stage_path,size,mtime_ns,mode,"
			       "content_type,cache_control,label,created_at,"
			       "updated_at) VALUES($1,$2,$3,'pending',$4,$5,$6,"
			       "$7,$8,$9,$10,$11,$11)", p, 11, "id", &id, &e);
	pthread_mutex_unlock(&j->lock);
	if (rc)
		return jerr(eb, rc, "add", &e);
	r->id = num(id);
	free(id);
	return MFS_OK;
}

enum mfs_err journal_update_pending(struct journal *j, const struct jrow *r,
				    struct errbuf *eb)
{
	char id[24], size[24], mtime[24], mode[16], now[32], discard[8];
	const char *p[] = { id, r->key, r->stage_path, size, mtime, mode,
			    r->content_type, r->cache_control, now,
			    r->drop_key, discard };
	enum mfs_err rc;

	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)r->size);
	snprintf(mtime, sizeof(mtime), "%lld", (long long)r->mtime_ns);
	snprintf(mode, sizeof(mode), "%u", (unsigned)r->mode);
	snprintf(discard, sizeof(discard), "%d", r->discard);
	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, "UPDATE uploads SET key=$2,stage_path=$3,size=$4,"
		   "mtime_ns=$5,mode=$6,content_type=$7,cache_control=$8,"
		   "updated_at=$9,drop_key=$10,discard=$11 WHERE id=$1",
		   p, 11, NULL, eb, "update");
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_done(struct journal *j, int64_t id,
			  const struct jdone *d, struct errbuf *eb)
{
	char ids[24], size[24], mtime[24], now[32], osize[24];
	const char *p[] = { ids, d->key, size, d->sha256, d->etag, d->url,
			    d->content_type, mtime, now, osize,
			    d->orig_sha256 ? d->orig_sha256 : d->sha256,
			    d->hook, d->hook_result, d->file_id };
	enum mfs_err rc;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)d->size);
	snprintf(mtime, sizeof(mtime), "%lld", (long long)d->mtime_ns);
	snprintf(osize, sizeof(osize), "%llu", (unsigned long long)
		 (d->orig_sha256 ? d->orig_size : d->size));
	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, "UPDATE uploads SET state='done',key=$2,size=$3,"
		   "sha256=$4,etag=$5,url=$6,content_type=$7,mtime_ns=$8,"
		   "stage_path=NULL,error=NULL,updated_at=$9,orig_size=$10,"
		   "orig_sha256=$11,hook=$12,hook_result=$13,file_id=$14,"
		   "drop_key=NULL,discard=NULL WHERE id=$1", p, 14, NULL, eb,
		   "done");
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static void col_copy(const char *v, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s", v ? v : "");
}

static int last_row(void *ud, int ncol, const char *const *v)
{
	struct jlast *out = ud;

	if (ncol < 13)
		return 1;
	out->id = num(v[0]);
	out->size = unum(v[1]);
	col_copy(v[2], out->sha256, sizeof(out->sha256));
	col_copy(v[3], out->etag, sizeof(out->etag));
	col_copy(v[4], out->url, sizeof(out->url));
	col_copy(v[5], out->content_type, sizeof(out->content_type));
	col_copy(v[6], out->cache_control, sizeof(out->cache_control));
	out->mtime_ns = num(v[7]);
	out->mode = (uint32_t)num(v[8]);
	out->orig_size = unum(v[9]);
	col_copy(v[10], out->orig_sha256, sizeof(out->orig_sha256));
	col_copy(v[11], out->hook, sizeof(out->hook));
	col_copy(v[12], out->hook_result, sizeof(out->hook_result));
	return 1;
}

/* The done row of remote's key that where (SQL after "WHERE remote=$1
 * AND key=$2 AND state='done'", the row being u) picks, into out. */
static enum mfs_err last_row_where(struct journal *j, const char *remote,
				   const char *key, const char *where,
				   struct jlast *out)
{
	const char *p[] = { remote, key };
	enum mfs_err rc;
	char *sql = str_fmt("SELECT id,size,sha256,etag,url,content_type,"
			    "cache_control,mtime_ns,mode,orig_size,"
			    "orig_sha256,hook,hook_result FROM uploads u "
			    "WHERE remote=$1 AND key=$2 AND state='done' %s",
			    where);

	memset(out, 0, sizeof(*out));
	out->id = -1;
	if (!sql)
		return MFS_ENOMEM;
	pthread_mutex_lock(&j->lock);
	rc = jquery(j, sql, p, 2, last_row, out, NULL, "last");
	pthread_mutex_unlock(&j->lock);
	free(sql);
	if (rc)
		return MFS_EIO;
	if (out->id < 0) {
		out->id = 0;
		return MFS_ENOTFOUND;
	}
	return MFS_OK;
}

enum mfs_err journal_last_done(struct journal *j, const char *remote,
			       const char *key, struct jlast *out)
{
	return last_row_where(j, remote, key, "ORDER BY id DESC LIMIT 1",
			      out);
}

enum mfs_err journal_last_settled(struct journal *j, const char *remote,
				  const char *key, struct jlast *out)
{
	return last_row_where(j, remote, key,
			      "AND id=(SELECT max(id) FROM uploads WHERE "
			      "remote=$1 AND key=$2) AND NOT EXISTS (SELECT 1 "
			      "FROM events e WHERE e.remote=$1 AND (e.key=$2 "
			      "OR e.new_key=$2) AND e.time>=u.updated_at)",
			      out);
}

static enum mfs_err set_state(struct journal *j, int64_t id,
			      const char *state, const char *error,
			      struct errbuf *eb)
{
	char ids[24], now[32];
	const char *p[] = { ids, state, error, now };
	enum mfs_err rc;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, "UPDATE uploads SET state=$2,error=$3,updated_at=$4 "
		   "WHERE id=$1", p, 4, NULL, eb, state);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_failed(struct journal *j, int64_t id, const char *error,
			    struct errbuf *eb)
{
	return set_state(j, id, "failed", error, eb);
}

enum mfs_err journal_cancel(struct journal *j, int64_t id, struct errbuf *eb)
{
	return set_state(j, id, "cancelled", NULL, eb);
}

struct pending_ctx {
	const char *mount_id;
	journal_row_cb cb;
	void *ud;
};

static int pending_row(void *ud, int ncol, const char *const *v)
{
	struct pending_ctx *pc = ud;
	struct jrow row = { 0 };
	int i;

	if (ncol < 14)
		return 1;
	row.id = num(v[0]);
	row.mount_id = pc->mount_id;
	row.remote = v[1];
	row.key = v[2];
	row.stage_path = v[3];
	row.size = unum(v[4]);
	row.mtime_ns = num(v[5]);
	row.mode = (uint32_t)num(v[6]);
	row.content_type = v[7];
	row.cache_control = v[8];
	row.label = v[9];
	row.drop_key = v[11];
	row.discard = (int)num(v[12]);
	row.error = v[13];
	for (i = 0; i < 5; i++)
		if (v[10] && !strcmp(v[10], state_names[i]))
			row.state = i;
	pc->cb(pc->ud, &row);
	return 0;
}

enum mfs_err journal_pending(struct journal *j, const char *mount_id,
			     int failed, journal_row_cb cb, void *ud)
{
	struct pending_ctx pc = { mount_id, cb, ud };
	const char *p[] = { mount_id };
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	rc = jquery(j, failed ?
		    "SELECT id,remote,key,stage_path,size,mtime_ns,mode,"
		    "content_type,cache_control,label,state,drop_key,discard,"
		    "error FROM uploads WHERE mount_id=$1 AND "
		    "state IN ('pending','failed') ORDER BY id" :
		    "SELECT id,remote,key,stage_path,size,mtime_ns,mode,"
		    "content_type,cache_control,label,state,drop_key,discard,"
		    "error FROM uploads WHERE mount_id=$1 AND state='pending' "
		    "ORDER BY id", p, 1, pending_row, &pc, NULL, "pending");
	pthread_mutex_unlock(&j->lock);
	return rc ? MFS_EIO : MFS_OK;
}

static int any_row(void *ud, int ncol, const char *const *v)
{
	(void)ncol;
	(void)v;
	*(int *)ud = 1;
	return 1;
}

static int done_where(struct journal *j, const char *remote, const char *key,
		      int64_t id, const char *sql)
{
	char ids[24];
	const char *p[] = { remote, key, ids };
	int found = 0;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	pthread_mutex_lock(&j->lock);
	if (jquery(j, sql, p, 3, any_row, &found, NULL, "done after"))
		found = 1;	/* unknown: do not delete */
	pthread_mutex_unlock(&j->lock);
	return found;
}

int journal_done_after(struct journal *j, const char *remote, const char *key,
		       int64_t id)
{
	return done_where(j, remote, key, id,
			  "SELECT 1 FROM uploads WHERE remote=$1 AND key=$2 "
			  "AND id>$3 AND state='done' LIMIT 1");
}

int journal_done_since(struct journal *j, const char *remote, const char *key,
		       int64_t id)
{
	return done_where(j, remote, key, id,
			  "SELECT 1 FROM uploads WHERE remote=$1 AND key=$2 "
			  "AND state='done' AND id<>$3 AND (id>$3 OR "
			  "updated_at>(SELECT updated_at FROM uploads "
			  "WHERE id=$3)) LIMIT 1");
}

enum mfs_err journal_event(struct journal *j, const char *mount_id,
			   const char *remote, const char *op,
			   const char *key, const char *new_key,
			   const char *detail)
{
	char now[32];
	const char *p[] = { now, mount_id, remote, op, key, new_key, detail };
	enum mfs_err rc;

	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, "INSERT INTO events(time,mount_id,remote,op,key,new_key,"
		   "detail) VALUES($1,$2,$3,$4,$5,$6,$7)", p, 7, NULL, NULL,
		   "event");
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_requeue(struct journal *j, int64_t id, struct errbuf *eb)
{
	return set_state(j, id, "pending", NULL, eb);
}

struct sql_ctx {
	journal_sql_cb cb;
	void *ud;
};

static int sql_row(void *ud, int ncol, const char *const *v)
{
	struct sql_ctx *sc = ud;

	return sc->cb ? sc->cb(sc->ud, ncol, v, NULL) : 0;
}

enum mfs_err journal_sql(struct journal *j, const char *sql,
			 const char *const *params, int nparams,
			 journal_sql_cb cb, void *ud, struct errbuf *eb)
{
	struct sql_ctx sc = { cb, ud };
	char *s = j->pg ? db_placeholders(sql, '?', '$') : NULL;
	enum mfs_err rc;

	if (j->pg && !s)
		return MFS_ENOMEM;
	pthread_mutex_lock(&j->lock);
	rc = jquery(j, s ? s : sql, params, nparams, sql_row, &sc, eb,
		    "query");
	pthread_mutex_unlock(&j->lock);
	free(s);
	return rc;
}

enum mfs_err journal_exec(struct journal *j, const char *sql,
			  const char *const *params, int nparams,
			  int64_t *changes, struct errbuf *eb)
{
	char *s = j->pg ? db_placeholders(sql, '?', '$') : NULL;
	enum mfs_err rc;

	if (changes)
		*changes = 0;
	if (j->pg && !s)
		return MFS_ENOMEM;
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, s ? s : sql, params, nparams, changes, eb, "update");
	pthread_mutex_unlock(&j->lock);
	free(s);
	return rc;
}

enum mfs_err journal_mp_open(struct journal *j, const char *mount_id,
			     const char *remote, const char *key,
			     const char *upload_id, int64_t upload,
			     int *created, struct errbuf *eb)
{
	char up[24], now[32];
	const char *p[] = { upload_id, mount_id, remote, key, up, now };
	int64_t changes = 0;
	enum mfs_err rc;

	if (created)
		*created = 0;
	snprintf(up, sizeof(up), "%lld", (long long)upload);
	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	/* A row already there (an intent re-recorded) keeps its time. */
	rc = jexec(j, "INSERT INTO multipart(upload_id,mount_id,remote,key,"
		   "upload,created_at) VALUES($1,$2,$3,$4,$5,$6) "
		   "ON CONFLICT(remote,upload_id) DO NOTHING",
		   p, 6, &changes, eb, "multipart");
	if (!rc && created)
		*created = changes > 0;
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_mp_close(struct journal *j, const char *remote,
			      const char *upload_id, struct errbuf *eb)
{
	const char *p[] = { remote, upload_id };

	return jexec_locked(j, "DELETE FROM multipart WHERE remote=$1 AND "
			    "upload_id=$2", p, 2, eb, "multipart");
}

struct mp_ctx {
	journal_mp_cb cb;
	void *ud;
};

static int mp_row(void *ud, int ncol, const char *const *v)
{
	struct mp_ctx *mc = ud;

	if (ncol >= 4)
		mc->cb(mc->ud, v[0], v[1], v[2], v[3] ? strtod(v[3], NULL) : 0);
	return 0;
}

enum mfs_err journal_mp_list(struct journal *j, const char *mount_id,
			     journal_mp_cb cb, void *ud)
{
	struct mp_ctx mc = { cb, ud };

	return jlist_mount(j, "SELECT remote,key,upload_id,created_at FROM "
			   "multipart WHERE mount_id=$1 ORDER BY created_at",
			   mount_id, mp_row, &mc, "multipart");
}

enum mfs_err journal_move_open(struct journal *j, const char *mount_id,
			       const char *remote, const char *src,
			       const char *dst, int dir, int *created,
			       struct errbuf *eb)
{
	char now[32];
	const char *p[] = { mount_id, remote, src, dst, dir ? "1" : "0",
			    now };
	int64_t changes = 0;
	enum mfs_err rc;

	now_txt(now, sizeof(now));
	pthread_mutex_lock(&j->lock);
	rc = jexec(j, "INSERT INTO moves(mount_id,remote,src,dst,dir,"
		   "created_at) VALUES($1,$2,$3,$4,$5,$6) "
		   "ON CONFLICT(mount_id,remote,src,dst) DO NOTHING",
		   p, 6, &changes, eb, "moves");
	pthread_mutex_unlock(&j->lock);
	*created = !rc && changes > 0;
	return rc;
}

enum mfs_err journal_move_close(struct journal *j, const char *mount_id,
				const char *remote, const char *src,
				const char *dst, struct errbuf *eb)
{
	const char *p[] = { mount_id, remote, src, dst };

	return jexec_locked(j, "DELETE FROM moves WHERE mount_id=$1 AND "
			    "remote=$2 AND src=$3 AND dst=$4", p, 4, eb,
			    "moves");
}

struct move_ctx {
	journal_move_cb cb;
	void *ud;
};

static int move_row(void *ud, int ncol, const char *const *v)
{
	struct move_ctx *mc = ud;

	if (ncol >= 4 && v[0] && v[1] && v[2])
		mc->cb(mc->ud, v[0], v[1], v[2], v[3] && atoi(v[3]));
	return 0;
}

enum mfs_err journal_move_list(struct journal *j, const char *mount_id,
			       journal_move_cb cb, void *ud)
{
	struct move_ctx mc = { cb, ud };

	return jlist_mount(j, "SELECT remote,src,dst,dir FROM moves WHERE "
			   "mount_id=$1 ORDER BY created_at", mount_id,
			   move_row, &mc, "moves");
}
