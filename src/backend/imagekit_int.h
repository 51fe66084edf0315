/* imagekit_int.h - what imagekit.c (configuration, names, the path index,
 * the request loop, searches, listing, reads) and imagekit_write.c
 * (uploads and their proof, metadata, copy, move, rename, deletes,
 * folders) share. Private to backend/imagekit. lock guards the index,
 * fields_lock the custom metadata state; the rest of struct ik is
 * read-only after creation.
 */
#ifndef MFS_BACKEND_IMAGEKIT_INT_H
#define MFS_BACKEND_IMAGEKIT_INT_H

#include <pthread.h>
#include <stdint.h>

#include "backend/backend.h"
#include "net/http.h"
#include "net/json.h"

#define LIST_MAX_BODY (64 * 1024 * 1024)
#define IDX_BUCKETS 4096
#define MAX_429 200		/* rate-limited answers before giving up */
#define JOB_TIMEOUT_S 3600
#define SEEN_BACK 2000		/* names compared for page overlaps */
/* The name a file or folder has between the steps of a move into another
 * folder under a new name (relocate() in imagekit_write.c): the prefix,
 * then 16 random hex digits. Listings of the mount leave such names out. */
#define IK_MOVE_PREFIX ".mediafs-mv-"

struct ik_ent {
	char *key;
	char *file_id;
	char *url;
	char *version;
	struct ik_ent *next;
};

struct ik {
	char *api;		/* "https://api.imagekit.io", no trailing '/' */
	char *upload;		/* "https://upload.imagekit.io" */
	char *endpoint;		/* URL endpoint, no trailing '/' */
	char *root;		/* "" or "/folder" (no trailing '/') */
	char *auth;		/* "Authorization: Basic ..." (secret) */
	int retries;
	long backoff_ms;
	int list_limit;
	struct http_client *http;

	pthread_mutex_t fields_lock;
	int fields;		/* guarded: 0 unknown, 1 ready, -1 unusable */

	pthread_mutex_t lock;
	struct ik_ent *idx[IDX_BUCKETS];	/* guarded */
};

struct ik_call {
	const char *method;
	const char *url;
	const char *what;		/* for messages */
	const char *json;		/* JSON body */
	const void *body;		/* or memory */
	size_t body_len;
	const char *ctype;		/* of body */
	const char *range;		/* "Range: ..." */
	int noauth;			/* delivery: never send the key */
	int once;			/* no retry (uploads) */
	char *dst;
	size_t dst_cap;
	uint64_t skip_on_200;
	unsigned long *counter;
	int64_t *date_ns;		/* out, may be NULL: the reply's Date
					 * (ImageKit's clock), 0 if none */
};

char *imagekit_path(const struct ik *ik, const char *key);
const char *imagekit_base_name(const char *key);
char *imagekit_parent(const struct ik *ik, const char *key,
		       const char **name);
void imagekit_ent_free(struct ik_ent *e);
void imagekit_idx_put(struct ik *ik, const char *key, const char *file_id,
		    const char *url, const char *version);
struct ik_ent *imagekit_idx_get(struct ik *ik, const char *key);
void imagekit_idx_drop(struct ik *ik, const char *key, int prefix);
enum mfs_err imagekit_do(struct backend *be, const struct ik_call *c,
			  struct http_response *resp, struct errbuf *eb);
enum mfs_err imagekit_json(struct backend *be, struct ik_call *c,
			    struct js **out, struct errbuf *eb);
enum mfs_err imagekit_api(struct backend *be, const char *method,
			const char *path, const char *json, const char *what,
			struct js **out, struct errbuf *eb);
enum mfs_err imagekit_api2(struct backend *be, const char *method,
			 const char *path, const char *what, const char *k1,
			 const char *v1, const char *k2, const char *v2,
			 int purge, struct js **out, struct errbuf *eb);
void imagekit_meta_from_file(const struct js *f, struct obj_meta *m);
void imagekit_remember(struct ik *ik, const char *key, const struct js *f);
/* Search the folder of key for it: a file (kind OBJ_FILE, remembered in
 * the index), else with dirs a folder. MFS_ENOTFOUND when neither. */
enum mfs_err imagekit_find(struct backend *be, const char *key, int dirs,
			   struct obj_meta *m, struct errbuf *eb);
/* imagekit_find, and *date_ns gets the Date of the search's reply: a
 * reading of ImageKit's clock (1 s resolution; 0 when absent). */
enum mfs_err imagekit_find_dated(struct backend *be, const char *key,
				 int dirs, struct obj_meta *m, int64_t *date_ns,
				 struct errbuf *eb);
/* A character ImageKit keeps in names (others become '_'). */
int imagekit_name_char_ok(unsigned char c);
enum mfs_err imagekit_lookup(struct backend *be, const char *key,
			   struct ik_ent **out, struct errbuf *eb);
enum mfs_err imagekit_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb);
/* imagekit_list, and with moving set also the names of moves under way
 * (IK_MOVE_PREFIX), which imagekit_list leaves out: for rmdir, whose
 * delete is recursive. */
enum mfs_err imagekit_list_all(struct backend *be, const char *dir,
			       int moving, backend_list_cb cb, void *ud,
			       struct errbuf *eb);
enum mfs_err imagekit_get(struct backend *be, const char *key, uint64_t off,
			   size_t len, const char *etag, char *dst,
			   size_t *got, struct errbuf *eb);
enum mfs_err imagekit_put(struct backend *be, const char *key,
			   const struct put_body *body,
			   const struct put_meta *meta, struct obj_meta *out,
			   struct errbuf *eb);
enum mfs_err imagekit_copy(struct backend *be, const char *src,
			    const char *dst, const struct put_meta *meta,
			    struct obj_meta *out, struct errbuf *eb);
enum mfs_err imagekit_move(struct backend *be, const char *src,
			    const char *dst, struct errbuf *eb);
enum mfs_err imagekit_del(struct backend *be, const char *key,
			   struct errbuf *eb);
enum mfs_err imagekit_del_many(struct backend *be, const char *const *keys,
				int n, int *failed, struct errbuf *eb);
enum mfs_err imagekit_mkdir(struct backend *be, const char *dir,
			     const struct put_meta *meta, struct errbuf *eb);
enum mfs_err imagekit_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb);
enum mfs_err imagekit_move_dir(struct backend *be, const char *src,
				const char *dst, struct errbuf *eb);
enum mfs_err imagekit_move_undo(struct backend *be, const char *src,
				const char *dst, int dir, struct errbuf *eb);
int imagekit_move_steps(const struct backend *be, const char *src,
			const char *dst, int dir);

#endif
