/* xml.h - a thin facade over libxml2 for S3 replies and requests.
 * Owns: parsed documents. Calls: libxml2, common. Documents are not shared
 * between threads; parsing is thread-safe. Elements are matched by local
 * name, so namespaced replies (<Error xmlns=...>) match too. Network access,
 * DTD loading and entity expansion beyond the predefined ones are off.
 */
#ifndef MFS_NET_XML_H
#define MFS_NET_XML_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

struct xml_doc;
struct xml_node;

/* Parse n bytes. MFS_EPROTO with a message for malformed or truncated
 * input. */
enum mfs_err xml_parse(const char *p, size_t n, struct xml_doc **out,
		       struct errbuf *eb);
void xml_free(struct xml_doc *doc);
const struct xml_node *xml_root(const struct xml_doc *doc);
/* Local name of an element ("ListBucketResult"). */
const char *xml_name(const struct xml_node *node);
/* First/next child element named name (any element when name is NULL). */
const struct xml_node *xml_first(const struct xml_node *parent,
				 const char *name);
const struct xml_node *xml_next(const struct xml_node *node, const char *name);
/* Text content, malloc'd (entities decoded); NULL on allocation failure. */
char *xml_text(const struct xml_node *node);
/* Text of the first child named name, malloc'd; NULL when absent. */
char *xml_child_text(const struct xml_node *parent, const char *name);
/* Append s with & < > " ' escaped. */
enum mfs_err xml_escape(struct buf *out, const char *s);

#endif
