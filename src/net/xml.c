/* xml.c - libxml2 facade. Calls: libxml2, common. */
#include "net/xml.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/str.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_parser(void)
{
	xmlInitParser();
}

struct xml_doc {
	xmlDocPtr doc;
};

enum mfs_err xml_parse(const char *p, size_t n, struct xml_doc **out,
		       struct errbuf *eb)
{
	struct xml_doc *d;
	xmlDocPtr doc;

	*out = NULL;
	pthread_once(&init_once, init_parser);
	if (n == 0)
		return eb_set(eb, MFS_EPROTO, "empty XML reply");
	if (n > INT_MAX)
		return eb_set(eb, MFS_EPROTO, "XML reply too large");
	doc = xmlReadMemory(p, (int)n, NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc || !xmlDocGetRootElement(doc)) {
		const xmlError *e = xmlGetLastError();

		if (doc)
			xmlFreeDoc(doc);
		return eb_set(eb, MFS_EPROTO, "malformed XML reply%s%s",
			      e && e->message ? ": " : "",
			      e && e->message ? e->message : "");
	}
	d = malloc(sizeof(*d));
	if (!d) {
		xmlFreeDoc(doc);
		return MFS_ENOMEM;
	}
	d->doc = doc;
	*out = d;
	return MFS_OK;
}

void xml_free(struct xml_doc *doc)
{
	if (!doc)
		return;
	xmlFreeDoc(doc->doc);
	free(doc);
}

const struct xml_node *xml_root(const struct xml_doc *doc)
{
	return (const struct xml_node *)xmlDocGetRootElement(doc->doc);
}

const char *xml_name(const struct xml_node *node)
{
	return (const char *)((const xmlNode *)node)->name;
}

static const struct xml_node *match(const xmlNode *n, const char *name)
{
	for (; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE &&
		    (!name || !strcmp((const char *)n->name, name)))
			return (const struct xml_node *)n;
	return NULL;
}

const struct xml_node *xml_first(const struct xml_node *parent,
				 const char *name)
{
	return match(((const xmlNode *)parent)->children, name);
}

const struct xml_node *xml_next(const struct xml_node *node, const char *name)
{
	return match(((const xmlNode *)node)->next, name);
}

char *xml_text(const struct xml_node *node)
{
	xmlChar *c = xmlNodeGetContent((const xmlNode *)node);
	char *s;

	if (!c)
		return strdup("");
	s = strdup((const char *)c);
	xmlFree(c);
	return s;
}

char *xml_child_text(const struct xml_node *parent, const char *name)
{
	const struct xml_node *n = xml_first(parent, name);

	return n ? xml_text(n) : NULL;
}

enum mfs_err xml_escape(struct buf *out, const char *s)
{
	enum mfs_err rc = MFS_OK;

	for (; *s && !rc; s++) {
		switch (*s) {
		case '&': rc = buf_adds(out, "&amp;"); break;
		case '<': rc = buf_adds(out, "&lt;"); break;
		case '>': rc = buf_adds(out, "&gt;"); break;
		case '"': rc = buf_adds(out, "&quot;"); break;
		case '\'': rc = buf_adds(out, "&apos;"); break;
		default: rc = buf_add(out, s, 1); break;
		}
	}
	return rc;
}
