/* upq_query.c - what the upload queue holds, and waits on it: a file's
 * upload state, tallies under a folder (mediactl status, the xattrs),
 * waits for a folder's or every upload (fsync of a folder, unmount).
 * Split from upq.c (the queue and its workers); same locking: every
 * function takes q->lock (see upq.c).
 */
#include "core/upq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/deadline.h"
#include "common/log.h"
#include "upq_int.h"

void upqi_wait_changed(struct upq *q, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&q->changed, &q->lock, &ts);
}

enum upq_state upq_state_of(struct upq *q, uint64_t ino, char *err,
			    size_t cap)
{
	enum upq_state st = UPQ_NONE;
	struct item *it;

	pthread_mutex_lock(&q->lock);
	it = upqi_find(q, ino);
	if (it) {
		switch (it->state) {
		case S_HELD:
		case S_QUEUED:
			st = UPQ_PENDING;
			break;
		case S_RUNNING:
			st = UPQ_UPLOADING;
			break;
		case S_FAILED:
			st = UPQ_FAILED;
			if (cap)
				snprintf(err, cap, "%s", it->error);
			break;
		case S_DONE:
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return st;
}

/* Is key at prefix or below it? ("" holds every key) */
static int under(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);

	return !n || (!strncmp(key, prefix, n) &&
		      (key[n] == '\0' || key[n] == '/'));
}

void upq_tally(struct upq *q, const struct backend *be, const char *prefix,
	       struct upq_tally *t, char *list, size_t cap)
{
	struct item *it;
	size_t used = 0;
	int cut = 0;

	memset(t, 0, sizeof(*t));
	if (list && cap)
		list[0] = '\0';
	pthread_mutex_lock(&q->lock);
	for (it = q->head; it; it = it->next) {
		if ((be && it->be != be) || !under(it->key, prefix))
			continue;
		if (it->marker && it->state == S_QUEUED &&
		    upqm_free_drop(q, it))
			continue;	/* will be dropped: nothing to wait for */
		if (it->state == S_HELD || it->state == S_QUEUED) {
			t->pending++;
		} else if (it->state == S_RUNNING) {
			t->uploading++;
		} else if (it->state == S_FAILED) {
			t->failed++;
			if (list && !cut) {
				int n = snprintf(list + used, cap - used,
						 "%s:%s%s: %s\n", it->be->name,
						 it->key, it->marker ? "/" : "",
						 it->error);

				if (n < 0 || (size_t)n >= cap - used ||
				    cap - used - (size_t)n < 5) {
					list[used] = '\0';
					if (cap - used >= 5)
						memcpy(list + used, "...\n", 5);
					cut = 1;
				} else {
					used += (size_t)n;
				}
			}
		}
	}
	t->uploading += (unsigned long)upqm_clearing_under(q, be, prefix);
	pthread_mutex_unlock(&q->lock);
}

enum mfs_err upq_wait_under(struct upq *q, const struct backend *be,
			    const char *prefix, struct errbuf *eb)
{
	struct item *it, *failed;
	int busy;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		busy = 0;
		failed = NULL;
		for (it = q->head; it; it = it->next) {
			if ((be && it->be != be) || !under(it->key, prefix) ||
			    it->recheck)
				continue;	/* (a recheck: not the data's) */
			if (it->state == S_FAILED && !failed)
				failed = it;
			if (it->state == S_FAILED || it->state == S_DONE)
				continue;
			if (it->marker && it->state == S_QUEUED &&
			    upqm_free_drop(q, it))
				continue;	/* will be dropped */
			busy++;
			/* files start now; a directory marker keeps waiting
			 * for a file to land below it (then it is dropped) */
			if (!it->marker && (it->state == S_HELD ||
					    it->state == S_QUEUED)) {
				it->state = S_QUEUED;
				it->not_before_ms = 0;
			}
		}
		busy += upqm_clearing_under(q, be, prefix);
		if (!busy || !q->nthreads)	/* never started: all stays */
			break;
		if (deadline_interrupted()) {	/* (fsync of a folder) */
			pthread_mutex_unlock(&q->lock);
			return eb_set(eb, MFS_EINTR,
				      "interrupted: the uploads go on");
		}
		pthread_cond_broadcast(&q->work);
		/* markers start by the clock, not by an event */
		upqi_wait_changed(q, 200);
	}
	if (failed) {
		enum mfs_err rc = failed->rc ? failed->rc : MFS_EIO;

		eb_set(eb, rc, "upload of %s failed: %s", failed->key,
		       failed->error);
		pthread_mutex_unlock(&q->lock);
		return rc;
	}
	pthread_mutex_unlock(&q->lock);
	return MFS_OK;
}

char *upq_stage_path(struct upq *q, uint64_t ino)
{
	struct item *it;
	char *p = NULL;

	pthread_mutex_lock(&q->lock);
	it = upqi_find(q, ino);
	if (it && it->stage_path)
		p = strdup(it->stage_path);
	pthread_mutex_unlock(&q->lock);
	return p;
}

void upq_drain(struct upq *q)
{
	int64_t last = upqi_now_ms();
	struct item *it;
	int busy;

	if (!q->nthreads)
		return;		/* never started: all stays pending */
	pthread_mutex_lock(&q->lock);
	for (;;) {
		busy = 0;
		for (it = q->head; it; it = it->next) {
			if (it->state == S_HELD && upqi_ctl_temp(it->key))
				continue;	/* stays pending, never sent */
			if (it->state == S_HELD)
				it->state = S_QUEUED;
			it->not_before_ms = 0;
			if (it->state != S_FAILED)
				busy++;
		}
		busy += upqm_clearing_under(q, NULL, "");
		if (!busy)
			break;
		pthread_cond_broadcast(&q->work);
		if (upqi_now_ms() - last >= 2000) {
			log_info("waiting for %d uploads (%lu done, %lu failed)",
				 busy, q->st.done, q->st.failed);
			last = upqi_now_ms();
		}
		upqi_wait_changed(q, 200);
	}
	pthread_mutex_unlock(&q->lock);
}

void upq_stats(struct upq *q, struct upq_stats *st)
{
	pthread_mutex_lock(&q->lock);
	*st = q->st;
	pthread_mutex_unlock(&q->lock);
}
