/* test_plan.c - mediactl's ID maps (JSON object, JSON array, CSV) and
 * copy-plan rules (captures, globs, map lookups, {ext}, errors). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/maps.h"
#include "cli/rule.h"
#include "unit.h"

TEST_MAIN("test_plan")

static char dir[] = "/tmp/test_plan.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[4][256];
	static int i;
	FILE *f;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	f = fopen(path[i], "w");
	fputs(text, f);
	fclose(f);
	return path[i];
}

static struct idmap *load(const char *spec, struct errbuf *eb)
{
	struct idmap *m = NULL;

	memset(eb, 0, sizeof(*eb));
	if (idmap_load(spec, &m, eb))
		return NULL;
	return m;
}

static void test_maps(void)
{
	struct errbuf eb;
	struct idmap *m;
	char spec[512];

	CASE("json object");
	snprintf(spec, sizeof(spec), "users=%s",
		 write_file("u.json", "{\"a\":\"A\",\"b\":7,\"c\":\"C\"}"));
	m = load(spec, &eb);
	CHECK(m && idmap_count(m) == 3);
	CHECK_STR(m ? idmap_get(m, "a") : NULL, "A");
	CHECK_STR(m ? idmap_get(m, "b") : NULL, "7");
	CHECK(m && !idmap_get(m, "zz"));
	CHECK_STR(m ? idmap_name(m) : NULL, "users");
	idmap_free(m);

	CASE("json array of objects, fields named");
	snprintf(spec, sizeof(spec), "svc=%s,key=old_id,value=new_id",
		 write_file("s.json", "[{\"old_id\":\"s1\",\"new_id\":\"n1\"},"
				      "{\"old_id\":2,\"new_id\":\"n2\",\"x\":1}]"));
	m = load(spec, &eb);
	CHECK(m && idmap_count(m) == 2);
	CHECK_STR(m ? idmap_get(m, "2") : NULL, "n2");
	idmap_free(m);

	CASE("json array without fields");
	snprintf(spec, sizeof(spec), "svc=%s", write_file("s2.json", "[{\"a\":1}]"));
	CHECK(!load(spec, &eb));
	CHECK_HAS(eb.msg, "name its fields");

	CASE("broken json names the file and line");
	snprintf(spec, sizeof(spec), "u=%s", write_file("bad.json", "{\n\"a\": \"b\",\n"));
	CHECK(!load(spec, &eb));
	CHECK_HAS(eb.msg, "bad.json");
	CHECK_HAS(eb.msg, "line");

	CASE("csv with header, quotes, CRLF, columns named");
	snprintf(spec, sizeof(spec), "m=%s,key=old,value=new",
		 write_file("m.csv", "id,old,new\r\n1,\"a,1\",\"say \"\"hi\"\"\"\r\n2,b,B\r\n\r\n"));
	m = load(spec, &eb);
	CHECK(m && idmap_count(m) == 2);
	CHECK_STR(m ? idmap_get(m, "a,1") : NULL, "say \"hi\"");
	CHECK_STR(m ? idmap_get(m, "b") : NULL, "B");
	idmap_free(m);

	CASE("csv: a short row names its line");
	snprintf(spec, sizeof(spec), "m=%s", write_file("short.csv", "k,v\na,b\nc\n"));
	CHECK(!load(spec, &eb));
	CHECK_HAS(eb.msg, "short.csv line 3");

	CASE("a key mapped twice to different values");
	snprintf(spec, sizeof(spec), "m=%s", write_file("dup.csv", "k,v\na,b\na,c\n"));
	CHECK(!load(spec, &eb));
	CHECK_HAS(eb.msg, "maps to both 'b' and 'c'");

	CASE("bad spec");
	CHECK(!load("nofile", &eb));
	CHECK_HAS(eb.msg, "NAME=FILE");
	CHECK(!load("u=/nonexistent/x.json", &eb));
	CHECK_HAS(eb.msg, "cannot open map");

	CASE("100,000 entries");
	{
		FILE *f;
		int i;

		snprintf(spec, sizeof(spec), "%s/big.csv", dir);
		f = fopen(spec, "w");
		fputs("old,new\n", f);
		for (i = 0; i < 100000; i++)
			fprintf(f, "old-%d,new-%d\n", i, i);
		fclose(f);
		snprintf(spec, sizeof(spec), "big=%s/big.csv", dir);
		m = load(spec, &eb);
		CHECK(m && idmap_count(m) == 100000);
		CHECK_STR(m ? idmap_get(m, "old-99999") : NULL, "new-99999");
		CHECK_STR(m ? idmap_get(m, "old-0") : NULL, "new-0");
		idmap_free(m);
	}
}

static void test_rules(void)
{
	struct errbuf eb = { 0 };
	struct idmap *users;
	struct rule *r = NULL;
	struct rule_match m;
	char spec[512], why[256], *out = NULL;
	static const struct {
		const char *rule, *rel, *ext, *want;	/* want NULL: no match */
	} cases[] = {
		{ "Profile-Pics/{role}/{old} -> avatars/{users[old]}/{old}.{ext}",
		  "Profile-Pics/buyer/u1", "png", "avatars/N1/u1.png" },
		{ "Profile-Pics/{role}/{old} -> {role}/{old}",
		  "Profile-Pics/buyer/x/y", NULL, NULL },
		{ "{a}/{b}.jpeg -> {b}-{a}.jpg", "chat/pic.v2.jpeg", NULL,
		  "pic.v2-chat.jpg" },
		{ "**/{f} -> flat/{f}", "a/b/c/d.png", NULL, "flat/d.png" },
		{ "*/{f} -> {f}.{srcext}", "x/y.tar.gz", NULL, "y.tar.gz.gz" },
		{ "img-{n}.png -> n/{n}", "img-.png", NULL, NULL },
		{ "/lead/{x} -> /out/{x}", "lead/q", NULL, "out/q" },
	};
	size_t i;

	snprintf(spec, sizeof(spec), "users=%s",
		 write_file("users.json", "{\"u1\":\"N1\",\"dot\":\"..\"}"));
	users = load(spec, &eb);
	CHECK(users != NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CASE(cases[i].rule);
		CHECK(!rule_parse(cases[i].rule, 1, &users, 1, &r, &eb));
		if (!r)
			continue;
		if (!cases[i].want) {
			CHECK(!rule_match(r, cases[i].rel, &m));
		} else if (rule_match(r, cases[i].rel, &m)) {
			CHECK(!rule_expand(r, &m, cases[i].rel, cases[i].ext,
					   &out, why, sizeof(why)));
			CHECK_STR(out, cases[i].want);
			free(out);
			out = NULL;
			rule_match_cleanup(&m);
		} else {
			CHECK(!"matched");
		}
		rule_free(r);
		r = NULL;
	}

	CASE("a missing mapping is a reason, not an error");
	CHECK(!rule_parse("{role}/{old} -> {users[old]}/{old}", 1, &users, 1, &r, &eb));
	CHECK(r && rule_match(r, "buyer/u9", &m));
	CHECK(r && rule_expand(r, &m, "buyer/u9", NULL, &out, why, sizeof(why)) ==
	      MFS_ENOTFOUND);
	CHECK_STR(why, "no mapping for old='u9' in users");
	rule_match_cleanup(&m);

	CASE("a target that is no path");
	CHECK(r && rule_match(r, "buyer/dot", &m));
	CHECK(r && rule_expand(r, &m, "buyer/dot", NULL, &out, why, sizeof(why)) ==
	      MFS_EINVAL);
	CHECK_HAS(why, "not a usable path");
	rule_match_cleanup(&m);
	rule_free(r);
	r = NULL;

	CASE("{ext} makes the plan read the source");
	CHECK(!rule_parse("{a} -> {a}.{ext}", 1, NULL, 0, &r, &eb));
	CHECK(r && rule_wants_ext(r));
	rule_free(r);
	r = NULL;

	CASE("errors name the rule and the problem");
	CHECK(rule_parse("a/{x}", 3, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "rule 3");
	CHECK(rule_parse("{x} -> {y}", 2, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "{y}");
	CHECK(rule_parse("{x} -> {nomap[x]}", 1, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "no map named 'nomap'");
	CHECK(rule_parse("{x}{y} -> {x}", 1, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "side by side");
	CHECK(rule_parse("{x}/{x} -> {x}", 1, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "captured twice");
	CHECK(rule_parse("{x} -> ", 1, NULL, 0, &r, &eb));
	CHECK_HAS(eb.msg, "target is empty");
	idmap_free(users);
}

static int count_col(void *ud, const char *col, const char *val)
{
	(void)col;
	(void)val;
	(*(int *)ud)++;
	return 0;
}

/* gap 1 and 4 of issue #17: any column of a record, user-named reasons */
static void test_columns(void)
{
	struct errbuf eb;
	struct idmap *svc, *csv;
	struct rule *r = NULL;
	struct rule_match m;
	char spec[512], why[256], *out = NULL;
	int n = 0;

	CASE("a JSON array map keeps every column of its records");
	snprintf(spec, sizeof(spec),
		 "svc=%s,key=oldId,value=newId,miss=unmigrated_service",
		 write_file("cols.json",
			    "[{\"oldId\":\"o1\",\"newId\":\"n1\",\"stylistId\":\"st1\"},"
			    "{\"oldId\":\"o2\",\"newId\":\"n2\",\"stylistId\":7}]"));
	svc = load(spec, &eb);
	CHECK(svc != NULL);
	CHECK_STR(svc ? idmap_col(svc, "o1", "stylistId") : NULL, "st1");
	CHECK_STR(svc ? idmap_col(svc, "o2", "stylistId") : NULL, "7");
	CHECK_STR(svc ? idmap_col(svc, "o2", NULL) : NULL, "n2");
	CHECK_STR(svc ? idmap_col(svc, "o1", "oldId") : NULL, "o1");
	CHECK(svc && !idmap_col(svc, "o1", "nope") && !idmap_col(svc, "o9", NULL));
	CHECK(svc && !idmap_each_col(svc, "o1", count_col, &n) && n == 3);
	CHECK_STR(svc ? idmap_miss_reason(svc) : NULL, "unmigrated_service");
	CHECK(svc && !idmap_missing_reason(svc));

	CASE("a CSV map keeps every column, missing= names a reason");
	snprintf(spec, sizeof(spec), "v=%s,key=image,value=slug,missing=gone",
		 write_file("cols.csv", "slug,image,city\ns-a,a.jpg,Leeds\n"));
	csv = load(spec, &eb);
	CHECK_STR(csv ? idmap_col(csv, "a.jpg", "city") : NULL, "Leeds");
	CHECK_STR(csv ? idmap_get(csv, "a.jpg") : NULL, "s-a");
	CHECK_STR(csv ? idmap_missing_reason(csv) : NULL, "gone");

	CASE("{map[capture].column} in a rule target");
	CHECK(!rule_parse("S/{sid}/{img} -> m/{svc[sid]}/{svc[sid].stylistId}/{img}",
			  1, &svc, 1, &r, &eb));
	CHECK(r && rule_match(r, "S/o1/i1", &m));
	CHECK(r && !rule_expand(r, &m, "S/o1/i1", NULL, &out, why, sizeof(why)));
	CHECK_STR(out, "m/n1/st1/i1");
	free(out);
	out = NULL;
	rule_match_cleanup(&m);
	CASE("a miss names its map (for the user's reason)");
	CHECK(r && rule_match(r, "S/o9/i1", &m));
	CHECK(r && rule_expand(r, &m, "S/o9/i1", NULL, &out, why, sizeof(why)) ==
	      MFS_ENOTFOUND);
	CHECK(r && rule_missed_map(r, &m) == svc);
	rule_match_cleanup(&m);
	rule_free(r);
	r = NULL;
	CASE("a bad column spec is an error");
	CHECK(rule_parse("{x} -> {svc[x].}", 1, &svc, 1, &r, &eb));
	CHECK(rule_parse("{x} -> {svc[x]y}", 1, &svc, 1, &r, &eb));
	CHECK_HAS(eb.msg, "{map[name].column}");
	CASE("an unknown option of --map is named");
	snprintf(spec, sizeof(spec), "v=%s,miss=", write_file("cols.csv", "a,b\n"));
	CHECK(!load(spec, &eb));
	idmap_free(svc);
	idmap_free(csv);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 2;
	test_maps();
	test_rules();
	test_columns();
	{
		static const char *const files[] = {
			"u.json", "s.json", "s2.json", "bad.json", "m.csv",
			"short.csv", "dup.csv", "big.csv", "users.json",
			"cols.json", "cols.csv",
		};
		char path[300];
		size_t i;

		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	return unit_report();
}
