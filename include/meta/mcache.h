/* mcache.h - the metadata cache: one SQLite file (WAL) per mount id holding
 * inodes, directory listings and attributes, kept across remounts.
 * Owns: struct mcache and its connection. Calls: sqlite3, common.
 * Thread-safe: one connection, every call takes mc->lock.
 * Disposable by design: deleting the file costs speed, never data.
 *
 * Inode numbers are row ids (AUTOINCREMENT, never reused), so an inode the
 * kernel still holds can never name a different object; ino 1 is the mount
 * root. A directory's children are authoritative while listed_at + ttl is in
 * the future: a name absent from such a listing is a negative entry,
 * answered without a request.
 */
#ifndef MFS_META_MCACHE_H
#define MFS_META_MCACHE_H

#include <stdint.h>

#include "common/err.h"

#define MC_ROOT_INO 1

enum mc_kind { MC_FILE = 1, MC_DIR = 2 };

struct mc_node {
	uint64_t ino;
	uint64_t parent;
	int kind;		/* enum mc_kind */
	int rid;		/* remote id (mcache_remote), 0 = none */
	uint64_t size;		/* bytes */
	int64_t mtime_ns;
	uint32_t mode;		/* permission bits from the store, 0 = unknown */
	int full;		/* HEAD-level metadata known */
	int64_t listed_at;	/* dirs: seconds since epoch, 0 = never */
	int pending;		/* local changes not yet on the server: kept
				 * through listings, local attributes win */
	char name[256];
	char etag[80];		/* of the object on the server at key, "" if
				 * none is known there (new, never uploaded) */
	char ctype[128];
	char cc[128];		/* Cache-Control, "" when none/unknown */
	char stype[128];	/* type sniffed from the bytes of this etag's
				 * version, "" when none */
	char *key;		/* malloc'd object key; mc_node_cleanup() */
};

/* A child as a listing reports it (input to mcache_dir_replace). */
struct mc_entry {
	const char *name;
	int kind;
	uint64_t size;
	int64_t mtime_ns;
	const char *etag;	/* "" when unknown */
	uint32_t mode;		/* permission bits when the listing carries
				 * them (ImageKit's custom metadata), 0 =
				 * unknown */
};

struct mcache;

/* Open or create the cache at path. */
enum mfs_err mcache_open(const char *path, struct mcache **out,
			 struct errbuf *eb);
void mcache_close(struct mcache *mc);
/* Open the file again: a connection must not be used across fork(), so a
 * daemon calls this in the child. */
enum mfs_err mcache_reopen(struct mcache *mc, struct errbuf *eb);
void mc_node_cleanup(struct mc_node *n);

/* Stable id of a remote by name; ident describes where it points (type,
 * endpoint, bucket). When ident changed since the last mount, every node of
 * that remote is dropped. */
enum mfs_err mcache_remote(struct mcache *mc, const char *name,
			   const char *ident, int *rid, struct errbuf *eb);

/* Make ino 1 describe the mount root: a directory of remote rid at key
 * (rid 0 and key "" for the all-remotes root). Drops the old tree when the
 * root changed meaning. */
enum mfs_err mcache_set_root(struct mcache *mc, int rid, const char *key,
			     struct errbuf *eb);
/* Ensure a synthetic directory child (a remote under the all-remotes
 * root); keeps an existing row. */
enum mfs_err mcache_ensure_dir(struct mcache *mc, uint64_t parent,
			       const char *name, int rid, const char *key,
			       uint64_t *ino, struct errbuf *eb);

/* Node by inode / by (parent, name). MFS_ENOTFOUND when absent. The caller
 * cleans up *out with mc_node_cleanup. */
enum mfs_err mcache_get(struct mcache *mc, uint64_t ino, struct mc_node *out);
enum mfs_err mcache_lookup(struct mcache *mc, uint64_t parent,
			   const char *name, struct mc_node *out);

/* Replace the children of dir with a fresh listing of n entries, in one
 * transaction: existing names keep their inode (and HEAD-level metadata
 * while the etag is unchanged), vanished ones are dropped with their
 * subtrees, a changed kind gets a new inode. Sets listed_at = now_s. */
enum mfs_err mcache_dir_replace(struct mcache *mc, uint64_t dir,
				const struct mc_entry *e, int n, int64_t now_s,
				struct errbuf *eb);
/* A listing's number, taken before its request is sent: the children
 * changed here since (an upload landed, a file made or moved in, a HEAD)
 * are not swept by mcache_dir_replace_since for missing from it (the
 * server made the listing before they were there). */
int64_t mcache_list_begin(struct mcache *mc);
enum mfs_err mcache_dir_replace_since(struct mcache *mc, uint64_t dir,
				      const struct mc_entry *e, int n,
				      int64_t now_s, int64_t since,
				      struct errbuf *eb);

/* Call cb for every child of dir in name order; a non-zero return stops. */
typedef int (*mcache_child_cb)(void *ud, const struct mc_node *n);
enum mfs_err mcache_children(struct mcache *mc, uint64_t dir,
			     mcache_child_cb cb, void *ud);

/* Store HEAD-level metadata for ino (full = 1). */
enum mfs_err mcache_set_full(struct mcache *mc, uint64_t ino, uint64_t size,
			     int64_t mtime_ns, uint32_t mode, const char *etag,
			     const char *ctype, const char *cc);
/* The type sniffed from the first bytes of ino's version etag; it shows
 * in mc_node.stype while the node's etag is that one. */
enum mfs_err mcache_set_sniffed(struct mcache *mc, uint64_t ino,
				const char *etag, const char *type);
/* Mark dir's listing stale (listed_at = 0). */
enum mfs_err mcache_invalidate_dir(struct mcache *mc, uint64_t dir);

/* A child made here (create, mkdir): inserted, or an existing one of the
 * same kind updated in place (same inode). A new directory counts as
 * listed (it is empty). *ino gets the inode. */
enum mfs_err mcache_add(struct mcache *mc, uint64_t parent, const char *name,
			int kind, uint64_t size, int64_t mtime_ns,
			uint32_t mode, int pending, uint64_t *ino,
			struct errbuf *eb);

enum mc_set_bits {
	MC_SET_SIZE = 1 << 0, MC_SET_MTIME = 1 << 1, MC_SET_MODE = 1 << 2,
	MC_SET_ETAG = 1 << 3, MC_SET_CTYPE = 1 << 4, MC_SET_FULL = 1 << 5,
	MC_SET_PENDING = 1 << 6, MC_SET_CC = 1 << 7,
	MC_SET_NCOLS = 8,	/* how many bits above */
};

/* Fields to change on one node; mask says which (enum mc_set_bits). */
struct mc_set {
	unsigned mask;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	const char *etag;
	const char *ctype;
	int full;
	int pending;
	const char *cc;
};
enum mfs_err mcache_set(struct mcache *mc, uint64_t ino,
			const struct mc_set *s);
/* Forget ino and its subtree. */
enum mfs_err mcache_remove(struct mcache *mc, uint64_t ino);
/* Clear the pending mark of every file node; *inos (malloc'd, *n of them,
 * NULL when none) gets those nodes. */
enum mfs_err mcache_unpend_files(struct mcache *mc, uint64_t **inos,
				 size_t *n);
/* Forget the file of remote rid with key (an object deleted behind the
 * cache's back), unless it holds local changes not yet uploaded (pending).
 * *dropped (may be NULL) gets 1 when a node went. Its directory's listing
 * stays: the name is then absent, or asked for by name. */
/* The stored file (not pending) at key of remote rid, MFS_ENOTFOUND when
 * the cache has none. */
enum mfs_err mcache_stored_file(struct mcache *mc, int rid, const char *key,
				struct mc_node *out);
enum mfs_err mcache_forget_key(struct mcache *mc, int rid, const char *key,
			       int *dropped);
/* A number the cache keeps under name (0 when never set), and setting it:
 * marks of what the cache has taken in, e.g. the journal's events. */
enum mfs_err mcache_mark_get(struct mcache *mc, const char *name,
			     int64_t *v);
enum mfs_err mcache_mark_set(struct mcache *mc, const char *name, int64_t v);
/* Rename: ino becomes newparent/newname (an existing node there is
 * dropped); a directory's descendants get their new keys. */
enum mfs_err mcache_move(struct mcache *mc, uint64_t ino, uint64_t newparent,
			 const char *newname, struct errbuf *eb);

#endif
