/* journal.c - the durable journal on SQLite. lock guards db and the
 * statements. Calls: sqlite3, common. */
#include "meta/journal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/log.h"

static const char schema[] =
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
	" discard INTEGER);"
	"CREATE INDEX IF NOT EXISTS uploads_state ON uploads(mount_id, state);"
	/* multipart uploads started on a server and not yet completed nor
	 * aborted: what a daemon killed meanwhile leaves there (billed) */
	"CREATE TABLE IF NOT EXISTS multipart("
	" upload_id TEXT NOT NULL,"
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" upload INTEGER,"	/* uploads.id */
	" created_at REAL NOT NULL,"
	" PRIMARY KEY(remote, upload_id));"
	"CREATE INDEX IF NOT EXISTS uploads_key ON uploads(remote, key);"
	"CREATE TABLE IF NOT EXISTS events("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time REAL NOT NULL,"
	" mount_id TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" op TEXT NOT NULL,"	/* rename | delete | mkdir | rmdir | setattr */
	" key TEXT NOT NULL,"
	" new_key TEXT,"
	" detail TEXT);"
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
	" UNIQUE(plan, src));"
	"CREATE INDEX IF NOT EXISTS copies_dst ON copies(dst_remote, dst_key);"
	/* running daemons, for mediactl to find their control sockets */
	"CREATE TABLE IF NOT EXISTS daemons("
	" mount_id TEXT PRIMARY KEY,"
	" pid INTEGER NOT NULL,"
	" socket TEXT NOT NULL,"
	" mountpoint TEXT,"
	" label TEXT,"
	" started_at REAL NOT NULL);"
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
	" applied_at REAL, rolledback_at REAL);"
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
	" detail TEXT);"
	"CREATE INDEX IF NOT EXISTS rewrite_changes_rw ON "
	"rewrite_changes(rewrite_id, state, id);";

/* Columns added since the first schema (user_version 0 -> 1). */
static const char upgrade_1[] =
	"ALTER TABLE uploads ADD COLUMN orig_size INTEGER;"
	"ALTER TABLE uploads ADD COLUMN orig_sha256 TEXT;"
	"ALTER TABLE uploads ADD COLUMN hook TEXT;"
	"ALTER TABLE uploads ADD COLUMN hook_result TEXT;";

static const char *const state_names[] = { "pending", "done", "failed",
					   "cancelled", "rolledback" };

struct journal {
	pthread_mutex_t lock;
	sqlite3 *db;	/* guarded by lock */
	char *path;
	int sync_full;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum mfs_err db_err(struct journal *j, struct errbuf *eb,
			   const char *what)
{
	/* a full disk is the user's ENOSPC, not an I/O error */
	int full = (sqlite3_errcode(j->db) & 0xff) == SQLITE_FULL;

	return eb_set(eb, full ? MFS_ENOSPC : MFS_EIO, "journal: %s: %s",
		      what, sqlite3_errmsg(j->db));
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int has_column(sqlite3 *db, const char *col)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA table_info(uploads)", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(st) == SQLITE_ROW)
		if (!strcmp((const char *)sqlite3_column_text(st, 1), col))
			found = 1;
	sqlite3_finalize(st);
	return found;
}

/* Bring an older journal's schema up to date (kept rows, new columns). */
static enum mfs_err upgrade(struct journal *j, struct errbuf *eb)
{
	if (user_version(j->db) >= 3)
		return MFS_OK;
	if (!has_column(j->db, "orig_size") &&
	    sqlite3_exec(j->db, upgrade_1, NULL, NULL, NULL))
		return db_err(j, eb, "upgrading the schema");
	if (!has_column(j->db, "file_id") &&
	    sqlite3_exec(j->db, "ALTER TABLE uploads ADD COLUMN file_id TEXT;",
			 NULL, NULL, NULL))
		return db_err(j, eb, "upgrading the schema");
	if (!has_column(j->db, "drop_key") &&
	    sqlite3_exec(j->db, "ALTER TABLE uploads ADD COLUMN drop_key TEXT;"
			 "ALTER TABLE uploads ADD COLUMN discard INTEGER;",
			 NULL, NULL, NULL))
		return db_err(j, eb, "upgrading the schema");
	if (sqlite3_exec(j->db, "PRAGMA user_version=3", NULL, NULL, NULL))
		return db_err(j, eb, "upgrading the schema");
	return MFS_OK;
}

enum mfs_err journal_open(const char *path, int sync_full,
			  struct journal **out, struct errbuf *eb)
{
	struct journal *j = calloc(1, sizeof(*j));
	enum mfs_err rc = MFS_OK;

	*out = NULL;
	if (!j)
		return MFS_ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	j->sync_full = sync_full;
	j->path = strdup(path);
	if (!j->path) {
		journal_close(j);
		return MFS_ENOMEM;
	}
	if (sqlite3_open_v2(path, &j->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = eb_set(eb, MFS_EIO, "cannot open journal %s: %s", path,
			    j->db ? sqlite3_errmsg(j->db) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(j->db, 10000);
	if (sqlite3_exec(j->db, sync_full ?
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" :
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
			 NULL, NULL, NULL) ||
	    sqlite3_exec(j->db, schema, NULL, NULL, NULL))
		rc = db_err(j, eb, path);
	if (!rc)
		rc = upgrade(j, eb);
out:
	if (rc) {
		journal_close(j);
		return rc;
	}
	*out = j;
	return MFS_OK;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->db)
		sqlite3_close(j->db);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
}

enum mfs_err journal_reopen(struct journal *j, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;

	pthread_mutex_lock(&j->lock);
	sqlite3_close(j->db);
	j->db = NULL;
	if (sqlite3_open_v2(j->path, &j->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = eb_set(eb, MFS_EIO, "cannot reopen journal %s", j->path);
	} else {
		sqlite3_busy_timeout(j->db, 10000);
		if (sqlite3_exec(j->db, j->sync_full ?
				 "PRAGMA synchronous=FULL;" :
				 "PRAGMA synchronous=NORMAL;", NULL, NULL,
				 NULL))
			rc = db_err(j, eb, j->path);
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Run one statement with bound values; caller holds lock. */
static enum mfs_err run(struct journal *j, sqlite3_stmt *st,
			struct errbuf *eb, const char *what)
{
	int r = sqlite3_step(st);

	sqlite3_finalize(st);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return db_err(j, eb, what);
	return MFS_OK;
}

static sqlite3_stmt *prep(struct journal *j, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

enum mfs_err journal_add_pending(struct journal *j, struct jrow *r,
				 struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "INSERT INTO uploads(mount_id,remote,key,state,"
		     "stage_path,size,mtime_ns,mode,content_type,"
		     "cache_control,label,created_at,updated_at) "
		     "VALUES(?1,?2,?3,'pending',?4,?5,?6,?7,?8,?9,?10,?11,?11)");
	if (!st) {
		rc = db_err(j, eb, "add");
		goto out;
	}
	bind_text(st, 1, r->mount_id);
	bind_text(st, 2, r->remote);
	bind_text(st, 3, r->key);
	bind_text(st, 4, r->stage_path);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->size);
	sqlite3_bind_int64(st, 6, r->mtime_ns);
	sqlite3_bind_int(st, 7, (int)r->mode);
	bind_text(st, 8, r->content_type);
	bind_text(st, 9, r->cache_control);
	bind_text(st, 10, r->label);
	sqlite3_bind_double(st, 11, now());
	rc = run(j, st, eb, "add");
	if (!rc)
		r->id = sqlite3_last_insert_rowid(j->db);
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_update_pending(struct journal *j, const struct jrow *r,
				    struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "UPDATE uploads SET key=?2,stage_path=?3,size=?4,"
		     "mtime_ns=?5,mode=?6,content_type=?7,cache_control=?8,"
		     "updated_at=?9,drop_key=?10,discard=?11 "
		     "WHERE id=?1");
	if (!st) {
		rc = db_err(j, eb, "update");
		goto out;
	}
	sqlite3_bind_int64(st, 1, r->id);
	bind_text(st, 2, r->key);
	bind_text(st, 3, r->stage_path);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->size);
	sqlite3_bind_int64(st, 5, r->mtime_ns);
	sqlite3_bind_int(st, 6, (int)r->mode);
	bind_text(st, 7, r->content_type);
	bind_text(st, 8, r->cache_control);
	sqlite3_bind_double(st, 9, now());
	bind_text(st, 10, r->drop_key);
	sqlite3_bind_int(st, 11, r->discard);
	rc = run(j, st, eb, "update");
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_done(struct journal *j, int64_t id,
			  const struct jdone *d, struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "UPDATE uploads SET state='done',key=?2,size=?3,"
		     "sha256=?4,etag=?5,url=?6,content_type=?7,mtime_ns=?8,"
		     "stage_path=NULL,error=NULL,updated_at=?9,orig_size=?10,"
		     "orig_sha256=?11,hook=?12,hook_result=?13,file_id=?14,"
		     "drop_key=NULL,discard=NULL WHERE id=?1");
	if (!st) {
		rc = db_err(j, eb, "done");
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, d->key);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)d->size);
	bind_text(st, 4, d->sha256);
	bind_text(st, 5, d->etag);
	bind_text(st, 6, d->url);
	bind_text(st, 7, d->content_type);
	sqlite3_bind_int64(st, 8, d->mtime_ns);
	sqlite3_bind_double(st, 9, now());
	sqlite3_bind_int64(st, 10, (sqlite3_int64)(d->orig_sha256 ?
						    d->orig_size : d->size));
	bind_text(st, 11, d->orig_sha256 ? d->orig_sha256 : d->sha256);
	bind_text(st, 12, d->hook);
	bind_text(st, 13, d->hook_result);
	bind_text(st, 14, d->file_id);
	rc = run(j, st, eb, "done");
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	snprintf(dst, cap, "%s", v ? (const char *)v : "");
}

enum mfs_err journal_last_done(struct journal *j, const char *remote,
			       const char *key, struct jlast *out)
{
	sqlite3_stmt *st;
	enum mfs_err rc = MFS_ENOTFOUND;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&j->lock);
	st = prep(j, "SELECT id,size,sha256,etag,url,content_type,"
		     "cache_control,mtime_ns,mode,orig_size,orig_sha256,hook,"
		     "hook_result FROM uploads WHERE remote=?1 AND key=?2 AND "
		     "state='done' ORDER BY id DESC LIMIT 1");
	if (!st) {
		rc = MFS_EIO;
		goto out;
	}
	bind_text(st, 1, remote);
	bind_text(st, 2, key);
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->size = (uint64_t)sqlite3_column_int64(st, 1);
		col_copy(st, 2, out->sha256, sizeof(out->sha256));
		col_copy(st, 3, out->etag, sizeof(out->etag));
		col_copy(st, 4, out->url, sizeof(out->url));
		col_copy(st, 5, out->content_type, sizeof(out->content_type));
		col_copy(st, 6, out->cache_control, sizeof(out->cache_control));
		out->mtime_ns = sqlite3_column_int64(st, 7);
		out->mode = (uint32_t)sqlite3_column_int(st, 8);
		out->orig_size = (uint64_t)sqlite3_column_int64(st, 9);
		col_copy(st, 10, out->orig_sha256, sizeof(out->orig_sha256));
		col_copy(st, 11, out->hook, sizeof(out->hook));
		col_copy(st, 12, out->hook_result, sizeof(out->hook_result));
		rc = MFS_OK;
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static enum mfs_err set_state(struct journal *j, int64_t id,
			      const char *state, const char *error,
			      struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "UPDATE uploads SET state=?2,error=?3,updated_at=?4 "
		     "WHERE id=?1");
	if (!st) {
		rc = db_err(j, eb, state);
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, state);
	bind_text(st, 3, error);
	sqlite3_bind_double(st, 4, now());
	rc = run(j, st, eb, state);
out:
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

enum mfs_err journal_pending(struct journal *j, const char *mount_id,
			     int failed, journal_row_cb cb, void *ud)
{
	sqlite3_stmt *st;
	enum mfs_err rc = MFS_OK;
	int r, i;

	pthread_mutex_lock(&j->lock);
	st = prep(j, failed ?
		  "SELECT id,remote,key,stage_path,size,mtime_ns,mode,"
		  "content_type,cache_control,label,state,drop_key,discard,"
		  "error FROM uploads WHERE mount_id=?1 AND "
		  "state IN ('pending','failed') ORDER BY id" :
		  "SELECT id,remote,key,stage_path,size,mtime_ns,mode,"
		  "content_type,cache_control,label,state,drop_key,discard,"
		  "error FROM uploads WHERE mount_id=?1 AND state='pending' "
		  "ORDER BY id");
	if (!st) {
		pthread_mutex_unlock(&j->lock);
		return MFS_EIO;
	}
	bind_text(st, 1, mount_id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct jrow row = { 0 };
		const char *state = (const char *)sqlite3_column_text(st, 10);

		row.id = sqlite3_column_int64(st, 0);
		row.mount_id = mount_id;
		row.remote = (const char *)sqlite3_column_text(st, 1);
		row.key = (const char *)sqlite3_column_text(st, 2);
		row.stage_path = (const char *)sqlite3_column_text(st, 3);
		row.size = (uint64_t)sqlite3_column_int64(st, 4);
		row.mtime_ns = sqlite3_column_int64(st, 5);
		row.mode = (uint32_t)sqlite3_column_int(st, 6);
		row.content_type = (const char *)sqlite3_column_text(st, 7);
		row.cache_control = (const char *)sqlite3_column_text(st, 8);
		row.label = (const char *)sqlite3_column_text(st, 9);
		row.drop_key = (const char *)sqlite3_column_text(st, 11);
		row.discard = sqlite3_column_int(st, 12);
		row.error = (const char *)sqlite3_column_text(st, 13);
		for (i = 0; i < 5; i++)
			if (state && !strcmp(state, state_names[i]))
				row.state = i;
		cb(ud, &row);
	}
	if (r != SQLITE_DONE)
		rc = MFS_EIO;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int journal_done_after(struct journal *j, const char *remote, const char *key,
		       int64_t id)
{
	sqlite3_stmt *st;
	int found = 0;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "SELECT 1 FROM uploads WHERE remote=?1 AND key=?2 AND "
		     "id>?3 AND state='done' LIMIT 1");
	if (st) {
		bind_text(st, 1, remote);
		bind_text(st, 2, key);
		sqlite3_bind_int64(st, 3, id);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	} else {
		found = 1;	/* unknown: do not delete */
	}
	pthread_mutex_unlock(&j->lock);
	return found;
}

enum mfs_err journal_event(struct journal *j, const char *mount_id,
			   const char *remote, const char *op,
			   const char *key, const char *new_key,
			   const char *detail)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "INSERT INTO events(time,mount_id,remote,op,key,new_key,"
		     "detail) VALUES(?1,?2,?3,?4,?5,?6,?7)");
	if (!st) {
		pthread_mutex_unlock(&j->lock);
		return MFS_EIO;
	}
	sqlite3_bind_double(st, 1, now());
	bind_text(st, 2, mount_id);
	bind_text(st, 3, remote);
	bind_text(st, 4, op);
	bind_text(st, 5, key);
	bind_text(st, 6, new_key);
	bind_text(st, 7, detail);
	rc = run(j, st, NULL, "event");
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_requeue(struct journal *j, int64_t id, struct errbuf *eb)
{
	return set_state(j, id, "pending", NULL, eb);
}

enum mfs_err journal_sql(struct journal *j, const char *sql,
			 const char *const *params, int nparams,
			 journal_sql_cb cb, void *ud, struct errbuf *eb)
{
	const char *names[64], *vals[64];
	sqlite3_stmt *st;
	enum mfs_err rc = MFS_OK;
	int r = SQLITE_DONE, i, ncol;

	pthread_mutex_lock(&j->lock);
	st = prep(j, sql);
	if (!st) {
		rc = db_err(j, eb, "query");
		goto out;
	}
	for (i = 0; i < nparams; i++)
		bind_text(st, i + 1, params[i]);
	ncol = sqlite3_column_count(st);
	if (ncol > 64)
		ncol = 64;
	for (i = 0; i < ncol; i++)
		names[i] = sqlite3_column_name(st, i);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < ncol; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		if (cb && cb(ud, ncol, vals, names))
			break;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		rc = db_err(j, eb, "query");
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_exec(struct journal *j, const char *sql,
			  const char *const *params, int nparams,
			  int64_t *changes, struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;
	int i;

	pthread_mutex_lock(&j->lock);
	st = prep(j, sql);
	if (!st) {
		rc = db_err(j, eb, "update");
		goto out;
	}
	for (i = 0; i < nparams; i++)
		bind_text(st, i + 1, params[i]);
	rc = run(j, st, eb, "update");
	if (changes)
		*changes = rc ? 0 : sqlite3_changes64(j->db);
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_mp_open(struct journal *j, const char *mount_id,
			     const char *remote, const char *key,
			     const char *upload_id, int64_t upload,
			     int *created, struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	if (created)
		*created = 0;
	pthread_mutex_lock(&j->lock);
	st = prep(j, "INSERT OR IGNORE INTO multipart(upload_id,mount_id,"
		     "remote,key,upload,created_at) VALUES(?1,?2,?3,?4,?5,?6)");
	if (!st) {
		rc = db_err(j, eb, "multipart");
		goto out;
	}
	bind_text(st, 1, upload_id);
	bind_text(st, 2, mount_id);
	bind_text(st, 3, remote);
	bind_text(st, 4, key);
	sqlite3_bind_int64(st, 5, upload);
	sqlite3_bind_double(st, 6, now());
	rc = run(j, st, eb, "multipart");
	if (!rc && created)
		*created = sqlite3_changes(j->db) > 0;
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_mp_close(struct journal *j, const char *remote,
			      const char *upload_id, struct errbuf *eb)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "DELETE FROM multipart WHERE remote=?1 AND upload_id=?2");
	if (!st) {
		rc = db_err(j, eb, "multipart");
		goto out;
	}
	bind_text(st, 1, remote);
	bind_text(st, 2, upload_id);
	rc = run(j, st, eb, "multipart");
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

enum mfs_err journal_mp_list(struct journal *j, const char *mount_id,
			     journal_mp_cb cb, void *ud)
{
	sqlite3_stmt *st;
	enum mfs_err rc = MFS_OK;
	int r;

	pthread_mutex_lock(&j->lock);
	st = prep(j, "SELECT remote,key,upload_id,created_at FROM multipart "
		     "WHERE mount_id=?1 ORDER BY created_at");
	if (!st) {
		pthread_mutex_unlock(&j->lock);
		return MFS_EIO;
	}
	bind_text(st, 1, mount_id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		cb(ud, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2),
		   sqlite3_column_double(st, 3));
	if (r != SQLITE_DONE)
		rc = MFS_EIO;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&j->lock);
	return rc;
}
