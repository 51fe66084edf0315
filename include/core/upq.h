/* upq.h - the upload queue: uploads start after release() on a pool of
 * workers, so a sequential cp -r is limited by the server, not by round
 * trips. Owns: the queued items and their staging files, the workers.
 * Calls: backend, meta (journal, mcache), common.
 *
 * Every item is recorded as pending in the journal by upq_submit, before it
 * returns. Until a worker starts it, an item absorbs what happens to its
 * file: a rename changes its key, utimens/chmod/chown/setxattr change its
 * metadata, an unlink cancels it, a reopen for writing takes its staging
 * file back. rsync's temporary files (".name.XXXXXX") are held until they
 * are renamed (at most hold_ms), so rsync's write-close-utimens-chmod-rename
 * costs one upload under the final name with the final metadata. A change
 * that arrives while the upload runs is applied after it (copy in place, or
 * copy + delete for a rename).
 */
#ifndef MFS_CORE_UPQ_H
#define MFS_CORE_UPQ_H

#include <stdint.h>

#include "backend/backend.h"
#include "common/err.h"
#include "meta/journal.h"
#include "meta/mcache.h"
#include "meta/sniff.h"

struct upq;

struct stage;

struct upq_config {
	int workers;			/* default 16 */
	uint64_t multipart_threshold;	/* bytes; default 64 MiB */
	int part_threads;		/* parallel parts per upload, 4 */
	long hold_ms;			/* rsync temp files, default 5000 */
	long marker_ms;			/* directory markers wait this long, and
					 * are dropped if a file lands below
					 * first; default 1000 */
	long marker_wait_ms;		/* a marker stops waiting for files
					 * being written or queued elsewhere
					 * (not below it) once no file has
					 * landed for this long; default
					 * 60000 */
	long settle_ms;			/* others wait this long before they
					 * start, so a write through a dup'd
					 * descriptor right after close() can
					 * take them back; default 100 */
	long landing_grace_ms;		/* a key whose upload may still land
					 * (a request sent by a daemon a kill
					 * stopped, or one that failed with
					 * no answer, its file deleted) is
					 * deleted again this long after;
					 * default 30000, below 0 never */
	const char *mount_id;		/* copied */
	struct sniff *sniff;		/* content types of uploads without
					 * one; NULL: application/octet-stream
					 * (borrowed) */
	const char *label;		/* copied; NULL = none */
	struct stage *stage;		/* a landed file's staging file goes
					 * back to it (stage_done); NULL:
					 * unlinked (borrowed) */
};

/* Metadata an upload will carry. */
struct upq_meta {
	int64_t mtime_ns;
	uint32_t mode;		/* full st_mode */
	int has_owner;
	uint32_t uid, gid;
	char content_type[128];	/* "" = application/octet-stream */
	char cache_control[128];
	int64_t tried_jid;	/* not metadata: the journal row of an upload
				 * this one replaces whose attempt may land (0:
				 * none); upq_take hands it on, so a removal or
				 * a later cancel deletes what it left */
};

enum upq_meta_bits {
	UQ_META_MTIME = 1, UQ_META_MODE = 2, UQ_META_OWNER = 4,
	UQ_META_CTYPE = 8, UQ_META_CACHE = 16,
};

/* Copy the fields named by bits (enum upq_meta_bits) from m into dst. */
void upq_meta_apply(struct upq_meta *dst, unsigned bits,
		    const struct upq_meta *m);

/* What happened to an operation aimed at a queued item. */
enum upq_hit {
	UQ_NONE = 0,		/* no upload for this inode */
	UQ_ABSORBED,		/* changed the queued upload */
	UQ_AFTER,		/* upload running: applied once it is done */
};

/* Items can be submitted at once; nothing uploads before upq_start (so a
 * daemon can fork first). */
enum mfs_err upq_new(const struct upq_config *cfg, struct mcache *mc,
		     struct journal *j, struct upq **out, struct errbuf *eb);
enum mfs_err upq_start(struct upq *q, struct errbuf *eb);
/* fn(ctx, ino) tells the kernel that ino's attributes changed behind its
 * back (a hook made the stored file smaller). Before upq_start. */
void upq_set_inval(struct upq *q, void (*fn)(void *ctx, uint64_t ino),
		   void *ctx);
/* Uploads to be first go through hook c (borrowed; see core/hooks.h).
 * Before upq_start. */
#define UPQ_MAX_HOOKS 64
struct hook_cfg;
enum mfs_err upq_set_hook(struct upq *q, const struct backend *be,
			  const struct hook_cfg *c);
/* Stop the workers (running uploads finish first) and free. */
void upq_free(struct upq *q);

/* The SHA-256 and MD5 of a staged file's bytes, computed while they were
 * written (core/fs_file: strictly in order from offset 0), so the upload
 * need not read the file once more to hash it. */
struct upq_digest {
	uint64_t size;		/* bytes hashed */
	char sha256[65];	/* hex */
	char md5[33];		/* hex */
};
/* An incremental hasher (not thread-safe: its owner locks). NULL: out of
 * memory (then there is no digest; the upload hashes the file). */
struct upq_hasher;
struct upq_hasher *upq_hasher_new(void);
void upq_hasher_free(struct upq_hasher *h);
/* Append n bytes; 0 on success. */
int upq_hasher_add(struct upq_hasher *h, const void *p, size_t n);
uint64_t upq_hasher_size(const struct upq_hasher *h);
/* The digest of what was added so far (h can go on); 0 on success. */
int upq_hasher_digest(const struct upq_hasher *h, struct upq_digest *out);

/* Queue stage_path (ownership moves to the queue) for upload to key on be,
 * for cache node ino. jid > 0 resumes a journal row (crash recovery);
 * otherwise a pending row is written before this returns. dg (may be
 * NULL, copied): the hashes of the staged bytes; used only while the
 * staged file still has dg->size bytes. The caller guarantees the file
 * is not written while it is queued (a writer takes it back, upq_take, or
 * continues on a copy). */
enum mfs_err upq_submit(struct upq *q, struct backend *be, uint64_t ino,
			const char *key, char *stage_path, uint64_t size,
			const struct upq_meta *meta, int64_t jid,
			const struct upq_digest *dg, struct errbuf *eb);

/* Keep stage_path (ownership moves) of an upload that failed in an earlier
 * run (journal row jid, reason error) as a failed upload of ino: its
 * staged copy serves reads, and upq_retry (mediactl retry) sends it. */
enum mfs_err upq_submit_failed(struct upq *q, struct backend *be,
			       uint64_t ino, const char *key, char *stage_path,
			       uint64_t size, const struct upq_meta *meta,
			       int64_t jid, const char *error,
			       struct errbuf *eb);

/* Queue the marker object "dir/" that keeps an empty directory on the
 * server (journaled as key "dir/"). It is dropped when an upload below the
 * directory succeeds first: then the directory exists through its files.
 * jid > 0 resumes a journal row. */
enum mfs_err upq_submit_marker(struct upq *q, struct backend *be, uint64_t ino,
			       const char *dir, int64_t jid,
			       struct errbuf *eb);

/* key on be may still get an object from a request sent before: one a
 * daemon killed had sent (its whole body with the server, or a proxy), or
 * one that failed without an answer. It was deleted now; it is deleted
 * again landing_grace_ms later (a request lands late, after the delete:
 * issue #15, #15.57), unless an upload of key newer than journal row jid
 * finished meanwhile, or a rename took the key (upq_key_taken: that one
 * is the file then). cancel_row: the row jid
 * is cancelled after, and stage_path (may be NULL; ownership moves)
 * unlinked; a failed delete keeps the row pending (the next mount deletes
 * again). The key shows pending under its folder until then; an unmount
 * before leaves it to the next mount. */
enum mfs_err upq_submit_recheck(struct upq *q, struct backend *be,
				const char *key, int64_t jid, int cancel_row,
				char *stage_path, struct errbuf *eb);

/* A rename is about to put a file at key on be (dir: a folder, the keys
 * below key/): a queued recheck there deletes nothing and its row is over
 * (the object there will be the renamed one's). wait (the rename stores
 * the object itself, a server copy or move): an upload, marker or recheck
 * running there is waited for first (a deleted file's upload deletes
 * what it lands; a rename in the queue is ordered by the queue). */
void upq_key_taken(struct upq *q, const struct backend *be, const char *key,
		   int dir, int wait);

/* fn(ctx, be, key): a recheck deleted key (a late landing): a file the
 * cache has there is that object, listed meanwhile; fn drops it. Before
 * upq_start. */
void upq_set_forget(struct upq *q,
		    void (*fn)(void *ctx, const struct backend *be,
			       const char *key),
		    void *ctx);

/* A directory's etag in the cache while its marker object is known to be
 * stored (on a backend with BE_CAP_MARKER_OBJECTS): the ETag of an empty
 * object. A file that lands below deletes it (one request). */
#define UPQ_MARKER_ETAG "d41d8cd98f00b204e9800998ecf8427e"

/* Something (a file or directory) arrived at cache node ino of be without
 * an upload (a rename, or another writer's object the mount found):
 * delete the stored markers the cache knows of in the directories above
 * it, one request each. Thread-safe. */
enum mfs_err upq_clear_markers(struct upq *q, struct backend *be,
			       uint64_t ino);

/* A file was opened for writing (+1) or its last writer closed (-1): a
 * queued directory marker waits while any file is open for writing, as a
 * file about to land below it would make it unnecessary. */
void upq_writers(struct upq *q, int delta);

/* Change the metadata (bits of enum upq_meta_bits) of ino's upload. */
enum upq_hit upq_set_meta(struct upq *q, uint64_t ino, unsigned bits,
			  const struct upq_meta *m);
/* Give ino's upload the key new_key (a rename before upload). */
enum upq_hit upq_rename(struct upq *q, uint64_t ino, const char *new_key);
/* Rename every queued upload under directory old_prefix to new_prefix;
 * waits for running ones in that subtree first (they land under the old
 * key). cb (may be NULL) gets the inode of every file upload renamed (it
 * goes up under its new key), called with the queue's lock held: it must
 * not call the queue. */
void upq_rename_dir(struct upq *q, const char *old_prefix,
		    const char *new_prefix, struct backend *be,
		    void (*cb)(void *ud, uint64_t ino), void *ud);
/* Hold every upload and marker of be at or below directory prefix (also
 * ones queued or renamed there later) until upq_release_dir: a folder
 * moved by the provider itself (ImageKit's bulk jobs) must be in place
 * before anything lands below its new name, or the move, landing after,
 * puts the older version back over it (issue #15, replay case
 * 15.30-pwrite-then-folder-move-imagekit). Running uploads are not
 * stopped. Holds nest; MFS_ENOMEM when none could be made. */
enum mfs_err upq_hold_dir(struct upq *q, const struct backend *be,
			  const char *prefix);
/* End one hold of upq_hold_dir (same be and prefix); held items start. */
void upq_release_dir(struct upq *q, const struct backend *be,
		     const char *prefix);
/* Take back a queued upload's staging file (reopen for writing, truncate):
 * returns 1 with *stage_path (caller owns it) and *meta, cancelling the
 * upload; a running upload is waited for and 0 returned. */
int upq_take(struct upq *q, uint64_t ino, char **stage_path,
	     struct upq_meta *meta);
/* Cancel ino's upload (unlink). Returns 1 if an upload of it completed (the
 * object may exist on the server), else 0. An upload tried before (it
 * failed, or a killed run sent it) has its key deleted now and after the
 * landing grace (what its attempt sent may land). */
int upq_cancel(struct upq *q, uint64_t ino);
/* ino's upload was resumed from a killed run's row: an attempt of it may
 * be on its way (upq_cancel deletes what may land). */
void upq_mark_tried(struct upq *q, uint64_t ino);
/* A file removed while a writer held an upload it took back, tried before
 * (upq_meta.tried_jid = jid): key is deleted now and after the landing
 * grace, row jid pending (discarded) until then. */
enum mfs_err upq_drop_taken(struct upq *q, struct backend *be,
			    const char *key, int64_t jid, struct errbuf *eb);
/* Wait until ino has no queued or running upload (held ones start now);
 * returns the last result for ino (MFS_OK if there was none). */
enum mfs_err upq_wait(struct upq *q, uint64_t ino, struct errbuf *eb);
/* Upload state of ino's newest upload (a user-visible xattr): */
enum upq_state { UPQ_NONE, UPQ_PENDING, UPQ_UPLOADING, UPQ_FAILED };
/* UPQ_NONE when ino has no queued, running or failed upload; for
 * UPQ_FAILED the reason goes to err (cap bytes, NUL-terminated). */
enum upq_state upq_state_of(struct upq *q, uint64_t ino, char *err,
			    size_t cap);

/* Uploads of backend be (NULL: every backend) at key prefix or below it
 * (prefix "" = all of them), directory markers included. */
struct upq_tally {
	unsigned long pending;		/* held or queued */
	unsigned long uploading;
	unsigned long failed;
};
/* Count them; when list is not NULL, append one line per failed upload,
 * "REMOTE:KEY: reason\n", as far as cap bytes allow (always
 * NUL-terminated; a last line "...\n" says some were left out). */
void upq_tally(struct upq *q, const struct backend *be, const char *prefix,
	       struct upq_tally *t, char *list, size_t cap);
/* Wait until none of them is held, queued or running (held and queued
 * ones start now, as for upq_wait). Returns MFS_OK when none failed, else
 * the error of the first failed one, with "KEY: reason" in eb. */
enum mfs_err upq_wait_under(struct upq *q, const struct backend *be,
			    const char *prefix, struct errbuf *eb);
/* Path of ino's staged content while its upload is queued, running or
 * failed (for reads), malloc'd; NULL if none. */
char *upq_stage_path(struct upq *q, uint64_t ino);
/* Metadata of ino's queued upload; 0 if none. */
int upq_get_meta(struct upq *q, uint64_t ino, struct upq_meta *m);
/* Wait for every upload; prints progress through log_info every 2 s. */
void upq_drain(struct upq *q);

struct upq_stats {
	unsigned long queued, running, done, failed;
	unsigned long failed_before;	/* of failed: failed in an earlier
					 * run, not retried in this one */
	uint64_t bytes_done;
};
void upq_stats(struct upq *q, struct upq_stats *st);
/* Queue failed uploads again (mediactl retry): those whose journal id is
 * in jids[0..n), or every one when jids is NULL. Their journal rows go
 * back to pending. Returns how many were queued. */
int upq_retry(struct upq *q, const int64_t *jids, int n);

#endif
