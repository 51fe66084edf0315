/* fs.c - filesystem semantics over remotes and the metadata cache.
 * lock guards listing[] (the directories being listed right now), so two
 * threads never list the same directory at once: the second waits on
 * listed and then reads the first one's result from the cache. Everything
 * else lives in the cache (its own lock) or in per-handle structs owned by
 * one caller. Calls: backend, meta/mcache, core/prefetch, common.
 */
#include "core/fs.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/str.h"
#include "fs_int.h"
#include "core/dcache.h"
#include "core/prefetch.h"
#include "meta/sniff.h"

static const char *const xattr_names[] = {
	"user.mediafs.etag",
	"user.mediafs.content_type",
	"user.mediafs.url",
};
#define NXATTR (sizeof(xattr_names) / sizeof(xattr_names[0]))

struct dirent_snap {
	char *name;
	struct fs_attr attr;
};

struct fs_dir {
	struct dirent_snap *e;
	size_t n;
	struct fs *fs;			/* once open: on fs->dirs */
	struct fs_dir *prev, *next;
};

int64_t fsi_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Seconds of the same clock as fsi_now_ns. Not time(): it reads the
 * coarse clock, a tick behind, so a folder made (listed_at from
 * fsi_now_ns) just after a second began looked listed in the future to a
 * lookup a millisecond later, and was listed again (cc42's extra LIST). */
int64_t fsi_now_s(void)
{
	return fsi_now_ns() / 1000000000;
}

struct fs_remote *fsi_remote(struct fs *fs, int rid)
{
	int i;

	for (i = 0; i < fs->cfg.nremotes; i++)
		if (fs->cfg.remotes[i].rid == rid)
			return &fs->cfg.remotes[i];
	return NULL;
}

int fsi_multi_root(const struct fs *fs, uint64_t ino)
{
	return !fs->cfg.single && ino == MC_ROOT_INO;
}

static void to_attr(const struct fs *fs, const struct mc_node *n,
		    struct fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = n->ino;
	if (n->kind == MC_DIR) {
		a->mode = S_IFDIR | (n->mode ? n->mode & 07777
				     : fs->cfg.dir_mode);
		a->mtime_ns = n->mtime_ns ? n->mtime_ns : fs->start_ns;
	} else {
		a->mode = S_IFREG | (n->mode ? n->mode & 07777
				     : fs->cfg.file_mode);
		a->size = n->size;
		a->mtime_ns = n->mtime_ns;
	}
	/* 1 = "unknown" for directories, so find(1) does not infer the
	 * number of subdirectories from it. */
	a->nlink = 1;
	a->uid = fs->cfg.uid;
	a->gid = fs->cfg.gid;
}

/* upq_set_forget: a late landing a recheck deleted, listed meanwhile */
static void forget_key(void *ctx, const struct backend *be, const char *key)
{
	struct fs *fs = ctx;
	int i;

	for (i = 0; i < fs->cfg.nremotes; i++) {
		struct mc_node n = { 0 };

		if (fs->cfg.remotes[i].be != be ||
		    mcache_stored_file(fs->mc, fs->cfg.remotes[i].rid, key, &n))
			continue;
		/* as for a file found deleted on the server (fs_file.c) */
		mcache_remove(fs->mc, n.ino);
		fsi_neg_note(fs, n.parent, n.name);
		if (fs->inval_entry)	/* (a queue worker, its item over) */
			fs->inval_entry(fs->notify_ctx, n.parent, n.name);
		mc_node_cleanup(&n);
	}
}

enum mfs_err fs_new(const struct fs_config *cfg, struct mcache *mc,
		    struct fs **out, struct errbuf *eb)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	struct timespec ts;
	enum mfs_err rc = MFS_OK;
	int i;

	*out = NULL;
	if (!fs)
		return MFS_ENOMEM;
	fs->cfg = *cfg;
	fs->mc = mc;
	fs->mount_id = strdup(cfg->mount_id ? cfg->mount_id : "");
	fs->cfg.mount_id = fs->mount_id;
	fs->cfg.remotes = calloc((size_t)cfg->nremotes, sizeof(*cfg->remotes));
	if (!fs->cfg.remotes) {
		free(fs);
		return MFS_ENOMEM;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->listed, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	fs->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	for (i = 0; i < cfg->nremotes && !rc; i++) {
		struct fs_remote *r = &fs->cfg.remotes[i];

		*r = cfg->remotes[i];
		r->prefix = strdup(cfg->remotes[i].prefix ?
				   cfg->remotes[i].prefix : "");
		if (!r->prefix) {
			rc = MFS_ENOMEM;
			break;
		}
		rc = mcache_remote(mc, r->name, r->be->ident, &r->rid, eb);
	}
	if (!rc) {
		if (cfg->single)
			rc = mcache_set_root(mc, fs->cfg.remotes[0].rid,
					     fs->cfg.remotes[0].prefix, eb);
		else
			rc = mcache_set_root(mc, 0, "", eb);
	}
	if (rc) {
		fs_free(fs);
		return rc;
	}
	if (fs->cfg.upq)
		upq_set_forget(fs->cfg.upq, forget_key, fs);
	*out = fs;
	return MFS_OK;
}

void fs_free(struct fs *fs)
{
	int i, n;

	if (!fs)
		return;
	/* handles whose release the kernel never sent (the connection ended
	 * first, e.g. a reader closed while its read was still retrying):
	 * no handler runs any more, so their read state goes here; a writer's
	 * staged data stays for the next mount's sweep */
	n = 0;
	while (fs->files) {
		struct fs_file *f = fs->files;

		fs->files = f->next;
		if (f->rfd >= 0)
			close(f->rfd);
		prefetch_free(f->pf);
		free(f);
		n++;
	}
	if (n)
		log_info("%d open files were never released by the kernel", n);
	n = 0;
	while (fs->dirs) {	/* the same for directories */
		struct fs_dir *d = fs->dirs;

		d->fs = NULL;
		fs->dirs = d->next;
		fs_releasedir(d);
		n++;
	}
	if (n)
		log_info("%d open directories were never released by the kernel",
			 n);
	for (i = 0; i < fs->cfg.nremotes; i++)
		free(fs->cfg.remotes[i].prefix);
	free(fs->cfg.remotes);
	free(fs->mount_id);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->listed);
	free(fs);
}

void fs_set_inval(struct fs *fs, void (*fn)(void *ctx, uint64_t ino),
		  void *ctx)
{
	fs->inval = fn;
	fs->inval_ctx = ctx;
}

void fs_set_notify(struct fs *fs, void (*attr)(void *ctx, uint64_t ino),
		   void (*entry)(void *ctx, uint64_t parent,
				 const char *name),
		   void *ctx)
{
	fs->inval_attr = attr;
	fs->inval_entry = entry;
	fs->notify_ctx = ctx;
}

double fs_ttl(const struct fs *fs)
{
	return (double)fs->cfg.ttl_s;
}

double fs_negative_ttl(const struct fs *fs)
{
	return (double)(fs->cfg.neg_ttl_s < fs->cfg.ttl_s ? fs->cfg.neg_ttl_s
			: fs->cfg.ttl_s);
}

/* What a writer of a (a file's attributes) has changed, told over the
 * cache's. Takes fs->lock: never called with the cache's lock held (the
 * order is fs->lock, then the cache's: a readdir's callback that took
 * fs->lock under the cache's lock deadlocked with a lookup waiting for a
 * listing, found by test_trust_s3_dead under load). */
static void writer_attr(struct fs *fs, struct fs_attr *a)
{
	struct wfile *w;
	struct stat st;

	pthread_mutex_lock(&fs->lock);
	w = fsi_wfile(fs, a->ino);
	if (w) {
		/* not yet fetched: the server's size still holds */
		if (__atomic_load_n(&w->loaded, __ATOMIC_ACQUIRE) &&
		    !fstat(w->fd, &st))
			a->size = (uint64_t)st.st_size;
		if (w->meta_set & UQ_META_MTIME)
			a->mtime_ns = w->meta.mtime_ns;
		if (w->meta_set & UQ_META_MODE)
			a->mode = S_IFREG | (w->meta.mode & 07777);
	}
	pthread_mutex_unlock(&fs->lock);
}

void fsi_attr(struct fs *fs, const struct mc_node *n, struct fs_attr *a)
{
	to_attr(fs, n, a);
	if (n->kind == MC_FILE)
		writer_attr(fs, a);
}

struct wfile *fsi_wfile(struct fs *fs, uint64_t ino)
{
	struct wfile *w;

	for (w = fs->wfiles; w; w = w->next)
		if (w->ino == ino)
			return w;
	return NULL;
}

enum mfs_err fsi_child(struct fs *fs, uint64_t parent, const char *name,
		       struct mc_node *out, struct errbuf *eb)
{
	struct mc_node d = { 0 };
	enum mfs_err rc;

	memset(out, 0, sizeof(*out));
	if (strlen(name) > 255)
		return MFS_ENAMETOOLONG;
	rc = fsi_get_dir(fs, parent, &d);
	if (!rc)
		rc = fsi_listed(fs, &d, eb);
	mc_node_cleanup(&d);
	if (!rc)
		rc = mcache_lookup(fs->mc, parent, name, out);
	return rc;
}

enum mfs_err fsi_new_key(struct fs_remote *r, const char *pkey,
			 const char *name, int is_dir, char **key,
			 struct errbuf *eb)
{
	const char *bad = str_bad_name(name, strlen(name));
	enum mfs_err rc;

	*key = NULL;
	if (bad)
		return eb_set(eb, strlen(name) > 255 ? MFS_ENAMETOOLONG
			      : MFS_EINVAL, "'%s': %s", name, bad);
	*key = *pkey ? str_fmt("%s/%s", pkey, name) : strdup(name);
	if (!*key)
		return MFS_ENOMEM;
	rc = fsi_check_key(r, *key, is_dir, eb);
	if (rc) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

enum mfs_err fsi_check_key(struct fs_remote *r, const char *key, int is_dir,
			   struct errbuf *eb)
{
	char why[256];
	int k = r->be->ops->check_key ?
		r->be->ops->check_key(r->be, key, is_dir, why, sizeof(why)) : 0;

	if (!k)
		return MFS_OK;
	log_warn("remote [%s]: refused name '%s': %s", r->name, key, why);
	return eb_set(eb, k == 2 ? MFS_ENAMETOOLONG : MFS_EINVAL, "'%s': %s",
		      key, why);
}

enum mfs_err fsi_writable(struct fs *fs, const struct mc_node *n,
			  struct fs_remote **r)
{
	*r = NULL;
	if (!fs->cfg.upq || fsi_multi_root(fs, n->ino))
		return MFS_EROFS;
	*r = fsi_remote(fs, n->rid);
	if (!*r || !((*r)->be->ops->caps & BE_CAP_WRITE))
		return MFS_EROFS;
	return MFS_OK;
}

enum mfs_err fs_check_writable(struct fs *fs, uint64_t ino)
{
	struct fs_remote *r;
	struct mc_node n;
	enum mfs_err rc = mcache_get(fs->mc, ino, &n);

	if (rc)
		return rc;
	rc = fsi_writable(fs, &n, &r);
	mc_node_cleanup(&n);
	return rc;
}

/* ---- listing ---- */

struct centry {
	char *name;
	int kind;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;		/* 0 = the listing does not say */
	char etag[80];
};

struct collect {
	struct centry *e;
	int n, cap;
	int marker;	/* the directory's own marker object is stored */
};

static enum mfs_err collect_cb(void *ud, const char *name,
			       const struct obj_meta *m)
{
	struct collect *c = ud;
	struct centry *e;

	if (!name[0]) {
		c->marker = 1;
		return MFS_OK;
	}
	if (c->n == c->cap) {
		int ncap = c->cap ? c->cap * 2 : 256;

		e = realloc(c->e, sizeof(*e) * (size_t)ncap);
		if (!e)
			return MFS_ENOMEM;
		c->e = e;
		c->cap = ncap;
	}
	e = &c->e[c->n];
	e->name = strdup(name);
	if (!e->name)
		return MFS_ENOMEM;
	e->kind = m->kind == OBJ_DIR ? MC_DIR : MC_FILE;
	e->size = m->size;
	e->mtime_ns = m->mtime_ns;
	e->mode = m->mode;
	memcpy(e->etag, m->etag, sizeof(e->etag));
	c->n++;
	return MFS_OK;
}

static int cmp_centry(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* same name: the directory first, so it wins */
	return c ? c : y->kind - x->kind;
}

/* List directory d on its remote and store the result in the cache. */
static enum mfs_err list_into_cache(struct fs *fs, const struct mc_node *d,
				    struct errbuf *eb)
{
	struct fs_remote *r = fsi_remote(fs, d->rid);
	struct collect c = { 0 };
	struct mc_entry *me = NULL;
	enum mfs_err rc;
	int64_t since;
	int i, n = 0;

	if (!r)
		return eb_set(eb, MFS_EIO, "directory '%s' has no remote",
			      d->key);
	since = mcache_list_begin(fs->mc);
	rc = r->be->ops->list(r->be, d->key, collect_cb, &c, eb);
	if (!rc && c.n) {
		me = calloc((size_t)c.n, sizeof(*me));
		if (!me)
			rc = MFS_ENOMEM;
	}
	if (!rc && c.n) {
		qsort(c.e, (size_t)c.n, sizeof(*c.e), cmp_centry);
		for (i = 0; i < c.n; i++) {
			if (n && !strcmp(c.e[i].name, me[n - 1].name)) {
				log_warn("remote [%s]: '%s/%s' is both a file and a directory; showing the directory",
					 r->name, d->key, c.e[i].name);
				continue;
			}
			me[n].name = c.e[i].name;
			me[n].kind = c.e[i].kind;
			me[n].size = c.e[i].size;
			me[n].mtime_ns = c.e[i].mtime_ns;
			me[n].etag = c.e[i].etag;
			me[n].mode = c.e[i].mode;
			n++;
		}
	}
	if (!rc)
		rc = mcache_dir_replace_since(fs->mc, d->ino, me, n,
					      fsi_now_s(), since, eb);
	if (!rc && c.marker && strcmp(d->etag, UPQ_MARKER_ETAG)) {
		/* the cache learns of it (it may have been lost, or made
		 * by someone else): a file that lands below deletes it */
		struct mc_set s = { 0 };

		s.mask = MC_SET_ETAG;
		s.etag = UPQ_MARKER_ETAG;
		rc = mcache_set(fs->mc, d->ino, &s);
	}
	if (!rc && c.marker && n) {
		/* a marker beside objects (another writer filled the folder,
		 * or a marker landed before them): the folder needs none */
		struct mc_node child;

		if (!mcache_lookup(fs->mc, d->ino, me[0].name, &child)) {
			fsi_filled(fs, child.ino);
			mc_node_cleanup(&child);
		}
	}
	for (i = 0; i < c.n; i++)
		free(c.e[i].name);
	free(c.e);
	free(me);
	return rc;
}

static int fresh(const struct fs *fs, const struct mc_node *d)
{
	int64_t t = fsi_now_s();

	return d->listed_at && t >= d->listed_at &&
	       t - d->listed_at < fs->cfg.ttl_s;
}

/* Make sure dir's listing in the cache is fresh; *d is refreshed from the
 * cache when another thread did the listing. */
enum mfs_err fsi_listed(struct fs *fs, struct mc_node *d, struct errbuf *eb)
{
	enum mfs_err rc;
	int i, busy;

	if (fsi_multi_root(fs, d->ino) || fresh(fs, d))
		return MFS_OK;
	pthread_mutex_lock(&fs->lock);
	for (;;) {
		for (i = 0, busy = 0; i < fs->nlisting; i++)
			busy |= fs->listing[i] == d->ino;
		if (!busy)
			break;
		pthread_cond_wait(&fs->listed, &fs->lock);
	}
	/* someone may have listed it while we waited */
	{
		struct mc_node again;

		if (!mcache_get(fs->mc, d->ino, &again)) {
			mc_node_cleanup(d);
			*d = again;
		}
	}
	if (fresh(fs, d) || fs->nlisting == MAX_LISTING) {
		pthread_mutex_unlock(&fs->lock);
		if (fresh(fs, d))
			return MFS_OK;
		return list_into_cache(fs, d, eb);	/* table full */
	}
	fs->listing[fs->nlisting++] = d->ino;
	pthread_mutex_unlock(&fs->lock);

	rc = list_into_cache(fs, d, eb);

	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < fs->nlisting; i++)
		if (fs->listing[i] == d->ino) {
			fs->listing[i] = fs->listing[--fs->nlisting];
			break;
		}
	pthread_cond_broadcast(&fs->listed);
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

/* ---- lookup and attributes ---- */

static enum mfs_err remote_dir(struct fs *fs, struct fs_remote *r,
			       struct mc_node *out, struct errbuf *eb);

enum mfs_err fsi_remote_top(struct fs *fs, struct fs_remote *r,
			    struct mc_node *out, struct errbuf *eb)
{
	if (fs->cfg.single)
		return mcache_get(fs->mc, MC_ROOT_INO, out);
	return remote_dir(fs, r, out, eb);
}

enum mfs_err fs_prime(struct fs *fs, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;
	int i;

	for (i = 0; i < (fs->cfg.single ? 1 : fs->cfg.nremotes); i++) {
		struct mc_node d = { 0 };

		rc = fs->cfg.single ? mcache_get(fs->mc, MC_ROOT_INO, &d)
				    : remote_dir(fs, &fs->cfg.remotes[i], &d,
						 eb);
		if (!rc)
			rc = fsi_listed(fs, &d, eb);
		mc_node_cleanup(&d);
		/* a root that does not exist (a Supabase bucket) is a
		 * config error too */
		if (rc == MFS_ECONFIG || rc == MFS_EACCES || rc == MFS_EINVAL ||
		    rc == MFS_ENOTFOUND)
			return rc;
		if (rc)
			log_warn("remote [%s] is not reachable now (%s); will retry on access",
				 fs->cfg.remotes[i].name, eb ? eb->msg : "");
		rc = MFS_OK;
	}
	return rc;
}

static enum mfs_err remote_dir(struct fs *fs, struct fs_remote *r,
			       struct mc_node *out, struct errbuf *eb)
{
	uint64_t ino;
	enum mfs_err rc;

	memset(out, 0, sizeof(*out));
	rc = mcache_ensure_dir(fs->mc, MC_ROOT_INO, r->name, r->rid, r->prefix,
			       &ino, eb);
	if (!rc)
		rc = mcache_get(fs->mc, ino, out);
	return rc;
}

enum mfs_err fsi_get_dir(struct fs *fs, uint64_t ino, struct mc_node *d)
{
	enum mfs_err rc = mcache_get(fs->mc, ino, d);

	if (rc)
		return rc;
	if (d->kind != MC_DIR) {
		mc_node_cleanup(d);
		return MFS_ENOTDIR;
	}
	return MFS_OK;
}

/* ---- remotes whose listings carry names only (BE_CAP_LAZY_ATTRS) ---- */

#define LAZY_BATCH 256
#define LAZY_THREADS 16

static int lazy_node(struct fs *fs, const struct mc_node *n)
{
	struct fs_remote *r = fsi_remote(fs, n->rid);

	return r && n->kind == MC_FILE && !n->full && !n->pending &&
	       (r->be->ops->caps & BE_CAP_LAZY_ATTRS);
}

struct lazy_job {
	struct fs_remote *r;
	uint64_t ino;
	char *key;
	struct obj_meta m;
	enum mfs_err rc;
	char err[256];
};

struct lazy_batch {
	struct lazy_job *j;
	int n, next;		/* next: guarded by lock */
	pthread_mutex_t lock;
	long limit_ms;		/* the caller's op_timeout, for each worker */
};

static void *lazy_worker(void *arg)
{
	struct lazy_batch *b = arg;

	deadline_start(b->limit_ms);	/* as its caller */
	for (;;) {
		struct lazy_job *j;
		struct errbuf eb = { 0 };

		pthread_mutex_lock(&b->lock);
		j = b->next < b->n ? &b->j[b->next++] : NULL;
		pthread_mutex_unlock(&b->lock);
		if (!j)
			return NULL;
		j->rc = j->r->be->ops->head(j->r->be, j->key, &j->m, &eb);
		snprintf(j->err, sizeof(j->err), "%.250s", eb.msg);
	}
}

struct lazy_collect {
	struct fs *fs;
	struct lazy_batch *b;
	uint64_t first;		/* the node asked for goes in first */
};

static int lazy_sibling(void *ud, const struct mc_node *n)
{
	struct lazy_collect *c = ud;
	struct lazy_batch *b = c->b;

	if (b->n >= LAZY_BATCH)
		return 1;
	if (n->ino == c->first || !lazy_node(c->fs, n))
		return 0;
	b->j[b->n].r = fsi_remote(c->fs, n->rid);
	b->j[b->n].ino = n->ino;
	b->j[b->n].key = strdup(n->key);
	if (b->j[b->n].key)
		b->n++;
	return 0;
}

/* Attributes for n, a lazy file, and (in parallel, LAZY_THREADS at a
 * time) for up to LAZY_BATCH of its siblings that have none yet: rsync
 * and ls -l stat a directory's files one after the other. A file the
 * origin says is gone (404, 410) leaves the cache, is logged and
 * journalled as "missing", and answers MFS_ENOTFOUND. */
static enum mfs_err lazy_fill(struct fs *fs, uint64_t parent,
			      struct mc_node *n, struct errbuf *eb)
{
	struct lazy_batch b = { NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER,
				deadline_limit_ms() };
	struct lazy_collect c = { fs, &b, n->ino };
	pthread_t th[LAZY_THREADS];
	enum mfs_err rc = MFS_OK;
	int i, nth = 0;

	b.j = calloc(LAZY_BATCH, sizeof(*b.j));
	if (!b.j)
		return MFS_ENOMEM;
	b.j[0].r = fsi_remote(fs, n->rid);
	b.j[0].ino = n->ino;
	b.j[0].key = strdup(n->key);
	if (!b.j[0].key) {
		free(b.j);
		return MFS_ENOMEM;
	}
	b.n = 1;
	mcache_children(fs->mc, parent, lazy_sibling, &c);
	for (i = 0; i < LAZY_THREADS && i < b.n; i++)
		if (!pthread_create(&th[nth], NULL, lazy_worker, &b))
			nth++;
	if (!nth)
		lazy_worker(&b);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < b.n; i++) {
		struct lazy_job *j = &b.j[i];

		if (!j->rc) {
			mcache_set_full(fs->mc, j->ino, j->m.size,
					j->m.mtime_ns, j->m.mode, j->m.etag,
					j->m.content_type, j->m.cache_control);
		} else if (j->rc == MFS_ENOTFOUND) {
			log_warn("source missing: %s (%s)", j->key, j->err);
			if (fs->cfg.journal)
				journal_event(fs->cfg.journal, fs->mount_id,
					      j->r->name, "missing", j->key,
					      NULL, j->err);
			mcache_remove(fs->mc, j->ino);
		}
		if (i == 0 && j->rc)
			rc = eb_set(eb, j->rc, "%s", j->err);
		free(j->key);
	}
	if (!rc) {
		mc_node_cleanup(n);
		rc = mcache_get(fs->mc, c.first, n);
	}
	free(b.j);
	return rc;
}

enum mfs_err fs_lookup(struct fs *fs, uint64_t parent, const char *name,
		       struct fs_attr *out, struct errbuf *eb)
{
	struct mc_node d, n;
	enum mfs_err rc;
	size_t len = strlen(name);

	if (len > 255)
		return MFS_ENAMETOOLONG;
	if (fsi_multi_root(fs, parent)) {
		int i;

		for (i = 0; i < fs->cfg.nremotes; i++)
			if (!strcmp(fs->cfg.remotes[i].name, name))
				break;
		if (i == fs->cfg.nremotes)
			return MFS_ENOTFOUND;
		rc = remote_dir(fs, &fs->cfg.remotes[i], &n, eb);
		if (!rc)
			to_attr(fs, &n, out);
		mc_node_cleanup(&n);
		return rc;
	}
	rc = fsi_get_dir(fs, parent, &d);
	if (rc)
		return rc;
	rc = fsi_listed(fs, &d, eb);
	if (!rc)
		rc = mcache_lookup(fs->mc, parent, name, &n);
	if (rc == MFS_ENOTFOUND)	/* written by another client? */
		rc = fsi_neg_recheck(fs, &d, name, &n, eb);
	mc_node_cleanup(&d);
	if (rc)
		return rc;
	if (lazy_node(fs, &n)) {
		rc = lazy_fill(fs, parent, &n, eb);
		if (rc) {
			mc_node_cleanup(&n);
			return rc;
		}
	}
	fsi_attr(fs, &n, out);
	mc_node_cleanup(&n);
	return MFS_OK;
}

enum mfs_err fs_getattr(struct fs *fs, uint64_t ino, struct fs_attr *out,
			struct errbuf *eb)
{
	struct mc_node n;
	enum mfs_err rc = mcache_get(fs->mc, ino, &n);

	if (rc == MFS_ENOTFOUND)	/* unlinked, maybe still open */
		return fsi_orphan_attr(fs, ino, out);
	if (rc)
		return rc;
	if (lazy_node(fs, &n)) {
		rc = lazy_fill(fs, n.parent, &n, eb);
		if (rc) {
			mc_node_cleanup(&n);
			return rc;
		}
	}
	fsi_attr(fs, &n, out);
	mc_node_cleanup(&n);
	return MFS_OK;
}

/* ---- directories ---- */

struct snap_build {
	struct fs *fs;
	struct fs_dir *d;
	enum mfs_err rc;
};

static enum mfs_err snap_add(struct fs_dir *d, const char *name,
			     const struct fs_attr *a)
{
	struct dirent_snap *e = realloc(d->e, sizeof(*e) * (d->n + 1));

	if (!e)
		return MFS_ENOMEM;
	d->e = e;
	e[d->n].name = strdup(name);
	if (!e[d->n].name)
		return MFS_ENOMEM;
	e[d->n].attr = *a;
	d->n++;
	return MFS_OK;
}

static int snap_cb(void *ud, const struct mc_node *n)
{
	struct snap_build *b = ud;
	struct fs_attr a;

	to_attr(b->fs, n, &a);	/* (a writer's changes: after, unlocked) */
	a.unknown = lazy_node(b->fs, n);
	b->rc = snap_add(b->d, n->name, &a);
	return b->rc != MFS_OK;
}

enum mfs_err fs_opendir(struct fs *fs, uint64_t ino, struct fs_dir **out,
			struct errbuf *eb)
{
	struct fs_dir *dir = calloc(1, sizeof(*dir));
	struct snap_build b = { fs, dir, MFS_OK };
	struct fs_attr self;
	struct mc_node d;
	enum mfs_err rc;
	int i;

	*out = NULL;
	if (!dir)
		return MFS_ENOMEM;
	rc = fsi_get_dir(fs, ino, &d);
	if (rc) {
		free(dir);
		return rc;
	}
	to_attr(fs, &d, &self);
	rc = snap_add(dir, ".", &self);
	if (!rc)
		rc = snap_add(dir, "..", &self);	/* the kernel fixes it */
	if (!rc && fsi_multi_root(fs, ino)) {
		for (i = 0; i < fs->cfg.nremotes && !rc; i++) {
			struct mc_node r;
			struct fs_attr a;

			rc = remote_dir(fs, &fs->cfg.remotes[i], &r, eb);
			if (!rc) {
				to_attr(fs, &r, &a);
				rc = snap_add(dir, r.name, &a);
			}
			mc_node_cleanup(&r);
		}
	} else if (!rc) {
		rc = fsi_listed(fs, &d, eb);
		if (!rc)
			rc = mcache_children(fs->mc, ino, snap_cb, &b);
		if (!rc)
			rc = b.rc;
		for (i = 2; !rc && i < (int)dir->n; i++)
			if (S_ISREG(dir->e[i].attr.mode))
				writer_attr(fs, &dir->e[i].attr);
	}
	mc_node_cleanup(&d);
	if (rc) {
		fs_releasedir(dir);
		return rc;
	}
	dir->fs = fs;
	pthread_mutex_lock(&fs->lock);
	dir->next = fs->dirs;
	if (fs->dirs)
		fs->dirs->prev = dir;
	fs->dirs = dir;
	pthread_mutex_unlock(&fs->lock);
	*out = dir;
	return MFS_OK;
}

enum mfs_err fs_readdir(struct fs_dir *d, size_t idx, const char **name,
			struct fs_attr *attr)
{
	if (idx >= d->n)
		return MFS_ENOTFOUND;
	*name = d->e[idx].name;
	*attr = d->e[idx].attr;
	return MFS_OK;
}

void fs_releasedir(struct fs_dir *d)
{
	size_t i;

	if (!d)
		return;
	if (d->fs) {
		pthread_mutex_lock(&d->fs->lock);
		if (d->prev)
			d->prev->next = d->next;
		else
			d->fs->dirs = d->next;
		if (d->next)
			d->next->prev = d->prev;
		pthread_mutex_unlock(&d->fs->lock);
	}
	for (i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

/* ---- extended attributes ---- */

static enum mfs_err put_value(const char *v, char *dst, size_t cap,
			      size_t *len)
{
	size_t n = strlen(v);

	*len = n;
	if (!cap)
		return MFS_OK;
	if (n > cap)
		return MFS_ERANGE;
	memcpy(dst, v, n);
	return MFS_OK;
}

int fsi_vague_type(const char *type)
{
	return !type[0] || !strcmp(type, "application/octet-stream") ||
	       !strcmp(type, "binary/octet-stream");
}

/* HEAD the object once and keep user metadata and content type. */
enum mfs_err fsi_full(struct fs *fs, struct mc_node *n, struct errbuf *eb)
{
	struct fs_remote *r = fsi_remote(fs, n->rid);
	struct obj_meta m;
	enum mfs_err rc;

	if (n->full)
		return MFS_OK;
	if (!r)
		return MFS_EIO;
	rc = r->be->ops->head(r->be, n->key, &m, eb);
	if (rc)
		return rc;
	rc = mcache_set_full(fs->mc, n->ino, m.size, m.mtime_ns, m.mode,
			     m.etag, m.content_type, m.cache_control);
	if (!rc) {
		n->full = 1;
		n->size = m.size;
		n->mtime_ns = m.mtime_ns;
		snprintf(n->etag, sizeof(n->etag), "%s", m.etag);
		snprintf(n->ctype, sizeof(n->ctype), "%s", m.content_type);
		snprintf(n->cc, sizeof(n->cc), "%s", m.cache_control);
		n->mode = m.mode;
	}
	return rc;
}

/* What the journal knows of a hook's work on n (MFS_ENODATA: nothing). */
static enum mfs_err hooked(struct fs *fs, const struct mc_node *n,
			   struct jlast *jl)
{
	struct fs_remote *r = fsi_remote(fs, n->rid);

	if (!fs->cfg.journal || !r || n->kind != MC_FILE ||
	    journal_last_done(fs->cfg.journal, r->name, n->key, jl) ||
	    !jl->hook[0])
		return MFS_ENODATA;
	return MFS_OK;
}

/* The uploads that concern node n: those of backend *be (NULL: every
 * remote, at the all-remotes root) at or below key *prefix. */
static enum mfs_err upload_scope(struct fs *fs, const struct mc_node *n,
				 const struct backend **be,
				 const char **prefix)
{
	struct fs_remote *r;

	*be = NULL;
	*prefix = "";
	if (!fs->cfg.upq)
		return MFS_ENODATA;
	if (fsi_multi_root(fs, n->ino))
		return MFS_OK;
	r = fsi_remote(fs, n->rid);
	if (!r)
		return MFS_ENODATA;
	*be = r->be;
	*prefix = n->key ? n->key : "";
	return MFS_OK;
}

#define STATE_LIST_MAX 16384	/* bytes of failed uploads listed */

static enum mfs_err upload_state(struct fs *fs, const struct mc_node *n,
				 char *dst, size_t cap, size_t *len)
{
	const struct backend *be;
	const char *prefix;
	struct upq_tally t;
	enum mfs_err rc = upload_scope(fs, n, &be, &prefix);
	char *v = NULL, *list = NULL;

	if (!fs->cfg.upq)	/* a read-only mount uploads nothing */
		return put_value("done", dst, cap, len);
	if (rc)
		return rc;
	if (n->kind == MC_FILE) {
		char err[512];

		switch (upq_state_of(fs->cfg.upq, n->ino, err, sizeof(err))) {
		case UPQ_PENDING:
			return put_value("pending", dst, cap, len);
		case UPQ_UPLOADING:
			return put_value("uploading", dst, cap, len);
		case UPQ_FAILED:
			v = str_fmt("failed: %s", err);
			break;
		case UPQ_NONE:
			/* written, not closed yet: not queued */
			return put_value(n->pending ? "pending" : "done", dst,
					 cap, len);
		}
	} else {
		list = malloc(STATE_LIST_MAX);
		if (!list)
			return MFS_ENOMEM;
		upq_tally(fs->cfg.upq, be, prefix, &t, list, STATE_LIST_MAX);
		if (t.pending || t.uploading)
			v = str_fmt("pending: %lu pending, %lu uploading, %lu failed",
				    t.pending, t.uploading, t.failed);
		else if (t.failed)
			v = str_fmt("failed: %lu failed\n%s", t.failed, list);
		else
			v = strdup("done");
	}
	rc = v ? put_value(v, dst, cap, len) : MFS_ENOMEM;
	free(v);
	free(list);
	return rc;
}

enum mfs_err fs_fsyncdir(struct fs *fs, uint64_t ino, struct errbuf *eb)
{
	const struct backend *be;
	const char *prefix;
	struct mc_node n;
	enum mfs_err rc = mcache_get(fs->mc, ino, &n);

	if (rc)
		return rc;
	if (!upload_scope(fs, &n, &be, &prefix))
		rc = upq_wait_under(fs->cfg.upq, be, prefix, eb);
	mc_node_cleanup(&n);
	return rc;
}

/* user.mediafs.known_type: n's content type from what the daemon knows
 * already, never a request, in this order: the type of its queued upload;
 * the type sniffed from a read of this version (the cache); the store's
 * own type when a HEAD brought one that says more than "bytes"; the type
 * its last upload through mediafs sent (the journal, same ETag); the first
 * bytes of this version in the data cache, sniffed now (and kept).
 * MFS_ENODATA when none of them knows: the caller reads and sniffs
 * (mediactl plan), and the read keeps the type it sniffs. */
static enum mfs_err known_type(struct fs *fs, const struct fs_remote *r,
			       struct mc_node *n, char *dst, size_t cap,
			       size_t *len)
{
	struct upq_meta m;
	struct jlast jl;
	char head[SNIFF_BYTES], *id;
	const char *base;
	size_t got;
	enum mfs_err rc;

	if (n->pending) {
		if (fs->cfg.upq && upq_get_meta(fs->cfg.upq, n->ino, &m) &&
		    !fsi_vague_type(m.content_type))
			return put_value(m.content_type, dst, cap, len);
		return MFS_ENODATA;	/* the bytes are local: read them */
	}
	/* a type sniffed from this version's bytes first: a HEAD after the
	 * read does not change what a plan decided then (its target) */
	if (n->etag[0] && n->stype[0])
		return put_value(n->stype, dst, cap, len);
	if (n->full && !fsi_vague_type(n->ctype))
		return put_value(n->ctype, dst, cap, len);
	if (!n->etag[0])
		return MFS_ENODATA;
	if (fs->cfg.journal &&
	    !journal_last_done(fs->cfg.journal, r->name, n->key, &jl) &&
	    !strcmp(jl.etag, n->etag) && !fsi_vague_type(jl.content_type))
		return put_value(jl.content_type, dst, cap, len);
	if (!fs->cfg.sniff || !fs->cfg.dc)
		return MFS_ENODATA;
	got = 0;
	if (n->size) {	/* an empty object's bytes are known */
		id = str_fmt("%s/%s", r->name, n->key);
		if (!id)
			return MFS_ENOMEM;
		rc = dcache_peek(fs->cfg.dc, id, n->etag, n->size,
				 sizeof(head), head, &got);
		free(id);
		if (rc)
			return MFS_ENODATA;
	}
	/* as a read's sniff decides: the bytes, the name breaks ties */
	base = strrchr(n->key, '/');
	sniff_type(fs->cfg.sniff, head, got, base ? base + 1 : n->key,
		   n->stype, sizeof(n->stype));
	if (mcache_set_sniffed(fs->mc, n->ino, n->etag, n->stype))
		log_warn("cannot keep the sniffed type of inode %llu",
			 (unsigned long long)n->ino);
	return put_value(n->stype, dst, cap, len);
}

enum mfs_err fs_getxattr(struct fs *fs, uint64_t ino, const char *name,
			 char *dst, size_t cap, size_t *len,
			 struct errbuf *eb)
{
	struct fs_remote *r;
	struct mc_node n;
	enum mfs_err rc;
	char *url = NULL;

	rc = mcache_get(fs->mc, ino, &n);
	if (rc)
		return rc;
	r = fsi_remote(fs, n.rid);
	if (!strcmp(name, "user.mediafs.upload_state")) {
		/* not listed (rsync -X would copy it) */
		rc = upload_state(fs, &n, dst, cap, len);
	} else if (n.kind != MC_FILE || !r) {
		rc = MFS_ENODATA;
	} else if (!strcmp(name, "user.mediafs.etag")) {
		rc = n.etag[0] ? put_value(n.etag, dst, cap, len)
			       : MFS_ENODATA;
	} else if (!strcmp(name, "user.mediafs.content_type")) {
		struct upq_meta m;

		/* not uploaded yet: what the upload will send */
		if (n.pending && fs->cfg.upq &&
		    upq_get_meta(fs->cfg.upq, ino, &m))
			snprintf(n.ctype, sizeof(n.ctype), "%s",
				 m.content_type);
		else if (!n.pending)
			rc = fsi_full(fs, &n, eb);
		/* the bytes' type (sniffed from a read) only when the store
		 * says nothing useful: a listing does not say what the store
		 * says, and an outside writer's type is the object's type */
		if (!rc && !n.pending && n.stype[0] &&
		    fsi_vague_type(n.ctype))
			snprintf(n.ctype, sizeof(n.ctype), "%s", n.stype);
		if (!rc)
			rc = put_value(n.ctype[0] ? n.ctype
				       : "application/octet-stream",
				       dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.known_type")) {
		/* not listed (rsync -X would copy it): for mediactl plan */
		rc = known_type(fs, r, &n, dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.remote")) {
		/* not listed (rsync -X would copy it): for mediactl */
		rc = put_value(r->name, dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.key")) {
		rc = put_value(n.key, dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.url")) {
		rc = r->be->ops->url(r->be, n.key, &url);
		if (!rc)
			rc = put_value(url, dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.file_id")) {
		/* the provider's id (ImageKit): of what the server holds */
		if (!r->be->ops->file_id || !n.etag[0])
			rc = MFS_ENODATA;
		else
			rc = r->be->ops->file_id(r->be, n.key, &url);
		if (!rc && !url)
			rc = MFS_ENODATA;
		if (!rc)
			rc = put_value(url, dst, cap, len);
	} else if (!strcmp(name, "user.mediafs.original_size") ||
		   !strcmp(name, "user.mediafs.hook")) {
		/* from the journal: the size written before the hook ran */
		struct jlast jl;
		char v[32];

		rc = hooked(fs, &n, &jl);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)jl.orig_size);
		if (!rc)
			rc = put_value(strcmp(name, "user.mediafs.hook") ? v :
				       jl.hook_result, dst, cap, len);
	} else {
		rc = MFS_ENODATA;
	}
	free(url);
	mc_node_cleanup(&n);
	return rc;
}

enum mfs_err fs_listxattr(struct fs *fs, uint64_t ino, char *dst, size_t cap,
			  size_t *len)
{
	static const char *const hook_names[] = {
		"user.mediafs.original_size", "user.mediafs.hook",
	};
	struct mc_node n;
	struct jlast jl;
	enum mfs_err rc;
	size_t i, total = 0, nh = 0;
	const char *names[NXATTR + 3];

	rc = mcache_get(fs->mc, ino, &n);
	if (rc)
		return rc;
	if (n.kind == MC_FILE) {
		struct fs_remote *r = fsi_remote(fs, n.rid);

		for (i = 0; i < NXATTR; i++)
			names[nh++] = xattr_names[i];
		if (r && r->be->ops->file_id && n.etag[0])
			names[nh++] = "user.mediafs.file_id";
		if (!hooked(fs, &n, &jl))
			for (i = 0; i < 2; i++)
				names[nh++] = hook_names[i];
	}
	mc_node_cleanup(&n);
	for (i = 0; i < nh; i++)
		total += strlen(names[i]) + 1;
	*len = total;
	if (!cap || !total)
		return MFS_OK;
	if (total > cap)
		return MFS_ERANGE;
	for (i = 0; i < nh; i++) {
		size_t l = strlen(names[i]) + 1;

		memcpy(dst, names[i], l);
		dst += l;
	}
	return MFS_OK;
}
