/* upq_marker.c - directory markers of the upload queue: the object "dir/"
 * that keeps an empty directory on a store without folders. A marker item
 * waits (marker_ms, longer while files are on their way) and is dropped
 * when its directory turns out not to be empty (one resumed from an
 * earlier run, which may have stored it, is deleted then).
 * Calls: backend, meta (journal, mcache), common. Every function here runs
 * with q->lock held (see upq.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "upq_int.h"

/* Caller holds lock: marker m is dropped as not needed. One resumed from
 * an earlier run's journal row may be on the store all the same: that run
 * sent it and ended (kill -9) before the answer, and the request landed
 * after it (a slow server, a proxy), or just before the end. The cache
 * takes it as stored, so upqm_clear_above deletes it like any landed
 * marker of a folder that holds files (a DELETE of one that never landed
 * is answered as done). Without this, the folder kept its marker beside
 * its files (#15.44: the model tester's slow seed "s3 11", a kill -9
 * while the marker of y/deep7 was on its way through the proxy, then a
 * folder with files moved into y/deep7). Returns whether it did. */
static int maybe_stored(struct upq *q, const struct item *m)
{
	struct mc_set s = { 0 };

	if (!m->resumed || !q->mc ||
	    !(m->be->ops->caps & BE_CAP_MARKER_OBJECTS))
		return 0;
	s.mask = MC_SET_ETAG;
	s.etag = UPQ_MARKER_ETAG;
	mcache_set(q->mc, m->ino, &s);
	log_dbg(LOG_SUB_UPQ, "marker of %s may have landed in an earlier run: deleting it",
		m->key);
	return 1;
}

/* Caller holds lock: it landed, so its directories exist on the server
 * through it; their queued markers are not needed (one an earlier run may
 * have stored: the caller's upqm_clear_above from it deletes it). */
void upqm_drop_above(struct upq *q, const struct item *it)
{
	struct item *m, *next;

	for (m = q->head; m; m = next) {
		size_t n;

		next = m->next;
		if (!m->marker || m->be != it->be || m->state != S_QUEUED)
			continue;
		n = strlen(m->key);
		if (strncmp(it->key, m->key, n) || it->key[n] != '/')
			continue;
		{
			struct mc_set s = { 0 };

			s.mask = MC_SET_PENDING;
			mcache_set(q->mc, m->ino, &s);
		}
		maybe_stored(q, m);
		journal_cancel(q->j, m->jid, NULL);
		q->st.queued--;
		log_dbg(LOG_SUB_UPQ, "marker of %s not needed: %s landed",
			m->key, it->key);
		upqi_release_item(q, m);
	}
}

/* Caller holds lock: should marker m wait? While files are on their way
 * (being written, or queued: below it, or anywhere, as tools like rsync
 * and cp make directories first and fill them later), a file landing below
 * will make it unnecessary. So whether a folder that gets files also gets
 * a marker does not depend on how fast the machine writes them:
 * - it waits while the writes have been quiet for less than marker_ms (the
 *   moment between two files or two mkdirs of a copy, when no file is open
 *   or queued, is not the end of the copy);
 * - it stops waiting for unrelated files only when no file has landed for
 *   marker_wait_ms (a writer holding a file open, nothing moving). It used
 *   to be its own age: rsync makes the whole tree of folders first, and a
 *   copy slower than a minute (the ASan build on a busy machine) sent the
 *   markers of the folders it had not reached yet (#15.50). */
int upqm_waits(struct upq *q, const struct item *m, int64_t t)
{
	size_t n = strlen(m->key);
	int64_t since = m->created_ms > q->landed_ms ? m->created_ms
						      : q->landed_ms;
	int old = t - since > q->cfg.marker_wait_ms;
	struct item *it;

	if (!old && (q->writers > 0 || t - q->file_ms < q->cfg.marker_ms))
		return 1;

	for (it = q->head; it; it = it->next) {
		if (it->marker || it->recheck || it->state == S_FAILED ||
		    (it->state == S_HELD && upqi_ctl_temp(it->key)))
			continue;	/* (a held temporary may never land) */
		if (!old)
			return 1;
		if (it->be == m->be && !strncmp(it->key, m->key, n) &&
		    it->key[n] == '/')
			return 1;
	}
	return 0;
}

static int count_one(void *ud, const struct mc_node *n)
{
	(void)n;
	*(int *)ud = 1;
	return 1;	/* one is enough */
}

/* Caller holds lock: does marker m's directory hold anything now (a file
 * being written, staged, queued or stored, or a subdirectory)? Then the
 * directory is not empty and needs no marker: whatever is below it keeps
 * it on the server, or queues a marker again when it goes (fs_unlink). This
 * is decided from what exists, not from how long the copy took. */
int upqm_not_needed(struct upq *q, const struct item *m)
{
	int any = 0;

	if (!q->mc || mcache_children(q->mc, m->ino, count_one, &any))
		return 0;
	return any;
}

int upqm_free_drop(struct upq *q, const struct item *m)
{
	return upqm_not_needed(q, m) &&
	       !(m->resumed && (m->be->ops->caps & BE_CAP_MARKER_OBJECTS));
}

static int first_child(void *ud, const struct mc_node *n);

int upqm_skip(struct upq *q, struct item *it)
{
	struct backend *be = it->be;
	struct mc_set s = { 0 };
	uint64_t child = 0;

	if (!upqm_not_needed(q, it))
		return 0;
	s.mask = MC_SET_PENDING;
	mcache_set(q->mc, it->ino, &s);
	if (maybe_stored(q, it))
		mcache_children(q->mc, it->ino, first_child, &child);
	journal_cancel(q->j, it->jid, NULL);
	q->st.queued--;
	log_dbg(LOG_SUB_UPQ, "marker of %s not needed: the directory is not empty",
		it->key);
	it->rc = MFS_OK;
	it->state = S_DONE;
	upqi_release_item(q, it);
	/* (counted as running while it deletes: nobody sees the queue
	 * drained before) */
	if (child)
		upqm_clear_above(q, be, child);
	pthread_cond_broadcast(&q->changed);
	return 1;
}

static int first_child(void *ud, const struct mc_node *n)
{
	*(uint64_t *)ud = n->ino;
	return 1;
}

void upqm_landed(struct upq *q, struct item *it)
{
	struct backend *be = it->be;
	uint64_t ino = it->ino, child = 0;
	struct mc_set s = { 0 };
	struct jdone d = { 0 };
	char *mk = str_fmt("%s/", it->key);

	d.key = mk ? mk : it->key;
	d.content_type = "application/x-directory";
	journal_done(q->j, it->jid, &d, NULL);
	free(mk);
	s.mask = MC_SET_PENDING;
	if (it->be->ops->caps & BE_CAP_MARKER_OBJECTS) {
		/* the cache remembers it, for upqm_clear_above */
		s.mask |= MC_SET_ETAG;
		s.etag = UPQ_MARKER_ETAG;
	}
	mcache_set(q->mc, it->ino, &s);
	/* something arrived in the directory while its marker was on its
	 * way (another writer's object found meanwhile, a file that landed
	 * before the marker was known stored): the marker goes too */
	if ((be->ops->caps & BE_CAP_MARKER_OBJECTS) && q->mc)
		mcache_children(q->mc, ino, first_child, &child);
	q->st.done++;
	it->state = S_DONE;
	upqi_release_item(q, it);
	/* its parents are on the store through it now (from a child: it
	 * too) */
	upqm_clear_above(q, be, child ? child : ino);
}

enum mfs_err upq_clear_markers(struct upq *q, struct backend *be,
			       uint64_t ino)
{
	pthread_mutex_lock(&q->lock);
	upqm_clear_above(q, be, ino);
	pthread_mutex_unlock(&q->lock);
	return MFS_OK;
}

/* The directories above ino whose marker the cache knows is stored. */
struct landed {
	uint64_t ino[UPQM_MAX_DEPTH];
	char *key[UPQM_MAX_DEPTH];
	int n;
};

void upqm_clear_above(struct upq *q, struct backend *be, uint64_t ino)
{
	struct landed l = { .n = 0 };
	struct upqm_clearing c, **pc;
	struct mc_node n;
	int i, depth;

	if (!q->mc || !(be->ops->caps & BE_CAP_MARKER_OBJECTS) ||
	    mcache_get(q->mc, ino, &n))
		return;
	/* up the tree to the remote's top: a handful of cache lookups, no
	 * request unless a marker is known */
	for (depth = 0; depth < UPQM_MAX_DEPTH && n.parent &&
	     n.ino != MC_ROOT_INO; depth++) {
		uint64_t parent = n.parent;

		mc_node_cleanup(&n);
		if (mcache_get(q->mc, parent, &n)) {
			memset(&n, 0, sizeof(n));
			break;
		}
		if (n.kind != MC_DIR || !n.key[0])
			break;
		if (!strcmp(n.etag, UPQ_MARKER_ETAG) &&
		    (!(be->ops->caps & BE_CAP_BUCKETS) || strchr(n.key, '/'))) {
			l.key[l.n] = str_fmt("%s/", n.key);
			if (l.key[l.n])
				l.ino[l.n++] = n.ino;
		}
	}
	mc_node_cleanup(&n);
	if (!l.n)
		return;
	/* claimed before the lock is dropped: files landing in the folder
	 * at the same time (16 workers) do not delete it again, one DELETE
	 * each; a failed delete gives the claim back */
	for (i = 0; i < l.n; i++) {
		struct mc_set s = { 0 };

		s.mask = MC_SET_ETAG;
		s.etag = "";
		mcache_set(q->mc, l.ino[i], &s);
	}
	/* counted as running: the journal row of what landed is done, and
	 * whoever waits for the queue to drain, or asks whether a folder is
	 * settled (user.mediafs.upload_state, fsync of a folder), must wait
	 * for this too: the folder's marker is on the store until the DELETE
	 * is answered (#15.56: a slow server answered it after a settle) */
	c.be = be;
	c.key = l.key;
	c.n = l.n;
	c.next = q->clearing;
	q->clearing = &c;
	q->st.running++;
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < l.n; i++) {
		struct errbuf eb = { 0 };
		struct mc_set s = { 0 };

		if (be->ops->del(be, l.key[i], &eb)) {
			/* it stays; the next file that lands tries again */
			log_warn("could not delete the marker %s of a directory that now holds files: %s",
				 l.key[i], eb.msg);
			s.mask = MC_SET_ETAG;
			s.etag = UPQ_MARKER_ETAG;
			mcache_set(q->mc, l.ino[i], &s);
			continue;
		}
		log_dbg(LOG_SUB_UPQ, "deleted marker %s: the directory holds files",
			l.key[i]);
	}
	pthread_mutex_lock(&q->lock);
	for (pc = &q->clearing; *pc; pc = &(*pc)->next) {
		if (*pc == &c) {
			*pc = c.next;
			break;
		}
	}
	q->st.running--;
	pthread_cond_broadcast(&q->changed);
	for (i = 0; i < l.n; i++)
		free(l.key[i]);
}

int upqm_clearing_under(const struct upq *q, const struct backend *be,
			const char *prefix)
{
	size_t n = strlen(prefix);
	const struct upqm_clearing *c;
	int i, count = 0;

	for (c = q->clearing; c; c = c->next) {
		if (be && c->be != be)
			continue;
		for (i = 0; i < c->n; i++)	/* "dir/": at or below */
			if (!n || (!strncmp(c->key[i], prefix, n) &&
				   c->key[i][n] == '/'))
				count++;
	}
	return count;
}
