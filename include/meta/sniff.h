/* sniff.h - content type from a file's first bytes (libmagic), the file
 * name's extension used only as a tie-break when the bytes say nothing
 * specific (text, empty, unknown). Owns: one libmagic cookie. Calls:
 * libmagic, common. Thread-safe: the cookie is guarded by a mutex (libmagic
 * cookies are not thread-safe; a lookup takes microseconds).
 */
#ifndef MFS_META_SNIFF_H
#define MFS_META_SNIFF_H

#include <stddef.h>

#include "common/err.h"

/* How many leading bytes sniff_type wants. */
#define SNIFF_BYTES 4096

struct sniff;

enum mfs_err sniff_new(struct sniff **out, struct errbuf *eb);
void sniff_free(struct sniff *s);
/* The MIME type of n bytes p of a file named name (may be NULL) into out:
 * "image/png"; "application/octet-stream" when nothing matches. */
void sniff_type(struct sniff *s, const void *p, size_t n, const char *name,
		char *out, size_t cap);

/* The usual file extension of a MIME type, without the dot: "jpg" for
 * image/jpeg; "bin" for types it does not know. */
const char *sniff_ext(const char *type);

#endif
