/* fs_resume.c - crash recovery at mount: the journal's pending uploads
 * are queued again (and their files made visible in the cache, with the
 * ETag of what a killed daemon's request may have stored already), the
 * changes a killed daemon had journaled for a running upload (a rename,
 * a delete) are finished, uploads that failed in an earlier run are kept
 * readable from their staged copies, and multipart uploads left open are
 * aborted. Runs before the queue starts and before the mount answers.
 * Calls: backend, meta (journal, mcache), core/upq, core/stage, common.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/str.h"
#include "fs_int.h"
#include "core/stage.h"

/* A row seen while the journal reads out (its lock held: no journal calls
 * then), acted on once it has: its strings are copies. */
enum fix_kind {
	FIX_DROP,	/* delete key (a running upload's old name) */
	FIX_DISCARD,	/* the file was deleted: delete key, cancel the row */
	FIX_LOST,	/* staged file gone: mark the row failed */
	FIX_FAILED,	/* failed earlier: keep it readable, retryable */
	FIX_LANDED,	/* resumed: what its killed upload stored, if any,
			 * is known to the cache (after every other fix) */
};

struct fixup {
	enum fix_kind kind;
	struct fs_remote *rem;
	uint64_t ino;		/* FIX_LANDED: the file's cache node */
	struct jrow r;		/* strings below, or NULL */
	char *key, *stage_path, *content_type, *cache_control, *error;
};

struct resume {
	struct fs *fs;
	int resumed, lost;
	char **keep;		/* staged files the journal still needs */
	int nkeep, capkeep;
	struct fixup *fix;
	int nfix, capfix;
};

/* The new fixup (NULL when out of memory: then none). */
static struct fixup *add_fix(struct resume *res, enum fix_kind kind,
			     struct fs_remote *rem, const struct jrow *r,
			     const char *key)
{
	struct fixup *f;

	if (res->nfix == res->capfix) {
		int ncap = res->capfix ? res->capfix * 2 : 16;
		struct fixup *v = realloc(res->fix, sizeof(*v) * (size_t)ncap);

		if (!v)
			return NULL;
		res->fix = v;
		res->capfix = ncap;
	}
	f = &res->fix[res->nfix++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->rem = rem;
	f->r = *r;
	f->key = key ? strdup(key) : NULL;
	f->stage_path = r->stage_path ? strdup(r->stage_path) : NULL;
	f->content_type = r->content_type ? strdup(r->content_type) : NULL;
	f->cache_control = r->cache_control ? strdup(r->cache_control) : NULL;
	f->error = r->error ? strdup(r->error) : NULL;
	f->r.key = f->key;
	f->r.stage_path = f->stage_path;
	f->r.content_type = f->content_type;
	f->r.cache_control = f->cache_control;
	f->r.error = f->error;
	f->r.remote = f->r.mount_id = f->r.label = f->r.drop_key = NULL;
	return f;
}

static void fix_cleanup(struct fixup *f)
{
	free(f->key);
	free(f->stage_path);
	free(f->content_type);
	free(f->cache_control);
	free(f->error);
}

struct fs_remote *fsi_remote_named(struct fs *fs, const char *name)
{
	int i;

	for (i = 0; name && i < fs->cfg.nremotes; i++)
		if (!strcmp(fs->cfg.remotes[i].name, name))
			return &fs->cfg.remotes[i];
	return NULL;
}

static void keep_path(void *ud, const struct jrow *r)
{
	struct resume *res = ud;
	struct fs_remote *rem;

	if (!r->stage_path)
		return;
	if (r->state == J_FAILED && r->key && !str_ends(r->key, "/") &&
	    (rem = fsi_remote_named(res->fs, r->remote)))
		add_fix(res, FIX_FAILED, rem, r, r->key);
	if (res->nkeep == res->capkeep) {
		int ncap = res->capkeep ? res->capkeep * 2 : 64;
		char **k = realloc(res->keep, sizeof(*k) * (size_t)ncap);

		if (!k)
			return;
		res->keep = k;
		res->capkeep = ncap;
	}
	res->keep[res->nkeep] = strdup(r->stage_path);
	if (res->keep[res->nkeep])
		res->nkeep++;
}

/* The directory node for key below top, creating it and its parents. */
static enum mfs_err dir_for_key(struct fs *fs, const struct mc_node *top,
				const char *key, uint64_t *ino,
				struct errbuf *eb)
{
	const char *rel = key + strlen(top->key);
	uint64_t dir = top->ino;
	enum mfs_err rc = MFS_OK;

	if (*top->key) {
		if (strncmp(key, top->key, strlen(top->key)) || *rel != '/')
			return eb_set(eb, MFS_EINVAL, "%s is outside this mount",
				      key);
		rel++;
	}
	while (!rc && *rel) {
		const char *slash = strchr(rel, '/');
		size_t len = slash ? (size_t)(slash - rel) : strlen(rel);
		char *name = str_ndup(rel, len);
		struct mc_node n;

		if (!name)
			return MFS_ENOMEM;
		rc = mcache_lookup(fs->mc, dir, name, &n);
		if (!rc) {
			dir = n.ino;
			mc_node_cleanup(&n);
		} else if (rc == MFS_ENOTFOUND) {
			rc = mcache_add(fs->mc, dir, name, MC_DIR, 0,
					fsi_now_ns(), 0, 1, &dir, eb);
			if (!rc)	/* not known to be complete */
				mcache_invalidate_dir(fs->mc, dir);
		}
		free(name);
		rel += len;
		if (*rel == '/')
			rel++;
	}
	*ino = dir;
	return rc;
}

/* The node for key below top, creating directories as needed. */
static enum mfs_err node_for_key(struct fs *fs, const struct mc_node *top,
				 const char *key, const struct jrow *r,
				 uint64_t *ino, struct errbuf *eb)
{
	const char *slash = strrchr(key, '/');
	char *dirkey = slash ? str_ndup(key, (size_t)(slash - key)) :
			       strdup("");
	uint64_t dir = top->ino;
	enum mfs_err rc = dirkey ? MFS_OK : MFS_ENOMEM;
	struct stat st;

	if (!rc && strcmp(dirkey, top->key))
		rc = dir_for_key(fs, top, dirkey, &dir, eb);
	free(dirkey);
	if (rc)
		return rc;
	if (stat(r->stage_path, &st))
		st.st_size = (off_t)r->size;
	return mcache_add(fs->mc, dir, slash ? slash + 1 : key, MC_FILE,
			  (uint64_t)st.st_size, r->mtime_ns, r->mode & 07777,
			  1, ino, eb);
}

/* Put r's file into the cache and queue its upload (failed: keep it as a
 * failed upload, with reason failed); *inop (when not NULL) gets its cache
 * node. */
static enum mfs_err resume_file(struct fs *fs, struct fs_remote *rem,
				const struct jrow *r, const char *failed,
				uint64_t *inop, struct errbuf *eb)
{
	struct upq_meta meta = { 0 };
	struct mc_node top = { 0 };
	struct stat st;
	uint64_t ino = 0;
	enum mfs_err rc;
	char *path;

	if (stat(r->stage_path, &st))
		return eb_set(eb, MFS_ENOTFOUND, "its staged file %s is gone",
			      r->stage_path);
	rc = fsi_remote_top(fs, rem, &top, eb);
	if (!rc)
		rc = node_for_key(fs, &top, r->key, r, &ino, eb);
	mc_node_cleanup(&top);
	meta.mtime_ns = r->mtime_ns;
	meta.mode = r->mode;
	snprintf(meta.content_type, sizeof(meta.content_type), "%s",
		 r->content_type ? r->content_type : "");
	snprintf(meta.cache_control, sizeof(meta.cache_control), "%s",
		 r->cache_control ? r->cache_control : "");
	path = strdup(r->stage_path);
	if (!rc && !path)
		rc = MFS_ENOMEM;
	if (!rc && failed)
		rc = upq_submit_failed(fs->cfg.upq, rem->be, ino, r->key, path,
				       (uint64_t)st.st_size, &meta, r->id,
				       failed, eb);
	else if (!rc)
		rc = upq_submit(fs->cfg.upq, rem->be, ino, r->key, path,
				(uint64_t)st.st_size, &meta, r->id, NULL, eb);
	if (rc)
		free(path);
	else
		upq_mark_tried(fs->cfg.upq, ino);
	if (!rc && inop)
		*inop = ino;
	return rc;
}

static void resume_row(void *ud, const struct jrow *r)
{
	struct resume *res = ud;
	struct fs *fs = res->fs;
	struct fs_remote *rem = fsi_remote_named(fs, r->remote);
	struct errbuf eb = { 0 };
	struct mc_node top = { 0 };
	enum mfs_err rc = MFS_OK;
	struct fixup *f;
	uint64_t ino = 0;

	if (!rem)
		return;		/* another mount's remote */
	if (str_ends(r->key, "/")) {
		/* a directory marker: the directory, then its marker */
		char *dir = str_ndup(r->key, strlen(r->key) - 1);
		uint64_t dino = 0;

		rc = dir ? fsi_remote_top(fs, rem, &top, &eb) : MFS_ENOMEM;
		if (!rc)
			rc = dir_for_key(fs, &top, dir, &dino, &eb);
		if (!rc)
			rc = upq_submit_marker(fs->cfg.upq, rem->be, dino, dir,
					       r->id, &eb);
		mc_node_cleanup(&top);
		free(dir);
		if (rc) {
			log_err("cannot resume the marker of %s: %s", r->key,
				eb.msg);
			res->lost++;
		} else {
			res->resumed++;
		}
		return;
	}
	if (r->discard) {
		/* deleted while its upload ran: what may have landed goes,
		 * nothing is uploaded, the file is not shown; renamed first,
		 * its copy to the new name may have landed too (#15.51) */
		if (r->key && r->drop_key && strcmp(r->key, r->drop_key))
			add_fix(res, FIX_DROP, rem, r, r->key);
		add_fix(res, FIX_DISCARD, rem, r, r->drop_key);
		return;
	}
	if (r->drop_key)	/* renamed while its upload ran */
		add_fix(res, FIX_DROP, rem, r, r->drop_key);
	if (!r->stage_path) {
		add_fix(res, FIX_LOST, rem, r, r->key);
		return;
	}
	rc = resume_file(fs, rem, r, NULL, &ino, &eb);
	if (rc == MFS_ENOTFOUND) {
		add_fix(res, FIX_LOST, rem, r, r->key);
	} else if (rc) {
		log_err("cannot resume the upload of %s: %s", r->key, eb.msg);
		res->lost++;
	} else {
		res->resumed++;
		f = add_fix(res, FIX_LANDED, rem, r, r->key);
		if (f)
			f->ino = ino;
	}
}

/* Delete what a running upload of row id may have left at key, unless a
 * newer upload finished there since (then the object is that one's).
 * The dead daemon's request may also land after this delete (its body
 * with the server or a proxy, #15.57): then the key is deleted again
 * after the queue's landing grace, and (cancel_row) the row cancelled
 * only then. */
static enum mfs_err drop_left(struct fs *fs, const struct fixup *f,
			      int cancel_row)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	if (!f->key ||
	    journal_done_since(fs->cfg.journal, f->rem->name, f->key,
			       f->r.id))
		goto over;	/* a newer upload landed there: its object */
	rc = f->rem->be->ops->del(f->rem->be, f->key, &eb);
	if (rc == MFS_ENOTFOUND)
		rc = MFS_OK;
	if (rc) {	/* a failed delete keeps the row: tried again next mount */
		log_warn("cannot delete %s, which an upload stopped by a kill may have left (renamed or deleted meanwhile): %s",
			 f->key, eb.msg);
		return rc;
	}
	log_info("deleted %s: an upload stopped by a kill may have left it after its file was %s",
		 f->key, f->kind == FIX_DISCARD || f->r.discard ?
		 "deleted" : "renamed");
	if (fs->cfg.upq) {
		rc = upq_submit_recheck(fs->cfg.upq, f->rem->be, f->key,
					f->r.id, cancel_row,
					cancel_row && f->stage_path ?
					strdup(f->stage_path) : NULL, &eb);
		if (rc)
			log_warn("%s: %s (the next mount deletes it again)",
				 f->key, eb.msg);
		return rc;
	}
over:
	if (cancel_row) {
		journal_cancel(fs->cfg.journal, f->r.id, NULL);
		if (f->stage_path)
			unlink(f->stage_path);
	}
	return MFS_OK;
}

/* The upload of a pending row may have landed before its daemon was
 * killed (the request on its way, or the journal's "done" not yet
 * written): the store then holds an object under its key that nothing
 * else knows of. If a rename, unlink or folder rename of the file came
 * before the resumed upload ran, that object stayed under the old name,
 * and the name was back once the cache was lost (issue #15, #15.47:
 * write, kill -9, mv: the old name listed too). Its ETag goes into the
 * cache: the cache then says an older version is stored under the
 * file's key, which those delete, as for a stored file rewritten. One
 * HEAD per resumed file (the queue has not started: nothing of ours
 * lands meanwhile); a failed HEAD is only logged. */
static void landed_before(struct fs *fs, const struct fixup *f)
{
	struct obj_meta m = { 0 };
	struct mc_set s = { 0 };
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	if (!f->key || !f->ino)
		return;
	rc = f->rem->be->ops->head(f->rem->be, f->key, &m, &eb);
	if (rc == MFS_ENOTFOUND)
		return;
	if (rc) {
		log_warn("cannot tell whether the upload of %s stopped by a kill landed (a rename or removal before it is sent again may leave that object): %s",
			 f->key, eb.msg);
		return;
	}
	if (m.kind == OBJ_DIR || !m.etag[0])
		return;
	s.mask = MC_SET_ETAG;
	s.etag = m.etag;
	if (mcache_set(fs->mc, f->ino, &s))
		log_warn("cannot note what the store holds under %s",
			 f->key);
	else
		log_dbg(LOG_SUB_UPQ, "%s: the store holds an object there (ETag %s), maybe the upload a kill stopped: sent again",
			f->key, m.etag);
}

static void run_fix(struct resume *res, struct fixup *f)
{
	struct fs *fs = res->fs;
	struct errbuf eb = { 0 };
	enum mfs_err rc;

	switch (f->kind) {
	case FIX_DROP:
		drop_left(fs, f, 0);
		break;
	case FIX_DISCARD:
		drop_left(fs, f, 1);
		break;
	case FIX_LOST:
		journal_failed(fs->cfg.journal, f->r.id,
			       "staged file missing after a crash", NULL);
		log_err("cannot resume the upload of %s: its staged file %s is gone",
			f->key ? f->key : "?",
			f->stage_path ? f->stage_path : "(none)");
		res->lost++;
		break;
	case FIX_FAILED:
		/* a newer upload of the key finished: that one is the file */
		if (journal_done_after(fs->cfg.journal, f->rem->name, f->key,
				       f->r.id))
			break;
		rc = resume_file(fs, f->rem, &f->r, f->error ? f->error : "",
				 NULL, &eb);
		if (rc && rc != MFS_ENOTFOUND)	/* (staged file gone) */
			log_warn("the upload of %s failed in an earlier run and cannot be kept readable: %s",
				 f->key, eb.msg);
		break;
	case FIX_LANDED:
		landed_before(fs, f);
		break;
	}
}

/* Multipart uploads the journal says a daemon started and never completed
 * nor aborted (it was killed): the parts are billed and invisible, and the
 * file is sent again from its pending row anyway, so abort them. An intent
 * (JOURNAL_MP_INTENT: a start asked for, its reply maybe never seen) is
 * settled by listing the key's uploads the server started since the
 * intent, less BACKEND_MP_CLOCK_SLACK_S for clocks that differ, and
 * aborting them.
 */

struct mp_left {
	char **v;	/* remote, key, upload id; 3 per upload */
	double *at;	/* when each was recorded, one per upload */
	int n, cap;
};

static void mp_collect(void *ud, const char *remote, const char *key,
		       const char *upload_id, double created_at)
{
	struct mp_left *l = ud;
	double *na;
	char **nv;

	if (!remote || !key || !upload_id)
		return;
	if (l->n + 3 > l->cap) {
		nv = realloc(l->v, sizeof(*nv) * (size_t)(l->cap * 2 + 6));
		if (!nv)
			return;
		l->v = nv;
		na = realloc(l->at, sizeof(*na) * (size_t)(l->cap * 2 + 6) / 3);
		if (!na)
			return;
		l->at = na;
		l->cap = l->cap * 2 + 6;
	}
	l->v[l->n] = strdup(remote);
	l->v[l->n + 1] = strdup(key);
	l->v[l->n + 2] = strdup(upload_id);
	l->at[l->n / 3] = created_at;
	l->n += 3;
}

static int is_intent(const char *upload_id)
{
	return !strncmp(upload_id, JOURNAL_MP_INTENT,
			strlen(JOURNAL_MP_INTENT));
}

/* Abort upload i of l (an intent: the uploads it may have started); 1 when
 * settled (the journal's row can go). */
static int abort_one(struct fs *fs, const struct mp_left *l, int i,
		     int *aborted)
{
	struct fs_remote *rem = NULL;
	struct errbuf eb = { 0 };
	int k, n = 0;

	for (k = 0; k < fs->cfg.nremotes; k++)
		if (l->v[i] && !strcmp(fs->cfg.remotes[k].name, l->v[i]))
			rem = &fs->cfg.remotes[k];
	if (!rem || !l->v[i + 1] || !l->v[i + 2] || !rem->be->ops->mp_abort)
		return 0;
	if (!is_intent(l->v[i + 2])) {
		if (rem->be->ops->mp_abort(rem->be, l->v[i + 1], l->v[i + 2],
					   &eb)) {
			log_warn("cannot abort the multipart upload of %s left by a daemon that was stopped (tried again at the next mount): %s",
				 l->v[i + 1], eb.msg);
			return 0;
		}
		(*aborted)++;
		return 1;
	}
	if (backend_mp_sweep(rem->be, l->v[i + 1],
			     ((int64_t)l->at[i / 3] -
			      BACKEND_MP_CLOCK_SLACK_S) *
				     1000000000LL,
			     NULL, &n, &eb) == MFS_EUNSUPP)
		return 1;	/* nothing to list: nothing to do */
	*aborted += n;
	if (eb.msg[0]) {
		log_warn("cannot list the multipart uploads of %s a daemon that was stopped may have started (tried again at the next mount): %s",
			 l->v[i + 1], eb.msg);
		return 0;
	}
	if (n)
		log_info("aborted %d multipart upload%s of %s whose start the journal never saw answered",
			 n, n == 1 ? "" : "s", l->v[i + 1]);
	return 1;
}

static void abort_left_multipart(struct fs *fs)
{
	struct mp_left l = { NULL, NULL, 0, 0 };
	int i, pass, aborted = 0;

	if (journal_mp_list(fs->cfg.journal, fs->mount_id, mp_collect, &l))
		log_warn("cannot read the journal's open multipart uploads");
	/* the uploads the journal knows first, then the intents' sweeps */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i + 2 < l.n; i += 3)
			if (l.v[i + 2] && is_intent(l.v[i + 2]) == pass &&
			    abort_one(fs, &l, i, &aborted))
				journal_mp_close(fs->cfg.journal, l.v[i],
						 l.v[i + 2], NULL);
	if (aborted)
		log_info("aborted %d multipart upload%s left open on the server by a daemon that was stopped",
			 aborted, aborted == 1 ? "" : "s");
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	free(l.at);
}

/* A file the cache shows as being uploaded whose upload the journal
 * records as done, the key's last record (a kill between the journal's
 * record and the cache's, #15.54's window): the cache takes what the
 * journal says the store holds. Listing the folder again instead (the
 * store's word) cost a LIST, and on a store whose listings lag its
 * writes (Swift under load) the file was missing from the mount after
 * the remount (cc46: test_write_crash, 229 of 230 files shown). */
static int settled_here(struct fs *fs, const struct mc_node *nd)
{
	struct fs_remote *r = fsi_remote(fs, nd->rid);
	struct mc_set s = { 0 };
	struct jlast d;

	if (!r || !fs->cfg.journal ||
	    journal_last_settled(fs->cfg.journal, r->name, nd->key, &d) ||
	    !d.etag[0])
		return 0;
	s.mask = MC_SET_ETAG | MC_SET_FULL | MC_SET_CTYPE | MC_SET_PENDING |
		 MC_SET_SIZE;
	s.etag = d.etag;
	s.full = 1;
	s.ctype = d.content_type;
	s.pending = 0;
	s.size = d.size;
	return !mcache_set(fs->mc, nd->ino, &s);
}

/* Files the cache showed as being uploaded (pend, their marks cleared
 * before the journal's rows resumed) that no pending or failed row marked
 * again: their upload finished, or their content went (#15.54). A kill -9
 * between an upload's "done" in the journal and the cache's update (the
 * two are separate databases) leaves the node pending with no row, its
 * staged copy swept as a write that never completed: shown as being
 * uploaded, with nothing queued, every open of the file failed with EIO
 * ("its staged content is gone") for good, a listing keeping it too. It is
 * forgotten and its folder listed again: the store's object is the file.
 * With the journal unread (failed), the marks are put back. */
static void unpend_left(struct fs *fs, const uint64_t *pend, size_t npend,
			enum mfs_err failed)
{
	struct mc_set s = { 0 };
	size_t i, n = 0, k = 0;

	s.mask = MC_SET_PENDING;
	s.pending = 1;
	for (i = 0; i < npend; i++) {
		struct mc_node nd = { 0 };

		if (mcache_get(fs->mc, pend[i], &nd))
			continue;
		if (!nd.pending && failed) {
			mcache_set(fs->mc, pend[i], &s);
		} else if (!nd.pending && nd.kind == MC_FILE &&
			   settled_here(fs, &nd)) {
			k++;
		} else if (!nd.pending && nd.kind == MC_FILE) {
			log_dbg(LOG_SUB_UPQ, "%s: shown as being uploaded, but the journal has no upload of it left: read from the store",
				nd.key);
			if (!mcache_remove(fs->mc, pend[i])) {
				mcache_invalidate_dir(fs->mc, nd.parent);
				n++;
			}
		}
		mc_node_cleanup(&nd);
	}
	if (n)
		log_info("%zu file%s the cache showed as being uploaded ha%s no upload left in the journal (finished before a kill): shown as the store has %s",
			 n, n == 1 ? "" : "s", n == 1 ? "s" : "ve",
			 n == 1 ? "it" : "them");
	if (k)
		log_info("%zu file%s the cache showed as being uploaded w%s done in the journal (a kill between the two records): shown as uploaded",
			 k, k == 1 ? "" : "s", k == 1 ? "as" : "ere");
}

enum mfs_err fs_resume_uploads(struct fs *fs, int *resumed, int *lost,
			       struct errbuf *eb)
{
	struct resume res = { 0 };
	uint64_t *pend = NULL;
	size_t npend = 0;
	enum mfs_err rc;
	int i, swept;

	res.fs = fs;
	*resumed = *lost = 0;
	if (!fs->cfg.upq)
		return MFS_OK;
	abort_left_multipart(fs);
	/* the rows resumed below mark their files pending again */
	if (mcache_unpend_files(fs->mc, &pend, &npend))
		log_warn("cannot read which files the cache shows as being uploaded");
	rc = journal_pending(fs->cfg.journal, fs->mount_id, 0, resume_row,
			     &res);
	/* staged files no pending or failed row names: files that were
	 * being written when the daemon died (close() never returned) */
	if (!rc)
		rc = journal_pending(fs->cfg.journal, fs->mount_id, 1,
				     keep_path, &res);
	/* what resumed uploads may have left is read last: after the drops
	 * and discards, which may delete the same keys */
	for (i = 0; i < res.nfix && !rc; i++)
		if (res.fix[i].kind != FIX_LANDED)
			run_fix(&res, &res.fix[i]);
	for (i = 0; i < res.nfix && !rc; i++)
		if (res.fix[i].kind == FIX_LANDED)
			run_fix(&res, &res.fix[i]);
	for (i = 0; i < res.nfix; i++)
		fix_cleanup(&res.fix[i]);
	free(res.fix);
	unpend_left(fs, pend, npend, rc);
	free(pend);
	if (!rc) {
		swept = stage_sweep(fs->cfg.stage, res.keep, res.nkeep);
		if (swept)
			log_info("removed %d staging files of writes that never completed (close() had not returned)",
				 swept);
	}
	for (i = 0; i < res.nkeep; i++)
		free(res.keep[i]);
	free(res.keep);
	if (rc)
		return eb_set(eb, rc, "reading the journal");
	*resumed = res.resumed;
	*lost = res.lost;
	return MFS_OK;
}
