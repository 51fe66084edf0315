/* fs_ns.c - the namespace: unlink, mkdir, rmdir, rename. Renames of files
 * whose upload is queued only change the queued key; renames of uploaded
 * files are a server-side copy and a delete; a directory rename copies
 * every object below it (in parallel) and deletes the old keys in batches
 * of 1,000: O(n), not atomic. Locking: see fs_int.h. Calls: backend, meta,
 * core/upq, common.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/str.h"
#include "core/moves.h"
#include "fs_int.h"
#include "meta/sniff.h"

#define COPY_THREADS 8

static void event(struct fs *fs, struct fs_remote *r, const char *op,
		  const char *key, const char *new_key, const char *detail)
{
	journal_event(fs->cfg.journal, fs->mount_id, r->name, op, key,
		      new_key, detail);
}

/* Directory parent, writable, with its remote. */
static enum mfs_err writable_dir(struct fs *fs, uint64_t parent,
				 struct fs_remote **r)
{
	struct mc_node d;
	enum mfs_err rc = fsi_get_dir(fs, parent, &d);

	if (!rc)
		rc = fsi_writable(fs, &d, r);
	mc_node_cleanup(&d);
	return rc;
}

/* A bucket of a provider with buckets (the key's first segment). */
static int is_bucket(const struct fs_remote *r, const char *key)
{
	return (r->be->ops->caps & BE_CAP_BUCKETS) && !strchr(key, '/');
}

static int count_child(void *ud, const struct mc_node *n);

/* The last entry of a directory went away (unlink, rmdir, rename out):
 * its marker may never have been stored (dropped when the files landed,
 * or not needed beside a subdirectory), so queue one, or the directory
 * would vanish from the server with its last entry. */
static void keep_if_empty(struct fs *fs, struct fs_remote *r, uint64_t dir)
{
	struct mc_node d, top = { 0 };
	int children = 0;

	if (mcache_children(fs->mc, dir, count_child, &children) || children)
		return;
	if (fsi_remote_top(fs, r, &top, NULL) || top.ino == dir ||
	    mcache_get(fs->mc, dir, &d)) {
		mc_node_cleanup(&top);
		return;
	}
	if (is_bucket(r, d.key) || (r->be->ops->caps & BE_CAP_FOLDERS) ||
	    !strcmp(d.etag, UPQ_MARKER_ETAG)) {
		/* a bucket or a folder stays without a marker; a stored
		 * marker is there already */
		mc_node_cleanup(&d);
		mc_node_cleanup(&top);
		return;
	}
	if (!upq_submit_marker(fs->cfg.upq, r->be, dir, d.key, 0, NULL)) {
		struct mc_set s = { 0 };

		s.mask = MC_SET_PENDING;
		s.pending = 1;
		mcache_set(fs->mc, dir, &s);
	}
	mc_node_cleanup(&d);
	mc_node_cleanup(&top);
}

/* n was read before its upload was cancelled (upq_cancel answered 0: no
 * upload of it runs now, none will start). One that landed in between
 * put its object's ETag into the cache (the queue does so before the item
 * goes, under its lock) after n was read: take it, so what it landed is
 * deleted or counted as replaced. Without this, an upload landing between
 * the lookup and the cancel left its object on the store, the mount
 * showing it gone (issue #15: #15.46, local: B after overwrite_delete;
 * #15.42: g after write c, mv c g, rm g, back once the cache was lost). */
static void etag_now(struct fs *fs, struct mc_node *n)
{
	struct mc_node now = { 0 };

	if (!mcache_get(fs->mc, n->ino, &now) && now.etag[0])
		memcpy(n->etag, now.etag, sizeof(n->etag));
	mc_node_cleanup(&now);
}

enum mfs_err fs_unlink(struct fs *fs, uint64_t parent, const char *name,
		       struct errbuf *eb)
{
	struct fs_remote *r;
	struct mc_node n;
	enum mfs_err rc = writable_dir(fs, parent, &r);
	int64_t tried;
	int after;

	if (rc)
		return rc;
	rc = fsi_child(fs, parent, name, &n, eb);
	if (rc)
		return rc;
	if (n.kind == MC_DIR) {
		mc_node_cleanup(&n);
		return MFS_EISDIR;
	}
	tried = fsi_orphan(fs, &n);	/* open handles: usable until closed */
	after = upq_cancel(fs->cfg.upq, n.ino);
	if (!after)
		etag_now(fs, &n);
	/* an older version on the server goes too (a running upload deletes
	 * what it lands when it finishes); so does what a tried upload the
	 * open writer took back left, now and after the landing grace (a
	 * review: a failed upload reopened, removed, stayed on the store) */
	if (n.etag[0] && !after)
		rc = r->be->ops->del(r->be, n.key, eb);
	if (!rc && tried && !after) {
		struct errbuf reb = { 0 };

		if (upq_drop_taken(fs->cfg.upq, r->be, n.key, tried, &reb))
			log_warn("%s: %s", n.key, reb.msg);
	}
	if (!rc) {
		event(fs, r, "delete", n.key, NULL, NULL);
		mcache_remove(fs->mc, n.ino);
		fsi_neg_note(fs, parent, name);
		keep_if_empty(fs, r, parent);
	}
	mc_node_cleanup(&n);
	return rc;
}

enum mfs_err fs_mkdir(struct fs *fs, uint64_t parent, const char *name,
		      uint32_t mode, struct fs_attr *out, struct errbuf *eb)
{
	struct put_meta pm = { 0 };
	struct fs_remote *r;
	struct mc_node n;
	const char *bad = str_bad_name(name, strlen(name));
	uint64_t ino;
	char *key = NULL;
	enum mfs_err rc;

	if (bad)
		return eb_set(eb, strlen(name) > 255 ? MFS_ENAMETOOLONG
			      : MFS_EINVAL, "'%s': %s", name, bad);
	rc = writable_dir(fs, parent, &r);
	if (rc)
		return rc;
	rc = mcache_get(fs->mc, parent, &n);
	if (rc)
		return rc;
	rc = fsi_new_key(r, n.key, name, 1, &key, eb);
	mc_node_cleanup(&n);
	if (rc)
		return rc;
	rc = fsi_child(fs, parent, name, &n, eb);
	if (!rc) {
		mc_node_cleanup(&n);
		free(key);
		return MFS_EEXIST;
	}
	if (rc != MFS_ENOTFOUND) {
		free(key);
		return rc;
	}
	pm.mtime_ns = fsi_now_ns();
	if (is_bucket(r, key)) {
		/* a bucket exists at once, or not at all */
		rc = r->be->ops->mkdir(r->be, key, NULL, eb);
		if (!rc)
			rc = mcache_add(fs->mc, parent, name, MC_DIR, 0,
					pm.mtime_ns, mode & 07777, 0, &ino,
					eb);
		goto added;
	}
	/* A marker object keeps an empty directory on the server; it is
	 * queued, and dropped if a file lands below it first (cp -r, rsync:
	 * no request for the directory at all). Until then the directory is
	 * pending, so listings of its parent keep it. */
	rc = mcache_add(fs->mc, parent, name, MC_DIR, 0, pm.mtime_ns,
			mode & 07777, 1, &ino, eb);
	if (!rc) {
		rc = upq_submit_marker(fs->cfg.upq, r->be, ino, key, 0, eb);
		if (rc)
			mcache_remove(fs->mc, ino);
	}
added:
	if (!rc) {
		event(fs, r, "mkdir", key, NULL, NULL);
		rc = mcache_get(fs->mc, ino, &n);
		if (!rc) {
			fsi_attr(fs, &n, out);
			mc_node_cleanup(&n);
		}
	}
	free(key);
	return rc;
}

static int count_child(void *ud, const struct mc_node *n)
{
	(void)n;
	(*(int *)ud)++;
	return 1;	/* one is enough */
}

enum mfs_err fs_rmdir(struct fs *fs, uint64_t parent, const char *name,
		      struct errbuf *eb)
{
	struct fs_remote *r;
	struct mc_node n;
	enum mfs_err rc = writable_dir(fs, parent, &r);
	int children = 0;

	if (rc)
		return rc;
	rc = fsi_child(fs, parent, name, &n, eb);
	if (rc)
		return rc;
	if (n.kind != MC_DIR)
		rc = MFS_ENOTDIR;
	if (!rc)
		rc = fsi_listed(fs, &n, eb);
	if (!rc)
		rc = mcache_children(fs->mc, n.ino, count_child, &children);
	if (!rc && children)
		rc = MFS_ENOTEMPTY;
	if (!rc) {
		upq_cancel(fs->cfg.upq, n.ino);	/* a queued marker */
		rc = r->be->ops->rmdir(r->be, n.key, eb);
	}
	if (!rc) {
		event(fs, r, "rmdir", n.key, NULL, NULL);
		mcache_remove(fs->mc, n.ino);
		fsi_neg_note(fs, parent, name);
		/* the folder may hold nothing else now (issue #15, replay
		 * cases 15.21-rmdir-*) */
		keep_if_empty(fs, r, parent);
	}
	mc_node_cleanup(&n);
	return rc;
}

/* ---- rename ---- */

/* Is n's content on the server, with no upload or writer pending? */
static int stored_as_is(struct fs *fs, const struct mc_node *n)
{
	struct upq_meta m;
	int writing;

	if (n->pending || !n->etag[0] || upq_get_meta(fs->cfg.upq, n->ino, &m))
		return 0;
	pthread_mutex_lock(&fs->lock);
	writing = fsi_wfile(fs, n->ino) != NULL;
	pthread_mutex_unlock(&fs->lock);
	return !writing;
}

/* n as the cache has it now: an upload that ran meanwhile (during a
 * directory walk, or between the lookup of a renamed file and
 * upq_rename) has landed since, under the old key. An upload updates the
 * cache before it leaves the queue, and upq_rename holds the queue's
 * lock: once the queue has no item of n, the cache says where it is. */
static void refresh(struct fs *fs, struct mc_node *n)
{
	struct mc_node now;

	if (mcache_get(fs->mc, n->ino, &now))
		return;
	n->pending = now.pending;
	n->size = now.size;
	n->full = now.full;
	memcpy(n->etag, now.etag, sizeof(n->etag));
	memcpy(n->ctype, now.ctype, sizeof(n->ctype));
	memcpy(n->stype, now.stype, sizeof(n->stype));
	mc_node_cleanup(&now);
}

/* Do names a and b break a sniff's ties differently (src/meta/sniff.c:
 * the extension decides only when the bytes are generic)? Then a type
 * sniffed from a read under one does not hold under the other. */
static int names_differ(const char *a, const char *b)
{
	char ta[128], tb[128];

	sniff_type(NULL, "", 0, a, ta, sizeof(ta));
	sniff_type(NULL, "", 0, b, tb, sizeof(tb));
	return strcmp(ta, tb) != 0;
}

/* The type stored file n takes under newname, into type ("" when it
 * keeps its own). A type is one of the bytes and the final name (the name
 * breaks ties, src/meta/sniff.c), so it changes only when the old and new
 * names break ties differently, and only when the stored type is the one
 * the bytes and the old name give (a type set by setfattr or an outside
 * writer stays; the generic application/octet-stream counts as none).
 * Costs a HEAD when the type is not known yet and one ranged GET of the
 * first SNIFF_BYTES, for such renames only, on stores that keep types. */
static enum mfs_err retype(struct fs *fs, struct fs_remote *r,
			   struct mc_node *n, const char *newname, char *type,
			   size_t cap, struct errbuf *eb)
{
	char was[128], now[128], *buf;
	size_t got = 0;
	enum mfs_err rc;

	type[0] = '\0';
	if (!(r->be->ops->caps & BE_CAP_TYPES) || !fs->cfg.sniff)
		return MFS_OK;
	if (!names_differ(n->name, newname))
		return MFS_OK;	/* both names break ties alike */
	rc = fsi_full(fs, n, eb);
	buf = rc ? NULL : malloc(SNIFF_BYTES);
	if (!rc && !buf)
		rc = MFS_ENOMEM;
	if (!rc)
		rc = r->be->ops->get(r->be, n->key, 0, SNIFF_BYTES, n->etag,
				     buf, &got, eb);
	if (!rc) {
		sniff_type(fs->cfg.sniff, buf, got, n->name, was, sizeof(was));
		sniff_type(fs->cfg.sniff, buf, got, newname, now, sizeof(now));
		if ((fsi_vague_type(n->ctype) || !strcmp(n->ctype, was)) &&
		    strcmp(n->ctype, now))
			snprintf(type, cap, "%s", now);
	}
	free(buf);
	return rc;
}

/* The cache's ETag of ino: the one a server-side copy gave the object under
 * its new key. A store whose ETags are not of the bytes alone (local: size,
 * mtime, inode; S3: a copy of a multipart object) gives the copy a new one,
 * and the old one made every later conditional read of the file (truncate,
 * pwrite, open) fail with ESTALE (issue #15, replay cases
 * 15.31-*-after-rename*). An empty etag (the store did not say) keeps the
 * cache's. */
static enum mfs_err set_etag(struct fs *fs, uint64_t ino, const char *etag)
{
	struct mc_set s = { 0 };

	if (!etag[0])
		return MFS_OK;
	s.mask = MC_SET_ETAG;
	s.etag = etag;
	return mcache_set(fs->mc, ino, &s);
}

/* over: the ETag of the stored file n replaces under newkey ("" for
 * none). When n's bytes go up later (a queued upload, a writer, a failed
 * upload), that object stays under newkey until they land, so n's node
 * takes its ETag: the cache says the server holds an older version under
 * n's key, which a later rename or unlink of n deletes, as for a stored
 * file rewritten (else it was left behind: issue #15, replay cases
 * 15.23-rename-over-stored-then-away*). */
static enum mfs_err rename_file(struct fs *fs, struct fs_remote *r,
				struct mc_node *n, uint64_t newparent,
				const char *newname, const char *newkey,
				const char *over, struct errbuf *eb)
{
	char type[128] = "", copied[80] = "";	/* ETag of the copy */
	enum upq_hit hit;
	enum mfs_err rc = MFS_OK;
	int writing, landed = 0, noted = 0, left = 0, via_move = 0;

	if (over[0] &&
	    upq_state_of(fs->cfg.upq, n->ino, NULL, 0) == UPQ_UPLOADING) {
		/* n's running upload moves to newkey only once it lands, and
		 * not at all if n goes before: the replaced object goes now
		 * (before the rename, so never after the move) */
		rc = r->be->ops->del(r->be, newkey, eb);
		if (rc)
			return rc;
		over = "";
	}
	hit = upq_rename(fs->cfg.upq, n->ino, newkey);
	if (hit == UQ_NONE)	/* (it may have landed since n was read) */
		refresh(fs, n);

	pthread_mutex_lock(&fs->lock);
	{
		/* a writer with changes sends them under the new name at
		 * close; one without (opened, nothing written yet) sends
		 * nothing unless it writes: the stored file moves (its old
		 * version was deleted, and the file lost, a review found) */
		struct wfile *w = fsi_wfile(fs, n->ino);

		writing = w && w->dirty;
	}
	pthread_mutex_unlock(&fs->lock);
	if (!(hit == UQ_ABSORBED || hit == UQ_AFTER || writing) &&
	    !n->pending)	/* stored here by this rename, on the server */
		upq_key_taken(fs->cfg.upq, r->be, newkey, 0, 1);
	if (hit == UQ_ABSORBED || hit == UQ_AFTER || writing) {
		/* the new content goes up under the new name; an older
		 * version under the old name is stale */
		if (n->etag[0] && hit != UQ_AFTER)
			rc = r->be->ops->del(r->be, n->key, eb);
	} else if (n->pending) {
		/* staged content whose upload failed: nothing on the server
		 * to move */
	} else if ((rc = retype(fs, r, n, newname, type, sizeof(type), eb))) {
		/* (nothing moved) */
	} else if ((rc = moves_begin(fs->cfg.journal, fs->mount_id, r->be,
				     n->key, newkey, 0, eb))) {
		/* (nothing moved: the journal could not record it) */
	} else if (type[0]) {
		/* a copy under the new name with the new type */
		struct put_meta pm = { 0 };
		struct obj_meta out = { 0 };

		noted = 1;
		pm.content_type = type;
		pm.cache_control = n->cc[0] ? n->cc : NULL;
		pm.mtime_ns = n->mtime_ns;
		pm.mode = S_IFREG | (n->mode ? n->mode : fs->cfg.file_mode);
		rc = r->be->ops->copy(r->be, n->key, newkey, &pm, &out, eb);
		if (!rc)
			rc = r->be->ops->del(r->be, n->key, eb);
		if (!rc) {
			struct mc_set s = { 0 };

			s.mask = MC_SET_CTYPE | (out.etag[0] ? MC_SET_ETAG : 0);
			s.ctype = type;
			s.etag = out.etag;
			rc = mcache_set(fs->mc, n->ino, &s);
		}
		if (!rc)
			log_info("renamed %s to %s: its type is now %s",
				 n->key, newkey, type);
		landed = !rc;
	} else {
		noted = 1;
		if (r->be->ops->move) {
			rc = moves_move(r->be, n->key, newkey, 0, &left, eb);
			via_move = 1;
		} else {
			struct obj_meta out = { 0 };

			rc = r->be->ops->copy(r->be, n->key, newkey, NULL,
					      &out, eb);
			if (!rc)
				rc = r->be->ops->del(r->be, n->key, eb);
			if (!rc)
				memcpy(copied, out.etag, sizeof(copied));
		}
		landed = !rc;
	}
	if (!rc)
		rc = mcache_move(fs->mc, n->ino, newparent, newname, eb);
	if (!rc && copied[0])
		rc = set_etag(fs, n->ino, copied);
	/* a type sniffed from a read under the old name goes with it */
	if (!rc && names_differ(n->name, newname) &&
	    mcache_set_sniffed(fs->mc, n->ino, "", ""))
		log_warn("cannot drop the sniffed type of inode %llu",
			 (unsigned long long)n->ino);
	if (!rc && !landed && over[0]) {
		struct mc_set s = { 0 };

		s.mask = MC_SET_ETAG;
		s.etag = over;
		rc = mcache_set(fs->mc, n->ino, &s);
	}
	if (!rc && !landed && hit == UQ_ABSORBED && !writing) {
		/* its queued upload, given the new key by upq_rename, may
		 * have landed while this rename sent its requests (the old
		 * version's delete), before the cache moved the file: the
		 * markers it cleared were those above the old name, and a
		 * folder marker above the new one stayed beside it (#15.59,
		 * the model tester's slow seed s3 473077) */
		struct mc_node m = { 0 };

		landed = !mcache_get(fs->mc, n->ino, &m) && !m.pending &&
			 m.etag[0];
		mc_node_cleanup(&m);
	}
	if (!rc && landed)	/* its new folders hold it now */
		upq_clear_markers(fs->cfg.upq, r->be, n->ino);
	/* the store and the cache both have it under newkey now; a move
	 * that failed is settled at once (the caller's error says the old
	 * name stays: a copy that landed goes), else it stays recorded and
	 * the next mount settles it; a record never outlives the call the
	 * user saw fail, or it could meet what the user did since */
	if (noted && rc) {
		struct errbuf e2 = { 0 };

		if (via_move ? left != 0
			     : fsi_settle_move(fs, r, n->key, newkey, 0,
					       &e2) != MFS_OK) {
			log_warn("the rename of %s to %s failed half way; the next mount settles what it left%s%s",
				 n->key, newkey, e2.msg[0] ? ": " : "",
				 e2.msg);
			noted = 0;
		}
	}
	if (noted)
		moves_end(fs->cfg.journal, fs->mount_id, r->be, n->key, newkey,
			  0);
	return rc;
}

/* Everything below a directory, from the cache (listing what is stale). */
struct subtree {
	struct mc_node *n;
	size_t count, cap;
};

static int collect_cb(void *ud, const struct mc_node *n)
{
	struct subtree *t = ud;

	if (t->count == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct mc_node *p = realloc(t->n, sizeof(*p) * ncap);

		if (!p)
			return 1;
		t->n = p;
		t->cap = ncap;
	}
	t->n[t->count] = *n;
	t->n[t->count].key = strdup(n->key);
	if (!t->n[t->count].key)
		return 1;
	t->count++;
	return 0;
}

static enum mfs_err walk(struct fs *fs, struct mc_node *dir,
			 struct subtree *t, struct errbuf *eb)
{
	size_t first, last, i;
	enum mfs_err rc = fsi_listed(fs, dir, eb);

	if (rc)
		return rc;
	first = t->count;
	rc = mcache_children(fs->mc, dir->ino, collect_cb, t);
	if (rc)
		return rc;
	/* only dir's own children: the recursion appends theirs after
	 * last, and visiting those here too walked them twice */
	last = t->count;
	for (i = first; i < last && !rc; i++) {
		if (t->n[i].kind == MC_DIR) {
			struct mc_node d = t->n[i];

			d.key = strdup(t->n[i].key);
			if (!d.key)
				return MFS_ENOMEM;
			rc = walk(fs, &d, t, eb);
			mc_node_cleanup(&d);
		}
	}
	return rc;
}

struct copier {
	struct backend *be;
	const char *old_prefix;
	const char *new_prefix;
	char **keys;		/* old keys to copy */
	char (*etags)[80];	/* out: the ETag of each copy ("" unknown) */
	size_t n;
	long limit_ms;		/* the caller's op_timeout, for each worker */
	pthread_mutex_t lock;
	size_t next;		/* guarded by lock */
	enum mfs_err rc;	/* guarded by lock */
	struct errbuf eb;	/* guarded by lock */
};

static void *copy_worker(void *arg)
{
	struct copier *c = arg;
	size_t plen = strlen(c->old_prefix);

	/* each worker waits at most op_timeout for an answer, as its caller */
	deadline_start(c->limit_ms);
	for (;;) {
		struct errbuf eb = { 0 };
		struct obj_meta out = { 0 };
		enum mfs_err rc;
		char *to;
		size_t i;

		pthread_mutex_lock(&c->lock);
		i = c->rc ? c->n : c->next++;
		pthread_mutex_unlock(&c->lock);
		if (i >= c->n)
			break;
		to = str_fmt("%s%s", c->new_prefix, c->keys[i] + plen);
		if (!to)
			rc = MFS_ENOMEM;
		else if (c->be->ops->move)
			rc = c->be->ops->move(c->be, c->keys[i], to, &eb);
		else
			rc = c->be->ops->copy(c->be, c->keys[i], to, NULL,
					      &out, &eb);
		if (!rc && !c->be->ops->move)	/* (slot i is this worker's) */
			memcpy(c->etags[i], out.etag, sizeof(c->etags[i]));
		free(to);
		if (rc) {
			pthread_mutex_lock(&c->lock);
			if (!c->rc) {
				c->rc = rc;
				c->eb = eb;
			}
			pthread_mutex_unlock(&c->lock);
		}
	}
	return NULL;
}

/* Copy (or move) keys from old_prefix to new_prefix, COPY_THREADS at a
 * time; etags[i] gets the ETag keys[i] has under its new key. */
static enum mfs_err copy_all(struct backend *be, const char *old_prefix,
			     const char *new_prefix, char **keys,
			     char (*etags)[80], size_t n, struct errbuf *eb)
{
	struct copier c = { 0 };
	pthread_t th[COPY_THREADS];
	int i, started = 0;

	c.be = be;
	c.old_prefix = old_prefix;
	c.new_prefix = new_prefix;
	c.keys = keys;
	c.etags = etags;
	c.n = n;
	c.limit_ms = deadline_limit_ms();
	pthread_mutex_init(&c.lock, NULL);
	for (i = 0; i < COPY_THREADS && (size_t)i < n; i++)
		if (!pthread_create(&th[i], NULL, copy_worker, &c))
			started++;
	if (!started)
		copy_worker(&c);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&c.lock);
	if (c.rc && eb)
		*eb = c.eb;
	if (!c.rc)
		deadline_progress();	/* the workers' answers */
	return c.rc;
}

static enum mfs_err delete_all(struct backend *be, char **keys, size_t n,
			       struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	long limit = deadline_limit_ms();
	size_t i;

	/* one request deletes up to 1,000 objects: a store may take longer
	 * than op_timeout to answer it (Swift under load: > 20 s for 501),
	 * and the copies before it succeeded, so no time limit here */
	deadline_clear();
	for (i = 0; i < n && !rc; i += 1000) {
		int batch = n - i < 1000 ? (int)(n - i) : 1000, failed = 0;

		rc = be->ops->del_many(be, (const char *const *)keys + i,
				       batch, &failed, eb);
		if (!rc && failed)
			rc = MFS_EIO;
	}
	deadline_start(limit);
	return rc;
}

/* Does anything (a file, or a directory: its own marker or files keep it
 * on the store) lie below key? Only a directory with nothing below needs
 * a marker, as for mkdir (upqm_not_needed): a folder that holds only
 * folders is on the store through their objects. */
static int has_entries_below(const struct subtree *t, const char *key)
{
	size_t n = strlen(key), i;

	for (i = 0; i < t->count; i++)
		if (!strncmp(t->n[i].key, key, n) && t->n[i].key[n] == '/')
			return 1;
	return 0;
}

/* After a directory rename (src and the nodes of t moved in the cache):
 * which of them has a marker on the store now (rename_dir made one for
 * each directory with nothing below), and the folders above that hold
 * them need theirs no more. */
static void note_markers(struct fs *fs, struct fs_remote *r,
			 const struct mc_node *src, const struct subtree *t,
			 size_t landed)
{
	struct mc_set s = { 0 };
	size_t i;

	if (!(r->be->ops->caps & BE_CAP_MARKER_OBJECTS))
		return;
	s.mask = MC_SET_ETAG;
	for (i = 0; i < t->count; i++) {
		if (t->n[i].kind != MC_DIR)
			continue;
		s.etag = has_entries_below(t, t->n[i].key) ? ""
							       : UPQ_MARKER_ETAG;
		mcache_set(fs->mc, t->n[i].ino, &s);
	}
	s.etag = has_entries_below(t, src->key) ? "" : UPQ_MARKER_ETAG;
	mcache_set(fs->mc, src->ino, &s);
	if (landed)
		upq_clear_markers(fs->cfg.upq, r->be, src->ino);
}

/* The files whose queued uploads a directory rename gave new keys. */
struct inos {
	uint64_t *v;
	size_t n, cap;
};

static void renamed_cb(void *ud, uint64_t ino)
{
	struct inos *s = ud;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		uint64_t *v = realloc(s->v, sizeof(*v) * ncap);

		if (!v)
			return;
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n++] = ino;
}

static int was_renamed(const struct inos *s, uint64_t ino)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == ino)
			return 1;
	return 0;
}

static enum mfs_err rename_dir(struct fs *fs, struct fs_remote *r,
			       struct mc_node *src, uint64_t newparent,
			       const char *newname, const char *newkey,
			       struct errbuf *eb)
{
	struct subtree t = { 0 };
	struct inos ren = { 0 };
	char **copy = NULL, **del = NULL, *detail = NULL;
	char (*etags)[80] = NULL;	/* of the copies */
	uint64_t *copied = NULL;	/* the inode of each copy */
	size_t ncopy = 0, ndel = 0, nmade = 0, i;
	enum mfs_err rc;
	int began = 0;

	if (r->be->ops->move_dir) {
		/* the provider renames folders itself (queued uploads below
		 * just get their new keys, and wait until the folder is in
		 * place: a version that landed first under the new name was
		 * replaced by the older one the move brought, issue #15,
		 * replay case 15.30-pwrite-then-folder-move-imagekit) */
		int left = 0;

		rc = moves_begin(fs->cfg.journal, fs->mount_id, r->be,
				 src->key, newkey, 1, eb);
		if (rc)
			return rc;
		upq_key_taken(fs->cfg.upq, r->be, newkey, 1, 1);
		rc = upq_hold_dir(fs->cfg.upq, r->be, newkey);
		if (rc) {
			moves_end(fs->cfg.journal, fs->mount_id, r->be,
				  src->key, newkey, 1);
			return rc;
		}
		upq_rename_dir(fs->cfg.upq, src->key, newkey, r->be, NULL,
			       NULL);
		rc = moves_move(r->be, src->key, newkey, 1, &left, eb);
		upq_release_dir(fs->cfg.upq, r->be, newkey);
		if (!rc)
			rc = mcache_move(fs->mc, src->ino, newparent, newname,
					 eb);
		if (!left)	/* moved, or put back */
			moves_end(fs->cfg.journal, fs->mount_id, r->be,
				  src->key, newkey, 1);
		if (!rc) {
			event(fs, r, "rename", src->key, newkey,
			      "folder moved on the server");
			log_info("renamed directory %s to %s on the server",
				 src->key, newkey);
		} else {
			eb_prefix(eb, "renaming directory %s", src->key);
		}
		return rc;
	}
	rc = walk(fs, src, &t, eb);
	/* every key below gets the new prefix: one the store cannot hold
	 * (too long) refuses the rename before any request, not half way */
	for (i = 0; i < t.count && !rc && r->be->ops->check_key; i++) {
		char *k = str_fmt("%s%s", newkey,
				  t.n[i].key + strlen(src->key));

		rc = k ? fsi_check_key(r, k, t.n[i].kind == MC_DIR, eb)
		       : MFS_ENOMEM;
		free(k);
	}
	if (!rc) {
		copy = calloc(t.count + 1, sizeof(*copy));
		del = calloc(2 * t.count + 2, sizeof(*del));
		etags = calloc(t.count + 1, sizeof(*etags));
		copied = calloc(t.count + 1, sizeof(*copied));
		if (!copy || !del || !etags || !copied)
			rc = MFS_ENOMEM;
	}
	/* recorded before anything below is renamed: a kill from here on
	 * leaves the move for the next mount to finish */
	if (!rc) {
		rc = moves_begin(fs->cfg.journal, fs->mount_id, r->be,
				 src->key, newkey, 1, eb);
		began = !rc;
	}
	/* queued uploads below simply get their new keys; running ones
	 * land first, under their old keys, to be copied with the rest;
	 * those of deleted files below the new name first too */
	if (!rc) {
		upq_key_taken(fs->cfg.upq, r->be, newkey, 1, 1);
		upq_rename_dir(fs->cfg.upq, src->key, newkey, r->be,
			       renamed_cb, &ren);
	}
	for (i = 0; i < t.count && !rc; i++) {
		struct mc_node *n = &t.n[i];

		if (n->kind == MC_DIR) {
			del[ndel++] = str_fmt("%s/", n->key);	/* marker */
			continue;
		}
		if (!was_renamed(&ren, n->ino))
			refresh(fs, n);
		if (n->etag[0] && !n->pending) {
			copied[ncopy] = n->ino;
			copy[ncopy++] = n->key;
		}
		/* a moved key is gone already; a pending one's old version
		 * is stale */
		if (n->etag[0] && (!r->be->ops->move || n->pending))
			del[ndel++] = strdup(n->key);
	}
	if (!rc)
		del[ndel++] = str_fmt("%s/", src->key);
	if (!rc)
		rc = copy_all(r->be, src->key, newkey, copy, etags, ncopy,
			      eb);
	/* empty directories exist only as markers: make them anew */
	for (i = 0; i < t.count && !rc; i++) {
		if (t.n[i].kind == MC_DIR &&
		    !has_entries_below(&t, t.n[i].key)) {
			char *k = str_fmt("%s%s", newkey,
					  t.n[i].key + strlen(src->key));

			rc = k ? r->be->ops->mkdir(r->be, k, NULL, eb)
			       : MFS_ENOMEM;
			free(k);
			nmade++;
		}
	}
	if (!rc && !has_entries_below(&t, src->key)) {
		rc = r->be->ops->mkdir(r->be, newkey, NULL, eb);
		nmade++;
	}
	for (i = 0; i < ndel && !rc; i++)
		if (!del[i])
			rc = MFS_ENOMEM;
	if (!rc)
		rc = delete_all(r->be, del, ndel, eb);
	if (!rc)
		rc = mcache_move(fs->mc, src->ino, newparent, newname, eb);
	for (i = 0; i < ncopy && !rc; i++)
		rc = set_etag(fs, copied[i], etags[i]);
	if (!rc)
		note_markers(fs, r, src, &t, ncopy + nmade);
	/* (a failure answered to the caller is not finished later: what was
	 * copied stays under both names, as the error says) */
	if (began)
		moves_end(fs->cfg.journal, fs->mount_id, r->be, src->key,
			  newkey, 1);
	if (!rc) {
		const char *how = r->be->ops->move ? "moved" : "copied";

		detail = str_fmt("%zu objects %s", ncopy, how);
		event(fs, r, "rename", src->key, newkey, detail);
		log_info("renamed directory %s to %s: %zu objects %s, %zu keys deleted",
			 src->key, newkey, ncopy, how, ndel);
	} else {
		eb_prefix(eb, "renaming directory %s (not atomic: objects copied so far stay under both names)",
			  src->key);
	}
	for (i = 0; i < t.count; i++)
		mc_node_cleanup(&t.n[i]);
	free(ren.v);
	for (i = 0; i < ndel; i++)
		free(del[i]);
	free(t.n);
	free(copy);
	free(etags);
	free(copied);
	free(del);
	free(detail);
	return rc;
}

enum mfs_err fs_rename(struct fs *fs, uint64_t parent, const char *name,
		       uint64_t newparent, const char *newname,
		       unsigned flags, struct errbuf *eb)
{
	struct fs_remote *r, *r2;
	struct mc_node src = { 0 }, dst = { 0 }, np = { 0 };
	const char *bad = str_bad_name(newname, strlen(newname));
	char *newkey = NULL;
	const char *over = "";	/* ETag of the stored file replaced */
	enum mfs_err rc;
	int children = 0;

	if (flags & FS_RENAME_EXCHANGE)
		return eb_set(eb, MFS_EINVAL, "rename: exchange is not supported");
	if (bad)
		return eb_set(eb, strlen(newname) > 255 ? MFS_ENAMETOOLONG
			      : MFS_EINVAL, "'%s': %s", newname, bad);
	rc = writable_dir(fs, parent, &r);
	if (!rc)
		rc = writable_dir(fs, newparent, &r2);
	if (!rc && r != r2)
		rc = eb_set(eb, MFS_EXDEV, "rename across remotes");
	if (!rc)	/* the provider's charset, before any request */
		rc = mcache_get(fs->mc, newparent, &np);
	if (!rc)
		rc = fsi_new_key(r, np.key, newname, 1, &newkey, eb);
	mc_node_cleanup(&np);
	memset(&np, 0, sizeof(np));
	free(newkey);
	newkey = NULL;
	if (!rc)
		rc = fsi_child(fs, parent, name, &src, eb);
	if (!rc) {
		rc = fsi_child(fs, newparent, newname, &dst, eb);
		if (rc == MFS_ENOTFOUND)
			rc = MFS_OK;
		else if (!rc && dst.ino == src.ino)
			goto out;	/* same file: nothing to do */
		else if (!rc && (flags & FS_RENAME_NOREPLACE))
			rc = MFS_EEXIST;
		else if (!rc && src.kind == MC_FILE && dst.kind == MC_DIR)
			rc = MFS_EISDIR;
		else if (!rc && src.kind == MC_DIR && dst.kind == MC_FILE)
			rc = MFS_ENOTDIR;
		else if (!rc && dst.kind == MC_DIR) {
			rc = fsi_listed(fs, &dst, eb);
			if (!rc)
				rc = mcache_children(fs->mc, dst.ino,
						     count_child, &children);
			if (!rc && children)
				rc = MFS_ENOTEMPTY;
		}
	}
	if (!rc && src.kind == MC_DIR) {
		/* not into itself */
		size_t n = strlen(src.key);

		rc = mcache_get(fs->mc, newparent, &np);
		if (!rc && !strncmp(np.key, src.key, n) &&
		    (np.key[n] == '/' || np.key[n] == '\0'))
			rc = MFS_EINVAL;
	} else if (!rc) {
		rc = mcache_get(fs->mc, newparent, &np);
	}
	if (!rc)
		rc = fsi_new_key(r, np.key, newname, src.kind == MC_DIR,
				 &newkey, eb);
	if (!rc && (is_bucket(r, src.key) || is_bucket(r, newkey)))
		/* buckets cannot be renamed: mv copies instead */
		rc = eb_set(eb, MFS_EXDEV, "rename of or into a bucket name");
	if (!rc && dst.ino && dst.kind == MC_FILE && src.kind == MC_FILE &&
	    (r->be->ops->caps & BE_CAP_NO_CLOBBER) && dst.etag[0] &&
	    stored_as_is(fs, &src))
		/* the provider cannot replace a stored file by moving another
		 * onto it; a queued upload of src simply overwrites */
		rc = eb_set(eb, MFS_EEXIST,
			    "'%s' exists and remote [%s] cannot rename a stored file over another; remove it first",
			    newkey, r->name);
	if (!rc && dst.ino && dst.kind == MC_FILE) {
		/* replaced: a queued upload of the old target is moot; a
		 * running one deletes what it lands, so it must be over
		 * before src takes the name */
		if (upq_cancel(fs->cfg.upq, dst.ino)) {
			upq_wait(fs->cfg.upq, dst.ino, NULL);
			/* src's own upload may have landed meanwhile */
			mc_node_cleanup(&src);
			rc = mcache_get(fs->mc, src.ino, &src);
			/* (what it landed it deleted: newkey is free) */
		} else {
			etag_now(fs, &dst);
			over = dst.etag;
		}
	} else if (!rc && dst.ino && dst.kind == MC_DIR) {
		/* replaced: its queued marker goes too, or it would land
		 * later and bring the folder back after an rmdir of the new
		 * one (found by pjdfstest's rename tests) */
		if (upq_cancel(fs->cfg.upq, dst.ino))	/* running: it */
			upq_wait(fs->cfg.upq, dst.ino, NULL);	/* lands first */
		rc = r->be->ops->rmdir(r->be, dst.key, eb);
	}
	/* a late landing's recheck of newkey (upq_submit_recheck) must not
	 * delete what this rename puts there */
	if (!rc)
		upq_key_taken(fs->cfg.upq, r->be, newkey, src.kind == MC_DIR,
			      0);
	if (!rc && src.kind == MC_FILE)
		rc = rename_file(fs, r, &src, newparent, newname, newkey,
				 over, eb);
	else if (!rc)
		rc = rename_dir(fs, r, &src, newparent, newname, newkey, eb);
	if (!rc && src.kind == MC_FILE)
		event(fs, r, "rename", src.key, newkey, NULL);
	if (!rc && newparent != parent)
		/* the folder it left may be empty now: it keeps a marker */
		keep_if_empty(fs, r, parent);
	if (!rc)	/* the old name is gone; its upload may still land */
		fsi_neg_note(fs, parent, name);
out:
	free(newkey);
	mc_node_cleanup(&src);
	mc_node_cleanup(&dst);
	mc_node_cleanup(&np);
	return rc;
}
