/* backend/s3 against a scripted HTTP server on 127.0.0.1: every reply is
 * written by the test, so malformed, truncated and hostile answers can be
 * played exactly. Checks results, error classes, messages and how many
 * requests each case cost (retries only where they belong). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/ini.h"
#include "common/log.h"
#include "net/http.h"
#include "net/sigv4.h"
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

	CASE("list: two pages, url-decoding, markers (the directory's own as \"\"), bad names skipped");
	play(r);
	CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_OK);
	CHECK_STR(nm.buf, "d::0|f:a b.jpg:12|f:plus+sign:3|d:sub:0|"
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
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_EIO);
		CHECK(requests() == 2);
		CHECK_HAS(eb.msg, "token 'same' a second time");
		free(b);
	}

	CASE("list: tokens that cycle (A, B, A) stop with EIO after 3 pages");
	{
		char *a = resp(200, NULL, LIST_HEAD
			"<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken>A</NextContinuationToken>"
			"<Contents><Key>d%2Fx</Key><Size>1</Size></Contents>"
			"</ListBucketResult>");
		char *b = resp(200, NULL, LIST_HEAD
			"<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken>B</NextContinuationToken>"
			"</ListBucketResult>");
		struct reply r[] = { { a, 0 }, { b, 0 }, { a, 0 }, { b, 0 },
				     { a, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_EIO);
		CHECK(requests() == 3);
		CHECK_HAS(eb.msg, "token 'A' a second time (after 3 pages)");
		free(a);
		free(b);
	}

	CASE("list: a key with %00 or bad encoding is skipped, its siblings listed");
	{
		char *b = resp(200, NULL, LIST_HEAD
			"<IsTruncated>false</IsTruncated>"
			"<Contents><Key>d%2Fa</Key><Size>1</Size></Contents>"
			"<Contents><Key>d%2Fnul%00byte</Key><Size>2</Size></Contents>"
			"<Contents><Key>d%2F%zz</Key><Size>3</Size></Contents>"
			"<Contents><Key>d%2Fb</Key><Size>4</Size></Contents>"
			"<CommonPrefixes><Prefix>d%2Fsub%00%2F</Prefix></CommonPrefixes>"
			"<CommonPrefixes><Prefix>d%2Fsub%2F</Prefix></CommonPrefixes>"
			"</ListBucketResult>");
		struct reply r[] = { { b, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->list(be, "d", collect, &nm, &eb) == MFS_OK);
		CHECK_STR(nm.buf, "f:a:1|f:b:4|d:sub:0");
		CHECK(requests() == 1);
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
	char *full = resp(200, "ETag: \"abc\"\r\n", "0123456789");
	char *part = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 2-5/10\r\n",
			  "2345");
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

#define ERR_BODY "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
#define HELLO_MD5 "5d41402abc4b2a76b9719d911017c592"

static void test_get_lies(struct backend *be)
{
	char *xml = resp(200, "Content-Type: application/xml\r\n", ERR_BODY);
	char *xml206 = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 0-3/10\r\n",
			    "<Er");
	char *shrt = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 2-5/10\r\n",
			  "23");
	char *other = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 0-3/10\r\n",
			   "0123");
	char *part = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 2-5/10\r\n",
			  "2345");
	char *tail = resp(206, "ETag: \"abc\"\r\nContent-Range: bytes 8-9/10\r\n",
			  "89");
	char *newer = resp(206, "ETag: \"def\"\r\nContent-Range: bytes 2-5/10\r\n",
			   "2345");
	struct errbuf eb = { 0 };
	char dst[16];
	size_t got;

	CASE("ranged GET: a 200 with an <Error> body is retried, never served");
	{
		struct reply r[] = { { xml, 0 }, { xml, 0 }, { part, 0 },
				     { NULL, 0 } };

		play(r);
		memset(dst, 0, sizeof(dst));
		CHECK(be->ops->get(be, "k", 2, 4, "abc", dst, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 4 && !memcmp(dst, "2345", 4));
		CHECK(requests() == 3);
	}
	CASE("ranged GET: lies every time: EIO after the retries, nothing served");
	{
		struct reply r[] = { { xml, 0 }, { xml, 0 }, { xml, 0 },
				     { xml, 0 }, { NULL, 0 } };

		play(r);
		got = 99;
		CHECK(be->ops->get(be, "k", 0, 10, "abc", dst, &got, &eb) ==
		      MFS_EIO);
		CHECK(got == 0);
		CHECK(requests() == 4);
		CHECK_HAS(eb.msg, "without an ETag");
	}
	CASE("ranged GET: a short body or another range is retried");
	{
		struct reply r[] = { { shrt, 0 }, { other, 0 }, { part, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->get(be, "k", 2, 4, "abc", dst, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 4 && !memcmp(dst, "2345", 4));
		CHECK(requests() == 3);
	}
	CASE("ranged GET: a 206 shorter than asked is only right at the end");
	{
		struct reply r[] = { { xml206, 0 }, { tail, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->get(be, "k", 8, 4, "abc", dst, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 2 && !memcmp(dst, "89", 2));
		CHECK(requests() == 2);
	}
	CASE("ranged GET: another ETag than If-Match asked is a conflict");
	{
		struct reply r[] = { { newer, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->get(be, "k", 2, 4, "abc", dst, &got, &eb) ==
		      MFS_ECONFLICT);
		CHECK(requests() == 1);
	}
	free(xml);
	free(xml206);
	free(shrt);
	free(other);
	free(part);
	free(tail);
	free(newer);
}

static int hello_fd(void)
{
	char path[] = "/tmp/test_s3_XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, "hello", 5) != 5) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_put_proof(struct backend *be)
{
	char *errb = resp(200, "ETag: \"" HELLO_MD5 "\"\r\n", ERR_BODY);
	char *noetag = resp(200, NULL, "");
	char *wrong = resp(200, "ETag: \"0123456789abcdef0123456789abcdef\"\r\n",
			   "");
	char *ok = resp(200, "ETag: \"" HELLO_MD5 "\"\r\n", "");
	char *kms = resp(200, "ETag: \"0123456789abcdef0123456789abcdef\"\r\n"
			 "x-amz-server-side-encryption: aws:kms\r\n", "");
	struct put_body body = { hello_fd(), 0, 5, NULL, HELLO_MD5 };
	struct obj_meta out;
	struct errbuf eb = { 0 };
	char etag[80];

	CHECK(body.fd >= 0);
	CASE("PUT: Content-MD5 sent; <Error> body, no ETag, wrong ETag retried");
	{
		struct reply r[] = { { errb, 0 }, { noetag, 0 }, { wrong, 0 },
				     { ok, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "k", &body, NULL, &out, &eb) == MFS_OK);
		CHECK_STR(out.etag, HELLO_MD5);
		CHECK(requests() == 4);
		CHECK_HAS(srv.reqs[0], "content-md5: XUFAKrxLKna5cZ2REBfFkg==");
		CHECK_HAS(srv.reqs[3], "content-md5: XUFAKrxLKna5cZ2REBfFkg==");
	}
	CASE("PUT: a server that never proves the upload: EIO, never done");
	{
		struct reply r[] = { { noetag, 0 }, { noetag, 0 },
				     { noetag, 0 }, { noetag, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "k", &body, NULL, &out, &eb) == MFS_EIO);
		CHECK(requests() == 4);
		CHECK_HAS(eb.msg, "without an ETag");
	}
	CASE("PUT: an ETag that is not the MD5 under SSE-KMS is accepted");
	{
		struct reply r[] = { { kms, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "k", &body, NULL, &out, &eb) == MFS_OK);
		CHECK(requests() == 1);
	}
	CASE("PUT: no MD5 for a body is refused before sending");
	{
		struct put_body nomd5 = body;

		nomd5.md5 = NULL;
		play((struct reply[]){ { NULL, 0 } });
		CHECK(be->ops->put(be, "k", &nomd5, NULL, &out, &eb) ==
		      MFS_EINVAL);
		CHECK(requests() == 0);
	}
	CASE("part: Content-MD5 per part, the part's ETag must be its MD5");
	{
		struct reply r[] = { { wrong, 0 }, { errb, 0 }, { ok, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->mp_part(be, "k", "U1", 1, &body, etag, &eb) ==
		      MFS_OK);
		/* kept exactly as received, quotes and all (API-NOTES F17) */
		CHECK_STR(etag, "\"" HELLO_MD5 "\"");
		CHECK(requests() == 3);
		CHECK_HAS(srv.reqs[0], "partNumber=1&uploadId=U1");
		CHECK_HAS(srv.reqs[0], "content-md5: XUFAKrxLKna5cZ2REBfFkg==");
	}
	CASE("part and complete: an unquoted part ETag (Supabase's S3 endpoint, API-NOTES F17) goes back byte for byte");
	{
		char *unq = resp(200, "ETag: " HELLO_MD5 "\r\n", "");
		char *done = resp(200, "Content-Type: application/xml\r\n",
				  "<CompleteMultipartUploadResult><ETag>&quot;"
				  "616b22817b80eed9f65c3aa38cd29054-2&quot;</ETag>"
				  "</CompleteMultipartUploadResult>");
		struct reply r1[] = { { unq, 0 }, { NULL, 0 } };
		struct reply r2[] = { { done, 0 }, { NULL, 0 } };
		char etags[2][80] = { "", "\"" HELLO_MD5 "\"" };

		play(r1);
		CHECK(be->ops->mp_part(be, "k", "U1", 1, &body, etag, &eb) ==
		      MFS_OK);
		CHECK_STR(etag, HELLO_MD5);
		snprintf(etags[0], sizeof(etags[0]), "%s", etag);
		play(r2);
		CHECK(be->ops->mp_complete(be, "k", "U1", etags, 2, &out,
					   &eb) == MFS_OK);
		CHECK(requests() == 1);
		CHECK_HAS(srv.reqs[0], "<Part><PartNumber>1</PartNumber><ETag>"
			  HELLO_MD5 "</ETag></Part>");
		CHECK_HAS(srv.reqs[0], "<Part><PartNumber>2</PartNumber><ETag>\""
			  HELLO_MD5 "\"</ETag></Part>");
		free(unq);
		free(done);
	}
	if (body.fd >= 0)
		close(body.fd);
	free(errb);
	free(noetag);
	free(wrong);
	free(ok);
	free(kms);
}

static void test_complete_settle(struct backend *be)
{
	/* two parts of "hello": the MD5 of their raw MD5s, "-2" */
	char etags[2][80] = { HELLO_MD5, HELLO_MD5 };
	char *cut = resp(200, "Content-Type: application/xml\r\n",
			 "<?xml version=\"1.0\"?><CompleteMultipartUploadRes");
	char *nosuch = resp(404, NULL, "<Error><Code>NoSuchUpload</Code></Error>");
	char *hd = NULL, *hd_old;
	struct obj_meta out;
	struct errbuf eb = { 0 };
	char want[80];

	CHECK(sigv4_multipart_etag(etags, 2, want, sizeof(want)) == 0);
	CHECK_STR(want, "616b22817b80eed9f65c3aa38cd29054-2");
	if (asprintf(&hd, "HTTP/1.1 200 X\r\nContent-Length: 0\r\nETag: \"%s\"\r\n\r\n",
		     want) < 0)
		hd = NULL;
	hd_old = resp(200, "ETag: \"" HELLO_MD5 "\"\r\n", "");
	CASE("start: a reply lost (connection closed) is sent again and reported unanswered");
	{
		char *init = resp(200, "Content-Type: application/xml\r\n",
				  "<InitiateMultipartUploadResult><UploadId>U9"
				  "</UploadId></InitiateMultipartUploadResult>");
		struct reply r[] = { { init, CLOSE_NOW }, { init, 0 },
				     { NULL, 0 } };
		char *id = NULL;
		int unanswered = 0;

		play(r);
		CHECK(be->ops->mp_begin(be, "k", NULL, &id, &unanswered,
					&eb) == MFS_OK);
		CHECK_STR(id ? id : "", "U9");
		CHECK(unanswered == 1);
		CHECK(requests() == 2);
		free(id);
		id = NULL;
		unanswered = 0;
		play(r + 1);
		CHECK(be->ops->mp_begin(be, "k", NULL, &id, &unanswered,
					&eb) == MFS_OK);
		CHECK(unanswered == 0);
		free(id);
		free(init);
	}
	CASE("complete: a garbled reply is settled by HEAD (the parts' ETag)");
	{
		struct reply r[] = { { cut, 0 }, { hd, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->mp_complete(be, "k", "U1", etags, 2, &out, &eb) ==
		      MFS_OK);
		CHECK_STR(out.etag, want);
		CHECK(requests() == 2);
		CHECK_HAS(srv.reqs[1], "HEAD /bkt/k ");
	}
	CASE("complete: NoSuchUpload and an old object: still an error");
	{
		struct reply r[] = { { nosuch, 0 }, { hd_old, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->mp_complete(be, "k", "U1", etags, 2, &out, &eb) ==
		      MFS_EIO);
		CHECK(requests() == 2);
		CHECK_HAS(eb.msg, "no such multipart upload");
	}
	free(cut);
	free(nosuch);
	free(hd);
	free(hd_old);
}

/* One exchange straight through net/http. */
static enum mfs_err exchange(struct http_client *c, const char *method,
			     const char *body)
{
	struct http_request req = { 0 };
	struct http_response r;
	struct errbuf eb = { 0 };
	char url[64];
	enum mfs_err rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", srv.port);
	req.method = method;
	req.url = url;
	req.body_fd = -1;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	http_response_init(&r);
	rc = http_perform(c, &req, &r, &eb);
	if (!rc && r.status != 200)
		rc = MFS_EIO;
	http_response_cleanup(&r);
	return rc;
}

static void test_no_replay(void)
{
	char *ok = resp(200, NULL, "ok");
	struct reply r[] = { { ok, 0 }, { ok, CLOSE_NOW }, { ok, 0 },
			     { NULL, 0 } };
	struct http_client *c = http_client_new(NULL);

	CHECK(c != NULL);
	if (!c)
		return;
	CASE("http: a PUT on a reused connection that dies is resent (curl)");
	play(r);
	CHECK(exchange(c, "GET", NULL) == MFS_OK);
	CHECK(exchange(c, "PUT", "body") == MFS_OK);
	CHECK(requests() == 3);
	CASE("http: a POST whose connection dies before the answer is not resent");
	play(r);
	CHECK(exchange(c, "GET", NULL) == MFS_OK);
	CHECK(exchange(c, "POST", "body") == MFS_ETRANSIENT);
	CHECK(requests() == 2);
	CASE("http: nor a PATCH, nor a POST without a body");
	play(r);
	CHECK(exchange(c, "GET", NULL) == MFS_OK);
	CHECK(exchange(c, "PATCH", "body") == MFS_ETRANSIENT);
	CHECK(requests() == 2);
	play(r);
	CHECK(exchange(c, "GET", NULL) == MFS_OK);
	CHECK(exchange(c, "POST", NULL) == MFS_ETRANSIENT);
	CHECK(requests() == 2);
	http_client_free(c);
	free(ok);
}

static void test_config(void)
{
	char why[256] = "";
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
		CASE("config: any key on an S3 endpoint that is not Supabase's");
		CHECK(be->ops->check_key != NULL);
		CHECK(be->ops->check_key &&
		      be->ops->check_key(be, "a~b%c\xc3\xa9", 0, why,
					 sizeof(why)) == 0);
		backend_free(be);
		free(url);
	}
	ini_free(ini);

	CASE("config: Supabase's S3 endpoint refuses ~, %, non-ASCII up front");
	CHECK(ini_parse("[x]\ntype = s3\nbucket = media\nregion = local\n"
			"endpoint = https://ref.storage.supabase.co/storage/v1/s3/\n"
			"access_key_id = a\nsecret_access_key = bbbbbbbb\n",
			"c.conf", &ini, &eb) == MFS_OK);
	CHECK(backend_create(ini, &ini->sec[0], &be, &eb) == MFS_OK);
	if (be) {
		static const struct {
			const char *key;
			int refused;
			const char *why;
		} t[] = {
			{ "photos/a b (1)+x.jpg", 0, "" },
			{ "photos/a~b.jpg", 1, "refuses '~'" },
			{ "photos/100%.jpg", 1, "refuses '%'" },
			{ "photos/caf\xc3\xa9.jpg", 1, "non-ASCII" },
			{ "photos/a#b.jpg", 1, "refuses '#'" },
		};
		size_t i;

		for (i = 0; be->ops->check_key && i < sizeof(t) / sizeof(t[0]);
		     i++) {
			why[0] = '\0';
			CHECK(be->ops->check_key(be, t[i].key, 0, why,
						 sizeof(why)) == t[i].refused);
			CHECK_HAS(why, t[i].why);
		}
		backend_free(be);
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
		test_get_lies(be);
		test_put_proof(be);
		test_complete_settle(be);
		backend_free(be);
	}
	test_no_replay();
	play((struct reply[]){ { NULL, 0 } });
	test_config();
	return unit_report();
}
