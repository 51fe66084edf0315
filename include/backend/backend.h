/* backend.h - the boundary every storage provider implements.
 * Owns: struct backend_ops (a const vtable with capability bits), struct
 * obj_meta (our metadata model: no provider header leaks past backend/), the
 * registry that creates a backend from its config section.
 * Calls: net, common. Never meta/ or core/. Each backend parses its own
 * section. All ops are thread-safe unless a backend says otherwise.
 * Keys are full object keys inside the remote's namespace (bucket), without
 * a leading '/'; directories are named without their trailing '/'; "" is the
 * root.
 */
#ifndef MFS_BACKEND_BACKEND_H
#define MFS_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ini.h"

enum obj_kind { OBJ_NONE = 0, OBJ_FILE = 1, OBJ_DIR = 2 };

/* Capability bits: what a backend can do natively or safely emulate. */
enum backend_cap {
	BE_CAP_RANGE_READ = 1 << 0,	/* ranged GET honoured */
	BE_CAP_WRITE = 1 << 1,		/* put/delete */
	BE_CAP_SERVER_COPY = 1 << 2,	/* server-side copy */
	BE_CAP_USER_MTIME = 1 << 3,	/* mtime/mode kept in user metadata */
	BE_CAP_DIR_MARKERS = 1 << 4,	/* empty dirs as marker objects */
	BE_CAP_MULTIPART = 1 << 5,	/* mp_* operations */
	BE_CAP_BUCKETS = 1 << 6,	/* the first key segment is a bucket:
					 * mkdir/rmdir there create/delete it,
					 * at once (never a lazy marker) */
	BE_CAP_LAZY_ATTRS = 1 << 7,	/* listings carry names only: sizes
					 * and times come from head, asked
					 * for when someone needs them */
	BE_CAP_FOLDERS = 1 << 8,	/* directories are objects of their
					 * own: they stay when their last
					 * file goes, and move_dir renames
					 * one on the server */
	BE_CAP_NO_EMPTY = 1 << 9,	/* cannot store a 0-byte file */
	BE_CAP_NO_CLOBBER = 1 << 10,	/* move refuses an existing target:
					 * renaming a stored file over
					 * another is EEXIST */
	BE_CAP_TYPES = 1 << 11,		/* keeps the content type sent with
					 * a put or a metadata-replacing
					 * copy (ImageKit decides its own) */
	BE_CAP_MARKER_OBJECTS = 1 << 12, /* a directory marker is an object
					 * of its own ("dir/"), beside the
					 * files below it: it stays when
					 * files arrive until deleted (S3,
					 * Supabase; not a real directory) */
};

/* Part size for a multipart upload of size bytes: equal parts of
 * max(8 MiB, ceil(size / 10000) rounded up to 1 MiB) (API-NOTES A9). */
uint64_t backend_part_size(uint64_t size);

struct obj_meta {
	enum obj_kind kind;
	uint64_t size;		/* bytes */
	int64_t mtime_ns;	/* user mtime if stored, else server time */
	int64_t server_mtime_ns; /* server's Last-Modified */
	uint32_t mode;		/* permission bits from user metadata, 0 = none */
	int full;		/* 1 when from HEAD (user metadata and content
				 * type known), 0 when from a listing */
	char etag[80];		/* without quotes, "" when unknown */
	char content_type[128];	/* "" when unknown */
	char cache_control[128];	/* "" when none or unknown */
	char id[64];		/* the provider's id of the object (ImageKit's
				 * fileId), "" when it has none */
};

/* Metadata sent with an upload or a metadata-replacing copy. */
struct put_meta {
	const char *content_type;	/* NULL: application/octet-stream */
	const char *cache_control;	/* NULL: none */
	int64_t mtime_ns;		/* 0: none */
	uint32_t mode;			/* full st_mode, 0: none */
	int has_owner;
	uint32_t uid, gid;
};

/* A request body: len bytes of fd at off. sha256 is the hex SHA-256 of
 * exactly those bytes, or NULL to send it unsigned; md5 their hex MD5
 * (required when len > 0: S3 sends it as Content-MD5, so the server checks
 * the body, and compares it with the ETag it answers). */
struct put_body {
	int fd;
	uint64_t off;
	uint64_t len;
	const char *sha256;
	const char *md5;
};

struct backend;

/* Called once per listing entry; name is one path component, borrowed for
 * the call. A non-zero return stops the listing and is returned. On a
 * backend with BE_CAP_MARKER_OBJECTS the listed directory's own marker
 * object, when the store holds one, comes as an entry named "" (kind
 * OBJ_DIR): not a child, the news that the marker is stored. */
typedef enum mfs_err (*backend_list_cb)(void *ud, const char *name,
					const struct obj_meta *m);

/* One multipart upload in progress: its id and when the server started it
 * (ns since the epoch, 0 = not said). */
typedef enum mfs_err (*backend_mp_cb)(void *ud, const char *upload_id,
				      int64_t initiated_ns);

/* Called with each piece of a streamed body, in order; p is borrowed for
 * the call. A non-zero return stops the transfer and is returned (the
 * callback fills eb). */
typedef enum mfs_err (*backend_sink_cb)(void *ud, const char *p, size_t n,
					struct errbuf *eb);

struct backend_ops {
	const char *type;	/* "s3" */
	unsigned caps;		/* enum backend_cap */
	/* List the direct children of directory dir, every page. */
	enum mfs_err (*list)(struct backend *be, const char *dir,
			     backend_list_cb cb, void *ud, struct errbuf *eb);
	/* Metadata of one object; MFS_ENOTFOUND when absent. */
	enum mfs_err (*head)(struct backend *be, const char *key,
			     struct obj_meta *out, struct errbuf *eb);
	/* Read up to len bytes at off into dst; *got says how many (short
	 * only at the end of the object). With etag non-NULL and non-empty,
	 * MFS_ECONFLICT when the object changed since. */
	enum mfs_err (*get)(struct backend *be, const char *key, uint64_t off,
			    size_t len, const char *etag, char *dst,
			    size_t *got, struct errbuf *eb);
	/* Optional (NULL: callers use get): one request for up to len bytes
	 * at off, handed to sink as they arrive (fewer only at the end of the
	 * object). Retried like get until the first byte is handed over;
	 * after that a failure ends it (MFS_ETRANSIENT for a broken
	 * connection or a short body): the caller keeps what it got and asks
	 * again for the rest. With etag non-NULL and non-empty,
	 * MFS_ECONFLICT, before any byte, when the object changed since. */
	enum mfs_err (*get_stream)(struct backend *be, const char *key,
				   uint64_t off, uint64_t len,
				   const char *etag, backend_sink_cb sink,
				   void *ud, struct errbuf *eb);
	/* The object's URL, malloc'd. */
	enum mfs_err (*url)(struct backend *be, const char *key, char **out);
	/* The provider's id of the object, malloc'd (NULL: it has none;
	 * MFS_ENODATA: no such object). */
	enum mfs_err (*file_id)(struct backend *be, const char *key,
				char **out);

	/* Writes (BE_CAP_WRITE). put stores body at key atomically; out gets
	 * at least the etag. */
	enum mfs_err (*put)(struct backend *be, const char *key,
			    const struct put_body *body,
			    const struct put_meta *meta, struct obj_meta *out,
			    struct errbuf *eb);
	/* Server-side copy src -> dst; with meta, the metadata is replaced
	 * (src == dst updates metadata in place), else copied. */
	enum mfs_err (*copy)(struct backend *be, const char *src,
			     const char *dst, const struct put_meta *meta,
			     struct obj_meta *out, struct errbuf *eb);
	/* Server-side move src -> dst, replacing dst (NULL: the core copies
	 * and deletes). */
	enum mfs_err (*move)(struct backend *be, const char *src,
			     const char *dst, struct errbuf *eb);
	/* BE_CAP_FOLDERS: rename directory src (and all below it) to dst,
	 * which does not exist, on the server; MFS_OK when src was never
	 * stored there. */
	enum mfs_err (*move_dir)(struct backend *be, const char *src,
				 const char *dst, struct errbuf *eb);
	/* A move of src to dst (dir: a folder) that takes several requests,
	 * stopped between them (a kill, a failed step whose undo failed
	 * too): what it left under a name of the move's own goes back to src
	 * (nothing left: MFS_OK). NULL: a move is one request. The core
	 * records such moves in the journal while they run (core/moves). */
	enum mfs_err (*move_undo)(struct backend *be, const char *src,
				  const char *dst, int dir,
				  struct errbuf *eb);
	/* How many requests move (or move_dir: dir) of src to dst takes;
	 * more than 1: the core records the move while it runs. NULL: one
	 * (a move the core makes of copies is recorded by the core). */
	int (*move_steps)(const struct backend *be, const char *src,
			  const char *dst, int dir);
	/* Delete one object; deleting a missing one succeeds. */
	enum mfs_err (*del)(struct backend *be, const char *key,
			    struct errbuf *eb);
	/* Delete up to 1000 objects in one request; *failed counts keys the
	 * server refused (eb names the first). */
	enum mfs_err (*del_many)(struct backend *be, const char *const *keys,
				 int n, int *failed, struct errbuf *eb);
	/* Directory markers: mkdir stores dir as an empty directory, rmdir
	 * removes the marker (emptiness is checked by the caller). */
	enum mfs_err (*mkdir)(struct backend *be, const char *dir,
			      const struct put_meta *meta, struct errbuf *eb);
	enum mfs_err (*rmdir)(struct backend *be, const char *dir,
			      struct errbuf *eb);

	/* Multipart upload (BE_CAP_MULTIPART): parts of part_size bytes
	 * except the last, numbered from 1, any order and in parallel.
	 * mp_begin sets *unanswered to 1 when an attempt went without a
	 * usable reply (connection lost, no UploadId): the server may have
	 * started an upload whose id nobody knows, to settle with
	 * backend_mp_sweep (whether or not a later attempt succeeded). */
	enum mfs_err (*mp_begin)(struct backend *be, const char *key,
				 const struct put_meta *meta, char **upload_id,
				 int *unanswered, struct errbuf *eb);
	enum mfs_err (*mp_part)(struct backend *be, const char *key,
				const char *upload_id, int part,
				const struct put_body *body, char etag[80],
				struct errbuf *eb);
	enum mfs_err (*mp_complete)(struct backend *be, const char *key,
				    const char *upload_id,
				    char (*etags)[80], int nparts,
				    struct obj_meta *out, struct errbuf *eb);
	enum mfs_err (*mp_abort)(struct backend *be, const char *key,
				 const char *upload_id, struct errbuf *eb);
	/* The multipart uploads in progress of exactly key, cb for each; a
	 * cb error stops the listing and is returned. NULL: the provider
	 * cannot list them. */
	enum mfs_err (*mp_list)(struct backend *be, const char *key,
				backend_mp_cb cb, void *ud,
				struct errbuf *eb);
	/* Names the provider refuses (NULL: any name str_bad_name allows).
	 * Returns non-zero and a reason in why for a key (a directory when
	 * is_dir) the server would refuse, so nothing is sent: 2 when it is
	 * longer than the store holds (ENAMETOOLONG), else 1 (EINVAL). */
	int (*check_key)(struct backend *be, const char *key, int is_dir,
			 char *why, size_t cap);
	void (*free)(struct backend *be);
};

/* Requests sent, by kind (a batch delete is one); reported at unmount;
 * updated atomically. */
struct backend_stats {
	unsigned long list, head, get, put, copy, del, other, retries;
};

struct backend {
	const struct backend_ops *ops;
	char *name;		/* the remote's name (config section) */
	char *ident;		/* where it points ("s3 https://host bucket");
				 * a cache made for another ident is dropped */
	void *priv;		/* the backend's own state */
	struct backend_stats stats;
};

/* Create the backend named by sec's "type" key. Every key of sec must be
 * understood by it: an unknown key is an error naming its line. */
enum mfs_err backend_create(struct ini *ini, struct ini_section *sec,
			    struct backend **out, struct errbuf *eb);
void backend_free(struct backend *be);

/* Each provider's constructor (registry entries). */
enum mfs_err s3_backend_create(struct ini *ini, struct ini_section *sec,
			       struct backend **out, struct errbuf *eb);
enum mfs_err local_backend_create(struct ini *ini, struct ini_section *sec,
				  struct backend **out, struct errbuf *eb);
enum mfs_err supabase_backend_create(struct ini *ini, struct ini_section *sec,
				     struct backend **out, struct errbuf *eb);
enum mfs_err imagekit_backend_create(struct ini *ini, struct ini_section *sec,
				     struct backend **out, struct errbuf *eb);
enum mfs_err urllist_backend_create(struct ini *ini, struct ini_section *sec,
				    struct backend **out, struct errbuf *eb);

/* Refuse a key of sec that is not in known (NULL-terminated), naming its
 * line; constructors call it first, so a typo is reported as a typo. */
enum mfs_err backend_check_keys(const struct ini *ini,
				const struct ini_section *sec,
				const char *const *known, struct errbuf *eb);

/* Keys every remote may hold that the layers above read (write hooks);
 * set once before backends are created. */
void backend_accept_keys(const char *const *keys);

/* An unsigned option key of sec: def when absent, at most max; where
 * names the section in the message. */
enum mfs_err backend_opt_u64(struct ini_section *sec, const char *key,
			     uint64_t def, uint64_t max, const char *where,
			     uint64_t *out, struct errbuf *eb);

/* A backend of ops named after sec, with a zeroed private part of
 * priv_size bytes in be->priv; NULL when memory ran out. */
struct backend *backend_alloc(const struct backend_ops *ops,
			      const struct ini_section *sec, size_t priv_size);
/* Free what backend_alloc made (be->priv itself, not what it points to),
 * and be->ident. */
void backend_dealloc(struct backend *be);

/* Abort every multipart upload of key the server started at or after
 * since_ns (its clock) and that is not keep (NULL = none): what a start
 * whose reply never came left behind. *aborted counts them. MFS_EUNSUPP
 * when the backend cannot list uploads. Thread-safe as the backend. */
enum mfs_err backend_mp_sweep(struct backend *be, const char *key,
			      int64_t since_ns, const char *keep,
			      int *aborted, struct errbuf *eb);
/* How far before a start (local clock) a sweep looks, for a server whose
 * clock differs from ours. */
#define BACKEND_MP_CLOCK_SLACK_S 60

struct http_client;
/* What every HTTP backend reads the same way: retries (default
 * def_retries, at most 100), retry_base_ms (default 200) and ca_file
 * (NULL-safe when the backend does not accept the key), and the client
 * built from them. */
enum mfs_err backend_http(struct ini_section *sec, int def_retries,
			  const char *where, int *retries, long *backoff_ms,
			  struct http_client **http, struct errbuf *eb);

#endif
