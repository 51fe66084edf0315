/* s3_write.c - S3 writes: PutObject from a staged file with a signed
 * payload hash, CopyObject (metadata copied or replaced), DeleteObject(s),
 * directory markers, multipart uploads (API-NOTES A6-A9). Every 200 that
 * may carry an <Error> body is parsed; every PUT of a body sends its
 * Content-MD5 and is done only when the reply's ETag is that MD5; a
 * completion whose reply proves nothing is settled by HEAD. Calls: net,
 * common. Thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"
#include "net/xml.h"
#include "s3_int.h"


#define MAX_META_HEADERS 8

/* Fill h[] (names and values in vals[][]) from meta; returns the count. */
static int meta_headers(const struct put_meta *m, struct sigv4_pair *h,
			char vals[][64])
{
	int n = 0;

	h[n++] = (struct sigv4_pair){ "content-type",
		m && m->content_type && *m->content_type ?
		m->content_type : "application/octet-stream" };
	if (!m)
		return n;
	if (m->cache_control && *m->cache_control)
		h[n++] = (struct sigv4_pair){ "cache-control",
					      m->cache_control };
	if (m->mtime_ns) {
		/* rclone's convention: decimal seconds, 9 fractional digits */
		int64_t s = m->mtime_ns / 1000000000;
		int64_t ns = m->mtime_ns % 1000000000;

		if (ns < 0) {
			ns += 1000000000;
			s--;
		}
		snprintf(vals[n], 64, "%lld.%09lld", (long long)s,
			 (long long)ns);
		h[n] = (struct sigv4_pair){ "x-amz-meta-mtime", vals[n] };
		n++;
	}
	if (m->mode) {
		/* s3fs's convention: the whole st_mode in decimal */
		snprintf(vals[n], 64, "%u", m->mode);
		h[n] = (struct sigv4_pair){ "x-amz-meta-mode", vals[n] };
		n++;
	}
	if (m->has_owner) {
		snprintf(vals[n], 64, "%u", m->uid);
		h[n] = (struct sigv4_pair){ "x-amz-meta-uid", vals[n] };
		n++;
		snprintf(vals[n], 64, "%u", m->gid);
		h[n] = (struct sigv4_pair){ "x-amz-meta-gid", vals[n] };
		n++;
	}
	return n;
}

static void out_etag(const struct http_response *resp, struct obj_meta *out,
		     uint64_t size, const struct put_meta *meta)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	out->kind = OBJ_FILE;
	out->size = size;
	s3_strip_etag(http_header(resp, "etag"), out->etag, sizeof(out->etag));
	if (meta) {
		out->mtime_ns = meta->mtime_ns;
		out->mode = meta->mode & 07777;
		if (meta->content_type)
			snprintf(out->content_type, sizeof(out->content_type),
				 "%s", meta->content_type);
		if (meta->cache_control)
			snprintf(out->cache_control,
				 sizeof(out->cache_control), "%s",
				 meta->cache_control);
	}
}

#define EMPTY_MD5 "d41d8cd98f00b204e9800998ecf8427e"

/* The ETag of a store that encrypts with KMS keys or the customer's key is
 * not the MD5 of the body (AWS: "Common Response Headers"); the
 * Content-MD5 the server checked is the proof then. */
static int etag_not_md5(const struct http_response *resp)
{
	const char *sse = http_header(resp, "x-amz-server-side-encryption");

	return (sse && str_starts(sse, "aws:kms")) ||
	       http_header(resp,
			   "x-amz-server-side-encryption-customer-algorithm");
}

/* A 2xx to a PUT of a body proves it stored that body: its ETag is the
 * body's MD5 (check_ud). No ETag, or another one, and the request is
 * retried: a proxy or a sick server that answers 200 without storing is
 * never taken at its word. An <Error> body was caught before. */
static enum mfs_err check_put(const struct s3_call *call,
			      const struct http_response *resp,
			      struct errbuf *eb)
{
	const char *md5 = call->check_ud;
	const char *v = http_header(resp, "etag");
	char etag[80];

	if (!v)
		return eb_set(eb, MFS_ETRANSIENT,
			      "PUT %s: HTTP %ld without an ETag: not proof of the upload",
			      call->key, resp->status);
	s3_strip_etag(v, etag, sizeof(etag));
	if (strcasecmp(etag, md5) && !etag_not_md5(resp))
		return eb_set(eb, MFS_ETRANSIENT,
			      "PUT %s: the server's ETag %s is not the MD5 %s of what was sent",
			      call->key, etag, md5);
	return MFS_OK;
}

/* Content-MD5 of body into b64; the hex MD5 it stands for into *hex. */
static enum mfs_err body_md5(const struct put_body *body, const char *what,
			     char b64[25], const char **hex, struct errbuf *eb)
{
	*hex = body->md5 ? body->md5 : (body->len ? NULL : EMPTY_MD5);
	if (!*hex || sigv4_md5_hex_b64(*hex, b64))
		return eb_set(eb, MFS_EINVAL, "%s: no valid MD5 of the body",
			      what);
	return MFS_OK;
}

enum mfs_err s3_put(struct backend *be, const char *key,
		    const struct put_body *body, const struct put_meta *meta,
		    struct obj_meta *out, struct errbuf *eb)
{
	struct sigv4_pair h[MAX_META_HEADERS + 1];
	char vals[MAX_META_HEADERS][64], md5[25];
	struct http_response resp;
	struct s3_call call = { 0 };
	const char *hex;
	enum mfs_err rc;

	rc = body_md5(body, key, md5, &hex, eb);
	if (rc)
		return rc;
	call.method = "PUT";
	call.key = key;
	call.headers = h;
	call.nheaders = meta_headers(meta, h, vals);
	h[call.nheaders++] = (struct sigv4_pair){ "content-md5", md5 };
	call.payload_sha256 = body->sha256 ? body->sha256 : "UNSIGNED-PAYLOAD";
	call.fbody = body;
	call.may_200_error = 1;
	call.check = check_put;
	call.check_ud = hex;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		out_etag(&resp, out, body->len, meta);
	http_response_cleanup(&resp);
	return rc;
}

/* Copy-source: "/bucket/key", the key encoded like a canonical URI. */
static char *copy_source(struct s3 *s3, const char *key)
{
	struct buf b;

	buf_init(&b, 0);
	if (buf_addf(&b, "/%s/", s3->bucket) ||
	    str_uri_encode(&b, key, strlen(key), 1)) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

enum mfs_err s3_copy(struct backend *be, const char *src,
		     const char *dst, const struct put_meta *meta,
		     struct obj_meta *out, struct errbuf *eb)
{
	struct sigv4_pair h[MAX_META_HEADERS + 2];
	char vals[MAX_META_HEADERS + 2][64];
	struct http_response resp;
	struct s3_call call = { 0 };
	char *cs = copy_source(be->priv, src);
	struct xml_doc *doc = NULL;
	enum mfs_err rc;
	int n = 0;

	if (!cs)
		return MFS_ENOMEM;
	if (meta)
		n = meta_headers(meta, h, vals);
	h[n++] = (struct sigv4_pair){ "x-amz-copy-source", cs };
	h[n++] = (struct sigv4_pair){ "x-amz-metadata-directive",
				      meta ? "REPLACE" : "COPY" };
	call.method = "PUT";
	call.key = dst;
	call.headers = h;
	call.nheaders = n;
	call.may_200_error = 1;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc) {
		if (out) {
			memset(out, 0, sizeof(*out));
			out->kind = OBJ_FILE;
			if (meta) {
				out->mtime_ns = meta->mtime_ns;
				out->mode = meta->mode & 07777;
			}
		}
		rc = xml_parse(resp.body.data, resp.body.len, &doc, eb);
		if (!rc && out) {
			char *et = xml_child_text(xml_root(doc), "ETag");

			s3_strip_etag(et, out->etag, sizeof(out->etag));
			free(et);
		}
		xml_free(doc);
		if (rc)
			eb_prefix(eb, "copying %s to %s", src, dst);
	}
	http_response_cleanup(&resp);
	free(cs);
	return rc;
}

/* DELETE key (with query q); a missing key is not an error. */
static enum mfs_err delete_key(struct backend *be, const char *key,
			       const struct sigv4_pair *q, int nq,
			       struct errbuf *eb)
{
	struct http_response resp;
	struct s3_call call = { 0 };
	enum mfs_err rc;

	call.method = "DELETE";
	call.key = key;
	call.query = q;
	call.nquery = nq;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	http_response_cleanup(&resp);
	return rc == MFS_ENOTFOUND ? MFS_OK : rc;
}

enum mfs_err s3_del(struct backend *be, const char *key, struct errbuf *eb)
{
	return delete_key(be, key, NULL, 0, eb);
}

enum mfs_err s3_del_many(struct backend *be, const char *const *keys,
			 int n, int *failed, struct errbuf *eb)
{
	struct sigv4_pair q[1] = { { "delete", "" } }, h[2];
	struct http_response resp;
	struct s3_call call = { 0 };
	struct xml_doc *doc = NULL;
	char md5[25], sha[65];
	struct buf body;
	enum mfs_err rc = MFS_OK;
	int i;

	*failed = 0;
	if (n <= 0)
		return MFS_OK;
	if (n > 1000)
		return eb_set(eb, MFS_EINVAL, "at most 1000 keys per delete");
	buf_init(&body, 0);
	rc = buf_adds(&body, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (i = 0; i < n && !rc; i++) {
		rc = buf_adds(&body, "<Object><Key>");
		if (!rc)
			rc = xml_escape(&body, keys[i]);
		if (!rc)
			rc = buf_adds(&body, "</Key></Object>");
	}
	if (!rc)
		rc = buf_adds(&body, "</Delete>");
	if (rc) {
		buf_cleanup(&body);
		return rc;
	}
	sigv4_content_md5(body.data, body.len, md5);
	sigv4_sha256_hex(body.data, body.len, sha);
	h[0] = (struct sigv4_pair){ "content-md5", md5 };
	h[1] = (struct sigv4_pair){ "content-type", "application/xml" };
	call.method = "POST";
	call.replay_safe = 1;	/* deleting twice deletes once */
	call.query = q;
	call.nquery = 1;
	call.headers = h;
	call.nheaders = 2;
	call.payload_sha256 = sha;
	call.body = body.data;
	call.body_len = body.len;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		rc = xml_parse(resp.body.data, resp.body.len, &doc, eb);
	if (!rc) {
		const struct xml_node *e;

		for (e = xml_first(xml_root(doc), "Error"); e;
		     e = xml_next(e, "Error")) {
			char *k = xml_child_text(e, "Key");
			char *c = xml_child_text(e, "Code");

			if (!*failed)
				eb_set(eb, MFS_EIO, "deleting %s: %s",
				       k ? k : "?", c ? c : "?");
			(*failed)++;
			free(k);
			free(c);
		}
	}
	xml_free(doc);
	http_response_cleanup(&resp);
	buf_cleanup(&body);
	return rc;
}

enum mfs_err s3_mkdir(struct backend *be, const char *dir,
		      const struct put_meta *meta, struct errbuf *eb)
{
	struct put_body body = { -1, 0, 0, SIGV4_EMPTY_SHA256, NULL };
	struct put_meta m = { 0 };
	char *key = str_fmt("%s/", dir);
	enum mfs_err rc;

	if (!key)
		return MFS_ENOMEM;
	if (meta)
		m = *meta;
	m.content_type = "application/x-directory";
	rc = s3_put(be, key, &body, &m, NULL, eb);
	free(key);
	return rc;
}

enum mfs_err s3_rmdir(struct backend *be, const char *dir,
		      struct errbuf *eb)
{
	char *key = str_fmt("%s/", dir);
	enum mfs_err rc;

	if (!key)
		return MFS_ENOMEM;
	rc = s3_del(be, key, eb);
	free(key);
	return rc;
}

enum mfs_err s3_mp_begin(struct backend *be, const char *key,
			 const struct put_meta *meta, char **upload_id,
			 int *unanswered, struct errbuf *eb)
{
	struct sigv4_pair h[MAX_META_HEADERS], q[1] = { { "uploads", "" } };
	char vals[MAX_META_HEADERS][64];
	struct http_response resp;
	struct s3_call call = { 0 };
	struct xml_doc *doc = NULL;
	enum mfs_err rc;

	*upload_id = NULL;
	call.method = "POST";
	call.key = key;
	call.query = q;
	call.nquery = 1;
	call.headers = h;
	call.nheaders = meta_headers(meta, h, vals);
	/* a start whose reply is lost is sent again (nothing is stored
	 * twice); the caller sweeps what the lost one may have started */
	call.unanswered = unanswered;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		rc = xml_parse(resp.body.data, resp.body.len, &doc, eb);
	if (!rc) {
		*upload_id = xml_child_text(xml_root(doc), "UploadId");
		if (!*upload_id || !**upload_id) {
			free(*upload_id);
			*upload_id = NULL;
			rc = eb_set(eb, MFS_EPROTO,
				    "multipart upload started without an UploadId");
		}
	}
	if (rc == MFS_EPROTO)	/* a 2xx that names no upload */
		*unanswered = 1;
	xml_free(doc);
	http_response_cleanup(&resp);
	return rc;
}

enum mfs_err s3_mp_part(struct backend *be, const char *key,
			const char *upload_id, int part,
			const struct put_body *body, char etag[80],
			struct errbuf *eb)
{
	struct http_response resp;
	struct s3_call call = { 0 };
	struct sigv4_pair q[2], h[1];
	char num[16], md5[25];
	const char *hex;
	enum mfs_err rc;

	snprintf(num, sizeof(num), "%d", part);
	rc = body_md5(body, key, md5, &hex, eb);
	if (rc)
		return rc;
	q[0] = (struct sigv4_pair){ "partNumber", num };
	q[1] = (struct sigv4_pair){ "uploadId", upload_id };
	h[0] = (struct sigv4_pair){ "content-md5", md5 };
	call.method = "PUT";
	call.key = key;
	call.query = q;
	call.nquery = 2;
	call.headers = h;
	call.nheaders = 1;
	call.payload_sha256 = body->sha256 ? body->sha256 : "UNSIGNED-PAYLOAD";
	call.fbody = body;
	call.may_200_error = 1;
	call.check = check_put;
	call.check_ud = hex;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc) {
		/* kept exactly as received: Supabase's S3 endpoint answers
		 * it unquoted and compares it byte for byte at completion
		 * (API-NOTES F17) */
		const char *v = http_header(&resp, "etag"), *bad;
		size_t n;

		v = v ? v + strspn(v, " \t") : "";
		n = strcspn(v, "\r\n");
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		bad = strpbrk(v, "<>&");	/* XML would need them escaped */
		if (n >= 80 || (bad && (size_t)(bad - v) < n))
			n = 0;
		memcpy(etag, v, n);
		etag[n] = '\0';
		if (!*etag)
			rc = eb_set(eb, MFS_EPROTO, "part %d: no usable ETag",
				    part);
	}
	http_response_cleanup(&resp);
	return rc;
}

/* The completion's reply was lost, garbled or an error (a completion
 * retried after the first one worked answers NoSuchUpload): the object
 * tells. Its ETag is the MD5 of the parts' MD5s and their count, which
 * only these bytes give; anything else keeps rc. */
static enum mfs_err settle_complete(struct backend *be, const char *key,
				    char (*etags)[80], int nparts,
				    struct obj_meta *out, enum mfs_err rc,
				    struct errbuf *eb)
{
	struct errbuf heb = { 0 };
	struct obj_meta now;
	char want[80], (*bare)[80] = calloc(nparts ? nparts : 1, 80);
	int i, bad;

	/* the parts' ETags are kept as the server sent them (quoted or
	 * not, API-NOTES F17); the sum is over their MD5s */
	if (!bare)
		return rc;
	for (i = 0; i < nparts; i++)
		s3_strip_etag(etags[i], bare[i], 80);
	bad = sigv4_multipart_etag(bare, nparts, want, sizeof(want));
	free(bare);
	if (bad ||
	    be->ops->head(be, key, &now, &heb) || strcmp(now.etag, want))
		return rc;
	log_warn("remote [%s]: completing the upload of %s: %s; the object is there with the ETag of its parts (%s): done",
		 be->name, key, eb ? eb->msg : mfs_strerror(rc), want);
	if (out) {
		memset(out, 0, sizeof(*out));
		out->kind = OBJ_FILE;
		memcpy(out->etag, now.etag, sizeof(out->etag));
	}
	if (eb)
		eb_clear(eb);
	return MFS_OK;
}

enum mfs_err s3_mp_complete(struct backend *be, const char *key,
			    const char *upload_id, char (*etags)[80],
			    int nparts, struct obj_meta *out,
			    struct errbuf *eb)
{
	struct sigv4_pair q[1] = { { "uploadId", upload_id } }, h[1];
	struct http_response resp;
	struct s3_call call = { 0 };
	struct xml_doc *doc = NULL;
	struct buf body;
	char sha[65];
	enum mfs_err rc;
	int i;

	buf_init(&body, 0);
	rc = buf_adds(&body, "<CompleteMultipartUpload>");
	for (i = 0; i < nparts && !rc; i++)
		rc = buf_addf(&body, "<Part><PartNumber>%d</PartNumber>"
			      "<ETag>%s</ETag></Part>", i + 1, etags[i]);
	if (!rc)
		rc = buf_adds(&body, "</CompleteMultipartUpload>");
	if (rc) {
		buf_cleanup(&body);
		return rc;
	}
	sigv4_sha256_hex(body.data, body.len, sha);
	h[0] = (struct sigv4_pair){ "content-type", "application/xml" };
	call.method = "POST";
	call.key = key;
	call.query = q;
	call.nquery = 1;
	call.headers = h;
	call.nheaders = 1;
	call.payload_sha256 = sha;
	call.body = body.data;
	call.body_len = body.len;
	call.may_200_error = 1;
	http_response_init(&resp);
	rc = s3_do(be, &call, &resp, eb);
	if (!rc)
		rc = xml_parse(resp.body.data, resp.body.len, &doc, eb);
	if (!rc && strcmp(xml_name(xml_root(doc)),
			  "CompleteMultipartUploadResult"))
		rc = eb_set(eb, MFS_EPROTO,
			    "completion reply has root <%s>",
			    xml_name(xml_root(doc)));
	if (!rc) {
		char *et = xml_child_text(xml_root(doc), "ETag");

		if (out) {
			memset(out, 0, sizeof(*out));
			out->kind = OBJ_FILE;
			s3_strip_etag(et, out->etag, sizeof(out->etag));
		}
		if (!et || !*et)
			rc = eb_set(eb, MFS_EPROTO,
				    "completion reply without an ETag");
		free(et);
	}
	if (rc && rc != MFS_ENOMEM && rc != MFS_EACCES && rc != MFS_ECONFIG)
		rc = settle_complete(be, key, etags, nparts, out, rc, eb);
	if (rc == MFS_ENOTFOUND)	/* NoSuchUpload, and not there */
		rc = MFS_EIO;
	xml_free(doc);
	http_response_cleanup(&resp);
	buf_cleanup(&body);
	return rc;
}

enum mfs_err s3_mp_abort(struct backend *be, const char *key,
			 const char *upload_id, struct errbuf *eb)
{
	struct sigv4_pair q[1] = { { "uploadId", upload_id } };

	return delete_key(be, key, q, 1, eb);
}

/* One page of ListMultipartUploads: cb for each upload of exactly key;
 * *next_key / *next_id (freed by the caller) when there is more. */
static enum mfs_err mp_list_page(const struct buf *body, const char *key,
				 backend_mp_cb cb, void *ud, char **next_key,
				 char **next_id, struct errbuf *eb)
{
	const struct xml_node *root, *n;
	struct xml_doc *doc = NULL;
	char *trunc = NULL;
	enum mfs_err rc;

	*next_key = *next_id = NULL;
	rc = xml_parse(body->data, body->len, &doc, eb);
	if (rc)
		return rc;
	root = xml_root(doc);
	if (strcmp(xml_name(root), "ListMultipartUploadsResult")) {
		rc = eb_set(eb, MFS_EPROTO,
			    "listing multipart uploads: <%s> instead of <ListMultipartUploadsResult>",
			    xml_name(root));
		goto out;
	}
	for (n = xml_first(root, "Upload"); n && !rc;
	     n = xml_next(n, "Upload")) {
		char *k = xml_child_text(n, "Key");
		char *id = xml_child_text(n, "UploadId");
		char *at = xml_child_text(n, "Initiated");
		int64_t ns = 0;

		if (at && str_parse_iso8601(at, &ns))
			ns = 0;
		if (k && id && *id && !strcmp(k, key))
			rc = cb(ud, id, ns);
		free(k);
		free(id);
		free(at);
	}
	trunc = xml_child_text(root, "IsTruncated");
	if (!rc && trunc && !strcmp(trunc, "true")) {
		*next_key = xml_child_text(root, "NextKeyMarker");
		*next_id = xml_child_text(root, "NextUploadIdMarker");
	}
out:
	free(trunc);
	xml_free(doc);
	return rc;
}

enum mfs_err s3_mp_list(struct backend *be, const char *key,
			backend_mp_cb cb, void *ud, struct errbuf *eb)
{
	struct http_response resp;
	char *kmark = NULL, *imark = NULL;
	enum mfs_err rc = MFS_OK;
	int pages = 0;

	http_response_init(&resp);
	do {
		struct sigv4_pair q[4];
		struct s3_call call = { 0 };
		char *nk = NULL, *ni = NULL;
		int nq = 0;

		q[nq++] = (struct sigv4_pair){ "uploads", "" };
		q[nq++] = (struct sigv4_pair){ "prefix", key };
		if (kmark)
			q[nq++] = (struct sigv4_pair){ "key-marker", kmark };
		if (imark)
			q[nq++] = (struct sigv4_pair){ "upload-id-marker",
						       imark };
		call.method = "GET";
		call.query = q;
		call.nquery = nq;
		rc = s3_do(be, &call, &resp, eb);
		if (!rc)
			rc = mp_list_page(&resp.body, key, cb, ud, &nk, &ni,
					  eb);
		free(kmark);
		free(imark);
		kmark = nk;
		imark = ni;
		if (!rc && kmark && ++pages >= 100)
			rc = eb_set(eb, MFS_EIO,
				    "multipart uploads of %s: still truncated after %d pages",
				    key, pages);
	} while (!rc && kmark && *kmark);
	free(kmark);
	free(imark);
	http_response_cleanup(&resp);
	return rc;
}
