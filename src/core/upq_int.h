/* upq_int.h - what upq.c, upq_marker.c, upq_mp.c, upq_query.c and
 * upq_recheck.c share: the queue and its items.
 * Not a public interface: everything else goes through core/upq.h.
 * Locking: q->lock guards the item list and every field marked "guarded"
 * (see upq.c).
 */
#ifndef MFS_CORE_UPQ_INT_H
#define MFS_CORE_UPQ_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/upq.h"

enum ustate { S_HELD, S_QUEUED, S_RUNNING, S_FAILED, S_DONE };

struct item {
	struct item *next;	/* guarded */
	uint64_t ino;
	struct backend *be;
	int64_t jid;
	char *key;		/* guarded */
	char *stage_path;	/* owned by the item */
	uint64_t size;
	struct upq_digest dg;	/* of the staged bytes, when have_dg */
	int have_dg;
	struct upq_meta meta;	/* guarded */
	enum ustate state;	/* guarded */
	int64_t hold_until_ms;	/* guarded: S_HELD until then */
	int64_t not_before_ms;	/* guarded: S_QUEUED does not start before */
	int meta_changed;	/* guarded: while running */
	int sniffed;		/* guarded: meta.content_type came from the
				 * bytes and the name (no setfattr): a
				 * rename after the upload types again */
	char *rename_to;	/* guarded: while running */
	const char *moving_to;	/* guarded: the name after_upload is copying
				 * it to (its rename_to, taken; owned by
				 * after_upload): it may land there too */
	int cancelled;		/* guarded: unlinked while running */
	int tried;		/* guarded: an attempt of it went out, here
				 * or in a killed run (resumed): what it sent
				 * may land, even after it failed */
	atomic_int stop;	/* set with cancelled: the running upload's
				 * requests stop (deadline_watch), so a
				 * deleted file's transfer does not go on */
	int discarded;		/* guarded: cancelled, and what landed was
				 * deleted again: no journal row stays */
	int marker;		/* a directory marker: key is the directory,
				 * no staging file */
	int earlier;		/* guarded: S_FAILED in an earlier run
				 * (resumed so its staged copy serves) */
	int recheck;		/* not an upload: a DELETE of key, whose
				 * upload may land late (upq_submit_recheck);
				 * 2: and its row cancelled after */
	int recheck_again;	/* guarded: the recheck is queued once more
				 * landing_grace_ms after it runs */
	int64_t due_ms;		/* a recheck's time (an unmount runs it
				 * before: its row then stays pending) */
	int deleted;		/* a recheck's DELETE went out (its worker
				 * only): the cache forgets the key after */
	int superseded;		/* guarded: a recheck whose key a rename
				 * is taking (upq_key_taken): no DELETE */
	int resumed;		/* a marker from an earlier run's journal
				 * row: its request may have landed after
				 * that run ended (a kill -9, #15.44) */
	int64_t created_ms;
	int key_waits;		/* guarded: times picking it found its key
				 * busy (upq.c: key_busy) */
	int in_list;		/* guarded */
	int refs;		/* guarded: waiters */
	enum mfs_err rc;	/* guarded: result once finished */
	char error[512];
};

/* A folder moved on the server now (upq_hold_dir): uploads and markers at
 * or below prefix wait until upq_release_dir. */
struct upq_hold {
	struct upq_hold *next;
	const struct backend *be;
	char *prefix;		/* owned */
};

/* Markers upqm_clear_above is deleting, with the lock dropped: the
 * tallies and waits count them (a folder whose marker is still on the
 * store is not settled). Lives on the deleting thread's stack. */
struct upqm_clearing {
	const struct backend *be;
	char **key;		/* "dir/" */
	int n;
	struct upqm_clearing *next;
};

struct upq {
	struct upq_config cfg;
	char *mount_id;
	char *label;
	struct mcache *mc;
	struct journal *j;

	pthread_mutex_t lock;
	pthread_cond_t work;	/* an item became runnable, or stop */
	pthread_cond_t changed;	/* an item finished */
	struct item *head, *tail;	/* guarded */
	struct upq_hold *holds;	/* guarded */
	int stop;		/* guarded */
	int64_t timer_at;	/* guarded: the deadline (now_ms) a worker
				 * sleeps until, 0 if none: the others
				 * sleep until an event */
	int key_waits;		/* guarded: an item waits for a running
				 * upload of its key (key_busy) */
	int writers;		/* guarded: files open for writing (fs) */
	int64_t file_ms;	/* guarded: when (now_ms) a file was last
				 * opened or closed for writing, queued or
				 * landed, or a marker queued (a mkdir): how
				 * long the writes have been quiet */
	int64_t landed_ms;	/* guarded: when a file last landed (the
				 * queue's progress, for markers) */
	struct upq_stats st;	/* guarded */
	struct upqm_clearing *clearing;	/* guarded: marker deletes on
					 * their way (upqm_clear_above) */
	pthread_t *threads;
	int nthreads;
	struct {
		const struct backend *be;
		const struct hook_cfg *cfg;	/* borrowed */
	} hooks[UPQ_MAX_HOOKS];
	int nhooks;		/* set before upq_start, then read-only */
	void (*inval)(void *ctx, uint64_t ino);	/* set before upq_start */
	void *inval_ctx;
	void (*forget)(void *ctx, const struct backend *be, const char *key);
	void *forget_ctx;	/* upq_set_forget, before upq_start */
};

/* upq.c: caller holds lock: the newest item of ino, or NULL. */
struct item *upqi_find(struct upq *q, uint64_t ino);
/* upq_query.c: caller holds lock: sleep on q->changed for at most ms. */
void upqi_wait_changed(struct upq *q, long ms);
/* upq.c: a monotonic clock, in ms. */
int64_t upqi_now_ms(void);
/* upq.c: caller holds lock: drop the list's claim on it (freed unless a
 * waiter holds a reference). */
void upqi_release_item(struct upq *q, struct item *it);
/* upq.c: is key a mediactl copy temporary (".<name>.mctlcp")? */
int upqi_ctl_temp(const char *key);
/* upq.c: caller holds lock: it is over with nothing kept of it; its
 * journal row is cancelled and its staged copy unlinked (cancel_row), or
 * both stay for the next mount. */
void upqi_finish_dropped(struct upq *q, struct item *it, int cancel_row);
/* upq.c: caller holds lock: it goes to the end of the list. */
void upqi_append_item(struct upq *q, struct item *it);

/* upq_recheck.c: caller holds lock: does it take key (n its length; dir:
 * a key below key/)? Its own key, or the name a running upload is being
 * renamed to (rename_to, moving_to). */
int upqi_takes(const struct item *it, const struct backend *be,
	       const char *key, size_t n, int dir);
/* upq_recheck.c: caller holds lock: the upload of journal row jid takes
 * key again (a rename the queue absorbed, back onto a name it had): the
 * rechecks of key its earlier rename queued are over (with its own row,
 * journal_done_since could not tell its landing from an older one) */
void upqi_own_rechecks_over(struct upq *q, const struct backend *be,
			    const char *key, int64_t jid);
/* upq_recheck.c: caller holds lock: a recheck deleting key now and,
 * unless landing_grace is negative, again after it; the log says so after
 * key and why (what happened to the file). stage_path's ownership moves
 * on success; cancel_row: row jid is cancelled once the grace is over.
 * NULL when out of memory. */
struct item *upqr_start(struct upq *q, struct backend *be, const char *key,
			int64_t jid, int cancel_row, char *stage_path,
			const char *why);
/* upq_recheck.c: without the lock: the DELETE of recheck item it, unless
 * another file has its key now. */
enum mfs_err upqr_run(struct upq *q, struct item *it, const char *key,
		      struct errbuf *eb);
/* upq_recheck.c: caller holds lock: recheck item it ran (rc): queued once
 * more after the grace, or over (it may be freed); drops the lock
 * meanwhile to tell the mount a late object it deleted is gone. */
void upqr_over(struct upq *q, struct item *it, enum mfs_err rc,
	       const struct errbuf *eb);

/* upq_mp.c: hex SHA-256 and (md5 non-NULL) hex MD5 of len bytes of fd
 * at off, in one pass; written only on success. */
enum mfs_err upqi_hash_range(int fd, uint64_t off, uint64_t len,
			     char hex[65], char md5[33]);
/* upq_mp.c: upload size bytes of fd as key in parts (upload row jid);
 * out as put() fills it. Called without q->lock. */
enum mfs_err upqi_multipart(struct upq *q, struct backend *be,
			    const char *key, int fd, uint64_t size,
			    const struct put_meta *pm, int64_t jid,
			    struct obj_meta *out, struct errbuf *eb);

/* upq_marker.c: directory markers. Every one: caller holds q->lock. */
/* how many marker deletes on their way are of be (NULL: any) at or below
 * prefix ("" : all) */
int upqm_clearing_under(const struct upq *q, const struct backend *be,
			const char *prefix);
/* it (a file) landed: its directories' queued markers are not needed. */
void upqm_drop_above(struct upq *q, const struct item *it);
/* Should queued marker m (due at t, ms) wait longer? */
int upqm_waits(struct upq *q, const struct item *m, int64_t t);
/* Does marker m's directory hold anything now (then it needs none)? */
int upqm_not_needed(struct upq *q, const struct item *m);
/* Does marker m's directory hold anything now, and can m be dropped
 * without a request (not one an earlier run may have stored)? Then
 * nobody waits for it. */
int upqm_free_drop(struct upq *q, const struct item *m);
/* A worker picked marker it: if its directory is not empty, drop it
 * (journal row cancelled, item released, waiters woken; one an earlier
 * run may have stored is deleted: drops q->lock meanwhile) and return 1. */
int upqm_skip(struct upq *q, struct item *it);
/* Marker it landed: journal row done, directory no longer pending (and,
 * where a marker is an object of its own, known in the cache to have
 * one: its etag is UPQ_MARKER_ETAG), item released; then the markers
 * above it go, and it too if the directory got an entry meanwhile
 * (upqm_clear_above: drops q->lock meanwhile). */
void upqm_landed(struct upq *q, struct item *it);
/* A file of be at cache node ino landed: delete the stored markers of the
 * directories above it that the cache knows of (one DELETE each, none
 * when none is known), so no folder that holds a file keeps a marker.
 * Drops q->lock while it talks to the server. */
#define UPQM_MAX_DEPTH 64
void upqm_clear_above(struct upq *q, struct backend *be, uint64_t ino);

#endif
