/* s3.c - S3 and S3-compatible stores (AWS, R2, Tigris, MinIO, Supabase S3).
 * Speaks ListObjectsV2, HEAD and ranged GET (API-NOTES A), signs with
 * net/sigv4 and retries with backoff on 5xx, throttling, resets and
 * timeouts, never on other 4xx. Calls: net, common.
 * key_lock guards the cached signing key and its date; everything else in
 * struct s3 is read-only after creation, so ops are thread-safe.
 */
#include "backend/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"
#include "net/http.h"
#include "net/sigv4.h"
#include "net/xml.h"
#include "s3_int.h"

#define LIST_MAX_BODY (8 * 1024 * 1024)
/* 100,000 pages of 1,000 keys: a directory of 10^8 entries; past that a
 * server that sends ever new tokens is paging in circles too. */
#define MAX_PAGES 100000

/* One request of call, counted by kind (the only place that counts). */
static void count(struct backend *be, const struct s3_call *call)
{
	unsigned long *c = &be->stats.other;
	const char *m = call->method;
	int i;

	if (!strcmp(m, "GET"))
		c = call->key ? &be->stats.get
			      : (call->nquery ? &be->stats.list : c);
	else if (!strcmp(m, "HEAD"))
		c = &be->stats.head;
	else if (!strcmp(m, "PUT"))
		c = &be->stats.put;
	else if (!strcmp(m, "DELETE"))
		c = &be->stats.del;
	else if (!strcmp(m, "POST") && !call->key)	/* DeleteObjects */
		c = &be->stats.del;
	for (i = 0; i < call->nheaders; i++)	/* CopyObject is a PUT */
		if (!strcmp(call->headers[i].name, "x-amz-copy-source"))
			c = &be->stats.copy;
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static enum mfs_err build_path(struct s3 *s3, const char *key, struct buf *out)
{
	enum mfs_err rc = buf_adds(out, s3->base_path);

	if (!rc && s3->path_style) {
		rc = buf_addf(out, "/%s", s3->bucket);
		if (!rc && key)
			rc = buf_addf(out, "/%s", key);
	} else if (!rc) {
		rc = buf_addf(out, "/%s", key ? key : "");
	}
	return rc;
}

static const char *host_for(struct s3 *s3, struct buf *tmp)
{
	if (s3->path_style)
		return s3->hostport;
	buf_reset(tmp);
	if (buf_addf(tmp, "%s.%s", s3->bucket, s3->hostport))
		return NULL;
	return tmp->data;
}

/* Sign and describe one attempt: fills headers[] ("Name: value" strings,
 * malloc'd, NULL-terminated) and the URL. */
static enum mfs_err prepare(struct s3 *s3, const struct s3_call *call,
			    char ***hdr_out, char **url_out,
			    struct sigv4_result *sig)
{
	struct sigv4_pair *hv = NULL;
	struct sigv4_input in = { 0 };
	struct buf path, hostbuf;
	char amz_date[17], **hdr = NULL;
	const char *host;
	unsigned char key[32];
	enum mfs_err rc;
	int i, n = 0;

	*hdr_out = NULL;
	*url_out = NULL;
	buf_init(&path, 0);
	buf_init(&hostbuf, 0);
	rc = build_path(s3, call->key, &path);
	host = host_for(s3, &hostbuf);
	if (!rc && !host)
		rc = MFS_ENOMEM;
	hv = calloc((size_t)call->nheaders + 4, sizeof(*hv));
	hdr = calloc((size_t)call->nheaders + 5, sizeof(*hdr));
	if (!rc && (!hv || !hdr))
		rc = MFS_ENOMEM;
	if (rc)
		goto out;

	pthread_mutex_lock(&s3->key_lock);
	sigv4_amz_date((long long)time(NULL) + s3->clock_skew_s, amz_date);
	if (strncmp(s3->key_date, amz_date, 8)) {
		memcpy(s3->key_date, amz_date, 8);
		s3->key_date[8] = '\0';
		sigv4_signing_key(s3->secret_key, s3->key_date, s3->region,
				  "s3", s3->signing_key);
	}
	memcpy(key, s3->signing_key, sizeof(key));
	pthread_mutex_unlock(&s3->key_lock);

	hv[n++] = (struct sigv4_pair){ "host", host };
	hv[n++] = (struct sigv4_pair){ "x-amz-content-sha256",
				       call->payload_sha256 ?
				       call->payload_sha256 :
				       SIGV4_EMPTY_SHA256 };
	hv[n++] = (struct sigv4_pair){ "x-amz-date", amz_date };
	if (s3->session_token)
		hv[n++] = (struct sigv4_pair){ "x-amz-security-token",
					       s3->session_token };
	for (i = 0; i < call->nheaders; i++)
		hv[n++] = call->headers[i];

	in.method = call->method;
	in.path = path.data;
	in.query = call->query;
	in.nquery = call->nquery;
	in.headers = hv;
	in.nheaders = n;
	in.payload_sha256 = call->payload_sha256 ? call->payload_sha256
						 : SIGV4_EMPTY_SHA256;
	in.amz_date = amz_date;
	in.region = s3->region;
	in.service = "s3";
	in.access_key = s3->access_key;
	rc = sigv4_sign(&in, key, sig);
	explicit_bzero(key, sizeof(key));
	if (rc)
		goto out;
	/* host is set by curl from the URL; everything else explicitly. */
	for (i = 1; i < n && !rc; i++) {
		hdr[i - 1] = str_fmt("%s: %s", hv[i].name, hv[i].value);
		if (!hdr[i - 1])
			rc = MFS_ENOMEM;
	}
	if (!rc) {
		hdr[n - 1] = str_fmt("Authorization: %s", sig->authorization);
		*url_out = str_fmt("%s://%s%s%s%s", s3->scheme, host,
				   sig->canonical_uri,
				   *sig->canonical_query ? "?" : "",
				   sig->canonical_query);
		if (!hdr[n - 1] || !*url_out)
			rc = MFS_ENOMEM;
	}
out:
	free(hv);
	buf_cleanup(&path);
	buf_cleanup(&hostbuf);
	if (rc) {
		for (i = 0; hdr && hdr[i]; i++)
			free(hdr[i]);
		free(hdr);
		free(*url_out);
		*url_out = NULL;
		return rc;
	}
	*hdr_out = hdr;
	return MFS_OK;
}

struct s3_error {
	char *code;
	char *message;
	char *region;		/* <Region> of AuthorizationHeaderMalformed */
	char *endpoint;		/* <Endpoint> of PermanentRedirect */
	char *server_time;	/* <ServerTime> of RequestTimeTooSkewed */
	char *canonical_request; /* of SignatureDoesNotMatch */
};

static void s3_error_cleanup(struct s3_error *e)
{
	free(e->code);
	free(e->message);
	free(e->region);
	free(e->endpoint);
	free(e->server_time);
	free(e->canonical_request);
	memset(e, 0, sizeof(*e));
}

/* Parse an <Error> document. Returns 1 if body is one, 0 otherwise. */
static int parse_error(const struct buf *body, struct s3_error *e)
{
	struct xml_doc *doc = NULL;
	const struct xml_node *root;

	memset(e, 0, sizeof(*e));
	if (!body->len || xml_parse(body->data, body->len, &doc, NULL))
		return 0;
	root = xml_root(doc);
	if (strcmp(xml_name(root), "Error")) {
		xml_free(doc);
		return 0;
	}
	e->code = xml_child_text(root, "Code");
	e->message = xml_child_text(root, "Message");
	e->region = xml_child_text(root, "Region");
	e->endpoint = xml_child_text(root, "Endpoint");
	e->server_time = xml_child_text(root, "ServerTime");
	e->canonical_request = xml_child_text(root, "CanonicalRequest");
	xml_free(doc);
	return 1;
}

static int code_is(const struct s3_error *e, const char *code)
{
	return e->code && !strcmp(e->code, code);
}

static int transient_code(const struct s3_error *e)
{
	static const char *const codes[] = {
		"SlowDown", "InternalError", "ServiceUnavailable",
		"RequestTimeout", "OperationAborted", "Throttling",
		"ThrottlingException", "ConditionalRequestConflict",
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (code_is(e, codes[i]))
			return 1;
	return 0;
}

/* Map a final (non-retried) error reply to our enum with a clear message. */
static enum mfs_err classify(struct backend *be, const struct s3_call *call,
			     const struct http_response *resp,
			     const struct s3_error *e, struct errbuf *eb)
{
	struct s3 *s3 = be->priv;
	const char *what = call->key ? call->key : "(bucket)";
	const char *breg = http_header(resp, "x-amz-bucket-region");
	long st = resp->status;

	if (code_is(e, "NoSuchKey") || (!e->code && st == 404 && call->key))
		return eb_set(eb, MFS_ENOTFOUND, "%s: no such object", what);
	if (code_is(e, "NoSuchUpload"))
		return eb_set(eb, MFS_ENOTFOUND,
			      "%s: no such multipart upload (completed or aborted)",
			      what);
	if (code_is(e, "NoSuchBucket") || (!e->code && st == 404))
		return eb_set(eb, MFS_ECONFIG,
			      "remote [%s]: bucket '%s' does not exist at %s://%s%s",
			      be->name, s3->bucket, s3->scheme, s3->hostport,
			      s3->base_path);
	if (code_is(e, "AuthorizationHeaderMalformed") && e->region)
		return eb_set(eb, MFS_ECONFIG,
			      "remote [%s]: wrong region: bucket '%s' is in '%s', the config says '%s' (set region = %s)",
			      be->name, s3->bucket, e->region, s3->region,
			      e->region);
	if (st == 301 || code_is(e, "PermanentRedirect"))
		return eb_set(eb, MFS_ECONFIG,
			      "remote [%s]: wrong region or endpoint: bucket '%s' lives %s%s (set region/endpoint accordingly)",
			      be->name, s3->bucket,
			      breg ? "in region " : "at ",
			      breg ? breg : (e->endpoint ? e->endpoint : "another endpoint"));
	if (code_is(e, "InvalidAccessKeyId"))
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: the server does not know access key '%.4s…' (check access_key_id)",
			      be->name, s3->access_key);
	if (code_is(e, "SignatureDoesNotMatch")) {
		if (e->canonical_request)
			log_dbg(LOG_SUB_HTTP,
				"server's canonical request:\n%s",
				e->canonical_request);
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: signature rejected: wrong secret_access_key for access key '%.4s…' (or a proxy rewrote the request)",
			      be->name, s3->access_key);
	}
	if (code_is(e, "ExpiredToken") || code_is(e, "InvalidToken"))
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: session token expired or invalid",
			      be->name);
	if (code_is(e, "AccessDenied") || st == 403)
		return eb_set(eb, MFS_EACCES,
			      "remote [%s]: access denied to %s%s%s",
			      be->name, what, e->message ? ": " : "",
			      e->message ? e->message : "");
	if (code_is(e, "PreconditionFailed") || st == 412)
		return eb_set(eb, MFS_ECONFLICT,
			      "%s changed on the server meanwhile", what);
	if (code_is(e, "InvalidRange") || st == 416)
		return eb_set(eb, MFS_ERANGE, "%s: range beyond the end", what);
	if (code_is(e, "InvalidBucketName"))
		return eb_set(eb, MFS_ECONFIG,
			      "remote [%s]: invalid bucket name '%s'", be->name,
			      s3->bucket);
	if (code_is(e, "KeyTooLongError"))
		return eb_set(eb, MFS_ENAMETOOLONG, "%s: key too long", what);
	if (code_is(e, "EntityTooLarge") || st == 413)
		return eb_set(eb, MFS_EFBIG,
			      "remote [%s]: %s is larger than the store accepts%s%s",
			      be->name, what, e->message ? ": " : "",
			      e->message ? e->message : "");
	if (st >= 500 || transient_code(e) || http_status_transient(st))
		return eb_set(eb, MFS_EIO,
			      "%s %s: server kept failing (HTTP %ld%s%s), gave up after %d retries",
			      call->method, what, st, e->code ? " " : "",
			      e->code ? e->code : "", s3->retries);
	return eb_set(eb, MFS_EIO, "%s %s: HTTP %ld%s%s%s%s", call->method,
		      what, st, e->code ? " " : "", e->code ? e->code : "",
		      e->message ? ": " : "", e->message ? e->message : "");
}

enum mfs_err s3_do(struct backend *be, const struct s3_call *call,
			  struct http_response *resp, struct errbuf *eb)
{
	struct s3 *s3 = be->priv;
	const char *what = call->key ? call->key : "(bucket)";
	enum mfs_err rc = MFS_EIO;
	int attempt, skew_fixed = 0;

	for (attempt = 0; attempt <= s3->retries; attempt++) {
		struct http_request req = { 0 };
		struct sigv4_result sig;
		struct s3_error e = { 0 };
		char **hdr = NULL, *url = NULL;
		int i, retry = 0;

		if (attempt) {
			__atomic_add_fetch(&be->stats.retries, 1,
					   __ATOMIC_RELAXED);
			http_sleep_ms(http_backoff_ms(attempt - 1,
						      s3->backoff_ms, 20000));
		}
		rc = prepare(s3, call, &hdr, &url, &sig);
		if (rc)
			return eb_set(eb, rc, "cannot build request");
		req.method = call->method;
		req.replay = call->replay_safe ? HTTP_REPLAY_SAFE
					       : HTTP_REPLAY_METHOD;
		req.url = url;
		req.headers = (const char *const *)hdr;
		req.body_fd = -1;
		if (call->fbody) {
			req.body_fd = call->fbody->fd;
			req.body_off = (off_t)call->fbody->off;
			req.body_len = call->fbody->len;
		} else if (call->body) {
			req.body = call->body;
			req.body_len = call->body_len;
		}
		req.dst = call->dst;
		req.dst_cap = call->dst_cap;
		req.sink = call->sink;
		req.sink_ud = call->sink_ud;
		req.skip_on_200 = call->skip_on_200;
		req.max_body = call->max_body;
		count(be, call);
		rc = http_perform(s3->http, &req, resp, eb);
		for (i = 0; hdr[i]; i++)
			free(hdr[i]);
		free(hdr);
		free(url);
		sigv4_result_cleanup(&sig);
		/* (a stopped exchange, MFS_EINTR, may have been sent too) */
		if ((rc == MFS_ETRANSIENT || rc == MFS_EINTR) &&
		    call->unanswered)
			*call->unanswered = 1;
		/* a stream that handed bytes over ends here: the caller
		 * keeps them and asks again for the rest */
		if (rc == MFS_ETRANSIENT && !(call->sink && resp->dst_len))
			continue;
		if (rc)
			return rc;
		if (resp->status >= 200 && resp->status < 300) {
			if (call->may_200_error && parse_error(&resp->body, &e)) {
				/* 200 with an <Error> body: botocore makes
				 * it a 500 */
				rc = eb_set(eb, MFS_ETRANSIENT,
					    "%s %s: HTTP %ld with error %s",
					    call->method, what, resp->status,
					    e.code ? e.code : "?");
				s3_error_cleanup(&e);
			} else if (call->check) {
				rc = call->check(call, resp, eb);
			} else {
				return MFS_OK;
			}
			if (rc != MFS_ETRANSIENT ||
			    (call->sink && resp->dst_len))
				return rc;
			log_warn("remote [%s]: %s%s", be->name, eb ? eb->msg :
				 "a reply that proves nothing",
				 attempt < s3->retries ? "; retrying" : "");
			continue;
		}
		parse_error(&resp->body, &e);
		if (code_is(&e, "RequestTimeTooSkewed") && !skew_fixed) {
			const char *date = http_header(resp, "date");
			int64_t ns;

			if (date && !str_parse_http_date(date, &ns)) {
				pthread_mutex_lock(&s3->key_lock);
				s3->clock_skew_s = (long)(ns / 1000000000 -
							  time(NULL));
				pthread_mutex_unlock(&s3->key_lock);
				log_warn("remote [%s]: local clock is %ld s off the server's; compensating",
					 be->name, s3->clock_skew_s);
			}
			skew_fixed = retry = 1;
		} else if (http_status_transient(resp->status) ||
			   transient_code(&e)) {
			retry = 1;
		}
		if (!retry || attempt == s3->retries) {
			rc = classify(be, call, resp, &e, eb);
			s3_error_cleanup(&e);
			return rc;
		}
		log_dbg(LOG_SUB_HTTP, "%s %s: HTTP %ld %s, retrying",
			call->method, call->key ? call->key : "(bucket)",
			resp->status, e.code ? e.code : "");
		s3_error_cleanup(&e);
	}
	if (rc == MFS_ETRANSIENT)
		eb_prefix(eb, "gave up after %d retries", s3->retries);
	return rc == MFS_ETRANSIENT ? MFS_EIO : rc;
}

void s3_strip_etag(const char *in, char *out, size_t cap)
{
	size_t n;

	if (!in) {
		out[0] = '\0';
		return;
	}
	if (*in == '"')
		in++;
	n = strlen(in);
	if (n && in[n - 1] == '"')
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* ---- listing ---- */

struct list_page {
	int truncated;
	char *next_token;
};

static enum mfs_err decode_field(const char *s, int url_encoded, char **out)
{
	if (!url_encoded) {
		*out = strdup(s);
		return *out ? MFS_OK : MFS_ENOMEM;
	}
	return str_uri_decode(s, strlen(s), 1, out);
}

static enum mfs_err emit_entry(struct backend *be, const char *prefix,
			       const char *key, const struct obj_meta *m,
			       backend_list_cb cb, void *ud)
{
	size_t plen = strlen(prefix), n;
	const char *name, *bad;
	char *copy;
	struct obj_meta dm;
	enum mfs_err rc;

	if (strncmp(key, prefix, plen)) {
		log_warn("remote [%s]: listing of '%s' returned key '%s' outside it; ignored",
			 be->name, prefix, key);
		return MFS_OK;
	}
	name = key + plen;
	n = strlen(name);
	if (n == 0 && m->kind == OBJ_FILE) {
		/* the directory's own marker object: named "" */
		dm = *m;
		dm.kind = OBJ_DIR;
		dm.size = 0;
		return cb(ud, "", &dm);
	}
	if (m->kind == OBJ_FILE && n && name[n - 1] == '/') {
		/* a marker "sub/" listed as content: a directory */
		dm = *m;
		dm.kind = OBJ_DIR;
		dm.size = 0;
		m = &dm;
	}
	if (m->kind == OBJ_DIR && n && name[n - 1] == '/')
		n--;
	if (memchr(name, '/', n)) {
		log_warn("remote [%s]: listing of '%s' returned nested key '%s'; ignored",
			 be->name, prefix, key);
		return MFS_OK;
	}
	bad = str_bad_name(name, n);
	if (bad) {
		log_warn("remote [%s]: key '%s' cannot be shown: %s",
			 be->name, key, bad);
		return MFS_OK;
	}
	copy = str_ndup(name, n);
	if (!copy)
		return MFS_ENOMEM;
	rc = cb(ud, copy, m);
	free(copy);
	return rc;
}

static enum mfs_err parse_list_page(struct backend *be, const char *prefix,
				    const struct buf *body, backend_list_cb cb,
				    void *ud, struct list_page *pg,
				    struct errbuf *eb)
{
	struct xml_doc *doc = NULL;
	const struct xml_node *root, *n;
	char *enc = NULL, *trunc = NULL;
	enum mfs_err rc;
	int url;

	memset(pg, 0, sizeof(*pg));
	rc = xml_parse(body->data, body->len, &doc, eb);
	if (rc)
		return rc;
	root = xml_root(doc);
	if (strcmp(xml_name(root), "ListBucketResult")) {
		rc = eb_set(eb, MFS_EPROTO,
			    "listing reply has root <%s>, expected <ListBucketResult>",
			    xml_name(root));
		goto out;
	}
	enc = xml_child_text(root, "EncodingType");
	url = enc && !strcasecmp(enc, "url");
	trunc = xml_child_text(root, "IsTruncated");
	pg->truncated = trunc && !strcasecmp(trunc, "true");
	if (pg->truncated) {
		pg->next_token = xml_child_text(root, "NextContinuationToken");
		if (!pg->next_token || !*pg->next_token) {
			rc = eb_set(eb, MFS_EPROTO,
				    "listing is truncated but has no NextContinuationToken");
			goto out;
		}
	}
	for (n = xml_first(root, "Contents"); n && !rc;
	     n = xml_next(n, "Contents")) {
		char *k = xml_child_text(n, "Key");
		char *lm = xml_child_text(n, "LastModified");
		char *et = xml_child_text(n, "ETag");
		char *sz = xml_child_text(n, "Size");
		char *key = NULL;
		struct obj_meta m = { 0 };

		m.kind = OBJ_FILE;
		if (!k || !sz || str_parse_u64(sz, &m.size)) {
			rc = eb_set(eb, MFS_EPROTO,
				    "listing entry without a valid Key or Size");
		} else if (decode_field(k, url, &key)) {
			/* %00, or not URL encoding: no name for it */
			log_warn("remote [%s]: key '%s' cannot be shown: %s",
				 be->name, k, "not valid URL encoding or a NUL byte");
		} else {
			if (lm && str_parse_iso8601(lm, &m.server_mtime_ns))
				m.server_mtime_ns = 0;
			m.mtime_ns = m.server_mtime_ns;
			s3_strip_etag(et, m.etag, sizeof(m.etag));
			rc = emit_entry(be, prefix, key, &m, cb, ud);
		}
		free(key);
		free(k);
		free(lm);
		free(et);
		free(sz);
	}
	for (n = xml_first(root, "CommonPrefixes"); n && !rc;
	     n = xml_next(n, "CommonPrefixes")) {
		char *p = xml_child_text(n, "Prefix"), *key = NULL;
		struct obj_meta m = { 0 };

		m.kind = OBJ_DIR;
		if (!p)
			rc = eb_set(eb, MFS_EPROTO,
				    "CommonPrefixes without a Prefix");
		else if (decode_field(p, url, &key))
			log_warn("remote [%s]: prefix '%s' cannot be shown: %s",
				 be->name, p, "not valid URL encoding or a NUL byte");
		else
			rc = emit_entry(be, prefix, key, &m, cb, ud);
		free(p);
		free(key);
	}
out:
	if (rc)
		free(pg->next_token), pg->next_token = NULL;
	free(enc);
	free(trunc);
	xml_free(doc);
	return rc;
}

/* The continuation tokens of one listing, to see a server that cycles
 * (A, B, A, ...): their 64-bit FNV-1a hashes in an open-addressed table
 * (a repeat of the hash counts as a repeat; a false one needs 2^32 pages). */
struct tokens {
	uint64_t *h;	/* 0 = empty slot */
	size_t cap, n;
};

static int tokens_seen(struct tokens *t, const char *tok)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (; *tok; tok++)
		h = (h ^ (unsigned char)*tok) * 1099511628211ULL;
	if (!h)
		h = 1;
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64, j;
		uint64_t *nh = calloc(ncap, sizeof(*nh));

		if (!nh)
			return 0;	/* the page bound still holds */
		for (j = 0; j < t->cap; j++)
			if (t->h[j])
				for (i = t->h[j] & (ncap - 1); ;
				     i = (i + 1) & (ncap - 1))
					if (!nh[i]) {
						nh[i] = t->h[j];
						break;
					}
		free(t->h);
		t->h = nh;
		t->cap = ncap;
	}
	for (i = h & (t->cap - 1); t->h[i]; i = (i + 1) & (t->cap - 1))
		if (t->h[i] == h)
			return 1;
	t->h[i] = h;
	t->n++;
	return 0;
}

static void tokens_cleanup(struct tokens *t)
{
	free(t->h);
	memset(t, 0, sizeof(*t));
}

static enum mfs_err s3_list(struct backend *be, const char *dir,
			    backend_list_cb cb, void *ud, struct errbuf *eb)
{
	struct http_response resp;
	char *prefix = *dir ? str_fmt("%s/", dir) : strdup("");
	char *token = NULL;
	struct tokens seen = { 0 };
	enum mfs_err rc = MFS_OK;
	int pages = 0;

	if (!prefix)
		return MFS_ENOMEM;
	http_response_init(&resp);
	do {
		struct sigv4_pair q[6];
		struct s3_call call = { 0 };
		struct list_page pg;
		int nq = 0;

		q[nq++] = (struct sigv4_pair){ "list-type", "2" };
		q[nq++] = (struct sigv4_pair){ "prefix", prefix };
		q[nq++] = (struct sigv4_pair){ "delimiter", "/" };
		q[nq++] = (struct sigv4_pair){ "encoding-type", "url" };
		q[nq++] = (struct sigv4_pair){ "max-keys", "1000" };
		if (token)
			q[nq++] = (struct sigv4_pair){ "continuation-token",
						       token };
		call.method = "GET";
		call.query = q;
		call.nquery = nq;
		call.max_body = LIST_MAX_BODY;
		rc = s3_do(be, &call, &resp, eb);
		if (!rc)
			rc = parse_list_page(be, prefix, &resp.body, cb, ud,
					     &pg, eb);
		if (rc)
			break;
		free(token);
		token = pg.truncated ? pg.next_token : NULL;
		if (token && ++pages >= MAX_PAGES)
			rc = eb_set(eb, MFS_EIO,
				    "still truncated after %d pages: gave up",
				    pages);
		else if (token && tokens_seen(&seen, token))
			rc = eb_set(eb, MFS_EIO,
				    "the server sent continuation token '%.40s' a second time (after %d pages): it would page forever",
				    token, pages);
	} while (token && !rc);
	if (rc) {
		eb_prefix(eb, "listing '%s' in remote [%s]", prefix, be->name);
		log_warn("%s", eb ? eb->msg : "listing failed");
	}
	tokens_cleanup(&seen);
	free(token);
	free(prefix);
	http_response_cleanup(&resp);
	return rc;
}

/* ---- objects ---- */

static void meta_from_headers(const struct http_response *r,
			      struct obj_meta *m)
{
	const char *v;

	memset(m, 0, sizeof(*m));
	m->kind = OBJ_FILE;
	m->full = 1;
	v = http_header(r, "content-length");
	if (v && str_parse_u64(v, &m->size))
		m->size = 0;
	v = http_header(r, "last-modified");
	if (v && str_parse_http_date(v, &m->server_mtime_ns))
		m->server_mtime_ns = 0;
	m->mtime_ns = m->server_mtime_ns;
	v = http_header(r, "x-amz-meta-mtime");
	if (v) {
		int64_t ns;

		if (!str_parse_mtime(v, &ns))
			m->mtime_ns = ns;
	}
	v = http_header(r, "x-amz-meta-mode");
	if (v) {
		uint64_t mode;

		/* s3fs writes the whole st_mode (33188), others 0644 */
		if (!str_parse_u64(v, &mode) && mode <= 0177777)
			m->mode = (uint32_t)mode & 07777;
	}
	s3_strip_etag(http_header(r, "etag"), m->etag, sizeof(m->etag));
	v = http_header(r, "content-type");
	if (v)
		snprintf(m->content_type, sizeof(m->content_type), "%s", v);
	v = http_header(r, "cache-control");
	if (v)
		snprintf(m->cache_control, sizeof(m->cache_control), "%s", v);
}

static enum mfs_err s3_head(struct backend *be, const char *key,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct http_response resp;
	struct s3_call call = { 0 };
	enum mfs_err rc;

	call.method = "HEAD";
	call.key = key;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		meta_from_headers(&resp, out);
	http_response_cleanup(&resp);
	return rc;
}

/* "bytes A-B/TOTAL" (TOTAL may be "*": *total = UINT64_MAX). */
static int parse_content_range(const char *v, uint64_t *a, uint64_t *b,
			       uint64_t *total)
{
	char *end;

	if (!v || strncmp(v, "bytes ", 6))
		return -1;
	v += 6;
	if (*v < '0' || *v > '9')
		return -1;
	*a = strtoull(v, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return -1;
	*b = strtoull(end + 1, &end, 10);
	if (*end != '/' || *b < *a)
		return -1;
	if (!strcmp(end + 1, "*")) {
		*total = UINT64_MAX;
		return 0;
	}
	if (end[1] < '0' || end[1] > '9')
		return -1;
	*total = strtoull(end + 1, &end, 10);
	return *end || *b >= *total ? -1 : 0;
}

/* The reply to "Range: bytes=off-(off+len-1)" must prove what it carries:
 * a 206 names the range it sent (the one asked, or a shorter one that
 * ends the object) and carries exactly that many bytes; a 200 (Range
 * ignored) carries the whole object, Content-Length long; either names
 * the ETag asked for. Anything else (a 200 with an <Error> body, a short
 * body, another range) is retried, never served. */
enum mfs_err s3_range_need(const struct s3_call *call,
			   const struct http_response *resp, uint64_t *need,
			   struct errbuf *eb)
{
	const struct s3_range *w = call->check_ud;
	const char *v = http_header(resp, "etag");
	uint64_t a, b, total;
	char etag[80];

	if (!v)
		return eb_set(eb, MFS_ETRANSIENT,
			      "GET %s: HTTP %ld without an ETag: not the object",
			      call->key, resp->status);
	s3_strip_etag(v, etag, sizeof(etag));
	if (w->etag && *w->etag && strcmp(etag, w->etag))
		return eb_set(eb, MFS_ECONFLICT,
			      "GET %s: the object changed (ETag %s, expected %s)",
			      call->key, etag, w->etag);
	if (resp->status == 206) {
		if (parse_content_range(http_header(resp, "content-range"),
					&a, &b, &total))
			return eb_set(eb, MFS_ETRANSIENT,
				      "GET %s: 206 without a valid Content-Range",
				      call->key);
		if (a != w->off || b - a + 1 > w->len ||
		    (b - a + 1 < w->len && total != b + 1))
			return eb_set(eb, MFS_ETRANSIENT,
				      "GET %s: asked for bytes %llu-%llu, got %s",
				      call->key, (unsigned long long)w->off,
				      (unsigned long long)(w->off + w->len - 1),
				      http_header(resp, "content-range"));
		*need = b - a + 1;
	} else if (resp->status == 200) {
		v = http_header(resp, "content-length");
		if (!v || str_parse_u64(v, &total))
			return eb_set(eb, MFS_ETRANSIENT,
				      "GET %s: 200 without a Content-Length",
				      call->key);
		*need = total <= w->off ? 0 : total - w->off;
		if (*need > w->len)
			*need = w->len;
	} else {
		return eb_set(eb, MFS_ETRANSIENT, "GET %s: unexpected HTTP %ld",
			      call->key, resp->status);
	}
	return MFS_OK;
}

enum mfs_err s3_check_range(const struct s3_call *call,
			    const struct http_response *resp,
			    struct errbuf *eb)
{
	uint64_t need;
	enum mfs_err rc = s3_range_need(call, resp, &need, eb);

	if (rc)
		return rc;
	if (resp->dst_len != need)
		return eb_set(eb, MFS_ETRANSIENT,
			      "GET %s: short body: %zu of %llu bytes",
			      call->key, resp->dst_len,
			      (unsigned long long)need);
	return MFS_OK;
}

/* The headers and checks of a ranged GET of len bytes of key at off, with
 * If-Match when etag is set; rg is the caller's and lives as long as
 * call. */
struct range_get {
	struct sigv4_pair h[2];
	char range[64], quoted[96];
	struct s3_range want;
};

static void range_call(struct s3_call *call, struct range_get *rg,
		       const char *key, uint64_t off, uint64_t len,
		       const char *etag)
{
	int nh = 0;

	snprintf(rg->range, sizeof(rg->range), "bytes=%llu-%llu",
		 (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	rg->h[nh++] = (struct sigv4_pair){ "range", rg->range };
	if (etag && *etag) {
		snprintf(rg->quoted, sizeof(rg->quoted), "\"%s\"", etag);
		rg->h[nh++] = (struct sigv4_pair){ "if-match", rg->quoted };
	}
	rg->want.off = off;
	rg->want.len = (size_t)len;
	rg->want.etag = etag;
	call->method = "GET";
	call->key = key;
	call->headers = rg->h;
	call->nheaders = nh;
	call->dst_cap = (size_t)len;
	call->skip_on_200 = off;
	call->check = s3_check_range;
	call->check_ud = &rg->want;
}

static enum mfs_err s3_get(struct backend *be, const char *key, uint64_t off,
			   size_t len, const char *etag, char *dst, size_t *got,
			   struct errbuf *eb)
{
	struct http_response resp;
	struct s3_call call = { 0 };
	struct range_get rg;
	enum mfs_err rc;

	*got = 0;
	if (!len)
		return MFS_OK;
	range_call(&call, &rg, key, off, len, etag);
	call.dst = dst;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		*got = resp.dst_len;
	else if (rc == MFS_ERANGE)
		rc = MFS_OK;	/* at or past the end: nothing to read */
	http_response_cleanup(&resp);
	return rc;
}

struct stream {
	const struct s3_call *call;
	backend_sink_cb sink;
	void *ud;
};

/* A piece of a streamed GET: the first one's headers must prove the range
 * (s3_range_need) before any byte goes on. */
static enum mfs_err stream_piece(void *ud, const struct http_response *resp,
				 const char *p, size_t n, struct errbuf *eb)
{
	struct stream *st = ud;
	uint64_t need;
	enum mfs_err rc;

	if (!resp->dst_len && (rc = s3_range_need(st->call, resp, &need, eb)))
		return rc;
	return st->sink(st->ud, p, n, eb);
}

static enum mfs_err s3_get_stream(struct backend *be, const char *key,
				  uint64_t off, uint64_t len, const char *etag,
				  backend_sink_cb sink, void *ud,
				  struct errbuf *eb)
{
	struct http_response resp;
	struct s3_call call = { 0 };
	struct range_get rg;
	struct stream st = { &call, sink, ud };
	enum mfs_err rc;

	if (!len)
		return MFS_OK;
	range_call(&call, &rg, key, off, len, etag);
	call.sink = stream_piece;
	call.sink_ud = &st;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (rc == MFS_ERANGE)
		rc = MFS_OK;	/* at or past the end: nothing to read */
	http_response_cleanup(&resp);
	return rc;
}

static enum mfs_err s3_url(struct backend *be, const char *key, char **out)
{
	struct s3 *s3 = be->priv;
	struct buf b, hb;
	enum mfs_err rc;
	const char *host;

	if (s3->public_url) {	/* what the application links to (a CDN) */
		*out = str_uri_join(s3->public_url, key);
		return *out ? MFS_OK : MFS_ENOMEM;
	}
	buf_init(&b, 0);
	buf_init(&hb, 0);
	host = host_for(s3, &hb);
	rc = host ? buf_addf(&b, "%s://%s%s", s3->scheme, host,
			     s3->base_path) : MFS_ENOMEM;
	if (!rc && s3->path_style)
		rc = buf_addf(&b, "/%s", s3->bucket);
	if (!rc)
		rc = buf_adds(&b, "/");
	if (!rc)
		rc = str_uri_encode(&b, key, strlen(key), 1);
	buf_cleanup(&hb);
	if (rc) {
		buf_cleanup(&b);
		return rc;
	}
	*out = buf_take(&b);
	return MFS_OK;
}

static void s3_free(struct backend *be)
{
	struct s3 *s3;

	if (!be)
		return;
	s3 = be->priv;
	if (s3) {
		http_client_free(s3->http);
		free(s3->scheme);
		free(s3->hostport);
		free(s3->base_path);
		free(s3->region);
		free(s3->bucket);
		free(s3->public_url);
		free(s3->access_key);
		secret_free(s3->secret_key);
		secret_free(s3->session_token);
		explicit_bzero(s3->signing_key, sizeof(s3->signing_key));
		pthread_mutex_destroy(&s3->key_lock);
	}
	backend_dealloc(be);
}

/* Supabase's S3 endpoint (its documented form: the API gateway's
 * .../storage/v1/s3) stores keys under Supabase Storage's own rule and
 * answers 400 InvalidKey to a key with '~', '%', non-ASCII and the like
 * (API-NOTES B2): refuse those before anything is written. Any other
 * endpoint: any key. */
#define SUPABASE_S3_PATH "/storage/v1/s3"
#define S3_KEY_MAX 1024

static int s3_check_key(struct backend *be, const char *key, int is_dir,
			char *why, size_t cap)
{
	const struct s3 *s3 = be->priv;
	size_t n = strlen(s3->base_path), m = strlen(SUPABASE_S3_PATH);
	const unsigned char *p;

	/* KeyTooLongError: 1,024 bytes, a folder's marker with its '/';
	 * refused first, else mkdir made a folder no file could go in */
	if (strlen(key) + (is_dir ? 1 : 0) > S3_KEY_MAX) {
		snprintf(why, cap, "S3 keys are at most %d bytes", S3_KEY_MAX);
		return 2;
	}
	if (n < m || strcmp(s3->base_path + n - m, SUPABASE_S3_PATH))
		return 0;
	for (p = (const unsigned char *)key; *p; p++) {
		if (*p >= 0x80) {
			snprintf(why, cap, "Supabase's S3 endpoint refuses non-ASCII characters in keys");
			return 1;
		}
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') ||
		      strchr("_/!.*'() &$=@;:+,?-", *p))) {
			snprintf(why, cap, *p < 0x20 || *p == 0x7f ?
				 "Supabase's S3 endpoint refuses control character 0x%02x in keys" :
				 "Supabase's S3 endpoint refuses '%c' in keys (allowed: letters, digits and _/!.*'() &$=@;:+,?-)",
				 *p);
			return 1;
		}
	}
	return 0;
}

static const struct backend_ops s3_ops = {
	.type = "s3",
	.caps = BE_CAP_RANGE_READ | BE_CAP_WRITE | BE_CAP_SERVER_COPY |
		BE_CAP_USER_MTIME | BE_CAP_DIR_MARKERS | BE_CAP_MULTIPART |
		BE_CAP_TYPES |
		BE_CAP_MARKER_OBJECTS,
	.list = s3_list,
	.head = s3_head,
	.get = s3_get,
	.get_stream = s3_get_stream,
	.url = s3_url,
	.put = s3_put,
	.copy = s3_copy,
	.del = s3_del,
	.del_many = s3_del_many,
	.mkdir = s3_mkdir,
	.rmdir = s3_rmdir,
	.mp_begin = s3_mp_begin,
	.mp_part = s3_mp_part,
	.mp_complete = s3_mp_complete,
	.mp_abort = s3_mp_abort,
	.mp_list = s3_mp_list,
	.check_key = s3_check_key,
	.free = s3_free,
};

/* ---- configuration ---- */

/* Every key an s3 section may hold (mediafs.conf(5)). */
static const char *const s3_keys[] = {
	"type", "endpoint", "region", "bucket", "path_style",
	"access_key_id", "secret_access_key", "session_token",
	"retries", "retry_base_ms", "ca_file", "public_url", NULL
};

static enum mfs_err parse_endpoint(struct s3 *s3, const char *ep,
				   const char *where, struct errbuf *eb)
{
	const char *p = strstr(ep, "://"), *slash;
	size_t n;

	if (!p || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
		return eb_set(eb, MFS_EINVAL,
			      "%s: endpoint '%s' must start with http:// or https://",
			      where, ep);
	s3->scheme = str_ndup(ep, (size_t)(p - ep));
	p += 3;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (!n)
		return eb_set(eb, MFS_EINVAL, "%s: endpoint '%s' has no host",
			      where, ep);
	s3->hostport = str_ndup(p, n);
	s3->base_path = strdup(slash ? slash : "");
	if (!s3->scheme || !s3->hostport || !s3->base_path)
		return MFS_ENOMEM;
	n = strlen(s3->base_path);
	while (n && s3->base_path[n - 1] == '/')
		s3->base_path[--n] = '\0';
	return MFS_OK;
}

static int host_is_ip_or_local(const char *hostport)
{
	const char *p;

	if (hostport[0] == '[' || str_starts(hostport, "localhost"))
		return 1;
	for (p = hostport; *p && *p != ':'; p++)
		if ((*p < '0' || *p > '9') && *p != '.')
			return 0;
	return 1;
}

/* ~/.aws/credentials, profile $AWS_PROFILE or "default". */
static enum mfs_err aws_credentials_file(struct s3 *s3, struct errbuf *eb)
{
	const char *home = getenv("HOME"), *prof = getenv("AWS_PROFILE");
	const char *path_env = getenv("AWS_SHARED_CREDENTIALS_FILE");
	struct ini *ini = NULL;
	struct ini_section *sec;
	char *path;
	enum mfs_err rc;

	if (path_env)
		path = strdup(path_env);
	else if (home)
		path = str_fmt("%s/.aws/credentials", home);
	else
		return MFS_ENOTFOUND;
	if (!path)
		return MFS_ENOMEM;
	if (access(path, R_OK)) {
		free(path);
		return MFS_ENOTFOUND;
	}
	rc = ini_load(path, &ini, eb);
	free(path);
	if (rc)
		return rc;
	sec = ini_section(ini, prof && *prof ? prof : "default");
	if (sec) {
		const char *ak = ini_get(sec, "aws_access_key_id");
		const char *sk = ini_get(sec, "aws_secret_access_key");
		const char *tk = ini_get(sec, "aws_session_token");

		if (ak && sk) {
			s3->access_key = strdup(ak);
			s3->secret_key = strdup(sk);
			s3->session_token = tk ? strdup(tk) : NULL;
			log_add_secret(s3->secret_key);
			log_add_secret(s3->session_token);
		}
	}
	ini_free(ini);
	return s3->access_key ? MFS_OK : MFS_ENOTFOUND;
}

static enum mfs_err credentials(struct s3 *s3, struct ini *ini,
				struct ini_section *sec, struct errbuf *eb)
{
	const char *ak = ini_get(sec, "access_key_id");
	const char *sk = ini_get(sec, "secret_access_key");
	const char *tk = ini_get(sec, "session_token");
	char what[160];
	enum mfs_err rc = MFS_OK;

	if (ak || sk) {
		if (!ak || !sk)
			return eb_set(eb, MFS_EINVAL,
				      "%s: [%s] sets only one of access_key_id and secret_access_key",
				      ini->path, sec->name);
		snprintf(what, sizeof(what), "access_key_id in [%s]",
			 sec->name);
		/* The key id is not secret, but env:/file: work for it too;
		 * a literal id is fine in a readable file. */
		if (str_starts(ak, "env:") || str_starts(ak, "file:"))
			rc = secret_resolve(ini, ak, what, &s3->access_key,
					    eb);
		else
			s3->access_key = strdup(ak);
		snprintf(what, sizeof(what), "secret_access_key in [%s]",
			 sec->name);
		if (!rc)
			rc = secret_resolve(ini, sk, what, &s3->secret_key, eb);
		if (!rc && tk) {
			snprintf(what, sizeof(what), "session_token in [%s]",
				 sec->name);
			rc = secret_resolve(ini, tk, what, &s3->session_token,
					    eb);
		}
		return rc;
	}
	if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
		rc = secret_resolve(NULL, "env:AWS_ACCESS_KEY_ID",
				    "AWS_ACCESS_KEY_ID", &s3->access_key, eb);
		if (!rc)
			rc = secret_resolve(NULL, "env:AWS_SECRET_ACCESS_KEY",
					    "AWS_SECRET_ACCESS_KEY",
					    &s3->secret_key, eb);
		if (!rc && getenv("AWS_SESSION_TOKEN") &&
		    *getenv("AWS_SESSION_TOKEN"))
			rc = secret_resolve(NULL, "env:AWS_SESSION_TOKEN",
					    "AWS_SESSION_TOKEN",
					    &s3->session_token, eb);
		return rc;
	}
	rc = aws_credentials_file(s3, eb);
	if (rc == MFS_ENOTFOUND)
		return eb_set(eb, MFS_EINVAL,
			      "%s: remote [%s] has no credentials: set access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials",
			      ini->path, sec->name);
	return rc;
}

enum mfs_err s3_backend_create(struct ini *ini, struct ini_section *sec,
			       struct backend **out, struct errbuf *eb)
{
	struct backend *be = backend_alloc(&s3_ops, sec, sizeof(struct s3));
	struct s3 *s3;
	const char *v;
	char where[300];
	enum mfs_err rc = MFS_OK;
	int ps = -1;

	*out = NULL;
	if (!be)
		return MFS_ENOMEM;
	s3 = be->priv;
	pthread_mutex_init(&s3->key_lock, NULL);
	snprintf(where, sizeof(where), "%s:%d: [%s]", ini->path, sec->line,
		 sec->name);

	rc = backend_check_keys(ini, sec, s3_keys, eb);
	v = ini_get(sec, "bucket");
	if (rc)
		;
	else if (!v || !*v)
		rc = eb_set(eb, MFS_EINVAL, "%s needs 'bucket = NAME'", where);
	else
		s3->bucket = strdup(v);
	v = ini_get(sec, "region");
	s3->region = strdup(v && *v ? v : "us-east-1");
	v = ini_get(sec, "endpoint");
	if (!rc) {
		if (v && *v) {
			rc = parse_endpoint(s3, v, where, eb);
		} else {
			char *ep = str_fmt("https://s3.%s.amazonaws.com",
					   s3->region);

			rc = ep ? parse_endpoint(s3, ep, where, eb)
				: MFS_ENOMEM;
			free(ep);
		}
	}
	v = ini_get(sec, "path_style");
	if (!rc && v && str_parse_bool(v, &ps))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: path_style must be true or false, not '%s'",
			    where, v);
	if (!rc) {
		if (ps >= 0)
			s3->path_style = ps;
		else	/* IP/localhost endpoints and dotted buckets */
			s3->path_style = host_is_ip_or_local(s3->hostport) ||
					 strchr(s3->bucket, '.') != NULL;
	}
	v = ini_get(sec, "public_url");
	if (!rc && v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: public_url must start with http:// or https://, not '%s'",
			    where, v);
	else if (!rc && v)
		s3->public_url = str_fmt("%s%s", v,
					 str_ends(v, "/") ? "" : "/");
	if (!rc && v && !s3->public_url)
		rc = MFS_ENOMEM;
	if (!rc)
		rc = backend_http(sec, 5, where, &s3->retries, &s3->backoff_ms,
				  &s3->http, eb);
	if (!rc)
		rc = credentials(s3, ini, sec, eb);
	if (!rc) {
		be->ident = str_fmt("s3 %s://%s%s %s", s3->scheme,
				    s3->hostport, s3->base_path, s3->bucket);
		if (!s3->region || !be->name || !be->ident)
			rc = MFS_ENOMEM;
	}
	if (rc) {
		s3_free(be);
		return rc;
	}
	*out = be;
	return MFS_OK;
}
