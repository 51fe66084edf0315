/* supabase_write.c - Supabase Storage writes (API-NOTES B6, B9, B10, B13,
 * F): uploads by one PUT (upsert) up to tus_threshold, TUS 1.0.0 above it
 * (x-upsert on every request, resumed by HEAD after a failure), each one
 * proven by the reply (the key it names) or by the object's version; move,
 * copy, single and batch delete, mkdir/rmdir (placeholders and buckets).
 * Calls: supabase.c (the request loop), net, common. Thread-safe like
 * supabase.c.
 */
#include <openssl/evp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "supabase_int.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"

/* ---- writes ---- */

/* base64 of s (malloc'd). */
static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s,
				(int)n);
	return out;
}

/* The user metadata JSON for meta (mtime, mode, owner), malloc'd. */
static char *user_meta_json(const struct put_meta *m)
{
	struct js *j = js_obj();
	char v[64], *s = NULL;
	enum mfs_err rc = j ? MFS_OK : MFS_ENOMEM;

	if (!rc && m && m->mtime_ns) {
		int64_t sec = m->mtime_ns / 1000000000;
		int64_t ns = m->mtime_ns % 1000000000;

		if (ns < 0) {
			ns += 1000000000;
			sec--;
		}
		snprintf(v, sizeof(v), "%lld.%09lld", (long long)sec,
			 (long long)ns);
		rc = js_set_str(j, "mtime", v);
	}
	if (!rc && m && m->mode) {
		snprintf(v, sizeof(v), "%u", m->mode);
		rc = js_set_str(j, "mode", v);
	}
	if (!rc && m && m->has_owner) {
		snprintf(v, sizeof(v), "%u", m->uid);
		rc = js_set_str(j, "uid", v);
		snprintf(v, sizeof(v), "%u", m->gid);
		if (!rc)
			rc = js_set_str(j, "gid", v);
	}
	if (!rc)
		s = js_dump(j, 1);
	js_free(j);
	return s;
}

static void out_from_meta(struct obj_meta *out, uint64_t size,
			  const struct put_meta *meta)
{
	memset(out, 0, sizeof(*out));
	out->kind = OBJ_FILE;
	out->size = size;
	out->full = 1;
	if (!meta)
		return;
	out->mtime_ns = meta->mtime_ns;
	out->mode = meta->mode & 07777;
	snprintf(out->content_type, sizeof(out->content_type), "%s",
		 meta->content_type && *meta->content_type ?
		 meta->content_type : "application/octet-stream");
	if (meta->cache_control)
		snprintf(out->cache_control, sizeof(out->cache_control), "%s",
			 meta->cache_control);
}

/* MD5 of the body's bytes: the server's ETag of a single-request upload. */
static enum mfs_err body_md5(const struct put_body *body, char out[80],
			     struct errbuf *eb)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	char buf[65536];
	uint64_t done = 0;
	unsigned int mdlen = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return MFS_ENOMEM;
	}
	while (done < body->len) {
		size_t want = body->len - done < sizeof(buf) ?
			      (size_t)(body->len - done) : sizeof(buf);
		ssize_t n = pread(body->fd, buf, want,
				  (off_t)(body->off + done));

		if (n <= 0) {
			EVP_MD_CTX_free(ctx);
			return eb_set(eb, MFS_EIO, "reading the staged file: %s",
				      n < 0 ? strerror(errno) : "short file");
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		done += (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	str_hex(md, mdlen, out);
	return MFS_OK;
}

/* Does a 2xx upload reply name what was sent: a JSON object whose Key is
 * "bucket/rest" (API-NOTES B6)? A 200 whose body is an error, is not
 * JSON or names another key proves nothing: MFS_EPROTO, why in eb. */
static enum mfs_err reply_names(const struct buf *body, const char *bucket,
				const char *rest, const char *key,
				struct errbuf *eb)
{
	struct js *j = NULL;
	const char *k = NULL, *msg;
	size_t bl = strlen(bucket);
	enum mfs_err rc = MFS_OK;

	if (!body->len || js_parse(body->data, body->len, &j, NULL) ||
	    !js_is_obj(j))
		rc = eb_set(eb, MFS_EPROTO,
			    "upload of %s: the reply is not a JSON object",
			    key);
	else if (!(k = js_get_str(j, "Key"))) {
		msg = js_get_str(j, "message");
		rc = eb_set(eb, MFS_EPROTO,
			    "upload of %s: the reply names no key%s%s", key,
			    msg ? ": " : "", msg ? msg : "");
	}
	else if (strncmp(k, bucket, bl) || k[bl] != '/' ||
		 strcmp(k + bl + 1, rest))
		rc = eb_set(eb, MFS_EPROTO,
			    "upload of %s: the reply names another key (%.200s)",
			    key, k);
	js_free(j);
	return rc;
}

/* PUT (upsert) of body; MFS_EPROTO when the server answered 2xx with a
 * reply that does not name the key (the caller re-checks). */
static enum mfs_err put_single(struct backend *be, const char *bucket,
			       const char *rest, const char *key,
			       const struct put_body *body,
			       const char *ctype, const char *cc,
			       const char *meta_b64, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *h[5];
	char *hct, *hcc = NULL, *hmd = NULL, *url;
	enum mfs_err rc = MFS_ENOMEM;
	int n = 0;

	url = supabase_obj_url(sb, "object", bucket, rest);
	hct = str_fmt("Content-Type: %s", ctype);
	if (cc && *cc)
		hcc = str_fmt("Cache-Control: %s", cc);
	if (meta_b64)
		hmd = str_fmt("x-metadata: %s", meta_b64);
	if (!url || !hct || (cc && *cc && !hcc) || (meta_b64 && !hmd))
		goto out;
	h[n++] = hct;
	if (hcc)
		h[n++] = hcc;
	if (hmd)
		h[n++] = hmd;
	h[n++] = "x-upsert: true";
	h[n] = NULL;
	c.method = "PUT";
	c.url = url;
	c.what = key;
	c.headers = h;
	c.fbody = body;
	c.counter = &be->stats.put;
	http_response_init(&resp);
	rc = supabase_do(be, &c, &resp, eb);
	if (!rc)
		rc = reply_names(&resp.body, bucket, rest, key, eb);
	http_response_cleanup(&resp);
out:
	free(url);
	free(hct);
	free(hcc);
	free(hmd);
	return rc;
}

static int is_md5(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdefABCDEF") == 32;
}

/* One PUT, proven: a reply that does not name the key is checked against
 * what the server holds (size and the MD5 ETag of what was sent, md5);
 * unproven, the PUT (an upsert: idempotent) is sent again, at most
 * retries times. */
static enum mfs_err put_proven(struct backend *be, const char *bucket,
			       const char *rest, const char *key,
			       const struct put_body *body, const char *ctype,
			       const char *cc, const char *meta_b64,
			       const char *md5, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	enum mfs_err rc;
	int attempt;

	for (attempt = 0;; attempt++) {
		struct errbuf ieb = { 0 };
		struct obj_meta m;

		rc = put_single(be, bucket, rest, key, body, ctype, cc,
				meta_b64, eb);
		if (rc != MFS_EPROTO)
			return rc;
		if (!supabase_info(be, key, &m, NULL, &ieb) &&
		    m.size == body->len && !strcasecmp(m.etag, md5)) {
			log_info("%s: %s; the server holds the bytes sent (size and MD5 ETag match): done",
				 key, eb && eb->msg[0] ? eb->msg : "bad reply");
			return MFS_OK;
		}
		if (attempt >= sb->retries) {
			eb_prefix(eb, "gave up after %d attempts", attempt + 1);
			return MFS_EIO;
		}
		log_info("%s: %s; not on the server: sending it again", key,
			 eb && eb->msg[0] ? eb->msg : "bad reply");
		__atomic_add_fetch(&be->stats.retries, 1, __ATOMIC_RELAXED);
		http_sleep_ms(http_backoff_ms(attempt, sb->backoff_ms, 20000));
	}
}

/* TUS "key base64(value)" pair, appended to b. */
static enum mfs_err tus_pair(struct buf *b, const char *k, const char *v)
{
	char *e = b64(v);
	enum mfs_err rc = e ? buf_addf(b, "%s%s %s", b->len ? "," : "", k, e)
			    : MFS_ENOMEM;

	free(e);
	return rc;
}

/* HEAD the upload: where the server is. */
static enum mfs_err tus_offset(struct backend *be, const char *loc,
			       const char *key, uint64_t *off,
			       struct errbuf *eb)
{
	static const char *const h[] = { "Tus-Resumable: 1.0.0", NULL };
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *v;
	enum mfs_err rc;

	c.method = "HEAD";
	c.url = loc;
	c.what = key;
	c.headers = h;
	c.counter = &be->stats.head;
	http_response_init(&resp);
	rc = supabase_do(be, &c, &resp, eb);
	v = rc ? NULL : http_header(&resp, "upload-offset");
	if (!rc && (!v || str_parse_u64(v, off)))
		rc = eb_set(eb, MFS_EPROTO, "TUS HEAD %s: no Upload-Offset",
			    key);
	http_response_cleanup(&resp);
	return rc;
}

/* TUS 1.0.0 (API-NOTES B13): create, PATCH 6 MiB chunks; after a failed
 * chunk ask the server its offset and go on from there. */
/* The object version a TUS upload will create: the last part of its id,
 * base64url("[tenant/]bucket/object/version") (API-NOTES B13), into ver
 * (cap 80); "" when the Location does not read that way. */
static void tus_version(const char *loc, char ver[80])
{
	const char *id = strrchr(loc, '/');
	char b[512], raw[400];
	size_t n, i;
	int len;
	char *v;

	ver[0] = '\0';
	if (!id || (n = strcspn(++id, "?#")) == 0 || n > sizeof(b) - 4)
		return;
	for (i = 0; i < n; i++)
		b[i] = id[i] == '-' ? '+' : id[i] == '_' ? '/' : id[i];
	while (i % 4)
		b[i++] = '=';
	b[i] = '\0';
	len = EVP_DecodeBlock((unsigned char *)raw, (unsigned char *)b,
			      (int)i);
	if (len <= 0)
		return;
	while (len > 0 && raw[len - 1] == '\0')	/* the '=' padding */
		len--;
	raw[len] = '\0';
	v = strrchr(raw, '/');
	/* a version is a UUID: 36 characters of hex digits and '-' */
	if (!v || strlen(v + 1) != 36 || strspn(v + 1,
	    "0123456789abcdefABCDEF-") != 36)
		return;
	snprintf(ver, 80, "%s", v + 1);
}

static enum mfs_err put_tus(struct backend *be, const char *bucket,
			    const char *rest, const char *key,
			    const struct put_body *body, const char *ctype,
			    const char *cc, const char *meta_json,
			    char version[80], struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	struct buf md;
	const char *h[6];
	char *url = str_fmt("%s/upload/resumable", sb->base);
	char *hlen = str_fmt("Upload-Length: %llu",
			     (unsigned long long)body->len);
	char *hmd = NULL, *loc = NULL;
	uint64_t off = 0;
	enum mfs_err rc;
	int stuck = 0;

	buf_init(&md, 0);
	rc = url && hlen ? MFS_OK : MFS_ENOMEM;
	if (!rc)
		rc = tus_pair(&md, "bucketName", bucket);
	if (!rc)
		rc = tus_pair(&md, "objectName", rest);
	if (!rc)
		rc = tus_pair(&md, "contentType", ctype);
	if (!rc && cc && *cc)
		rc = tus_pair(&md, "cacheControl", cc);
	if (!rc && meta_json)
		rc = tus_pair(&md, "metadata", meta_json);
	if (!rc) {
		hmd = str_fmt("Upload-Metadata: %s", md.data);
		if (!hmd)
			rc = MFS_ENOMEM;
	}
	if (rc)
		goto out;
	h[0] = "Tus-Resumable: 1.0.0";
	h[1] = hlen;
	h[2] = hmd;
	h[3] = "x-upsert: true";
	h[4] = NULL;
	c.method = "POST";
	c.url = url;
	c.what = key;
	c.headers = h;
	c.body = "";
	c.counter = &be->stats.put;
	http_response_init(&resp);
	rc = supabase_do(be, &c, &resp, eb);
	if (!rc && resp.status != 201)
		rc = eb_set(eb, MFS_EPROTO, "TUS create %s: HTTP %ld, not 201",
			    key, resp.status);
	if (!rc) {
		const char *l = http_header(&resp, "location");

		if (!l || !*l)
			rc = eb_set(eb, MFS_EPROTO,
				    "TUS create %s: no Location", key);
		else if (str_starts(l, "http://") || str_starts(l, "https://"))
			loc = strdup(l);
		else	/* relative: on the same server */
			loc = str_fmt("%s%s%s", sb->origin,
				      *l == '/' ? "" : "/", l);
		if (!rc && !loc)
			rc = MFS_ENOMEM;
		if (!rc)
			tus_version(loc, version);
	}
	http_response_cleanup(&resp);
	while (!rc && off < body->len) {
		struct put_body chunk = { body->fd, body->off + off,
					  body->len - off < TUS_CHUNK ?
					  body->len - off : TUS_CHUNK, NULL, NULL };
		char hoff[64];
		const char *ph[5];
		struct sb_call pc = { 0 };
		struct errbuf peb = { 0 };
		enum mfs_err prc;
		long st;

		snprintf(hoff, sizeof(hoff), "Upload-Offset: %llu",
			 (unsigned long long)off);
		ph[0] = "Tus-Resumable: 1.0.0";
		ph[1] = hoff;
		ph[2] = "Content-Type: application/offset+octet-stream";
		/* every request of an overwrite says so, not only the
		 * creating POST (API-NOTES F14) */
		ph[3] = "x-upsert: true";
		ph[4] = NULL;
		pc.method = "PATCH";
		pc.url = loc;
		pc.what = key;
		pc.headers = ph;
		pc.fbody = &chunk;
		pc.counter = &be->stats.put;
		http_response_init(&resp);
		prc = supabase_do(be, &pc, &resp, &peb);
		st = resp.status;
		http_response_cleanup(&resp);
		if (!prc) {
			off += chunk.len;
			stuck = 0;
			continue;
		}
		/* 409 offset conflict, a reset mid-chunk, a 5xx: where is
		 * the server? (bounded: the same offset at most retries
		 * times). A refusal (too large, exists, bad key, no
		 * bucket, no rights) is final. */
		if (prc == MFS_EEXIST || prc == MFS_EACCES ||
		    prc == MFS_EINVAL || prc == MFS_ENOTFOUND ||
		    prc == MFS_EUNSUPP || st == 400 || st == 413 ||
		    st == 415 || ++stuck > sb->retries) {
			rc = prc;
			if (eb)
				*eb = peb;
			break;
		}
		log_dbg(LOG_SUB_HTTP, "TUS %s: chunk at %llu failed (%s); asking the server",
			key, (unsigned long long)off, peb.msg);
		http_sleep_ms(http_backoff_ms(stuck - 1, sb->backoff_ms, 20000));
		rc = tus_offset(be, loc, key, &off, eb);
		if (!rc && off > body->len)
			rc = eb_set(eb, MFS_EPROTO,
				    "TUS %s: server offset past the end", key);
	}
out:
	buf_cleanup(&md);
	free(url);
	free(hlen);
	free(hmd);
	free(loc);
	return rc;
}

enum mfs_err supabase_put(struct backend *be, const char *key,
			   const struct put_body *body,
			   const struct put_meta *meta, struct obj_meta *out,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	const char *rest;
	const char *ctype = meta && meta->content_type && *meta->content_type ?
			    meta->content_type : "application/octet-stream";
	const char *cc = meta ? meta->cache_control : NULL;
	char *bucket = NULL, *mj = user_meta_json(meta), *mb = NULL;
	char *rk = supabase_real_key(key);
	char md5[80];
	enum mfs_err rc;

	rc = mj && rk ? supabase_split(rk, &bucket, &rest) : MFS_ENOMEM;
	if (!rc && !*rest)
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: files must be inside a bucket", key);
	if (!rc && !strcmp(mj, "{}")) {
		free(mj);
		mj = NULL;
	}
	if (!rc && mj && !(mb = b64(mj)))
		rc = MFS_ENOMEM;
	if (!rc)
		rc = body_md5(body, md5, eb);
	if (!rc && body->len <= sb->tus_threshold) {
		rc = put_proven(be, bucket, rest, rk, body, ctype, cc, mb, md5,
				eb);
		if (!rc && out) {
			out_from_meta(out, body->len, meta);
			snprintf(out->etag, sizeof(out->etag), "%s", md5);
		}
	} else if (!rc) {
		char ver[80] = "", got[80] = "";
		struct obj_meta m;

		rc = put_tus(be, bucket, rest, key, body, ctype, cc, mj, ver,
			     eb);
		/* TUS answers no ETag: prove it by what the server holds,
		 * the version this upload made and its bytes' MD5 */
		if (!rc)
			rc = supabase_info(be, rk, &m, got, eb);
		if (!rc && m.size != body->len)
			rc = eb_set(eb, MFS_EIO,
				    "%s: server holds %llu bytes after TUS, sent %llu",
				    key, (unsigned long long)m.size,
				    (unsigned long long)body->len);
		else if (!rc && ver[0] && got[0] && strcmp(ver, got))
			rc = eb_set(eb, MFS_EIO,
				    "%s: the server holds version %s, not the %s this upload made",
				    key, got, ver);
		else if (!rc && is_md5(m.etag) && strcasecmp(m.etag, md5))
			rc = eb_set(eb, MFS_EIO,
				    "%s: the server's ETag %s is not the MD5 of the bytes sent (%s)",
				    key, m.etag, md5);
		if (!rc && out)
			*out = m;
	}
	free(bucket);
	free(mj);
	free(mb);
	free(rk);
	return rc;
}

/* POST /object/move or /object/copy between "bucket/key"s. */
static enum mfs_err move_or_copy(struct backend *be, const char *op,
				 const char *src, const char *dst,
				 const struct put_meta *meta, int once,
				 struct js **reply, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct sb_call c = { 0 };
	const char *sr, *dr, *h[3] = { NULL, NULL, NULL };
	char *sbk = NULL, *dbk = NULL, *url = NULL, *body = NULL;
	char *mj = NULL, *mb = NULL, *hmd = NULL;
	struct js *j = NULL;
	enum mfs_err rc;
	int copy = !strcmp(op, "copy"), n = 0;

	rc = supabase_split(src, &sbk, &sr);
	if (!rc)
		rc = supabase_split(dst, &dbk, &dr);
	if (!rc && (!*sr || !*dr))
		rc = eb_set(eb, MFS_EINVAL, "%s %s -> %s: not inside a bucket",
			    op, src, dst);
	if (rc)
		goto out;
	j = js_obj();
	if (!j || js_set_str(j, "bucketId", sbk) ||
	    js_set_str(j, "sourceKey", sr) ||
	    js_set_str(j, "destinationKey", dr) ||
	    js_set_str(j, "destinationBucket", dbk))
		rc = MFS_ENOMEM;
	if (!rc && copy && meta) {
		struct js *sm = js_obj();

		if (js_set_bool(j, "copyMetadata", 0) ||
		    js_set_str(sm, "mimetype", meta->content_type &&
			       *meta->content_type ? meta->content_type :
			       "application/octet-stream") ||
		    (meta->cache_control && *meta->cache_control &&
		     js_set_str(sm, "cacheControl", meta->cache_control)))
			rc = MFS_ENOMEM;
		if (js_set(j, "metadata", sm))
			rc = MFS_ENOMEM;
		mj = user_meta_json(meta);
		mb = mj ? b64(mj) : NULL;
		hmd = mb ? str_fmt("x-metadata: %s", mb) : NULL;
		if (!hmd)
			rc = MFS_ENOMEM;
		else
			h[n++] = hmd;
	}
	if (copy)
		h[n++] = "x-upsert: true";
	body = j ? js_dump(j, 0) : NULL;
	url = str_fmt("%s/object/%s", sb->base, op);
	if (!rc && (!body || !url))
		rc = MFS_ENOMEM;
	js_free(j);
	if (rc)
		goto out;
	c.method = "POST";
	c.url = url;
	c.what = src;
	c.headers = h;
	c.json = body;
	c.counter = copy ? &be->stats.copy : &be->stats.other;
	c.once = once;
	rc = supabase_json(be, &c, reply, eb);
out:
	free(sbk);
	free(dbk);
	free(url);
	free(body);
	free(mj);
	free(mb);
	free(hmd);
	return rc;
}

enum mfs_err supabase_copy(struct backend *be, const char *src,
			    const char *dst, const struct put_meta *meta,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct js *j = NULL;
	enum mfs_err rc = move_or_copy(be, "copy", src, dst, meta, 0, &j, eb);

	if (!rc && out) {
		supabase_meta_from_sys(j, out);
		if (meta) {
			struct obj_meta m;

			out_from_meta(&m, out->size, meta);
			memcpy(m.etag, out->etag, sizeof(m.etag));
			*out = m;
		} else {
			supabase_meta_from_user(js_get(j, "user_metadata"), out);
		}
	}
	js_free(j);
	return rc;
}

enum mfs_err supabase_del(struct backend *be, const char *key,
			   struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	const char *rest;
	char *rk = supabase_real_key(key), *bucket = NULL, *url = NULL;
	enum mfs_err rc = rk ? supabase_split(rk, &bucket, &rest) : MFS_ENOMEM;

	if (!rc && !*rest)
		rc = eb_set(eb, MFS_EINVAL, "%s: not inside a bucket", key);
	if (!rc && !(url = supabase_obj_url(sb, "object", bucket, rest)))
		rc = MFS_ENOMEM;
	if (!rc) {
		c.method = "DELETE";
		c.url = url;
		c.what = key;
		c.counter = &be->stats.del;
		http_response_init(&resp);
		rc = supabase_do(be, &c, &resp, eb);
		http_response_cleanup(&resp);
		if (rc == MFS_ENOTFOUND)
			rc = MFS_OK;
	}
	free(rk);
	free(bucket);
	free(url);
	return rc;
}

/* One move, never two at once or blindly again (API-NOTES F19: two
 * moves of a key can answer 500 and leave an orphan version): after a
 * doubtful answer, the source and the target say what happened. */
static enum mfs_err move_checked(struct backend *be, const char *src,
				 const char *dst, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	enum mfs_err rc;
	int attempt;

	for (attempt = 0;; attempt++) {
		struct errbuf ieb = { 0 };
		struct obj_meta m;
		struct js *j = NULL;
		enum mfs_err s, d;

		rc = move_or_copy(be, "move", src, dst, NULL, 1, &j, eb);
		js_free(j);
		if (rc != MFS_ETRANSIENT)
			return rc;
		s = supabase_info(be, src, &m, NULL, &ieb);
		d = s == MFS_ENOTFOUND ? supabase_info(be, dst, &m, NULL, &ieb)
				       : MFS_ENOTFOUND;
		if (s == MFS_ENOTFOUND && d == MFS_OK) {
			log_info("move %s -> %s: %s; the target is there and the source gone: done",
				 src, dst, eb && eb->msg[0] ? eb->msg : "no answer");
			return MFS_OK;
		}
		if (s != MFS_OK || attempt >= sb->retries) {
			eb_prefix(eb, "move %s -> %s: not done", src, dst);
			return MFS_EIO;
		}
		__atomic_add_fetch(&be->stats.retries, 1, __ATOMIC_RELAXED);
		http_sleep_ms(http_backoff_ms(attempt, sb->backoff_ms, 20000));
	}
}

/* Moves of one key wait for each other (API-NOTES F19): a move holds its
 * source and its target in sb->moves until its answer is settled, so
 * `mv a b` racing `mv b c` (or a folder rename moving a file that is being
 * renamed alone) reach the server one after the other; the second then
 * finds the key gone or there, never a half-done move. */
enum mfs_err supabase_move(struct backend *be, const char *src,
			   const char *dst, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	enum mfs_err rc;
	int waited = keylock_acquire(sb->moves, src, dst);

	if (waited < 0)
		return MFS_ENOMEM;
	if (waited)
		log_info("move %s -> %s: waited for another move of the same key",
			 src, dst);
	rc = move_checked(be, src, dst, eb);
	if (rc == MFS_EEXIST) {
		rc = supabase_del(be, dst, eb);
		if (!rc)
			rc = move_checked(be, src, dst, eb);
	}
	keylock_release(sb->moves, src, dst);
	return rc;
}

/* Batch delete, one request per bucket run of at most 1000 keys; missing
 * keys are skipped by the server. */
enum mfs_err supabase_del_many(struct backend *be, const char *const *keys,
				int n, int *failed, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	enum mfs_err rc = MFS_OK;
	int i = 0;

	*failed = 0;
	while (i < n && !rc) {
		struct js *arr = js_arr(), *j = NULL;
		struct sb_call c = { 0 };
		const char *rest;
		char *bucket = NULL, *rk = supabase_real_key(keys[i]), *url = NULL;
		char *body = NULL;
		size_t blen;

		rc = rk && arr ? supabase_split(rk, &bucket, &rest) : MFS_ENOMEM;
		free(rk);
		blen = bucket ? strlen(bucket) : 0;
		for (; !rc && i < n; i++) {
			rk = supabase_real_key(keys[i]);
			if (!rk) {
				rc = MFS_ENOMEM;
				break;
			}
			if (strncmp(rk, bucket, blen) || rk[blen] != '/') {
				free(rk);
				break;	/* another bucket: next request */
			}
			if (js_push_str(arr, rk + blen + 1))
				rc = MFS_ENOMEM;
			free(rk);
		}
		if (!rc && js_len(arr)) {
			struct js *o = js_obj();

			if (js_set(o, "prefixes", arr))
				rc = MFS_ENOMEM;
			arr = NULL;
			body = rc ? NULL : js_dump(o, 0);
			js_free(o);
			url = supabase_obj_url(sb, "object", bucket, "");
			if (!body || !url)
				rc = MFS_ENOMEM;
			c.method = "DELETE";
			c.url = url;
			c.what = bucket;
			c.json = body;
			c.counter = &be->stats.del;
			if (!rc)
				rc = supabase_json(be, &c, &j, eb);
			js_free(j);
		}
		js_free(arr);
		free(bucket);
		free(url);
		free(body);
	}
	return rc;
}

enum mfs_err supabase_mkdir(struct backend *be, const char *dir,
			     const struct put_meta *meta, struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct put_body empty = { -1, 0, 0, NULL, NULL };
	struct sb_call c = { 0 };
	struct js *j = NULL;
	char *body = NULL, *url, *k;
	enum mfs_err rc;

	(void)meta;
	if (strchr(dir, '/')) {
		/* an empty folder: its placeholder object */
		const char *rest;
		char *bucket = NULL;

		k = str_fmt("%s/%s", dir, PLACEHOLDER);
		rc = k ? supabase_split(k, &bucket, &rest) : MFS_ENOMEM;
		if (!rc)
			rc = put_single(be, bucket, rest, k, &empty,
					"application/octet-stream", NULL, NULL,
					eb);
		free(bucket);
		free(k);
		return rc;
	}
	j = js_obj();
	if (!js_set_str(j, "id", dir) && !js_set_str(j, "name", dir) &&
	    !js_set_bool(j, "public", sb->public_new))
		body = js_dump(j, 0);
	js_free(j);
	j = NULL;
	url = str_fmt("%s/bucket", sb->base);
	if (!body || !url) {
		free(body);
		free(url);
		return MFS_ENOMEM;
	}
	c.method = "POST";
	c.url = url;
	c.what = dir;
	c.json = body;
	rc = supabase_json(be, &c, &j, eb);
	js_free(j);
	if (!rc) {
		supabase_remember_bucket(sb, dir, sb->public_new);
		log_info("remote [%s]: created %s bucket '%s'", be->name,
			 sb->public_new ? "public" : "private", dir);
	}
	free(body);
	free(url);
	return rc;
}

enum mfs_err supabase_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb)
{
	struct supa *sb = be->priv;
	struct http_response resp;
	struct sb_call c = { 0 };
	char *k, *url;
	enum mfs_err rc;

	if (strchr(dir, '/')) {
		k = str_fmt("%s/", dir);
		rc = k ? supabase_del(be, k, eb) : MFS_ENOMEM;
		free(k);
		return rc;
	}
	url = supabase_obj_url(sb, "bucket", dir, "");
	if (!url)
		return MFS_ENOMEM;
	c.method = "DELETE";
	c.url = url;
	c.what = dir;
	http_response_init(&resp);
	rc = supabase_do(be, &c, &resp, eb);
	http_response_cleanup(&resp);
	if (!rc) {
		supabase_forget_bucket(sb, dir);
		log_info("remote [%s]: deleted bucket '%s'", be->name, dir);
	}
	free(url);
	return rc;
}
