/* maps.h - ID maps for copy plans: old -> new string tables loaded from a
 * JSON object ({"old":"new",…}), a JSON array of objects (key and value
 * fields named) or a CSV file with a header line (columns named, or the
 * first two). Owns: the table (open addressing, FNV-1a; one malloc'd block
 * per entry). Calls: net/json, common. Not thread-safe to build; lookups
 * of a built map are.
 */
#ifndef MFS_CLI_MAPS_H
#define MFS_CLI_MAPS_H

#include <stddef.h>

#include "common/err.h"

struct idmap;

/* Parse a --map argument "NAME=FILE[,key=FIELD][,value=FIELD]" and load
 * the file. Errors name the file and line (CSV) or the JSON parser's line;
 * a duplicate key with another value is an error naming both. */
enum mfs_err idmap_load(const char *arg, struct idmap **out,
			struct errbuf *eb);
void idmap_free(struct idmap *m);
/* An empty map (a set, for plans' duplicate targets); NULL on no memory. */
struct idmap *idmap_new(const char *name);
/* Add key -> val; the same key with another value is MFS_EINVAL. */
enum mfs_err idmap_put(struct idmap *m, const char *key, const char *val,
		       struct errbuf *eb);
const char *idmap_name(const struct idmap *m);
size_t idmap_count(const struct idmap *m);
/* The value for key, or NULL. */
const char *idmap_get(const struct idmap *m, const char *key);

#endif
