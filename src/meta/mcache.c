/* mcache.c - metadata cache on SQLite. lock guards db and every prepared
 * statement; each public function holds it for its whole duration, so a
 * listing replacement is atomic with respect to lookups. Calls: sqlite3,
 * common.
 */
#include "meta/mcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/str.h"

#define SCHEMA_VERSION 3

enum stmt_id {
	S_GET, S_LOOKUP, S_CHILDREN, S_INSERT, S_UPDATE_LISTED,
	S_UPDATE_KEEP, S_SET_LISTED, S_MARK, S_SWEEP_SEL, S_DELETE_TREE,
	S_SET_FULL, S_SET_SNIFFED, S_ADD_UPDATE, S_ADD_INSERT, S_SEEN, S_COUNT
};

static const char *const sql[S_COUNT] = {
	[S_GET] = "SELECT ino,parent,name,kind,rid,size,mtime_ns,mode,full,"
		  "listed_at,etag,ctype,key,pending,cc,"
		  "CASE WHEN sniff_etag=etag THEN stype END FROM node WHERE ino=?1",
	[S_LOOKUP] = "SELECT ino,parent,name,kind,rid,size,mtime_ns,mode,full,"
		     "listed_at,etag,ctype,key,pending,cc,"
		  "CASE WHEN sniff_etag=etag THEN stype END FROM node "
		     "WHERE parent=?1 AND name=?2",
	[S_CHILDREN] = "SELECT ino,parent,name,kind,rid,size,mtime_ns,mode,"
		       "full,listed_at,etag,ctype,key,pending,cc,"
		  "CASE WHEN sniff_etag=etag THEN stype END FROM node "
		       "WHERE parent=?1 ORDER BY name",
	[S_INSERT] = "INSERT INTO node(parent,name,kind,rid,size,mtime_ns,"
		     "etag,key,seen,mode) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"
		     "?10)",
	/* etag changed or unknown: listing values win, HEAD data is stale */
	/* (not over a change made here since the listing began: the
	 * listing's values are older) */
	[S_UPDATE_LISTED] = "UPDATE node SET size=?2,mtime_ns=?3,etag=?4,"
			    "full=0,mode=?6,ctype=NULL,seen=?5 WHERE ino=?1 "
			    "AND seen<?5",
	[S_UPDATE_KEEP] = "UPDATE node SET seen=max(seen,?2) WHERE ino=?1",
	[S_SET_LISTED] = "UPDATE node SET listed_at=?2 WHERE ino=?1",
	[S_MARK] = "UPDATE node SET seen=?2 WHERE ino=?1",
	/* nodes with local changes not yet on the server stay */
	/* (and those changed here since the listing began: seen >= ?2) */
	[S_SWEEP_SEL] = "SELECT ino FROM node WHERE parent=?1 AND seen<?2 "
			"AND pending=0",
	[S_DELETE_TREE] = "WITH RECURSIVE t(i) AS (SELECT ?1 UNION ALL "
			  "SELECT n.ino FROM node n JOIN t ON n.parent=t.i) "
			  "DELETE FROM node WHERE ino IN (SELECT i FROM t)",
	[S_SET_FULL] = "UPDATE node SET size=?2,mtime_ns=?3,mode=?4,etag=?5,"
		       "ctype=?6,cc=?7,full=1,seen=?8 WHERE ino=?1",
	[S_SET_SNIFFED] = "UPDATE node SET stype=?3,sniff_etag=?2 "
			  "WHERE ino=?1",
	[S_ADD_UPDATE] = "UPDATE node SET size=?2,mtime_ns=?3,mode=?4,"
			 "pending=?5,full=0,seen=?6 WHERE ino=?1",
	[S_ADD_INSERT] = "INSERT INTO node(parent,name,kind,rid,size,"
			 "mtime_ns,mode,key,pending,etag,listed_at,seen) "
			 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'',?10,?11)",
	[S_SEEN] = "SELECT seen FROM node WHERE ino=?1",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);"
	"CREATE TABLE IF NOT EXISTS remote(rid INTEGER PRIMARY KEY,"
	" name TEXT UNIQUE NOT NULL, ident TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS node("
	" ino INTEGER PRIMARY KEY AUTOINCREMENT,"
	" parent INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" kind INTEGER NOT NULL,"
	" rid INTEGER NOT NULL DEFAULT 0,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" mtime_ns INTEGER NOT NULL DEFAULT 0,"
	" mode INTEGER NOT NULL DEFAULT 0,"
	" full INTEGER NOT NULL DEFAULT 0,"
	" listed_at INTEGER NOT NULL DEFAULT 0,"
	" etag TEXT, ctype TEXT,"
	" key TEXT NOT NULL,"
	" seen INTEGER NOT NULL DEFAULT 0,"
	" pending INTEGER NOT NULL DEFAULT 0,"
	" cc TEXT,"
	" stype TEXT, sniff_etag TEXT,"	/* type sniffed from the bytes of
					 * the version with that etag */
	" UNIQUE(parent, name));"
	"CREATE INDEX IF NOT EXISTS node_key ON node(rid, key);";

struct mcache {
	char *path;
	pthread_mutex_t lock;
	sqlite3 *db;			/* guarded by lock */
	sqlite3_stmt *st[S_COUNT];	/* guarded by lock */
	/* guarded by lock: mcache_set's UPDATE for each mask of columns,
	 * prepared on first use (parsing it cost more than running it) */
	sqlite3_stmt *set_st[1u << MC_SET_NCOLS];
	int64_t gen;			/* guarded by lock: the newest listing's
					 * number (mcache_list_begin); a node's
					 * "seen" is the number of the last
					 * listing that had it, or the newest
					 * one when it was changed here: a
					 * listing sweeps only nodes seen
					 * before it began */
	int64_t seen_now;		/* guarded by lock: in a listing's
					 * merge, its number */
	int64_t now_ns;			/* guarded by lock: time of this listing */
};

static enum mfs_err db_err(struct mcache *mc, struct errbuf *eb,
			   const char *what)
{
	/* a full cache disk is the user's ENOSPC, not an I/O error */
	int full = (sqlite3_errcode(mc->db) & 0xff) == SQLITE_FULL;

	return eb_set(eb, full ? MFS_ENOSPC : MFS_EIO,
		      "metadata cache: %s: %s", what, sqlite3_errmsg(mc->db));
}

static int exec(struct mcache *mc, const char *s)
{
	return sqlite3_exec(mc->db, s, NULL, NULL, NULL);
}

enum mfs_err mcache_open(const char *path, struct mcache **out,
			 struct errbuf *eb)
{
	struct mcache *mc = calloc(1, sizeof(*mc));
	sqlite3_stmt *st = NULL;
	enum mfs_err rc = MFS_OK;
	int i, ver = 0;

	*out = NULL;
	if (!mc)
		return MFS_ENOMEM;
	pthread_mutex_init(&mc->lock, NULL);
	mc->path = strdup(path);
	if (!mc->path) {
		mcache_close(mc);
		return MFS_ENOMEM;
	}
	if (sqlite3_open_v2(path, &mc->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = eb_set(eb, MFS_EIO, "cannot open metadata cache %s: %s",
			    path, mc->db ? sqlite3_errmsg(mc->db) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(mc->db, 5000);
	/* The cache is disposable: WAL without fsync per commit. */
	if (exec(mc, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		     "PRAGMA foreign_keys=OFF;") ||
	    exec(mc, schema)) {
		rc = db_err(mc, eb, path);
		goto out;
	}
	if (sqlite3_prepare_v2(mc->db, "SELECT v FROM meta WHERE k='schema'",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ver = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (ver && ver != SCHEMA_VERSION) {
		/* only a cache: start afresh */
		log_info("metadata cache %s has schema %d, this mediafs uses %d: rebuilding it",
			 path, ver, SCHEMA_VERSION);
		if (exec(mc, "DROP TABLE IF EXISTS node; DROP TABLE IF EXISTS remote;"
			     "DELETE FROM meta;") || exec(mc, schema)) {
			rc = db_err(mc, eb, path);
			goto out;
		}
		ver = 0;
	}
	if (!ver) {
		char q[128];

		snprintf(q, sizeof(q),
			 "INSERT OR REPLACE INTO meta VALUES('schema',%d)",
			 SCHEMA_VERSION);
		if (exec(mc, q)) {
			rc = db_err(mc, eb, path);
			goto out;
		}
	}
	for (i = 0; i < S_COUNT; i++)
		if (sqlite3_prepare_v3(mc->db, sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &mc->st[i],
				       NULL) != SQLITE_OK) {
			rc = db_err(mc, eb, "preparing statements");
			goto out;
		}
	if (exec(mc, "INSERT OR IGNORE INTO node(ino,parent,name,kind,key) "
		     "VALUES(1,0,'',2,'')")) {
		rc = db_err(mc, eb, "creating the root");
		goto out;
	}
	{
		/* numbers go on from the last run's */
		sqlite3_stmt *g = NULL;

		mc->gen = 1;
		if (sqlite3_prepare_v2(mc->db, "SELECT max(seen) FROM node",
				       -1, &g, NULL) == SQLITE_OK &&
		    sqlite3_step(g) == SQLITE_ROW)
			mc->gen = sqlite3_column_int64(g, 0) + 1;
		sqlite3_finalize(g);
	}
out:
	if (rc) {
		mcache_close(mc);
		return rc;
	}
	*out = mc;
	return MFS_OK;
}

void mcache_close(struct mcache *mc)
{
	int i;

	if (!mc)
		return;
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(mc->st[i]);
	for (i = 0; i < (int)(1u << MC_SET_NCOLS); i++)
		sqlite3_finalize(mc->set_st[i]);
	if (mc->db)
		sqlite3_close(mc->db);
	pthread_mutex_destroy(&mc->lock);
	free(mc->path);
	free(mc);
}

/* Only the daemon opens the cache, under its cache directory's flock, so
 * the connection may keep its locks: in exclusive locking mode SQLite
 * takes no fcntl locks per transaction (they were three quarters of the
 * daemon's fcntl calls on the write path, ~190 per upload with the
 * journal's) and keeps the WAL index in memory instead of the -shm file.
 * The process that forked this one may hold its shared lock a moment
 * longer, so the first access is retried; if the lock never comes the
 * connection stays in normal mode, as before. */
static void lock_exclusive(struct mcache *mc)
{
	int i;

	if (exec(mc, "PRAGMA locking_mode=EXCLUSIVE"))
		return;
	for (i = 0; i < 300; i++) {
		/* a write takes the exclusive lock and keeps it */
		if (!exec(mc, "BEGIN IMMEDIATE") && !exec(mc, "COMMIT"))
			return;
		exec(mc, "ROLLBACK");
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	}
	log_warn("metadata cache %s: no exclusive lock, normal locking",
		 mc->path);
	exec(mc, "PRAGMA locking_mode=NORMAL");
	exec(mc, "SELECT 1 FROM meta LIMIT 1");
}

enum mfs_err mcache_reopen(struct mcache *mc, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	int i;

	pthread_mutex_lock(&mc->lock);
	for (i = 0; i < S_COUNT; i++) {
		sqlite3_finalize(mc->st[i]);
		mc->st[i] = NULL;
	}
	for (i = 0; i < (int)(1u << MC_SET_NCOLS); i++) {
		sqlite3_finalize(mc->set_st[i]);
		mc->set_st[i] = NULL;
	}
	sqlite3_close(mc->db);
	mc->db = NULL;
	if (sqlite3_open_v2(mc->path, &mc->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = eb_set(eb, MFS_EIO, "cannot reopen metadata cache %s",
			    mc->path);
		goto out;
	}
	sqlite3_busy_timeout(mc->db, 5000);
	if (exec(mc, "PRAGMA synchronous=NORMAL;")) {
		rc = db_err(mc, eb, mc->path);
		goto out;
	}
	lock_exclusive(mc);
	for (i = 0; i < S_COUNT && !rc; i++)
		if (sqlite3_prepare_v3(mc->db, sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &mc->st[i],
				       NULL) != SQLITE_OK)
			rc = db_err(mc, eb, "preparing statements");
out:
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

void mc_node_cleanup(struct mc_node *n)
{
	free(n->key);
	n->key = NULL;
}

static sqlite3_stmt *stmt(struct mcache *mc, enum stmt_id id)
{
	sqlite3_stmt *st = mc->st[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (!t)
		n = 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

static enum mfs_err row_to_node(sqlite3_stmt *st, struct mc_node *n)
{
	const unsigned char *k;

	memset(n, 0, sizeof(*n));
	n->ino = (uint64_t)sqlite3_column_int64(st, 0);
	n->parent = (uint64_t)sqlite3_column_int64(st, 1);
	copy_col(st, 2, n->name, sizeof(n->name));
	n->kind = sqlite3_column_int(st, 3);
	n->rid = sqlite3_column_int(st, 4);
	n->size = (uint64_t)sqlite3_column_int64(st, 5);
	n->mtime_ns = sqlite3_column_int64(st, 6);
	n->mode = (uint32_t)sqlite3_column_int(st, 7);
	n->full = sqlite3_column_int(st, 8);
	n->listed_at = sqlite3_column_int64(st, 9);
	copy_col(st, 10, n->etag, sizeof(n->etag));
	copy_col(st, 11, n->ctype, sizeof(n->ctype));
	k = sqlite3_column_text(st, 12);
	n->key = str_ndup(k ? (const char *)k : "",
			  k ? (size_t)sqlite3_column_bytes(st, 12) : 0);
	n->pending = sqlite3_column_int(st, 13);
	copy_col(st, 14, n->cc, sizeof(n->cc));
	copy_col(st, 15, n->stype, sizeof(n->stype));
	return n->key ? MFS_OK : MFS_ENOMEM;
}

static enum mfs_err one_row(sqlite3_stmt *st, struct mc_node *out)
{
	int r = sqlite3_step(st);
	enum mfs_err rc;

	if (r == SQLITE_DONE)
		rc = MFS_ENOTFOUND;
	else if (r == SQLITE_ROW)
		rc = row_to_node(st, out);
	else
		rc = MFS_EIO;
	sqlite3_reset(st);
	return rc;
}

enum mfs_err mcache_get(struct mcache *mc, uint64_t ino, struct mc_node *out)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_GET);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = one_row(st, out);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_lookup(struct mcache *mc, uint64_t parent,
			   const char *name, struct mc_node *out)
{
	sqlite3_stmt *st;
	enum mfs_err rc;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_LOOKUP);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = one_row(st, out);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

static int step_done(sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	return r == SQLITE_DONE || r == SQLITE_ROW;
}

/* Caller holds lock. */
static int delete_tree(struct mcache *mc, uint64_t ino)
{
	sqlite3_stmt *st = stmt(mc, S_DELETE_TREE);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	return step_done(st);
}

static char *child_key(const char *dirkey, const char *name)
{
	return *dirkey ? str_fmt("%s/%s", dirkey, name) : strdup(name);
}

/* Caller holds lock. Insert one child; *ino gets its number. */
static int insert_child(struct mcache *mc, const struct mc_node *dir,
			const struct mc_entry *e, uint64_t *ino)
{
	sqlite3_stmt *st = stmt(mc, S_INSERT);
	char *key = child_key(dir->key, e->name);
	int ok;

	if (!key)
		return 0;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir->ino);
	sqlite3_bind_text(st, 2, e->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, e->kind);
	sqlite3_bind_int(st, 4, dir->rid);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)e->size);
	/* A directory's mtime is when mediafs first saw it: stable across
	 * remounts, and known as soon as its parent is listed. */
	sqlite3_bind_int64(st, 6, e->kind == MC_DIR && !e->mtime_ns ?
			   mc->now_ns : e->mtime_ns);
	sqlite3_bind_text(st, 7, e->etag ? e->etag : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, mc->seen_now);
	sqlite3_bind_int(st, 10, (int)(e->mode & 07777));
	ok = step_done(st);
	free(key);
	if (ok && ino)
		*ino = (uint64_t)sqlite3_last_insert_rowid(mc->db);
	return ok;
}

/* Caller holds lock: merge one listed entry into dir's children. */
static int merge_entry(struct mcache *mc, const struct mc_node *dir,
		       const struct mc_entry *e)
{
	sqlite3_stmt *st = stmt(mc, S_LOOKUP);
	struct mc_node old;
	enum mfs_err rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir->ino);
	sqlite3_bind_text(st, 2, e->name, -1, SQLITE_STATIC);
	rc = one_row(st, &old);
	if (rc == MFS_ENOTFOUND)
		return insert_child(mc, dir, e, NULL);
	if (rc)
		return 0;
	if (old.kind != e->kind) {
		int64_t seen = 0;

		st = stmt(mc, S_SEEN);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)old.ino);
		if (sqlite3_step(st) == SQLITE_ROW)
			seen = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (old.pending || seen >= mc->seen_now) {
			/* made here since the listing began (or not yet
			 * stored): its older word does not replace it */
			mc_node_cleanup(&old);
			return 1;
		}
		mc_node_cleanup(&old);
		return delete_tree(mc, old.ino) &&
		       insert_child(mc, dir, e, NULL);
	}
	/* keep what a HEAD found while the object is unchanged, and under
	 * listings that carry names only (URL lists: no etag, size, time) */
	if (e->kind == MC_DIR || old.pending ||
	    (old.full && e->etag && *e->etag && !strcmp(old.etag, e->etag)) ||
	    (old.full && (!e->etag || !*e->etag) && !e->size &&
	     !e->mtime_ns)) {
		st = stmt(mc, S_UPDATE_KEEP);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)old.ino);
		sqlite3_bind_int64(st, 2, mc->seen_now);
	} else {
		st = stmt(mc, S_UPDATE_LISTED);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)old.ino);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)e->size);
		sqlite3_bind_int64(st, 3, e->mtime_ns);
		sqlite3_bind_text(st, 4, e->etag ? e->etag : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, mc->seen_now);
		sqlite3_bind_int(st, 6, (int)(e->mode & 07777));
	}
	mc_node_cleanup(&old);
	return step_done(st);
}

int64_t mcache_list_begin(struct mcache *mc)
{
	int64_t t;

	pthread_mutex_lock(&mc->lock);
	t = ++mc->gen;
	pthread_mutex_unlock(&mc->lock);
	return t;
}

enum mfs_err mcache_dir_replace(struct mcache *mc, uint64_t dir,
				const struct mc_entry *e, int n, int64_t now_s,
				struct errbuf *eb)
{
	return mcache_dir_replace_since(mc, dir, e, n, now_s,
					mcache_list_begin(mc), eb);
}

enum mfs_err mcache_dir_replace_since(struct mcache *mc, uint64_t dir,
				      const struct mc_entry *e, int n,
				      int64_t now_s, int64_t since,
				      struct errbuf *eb)
{
	struct mc_node d = { 0 };
	sqlite3_stmt *st;
	uint64_t *gone = NULL;
	int i, ngone = 0, ok = 1;
	enum mfs_err rc;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_GET);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
	rc = one_row(st, &d);
	if (rc) {
		pthread_mutex_unlock(&mc->lock);
		return rc;
	}
	mc->seen_now = since;
	mc->now_ns = now_s * 1000000000;
	if (exec(mc, "BEGIN IMMEDIATE")) {
		rc = db_err(mc, eb, "begin");
		goto out;
	}
	for (i = 0; i < n && ok; i++)
		ok = merge_entry(mc, &d, &e[i]);
	/* sweep children the listing no longer has */
	st = stmt(mc, S_SWEEP_SEL);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
	sqlite3_bind_int64(st, 2, since);
	while (ok && sqlite3_step(st) == SQLITE_ROW) {
		uint64_t *g = realloc(gone, sizeof(*g) * (size_t)(ngone + 1));

		if (!g) {
			ok = 0;
			break;
		}
		gone = g;
		gone[ngone++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	for (i = 0; i < ngone && ok; i++)
		ok = delete_tree(mc, gone[i]);
	if (ok) {
		st = stmt(mc, S_SET_LISTED);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
		sqlite3_bind_int64(st, 2, now_s);
		ok = step_done(st);
	}
	if (!ok || exec(mc, "COMMIT")) {
		rc = db_err(mc, eb, "storing a listing");
		exec(mc, "ROLLBACK");
	}
	log_dbg(LOG_SUB_CACHE, "stored listing of '%s': %d entries, %d gone",
		d.key, n, ngone);
out:
	free(gone);
	mc_node_cleanup(&d);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_children(struct mcache *mc, uint64_t dir,
			     mcache_child_cb cb, void *ud)
{
	sqlite3_stmt *st;
	enum mfs_err rc = MFS_OK;
	int r;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_CHILDREN);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct mc_node n;
		int stop;

		rc = row_to_node(st, &n);
		if (rc)
			break;
		stop = cb(ud, &n);
		mc_node_cleanup(&n);
		if (stop)
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		rc = MFS_EIO;
	sqlite3_reset(st);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_set_full(struct mcache *mc, uint64_t ino, uint64_t size,
			     int64_t mtime_ns, uint32_t mode, const char *etag,
			     const char *ctype, const char *cc)
{
	sqlite3_stmt *st;
	int ok;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_SET_FULL);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, mtime_ns);
	sqlite3_bind_int(st, 4, (int)mode);
	sqlite3_bind_text(st, 5, etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ctype, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, cc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, mc->gen);
	ok = step_done(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_set_sniffed(struct mcache *mc, uint64_t ino,
				const char *etag, const char *type)
{
	sqlite3_stmt *st;
	int ok;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_SET_SNIFFED);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_text(st, 2, etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	ok = step_done(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_invalidate_dir(struct mcache *mc, uint64_t dir)
{
	sqlite3_stmt *st;
	int ok;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_SET_LISTED);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
	sqlite3_bind_int64(st, 2, 0);
	ok = step_done(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_remote(struct mcache *mc, const char *name,
			   const char *ident, int *rid, struct errbuf *eb)
{
	sqlite3_stmt *st = NULL;
	enum mfs_err rc = MFS_OK;
	int found = 0, same = 0;

	pthread_mutex_lock(&mc->lock);
	if (sqlite3_prepare_v2(mc->db,
			       "SELECT rid, ident FROM remote WHERE name=?1",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(mc, eb, "remote");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		found = 1;
		*rid = sqlite3_column_int(st, 0);
		same = !strcmp((const char *)sqlite3_column_text(st, 1), ident);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (found && same)
		goto out;
	if (found) {
		log_info("remote [%s] now points elsewhere (%s); dropping its cached metadata",
			 name, ident);
		sqlite3_prepare_v2(mc->db,
				   "DELETE FROM node WHERE rid=?1 AND ino<>1",
				   -1, &st, NULL);
		sqlite3_bind_int(st, 1, *rid);
		sqlite3_step(st);
		sqlite3_finalize(st);
		sqlite3_prepare_v2(mc->db,
				   "UPDATE remote SET ident=?2 WHERE rid=?1",
				   -1, &st, NULL);
		sqlite3_bind_int(st, 1, *rid);
	} else {
		sqlite3_prepare_v2(mc->db,
				   "INSERT INTO remote(name, ident) VALUES(?1, ?2)",
				   -1, &st, NULL);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 2, ident, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(mc, eb, "remote");
	else if (!found)
		*rid = (int)sqlite3_last_insert_rowid(mc->db);
	sqlite3_finalize(st);
	st = NULL;
	/* root listing may name the dropped tree: list it again */
	if (!rc && found)
		exec(mc, "UPDATE node SET listed_at=0 WHERE ino=1");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_set_root(struct mcache *mc, int rid, const char *key,
			     struct errbuf *eb)
{
	sqlite3_stmt *st = NULL;
	enum mfs_err rc = MFS_OK;
	int same = 0;

	pthread_mutex_lock(&mc->lock);
	if (sqlite3_prepare_v2(mc->db,
			       "SELECT rid=?1 AND key=?2 FROM node WHERE ino=1",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(mc, eb, "root");
		goto out;
	}
	sqlite3_bind_int(st, 1, rid);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		same = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (same)
		goto out;
	if (exec(mc, "DELETE FROM node WHERE ino<>1") ||
	    sqlite3_prepare_v2(mc->db,
			       "UPDATE node SET rid=?1, key=?2, listed_at=0, "
			       "mtime_ns=CAST(strftime('%s','now') AS INTEGER)"
			       "*1000000000 WHERE ino=1", -1, &st, NULL) !=
		    SQLITE_OK) {
		rc = db_err(mc, eb, "root");
		goto out;
	}
	sqlite3_bind_int(st, 1, rid);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(mc, eb, "root");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_ensure_dir(struct mcache *mc, uint64_t parent,
			       const char *name, int rid, const char *key,
			       uint64_t *ino, struct errbuf *eb)
{
	sqlite3_stmt *st;
	struct mc_node old = { 0 };
	enum mfs_err rc;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_LOOKUP);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = one_row(st, &old);
	if (!rc && (old.kind != MC_DIR || old.rid != rid ||
		    strcmp(old.key, key))) {
		delete_tree(mc, old.ino);
		rc = MFS_ENOTFOUND;
	}
	if (!rc) {
		*ino = old.ino;
	} else if (rc == MFS_ENOTFOUND) {
		sqlite3_stmt *ins = NULL;

		rc = MFS_OK;
		if (sqlite3_prepare_v2(mc->db,
				       "INSERT INTO node(parent,name,kind,rid,key,"
				       "mtime_ns) VALUES(?1,?2,2,?3,?4,"
				       "CAST(strftime('%s','now') AS INTEGER)"
				       "*1000000000)", -1, &ins,
				       NULL) != SQLITE_OK)
			rc = db_err(mc, eb, "ensure dir");
		if (!rc) {
			sqlite3_bind_int64(ins, 1, (sqlite3_int64)parent);
			sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
			sqlite3_bind_int(ins, 3, rid);
			sqlite3_bind_text(ins, 4, key, -1, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE)
				rc = db_err(mc, eb, "ensure dir");
			else
				*ino = (uint64_t)sqlite3_last_insert_rowid(mc->db);
		}
		sqlite3_finalize(ins);
	}
	mc_node_cleanup(&old);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

/* ---- local changes ---- */

enum mfs_err mcache_add(struct mcache *mc, uint64_t parent, const char *name,
			int kind, uint64_t size, int64_t mtime_ns,
			uint32_t mode, int pending, uint64_t *ino,
			struct errbuf *eb)
{
	struct mc_node d = { 0 }, old = { 0 };
	sqlite3_stmt *st;
	enum mfs_err rc;
	char *key = NULL;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_GET);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	rc = one_row(st, &d);
	if (rc)
		goto out;
	st = stmt(mc, S_LOOKUP);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = one_row(st, &old);
	if (!rc && old.kind == kind) {
		sqlite3_stmt *up = stmt(mc, S_ADD_UPDATE);

		*ino = old.ino;
		rc = MFS_OK;
		sqlite3_bind_int64(up, 1, (sqlite3_int64)old.ino);
		sqlite3_bind_int64(up, 2, (sqlite3_int64)size);
		sqlite3_bind_int64(up, 3, mtime_ns);
		sqlite3_bind_int(up, 4, (int)mode);
		sqlite3_bind_int(up, 5, pending);
		sqlite3_bind_int64(up, 6, mc->gen);
		if (sqlite3_step(up) != SQLITE_DONE)
			rc = db_err(mc, eb, "add");
		sqlite3_reset(up);
		goto out;
	}
	if (!rc)
		delete_tree(mc, old.ino);	/* kind changed */
	key = child_key(d.key, name);
	rc = key ? MFS_OK : MFS_ENOMEM;
	if (!rc) {
		sqlite3_stmt *ins = stmt(mc, S_ADD_INSERT);

		sqlite3_bind_int64(ins, 1, (sqlite3_int64)parent);
		sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 3, kind);
		sqlite3_bind_int(ins, 4, d.rid);
		sqlite3_bind_int64(ins, 5, (sqlite3_int64)size);
		sqlite3_bind_int64(ins, 6, mtime_ns);
		sqlite3_bind_int(ins, 7, (int)mode);
		sqlite3_bind_text(ins, 8, key, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 9, pending);
		/* a directory made here is empty: its listing is complete */
		sqlite3_bind_int64(ins, 10, kind == MC_DIR ?
				   (sqlite3_int64)(mtime_ns / 1000000000) : 0);
		sqlite3_bind_int64(ins, 11, mc->gen);
		if (sqlite3_step(ins) != SQLITE_DONE)
			rc = db_err(mc, eb, "add");
		else
			*ino = (uint64_t)sqlite3_last_insert_rowid(mc->db);
		/* done: no borrowed text (key is freed below) stays bound */
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
	}
out:
	free(key);
	mc_node_cleanup(&d);
	mc_node_cleanup(&old);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_set(struct mcache *mc, uint64_t ino,
			const struct mc_set *s)
{
	static const char *const col[MC_SET_NCOLS] = {
		"size", "mtime_ns", "mode", "etag", "ctype", "full", "pending",
		"cc",
	};
	unsigned mask = s->mask & ((1u << MC_SET_NCOLS) - 1);
	sqlite3_stmt *st;
	char q[512];
	size_t n;
	int i, b = 2, ok;

	pthread_mutex_lock(&mc->lock);
	st = mc->set_st[mask];
	if (!st) {
		/* a change here: no listing begun before sweeps it */
		n = (size_t)snprintf(q, sizeof(q), "UPDATE node SET seen=?%d",
				     MC_SET_NCOLS + 2);
		for (i = 0; i < MC_SET_NCOLS; i++)
			if (mask & (1u << i))
				n += (size_t)snprintf(q + n, sizeof(q) - n,
						      ",%s=?%d", col[i], b++);
		snprintf(q + n, sizeof(q) - n, " WHERE ino=?1");
		if (!mc->db ||
		    sqlite3_prepare_v3(mc->db, q, -1,
				       SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			sqlite3_finalize(st);
			pthread_mutex_unlock(&mc->lock);
			return MFS_EIO;
		}
		mc->set_st[mask] = st;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	b = 2;
	if (mask & MC_SET_SIZE)
		sqlite3_bind_int64(st, b++, (sqlite3_int64)s->size);
	if (mask & MC_SET_MTIME)
		sqlite3_bind_int64(st, b++, s->mtime_ns);
	if (mask & MC_SET_MODE)
		sqlite3_bind_int(st, b++, (int)s->mode);
	if (mask & MC_SET_ETAG)
		sqlite3_bind_text(st, b++, s->etag ? s->etag : "", -1,
				  SQLITE_STATIC);
	if (mask & MC_SET_CTYPE)
		sqlite3_bind_text(st, b++, s->ctype ? s->ctype : "", -1,
				  SQLITE_STATIC);
	if (mask & MC_SET_FULL)
		sqlite3_bind_int(st, b++, s->full);
	if (mask & MC_SET_PENDING)
		sqlite3_bind_int(st, b++, s->pending);
	if (mask & MC_SET_CC)
		sqlite3_bind_text(st, b++, s->cc ? s->cc : "", -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(st, MC_SET_NCOLS + 2, mc->gen);
	ok = sqlite3_step(st) == SQLITE_DONE;
	/* done with it: no lock held, no borrowed text kept */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_remove(struct mcache *mc, uint64_t ino)
{
	int ok;

	pthread_mutex_lock(&mc->lock);
	ok = delete_tree(mc, ino);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_unpend_files(struct mcache *mc, uint64_t **inos,
				 size_t *n)
{
	sqlite3_stmt *st = NULL;
	uint64_t *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = SQLITE_ERROR, ok = 0;

	*inos = NULL;
	*n = 0;
	pthread_mutex_lock(&mc->lock);
	if (sqlite3_prepare_v2(mc->db, "SELECT ino FROM node WHERE kind=?1 "
			       "AND pending=1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, MC_FILE);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			if (cnt == cap) {
				cap = cap ? cap * 2 : 16;
				nv = realloc(v, sizeof(*v) * cap);
				if (!nv)
					break;
				v = nv;
			}
			v[cnt++] = (uint64_t)sqlite3_column_int64(st, 0);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (r == SQLITE_DONE &&
	    sqlite3_prepare_v2(mc->db, "UPDATE node SET pending=0 WHERE "
			       "kind=?1 AND pending=1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, MC_FILE);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	if (!ok) {
		free(v);
		return MFS_EIO;
	}
	*inos = v;
	*n = cnt;
	return MFS_OK;
}

enum mfs_err mcache_stored_file(struct mcache *mc, int rid, const char *key,
				struct mc_node *out)
{
	sqlite3_stmt *st = NULL;
	enum mfs_err rc = MFS_EIO;

	pthread_mutex_lock(&mc->lock);
	if (sqlite3_prepare_v2(mc->db, "SELECT ino,parent,name,kind,rid,size,"
			       "mtime_ns,mode,full,listed_at,etag,ctype,key,"
			       "pending,cc,NULL FROM node WHERE rid=?1 AND "
			       "key=?2 AND kind=1 AND pending=0", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, rid);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		rc = one_row(st, out);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}

enum mfs_err mcache_forget_key(struct mcache *mc, int rid, const char *key,
			       int *dropped)
{
	sqlite3_stmt *st = NULL;
	int ok;

	if (dropped)
		*dropped = 0;
	pthread_mutex_lock(&mc->lock);
	ok = sqlite3_prepare_v2(mc->db, "DELETE FROM node WHERE rid=?1 AND "
				"key=?2 AND kind=1 AND pending=0 AND ino<>1",
				-1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_int(st, 1, rid);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	if (ok && dropped)
		*dropped = sqlite3_changes(mc->db) > 0;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_mark_get(struct mcache *mc, const char *name,
			     int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int ok;

	*v = 0;
	pthread_mutex_lock(&mc->lock);
	ok = sqlite3_prepare_v2(mc->db, "SELECT v FROM meta WHERE k=?1", -1,
				&st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_mark_set(struct mcache *mc, const char *name, int64_t v)
{
	sqlite3_stmt *st = NULL;
	int ok;

	pthread_mutex_lock(&mc->lock);
	ok = sqlite3_prepare_v2(mc->db, "INSERT OR REPLACE INTO meta "
				"VALUES(?1,?2)", -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&mc->lock);
	return ok ? MFS_OK : MFS_EIO;
}

enum mfs_err mcache_move(struct mcache *mc, uint64_t ino, uint64_t newparent,
			 const char *newname, struct errbuf *eb)
{
	struct mc_node n = { 0 }, np = { 0 }, old = { 0 };
	sqlite3_stmt *st = NULL;
	char *newkey = NULL;
	enum mfs_err rc;

	pthread_mutex_lock(&mc->lock);
	st = stmt(mc, S_GET);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = one_row(st, &n);
	if (!rc) {
		st = stmt(mc, S_GET);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)newparent);
		rc = one_row(st, &np);
	}
	if (rc)
		goto out;
	newkey = child_key(np.key, newname);
	if (!newkey) {
		rc = MFS_ENOMEM;
		goto out;
	}
	if (exec(mc, "BEGIN IMMEDIATE")) {
		rc = db_err(mc, eb, "move");
		goto out;
	}
	st = stmt(mc, S_LOOKUP);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)newparent);
	sqlite3_bind_text(st, 2, newname, -1, SQLITE_STATIC);
	if (!one_row(st, &old) && old.ino != ino)
		delete_tree(mc, old.ino);	/* replaced by the move */
	st = NULL;
	if (sqlite3_prepare_v2(mc->db,
			       "UPDATE node SET parent=?2,name=?3,key=?4,"
			       "seen=?5 WHERE ino=?1", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 5, mc->gen);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)newparent);
	sqlite3_bind_text(st, 3, newname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, newkey, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (n.kind == MC_DIR) {
		/* every descendant's key: old prefix -> new prefix */
		if (sqlite3_prepare_v2(mc->db,
				       "UPDATE node SET key=?3||substr(key,length(?2)+1) "
				       "WHERE rid=?1 AND substr(key,1,length(?2)+1)=?2||'/'",
				       -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int(st, 1, n.rid);
		sqlite3_bind_text(st, 2, n.key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, newkey, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	if (exec(mc, "COMMIT"))
		goto fail;
	goto out;
fail:
	rc = db_err(mc, eb, "move");
	sqlite3_finalize(st);
	exec(mc, "ROLLBACK");
out:
	free(newkey);
	mc_node_cleanup(&n);
	mc_node_cleanup(&np);
	mc_node_cleanup(&old);
	pthread_mutex_unlock(&mc->lock);
	return rc;
}
