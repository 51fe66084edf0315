/* s3_int.h - what s3.c (configuration, signing, the request loop, listing,
 * reads) and s3_write.c (uploads, copies, deletes, multipart) share.
 * Private to backend/s3. key_lock guards the cached signing key and the
 * clock skew; everything else in struct s3 is read-only after creation.
 */
#ifndef MFS_BACKEND_S3_INT_H
#define MFS_BACKEND_S3_INT_H

#include <pthread.h>

#include "backend/backend.h"
#include "net/http.h"
#include "net/sigv4.h"

struct s3 {
	char *scheme;		/* "http" or "https" */
	char *hostport;		/* endpoint host[:port], as signed */
	char *base_path;	/* endpoint path prefix, "" or "/storage/v1/s3" */
	char *region;
	char *bucket;
	int path_style;
	char *public_url;	/* base of the URLs shown (a CDN), or NULL;
				 * ends in '/' */
	char *access_key;	/* secret-ish: shown only as a 4-char prefix */
	char *secret_key;	/* secret: never logged, wiped on free */
	char *session_token;	/* secret */
	int retries;		/* attempts after the first */
	long backoff_ms;	/* base of the exponential backoff */
	struct http_client *http;

	pthread_mutex_t key_lock;
	char key_date[9];	/* guarded by key_lock */
	unsigned char signing_key[32]; /* guarded by key_lock */
	long clock_skew_s;	/* guarded by key_lock: server - local */
};

/* One request as the S3 layer sees it. */
struct s3_call {
	const char *method;
	const char *key;		/* object key, NULL for the bucket */
	const struct sigv4_pair *query;
	int nquery;
	const struct sigv4_pair *headers; /* extra headers, all signed */
	int nheaders;
	const char *payload_sha256;	/* NULL: empty body */
	const void *body;		/* request body in memory, or */
	const struct put_body *fbody;	/* from a file */
	size_t body_len;		/* of body */
	char *dst;			/* GET into memory */
	size_t dst_cap;
	/* or streamed (http_request's sink): not retried once a byte
	 * went to the sink */
	enum mfs_err (*sink)(void *ud, const struct http_response *resp,
			     const char *p, size_t n, struct errbuf *eb);
	void *sink_ud;
	uint64_t skip_on_200;
	size_t max_body;
	int may_200_error;		/* 200 with <Error> possible (copy) */
	/* Proof of a 2xx reply, or NULL: MFS_OK accepts it, MFS_ETRANSIENT
	 * retries it (the reply does not prove the request was done: no
	 * ETag, a wrong one, a short body), anything else is returned. */
	enum mfs_err (*check)(const struct s3_call *call,
			      const struct http_response *resp,
			      struct errbuf *eb);
	const void *check_ud;		/* what check compares against */
	int replay_safe;		/* a POST that may be sent twice */
	/* non-NULL: set to 1 when an attempt got no reply (the connection
	 * died, a timeout): the server may have done it anyway */
	int *unanswered;
};

/* Run call with retries (re-signed each time). On MFS_OK resp holds a 2xx
 * reply; otherwise eb says what the server said, in words. */
enum mfs_err s3_do(struct backend *be, const struct s3_call *call,
		   struct http_response *resp, struct errbuf *eb);
/* An ETag without its quotes, cut to cap. */
void s3_strip_etag(const char *in, char *out, size_t cap);
/* A 2xx reply to a ranged GET that proves it carries bytes [off, off+len)
 * of the object etag (or its end): the s3_call check of reads. ud is a
 * struct s3_range. */
struct s3_range {
	uint64_t off;
	size_t len;
	const char *etag;	/* expected, NULL or "": any */
};
enum mfs_err s3_check_range(const struct s3_call *call,
			    const struct http_response *resp,
			    struct errbuf *eb);
/* The same proof from the status and headers alone: *need is the number of
 * body bytes the reply must carry. */
enum mfs_err s3_range_need(const struct s3_call *call,
			   const struct http_response *resp, uint64_t *need,
			   struct errbuf *eb);

enum mfs_err s3_put(struct backend *be, const char *key,
		    const struct put_body *body, const struct put_meta *meta,
		    struct obj_meta *out, struct errbuf *eb);
enum mfs_err s3_copy(struct backend *be, const char *src, const char *dst,
		     const struct put_meta *meta, struct obj_meta *out,
		     struct errbuf *eb);
enum mfs_err s3_del(struct backend *be, const char *key, struct errbuf *eb);
enum mfs_err s3_del_many(struct backend *be, const char *const *keys, int n,
			 int *failed, struct errbuf *eb);
enum mfs_err s3_mkdir(struct backend *be, const char *dir,
		      const struct put_meta *meta, struct errbuf *eb);
enum mfs_err s3_rmdir(struct backend *be, const char *dir, struct errbuf *eb);
enum mfs_err s3_mp_begin(struct backend *be, const char *key,
			 const struct put_meta *meta, char **upload_id,
			 int *unanswered, struct errbuf *eb);
enum mfs_err s3_mp_part(struct backend *be, const char *key,
			const char *upload_id, int part,
			const struct put_body *body, char etag[80],
			struct errbuf *eb);
enum mfs_err s3_mp_complete(struct backend *be, const char *key,
			    const char *upload_id, char (*etags)[80],
			    int nparts, struct obj_meta *out,
			    struct errbuf *eb);
enum mfs_err s3_mp_list(struct backend *be, const char *key,
			backend_mp_cb cb, void *ud, struct errbuf *eb);
enum mfs_err s3_mp_abort(struct backend *be, const char *key,
			 const char *upload_id, struct errbuf *eb);

#endif
