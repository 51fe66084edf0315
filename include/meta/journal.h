/* journal.h - the durable journal: one SQLite file per user, or one
 * PostgreSQL database shared by every host's daemons (rows carry the mount
 * id, which then names the host), recording every upload from "pending"
 * (before release() returns) to "done" or "failed", and every rename,
 * delete and mkdir. It is the spine between the daemon and mediactl.
 * Owns: struct journal and its connection. Calls: meta/db (SQLite or
 * libpq through one vtable; the journal's SQL is written once), common.
 * Thread-safe: one connection, every call takes j->lock.
 * Durable against a daemon crash (SQLite: WAL, a committed row is in the
 * OS before the call returns; PostgreSQL: committed on the server); with
 * sync_full a SQLite journal also survives power loss (fsync per commit).
 */
#ifndef MFS_META_JOURNAL_H
#define MFS_META_JOURNAL_H

#include <stdint.h>

#include "common/err.h"

enum jstate { J_PENDING, J_DONE, J_FAILED, J_CANCELLED, J_ROLLEDBACK };

/* One upload. Strings are borrowed on input; on output (journal_pending)
 * they are only valid during the callback. */
struct jrow {
	int64_t id;
	const char *mount_id;
	const char *remote;
	const char *key;
	const char *stage_path;
	const char *label;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	const char *content_type;
	const char *cache_control;
	int state;		/* enum jstate */
	/* Set while the upload runs and the file was renamed or deleted
	 * meanwhile (journal_update_pending writes them before the change is
	 * answered): drop_key is the key the running upload may land under,
	 * which must not stay on the server; discard says the file was
	 * deleted (nothing is to be uploaded). NULL/0 otherwise. */
	const char *drop_key;
	int discard;
	const char *error;	/* output only: why a failed row failed */
};

struct journal;

/* where: a file path (SQLite, created with the schema) or a PostgreSQL
 * connection string (postgres://…, "host=… dbname=…"; the tables are
 * created if missing). Copied; a password in it is never printed. */
enum mfs_err journal_open(const char *where, int sync_full,
			  struct journal **out, struct errbuf *eb);
/* where names a PostgreSQL journal (shared by hosts), not a file. */
int journal_is_shared(const char *where);
/* j lives in PostgreSQL. */
int journal_shared(const struct journal *j);
void journal_close(struct journal *j);
/* Open the file again (in a daemon's child: no connection across fork). */
enum mfs_err journal_reopen(struct journal *j, struct errbuf *eb);

/* A new pending upload; r->id is set. */
enum mfs_err journal_add_pending(struct journal *j, struct jrow *r,
				 struct errbuf *eb);
/* Update what a pending upload will be (rename, attributes, new content):
 * key, stage_path, size, mtime, mode, content type, cache control,
 * drop_key and discard. Its state stays (a failed upload stays failed). */
enum mfs_err journal_update_pending(struct journal *j, const struct jrow *r,
				    struct errbuf *eb);
/* The upload finished: its final facts. Strings borrowed. */
struct jdone {
	const char *key;
	uint64_t size;			/* bytes uploaded */
	const char *sha256;		/* of the bytes uploaded */
	const char *etag;
	const char *url;
	const char *content_type;
	int64_t mtime_ns;
	uint64_t orig_size;		/* what was written (before a hook) */
	const char *orig_sha256;	/* NULL: same as size/sha256 */
	const char *hook;		/* NULL: none */
	const char *hook_result;	/* what the hook did, or why not */
	const char *file_id;		/* the provider's id (ImageKit), or
					 * NULL */
};
enum mfs_err journal_done(struct journal *j, int64_t id,
			  const struct jdone *d, struct errbuf *eb);

/* The latest finished upload of key on remote. */
struct jlast {
	int64_t id;
	uint64_t size;
	char sha256[65];
	char etag[80];
	char url[1024];
	char content_type[128];
	char cache_control[128];
	int64_t mtime_ns;
	uint32_t mode;
	uint64_t orig_size;
	char orig_sha256[65];
	char hook[64];
	char hook_result[256];
};
/* MFS_ENOTFOUND when key never finished an upload. */
enum mfs_err journal_last_done(struct journal *j, const char *remote,
			       const char *key, struct jlast *out);
/* The same, only when that row is the key's last upload row and no
 * delete or rename from or to the key was recorded since it was done: what
 * the store holds under key is what it uploaded. MFS_ENOTFOUND else. */
enum mfs_err journal_last_settled(struct journal *j, const char *remote,
				  const char *key, struct jlast *out);
/* Gave up: the error is kept, the staged file stays. */
enum mfs_err journal_failed(struct journal *j, int64_t id, const char *error,
			    struct errbuf *eb);
/* Superseded before it was uploaded (unlinked, or reopened for writing). */
enum mfs_err journal_cancel(struct journal *j, int64_t id, struct errbuf *eb);

/* Call cb for every pending (and, with failed, failed) upload of mount_id,
 * oldest first. */
typedef void (*journal_row_cb)(void *ud, const struct jrow *r);
enum mfs_err journal_pending(struct journal *j, const char *mount_id,
			     int failed, journal_row_cb cb, void *ud);

/* A multipart upload upload_id of key on remote was started on the server
 * for upload row upload: recorded (durably) until journal_mp_close, so a
 * daemon killed meanwhile can abort it on the next mount. upload_id may
 * also be an intent, JOURNAL_MP_INTENT followed by the row's id, recorded
 * before asking the server to start one: a reply that never came leaves
 * an upload whose id nobody knows, found by listing the key's uploads
 * started since the intent. A row already there is kept as it is (its time
 * too); *created (may be NULL) says whether this call added it. */
#define JOURNAL_MP_INTENT "?start-of-row-"
enum mfs_err journal_mp_open(struct journal *j, const char *mount_id,
			     const char *remote, const char *key,
			     const char *upload_id, int64_t upload,
			     int *created, struct errbuf *eb);
/* Completed or aborted on the server: forget it. */
enum mfs_err journal_mp_close(struct journal *j, const char *remote,
			      const char *upload_id, struct errbuf *eb);
/* Every multipart upload (or intent) mount_id recorded and did not close,
 * oldest first, with the time it was recorded (seconds since the epoch);
 * the strings are valid during the call. cb must not call the journal
 * (its lock is held). */
typedef void (*journal_mp_cb)(void *ud, const char *remote, const char *key,
			      const char *upload_id, double created_at);
enum mfs_err journal_mp_list(struct journal *j, const char *mount_id,
			     journal_mp_cb cb, void *ud);

/* A move on the server in steps (a backend with move_undo: ImageKit's
 * rename to another folder and another name goes through a name of its
 * own) of src to dst (dir: a folder) on remote: recorded (durably) before
 * its first step, until journal_move_close, so the next mount puts back
 * what a daemon killed between the steps left half done. *created: 0 when
 * a record of the same move was there already (an earlier one not
 * settled). */
enum mfs_err journal_move_open(struct journal *j, const char *mount_id,
			       const char *remote, const char *src,
			       const char *dst, int dir, int *created,
			       struct errbuf *eb);
enum mfs_err journal_move_close(struct journal *j, const char *mount_id,
				const char *remote, const char *src,
				const char *dst, struct errbuf *eb);
/* Every move mount_id recorded and did not close, oldest first; the
 * strings are valid during the call, which must not call the journal. */
typedef void (*journal_move_cb)(void *ud, const char *remote,
				const char *src, const char *dst, int dir);
enum mfs_err journal_move_list(struct journal *j, const char *mount_id,
			       journal_move_cb cb, void *ud);

/* Record a rename, delete, mkdir, rmdir or metadata change. */
enum mfs_err journal_event(struct journal *j, const char *mount_id,
			   const char *remote, const char *op,
			   const char *key, const char *new_key,
			   const char *detail);

/* Did key on remote finish an upload in a row newer than id? (Then an
 * object there is that row's, not one row id left behind.) 1 also when
 * the journal cannot tell. */
int journal_done_after(struct journal *j, const char *remote, const char *key,
		       int64_t id);
/* The same, or an upload of another row that finished at key after row id
 * was last written (an older file renamed onto the key while its upload
 * ran, after row id's file was deleted: #15.57's review). */
int journal_done_since(struct journal *j, const char *remote, const char *key,
		       int64_t id);

/* A failed upload goes back to pending (mediactl retry). */
enum mfs_err journal_requeue(struct journal *j, int64_t id, struct errbuf *eb);

/* Run one SQL statement on the journal with params bound as text (NULL:
 * SQL NULL) at ?1, ?2 … (or $1, $2 …); cb gets every result row as text
 * (NULL for SQL NULL), valid during the call; names is NULL; a non-zero
 * return stops. For mediactl's reports and its own tables (copies,
 * daemons); the daemon uses the typed calls above. The SQL must mean the
 * same in SQLite and PostgreSQL where the command serves a shared journal
 * (CASE WHEN, not sum(a=b); LIKE '%/', not substr(k,-1)). At most 64
 * columns. */
typedef int (*journal_sql_cb)(void *ud, int ncol, const char *const *vals,
			      const char *const *names);
enum mfs_err journal_sql(struct journal *j, const char *sql,
			 const char *const *params, int nparams,
			 journal_sql_cb cb, void *ud, struct errbuf *eb);
/* Run one statement that returns no rows; *changes (may be NULL) gets
 * how many rows it changed. */
enum mfs_err journal_exec(struct journal *j, const char *sql,
			  const char *const *params, int nparams,
			  int64_t *changes, struct errbuf *eb);

#endif
