/* sigv4.h - AWS Signature Version 4 for S3, as pure functions (no I/O, no
 * clock: the caller passes the time). Owns nothing. Calls: OpenSSL, common.
 * Thread-safe. Follows API-NOTES A2: S3 encodes the path once and does not
 * normalise it; the query is sorted by encoded name, then value.
 */
#ifndef MFS_NET_SIGV4_H
#define MFS_NET_SIGV4_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A name/value pair; borrowed strings. value may be "" (never NULL). */
struct sigv4_pair {
	const char *name;
	const char *value;
};

struct sigv4_input {
	const char *method;		/* "GET" */
	const char *path;		/* raw, unencoded: "/bucket/my key" */
	const struct sigv4_pair *query;	/* unencoded parameters */
	int nquery;
	const struct sigv4_pair *headers; /* all headers to sign, any case */
	int nheaders;
	const char *payload_sha256;	/* hex, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;		/* "20130524T000000Z" */
	const char *region;
	const char *service;		/* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* Everything sigv4_sign computes; malloc'd strings, free with
 * sigv4_result_cleanup(). Intermediates are kept for tests and for logging
 * SignatureDoesNotMatch (they hold no secret). */
struct sigv4_result {
	char *canonical_uri;	/* also the path to put on the wire */
	char *canonical_query;	/* also the query to put on the wire */
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;
	char signature[65];
	char *authorization;	/* the Authorization header value */
};

/* Canonical URI: every byte but unreserved ones and '/' percent-encoded. */
enum mfs_err sigv4_canonical_uri(const char *path, struct buf *out);
/* Canonical query of n pairs (sorted, '/' encoded); "" when n == 0. */
enum mfs_err sigv4_canonical_query(const struct sigv4_pair *q, int n,
				   struct buf *out);
/* kSigning for (secret, "YYYYMMDD", region, service) into key[32]. */
void sigv4_signing_key(const char *secret, const char *date,
		       const char *region, const char *service,
		       unsigned char key[32]);
/* Hex SHA-256 of n bytes into out[65]. */
void sigv4_sha256_hex(const void *p, size_t n, char out[65]);
/* Content-MD5 header value (base64 of the raw MD5) of n bytes. */
void sigv4_content_md5(const void *p, size_t n, char out[25]);
/* The raw MD5 of its 32-digit hex form; -1 when hex is not one. */
int sigv4_md5_from_hex(const char *hex, unsigned char md[16]);
/* Content-MD5 header value of an MD5 given in hex; -1 when not one. */
int sigv4_md5_hex_b64(const char *hex, char out[25]);
/* The ETag S3 gives a multipart upload of n parts whose ETags (the parts'
 * hex MD5s) are etags[]: hex MD5 of the raw MD5s, "-n". -1 when a part's
 * ETag is not an MD5 or out (cap bytes) is too small. */
int sigv4_multipart_etag(char (*etags)[80], int n, char *out, size_t cap);
/* Sign; fills res. With a precomputed signing key (key != NULL) the secret
 * is not used. */
enum mfs_err sigv4_sign(const struct sigv4_input *in,
			const unsigned char *key, struct sigv4_result *res);
void sigv4_result_cleanup(struct sigv4_result *res);
/* "20130524T000000Z" for t (UTC seconds) into out[17]. */
void sigv4_amz_date(long long t, char out[17]);

#endif
