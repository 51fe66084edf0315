/* common/: percent-encoding, time parsing, names, INI parsing, secrets
 * (env:, file:, literal, and the permission rules), log redaction, key
 * locks (a taker of a held name waits; overlapping pairs never deadlock). */
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ini.h"
#include "common/keylock.h"
#include "common/log.h"
#include "common/str.h"
#include "unit.h"

TEST_MAIN("test_common")

static void test_uri(void)
{
	static const struct {
		const char *in;
		int plus;
		const char *out;	/* NULL = must fail */
	} dec[] = {
		{ "a%2Fb", 0, "a/b" },
		{ "a+b", 1, "a b" },
		{ "a+b", 0, "a+b" },
		{ "%2B", 1, "+" },
		{ "%C3%BC", 1, "\xc3\xbc" },
		{ "%", 1, NULL },
		{ "%4", 1, NULL },
		{ "%zz", 1, NULL },
		{ "a%00b", 1, NULL },
	};
	struct buf b;
	size_t i;

	CASE("uri decode table");
	for (i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
		char *out = NULL;
		enum mfs_err rc = str_uri_decode(dec[i].in, strlen(dec[i].in),
						 dec[i].plus, &out);

		if (dec[i].out) {
			CHECK(rc == MFS_OK);
			CHECK_STR(out, dec[i].out);
		} else {
			CHECK(rc == MFS_EPROTO);
			CHECK(out == NULL);
		}
		free(out);
	}
	CASE("uri encode: unreserved kept, rest %XX uppercase");
	buf_init(&b, 0);
	CHECK(str_uri_encode(&b, "a b/c?#%+~", 10, 1) == MFS_OK);
	CHECK_STR(b.data, "a%20b/c%3F%23%25%2B~");
	buf_reset(&b);
	CHECK(str_uri_encode(&b, "a/b", 3, 0) == MFS_OK);
	CHECK_STR(b.data, "a%2Fb");
	buf_cleanup(&b);
}

static void test_times(void)
{
	int64_t ns;

	CASE("ISO 8601 with milliseconds");
	CHECK(str_parse_iso8601("2024-05-01T10:00:00.123Z", &ns) == MFS_OK);
	CHECK(ns == 1714557600123000000LL);
	CHECK(str_parse_iso8601("2024-05-01T10:00:00Z", &ns) == MFS_OK);
	CHECK(ns == 1714557600000000000LL);
	CHECK(str_parse_iso8601("2024-13-01T10:00:00Z", &ns) == MFS_EPROTO);
	CHECK(str_parse_iso8601("yesterday", &ns) == MFS_EPROTO);
	CHECK(str_parse_iso8601("", &ns) == MFS_EPROTO);
	CASE("HTTP date");
	CHECK(str_parse_http_date("Wed, 01 May 2024 10:00:00 GMT", &ns) ==
	      MFS_OK);
	CHECK(ns == 1714557600000000000LL);
	CHECK(str_parse_http_date("01 May 2024", &ns) == MFS_EPROTO);
	CASE("mtime metadata, rclone and s3fs styles");
	CHECK(str_parse_mtime("1714557600.123456789", &ns) == MFS_OK);
	CHECK(ns == 1714557600123456789LL);
	CHECK(str_parse_mtime("1714557600", &ns) == MFS_OK);
	CHECK(ns == 1714557600000000000LL);
	CHECK(str_parse_mtime("1714557600.5", &ns) == MFS_OK);
	CHECK(ns == 1714557600500000000LL);
	CHECK(str_parse_mtime("12abc", &ns) == MFS_EINVAL);
	CHECK(str_parse_mtime("", &ns) == MFS_EINVAL);
	CHECK(str_parse_mtime("99999999999999999999999", &ns) == MFS_EINVAL);
	CASE("times past 2262 saturate (found by fuzzing)");
	CHECK(str_parse_iso8601("9999-12-31T23:59:59.999Z", &ns) == MFS_OK);
	CHECK(ns == INT64_MAX);
	CHECK(str_parse_iso8601("2262-04-11T23:47:16Z", &ns) == MFS_OK);
	CHECK(ns == 9223372036000000000LL);
	CHECK(str_parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT", &ns) == MFS_OK);
	CHECK(ns == INT64_MAX);
	CHECK(str_parse_mtime("9223372039.5", &ns) == MFS_OK);
	CHECK(ns == INT64_MAX);
	CHECK(str_parse_mtime("-9223372039.5", &ns) == MFS_OK);
	CHECK(ns == INT64_MIN);
	CHECK(str_parse_mtime("-1.5", &ns) == MFS_OK);
	CHECK(ns == -1500000000LL);
	CASE("seconds as a JSON number: range-checked, never an undefined cast");
	CHECK(str_secs_to_ns(1714557600.5, &ns) == MFS_OK);
	CHECK(ns == 1714557600500000000LL);
	CHECK(str_secs_to_ns(1e10, &ns) == MFS_OK);
	CHECK(ns == INT64_MAX);
	CHECK(str_secs_to_ns(1e300, &ns) == MFS_OK);
	CHECK(ns == INT64_MAX);
	CHECK(str_secs_to_ns(-1e300, &ns) == MFS_OK);
	CHECK(ns == INT64_MIN);
	CHECK(str_secs_to_ns(-2.0, &ns) == MFS_OK);
	CHECK(ns == -2000000000LL);
	CHECK(str_secs_to_ns(0.0 / 0.0, &ns) == MFS_EINVAL);
}

static void test_names(void)
{
	char longname[300];

	CASE("names that cannot be path components");
	CHECK(str_bad_name("", 0) != NULL);
	CHECK(str_bad_name(".", 1) != NULL);
	CHECK(str_bad_name("..", 2) != NULL);
	CHECK(str_bad_name("...", 3) == NULL);
	CHECK(str_bad_name("a b+%#?", 7) == NULL);
	memset(longname, 'x', sizeof(longname));
	CHECK(str_bad_name(longname, 255) == NULL);
	CHECK(str_bad_name(longname, 256) != NULL);
}

static void test_ini(void)
{
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	struct ini_section *s;

	CASE("ini: sections, comments, spaces");
	CHECK(ini_parse("# comment\n[backup]\ntype = s3\n ; x\nbucket=b \n"
			"[supa]\ntype=supabase\n", "t.conf", &ini, &eb) ==
	      MFS_OK);
	CHECK(ini && ini->nsec == 2);
	s = ini ? ini_section(ini, "backup") : NULL;
	CHECK(s != NULL);
	if (s) {
		CHECK_STR(ini_get(s, "type"), "s3");
		CHECK_STR(ini_get(s, "bucket"), "b");
		CHECK(ini_get(s, "nope") == NULL);
	}
	s = ini ? ini_section(ini, "supa") : NULL;
	CHECK(s && s->nkv == 1 && s->line == 6);
	ini_free(ini);

	CASE("ini: errors name file and line");
	CHECK(ini_parse("[a]\nx = 1\nnot a pair\n", "c.conf", &ini, &eb) ==
	      MFS_EINVAL);
	CHECK(ini == NULL);
	CHECK_HAS(eb.msg, "c.conf:3:");
	CHECK(ini_parse("x = 1\n", "c.conf", &ini, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "outside of any [remote]");
	CHECK(ini_parse("[a]\nx=1\nx=2\n", "c.conf", &ini, &eb) ==
	      MFS_EINVAL);
	CHECK_HAS(eb.msg, "c.conf:3: 'x' set twice");
	CHECK(ini_parse("[a b]\n", "c.conf", &ini, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "bad remote name");
	CHECK(ini_parse("[a]\n[a]\n", "c.conf", &ini, &eb) == MFS_EINVAL);
	CHECK_HAS(eb.msg, "defined twice");
	CHECK(ini_parse("[a\n", "c.conf", &ini, &eb) == MFS_EINVAL);
	CHECK(ini_load("/nonexistent/x.conf", &ini, &eb) == MFS_ENOTFOUND);
	CHECK_HAS(eb.msg, "/nonexistent/x.conf");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
	chmod(path, mode);
}

static void test_secrets(void)
{
	char dir[] = "/tmp/mfs-unit-XXXXXX", path[256], sfile[256], spec[300];
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	char *s = NULL;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/m.conf", dir);
	snprintf(sfile, sizeof(sfile), "%s/secret", dir);

	CASE("literal secret in a private config is accepted");
	write_file(path, "[r]\nsecret_access_key = hunter2hunter2\n", 0600);
	CHECK(ini_load(path, &ini, &eb) == MFS_OK);
	CHECK(ini && ini->private_mode);
	CHECK(ini && secret_resolve(ini, "hunter2hunter2", "k", &s, &eb) ==
	      MFS_OK);
	CHECK_STR(s, "hunter2hunter2");
	secret_free(s);
	s = NULL;
	ini_free(ini);

	CASE("literal secret in a world-readable config is refused");
	chmod(path, 0644);
	CHECK(ini_load(path, &ini, &eb) == MFS_OK);
	CHECK(ini && !ini->private_mode);
	CHECK(ini && secret_resolve(ini, "hunter2hunter2",
				    "secret_access_key in [r]", &s, &eb) ==
	      MFS_EACCES);
	CHECK(s == NULL);
	CHECK_HAS(eb.msg, "readable by group or others");
	CHECK_HAS(eb.msg, "chmod 600");
	CHECK_HAS(eb.msg, "secret_access_key in [r]");

	CASE("env: secret, also from a readable config");
	setenv("MFS_UNIT_SECRET", "from-the-env", 1);
	CHECK(secret_resolve(ini, "env:MFS_UNIT_SECRET", "k", &s, &eb) ==
	      MFS_OK);
	CHECK_STR(s, "from-the-env");
	secret_free(s);
	s = NULL;
	CHECK(secret_resolve(ini, "env:MFS_UNIT_UNSET_VAR", "k", &s, &eb) ==
	      MFS_EINVAL);
	CHECK_HAS(eb.msg, "MFS_UNIT_UNSET_VAR is not set");

	CASE("file: secret, refused when group/world readable");
	write_file(sfile, "from-a-file\n", 0600);
	snprintf(spec, sizeof(spec), "file:%s", sfile);
	CHECK(secret_resolve(ini, spec, "k", &s, &eb) == MFS_OK);
	CHECK_STR(s, "from-a-file");
	secret_free(s);
	s = NULL;
	chmod(sfile, 0640);
	CHECK(secret_resolve(ini, spec, "k", &s, &eb) == MFS_EACCES);
	CHECK_HAS(eb.msg, "readable by group or others");
	ini_free(ini);

	CASE("resolved secrets are redacted from log text");
	{
		char line[128] = "Authorization uses from-the-env and from-a-file";

		log_redact(line);
		CHECK_STR(line, "Authorization uses *** and ***");
	}
	unlink(path);
	unlink(sfile);
	rmdir(dir);
}

static void test_buf_cap(void)
{
	struct buf b;

	CASE("buffers refuse to grow past their cap");
	buf_init(&b, 8);
	CHECK(buf_add(&b, "12345678", 8) == MFS_OK);
	CHECK(buf_add(&b, "9", 1) == MFS_ERANGE);
	CHECK(b.len == 8);
	buf_cleanup(&b);
}

struct taker {
	struct keylock *kl;
	const char *a, *b;
	int done;	/* atomic */
};

static void *take(void *arg)
{
	struct taker *t = arg;

	if (keylock_acquire(t->kl, t->a, t->b) == 1) {
		__atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
		keylock_release(t->kl, t->a, t->b);
	}
	return NULL;
}

static void test_keylock(void)
{
	struct keylock *kl = keylock_new();
	struct taker t = { kl, "b/k2", "b/k3", 0 };
	pthread_t th;
	time_t until = time(NULL) + 60;

	CASE("key locks: a pair sharing a held name waits until its release");
	CHECK(kl != NULL);
	if (!kl)
		return;
	CHECK(keylock_acquire(kl, "b/k1", "b/k2") == 0);
	CHECK(keylock_acquire(kl, "b/other", "b/other") == 0);	/* disjoint */
	CHECK(keylock_waits(kl) == 0);
	keylock_release(kl, "b/other", "b/other");
	CHECK(pthread_create(&th, NULL, take, &t) == 0);
	while (keylock_waits(kl) < 1 && time(NULL) < until)
		usleep(1000);
	CHECK(keylock_waits(kl) == 1);
	CHECK(__atomic_load_n(&t.done, __ATOMIC_SEQ_CST) == 0);
	keylock_release(kl, "b/k1", "b/k2");
	pthread_join(th, NULL);
	CHECK(t.done == 1);
	CASE("key locks: a released name can be taken again, alone");
	CHECK(keylock_acquire(kl, "b/k2", NULL) == 0);
	keylock_release(kl, "b/k2", NULL);
	CHECK(keylock_waits(kl) == 1);
	keylock_free(kl);
	keylock_free(NULL);
}

/* -o debug=LIST: inside -o a comma starts the next mount option, so
 * the subsystems are joined by '+' there (the man page's example) */
static void test_debug_list(void)
{
	unsigned m = 0;

	CHECK(log_parse_subsystems("http+upq", &m) == 0);
	CHECK(m == (LOG_SUB_HTTP | LOG_SUB_UPQ));
	CHECK(log_parse_subsystems("cache,fuse", &m) == 0);
	CHECK(m == (LOG_SUB_CACHE | LOG_SUB_FUSE));
	CHECK(log_parse_subsystems("upq:http", &m) == -1);
	CHECK(log_parse_subsystems("http+bogus", &m) == -1);
}

int main(void)
{
	test_uri();
	test_times();
	test_names();
	test_ini();
	test_secrets();
	test_buf_cap();
	test_keylock();
	test_debug_list();
	return unit_report();
}
