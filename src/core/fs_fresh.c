/* fs_fresh.c - coherence with other writers of the store: the re-check of
 * names a listing does not hold (negative entries live negative_ttl, not
 * cache_ttl), a version changed on the server met by a fresh handle, the
 * refresh of one path on request (user.mediafs.refresh), and at mount the
 * objects `mediactl rollback` deleted (the journal's rollback events).
 * fs->lock guards negs[] (names checked lately). Calls: backend,
 * meta/mcache, meta/journal, common.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/str.h"
#include "fs_int.h"

/* FNV-1a over the parent inode and the name: the slot of a name. */
static uint64_t neg_hash(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ULL;
	int i;

	for (i = 0; i < 8; i++) {
		h ^= (parent >> (i * 8)) & 0xff;
		h *= 1099511628211ULL;
	}
	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

/* 1 when (parent, name) was found absent less than negative_ttl ago. */
static int neg_recent(struct fs *fs, uint64_t h, int64_t now)
{
	size_t i = (size_t)(h % NEG_SLOTS);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = fs->negs[i].hash == h && now >= fs->negs[i].at &&
	    now - fs->negs[i].at < fs->cfg.neg_ttl_s;
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void neg_set(struct fs *fs, uint64_t h, int64_t at)
{
	size_t i = (size_t)(h % NEG_SLOTS);

	pthread_mutex_lock(&fs->lock);
	fs->negs[i].hash = at ? h : 0;
	fs->negs[i].at = at;
	pthread_mutex_unlock(&fs->lock);
}

void fsi_neg_note(struct fs *fs, uint64_t parent, const char *name)
{
	neg_set(fs, neg_hash(parent, name), fsi_now_s());
}

enum mfs_err fsi_neg_recheck(struct fs *fs, const struct mc_node *d,
			     const char *name, struct mc_node *out,
			     struct errbuf *eb)
{
	struct fs_remote *r = fsi_remote(fs, d->rid);
	int64_t now = fsi_now_s(), listed_at = d->listed_at;
	struct obj_meta m;
	struct errbuf heb = { 0 };
	struct mc_node again;
	uint64_t h, ino;
	enum mfs_err rc;
	char *key = NULL;

	memset(out, 0, sizeof(*out));
	if (!mcache_get(fs->mc, d->ino, &again)) {	/* listed just now? */
		listed_at = again.listed_at;
		mc_node_cleanup(&again);
	}
	/* a listing younger than negative_ttl answers alone; names of a
	 * URL list come from the list only; hidden names are what desktops
	 * probe every mount for (.Trash, .Trash-UID, .hidden) and rsync's
	 * temporary names: they stay absent as long as the listing */
	if (!r || name[0] == '.' || (r->be->ops->caps & BE_CAP_LAZY_ATTRS) ||
	    (listed_at && now >= listed_at &&
	     now - listed_at < fs->cfg.neg_ttl_s))
		return MFS_ENOTFOUND;
	h = neg_hash(d->ino, name);
	if (neg_recent(fs, h, now))
		return MFS_ENOTFOUND;
	if (str_bad_name(name, strlen(name)))
		return MFS_ENOTFOUND;	/* a name the store cannot hold */
	key = d->key[0] ? str_fmt("%s/%s", d->key, name) : strdup(name);
	if (!key)
		return MFS_ENOMEM;
	memset(&m, 0, sizeof(m));
	rc = r->be->ops->head(r->be, key, &m, &heb);
	if (rc) {
		if (rc != MFS_ENOTFOUND)	/* the listing's answer holds */
			log_dbg(LOG_SUB_CACHE, "re-check of '%s': %s", key,
				heb.msg);
		free(key);
		neg_set(fs, h, now);
		return MFS_ENOTFOUND;
	}
	log_dbg(LOG_SUB_CACHE, "remote [%s]: '%s' appeared since the listing",
		r->name, key);
	free(key);
	if (m.kind == OBJ_DIR) {
		rc = mcache_add(fs->mc, d->ino, name, MC_DIR, 0, m.mtime_ns,
				m.mode, 0, &ino, eb);
		if (!rc)	/* not known to be empty: list it when asked */
			rc = mcache_invalidate_dir(fs->mc, ino);
	} else {
		rc = mcache_add(fs->mc, d->ino, name, MC_FILE, m.size,
				m.mtime_ns, m.mode, 0, &ino, eb);
		if (!rc)
			rc = mcache_set_full(fs->mc, ino, m.size, m.mtime_ns,
					     m.mode, m.etag, m.content_type,
					     m.cache_control);
	}
	if (!rc)
		fsi_filled(fs, ino);
	if (!rc)
		rc = mcache_lookup(fs->mc, d->ino, name, out);
	return rc;
}

void fsi_filled(struct fs *fs, uint64_t ino)
{
	struct fs_remote *r;
	struct mc_node n;

	if (mcache_get(fs->mc, ino, &n))
		return;
	if (!fsi_writable(fs, &n, &r))
		upq_clear_markers(fs->cfg.upq, r->be, ino);
	mc_node_cleanup(&n);
}

enum mfs_err fsi_refresh(struct fs *fs, uint64_t ino)
{
	struct fs_remote *r;
	struct errbuf eb = { 0 };
	struct obj_meta m;
	struct mc_node n;
	enum mfs_err rc = mcache_get(fs->mc, ino, &n);

	if (rc)
		return rc;
	if (n.kind == MC_DIR) {
		rc = mcache_invalidate_dir(fs->mc, ino);
		if (!rc && fs->inval_attr)
			fs->inval_attr(fs->notify_ctx, ino);
		goto out;
	}
	r = fsi_remote(fs, n.rid);
	if (!r || n.pending || !n.etag[0])
		goto out;	/* local content is newer than the store's */
	memset(&m, 0, sizeof(m));
	rc = r->be->ops->head(r->be, n.key, &m, &eb);
	if (rc == MFS_ENOTFOUND || (!rc && m.kind == OBJ_DIR)) {
		log_info("refresh: '%s' is gone from the server", n.key);
		rc = mcache_remove(fs->mc, ino);
		fsi_neg_note(fs, n.parent, n.name);
		/* the entry's notice goes once this request is answered (an
		 * unlink of the file may hold the folder meanwhile); until
		 * then a stat asks again and hears it is gone */
		if (fs->inval_attr)
			fs->inval_attr(fs->notify_ctx, ino);
		if (fs->inval_entry)
			fs->inval_entry(fs->notify_ctx, n.parent, n.name);
	} else if (!rc && strcmp(m.etag, n.etag)) {
		log_info("refresh: '%s' changed on the server", n.key);
		rc = mcache_set_full(fs->mc, ino, m.size, m.mtime_ns, m.mode,
				     m.etag, m.content_type, m.cache_control);
		if (!rc && fs->inval)	/* attributes and pages */
			fs->inval(fs->inval_ctx, ino);
	} else if (rc) {
		log_warn("refresh of '%s': %s", n.key, eb.msg);
	}
out:
	mc_node_cleanup(&n);
	return rc;
}

/* The journal's rollback events past the cache's mark: (remote, key)
 * pairs, copied (the journal's lock is held while they read out). */
struct rolled {
	char **v;		/* remote, key; 2 per event */
	size_t n, cap;
	int64_t last;		/* the newest event's id */
};

static int rolled_row(void *ud, int ncol, const char *const *v,
		      const char *const *names)
{
	struct rolled *rb = ud;

	(void)names;
	if (ncol < 3 || !v[0] || !v[1] || !v[2])
		return 0;
	if (rb->n + 2 > rb->cap) {
		size_t ncap = rb->cap ? rb->cap * 2 : 64;
		char **nv = realloc(rb->v, sizeof(*nv) * ncap);

		if (!nv)
			return 1;
		rb->v = nv;
		rb->cap = ncap;
	}
	rb->v[rb->n] = strdup(v[1]);
	rb->v[rb->n + 1] = strdup(v[2]);
	rb->n += 2;
	rb->last = strtoll(v[0], NULL, 10);
	return 0;
}

void fs_forget_rolled_back(struct fs *fs)
{
	static const char mark[] = "journal_rollback_event";
	struct rolled rb = { 0 };
	struct errbuf eb = { 0 };
	int64_t seen = 0;
	char since[32];
	const char *p[] = { since };
	size_t i;
	int k, n = 0, dropped;

	if (!fs->cfg.journal || mcache_mark_get(fs->mc, mark, &seen))
		return;
	snprintf(since, sizeof(since), "%lld", (long long)seen);
	if (journal_sql(fs->cfg.journal, "SELECT id,remote,key FROM events "
			"WHERE op='rollback' AND id>CAST(?1 AS BIGINT) "
			"ORDER BY id", p, 1, rolled_row, &rb, &eb)) {
		log_warn("cannot read the journal's rollbacks: %s (the cached listings show them within cache_ttl)",
			 eb.msg);
		goto out;
	}
	for (i = 0; i + 1 < rb.n; i += 2) {
		if (!rb.v[i] || !rb.v[i + 1])
			continue;
		for (k = 0; k < fs->cfg.nremotes; k++)
			if (!strcmp(fs->cfg.remotes[k].name, rb.v[i]) &&
			    !mcache_forget_key(fs->mc, fs->cfg.remotes[k].rid,
					       rb.v[i + 1], &dropped))
				n += dropped;
	}
	if (rb.last > seen && mcache_mark_set(fs->mc, mark, rb.last))
		log_warn("cannot keep the mark of the journal's rollbacks");
	if (n)
		log_info("forgot %d cached files a rollback (mediactl) deleted from the stores",
			 n);
out:
	for (i = 0; i < rb.n; i++)
		free(rb.v[i]);
	free(rb.v);
}
