/* SigV4 against AWS's published examples (API-NOTES A3), every
 * intermediate value, with a pinned date. */
#include <stdlib.h>

#include "common/str.h"
#include "net/sigv4.h"
#include "unit.h"

TEST_MAIN("test_sigv4")

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATE "20130524T000000Z"
#define HOST "examplebucket.s3.amazonaws.com"

static void test_signing_key(void)
{
	unsigned char key[32];
	char hex[65];

	CASE("signing key");
	sigv4_signing_key(SK, "20130524", "us-east-1", "s3", key);
	str_hex(key, 32, hex);
	CHECK_STR(hex, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
}

static void test_get_object_range(void)
{
	const struct sigv4_pair h[] = {
		{ "Host", HOST },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DATE },
	};
	struct sigv4_input in = {
		.method = "GET", .path = "/test.txt", .headers = h,
		.nheaders = 4, .payload_sha256 = SIGV4_EMPTY_SHA256,
		.amz_date = DATE, .region = "us-east-1", .service = "s3",
		.access_key = AK, .secret_key = SK,
	};
	struct sigv4_result r;
	char hash[65];

	CASE("vector 1: GET with Range");
	CHECK(sigv4_sign(&in, NULL, &r) == MFS_OK);
	CHECK_STR(r.canonical_request,
		  "GET\n/test.txt\n\n"
		  "host:examplebucket.s3.amazonaws.com\n"
		  "range:bytes=0-9\n"
		  "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
		  "x-amz-date:20130524T000000Z\n\n"
		  "host;range;x-amz-content-sha256;x-amz-date\n"
		  SIGV4_EMPTY_SHA256);
	sigv4_sha256_hex(r.canonical_request, strlen(r.canonical_request),
			 hash);
	CHECK_STR(hash, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	CHECK_STR(r.string_to_sign,
		  "AWS4-HMAC-SHA256\n20130524T000000Z\n"
		  "20130524/us-east-1/s3/aws4_request\n"
		  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	CHECK_STR(r.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	CHECK_STR(r.authorization,
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		  "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	sigv4_result_cleanup(&r);
}

static void test_put_object(void)
{
	const char *body = "Welcome to Amazon S3.";
	char ph[65];
	struct sigv4_pair h[] = {
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "Host", HOST },
		{ "x-amz-content-sha256", ph },
		{ "x-amz-date", DATE },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	struct sigv4_input in = {
		.method = "PUT", .path = "/test$file.text", .headers = h,
		.nheaders = 5, .payload_sha256 = ph, .amz_date = DATE,
		.region = "us-east-1", .service = "s3", .access_key = AK,
		.secret_key = SK,
	};
	struct sigv4_result r;

	CASE("vector 2: PUT with a '$' in the key");
	sigv4_sha256_hex(body, strlen(body), ph);
	CHECK_STR(ph, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	CHECK(sigv4_sign(&in, NULL, &r) == MFS_OK);
	CHECK_STR(r.canonical_uri, "/test%24file.text");
	CHECK_STR(r.signed_headers,
		  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
	CHECK_STR(r.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	sigv4_result_cleanup(&r);
}

static void test_list(void)
{
	const struct sigv4_pair q[] = {
		{ "prefix", "J" }, { "max-keys", "2" },
	};
	const struct sigv4_pair h[] = {
		{ "host", HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DATE },
	};
	struct sigv4_input in = {
		.method = "GET", .path = "/", .query = q, .nquery = 2,
		.headers = h, .nheaders = 3,
		.payload_sha256 = SIGV4_EMPTY_SHA256, .amz_date = DATE,
		.region = "us-east-1", .service = "s3", .access_key = AK,
		.secret_key = SK,
	};
	struct sigv4_result r;
	unsigned char key[32];

	CASE("vector 3: list, query sorted");
	CHECK(sigv4_sign(&in, NULL, &r) == MFS_OK);
	CHECK_STR(r.canonical_query, "max-keys=2&prefix=J");
	CHECK_STR(r.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	sigv4_result_cleanup(&r);

	CASE("vector 3 with a cached signing key");
	sigv4_signing_key(SK, "20130524", "us-east-1", "s3", key);
	in.secret_key = "not used";
	CHECK(sigv4_sign(&in, key, &r) == MFS_OK);
	CHECK_STR(r.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	sigv4_result_cleanup(&r);
}

static void test_canonical_query_encoding(void)
{
	const struct sigv4_pair q[] = {
		{ "prefix", "photos/2024/" },
		{ "list-type", "2" },
		{ "continuation-token", "1/ab+=" },
		{ "encoding-type", "url" },
		{ "delimiter", "/" },
		{ "max-keys", "1000" },
	};
	const struct sigv4_pair valueless[] = { { "uploads", "" } };
	struct buf b;

	CASE("canonical query: '/', '+', '=' encoded, sorted (A2.4)");
	buf_init(&b, 0);
	CHECK(sigv4_canonical_query(q, 6, &b) == MFS_OK);
	CHECK_STR(b.data, "continuation-token=1%2Fab%2B%3D&delimiter=%2F&"
			  "encoding-type=url&list-type=2&max-keys=1000&"
			  "prefix=photos%2F2024%2F");
	buf_reset(&b);
	CHECK(sigv4_canonical_query(valueless, 1, &b) == MFS_OK);
	CHECK_STR(b.data, "uploads=");
	buf_cleanup(&b);

	CASE("canonical URI: no normalisation, encode once");
	buf_init(&b, 0);
	CHECK(sigv4_canonical_uri("/bkt/a//b/../c d+e~f", &b) == MFS_OK);
	CHECK_STR(b.data, "/bkt/a//b/../c%20d%2Be~f");
	buf_reset(&b);
	CHECK(sigv4_canonical_uri("/bkt/\xc3\xbc", &b) == MFS_OK);
	CHECK_STR(b.data, "/bkt/%C3%BC");
	buf_reset(&b);
	CHECK(sigv4_canonical_uri("", &b) == MFS_OK);
	CHECK_STR(b.data, "/");
	buf_cleanup(&b);
}

static void test_header_canonicalisation(void)
{
	const struct sigv4_pair h[] = {
		{ "X-Amz-Meta-Note", "  two   spaces\there  " },
		{ "host", "h" },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DATE },
	};
	struct sigv4_input in = {
		.method = "GET", .path = "/k", .headers = h, .nheaders = 4,
		.payload_sha256 = SIGV4_EMPTY_SHA256, .amz_date = DATE,
		.region = "eu-west-1", .service = "s3", .access_key = AK,
		.secret_key = SK,
	};
	struct sigv4_result r;

	CASE("headers: lowercased, trimmed, runs of spaces collapsed");
	CHECK(sigv4_sign(&in, NULL, &r) == MFS_OK);
	CHECK_HAS(r.canonical_request, "x-amz-meta-note:two spaces here\n");
	CHECK_STR(r.signed_headers,
		  "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note");
	CHECK_HAS(r.string_to_sign, "20130524/eu-west-1/s3/aws4_request");
	sigv4_result_cleanup(&r);

	CASE("amz date");
	{
		char d[17];

		sigv4_amz_date(1369353600LL, d);
		CHECK_STR(d, "20130524T000000Z");
	}
}

int main(void)
{
	test_signing_key();
	test_get_object_range();
	test_put_object();
	test_list();
	test_canonical_query_encoding();
	test_header_canonicalisation();
	return unit_report();
}
