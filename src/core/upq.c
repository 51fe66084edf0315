/* upq.c - upload queue and workers.
 *
 * Locking: q->lock guards the item list and every item field marked
 * "guarded"; workers drop it while they talk to the server, having copied
 * what they need (key, path, metadata) while holding it. An item a worker
 * runs is never freed under it: the worker owns it until it finishes.
 * Waiters (fsync, rename/unlink of a running upload) hold a reference and
 * sleep on q->changed, which is broadcast whenever an item finishes.
 * Lock order: q->lock, then the journal's or the cache's own lock.
 */
#include "core/upq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/log.h"
#include "core/hooks.h"
#include "core/moves.h"
#include "core/stage.h"
#include "common/str.h"
#include "upq_int.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* rsync's temporary names: ".<name>.<6 letters or digits>" */
static int rsync_temp(const char *key)
{
	const char *base = strrchr(key, '/');
	size_t n, i;

	base = base ? base + 1 : key;
	n = strlen(base);
	if (n < 9 || base[0] != '.' || base[n - 7] != '.')
		return 0;
	for (i = n - 6; i < n; i++)
		if (!((base[i] >= 'a' && base[i] <= 'z') ||
		      (base[i] >= 'A' && base[i] <= 'Z') ||
		      (base[i] >= '0' && base[i] <= '9')))
			return 0;
	return 1;
}

/* mediactl copy's temporaries (".<name>.mctlcp"): nobody else writes
 * them, and one a killed copy left behind must never reach the server
 * under that name. They are held with no time limit — uploaded only once
 * renamed to their final name, dropped when removed (the next copy run
 * removes them), and kept staged and pending across an unmount. */
static int ctl_temp(const char *key)
{
	const char *base = strrchr(key, '/');
	size_t n;

	base = base ? base + 1 : key;
	n = strlen(base);
	return n > 8 && base[0] == '.' && !strcmp(base + n - 7, ".mctlcp");
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->key);
	free(it->stage_path);
	free(it->rename_to);
	free(it);
}

/* Caller holds lock. */
static struct item *find(struct upq *q, uint64_t ino)
{
	struct item *it, *last = NULL;

	/* the newest item of ino is the one that matters */
	for (it = q->head; it; it = it->next)
		if (it->ino == ino && !it->recheck)
			last = it;
	return last;
}

/* Caller holds lock. */
static void unlink_item(struct upq *q, struct item *it)
{
	struct item **pp, *prev = NULL;

	for (pp = &q->head; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			if (q->tail == it)
				q->tail = prev;
			break;
		}
	it->next = NULL;
	it->in_list = 0;
}

/* Caller holds lock: drop the list's claim on it. */
static void release_item(struct upq *q, struct item *it)
{
	if (it->in_list)
		unlink_item(q, it);
	if (!it->refs)
		item_free(it);
}

struct item *upqi_find(struct upq *q, uint64_t ino)
{
	return find(q, ino);
}

int64_t upqi_now_ms(void)
{
	return now_ms();
}

void upqi_release_item(struct upq *q, struct item *it)
{
	release_item(q, it);
}

int upqi_ctl_temp(const char *key)
{
	return ctl_temp(key);
}

/* jrow_from fills r; for a marker, r->key must outlive r: mkey[] */
static void jrow_from(struct upq *q, const struct item *it, struct jrow *r);

static void jrow_for(struct upq *q, const struct item *it, struct jrow *r,
		     char **mkey)
{
	jrow_from(q, it, r);
	*mkey = NULL;
	if (it->marker) {
		*mkey = str_fmt("%s/", it->key);
		r->key = *mkey;
	}
}

static void jrow_from(struct upq *q, const struct item *it, struct jrow *r)
{
	memset(r, 0, sizeof(*r));
	r->id = it->jid;
	r->mount_id = q->mount_id;
	r->remote = it->be->name;
	r->key = it->key;
	if (it->marker)
		r->key = NULL;	/* set by the caller: "dir/" */
	r->stage_path = it->stage_path;
	r->label = q->label;
	r->size = it->size;
	r->mtime_ns = it->meta.mtime_ns;
	r->mode = it->meta.mode;
	r->content_type = it->meta.content_type[0] ? it->meta.content_type
						   : NULL;
	r->cache_control = it->meta.cache_control[0] ? it->meta.cache_control
						     : NULL;
	if (!it->marker && it->state == S_RUNNING &&
	    (it->rename_to || it->cancelled || it->moving_to)) {
		/* what the running upload lands must go (journal.h); while
		 * after_upload copies it to its new name, that name is the
		 * row's key, so a kill then a delete leaves neither (#15.51:
		 * write c, kill, mv c g, rm g during the copy, kill: the row
		 * said only c, and g stayed on the store) */
		r->drop_key = it->key;
		r->discard = it->cancelled;
		if (it->rename_to)
			r->key = it->rename_to;
		else if (it->moving_to)
			r->key = it->moving_to;
	}
}

/* Caller holds lock: write what it will be to its journal row, before the
 * change that made it so is answered (a kill -9 then loses nothing). */
static void record(struct upq *q, const struct item *it)
{
	struct jrow r;
	char *mk;

	jrow_for(q, it, &r, &mk);
	journal_update_pending(q->j, &r, NULL);
	free(mk);
}

/* Caller holds lock: a failed item leaves the failed count. */
static void unfail(struct upq *q, struct item *it)
{
	q->st.failed--;
	if (it->earlier)
		q->st.failed_before--;
	it->earlier = 0;
}

/* ---- uploading ---- */

static void put_meta_from(const struct upq_meta *m, struct put_meta *pm)
{
	memset(pm, 0, sizeof(*pm));
	pm->content_type = m->content_type[0] ? m->content_type : NULL;
	pm->cache_control = m->cache_control[0] ? m->cache_control : NULL;
	pm->mtime_ns = m->mtime_ns;
	pm->mode = m->mode;
	pm->has_owner = m->has_owner;
	pm->uid = m->uid;
	pm->gid = m->gid;
}

/* A type for an upload nobody gave one: from its first bytes. The
 * generic "don't know" types (what S3 clients store when they were not
 * told, copied over by rsync -X) count as none — unless the name agrees:
 * application/octet-stream given for a key ending in ".bin" is what the
 * writer decided (mediactl copy of a plan's {ext} "bin"), and is kept. */
static void sniff_staged(struct upq *q, int fd, const char *key,
			 struct upq_meta *meta)
{
	char buf[SNIFF_BYTES];
	const char *base = strrchr(key, '/');
	const char *t = meta->content_type;
	size_t kl = strlen(key);
	ssize_t n;

	if (t[0] && strcmp(t, "application/octet-stream") &&
	    strcmp(t, "binary/octet-stream"))
		return;
	if (!strcmp(t, "application/octet-stream") && kl > 4 &&
	    !strcmp(key + kl - 4, ".bin"))
		return;
	n = pread(fd, buf, sizeof(buf), 0);
	sniff_type(q->cfg.sniff, buf, n > 0 ? (size_t)n : 0,
		   base ? base + 1 : key, meta->content_type,
		   sizeof(meta->content_type));
}

/* The type of staged file path under the name key, into meta (a sniffed
 * type is replaced; the file unreadable: meta stays). */
static void resniff(struct upq *q, const char *path, const char *key,
		    struct upq_meta *meta)
{
	struct upq_meta m = *meta;
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;

	if (fd < 0)
		return;
	m.content_type[0] = '\0';
	sniff_staged(q, fd, key, &m);
	close(fd);
	memcpy(meta->content_type, m.content_type, sizeof(m.content_type));
}

static const struct hook_cfg *hook_of(const struct upq *q,
				      const struct backend *be)
{
	int i;

	for (i = 0; i < q->nhooks; i++)
		if (q->hooks[i].be == be)
			return q->hooks[i].cfg;
	return NULL;
}

/* What an upload did, for the journal and the cache. */
struct up_res {
	uint64_t size;		/* bytes uploaded */
	char sha[65];		/* of the bytes uploaded */
	uint64_t orig_size;	/* what was written */
	char orig_sha[65];
	char md5[33];		/* hex MD5 of the bytes uploaded */
	const char *hook;	/* name, NULL when none ran */
	char text[256];		/* the hook's result, or why nothing was sent */
};

/* The same bytes went up from here before (the journal says so, and the
 * server still holds that object): send nothing, or only the metadata.
 * This is what keeps rsync re-runs into a compressing remote free of
 * uploads: the stored object is smaller than its source, so rsync sends
 * the source again every time. Returns 1 when handled. */
static int unchanged(struct upq *q, struct backend *be, const char *key,
		     const struct upq_meta *meta, struct up_res *ur,
		     struct obj_meta *out, enum mfs_err *rc,
		     struct errbuf *eb)
{
	struct jlast prev;
	struct obj_meta now;
	struct put_meta pm;
	struct errbuf heb = { 0 };

	if (journal_last_done(q->j, be->name, key, &prev) ||
	    !prev.orig_sha256[0] || strcmp(prev.orig_sha256, ur->orig_sha) ||
	    prev.orig_size != ur->orig_size)
		return 0;
	/* still there, still that object? */
	if (be->ops->head(be, key, &now, &heb) || now.size != prev.size ||
	    (prev.etag[0] && now.etag[0] && strcmp(prev.etag, now.etag)))
		return 0;
	ur->size = prev.size;
	memcpy(ur->sha, prev.sha256, sizeof(ur->sha));
	/* (a backend that keeps no content type reports none) */
	if (now.mtime_ns == meta->mtime_ns &&
	    (!meta->mode || now.mode == (meta->mode & 07777)) &&
	    (!now.content_type[0] ||
	     !strcmp(now.content_type, meta->content_type[0] ?
		     meta->content_type : "application/octet-stream")) &&
	    !strcmp(now.cache_control, meta->cache_control)) {
		*out = now;
		*rc = MFS_OK;
		snprintf(ur->text, sizeof(ur->text),
			 "unchanged since upload #%lld: not sent",
			 (long long)prev.id);
	} else {
		put_meta_from(meta, &pm);
		*rc = be->ops->copy(be, key, key, &pm, out, eb);
		snprintf(ur->text, sizeof(ur->text),
			 "content unchanged since upload #%lld: metadata updated in place",
			 (long long)prev.id);
	}
	if (prev.hook[0])
		ur->hook = hook_of(q, be) ? hook_of(q, be)->name : NULL;
	log_dbg(LOG_SUB_UPQ, "%s: %s", key, ur->text);
	return 1;
}

static enum mfs_err upload(struct upq *q, struct backend *be, const char *key,
			   const char *path, struct upq_meta *meta,
			   const struct upq_digest *dg,
			   int64_t jid, struct obj_meta *out,
			   struct up_res *ur, struct errbuf *eb)
{
	const struct hook_cfg *hook = hook_of(q, be);
	struct put_meta pm;
	struct put_body body;
	struct stat st;
	struct hook_result hr;
	char hout[PATH_MAX];
	enum mfs_err rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC), hfd = -1;

	if (fd < 0)
		return eb_set(eb, MFS_EIO, "staged file %s: %s", path,
			      strerror(errno));
	if (fstat(fd, &st)) {
		close(fd);
		return eb_set(eb, MFS_EIO, "staged file %s: %s", path,
			      strerror(errno));
	}
	ur->orig_size = ur->size = (uint64_t)st.st_size;
	sniff_staged(q, fd, key, meta);
	if (dg && dg->size == ur->size) {
		/* hashed while it was written: no second pass over it */
		memcpy(ur->orig_sha, dg->sha256, sizeof(ur->orig_sha));
		memcpy(ur->md5, dg->md5, sizeof(ur->md5));
		rc = MFS_OK;
	} else {
		rc = upqi_hash_range(fd, 0, ur->size, ur->orig_sha, ur->md5);
	}
	if (rc) {
		close(fd);
		return eb_set(eb, rc, "reading staged file %s", path);
	}
	memcpy(ur->sha, ur->orig_sha, sizeof(ur->sha));
	if (unchanged(q, be, key, meta, ur, out, &rc, eb)) {
		close(fd);
		return rc;
	}
	if (hook) {
		hook_run(hook, path, meta->content_type[0] ? meta->content_type
			 : "application/octet-stream", hout, sizeof(hout), &hr);
		ur->hook = hook->name;
		memcpy(ur->text, hr.text, sizeof(ur->text));
		if (hr.applied)
			hfd = open(hout, O_RDONLY | O_CLOEXEC);
		if (hfd >= 0 && !fstat(hfd, &st) &&
		    !upqi_hash_range(hfd, 0, (uint64_t)st.st_size, ur->sha,
			       ur->md5)) {
			close(fd);
			fd = hfd;
			ur->size = (uint64_t)st.st_size;
			if (hook->kind == HOOK_EXEC) {
				/* the tool may have changed the format */
				meta->content_type[0] = '\0';
				sniff_staged(q, fd, key, meta);
			}
		} else if (hr.applied) {
			if (hfd >= 0)
				close(hfd);
			memcpy(ur->sha, ur->orig_sha, sizeof(ur->sha));
			snprintf(ur->text, sizeof(ur->text),
				 "failed, original kept: cannot read the hook's output");
		}
		if (hr.applied)
			unlink(hout);	/* fd keeps it readable */
		log_dbg(LOG_SUB_UPQ, "%s: %s %s", key, hook->name, ur->text);
	}
	put_meta_from(meta, &pm);
	if (ur->size >= q->cfg.multipart_threshold && be->ops->mp_begin &&
	    (be->ops->caps & BE_CAP_MULTIPART)) {
		rc = upqi_multipart(q, be, key, fd, ur->size, &pm, jid, out, eb);
	} else {
		body.fd = fd;
		body.off = 0;
		body.len = ur->size;
		body.sha256 = ur->sha;
		body.md5 = ur->md5;
		rc = be->ops->put(be, key, &body, &pm, out, eb);
	}
	close(fd);
	return rc;
}

/* Worker: after a successful upload, apply what changed meanwhile. Caller
 * holds lock; drops it while talking to the server. */
static enum mfs_err after_upload(struct upq *q, struct item *it,
				 struct obj_meta *out, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;

	while (!rc && (it->rename_to || it->meta_changed || it->cancelled)) {
		struct backend *be = it->be;
		char *key = strdup(it->key);
		struct upq_meta meta = it->meta;
		struct put_meta pm;

		if (!key)
			return MFS_ENOMEM;
		put_meta_from(&meta, &pm);
		if (it->cancelled) {
			/* the user deleted it: a rename or metadata change
			 * queued behind the upload is moot (renaming the
			 * deleted object failed the row, and a retry made the
			 * file again) */
			it->cancelled = 0;
			it->discarded = 1;
			it->meta_changed = 0;
			free(it->rename_to);
			it->rename_to = NULL;
			pthread_mutex_unlock(&q->lock);
			rc = it->marker ? be->ops->rmdir(be, key, eb)
					: be->ops->del(be, key, eb);
			pthread_mutex_lock(&q->lock);
		} else if (it->rename_to) {
			char *to = it->rename_to;
			int sniffed = it->sniffed, at_old = 0;

			it->rename_to = NULL;
			it->moving_to = to;
			it->meta_changed = 0;
			pthread_mutex_unlock(&q->lock);
			/* the type is one of the final name: sniffed again
			 * with it, as an upload that started after the rename
			 * would have (the staged file is still here) */
			if (sniffed) {
				resniff(q, it->stage_path, to, &meta);
				put_meta_from(&meta, &pm);
			}
			rc = be->ops->copy(be, key, to, &pm, out, eb);
			if (rc == MFS_EUNSUPP && be->ops->move) {
				/* ImageKit: a copy keeps the file's name, so a
				 * rename behind a running upload failed the row
				 * and the old name came back (#15, found by
				 * the model tester): move it, then give it the
				 * metadata under the new name (recorded: a
				 * kill leaves the row's drop_key for the old
				 * name, the record for a move name) */
				int left = 0;

				rc = moves_begin(q->j, q->mount_id, be, key,
						 to, 0, eb);
				if (!rc)
					rc = moves_move(be, key, to, 0, &left,
							eb);
				at_old = rc != MFS_OK;
				if (!left)	/* moved, or put back */
					moves_end(q->j, q->mount_id, be, key,
						  to, 0);
				if (!rc)
					rc = be->ops->copy(be, to, to, &pm, out,
							   eb);
			} else if (!rc) {
				rc = be->ops->del(be, key, eb);
				at_old = rc != MFS_OK;
			} else {
				at_old = 1;
			}
			if (rc && at_old) {
				/* the copy (or the old name's delete) failed:
				 * the row fails under the new name and a retry
				 * sends the staged file there; what landed
				 * under the old name goes now, or a mount with
				 * a cold cache showed the file again under it */
				struct errbuf e2 = { 0 };

				if (be->ops->del(be, key, &e2))
					log_warn("%s: renamed to %s while uploading; the rename failed, and what landed under the old name cannot be deleted: %s",
						 key, to, e2.msg);
			}
			pthread_mutex_lock(&q->lock);
			if (!rc && sniffed && it->sniffed)
				memcpy(it->meta.content_type,
				       meta.content_type,
				       sizeof(meta.content_type));
			free(it->key);
			it->key = to;
			it->moving_to = NULL;
		} else {
			it->meta_changed = 0;
			pthread_mutex_unlock(&q->lock);
			rc = be->ops->copy(be, key, key, &pm, out, eb);
			pthread_mutex_lock(&q->lock);
		}
		free(key);
		if (!rc && !it->discarded)
			record(q, it);	/* where it is now */
	}
	return rc;
}

/* Caller holds lock: is it at or below a folder being moved (a hold of
 * upq_hold_dir)? */
static int held_by_move(const struct upq *q, const struct item *it)
{
	const struct upq_hold *h;

	for (h = q->holds; h; h = h->next) {
		size_t n = strlen(h->prefix);

		if (it->be == h->be && !strncmp(it->key, h->prefix, n) &&
		    (!it->key[n] || it->key[n] == '/'))
			return 1;
	}
	return 0;
}

enum mfs_err upq_hold_dir(struct upq *q, const struct backend *be,
			  const char *prefix)
{
	struct upq_hold *h = calloc(1, sizeof(*h));

	if (!h || !(h->prefix = strdup(prefix))) {
		free(h);
		return MFS_ENOMEM;
	}
	h->be = be;
	pthread_mutex_lock(&q->lock);
	h->next = q->holds;
	q->holds = h;
	pthread_mutex_unlock(&q->lock);
	return MFS_OK;
}

void upq_release_dir(struct upq *q, const struct backend *be,
		     const char *prefix)
{
	struct upq_hold **p, *h = NULL;

	pthread_mutex_lock(&q->lock);
	for (p = &q->holds; *p; p = &(*p)->next) {
		if ((*p)->be == be && !strcmp((*p)->prefix, prefix)) {
			h = *p;
			*p = h->next;
			break;
		}
	}
	/* (what it held may start now; no deadline of theirs moved) */
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	if (h)
		free(h->prefix);
	free(h);
}

/* Caller holds lock: is an upload running that has landed or may land at
 * its key (its own, the name it is being renamed to) and may still delete
 * it there (cancelled: the file was deleted; renamed: the old name goes)?
 * Then it waits until that one is done: the file deleted while its upload
 * ran and written again under its name was deleted from the store by the
 * old upload once the new one had landed, the mount showing it stored
 * (issue #15, #15.48). The worker that finishes it wakes the queue. */
static int key_busy(struct upq *q, struct item *it)
{
	const struct item *r;

	for (r = q->head; r; r = r->next)
		if (r != it && r->state == S_RUNNING && r->be == it->be &&
		    (!strcmp(r->key, it->key) ||
		     (r->rename_to && !strcmp(r->rename_to, it->key)) ||
		     (r->moving_to && !strcmp(r->moving_to, it->key)))) {
			if (!it->key_waits++)
				log_info("%s waits for an earlier upload of that name to finish",
					 it->key);
			q->key_waits = 1;
			return 1;
		}
	return 0;
}

static struct item *pick(struct upq *q, int64_t *wait_ms)
{
	int64_t t = now_ms();
	struct item *it;

	*wait_ms = -1;
	for (it = q->head; it; it = it->next) {
		if (it->state != S_RUNNING && held_by_move(q, it))
			continue;	/* until upq_release_dir */
		/* a marker waits while files below it are on their way:
		 * when one lands, the marker is dropped */
		if (it->marker && it->state == S_QUEUED &&
		    it->not_before_ms <= t && upqm_waits(q, it, t))
			it->not_before_ms = t + q->cfg.marker_ms;
		if (it->state == S_HELD && ctl_temp(it->key))
			continue;	/* until its rename or removal */
		if (it->state == S_HELD && it->hold_until_ms <= t) {
			log_dbg(LOG_SUB_UPQ, "%s: no rename came; uploading under this name",
				it->key);
			it->state = S_QUEUED;
		}
		if (it->state == S_QUEUED && it->not_before_ms <= t) {
			if (key_busy(q, it))
				continue;	/* until that one is done */
			return it;
		}
		if (it->state == S_HELD &&
		    (*wait_ms < 0 || it->hold_until_ms - t < *wait_ms))
			*wait_ms = it->hold_until_ms - t;
		if (it->state == S_QUEUED &&
		    (*wait_ms < 0 || it->not_before_ms - t < *wait_ms))
			*wait_ms = it->not_before_ms - t;
	}
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Caller holds lock: it is over with nothing kept of it; its journal
 * row is cancelled and its staged copy unlinked (cancel_row), or both
 * stay for the next mount. */
void upqi_finish_dropped(struct upq *q, struct item *it, int cancel_row)
{
	if (cancel_row) {
		journal_cancel(q->j, it->jid, NULL);
		if (it->stage_path)
			unlink(it->stage_path);
	}
	it->rc = MFS_OK;
	it->state = S_DONE;
	release_item(q, it);
}

/* Caller holds lock: it goes to the end of the list. */
void upqi_append_item(struct upq *q, struct item *it)
{
	it->in_list = 1;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
}

/* A landed upload the journal cannot record (its "done" write failed:
 * another process held the journal's write lock past the busy timeout,
 * e.g. a mediactl killed mid-write whose exit waits on this mount) is
 * not answered as done: marked done in the cache, its staged copy gone
 * and its row still pending, it would look stored to the mount (and to
 * a `mediactl copy` run again) while the journal, and every report,
 * verify, rewrite and rollback reading it, never learns of it, and the
 * next mount fails the row ("staged file missing"). The worker tries
 * again with the queue's lock released (the lock's holder may need this
 * mount to let go) until the write succeeds, the item staying
 * "uploading" meanwhile (fsync waits); at shutdown it gives up keeping
 * the staged copy, so the next mount sends the file again. */
static void *worker(void *arg)
{
	struct upq *q = arg;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		struct errbuf eb = { 0 };
		struct obj_meta out = { 0 };
		struct upq_meta meta;
		struct up_res ur = { 0 };
		struct upq_digest dg;
		int have_dg;
		char *key, *url = NULL;
		int64_t wait_ms, jid;
		struct item *it = pick(q, &wait_ms);
		struct errbuf jeb = { 0 };
		int jtries = 0, keep_stage = 0;
		enum mfs_err rc;

		if (!it) {
			int64_t at = now_ms() + wait_ms;

			/* one worker keeps the clock of the next deadline;
			 * the others sleep until an event: were all 16 to
			 * sleep until it, all 16 would wake at each one
			 * (a file closed every 2 ms: 8,000 wake-ups a
			 * second, each taking q->lock) */
			if (wait_ms >= 0 && (!q->timer_at || at < q->timer_at)) {
				struct timespec ts;

				q->timer_at = at;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += wait_ms / 1000;
				ts.tv_nsec += (wait_ms % 1000) * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&q->work, &q->lock, &ts);
				if (q->timer_at == at)
					q->timer_at = 0;
			} else {
				pthread_cond_wait(&q->work, &q->lock);
			}
			continue;
		}
		/* the clock passes on: another worker times what still waits */
		if (!q->timer_at && q->st.queued > 1)
			pthread_cond_signal(&q->work);
		if (it->marker && upqm_skip(q, it))
			continue;
		it->state = S_RUNNING;
		it->tried = !it->marker && !it->recheck;
		q->st.queued--;
		q->st.running++;
		key = strdup(it->key);
		meta = it->meta;
		jid = it->jid;
		dg = it->dg;
		have_dg = it->have_dg;
		pthread_mutex_unlock(&q->lock);

		if (!key)
			rc = MFS_ENOMEM;
		else if (it->recheck)
			rc = upqr_run(q, it, key, &eb);
		else if (it->marker)
			rc = it->be->ops->mkdir(it->be, key, NULL, &eb);
		else {
			deadline_watch(&it->stop);
			rc = upload(q, it->be, key, it->stage_path, &meta,
				    have_dg ? &dg : NULL, jid, &out, &ur,
				    &eb);
			deadline_watch(NULL);
		}
		free(key);

		pthread_mutex_lock(&q->lock);
		if (it->recheck) {
			q->st.running--;
			upqr_over(q, it, rc, &eb);
			goto next;
		}
		if (!rc && !it->meta.content_type[0]) {	/* the sniffed type */
			memcpy(it->meta.content_type, meta.content_type,
			       sizeof(meta.content_type));
			it->sniffed = 1;
		}
		if (!rc)
			rc = after_upload(q, it, &out, &eb);
		q->st.running--;
settle:
		it->rc = rc;
		if (rc && it->cancelled && !it->discarded && !it->marker) {
			/* deleted while uploading, and the upload failed
			 * or was stopped (it->stop): its last request may
			 * have landed all the same (a reset after the body
			 * went), or land later. The item itself is over (a
			 * rename over the file waits for it); its row and
			 * staged copy go to a recheck */
			char why[640];

			if (rc == MFS_EINTR)
				snprintf(why, sizeof(why), "was deleted while uploading; its upload is stopped");
			else
				snprintf(why, sizeof(why), "was deleted while uploading; its upload failed (%s)",
					 eb.msg[0] ? eb.msg : mfs_strerror(rc));
			if (upqr_start(q, it->be, it->key, it->jid, 1,
				       it->stage_path, why)) {
				it->stage_path = NULL;
				upqi_finish_dropped(q, it, 0);
				goto next;
			}
		}
		if (it->discarded || (rc && it->cancelled)) {
			/* deleted by the user while uploading: nothing of it
			 * stays (no failed row a retry would upload again,
			 * no staging file) */
			if (rc)
				log_warn("%s was deleted while uploading; %s: %s",
					 it->key, it->discarded ?
					 "deleting what landed failed" :
					 "its upload failed, nothing to undo",
					 eb.msg[0] ? eb.msg : mfs_strerror(rc));
			upqi_finish_dropped(q, it, 1);
		} else if (!rc && it->marker) {
			upqm_landed(q, it);
		} else if (!rc) {
			struct mc_set s = { 0 };
			struct item *newer;

			q->landed_ms = q->file_ms = now_ms();
			upqm_drop_above(q, it);
			it->be->ops->url(it->be, it->key, &url);
			if (!out.etag[0])
				log_warn("%s: the server sent no ETag", it->key);
			struct jdone d = { 0 };

			d.key = it->key;
			d.size = ur.size;
			d.sha256 = ur.sha;
			d.etag = out.etag;
			d.url = url;
			d.content_type = it->meta.content_type[0] ?
					 it->meta.content_type :
					 "application/octet-stream";
			d.mtime_ns = it->meta.mtime_ns;
			d.orig_size = ur.orig_size;
			d.orig_sha256 = ur.orig_sha;
			d.hook = ur.hook;
			d.hook_result = ur.text[0] ? ur.text : NULL;
			d.file_id = out.id[0] ? out.id : NULL;
			if (journal_done(q->j, it->jid, &d, &jeb)) {
				if (!q->stop) {
					/* see "A landed upload the journal
					 * cannot record" above */
					if (!jtries++)
						log_warn("%s is on the server, but the journal cannot record it yet (%s): trying again until it can",
							 it->key, jeb.msg);
					free(url);
					url = NULL;
					pthread_mutex_unlock(&q->lock);
					sleep_ms(jtries < 5 ? 100L << jtries
							    : 2000);
					pthread_mutex_lock(&q->lock);
					if (!q->stop && (it->rename_to ||
							 it->meta_changed ||
							 it->cancelled))
						rc = after_upload(q, it, &out,
								  &eb);
					goto settle;
				}
				log_err("%s is on the server, but the journal never recorded it (%s): its staged copy %s is kept, the next mount sends it again",
					it->key, jeb.msg, it->stage_path);
				keep_stage = 1;
			} else if (jtries) {
				log_info("%s: recorded in the journal after %d attempts",
					 it->key, jtries + 1);
			}
			s.mask = MC_SET_ETAG | MC_SET_FULL | MC_SET_CTYPE;
			s.etag = out.etag;
			s.full = 1;
			s.ctype = it->meta.content_type[0] ?
				  it->meta.content_type :
				  "application/octet-stream";
			/* a newer version queued meanwhile keeps it pending */
			for (newer = it->next; newer; newer = newer->next)
				if (newer->ino == it->ino)
					break;
			if (!newer) {
				/* what the server holds (a hook's output) */
				s.mask |= MC_SET_PENDING | MC_SET_SIZE;
				s.pending = 0;
				s.size = ur.size;
			}
			mcache_set(q->mc, it->ino, &s);
			/* after the cache says where the bytes are now: a
			 * reader that finds no staged copy finds them there */
			if (!keep_stage)
				stage_done(q->cfg.stage, it->stage_path);
			q->st.done++;
			q->st.bytes_done += ur.size;
			it->state = S_DONE;
			log_dbg(LOG_SUB_UPQ, "uploaded %s (%llu bytes)",
				it->key, (unsigned long long)ur.size);
			free(url);
			{
				uint64_t ino = it->ino;
				struct backend *be = it->be;

				release_item(q, it);
				/* (in the critical section of journal_done:
				 * nobody sees the queue drained before) */
				upqm_clear_above(q, be, ino);
				if (!newer && ur.size != ur.orig_size &&
				    q->inval) {
					/* the kernel still has the size that
					 * was written (outside the lock: the
					 * kernel may call us back) */
					pthread_mutex_unlock(&q->lock);
					q->inval(q->inval_ctx, ino);
					pthread_mutex_lock(&q->lock);
				}
			}
		} else {
			if (it->rename_to) {
				/* renamed meanwhile: a retry goes up under
				 * the name the file has now */
				free(it->key);
				it->key = it->rename_to;
				it->rename_to = NULL;
			}
			it->meta_changed = 0;
			record(q, it);
			snprintf(it->error, sizeof(it->error), "%s",
				 eb.msg[0] ? eb.msg : mfs_strerror(rc));
			log_redact(it->error);
			log_err("upload of %s failed, kept in %s: %s", it->key,
				it->stage_path, it->error);
			journal_failed(q->j, it->jid, it->error, NULL);
			q->st.failed++;
			it->state = S_FAILED;
		}
next:
		pthread_cond_broadcast(&q->changed);
		if (q->key_waits) {	/* see key_busy */
			q->key_waits = 0;
			pthread_cond_broadcast(&q->work);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* ---- API ---- */

enum mfs_err upq_new(const struct upq_config *cfg, struct mcache *mc,
		     struct journal *j, struct upq **out, struct errbuf *eb)
{
	struct upq *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return MFS_ENOMEM;
	q->cfg = *cfg;
	if (q->cfg.workers <= 0)
		q->cfg.workers = 16;
	if (!q->cfg.multipart_threshold)
		q->cfg.multipart_threshold = 64ULL << 20;
	if (q->cfg.part_threads <= 0)
		q->cfg.part_threads = 4;
	if (q->cfg.hold_ms <= 0)
		q->cfg.hold_ms = 5000;
	if (q->cfg.marker_ms <= 0)
		q->cfg.marker_ms = 2000;
	if (q->cfg.marker_wait_ms <= 0)
		q->cfg.marker_wait_ms = 60000;
	if (q->cfg.settle_ms < 0)
		q->cfg.settle_ms = 0;
	else if (!q->cfg.settle_ms)
		q->cfg.settle_ms = 100;
	if (!q->cfg.landing_grace_ms)
		q->cfg.landing_grace_ms = 30000;
	q->mount_id = strdup(cfg->mount_id ? cfg->mount_id : "");
	q->label = cfg->label ? strdup(cfg->label) : NULL;
	q->mc = mc;
	q->j = j;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->changed, NULL);
	q->threads = calloc((size_t)q->cfg.workers, sizeof(*q->threads));
	if (!q->mount_id || !q->threads) {
		upq_free(q);
		return eb_set(eb, MFS_ENOMEM, "upload queue");
	}
	*out = q;
	return MFS_OK;
}

enum mfs_err upq_set_hook(struct upq *q, const struct backend *be,
			  const struct hook_cfg *c)
{
	if (q->nhooks == UPQ_MAX_HOOKS)
		return MFS_ENOMEM;
	q->hooks[q->nhooks].be = be;
	q->hooks[q->nhooks].cfg = c;
	q->nhooks++;
	return MFS_OK;
}

void upq_set_inval(struct upq *q, void (*fn)(void *ctx, uint64_t ino),
		   void *ctx)
{
	q->inval = fn;
	q->inval_ctx = ctx;
}

enum mfs_err upq_start(struct upq *q, struct errbuf *eb)
{
	while (q->nthreads < q->cfg.workers) {
		if (pthread_create(&q->threads[q->nthreads], NULL, worker, q))
			return eb_set(eb, MFS_ENOMEM,
				      "cannot start upload workers");
		q->nthreads++;
	}
	return MFS_OK;
}

void upq_free(struct upq *q)
{
	struct item *it, *next;
	int i;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	/* what is left stays pending in the journal for the next mount */
	for (it = q->head; it; it = next) {
		next = it->next;
		item_free(it);
	}
	while (q->holds) {	/* (none: each caller releases its own) */
		struct upq_hold *h = q->holds;

		q->holds = h->next;
		free(h->prefix);
		free(h);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->changed);
	free(q->threads);
	free(q->mount_id);
	free(q->label);
	free(q);
}

static enum mfs_err submit(struct upq *q, struct backend *be, uint64_t ino,
			   const char *key, char *stage_path, uint64_t size,
			   const struct upq_meta *meta, int64_t jid,
			   const struct upq_digest *dg, int marker,
			   const char *failed, struct errbuf *eb)
{
	struct item *it = calloc(1, sizeof(*it));
	struct jrow r;
	enum mfs_err rc = MFS_OK;

	if (!it || !(it->key = strdup(key))) {
		free(it);
		return MFS_ENOMEM;
	}
	it->marker = marker;
	it->resumed = marker && jid > 0;
	it->created_ms = now_ms();
	it->ino = ino;
	it->be = be;
	it->stage_path = stage_path;
	it->size = size;
	it->meta = *meta;
	it->tried = meta->tried_jid && !marker;
	it->jid = jid;
	if (dg) {
		it->dg = *dg;
		it->have_dg = 1;
	}
	it->state = !marker && rsync_temp(key) ? S_HELD : S_QUEUED;
	it->hold_until_ms = now_ms() + q->cfg.hold_ms;
	it->not_before_ms = now_ms() + (marker ? q->cfg.marker_ms
					       : q->cfg.settle_ms);
	if (failed) {
		it->state = S_FAILED;
		it->earlier = 1;
		it->rc = MFS_EIO;
		snprintf(it->error, sizeof(it->error), "%s", failed);
	}
	if (jid <= 0) {
		/* durable before release() returns */
		char *mk;

		jrow_for(q, it, &r, &mk);
		rc = journal_add_pending(q->j, &r, eb);
		free(mk);
		it->jid = r.id;
	}
	if (rc) {
		it->stage_path = NULL;	/* the caller keeps it on failure */
		item_free(it);
		return rc;
	}
	pthread_mutex_lock(&q->lock);
	q->file_ms = now_ms();	/* a mkdir too: rsync makes its folders first */
	upqi_append_item(q, it);
	if (failed) {
		q->st.failed++;
		q->st.failed_before++;
	} else {
		q->st.queued++;
	}
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	log_dbg(LOG_SUB_UPQ, "queued %s (%llu bytes)%s", key,
		(unsigned long long)size,
		it->state == S_HELD ? ", held for its rename" : "");
	return MFS_OK;
}

void upq_meta_apply(struct upq_meta *dst, unsigned bits,
		    const struct upq_meta *m)
{
	if (bits & UQ_META_MTIME)
		dst->mtime_ns = m->mtime_ns;
	if (bits & UQ_META_MODE)
		dst->mode = m->mode;
	if (bits & UQ_META_OWNER) {
		dst->has_owner = 1;
		dst->uid = m->uid;
		dst->gid = m->gid;
	}
	if (bits & UQ_META_CTYPE)
		memcpy(dst->content_type, m->content_type,
		       sizeof(dst->content_type));
	if (bits & UQ_META_CACHE)
		memcpy(dst->cache_control, m->cache_control,
		       sizeof(dst->cache_control));
}

enum mfs_err upq_submit(struct upq *q, struct backend *be, uint64_t ino,
			const char *key, char *stage_path, uint64_t size,
			const struct upq_meta *meta, int64_t jid,
			const struct upq_digest *dg, struct errbuf *eb)
{
	return submit(q, be, ino, key, stage_path, size, meta, jid, dg, 0,
		      NULL, eb);
}

enum mfs_err upq_submit_failed(struct upq *q, struct backend *be,
			       uint64_t ino, const char *key, char *stage_path,
			       uint64_t size, const struct upq_meta *meta,
			       int64_t jid, const char *error,
			       struct errbuf *eb)
{
	return submit(q, be, ino, key, stage_path, size, meta, jid, NULL, 0,
		      error && *error ? error : "failed in an earlier run", eb);
}

enum mfs_err upq_submit_marker(struct upq *q, struct backend *be, uint64_t ino,
			       const char *dir, int64_t jid,
			       struct errbuf *eb)
{
	struct upq_meta meta = { 0 };

	snprintf(meta.content_type, sizeof(meta.content_type),
		 "application/x-directory");
	return submit(q, be, ino, dir, NULL, 0, &meta, jid, NULL, 1, NULL,
		      eb);
}

enum upq_hit upq_set_meta(struct upq *q, uint64_t ino, unsigned bits,
			  const struct upq_meta *m)
{
	enum upq_hit hit = UQ_NONE;
	struct item *it;

	pthread_mutex_lock(&q->lock);
	it = find(q, ino);
	if (it) {
		upq_meta_apply(&it->meta, bits, m);
		if (bits & UQ_META_CTYPE)
			it->sniffed = 0;	/* given: stays on a rename */
		if (it->state == S_RUNNING) {
			it->meta_changed = 1;
			hit = UQ_AFTER;
		} else {
			hit = UQ_ABSORBED;
		}
		record(q, it);
	}
	pthread_mutex_unlock(&q->lock);
	return hit;
}

int upq_get_meta(struct upq *q, uint64_t ino, struct upq_meta *m)
{
	struct item *it;

	pthread_mutex_lock(&q->lock);
	it = find(q, ino);
	if (it)
		*m = it->meta;
	pthread_mutex_unlock(&q->lock);
	return it != NULL;
}

/* Caller holds lock. */
static enum upq_hit rename_item(struct upq *q, struct item *it,
				const char *new_key)
{
	char *k = strdup(new_key);

	if (!k)
		return UQ_NONE;
	if (it->state == S_RUNNING) {
		free(it->rename_to);
		it->rename_to = k;
		record(q, it);
		return UQ_AFTER;
	}
	/* what an attempt of it left under the old name goes, now and
	 * after the landing grace (a review: it stayed there) */
	if (it->tried && !it->marker)
		upqr_start(q, it->be, it->key, it->jid, 0, NULL,
			   "was renamed after an attempt of its upload");
	free(it->key);
	it->key = k;
	/* renamed back onto a name its own recheck (above) is to delete
	 * again: the file is there now (a review: after the grace its
	 * landed object was deleted) */
	if (!it->marker)
		upqi_own_rechecks_over(q, it->be, k, it->jid);
	if (it->state == S_HELD && !rsync_temp(k)) {
		it->state = S_QUEUED;	/* renamed to its final name */
		pthread_cond_signal(&q->work);
	}
	record(q, it);
	return UQ_ABSORBED;
}

enum upq_hit upq_rename(struct upq *q, uint64_t ino, const char *new_key)
{
	enum upq_hit hit = UQ_NONE;
	struct item *it;

	pthread_mutex_lock(&q->lock);
	for (it = q->head; it; it = it->next)
		if (it->ino == ino && !it->recheck)
			hit = rename_item(q, it, new_key);
	pthread_mutex_unlock(&q->lock);
	return hit;
}

void upq_rename_dir(struct upq *q, const char *old_prefix,
		    const char *new_prefix, struct backend *be,
		    void (*cb)(void *ud, uint64_t ino), void *ud)
{
	size_t n = strlen(old_prefix);
	struct item *it;
	int running;

	pthread_mutex_lock(&q->lock);
	/* running uploads in the subtree finish first, under the old key;
	 * the caller then copies them with everything else. The folder's
	 * own marker too: renamed while running, it was copied as a file
	 * after it landed ("no such object": the row failed, found by the
	 * model tester's slow mode, #15.41). And one renamed into the
	 * subtree while it runs (its rename_to there): its copy to that name
	 * comes after the folder's, into the old folder (#15.62) */
	do {
		running = 0;
		for (it = q->head; it; it = it->next)
			if (it->be == be && it->state == S_RUNNING &&
			    !it->recheck &&
			    (upqi_takes(it, be, old_prefix, n, 1) ||
			     (it->marker && !strcmp(it->key, old_prefix))))
				running = 1;
		if (running)
			pthread_cond_wait(&q->changed, &q->lock);
	} while (running);
	for (it = q->head; it; it = it->next) {
		char *k;

		if (it->be != be || it->recheck ||
		    strncmp(it->key, old_prefix, n) ||
		    (it->key[n] != '/' && !(it->marker && !it->key[n])))
			continue;
		k = str_fmt("%s%s", new_prefix, it->key + n);
		if (k && rename_item(q, it, k) != UQ_NONE && cb &&
		    !it->marker)
			cb(ud, it->ino);
		free(k);
	}
	pthread_mutex_unlock(&q->lock);
}

/* Caller holds lock: wait until ino's newest item is not running. */
static struct item *settled(struct upq *q, uint64_t ino)
{
	struct item *it;

	while ((it = find(q, ino)) && it->state == S_RUNNING)
		pthread_cond_wait(&q->changed, &q->lock);
	return it;
}

int upq_take(struct upq *q, uint64_t ino, char **stage_path,
	     struct upq_meta *meta)
{
	struct item *it;
	int taken = 0;

	*stage_path = NULL;
	pthread_mutex_lock(&q->lock);
	it = settled(q, ino);
	if (it) {
		if (it->state != S_FAILED)
			q->st.queued--;
		else
			unfail(q, it);
		journal_cancel(q->j, it->jid, NULL);
		*stage_path = it->stage_path;
		it->stage_path = NULL;
		*meta = it->meta;
		if (!meta->tried_jid && it->tried)
			meta->tried_jid = it->jid;	/* to what follows */
		release_item(q, it);
		taken = 1;
	}
	pthread_mutex_unlock(&q->lock);
	return taken;
}

/* Caller holds lock: it, tried before (upq_mark_tried) and now waiting
 * (queued, or failed), is dropped as its file is: an attempt of it that
 * failed without an answer, or a killed run's, may have landed or land
 * later, so its key is deleted now and after the landing grace, its row
 * (said discarded, for a kill meanwhile) closed by that recheck. 1 when so
 * handed over, 0 when out of memory (the caller drops it as untried). */
static int drop_tried(struct upq *q, struct item *it)
{
	struct jrow r;

	if (!upqr_start(q, it->be, it->key, it->jid, 1, it->stage_path,
			"was deleted after an attempt of its upload"))
		return 0;
	/* a failed row is pending again: the next mount, after a kill or
	 * an unmount within the grace, deletes it as a removed file's (as
	 * failed it would bring the file back: a review) */
	if (it->state == S_FAILED)
		journal_requeue(q->j, it->jid, NULL);
	jrow_from(q, it, &r);
	r.drop_key = it->key;
	r.discard = 1;
	journal_update_pending(q->j, &r, NULL);
	it->stage_path = NULL;
	release_item(q, it);
	return 1;
}

void upq_mark_tried(struct upq *q, uint64_t ino)
{
	struct item *it;

	pthread_mutex_lock(&q->lock);
	if ((it = find(q, ino)) && !it->marker)
		it->tried = 1;
	pthread_mutex_unlock(&q->lock);
}

int upq_cancel(struct upq *q, uint64_t ino)
{
	struct item *it;
	int after = 0;

	pthread_mutex_lock(&q->lock);
	while ((it = find(q, ino))) {
		if (it->state == S_RUNNING) {
			it->cancelled = 1;	/* deleted when it lands */
			atomic_store(&it->stop, 1);	/* or stops */
			record(q, it);
			after = 1;
			break;
		}
		if (it->state != S_FAILED)
			q->st.queued--;
		else
			unfail(q, it);
		if (it->tried && !it->marker && drop_tried(q, it))
			continue;
		journal_cancel(q->j, it->jid, NULL);
		if (it->stage_path)
			unlink(it->stage_path);
		release_item(q, it);
	}
	pthread_mutex_unlock(&q->lock);
	return after;
}

enum mfs_err upq_wait(struct upq *q, uint64_t ino, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	struct item *it;

	pthread_mutex_lock(&q->lock);
	it = find(q, ino);
	if (it) {
		if (it->state == S_HELD || it->state == S_QUEUED) {
			it->state = S_QUEUED;
			it->not_before_ms = 0;
			pthread_cond_broadcast(&q->work);
		}
		it->refs++;
		while (it->state != S_DONE && it->state != S_FAILED &&
		       !deadline_interrupted())
			upqi_wait_changed(q, 200);
		if (it->state != S_DONE && it->state != S_FAILED)
			rc = eb_set(eb, MFS_EINTR,
				    "interrupted: the upload of %s goes on",
				    it->key);
		else if ((rc = it->rc))
			eb_set(eb, rc, "%s", it->error);
		it->refs--;
		if (!it->refs && !it->in_list)
			item_free(it);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int upq_retry(struct upq *q, const int64_t *jids, int n)
{
	struct item *it;
	int count = 0, i, hit;

	pthread_mutex_lock(&q->lock);
	for (it = q->head; it; it = it->next) {
		if (it->state != S_FAILED)
			continue;
		hit = !jids;
		for (i = 0; !hit && i < n; i++)
			hit = jids[i] == it->jid;
		if (!hit || journal_requeue(q->j, it->jid, NULL))
			continue;
		it->state = S_QUEUED;
		it->not_before_ms = 0;
		it->rc = MFS_OK;
		it->error[0] = '\0';
		unfail(q, it);
		q->st.queued++;
		count++;
	}
	if (count)
		pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	return count;
}

void upq_writers(struct upq *q, int delta)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->writers += delta;
	if (q->writers < 0)
		q->writers = 0;
	q->file_ms = now_ms();
	pthread_mutex_unlock(&q->lock);
}
