/* upq_recheck.c - the landing grace: a key where a request sent before may
 * still land (the upload of a file deleted or renamed while it ran, a
 * killed daemon's upload) is deleted at once and again landing_grace_ms
 * later, unless another file has taken the key meanwhile (a rename onto
 * it: upq_key_taken; a newer upload of it: journal_done_since). A recheck
 * is an item of the queue (it->recheck) that the workers run like an
 * upload. Split from upq.c (the queue and its workers); same locking (see
 * upq.c).
 */
#include "core/upq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "upq_int.h"

/* A recheck item of key (upq_submit_recheck; not queued yet), or NULL
 * when out of memory. stage_path's ownership moves on success. */
static struct item *upqr_new(struct backend *be, const char *key,
			     int64_t jid, int cancel_row, char *stage_path)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it || !(it->key = strdup(key))) {
		free(it);
		return NULL;
	}
	it->recheck = cancel_row ? 2 : 1;
	it->be = be;
	it->jid = jid;
	it->stage_path = stage_path;
	it->created_ms = upqi_now_ms();
	it->state = S_QUEUED;
	return it;
}

/* Caller holds lock: queue recheck item it to run at at_ms. */
static void upqr_queue(struct upq *q, struct item *it, int64_t at_ms)
{
	it->due_ms = it->not_before_ms = at_ms;
	upqi_append_item(q, it);
	q->st.queued++;
	pthread_cond_signal(&q->work);
}

struct item *upqr_start(struct upq *q, struct backend *be, const char *key,
			int64_t jid, int cancel_row, char *stage_path,
			const char *why)
{
	struct item *it = upqr_new(be, key, jid, cancel_row, stage_path);

	if (!it)
		return NULL;
	log_info("%s %s: deleting what may land of it, now%s", key, why,
		 q->cfg.landing_grace_ms >= 0 ? " and after the landing grace"
					      : "");
	it->recheck_again = q->cfg.landing_grace_ms >= 0;
	upqr_queue(q, it, upqi_now_ms());
	return it;
}

/* Without the lock: the DELETE of a recheck item (upq_submit_recheck),
 * unless an upload of its key newer than its row finished (that one is
 * the file now). */
enum mfs_err upqr_run(struct upq *q, struct item *it, const char *key,
		      struct errbuf *eb)
{
	enum mfs_err rc;
	int taken;

	pthread_mutex_lock(&q->lock);
	taken = it->superseded;
	pthread_mutex_unlock(&q->lock);
	if (taken || (it->jid > 0 &&
		      journal_done_since(q->j, it->be->name, key, it->jid))) {
		/* another file has the key now (renamed onto it, a newer
		 * upload landed): the object there is that one's */
		log_dbg(LOG_SUB_UPQ, "%s: another file has that name now: not deleted again",
			key);
		return MFS_OK;
	}
	rc = it->be->ops->del(it->be, key, eb);
	if (rc == MFS_ENOTFOUND)
		return MFS_OK;
	if (!rc) {
		log_dbg(LOG_SUB_UPQ, "%s: deleted again, in case a request sent before landed late",
			key);
		it->deleted = 1;	/* see the worker */
	}
	return rc;
}

/* Caller holds lock: recheck item it ran (rc): queued once more after the
 * grace, or done: its row cancelled (recheck 2) or, on failure, left
 * pending for the next mount, which deletes again. */
static void rechecked(struct upq *q, struct item *it, enum mfs_err rc,
		      const struct errbuf *eb)
{
	if (!rc && it->recheck_again && !it->superseded) {
		it->recheck_again = 0;
		it->state = S_QUEUED;
		it->due_ms = it->not_before_ms =
			upqi_now_ms() + q->cfg.landing_grace_ms;
		q->st.queued++;
		return;
	}
	if (rc)
		log_warn("cannot delete %s, where a request sent before may land late (the next mount tries again): %s",
			 it->key, eb->msg[0] ? eb->msg : mfs_strerror(rc));
	else if (upqi_now_ms() < it->due_ms)
		log_info("%s: checked before its time (unmount): the next mount checks it again",
			 it->key);
	upqi_finish_dropped(q, it, !rc && upqi_now_ms() >= it->due_ms &&
			      it->recheck == 2);
}

void upqr_over(struct upq *q, struct item *it, enum mfs_err rc,
	       const struct errbuf *eb)
{
	struct backend *be = it->be;
	char *gone = !rc && it->deleted && q->forget ? strdup(it->key) : NULL;

	it->deleted = 0;
	rechecked(q, it, rc, eb);	/* it may be gone after */
	if (gone) {
		/* listed meanwhile: it goes from the mount, once the item is
		 * over (the kernel's notice waits for the folder's lock,
		 * which a rename onto the key holds while it waits for
		 * running rechecks: upq_key_taken) */
		pthread_cond_broadcast(&q->changed);
		pthread_mutex_unlock(&q->lock);
		q->forget(q->forget_ctx, be, gone);
		free(gone);
		pthread_mutex_lock(&q->lock);
	}
}

enum mfs_err upq_submit_recheck(struct upq *q, struct backend *be,
				const char *key, int64_t jid, int cancel_row,
				char *stage_path, struct errbuf *eb)
{
	struct item *it;

	if (q->cfg.landing_grace_ms < 0) {
		if (cancel_row)
			journal_cancel(q->j, jid, NULL);
		if (stage_path && cancel_row)
			unlink(stage_path);
		free(stage_path);
		return MFS_OK;
	}
	it = upqr_new(be, key, jid, cancel_row, stage_path);
	if (!it)
		return eb_set(eb, MFS_ENOMEM, "upload queue");
	pthread_mutex_lock(&q->lock);
	upqr_queue(q, it, it->created_ms + q->cfg.landing_grace_ms);
	pthread_mutex_unlock(&q->lock);
	log_dbg(LOG_SUB_UPQ, "%s: deleted again in %ld s, in case a request sent before lands late",
		key, q->cfg.landing_grace_ms / 1000);
	return MFS_OK;
}

enum mfs_err upq_drop_taken(struct upq *q, struct backend *be,
			    const char *key, int64_t jid, struct errbuf *eb)
{
	struct jrow r;

	memset(&r, 0, sizeof(r));
	r.id = jid;
	r.key = key;
	r.drop_key = key;
	r.discard = 1;
	pthread_mutex_lock(&q->lock);
	if (!upqr_start(q, be, key, jid, 1, NULL,
			"was removed while open after an attempt of its upload")) {
		pthread_mutex_unlock(&q->lock);
		return eb_set(eb, MFS_ENOMEM, "upload queue");
	}
	/* its row pending again, said discarded: an unmount or a kill
	 * within the grace leaves the next mount a removed file's row (a
	 * review: cancelled, it left nothing to delete again) */
	journal_requeue(q->j, jid, NULL);
	journal_update_pending(q->j, &r, NULL);
	pthread_mutex_unlock(&q->lock);
	return MFS_OK;
}

void upq_set_forget(struct upq *q,
		    void (*fn)(void *ctx, const struct backend *be,
			       const char *key),
		    void *ctx)
{
	q->forget = fn;
	q->forget_ctx = ctx;
}

int upqi_takes(const struct item *it, const struct backend *be,
	       const char *key, size_t n, int dir)
{
	const char *k[3] = { it->key, it->rename_to, it->moving_to };
	int i;

	if (it->be != be)
		return 0;
	for (i = 0; i < 3; i++)
		if (k[i] && !strncmp(k[i], key, n) &&
		    (dir ? k[i][n] == '/' : !k[i][n]))
			return 1;
	return 0;
}

/* Caller holds lock: recheck item it is over as its key is another
 * file's now (no DELETE); its row too: a later mount must not delete
 * what that file puts there. */
static void supersede(struct upq *q, struct item *it)
{
	it->superseded = 1;
	if (it->recheck == 2) {
		journal_cancel(q->j, it->jid, NULL);
		if (it->stage_path)
			unlink(it->stage_path);
		it->recheck = 1;
	}
}

void upqi_own_rechecks_over(struct upq *q, const struct backend *be,
			    const char *key, int64_t jid)
{
	size_t n = strlen(key);
	struct item *it;

	/* only the upload's own (its row's): another file's recheck of key
	 * stays, as that file's late request may still land there and this
	 * upload may go before it runs (a review). A running one finishes
	 * its DELETE, before the upload (key_busy), and is not queued again
	 * after the grace */
	for (it = q->head; it; it = it->next)
		if (it->recheck && !it->superseded && it->jid == jid &&
		    jid > 0 && upqi_takes(it, be, key, n, 0))
			supersede(q, it);
}

void upq_key_taken(struct upq *q, const struct backend *be, const char *key,
		   int dir, int wait)
{
	size_t n = strlen(key);
	struct item *it, *next;
	int running;

	pthread_mutex_lock(&q->lock);
	do {
		running = 0;
		for (it = q->head; it; it = next) {
			next = it->next;
			if (!upqi_takes(it, be, key, n, dir))
				continue;
			if (it->state == S_RUNNING)
				running = wait;
			else if (it->recheck && !it->superseded)
				supersede(q, it);
		}
		if (running)
			pthread_cond_wait(&q->changed, &q->lock);
	} while (running);
	pthread_mutex_unlock(&q->lock);
}
