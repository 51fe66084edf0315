/* fs_moves.c - renames on the server that take several requests
 * (core/moves.h), recorded in the journal while they ran, settled so that
 * the store matches what the mount shows: at mount (fs_settle_moves,
 * before the top listings and the resumed uploads) those a killed daemon
 * left, and at once a rename that failed half way (fsi_settle_move).
 * A file: the old name shown and not the new one, it goes back; the new
 * one shown, or neither, the move goes on; both, only a copy that
 * replaced the new name's object goes on (settle_file_move). A folder
 * (S3: a COPY per key; Supabase: a move per key): the move goes on, as
 * the journal's rows below it, renamed before the copies began, already
 * say. Split from fs_resume.c.
 * Calls: backend, meta (journal, mcache), core/moves, common. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "core/moves.h"
#include "fs_int.h"

struct left_moves {
	char **v;	/* remote, src, dst; 3 a move */
	int *dir;
	int n, cap;
};

static void collect_move(void *ud, const char *remote, const char *src,
			 const char *dst, int dir)
{
	struct left_moves *l = ud;

	if (l->n == l->cap) {
		int cap = l->cap * 2 + 4;
		char **v = realloc(l->v, sizeof(*v) * (size_t)cap * 3);
		int *d;

		if (!v)
			return;
		l->v = v;
		d = realloc(l->dir, sizeof(*d) * (size_t)cap);
		if (!d)
			return;
		l->dir = d;
		l->cap = cap;
	}
	l->v[l->n * 3] = strdup(remote);
	l->v[l->n * 3 + 1] = strdup(src);
	l->v[l->n * 3 + 2] = strdup(dst);
	l->dir[l->n++] = dir;
}

/* The cache's node of key of rem, of kind (MC_FILE, MC_DIR; "" is the
 * remote's top): 1, or 0 when the mount does not show it (or the cache
 * cannot tell). */
static int cached(struct fs *fs, struct fs_remote *rem, const char *key,
		  int kind, struct mc_node *out)
{
	struct errbuf eb = { 0 };
	struct mc_node n = { 0 };
	const char *rel = key;
	size_t tl;

	if (fsi_remote_top(fs, rem, &n, &eb))
		return 0;
	tl = strlen(n.key);
	if (tl) {
		if (strncmp(key, n.key, tl) || (key[tl] != '/' && key[tl])) {
			mc_node_cleanup(&n);
			return 0;
		}
		rel = key + tl + (key[tl] == '/');
	}
	while (*rel) {
		const char *slash = strchr(rel, '/');
		size_t len = slash ? (size_t)(slash - rel) : strlen(rel);
		char *name = str_ndup(rel, len);
		uint64_t dir = n.ino;

		mc_node_cleanup(&n);
		memset(&n, 0, sizeof(n));
		if (!name || mcache_lookup(fs->mc, dir, name, &n)) {
			free(name);
			return 0;
		}
		free(name);
		rel += len + (slash ? 1 : 0);
	}
	if ((int)n.kind != kind) {
		mc_node_cleanup(&n);
		return 0;
	}
	*out = n;
	return 1;
}

static int shown(struct fs *fs, struct fs_remote *rem, const char *key,
		 struct mc_node *out)
{
	return cached(fs, rem, key, MC_FILE, out);
}

/* What the mount shows of a file's move (settle_move). */
enum shows { SHOW_NONE, SHOW_SRC, SHOW_DST, SHOW_BOTH };

/* Make the store match what the mount shows of a file's move of src to
 * dst that was stopped half way: the old name shown (the cache was not
 * updated), a copy at dst of the same ETag goes (S3: the copy landed, the
 * delete did not), or the object goes back to src if only dst holds it
 * (recorded like any move: ImageKit's takes steps too); the new name
 * shown (or neither: a cache made anew), src goes if it holds the same
 * ETag as dst; both shown, src goes only when dst's object is the copy of
 * a rename onto dst (the store's dst has src's ETag, not the one the cache
 * knows: the copy replaced it), else both stay (a file made under the new
 * name since). An object of another ETag is someone else's, or another
 * version: left, with a warning. *gone: the key deleted. */
static enum mfs_err settle_file_move(struct fs *fs, struct fs_remote *rem,
				     enum shows show,
				     const struct mc_node *ns,
				     const struct mc_node *nd, const char *src,
				     const char *dst, const char **gone,
				     struct errbuf *eb)
{
	struct backend *be = rem->be;
	struct obj_meta hs = { 0 }, hd = { 0 };
	enum mfs_err rs = be->ops->head(be, src, &hs, eb), rd;

	if (rs && rs != MFS_ENOTFOUND)
		return rs;
	rd = be->ops->head(be, dst, &hd, eb);
	if (rd == MFS_ENOTFOUND)
		return MFS_OK;	/* only src, or nothing: as shown */
	if (rd)
		return rd;
	if (show == SHOW_SRC && rs == MFS_OK) {
		if (strcmp(hs.etag, hd.etag)) {
			log_warn("remote [%s]: %s is shown, and %s, where a stopped daemon was moving it, holds another object (ETag %s, not %s): both kept",
				 be->name, src, dst, hd.etag, hs.etag);
			return MFS_OK;
		}
		log_info("remote [%s]: deleted %s, the copy of a move to it a stopped daemon left half done (the mount shows %s)",
			 be->name, dst, src);
		*gone = dst;
		return be->ops->del(be, dst, eb);
	}
	if (show == SHOW_SRC) {
		enum mfs_err rc;
		struct obj_meta out = { 0 };
		int left = 0;

		if (!ns->etag[0] || strcmp(ns->etag, hd.etag)) {
			log_warn("remote [%s]: the mount shows %s, which a stopped daemon moved to %s on the server, with another ETag (%s, not %s): left there",
				 be->name, src, dst, hd.etag, ns->etag);
			return MFS_OK;
		}
		rc = moves_begin(fs->cfg.journal, fs->mount_id, be, dst, src, 0,
				 eb);
		if (!rc && be->ops->move)
			rc = moves_move(be, dst, src, 0, &left, eb);
		else if (!rc)
			rc = be->ops->copy(be, dst, src, NULL, &out, eb);
		if (!rc && !be->ops->move)
			rc = be->ops->del(be, dst, eb);
		if (!rc)
			moves_end(fs->cfg.journal, fs->mount_id, be, dst, src, 0);
		if (!rc)
			log_info("remote [%s]: %s is back under its name: the mount shows it there, and a stopped daemon had moved it to %s",
				 be->name, src, dst);
		return rc;
	}
	if (rs != MFS_OK || strcmp(hs.etag, hd.etag))
		return MFS_OK;
	if (show == SHOW_BOTH && (!nd->etag[0] || !strcmp(nd->etag, hd.etag))) {
		log_info("remote [%s]: %s and %s are both shown, with the same bytes: a move between them a stopped daemon began is left as it is",
			 be->name, src, dst);
		return MFS_OK;
	}
	log_info("remote [%s]: deleted %s, moved to %s by a daemon stopped before the delete",
		 be->name, src, dst);
	*gone = src;
	return be->ops->del(be, src, eb);
}

/* The cache's node of key, if any, goes with the object settle_file_move
 * deleted there (its folder listed again). */
static void forget_key(struct fs *fs, struct fs_remote *rem, const char *key)
{
	struct mc_node n = { 0 };

	if (!shown(fs, rem, key, &n))
		return;
	if (!mcache_remove(fs->mc, n.ino))
		mcache_invalidate_dir(fs->mc, n.parent);
	mc_node_cleanup(&n);
}

/* ---- a folder: the move goes on ---- */

/* Every key at or below a folder on the store: its files, and its markers
 * ("dir/"), subfolders listed after their parent. */
struct tree {
	char **key;
	int n, cap;
	char **sub;	/* subfolders of the folder being listed */
	int nsub, capsub;
	const char *dir;
};

static enum mfs_err push(char ***v, int *n, int *cap, char *k)
{
	if (!k)
		return MFS_ENOMEM;
	if (*n == *cap) {
		int c = *cap * 2 + 16;
		char **nv = realloc(*v, sizeof(*nv) * (size_t)c);

		if (!nv) {
			free(k);
			return MFS_ENOMEM;
		}
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = k;
	return MFS_OK;
}

static enum mfs_err tree_entry(void *ud, const char *name,
			       const struct obj_meta *m)
{
	struct tree *t = ud;

	if (!*name)	/* the folder's own marker */
		return push(&t->key, &t->n, &t->cap, str_fmt("%s/", t->dir));
	if (m->kind == OBJ_DIR)
		return push(&t->sub, &t->nsub, &t->capsub,
			    str_fmt("%s/%s", t->dir, name));
	return push(&t->key, &t->n, &t->cap, str_fmt("%s/%s", t->dir, name));
}

static enum mfs_err tree_walk(struct backend *be, const char *dir,
			      struct tree *t, int depth, struct errbuf *eb)
{
	char **sub;
	int i, nsub;
	enum mfs_err rc;

	if (depth > 64)
		return eb_set(eb, MFS_EINVAL, "%s: folders nested too deep",
			      dir);
	t->dir = dir;
	t->sub = NULL;
	t->nsub = t->capsub = 0;
	rc = be->ops->list(be, dir, tree_entry, t, eb);
	sub = t->sub;
	nsub = t->nsub;
	for (i = 0; i < nsub; i++) {
		if (!rc)
			rc = tree_walk(be, sub[i], t, depth + 1, eb);
		free(sub[i]);
	}
	free(sub);
	return rc;
}

/* Does any file of t lie below the folder whose marker is mk ("dir/")? */
static int holds_files(const struct tree *t, const char *mk)
{
	size_t n = strlen(mk);
	int i;

	for (i = 0; i < t->n; i++)
		if (!strncmp(t->key[i], mk, n) && t->key[i][n] &&
		    !str_ends(t->key[i], "/"))
			return 1;
	return 0;
}

/* Finish a folder move of src to dst a kill stopped (S3: a COPY per key,
 * then the DELETEs; Supabase: a move per key, then the placeholders'
 * DELETEs): every key still under src goes to its place under dst (moved
 * where the store moves; else copied unless its copy, of the same ETag,
 * is there already, and deleted; another object there: it stays); a
 * marker of a folder that holds no file is made under dst. Then the cache
 * forgets src's folder and lists dst's parent again. 1 LIST per folder
 * under src, 1 HEAD and at most 2 more requests per key. */
static enum mfs_err settle_dir_move(struct fs *fs, struct fs_remote *rem,
				    const char *src, const char *dst,
				    struct errbuf *eb)
{
	struct backend *be = rem->be;
	struct tree t = { 0 };
	struct mc_node n = { 0 };
	size_t sl = strlen(src);
	enum mfs_err rc = tree_walk(be, src, &t, 0, eb);
	int i, moved = 0, kept = 0;

	if (rc == MFS_ENOTFOUND)
		rc = MFS_OK;	/* nothing left there */
	for (i = 0; i < t.n && !rc; i++) {
		char *k = t.key[i], *d = str_fmt("%s%s", dst, k + sl);
		struct obj_meta m = { 0 };
		struct obj_meta out = { 0 };

		if (!d) {
			rc = MFS_ENOMEM;
			break;
		}
		if (str_ends(k, "/")) {
			if (!holds_files(&t, k)) {
				d[strlen(d) - 1] = '\0';
				rc = be->ops->mkdir(be, d, NULL, eb);
			}
		} else {
			struct obj_meta mk = { 0 };

			rc = be->ops->head(be, d, &m, eb);
			if (rc == MFS_ENOTFOUND && be->ops->move) {
				/* one request, nothing left to delete */
				rc = be->ops->move(be, k, d, eb);
				if (!rc)
					moved++;
				free(d);
				continue;
			} else if (rc == MFS_ENOTFOUND) {
				rc = be->ops->copy(be, k, d, NULL, &out, eb);
			} else if (!rc && (be->ops->head(be, k, &mk, eb) ||
					   strcmp(mk.etag, m.etag))) {
				/* another object there: not this move's
				 * copy, so k is not known to be anywhere
				 * else; it stays */
				log_warn("remote [%s]: %s stays: %s holds another object (a folder move a stopped daemon began)",
					 be->name, k, d);
				kept++;
				free(d);
				continue;
			}
		}
		if (!rc)
			rc = be->ops->del(be, k, eb);
		if (!rc)
			moved++;
		free(d);
	}
	for (i = 0; i < t.n; i++)
		free(t.key[i]);
	free(t.key);
	if (rc)
		return rc;
	if (moved)
		log_info("remote [%s]: finished the move of the folder %s to %s a stopped daemon left half done (%d keys)",
			 be->name, src, dst, moved);
	if (cached(fs, rem, src, MC_DIR, &n)) {
		if (kept)	/* the folder stays, with what is left */
			mcache_invalidate_dir(fs->mc, n.ino);
		else if (!mcache_remove(fs->mc, n.ino))
			mcache_invalidate_dir(fs->mc, n.parent);
		mc_node_cleanup(&n);
	}
	{
		const char *slash = strrchr(dst, '/');
		char *parent = slash ? str_ndup(dst, (size_t)(slash - dst))
				     : strdup("");

		if (parent && cached(fs, rem, parent, MC_DIR, &n)) {
			mcache_invalidate_dir(fs->mc, n.ino);
			mc_node_cleanup(&n);
		}
		if (cached(fs, rem, dst, MC_DIR, &n)) {
			mcache_invalidate_dir(fs->mc, n.ino);
			mc_node_cleanup(&n);
		}
		free(parent);
	}
	return MFS_OK;
}

static enum mfs_err settle_move(struct fs *fs, struct fs_remote *rem,
				const char *src, const char *dst, int dir,
				int fresh, struct errbuf *eb)
{
	struct backend *be = rem->be;
	struct mc_node ns = { 0 }, nd = { 0 };
	enum mfs_err rc = MFS_OK;
	const char *gone = NULL;
	int at_src, at_dst;

	if (be->ops->move_undo)
		rc = be->ops->move_undo(be, src, dst, dir, eb);
	if (rc || (dir && be->ops->move_undo))
		return rc;
	if (dir)
		return settle_dir_move(fs, rem, src, dst, eb);
	/* a cache made anew at this mount shows the store's listing, not
	 * what the mount showed: neither */
	at_src = !fresh && shown(fs, rem, src, &ns);
	at_dst = !fresh && shown(fs, rem, dst, &nd);
	rc = settle_file_move(fs, rem,
			      at_src ? (at_dst ? SHOW_BOTH : SHOW_SRC)
				     : (at_dst ? SHOW_DST : SHOW_NONE),
			      &ns, &nd, src, dst, &gone, eb);
	mc_node_cleanup(&ns);
	mc_node_cleanup(&nd);
	if (!rc && gone)
		forget_key(fs, rem, gone);
	/* the copy replaced what the cache knows of dst: listed again */
	if (!rc && gone == src && at_dst)
		forget_key(fs, rem, dst);
	return rc;
}

enum mfs_err fsi_settle_move(struct fs *fs, struct fs_remote *rem,
			     const char *src, const char *dst, int dir,
			     struct errbuf *eb)
{
	return settle_move(fs, rem, src, dst, dir, 0, eb);
}

void fs_settle_moves(struct fs *fs)
{
	if (!fs->cfg.upq || !fs->cfg.journal)
		return;	/* a read-only mount changes nothing */
	struct left_moves l = { NULL, NULL, 0, 0 };
	int i, done = 0;

	if (journal_move_list(fs->cfg.journal, fs->mount_id, collect_move,
			      &l))
		log_warn("cannot read the journal's moves left half done");
	for (i = 0; i < l.n; i++) {
		char **m = l.v + i * 3;
		struct fs_remote *rem = m[0] ? fsi_remote_named(fs, m[0]) : NULL;
		struct errbuf eb = { 0 };

		if (!rem || !m[1] || !m[2])
			continue;	/* another mount's remote, or no memory */
		if (settle_move(fs, rem, m[1], m[2], l.dir[i],
				fs->cfg.cache_new, &eb)) {
			log_warn("remote [%s]: cannot settle the move of %s to %s a stopped daemon left half done (tried again at the next mount): %s",
				 m[0], m[1], m[2], eb.msg);
			continue;
		}
		moves_end(fs->cfg.journal, fs->mount_id, rem->be, m[1], m[2],
			  l.dir[i]);
		done++;
	}
	if (done)
		log_info("checked %d move%s a stopped daemon had begun on the server",
			 done, done == 1 ? "" : "s");
	for (i = 0; i < l.n * 3; i++)
		free(l.v[i]);
	free(l.v);
	free(l.dir);
}

