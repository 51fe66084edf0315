/* fuzz_sigv4.c - SigV4 canonicalisation and signing (net/sigv4): the input
 * is lines; the first three are the method, the raw path and the
 * X-Amz-Date, then "q NAME=VALUE" query pairs and "h NAME:VALUE" headers
 * (at most 16 of each). Besides the sanitizers, each result is checked: the
 * canonical URI and query are encoded as S3 wants (unreserved bytes kept,
 * '%' with two upper-case hex digits, '/' kept only in the path) and decode
 * back to what was given; the query has one NAME=VALUE per pair, sorted by
 * name then value; the signed header names are lower case; the
 * signature is 64 hex digits and the same with a precomputed signing key;
 * the MD5 helpers refuse what is not 32 hex digits. */
#include <ctype.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/str.h"
#include "net/sigv4.h"
#include "fuzz.h"

#define MAXP 16

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Well formed per S3's rules, and decodes back to want (n bytes). */
static void check_encoded(const char *enc, int keep_slash, const char *want,
			  size_t n)
{
	const char *p;
	char *dec = NULL;

	for (p = enc; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '%') {
			if (!isxdigit((unsigned char)p[1]) || islower((unsigned char)p[1]) ||
			    !isxdigit((unsigned char)p[2]) || islower((unsigned char)p[2]))
				abort();
			p += 2;
		} else if (!unreserved(c) && !(keep_slash && c == '/')) {
			abort();
		}
	}
	if (str_uri_decode(enc, strlen(enc), 0, &dec))
		abort();
	if (strlen(dec) != n || memcmp(dec, want, n))
		abort();
	free(dec);
}

/* name=value segments of a canonical query: count, sorting, decoding. */
static void check_query(const char *cq, const struct sigv4_pair *q, int n)
{
	char *copy = strdup(cq), *seg, *next, prev_n[4096] = "", prev_v[4096] = "";
	int count = 0;

	if (!copy)
		return;
	if (n == 0 && *cq)
		abort();
	for (seg = copy; n && seg; seg = next, count++) {
		char *eq;
		int i, found = 0;

		next = strchr(seg, '&');
		if (next)
			*next++ = '\0';
		eq = strchr(seg, '=');
		if (!eq || strchr(eq + 1, '='))
			abort();
		*eq = '\0';
		if (strlen(seg) >= sizeof(prev_n) || strlen(eq + 1) >= sizeof(prev_v))
			break;	/* the input lines are shorter: cannot happen */
		if (strcmp(prev_n, seg) > 0 ||
		    (!strcmp(prev_n, seg) && strcmp(prev_v, eq + 1) > 0))
			abort();
		snprintf(prev_n, sizeof(prev_n), "%s", seg);
		snprintf(prev_v, sizeof(prev_v), "%s", eq + 1);
		for (i = 0; i < n && !found; i++) {
			struct buf a, b;

			buf_init(&a, 0);
			buf_init(&b, 0);
			if (!str_uri_encode(&a, q[i].name, strlen(q[i].name), 0) &&
			    !str_uri_encode(&b, q[i].value, strlen(q[i].value), 0) &&
			    !strcmp(a.data ? a.data : "", seg) &&
			    !strcmp(b.data ? b.data : "", eq + 1))
				found = 1;
			buf_cleanup(&a);
			buf_cleanup(&b);
		}
		if (!found)
			abort();	/* a pair that was not given */
	}
	if (count != n)
		abort();
	free(copy);
}

static void check_hex(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		abort();
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *line[3 + 2 * MAXP], *p;
	struct sigv4_pair q[MAXP], h[MAXP];
	struct sigv4_input in = { 0 };
	struct sigv4_result r1, r2;
	unsigned char key[32], md[16];
	char b64[25], etag[80], out[64], (*parts)[80];
	int nl = 0, nq = 0, nh = 0, i;

	if (!s)
		return 0;
	if (size > 4000) {	/* keeps each line under check_query's buffers */
		free(s);
		return 0;
	}
	for (p = s; p && nl < (int)(sizeof(line) / sizeof(*line)); nl++) {
		line[nl] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	/* the MD5 helpers: only 32 hex digits are an MD5 */
	if (!sigv4_md5_from_hex(s, md) != (strlen(s) == 32 &&
					   strspn(s, "0123456789abcdefABCDEF") == 32))
		abort();
	if (!sigv4_md5_hex_b64(s, b64) && strlen(b64) != 24)
		abort();
	parts = calloc(1, sizeof(*parts));
	if (parts) {
		snprintf(parts[0], sizeof(parts[0]), "%s", s);
		if (!sigv4_multipart_etag(parts, 1, etag, sizeof(etag))) {
			if (strcmp(etag + 32, "-1"))
				abort();
			etag[32] = '\0';
			check_hex(etag, 32);
		}
		free(parts);
	}
	if (nl < 3) {
		free(s);
		return 0;
	}
	for (i = 3; i < nl; i++) {
		char *sep;

		if (!strncmp(line[i], "q ", 2) && nq < MAXP) {
			sep = strchr(line[i] + 2, '=');
			q[nq].name = line[i] + 2;
			q[nq].value = "";
			if (sep) {
				*sep = '\0';
				q[nq].value = sep + 1;
			}
			nq++;
		} else if (!strncmp(line[i], "h ", 2) && nh < MAXP) {
			sep = strchr(line[i] + 2, ':');
			h[nh].name = line[i] + 2;
			h[nh].value = "";
			if (sep) {
				*sep = '\0';
				h[nh].value = sep + 1;
			}
			nh++;
		}
	}
	in.method = line[0];
	in.path = line[1];
	in.amz_date = line[2];
	in.query = q;
	in.nquery = nq;
	in.headers = h;
	in.nheaders = nh;
	in.payload_sha256 = SIGV4_EMPTY_SHA256;
	in.region = "us-east-1";
	in.service = "s3";
	in.access_key = "AKIDEXAMPLE";
	in.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	if (sigv4_sign(&in, NULL, &r1)) {
		if (strlen(in.amz_date) == 16)
			abort();	/* only a malformed date is refused */
		free(s);
		return 0;
	}
	if (*in.path)
		check_encoded(r1.canonical_uri, 1, in.path, strlen(in.path));
	else if (strcmp(r1.canonical_uri, "/"))
		abort();
	check_query(r1.canonical_query, q, nq);
	check_hex(r1.signature, 64);
	if (strncmp(r1.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40))
		abort();
	/* signed header names: lower case, at least one ';' between each */
	for (p = r1.signed_headers, i = 0; *p; p++) {
		if (isupper((unsigned char)*p))
			abort();
		i += *p == ';';
	}
	if (nh && i < nh - 1)
		abort();
	memcpy(out, in.amz_date, 8);
	out[8] = '\0';
	sigv4_signing_key(in.secret_key, out, in.region, in.service, key);
	if (sigv4_sign(&in, key, &r2) || strcmp(r1.signature, r2.signature) ||
	    strcmp(r1.canonical_request, r2.canonical_request))
		abort();
	sigv4_result_cleanup(&r1);
	sigv4_result_cleanup(&r2);
	free(s);
	return 0;
}
