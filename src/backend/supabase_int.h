/* supabase_int.h - what supabase.c (configuration, the request loop, keys,
 * buckets, listing, reads) and supabase_write.c (uploads: one PUT or TUS,
 * move, copy, deletes, mkdir, rmdir) share. Private to backend/supabase.
 * lock guards the bucket table and the list-v1 fallback flag; the rest of
 * struct supa is read-only after creation.
 */
#ifndef MFS_BACKEND_SUPABASE_INT_H
#define MFS_BACKEND_SUPABASE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/keylock.h"
#include "net/http.h"
#include "net/json.h"

#define PLACEHOLDER ".emptyFolderPlaceholder"
#define TUS_CHUNK (6 * 1024 * 1024)
#define LIST_LIMIT 1000
#define LIST_MAX_BODY (16 * 1024 * 1024)
#define MAX_PAGES 1000000

struct bucket_info {
	char *name;
	int public;
};

struct supa {
	char *base;		/* ".../storage/v1" (or the server's root
				 * when api_path is empty), no trailing '/' */
	char *origin;		/* "scheme://host[:port]": for relative TUS
				 * Locations */
	char *key;		/* secret: never logged, wiped on free */
	int jwt;		/* legacy key: also sent as Bearer */
	int public_new;		/* buckets made by mkdir are public */
	uint64_t tus_threshold;	/* larger uploads go through TUS */
	int retries;
	long backoff_ms;
	struct http_client *http;
	struct keylock *moves;	/* "bucket/key"s a move is about: one move
				 * of a key at a time (API-NOTES F19) */

	pthread_mutex_t lock;
	int v1_only;			/* guarded: list-v2 unavailable */
	struct bucket_info *buckets;	/* guarded */
	int nbuckets;			/* guarded */
};

/* One request as this backend sees it. */
struct sb_call {
	const char *method;
	const char *url;		/* full, encoded */
	const char *what;		/* for messages: "bucket/key" */
	const char *const *headers;	/* extra "Name: value", NULL-ended */
	const char *json;		/* JSON body */
	const struct put_body *fbody;	/* or a file range */
	const void *body;		/* or memory (body_len bytes) */
	size_t body_len;
	char *dst;
	size_t dst_cap;
	uint64_t skip_on_200;
	size_t max_body;
	unsigned long *counter;		/* be->stats field */
	int once;			/* not idempotent: a transient failure
					 * returns MFS_ETRANSIENT at once, the
					 * caller re-checks */
};

struct sb_error {
	long status;		/* body statusCode (string or number) */
	char code[64];
	char error[64];
	char message[256];
};

/* Run c with retries of what the server says is worth retrying. On MFS_OK
 * resp holds a 2xx reply; otherwise eb says what the server said (from a
 * JSON or a text/plain body). */
enum mfs_err supabase_do(struct backend *be, const struct sb_call *c,
			 struct http_response *resp, struct errbuf *eb);
/* Run a call whose 2xx body is JSON; *out gets it (js_free it). */
enum mfs_err supabase_json(struct backend *be, struct sb_call *c,
			   struct js **out, struct errbuf *eb);
/* base + "/" + part + "/" + bucket + "/" + rest encoded per segment
 * (malloc'd; NULL when out of memory). */
char *supabase_obj_url(struct supa *sb, const char *part, const char *bucket,
		       const char *rest);
/* Split "bucket/rest" into a malloc'd bucket and a pointer into key. */
enum mfs_err supabase_split(const char *key, char **bucket, const char **rest);
/* The object behind key: "d/" (a directory marker) is d's placeholder. */
char *supabase_real_key(const char *key);
/* Object info (GET /object/info/authenticated); version (may be NULL, cap
 * 80) gets the object's version id. */
enum mfs_err supabase_info(struct backend *be, const char *key,
			   struct obj_meta *out, char *version,
			   struct errbuf *eb);
enum mfs_err supabase_head(struct backend *be, const char *key,
			   struct obj_meta *out, struct errbuf *eb);
void supabase_strip_etag(const char *in, char *out, size_t cap);
void supabase_meta_from_sys(const struct js *entry, struct obj_meta *m);
void supabase_meta_from_user(const struct js *um, struct obj_meta *m);
/* The bucket table (under lock). */
void supabase_remember_bucket(struct supa *sb, const char *name, int public);
void supabase_forget_bucket(struct supa *sb, const char *name);

/* The write operations of the vtable (supabase_write.c). */
enum mfs_err supabase_put(struct backend *be, const char *key,
			  const struct put_body *body,
			  const struct put_meta *meta, struct obj_meta *out,
			  struct errbuf *eb);
enum mfs_err supabase_copy(struct backend *be, const char *src,
			   const char *dst, const struct put_meta *meta,
			   struct obj_meta *out, struct errbuf *eb);
enum mfs_err supabase_move(struct backend *be, const char *src,
			   const char *dst, struct errbuf *eb);
enum mfs_err supabase_del(struct backend *be, const char *key,
			  struct errbuf *eb);
enum mfs_err supabase_del_many(struct backend *be, const char *const *keys,
			       int n, int *failed, struct errbuf *eb);
enum mfs_err supabase_mkdir(struct backend *be, const char *dir,
			    const struct put_meta *meta, struct errbuf *eb);
enum mfs_err supabase_rmdir(struct backend *be, const char *dir,
			    struct errbuf *eb);

#endif
