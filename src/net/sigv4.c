/* sigv4.c - SigV4 signing as pure functions. Calls: OpenSSL, common. */
#include "net/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/str.h"

enum mfs_err sigv4_canonical_uri(const char *path, struct buf *out)
{
	if (!*path)
		return buf_adds(out, "/");
	return str_uri_encode(out, path, strlen(path), 1);
}

struct enc_pair {
	char *name;
	char *value;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static char *encode(const char *s)
{
	struct buf b;

	buf_init(&b, 0);
	if (str_uri_encode(&b, s, strlen(s), 0)) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

enum mfs_err sigv4_canonical_query(const struct sigv4_pair *q, int n,
				   struct buf *out)
{
	struct enc_pair *e;
	enum mfs_err rc = MFS_OK;
	int i;

	if (n == 0)
		return buf_add(out, "", 0);
	e = calloc((size_t)n, sizeof(*e));
	if (!e)
		return MFS_ENOMEM;
	for (i = 0; i < n && !rc; i++) {
		e[i].name = encode(q[i].name);
		e[i].value = encode(q[i].value);
		if (!e[i].name || !e[i].value)
			rc = MFS_ENOMEM;
	}
	if (!rc) {
		qsort(e, (size_t)n, sizeof(*e), cmp_pair);
		for (i = 0; i < n && !rc; i++)
			rc = buf_addf(out, "%s%s=%s", i ? "&" : "", e[i].name,
				      e[i].value);
	}
	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	return rc;
}

static void hmac(const void *key, size_t klen, const char *msg,
		 unsigned char out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	     strlen(msg), out, &len);
}

void sigv4_signing_key(const char *secret, const char *date,
		       const char *region, const char *service,
		       unsigned char key[32])
{
	unsigned char k[32];
	char *first = str_fmt("AWS4%s", secret);

	if (!first) {
		memset(key, 0, 32);
		return;
	}
	hmac(first, strlen(first), date, k);
	explicit_bzero(first, strlen(first));
	free(first);
	hmac(k, 32, region, k);
	hmac(k, 32, service, k);
	hmac(k, 32, "aws4_request", key);
	explicit_bzero(k, sizeof(k));
}

void sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(p, n, md);
	str_hex(md, sizeof(md), out);
}

struct canon_header {
	char *name;	/* lowercased */
	char *value;	/* trimmed, inner runs of spaces collapsed */
};

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct canon_header *)a)->name,
		      ((const struct canon_header *)b)->name);
}

static char *canon_value(const char *v)
{
	char *out = malloc(strlen(v) + 1), *o = out;
	int space = 0;

	if (!out)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space && o > out)
			*o++ = ' ';
		space = 0;
		*o++ = *v;
	}
	*o = '\0';
	return out;
}

static enum mfs_err canonical_headers(const struct sigv4_input *in,
				      struct buf *hdrs, struct buf *names)
{
	struct canon_header *h = calloc((size_t)in->nheaders + 1, sizeof(*h));
	enum mfs_err rc = MFS_OK;
	int i;

	if (!h)
		return MFS_ENOMEM;
	for (i = 0; i < in->nheaders && !rc; i++) {
		char *p;

		h[i].name = strdup(in->headers[i].name);
		h[i].value = canon_value(in->headers[i].value);
		if (!h[i].name || !h[i].value) {
			rc = MFS_ENOMEM;
			break;
		}
		for (p = h[i].name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (!rc) {
		qsort(h, (size_t)in->nheaders, sizeof(*h), cmp_header);
		for (i = 0; i < in->nheaders && !rc; i++) {
			rc = buf_addf(hdrs, "%s:%s\n", h[i].name, h[i].value);
			if (!rc)
				rc = buf_addf(names, "%s%s", i ? ";" : "",
					      h[i].name);
		}
	}
	for (i = 0; i < in->nheaders; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	return rc;
}

enum mfs_err sigv4_sign(const struct sigv4_input *in,
			const unsigned char *key, struct sigv4_result *res)
{
	struct buf uri, query, hdrs, names, creq, sts;
	unsigned char kbuf[32], sig[32];
	char date[9], hash[65];
	enum mfs_err rc;

	memset(res, 0, sizeof(*res));
	buf_init(&uri, 0);
	buf_init(&query, 0);
	buf_init(&hdrs, 0);
	buf_init(&names, 0);
	buf_init(&creq, 0);
	buf_init(&sts, 0);
	if (strlen(in->amz_date) != 16)
		return MFS_EINVAL;
	memcpy(date, in->amz_date, 8);
	date[8] = '\0';

	rc = sigv4_canonical_uri(in->path, &uri);
	if (!rc)
		rc = sigv4_canonical_query(in->query, in->nquery, &query);
	if (!rc)
		rc = canonical_headers(in, &hdrs, &names);
	if (!rc)
		rc = buf_addf(&creq, "%s\n%s\n%s\n%s\n%s\n%s", in->method,
			      uri.data, query.data ? query.data : "",
			      hdrs.data ? hdrs.data : "",
			      names.data ? names.data : "",
			      in->payload_sha256);
	if (!rc) {
		sigv4_sha256_hex(creq.data, creq.len, hash);
		rc = buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
			      in->amz_date, date, in->region, in->service,
			      hash);
	}
	if (!rc) {
		unsigned int len = 32;

		if (!key) {
			sigv4_signing_key(in->secret_key, date, in->region,
					  in->service, kbuf);
			key = kbuf;
		}
		HMAC(EVP_sha256(), key, 32, (const unsigned char *)sts.data,
		     sts.len, sig, &len);
		explicit_bzero(kbuf, sizeof(kbuf));
		str_hex(sig, 32, res->signature);
		res->authorization = str_fmt(
			"AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
			in->access_key, date, in->region, in->service,
			names.data ? names.data : "", res->signature);
		if (!res->authorization)
			rc = MFS_ENOMEM;
	}
	if (!rc) {
		res->canonical_uri = buf_take(&uri);
		res->canonical_query = buf_take(&query);
		res->canonical_request = buf_take(&creq);
		res->string_to_sign = buf_take(&sts);
		res->signed_headers = buf_take(&names);
	}
	buf_cleanup(&uri);
	buf_cleanup(&query);
	buf_cleanup(&hdrs);
	buf_cleanup(&names);
	buf_cleanup(&creq);
	buf_cleanup(&sts);
	if (rc)
		sigv4_result_cleanup(res);
	return rc;
}

void sigv4_result_cleanup(struct sigv4_result *res)
{
	free(res->canonical_uri);
	free(res->canonical_query);
	free(res->canonical_request);
	free(res->string_to_sign);
	free(res->signed_headers);
	free(res->authorization);
	memset(res, 0, sizeof(*res));
}

void sigv4_amz_date(long long t, char out[17])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void sigv4_content_md5(const void *p, size_t n, char out[25])
{
	unsigned char md[16];
	unsigned int len = sizeof(md);

	EVP_Digest(p, n, md, &len, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, 16);
}

int sigv4_md5_from_hex(const char *hex, unsigned char md[16])
{
	int i;

	if (!hex || strlen(hex) != 32)
		return -1;
	for (i = 0; i < 16; i++) {
		int hi = str_hexval(hex[2 * i]);
		int lo = str_hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		md[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int sigv4_md5_hex_b64(const char *hex, char out[25])
{
	unsigned char md[16];

	if (sigv4_md5_from_hex(hex, md))
		return -1;
	EVP_EncodeBlock((unsigned char *)out, md, 16);
	return 0;
}

int sigv4_multipart_etag(char (*etags)[80], int n, char *out, size_t cap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[16];
	unsigned int len = sizeof(md);
	char hex[33];
	int i, rc = -1;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
		goto out;
	for (i = 0; i < n; i++) {
		if (sigv4_md5_from_hex(etags[i], md))
			goto out;
		EVP_DigestUpdate(ctx, md, 16);
	}
	EVP_DigestFinal_ex(ctx, md, &len);
	str_hex(md, 16, hex);
	rc = snprintf(out, cap, "%s-%d", hex, n) < (int)cap ? 0 : -1;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}
