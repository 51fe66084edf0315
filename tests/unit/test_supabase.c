/* backend/supabase against a scripted HTTP server: list-v2 cursor paging,
 * the v1 fallback, malformed JSON, errors classified by the body (HTTP 400
 * with the real code in statusCode), retries only where they belong, user
 * metadata from info, ETag checks on reads, the key rules, the auth
 * headers of both key kinds, config validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/ini.h"
#include "common/log.h"
#include "scripted.h"
#include "unit.h"

TEST_MAIN("test_supabase")

static struct backend *make_backend(const char *key, struct errbuf *eb)
{
	struct ini *ini = NULL;
	struct backend *be = NULL;
	char *text = NULL;

	if (asprintf(&text,
		     "[sb]\ntype = supabase\nurl = http://127.0.0.1:%d/\n"
		     "key = %s\nretries = 2\nretry_base_ms = 1\n",
		     srv.port, key) < 0)
		return NULL;
	if (ini_parse(text, "test.conf", &ini, eb) ||
	    backend_create(ini, &ini->sec[0], &be, eb))
		be = NULL;
	ini_free(ini);
	free(text);
	return be;
}

#define JSON_HDR "Content-Type: application/json\r\n"
#define BUCKET_OK "{\"id\":\"b\",\"name\":\"b\",\"public\":false}"

static void test_list(struct backend *be)
{
	char *bk = resp(200, JSON_HDR, BUCKET_OK);
	char *p1 = resp(200, JSON_HDR,
		"{\"hasNext\":true,\"nextCursor\":\"Yw==\",\"nextCursorKey\":\"d/c\","
		"\"folders\":[{\"id\":null,\"name\":\"d/sub/\",\"key\":\"sub/\"}],"
		"\"objects\":[{\"id\":\"1\",\"name\":\"d/a b\",\"updated_at\":\"2024-05-01T10:00:00.123Z\","
		"\"metadata\":{\"eTag\":\"\\\"abc\\\"\",\"size\":12,\"mimetype\":\"text/plain\"}},"
		"{\"id\":\"2\",\"name\":\"d/.emptyFolderPlaceholder\",\"metadata\":{\"size\":0}}]}");
	char *p2 = resp(200, JSON_HDR,
		"{\"hasNext\":false,\"folders\":[],\"objects\":[{\"id\":\"3\",\"name\":\"d/c\","
		"\"metadata\":{\"size\":\"7\"},\"updated_at\":\"2024-05-01T10:00:00+00:00\"}]}");
	struct reply r[] = { { p1, 0 }, { p2, 0 }, { NULL, 0 } };
	struct reply rb[] = { { bk, 0 }, { p2, 0 }, { NULL, 0 } };
	struct names nm = { { 0 }, 0 }, nb = { { 0 }, 0 };
	struct errbuf eb = { 0 };

	CASE("list-v2: two pages by cursor, folders, placeholder as the folder's own marker \"\"");
	play(r);
	CHECK(be->ops->list(be, "b/d", collect, &nm, &eb) == MFS_OK);
	CHECK_STR(nm.buf, "d:sub:0|f:a b:12|d::0|f:c:7");
	CHECK(requests() == 2);
	CHECK_HAS(srv.reqs[0], "POST /storage/v1/object/list-v2/b ");
	CHECK_HAS(srv.reqs[1], "\"cursor\":\"Yw==\"");

	CASE("list of a bucket's root asks for the bucket once (v1 lists a missing one as empty)");
	play(rb);
	CHECK(be->ops->list(be, "b", collect, &nb, &eb) == MFS_OK);
	CHECK(requests() == 2);
	CHECK_HAS(srv.reqs[0], "GET /storage/v1/bucket/b ");
	free(bk);
	free(p1);
	free(p2);
}

static void test_list_bad(struct backend *be)
{
	static const char *const bodies[] = {
		"not json",
		"[1,2]",
		"{\"hasNext\":true,\"folders\":[],\"objects\":[]}",
		"{\"id\":\"b\",\"name\":\"b\"}",
	};
	size_t i;

	CASE("list-v2: malformed replies are EPROTO, not retried");
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *b = resp(200, JSON_HDR, bodies[i]);
		struct reply r[] = { { b, 0 }, { b, 0 }, { NULL, 0 } };
		struct names nm = { { 0 }, 0 };
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->list(be, "b/d", collect, &nm, &eb) ==
		      MFS_EPROTO);
		CHECK(requests() == 1);
		CHECK_HAS(eb.msg, "listing 'b/d' in remote [sb]");
		free(b);
	}
}

static void test_v1_fallback(struct backend *be)
{
	char *no = resp(400, JSON_HDR,
		"{\"statusCode\":\"400\",\"code\":\"FeatureNotEnabled\","
		"\"error\":\"x\",\"message\":\"list-v2 off\"}");
	char *v1 = resp(200, JSON_HDR,
		"[{\"name\":\"sub\",\"id\":null,\"metadata\":null},"
		"{\"name\":\"x.txt\",\"id\":\"9\",\"metadata\":{\"size\":5}}]");
	struct reply r[] = { { no, 0 }, { v1, 0 }, { v1, 0 }, { NULL, 0 } };
	struct names nm = { { 0 }, 0 }, nm2 = { { 0 }, 0 };
	struct errbuf eb = { 0 };

	CASE("list: FeatureNotEnabled falls back to v1, and stays there");
	play(r);
	CHECK(be->ops->list(be, "b/d", collect, &nm, &eb) == MFS_OK);
	CHECK_STR(nm.buf, "d:sub:0|f:x.txt:5");
	CHECK(requests() == 2);
	CHECK_HAS(srv.reqs[1], "POST /storage/v1/object/list/b ");
	CHECK(be->ops->list(be, "b/d", collect, &nm2, &eb) == MFS_OK);
	CHECK(requests() == 3);
	CHECK_HAS(srv.reqs[2], "POST /storage/v1/object/list/b ");
	free(no);
	free(v1);
}

static void test_errors(struct backend *be)
{
	static const struct {
		const char *name;
		int status;
		const char *body;
		enum mfs_err rc;
		const char *msg;
		int requests;
	} cases[] = {
		{ "400 with statusCode \"404\" NoSuchKey", 400,
		  "{\"statusCode\":\"404\",\"error\":\"not_found\",\"code\":\"NoSuchKey\",\"message\":\"Object not found\"}",
		  MFS_ENOTFOUND, "no such object", 1 },
		{ "400 with statusCode \"403\" AccessDenied", 400,
		  "{\"statusCode\":\"403\",\"error\":\"Unauthorized\",\"code\":\"AccessDenied\",\"message\":\"invalid signature\"}",
		  MFS_EACCES, "refused the key (invalid signature)", 1 },
		{ "older server: no code, error + statusCode only", 400,
		  "{\"statusCode\":\"409\",\"error\":\"Duplicate\",\"message\":\"exists\"}",
		  MFS_EEXIST, "already exists", 1 },
		{ "400 with statusCode \"503\" is retried", 400,
		  "{\"statusCode\":\"503\",\"code\":\"DatabaseReadOnly\",\"error\":\"x\"}",
		  MFS_EIO, "server kept failing", 3 },
		{ "544 DatabaseTimeout is retried", 544,
		  "{\"statusCode\":\"544\",\"code\":\"DatabaseTimeout\"}",
		  MFS_EIO, "server kept failing", 3 },
		{ "an unknown route: a real 404 without code", 404,
		  "{\"message\":\"Route GET:/x not found\",\"error\":\"Not Found\",\"statusCode\":404}",
		  MFS_EUNSUPP, "is url the project URL?", 1 },
		{ "a body that is not JSON", 400, "<html>oops</html>",
		  MFS_EIO, "HTTP 400", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = resp(cases[i].status, JSON_HDR, cases[i].body);
		struct reply r[] = { { b, 0 }, { b, 0 }, { b, 0 }, { b, 0 },
				     { NULL, 0 } };
		struct obj_meta m;
		struct errbuf eb = { 0 };

		CASE(cases[i].name);
		play(r);
		CHECK(be->ops->head(be, "b/k", &m, &eb) == cases[i].rc);
		CHECK_HAS(eb.msg, cases[i].msg);
		CHECK(requests() == cases[i].requests);
		free(b);
	}

	CASE("429, then success: retried once");
	{
		char *slow = resp(429, JSON_HDR,
			"{\"statusCode\":\"429\",\"code\":\"SlowDown\",\"error\":\"too_many_connections\"}");
		char *ok = resp(200, JSON_HDR,
			"{\"name\":\"k\",\"size\":3,\"etag\":\"\\\"e1\\\"\"}");
		struct reply r[] = { { slow, 0 }, { ok, 0 }, { NULL, 0 } };
		struct obj_meta m;
		struct errbuf eb = { 0 };

		play(r);
		CHECK(be->ops->head(be, "b/k", &m, &eb) == MFS_OK);
		CHECK(requests() == 2);
		CHECK(m.size == 3);
		free(slow);
		free(ok);
	}
}

static void test_head_get(struct backend *be)
{
	char *info = resp(200, JSON_HDR,
		"{\"name\":\"d/k\",\"size\":16,\"content_type\":\"image/png\","
		"\"cache_control\":\"max-age=60\",\"etag\":\"\\\"e1\\\"\","
		"\"last_modified\":\"2024-05-01T10:00:00Z\","
		"\"metadata\":{\"mtime\":\"1600000000.5\",\"mode\":\"33152\"}}");
	struct reply r[] = { { info, 0 }, { NULL, 0 } };
	struct obj_meta m;
	struct errbuf eb = { 0 };
	char buf[16];
	size_t got = 0;

	CASE("info: user metadata gives mtime and mode");
	play(r);
	CHECK(be->ops->head(be, "b/d/k", &m, &eb) == MFS_OK);
	CHECK_HAS(srv.reqs[0], "GET /storage/v1/object/info/authenticated/b/d/k ");
	CHECK(m.mtime_ns == 1600000000500000000LL);
	CHECK(m.mode == 0600);
	CHECK_STR(m.etag, "e1");
	CHECK_STR(m.content_type, "image/png");
	CHECK_STR(m.cache_control, "max-age=60");
	free(info);

	CASE("get: a ranged read with the expected ETag");
	{
		char *b = resp(206, "ETag: \"e1\"\r\nContent-Range: bytes 0-3/16\r\n",
			       "abcd");
		struct reply r2[] = { { b, 0 }, { NULL, 0 } };

		play(r2);
		CHECK(be->ops->get(be, "b/d/k", 0, 4, "e1", buf, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 4 && !memcmp(buf, "abcd", 4));
		CHECK_HAS(srv.reqs[0], "GET /storage/v1/object/authenticated/b/d/k ");
		CHECK_HAS(srv.reqs[0], "Range: bytes=0-3");
		free(b);
	}
	CASE("get: another ETag is a conflict (no If-Match on this API)");
	{
		char *b = resp(206, "ETag: \"e2\"\r\n", "abcd");
		struct reply r2[] = { { b, 0 }, { NULL, 0 } };

		play(r2);
		CHECK(be->ops->get(be, "b/d/k", 0, 4, "e1", buf, &got, &eb) ==
		      MFS_ECONFLICT);
		free(b);
	}
	CASE("get: 416 past the end reads nothing");
	{
		char *b = resp(416, JSON_HDR,
			"{\"statusCode\":\"416\",\"error\":\"invalid_range\",\"code\":\"InvalidRange\"}");
		struct reply r2[] = { { b, 0 }, { NULL, 0 } };

		play(r2);
		CHECK(be->ops->get(be, "b/d/k", 100, 4, NULL, buf, &got, &eb) ==
		      MFS_OK);
		CHECK(got == 0);
		CHECK(requests() == 1);
		free(b);
	}
}

/* A staged file of n bytes ("hello" repeated, or zeros when n > 5). */
static int staged(size_t n)
{
	char path[] = "/tmp/mfs-unit-sb-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (n == 5 ? write(fd, "hello", 5) != 5 : ftruncate(fd, (off_t)n)) {
		close(fd);
		return -1;
	}
	return fd;
}

#define HELLO_MD5 "5d41402abc4b2a76b9719d911017c592"
#define TUS_VER "0f8fad5b-d9cb-469f-a165-70867728950e"
#define TUS_LOC "Location: /storage/v1/upload/resumable/" \
	"Yi9kL2svMGY4ZmFkNWItZDljYi00NjlmLWExNjUtNzA4Njc3Mjg5NTBl\r\n"

static void test_put_proof(struct backend *be)
{
	char *good = resp(200, JSON_HDR, "{\"Id\":\"1\",\"Key\":\"b/d/k\"}");
	char *other = resp(200, JSON_HDR, "{\"Id\":\"1\",\"Key\":\"b/d/other\"}");
	char *err200 = resp(200, JSON_HDR,
		"{\"statusCode\":\"500\",\"code\":\"InternalError\",\"message\":\"boom\"}");
	char *info_old = resp(200, JSON_HDR,
		"{\"name\":\"d/k\",\"size\":5,\"etag\":\"\\\"00000000000000000000000000000000\\\"\"}");
	char *info_new = resp(200, JSON_HDR,
		"{\"name\":\"d/k\",\"size\":5,\"etag\":\"\\\"" HELLO_MD5 "\\\"\"}");
	struct put_meta pm = { 0 };
	struct obj_meta out;
	struct errbuf eb = { 0 };
	int fd = staged(5);
	struct put_body body = { fd, 0, 5, NULL, NULL };

	CHECK(fd >= 0);
	CASE("put: a 200 naming another key is checked (info: other bytes) and sent again");
	{
		struct reply r[] = { { other, 0 }, { info_old, 0 }, { good, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_OK);
		CHECK(requests() == 3);
		CHECK_HAS(srv.reqs[0], "PUT /storage/v1/object/b/d/k ");
		CHECK_HAS(srv.reqs[1], "GET /storage/v1/object/info/authenticated/b/d/k ");
		CHECK_HAS(srv.reqs[2], "PUT /storage/v1/object/b/d/k ");
		CHECK_STR(out.etag, HELLO_MD5);
	}
	CASE("put: an error body in a 200, but the server holds the bytes (MD5 ETag): done, not resent");
	{
		struct reply r[] = { { err200, 0 }, { info_new, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_OK);
		CHECK(requests() == 2);
	}
	CASE("put: never proven: EIO after the retries, the reason named");
	{
		struct reply r[] = { { other, 0 }, { info_old, 0 }, { other, 0 },
				     { info_old, 0 }, { other, 0 },
				     { info_old, 0 }, { NULL, 0 } };

		play(r);
		memset(&eb, 0, sizeof(eb));
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_EIO);
		CHECK(requests() == 6);
		CHECK_HAS(eb.msg, "the reply names another key (b/d/other)");
	}
	if (fd >= 0)
		close(fd);
	free(good);
	free(other);
	free(err200);
	free(info_old);
	free(info_new);
}

static void test_tus(struct backend *be)
{
	size_t n = 7 << 20;	/* two chunks: 6 MiB + 1 MiB */
	char *created = resp(201, TUS_LOC "Tus-Resumable: 1.0.0\r\n", "");
	char *patched = resp(204, "Tus-Resumable: 1.0.0\r\n", "");
	char *info = NULL, *info_other = NULL;
	char *too_big = resp(413, "Content-Type: text/plain\r\n",
			     "Maximum size exceeded");
	char *exists = resp(409, "Content-Type: text/plain\r\n",
			    "The resource already exists");
	struct put_meta pm = { 0 };
	struct obj_meta out;
	struct errbuf eb = { 0 };
	int fd = staged(n);
	struct put_body body = { fd, 0, n, NULL, NULL };

	if (asprintf(&info, "HTTP/1.1 200 X\r\n" JSON_HDR "Content-Length: %zu\r\n\r\n%s",
		     strlen("{\"size\":7340032,\"version\":\"" TUS_VER "\",\"etag\":\"\\\"x-2\\\"\"}"),
		     "{\"size\":7340032,\"version\":\"" TUS_VER "\",\"etag\":\"\\\"x-2\\\"\"}") < 0)
		info = NULL;
	info_other = resp(200, JSON_HDR,
		"{\"size\":7340032,\"version\":\"11111111-2222-3333-4444-555555555555\"}");
	CHECK(fd >= 0 && info && info_other);
	CASE("TUS: x-upsert on the POST and on every PATCH, a relative Location, proven by the version its id names");
	{
		struct reply r[] = { { created, 0 }, { patched, 0 },
				     { patched, 0 }, { info, 0 }, { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_OK);
		CHECK(requests() == 4);
		CHECK_HAS(srv.reqs[0], "POST /storage/v1/upload/resumable ");
		CHECK_HAS(srv.reqs[0], "x-upsert: true");
		CHECK_HAS(srv.reqs[1], "PATCH /storage/v1/upload/resumable/Yi9k");
		CHECK_HAS(srv.reqs[1], "x-upsert: true");
		CHECK_HAS(srv.reqs[1], "Upload-Offset: 0");
		CHECK_HAS(srv.reqs[2], "x-upsert: true");
		CHECK_HAS(srv.reqs[2], "Upload-Offset: 6291456");
		CHECK(out.size == n);
	}
	CASE("TUS: the server holds another version afterwards: EIO");
	{
		struct reply r[] = { { created, 0 }, { patched, 0 },
				     { patched, 0 }, { info_other, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_EIO);
		CHECK_HAS(eb.msg, "not the " TUS_VER " this upload made");
	}
	CASE("TUS: a text/plain 413 at the POST: EFBIG, its reason, no retry");
	{
		struct reply r[] = { { too_big, 0 }, { NULL, 0 } };

		play(r);
		memset(&eb, 0, sizeof(eb));
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_EFBIG);
		CHECK_HAS(eb.msg, "Maximum size exceeded");
		CHECK(requests() == 1);
	}
	CASE("TUS: a text/plain 409 'already exists' at a PATCH: EEXIST, no resume");
	{
		struct reply r[] = { { created, 0 }, { exists, 0 }, { NULL, 0 } };

		play(r);
		memset(&eb, 0, sizeof(eb));
		CHECK(be->ops->put(be, "b/d/k", &body, &pm, &out, &eb) == MFS_EEXIST);
		CHECK_HAS(eb.msg, "already exists");
		CHECK(requests() == 2);
	}
	if (fd >= 0)
		close(fd);
	free(created);
	free(patched);
	free(info);
	free(info_other);
	free(too_big);
	free(exists);
}

static void test_move(struct backend *be)
{
	char *boom = resp(500, JSON_HDR,
		"{\"statusCode\":\"500\",\"code\":\"InternalError\",\"error\":\"internal\",\"message\":\"ENOENT\"}");
	char *gone = resp(400, JSON_HDR,
		"{\"statusCode\":\"404\",\"error\":\"not_found\",\"code\":\"NoSuchKey\",\"message\":\"Object not found\"}");
	char *there = resp(200, JSON_HDR, "{\"name\":\"d/y\",\"size\":3}");
	char *moved = resp(200, JSON_HDR, "{\"message\":\"Successfully moved\"}");
	struct errbuf eb = { 0 };

	CASE("move: a 500 is not answered by a second move: the source is gone, the target there: done");
	{
		struct reply r[] = { { boom, 0 }, { gone, 0 }, { there, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->move(be, "b/d/x", "b/d/y", &eb) == MFS_OK);
		CHECK(requests() == 3);
		CHECK_HAS(srv.reqs[0], "POST /storage/v1/object/move ");
		CHECK_HAS(srv.reqs[1], "GET /storage/v1/object/info/authenticated/b/d/x ");
		CHECK_HAS(srv.reqs[2], "GET /storage/v1/object/info/authenticated/b/d/y ");
	}
	CASE("move: a 500 and the source still there: moved again, once");
	{
		struct reply r[] = { { boom, 0 }, { there, 0 }, { moved, 0 },
				     { NULL, 0 } };

		play(r);
		CHECK(be->ops->move(be, "b/d/x", "b/d/y", &eb) == MFS_OK);
		CHECK(requests() == 3);
		CHECK_HAS(srv.reqs[2], "POST /storage/v1/object/move ");
	}
	free(boom);
	free(gone);
	free(there);
	free(moved);
}

static void test_keys(struct backend *be)
{
	static const struct {
		const char *key;
		int dir;
		int bad;
		const char *why;
	} cases[] = {
		{ "b/a b+c&d=e;f:g,h!i*j'k(l)m@n$o?p", 0, 0, NULL },
		{ "b/x#y", 0, 1, "refuses '#'" },
		{ "b/50%", 0, 1, "refuses '%'" },
		{ "b/caf\xc3\xa9", 0, 1, "non-ASCII" },
		{ "b/a[1]", 0, 1, "refuses '['" },
		{ "b/tab\there", 0, 1, "control character 0x09" },
		{ "b/x/.emptyFolderPlaceholder", 0, 1, "reserved" },
		{ "loose", 0, 1, "inside a bucket" },
		{ "newbucket", 1, 0, NULL },
	};
	size_t i;
	char why[256];

	CASE("key rules (API-NOTES B2, F10)");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		CHECK(!!be->ops->check_key(be, cases[i].key, cases[i].dir, why,
					   sizeof(why)) == cases[i].bad);
		if (cases[i].why)
			CHECK_HAS(why, cases[i].why);
	}
}

static void test_auth_and_config(void)
{
	struct errbuf eb = { 0 };
	struct backend *be;
	struct obj_meta m;
	char *ok = resp(200, JSON_HDR, "{\"name\":\"k\",\"size\":1}");
	struct reply r[] = { { ok, 0 }, { ok, 0 }, { NULL, 0 } };

	CASE("a legacy JWT goes in apikey and Authorization");
	be = make_backend("eyJhbGciOiJIUzI1NiJ9.e30.sig", &eb);
	CHECK(be != NULL);
	play(r);
	if (be) {
		CHECK(be->ops->head(be, "b/k", &m, &eb) == MFS_OK);
		CHECK_HAS(srv.reqs[0], "apikey: eyJhbGciOiJIUzI1NiJ9.e30.sig");
		CHECK_HAS(srv.reqs[0], "Authorization: Bearer eyJ");
		backend_free(be);
	}
	CASE("an sb_secret_ key only in apikey");
	be = make_backend("sb_secret_abc", &eb);
	play(r);
	if (be) {
		CHECK(be->ops->head(be, "b/k", &m, &eb) == MFS_OK);
		CHECK_HAS(srv.reqs[0], "apikey: sb_secret_abc");
		CHECK(!strstr(srv.reqs[0], "Authorization"));
		backend_free(be);
	}
	free(ok);

	CASE("config: url and key are required, bad values named");
	{
		static const struct {
			const char *text;
			const char *msg;
		} bad[] = {
			{ "[s]\ntype = supabase\nkey = sb_secret_x\n", "needs 'url = https://" },
			{ "[s]\ntype = supabase\nurl = ftp://x\nkey = sb_secret_x\n", "needs 'url = https://" },
			{ "[s]\ntype = supabase\nurl = https://x.supabase.co\n", "needs 'key = env:" },
			{ "[s]\ntype = supabase\nurl = https://x\nkey = k\npublic_buckets = maybe\n", "public_buckets must be true or false" },
			{ "[s]\ntype = supabase\nurl = https://x\nkey = k\nbucket = b\n", "unknown key 'bucket'" },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct ini *ini = NULL;

			eb.msg[0] = '\0';
			be = NULL;
			if (!ini_parse(bad[i].text, "t.conf", &ini, &eb)) {
				ini->private_mode = 1;
				CHECK(backend_create(ini, &ini->sec[0], &be,
						     &eb) != MFS_OK);
			}
			CHECK_HAS(eb.msg, bad[i].msg);
			backend_free(be);
			ini_free(ini);
		}
	}
}

int main(void)
{
	struct errbuf eb = { 0 };
	struct backend *be;

	log_set_level(LOG_LVL_ERR);
	start_server();
	be = make_backend("sb_secret_unit", &eb);
	CHECK(be != NULL);
	if (be) {
		test_list(be);
		test_list_bad(be);
		test_v1_fallback(be);
		test_errors(be);
		test_head_get(be);
		test_keys(be);
		test_put_proof(be);
		test_tus(be);
		test_move(be);
		backend_free(be);
	}
	test_auth_and_config();
	play((struct reply[]){ { NULL, 0 } });
	return unit_report();
}
