/* backend/s3 against a scripted HTTP server on 127.0.0.1: every reply is
 * written by the test, so malformed, truncated and hostile answers can be
 * played exactly. Checks results, error classes, messages and how many
 * requests each case cost (retries only where they belong). */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "common/ini.h"
#include "common/log.h"
#include "scripted.h"
#include "unit.h"

TEST_MAIN("test_s3")

static struct backend *make_backend(const char *extra)
{
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	struct backend *be = NULL;
	char *text = NULL;

	if (asprintf(&text,
		     "[t]\ntype = s3\nendpoint = http://127.0.0.1:%d\n"
		     "bucket = bkt\nregion = us-east-1\n"
		     "access_key_id = AKIDEXAMPLE\n"
		     "secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCY\n"
		     "retries = 3\nretry_base_ms = 1\n%s",
		     srv.port, extra ? extra : "") < 0)
		return NULL;
	if (ini_parse(text, "test.conf", &ini, &eb) ||
	    backend_create(ini, &ini->sec[0], &be, &eb))
		printf("backend: %s\n", eb.msg);
	ini_free(ini);
	free(text);
	return be;
}

#define LIST_HEAD "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><EncodingType>url</EncodingType>"

static void test_list_paging(struct backend *be)
{
	char *p1 = resp(200, NULL, LIST_HEAD
		"<Prefix>d%2F</Prefix><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>1/ab+=</NextContinuationToken>"
		"<Contents><Key>d%2F</Key><Size>0</Size></Contents>"
		"<Contents><Key>d%2Fa+b.jpg</Key><Size>12</Size>"
		"<LastModified>2024-05-01T10:00:00.000Z</LastModified>"
		"<ETag>&quot;9b2c&quot;</ETag></Contents>"
		"<Contents><Key>d%2Fplus%2Bsign</Key><Size>3</Size></Contents>"
		"<CommonPrefixes><Prefix>d%2Fsub%2F</Prefix></CommonPrefixes>"
		"</ListBucketResult>");
	char *p2 = resp(200, NULL, LIST_HEAD
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>d%2F%C3%BCni%20code</Key><Size>7</Size></Contents>"
		"<Contents><Key>d%2Fmarker%2F</Key><Size>0</Size></Contents>"
		"<Contents><Key>d%2F..%2Fescape</Key><Size>1</Size></Contents>"
		"<CommonPrefixes><Prefix>d%2F%2F</Prefix></CommonPrefixes>"
		"</ListBucketResult>");
	struct reply r[] = { { p1, 0 }, { p2, 0 }, { NULL, 0 } };
	struct names nm = { { 0 }, 0 };
	struct errbuf eb = { 0 };

	CASE("list: two pages, url-decoding, markers, bad names skipped");
	play(r);
	CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_OK);
	CHECK_STR(nm.buf, "f:a b.jpg:12|f:plus+sign:3|d:sub:0|"
			  "f:\xc3\xbcni code:7|d:marker:0");
	CHECK(requests() == 2);
	/* the token goes back encoded exactly as signed */
	CHECK_HAS(srv.reqs[1], "continuation-token=1%2Fab%2B%3D");
	CHECK_HAS(srv.reqs[0], "GET /bkt?delimiter=%2F&encoding-type=url&"
			       "list-type=2&max-keys=1000&prefix=d%2F ");
	CHECK_HAS(srv.reqs[0], "Authorization: AWS4-HMAC-SHA256 "
			       "Credential=AKIDEXAMPLE/");
	free(p1);
	free(p2);
}

static void test_list_bad_replies(struct backend *be)
{
	static const char *const bodies[] = {
		"<ListBucketResult><Contents><Key>d%2Fx</Key>",
		"garbage",
		"<Other/>",
		LIST_HEAD "<IsTruncated>true</IsTruncated></ListBucketResult>",
		LIST_HEAD "<Contents><Key>d%2Fx</Key></Contents></ListBucketResult>",
		LIST_HEAD "<Contents><Key>d%2Fx</Key><Size>-5</Size></Contents></ListBucketResult>",
		LIST_HEAD "<Contents><Key>d%2F%zz</Key><Size>1</Size></Contents></ListBucketResult>",
	};
	size_t i;

	CASE("list: malformed replies are EPROTO, not retried, no crash");
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *b = resp(200, NULL, bodies[i]);
		struct reply r[] = { { b, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_EPROTO);
		CHECK(requests() == 1);
		CHECK_HAS(eb.msg, "listing 'd/' in remote [t]");
		free(b);
	}

	CASE("list: a repeated continuation token stops the loop");
	{
		char *b = resp(200, NULL, LIST_HEAD
			"<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken>same</NextContinuationToken>"
			"</ListBucketResult>");
		struct reply r[] = { { b, 0 }, { b, 0 }, { b, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_EPROTO);
		CHECK(requests() == 2);
		CHECK_HAS(eb.msg, "same continuation token");
		free(b);
	}
}

static void test_retries(struct backend *be)
{
	char *ok = resp(200, NULL, LIST_HEAD
			"<IsTruncated>false</IsTruncated>"
			"<Contents><Key>d%2Fx</Key><Size>1</Size></Contents>"
			"</ListBucketResult>");
	char *slow = resp(503, NULL, "<Error><Code>SlowDown</Code></Error>");
	char *internal = resp(500, NULL,
			      "<Error><Code>InternalError</Code></Error>");
	struct names nm = { { 0 }, 0 };
	struct errbuf eb = { 0 };

	CASE("503 SlowDown, 500 and a reset mid-body are retried");
	{
		struct reply r[] = { { slow, 0 }, { internal, 0 },
				     { ok, CLOSE_MID }, { ok, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_OK);
		CHECK_STR(nm.buf, "f:x:1");
		CHECK(requests() == 4);
	}

	CASE("a server that keeps failing: EIO after 1 + retries requests");
	{
		struct reply r[] = { { slow, 0 }, { slow, 0 }, { slow, 0 },
				     { slow, 0 }, { slow, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_EIO);
		CHECK(requests() == 4);
		CHECK_HAS(eb.msg, "SlowDown");
	}
	free(ok);
	free(slow);
	free(internal);
}

static void test_errors(struct backend *be)
{
	static const struct {
		const char *name;
		int status;
		const char *headers;
		const char *body;
		enum mfs_err rc;
		const char *msg;
	} cases[] = {
		{ "wrong secret", 403, NULL,
		  "<Error><Code>SignatureDoesNotMatch</Code>"
		  "<CanonicalRequest>GET</CanonicalRequest></Error>",
		  MFS_EACCES, "wrong secret_access_key" },
		{ "unknown key id", 403, NULL,
		  "<Error><Code>InvalidAccessKeyId</Code></Error>",
		  MFS_EACCES, "does not know access key 'AKID" },
		{ "missing bucket", 404, NULL,
		  "<Error><Code>NoSuchBucket</Code></Error>",
		  MFS_ECONFIG, "bucket 'bkt' does not exist" },
		{ "wrong region", 400, NULL,
		  "<Error><Code>AuthorizationHeaderMalformed</Code>"
		  "<Region>eu-west-1</Region></Error>",
		  MFS_ECONFIG, "set region = eu-west-1" },
		{ "redirect", 301, "x-amz-bucket-region: ap-south-1\r\n",
		  "<Error><Code>PermanentRedirect</Code></Error>",
		  MFS_ECONFIG, "in region ap-south-1" },
		{ "access denied", 403, NULL,
		  "<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
		  MFS_EACCES, "access denied" },
		{ "plain 400", 400, NULL,
		  "<Error><Code>InvalidArgument</Code></Error>",
		  MFS_EIO, "InvalidArgument" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = resp(cases[i].status, cases[i].headers,
			       cases[i].body);
		struct reply r[] = { { b, 0 }, { b, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		CASE(cases[i].name);
		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == cases[i].rc);
		CHECK(requests() == 1);		/* 4xx: never retried */
		CHECK_HAS(eb.msg, cases[i].msg);
		CHECK(!strstr(eb.msg, "wJalrXUtnFEMIK7MDENGbPxRfiCY"));
		free(b);
	}
}

static void test_head_get(struct backend *be)
{
	char *h = resp(200, "ETag: \"abc\"\r\nLast-Modified: Wed, 01 May 2024 10:00:00 GMT\r\n"
		       "x-amz-meta-mtime: 1700000000.25\r\n"
		       "x-amz-meta-mode: 416\r\nContent-Type: image/png\r\n",
		       "");
	const char *h404 = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	char *full = resp(200, NULL, "0123456789");
	char *part = resp(206, "Content-Range: bytes 2-5/10\r\n", "2345");
	char *toolong = resp(206, NULL, "234567");
	struct obj_meta m;
	struct errbuf eb = { 0 };
	char dst[16];
	size_t got;

	CASE("HEAD: metadata, user mtime and mode");
	{
		/* a HEAD reply carries Content-Length of the object but no
		 * body; give it one of 0 to keep this server simple */
		struct reply r[] = { { h, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->head(be, "a/b", &m, &eb) == MFS_OK);
		CHECK_STR(m.etag, "abc");
		CHECK(m.mtime_ns == 1700000000250000000LL);
		CHECK(m.server_mtime_ns == 1714557600000000000LL);
		CHECK(m.mode == 0640);
		CHECK_STR(m.content_type, "image/png");
		CHECK_HAS(srv.reqs[0], "HEAD /bkt/a/b ");
	}
	CASE("HEAD of a missing key (no body): ENOTFOUND, no retry");
	{
		struct reply r[] = { { h404, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->head(be, "nope", &m, &eb) == MFS_ENOTFOUND);
		CHECK(requests() == 1);
	}
	CASE("ranged GET: 206, and a 200 with the whole object");
	{
		struct reply r[] = { { part, 0 }, { full, 0 }, { NULL, 0 } };

		play(r);
		memset(dst, 0, sizeof(dst));
		CHECK(be->ops->get(be, "k", 2, 4, "abc", dst, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 4 && !memcmp(dst, "2345", 4));
		CHECK_HAS(srv.reqs[0], "range: bytes=2-5");
		CHECK_HAS(srv.reqs[0], "if-match: \"abc\"");
		memset(dst, 0, sizeof(dst));
		CHECK(be->ops->get(be, "k", 2, 4, NULL, dst, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 4 && !memcmp(dst, "2345", 4));
	}
	CASE("ranged GET: a 206 longer than asked is a protocol error");
	{
		struct reply r[] = { { toolong, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->get(be, "k", 2, 4, NULL, dst, &got, &eb) ==
		      MFS_EPROTO);
	}
	CASE("GET after a concurrent replace: 412 is a conflict");
	{
		char *pf = resp(412, NULL,
				"<Error><Code>PreconditionFailed</Code></Error>");
		struct reply r[] = { { pf, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->get(be, "k", 0, 4, "old", dst, &got, &eb) ==
		      MFS_ECONFLICT);
		free(pf);
	}
	free(h);
	free(full);
	free(part);
	free(toolong);
}

static void test_config(void)
{
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	struct backend *be = NULL;

	CASE("config: unknown key is named with its line");
	CHECK(ini_parse("[x]\ntype = s3\nbucket = b\nendpiont = http://h\n"
			"access_key_id = a\nsecret_access_key = bbbbbbbb\n",
			"c.conf", &ini, &eb) == MFS_OK);
	CHECK(backend_create(ini, &ini->sec[0], &be, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "c.conf:4: unknown key 'endpiont' in [x]");
	ini_free(ini);

	CASE("config: missing bucket, bad type");
	CHECK(ini_parse("[x]\ntype = s3\n", "c.conf", &ini, &eb) == MFS_OK);
	CHECK(backend_create(ini, &ini->sec[0], &be, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "needs 'bucket = NAME'");
	ini_free(ini);
	CHECK(ini_parse("[x]\ntype = ftp\n", "c.conf", &ini, &eb) == MFS_OK);
	CHECK(backend_create(ini, &ini->sec[0], &be, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "unknown type 'ftp'");
	ini_free(ini);

	CASE("config: virtual-hosted URLs for AWS, path-style for IPs");
	CHECK(ini_parse("[x]\ntype = s3\nbucket = media\nregion = eu-west-1\n"
			"access_key_id = a\nsecret_access_key = bbbbbbbb\n"
			"[y]\ntype = s3\nbucket = media\n"
			"endpoint = http://127.0.0.1:9000/\n"
			"access_key_id = a\nsecret_access_key = bbbbbbbb\n",
			"c.conf", &ini, &eb) == MFS_OK);
	CHECK(backend_create(ini, &ini->sec[0], &be, &eb) == MFS_OK);
	if (be) {
		char *url = NULL;

		CHECK(be->ops->url(be, "a b/c+d.jpg", &url) == MFS_OK);
		CHECK_STR(url, "https://media.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd.jpg");
		free(url);
		backend_free(be);
	}
	CHECK(backend_create(ini, &ini->sec[1], &be, &eb) == MFS_OK);
	if (be) {
		char *url = NULL;

		CHECK(be->ops->url(be, "k", &url) == MFS_OK);
		CHECK_STR(url, "http://127.0.0.1:9000/media/k");
		backend_free(be);
		free(url);
	}
	ini_free(ini);
}

int main(void)
{
	struct backend *be;

	log_set_level(LOG_LVL_ERR);
	start_server();
	be = make_backend(NULL);
	CHECK(be != NULL);
	if (be) {
		test_list_paging(be);
		test_list_bad_replies(be);
		test_retries(be);
		test_errors(be);
		test_head_get(be);
		backend_free(be);
	}
	play((struct reply[]){ { NULL, 0 } });
	test_config();
	return unit_report();
}
