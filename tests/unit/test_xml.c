/* net/xml: well-formed, namespaced, entity-escaped, malformed, truncated
 * and hostile input. */
#include <stdlib.h>

#include "net/xml.h"
#include "unit.h"

TEST_MAIN("test_xml")

static enum mfs_err parse(const char *s, struct xml_doc **d)
{
	return xml_parse(s, strlen(s), d, NULL);
}

int main(void)
{
	static const char *const bad[] = {
		"",
		"<",
		"<a><b></a>",
		"<ListBucketResult><Contents><Key>x</Key>",	/* truncated */
		"not xml at all",
		"<a>&undefined;</a>",
		"<?xml version=\"1.0\"?>",
	};
	struct xml_doc *d = NULL;
	struct errbuf eb = { 0 };
	const struct xml_node *r, *n;
	char *t;
	size_t i;
	int count;

	CASE("entities in keys and quoted etags are decoded");
	CHECK(parse("<R><Key>a&amp;b&lt;c</Key><ETag>&quot;9b&quot;</ETag>"
		    "<Key>second</Key></R>", &d) == MFS_OK);
	r = xml_root(d);
	CHECK_STR(xml_name(r), "R");
	t = xml_child_text(r, "Key");
	CHECK_STR(t, "a&b<c");
	free(t);
	t = xml_child_text(r, "ETag");
	CHECK_STR(t, "\"9b\"");
	free(t);
	for (count = 0, n = xml_first(r, "Key"); n; n = xml_next(n, "Key"))
		count++;
	CHECK(count == 2);
	CHECK(xml_child_text(r, "Missing") == NULL);
	xml_free(d);

	CASE("namespaced <Error> matches by local name");
	CHECK(parse("<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		    "<Code>NoSuchKey</Code></Error>", &d) == MFS_OK);
	CHECK_STR(xml_name(xml_root(d)), "Error");
	t = xml_child_text(xml_root(d), "Code");
	CHECK_STR(t, "NoSuchKey");
	free(t);
	xml_free(d);

	CASE("malformed and truncated input is an error, never a crash");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = NULL;
		CHECK(xml_parse(bad[i], strlen(bad[i]), &d, &eb) ==
		      MFS_EPROTO);
		CHECK(d == NULL);
	}
	CHECK_HAS(eb.msg, "XML");

	CASE("no external entities or network");
	CHECK(parse("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
		    "<a>&e;</a>", &d) == MFS_OK ||
	      d == NULL);
	if (d) {
		t = xml_text(xml_root(d));
		CHECK(t && !strstr(t, "root:"));
		free(t);
		xml_free(d);
	}

	CASE("escape for request bodies");
	{
		struct buf b;

		buf_init(&b, 0);
		CHECK(xml_escape(&b, "a&b<c>\"d'") == MFS_OK);
		CHECK_STR(b.data, "a&amp;b&lt;c&gt;&quot;d&apos;");
		buf_cleanup(&b);
	}
	return unit_report();
}
