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

/* Parse a --map argument
 * "NAME=FILE[,key=FIELD][,value=FIELD][,miss=REASON][,missing=REASON]" and
 * load the file. A JSON array of objects or a CSV file keeps every column
 * of each record (idmap_col); miss= names the skip reason of a source
 * whose capture the map lacks, missing= makes plans report the keys no
 * source used as missing sources, with that reason. Errors name the file and line (CSV) or the JSON parser's line;
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
/* Column col of key's record (col NULL: the value), or NULL. Borrowed. */
const char *idmap_col(const struct idmap *m, const char *key,
		      const char *col);
/* cb for every column of key's record, in file order; stops when cb
 * returns non-zero (returned). */
int idmap_each_col(const struct idmap *m, const char *key,
		   int (*cb)(void *ud, const char *col, const char *val),
		   void *ud);
/* cb for every key and value, in no order; stops on non-zero. */
int idmap_each(const struct idmap *m,
	       int (*cb)(void *ud, const char *key, const char *val), void *ud);
/* The user's reasons (miss=, missing=), or NULL. */
const char *idmap_miss_reason(const struct idmap *m);
const char *idmap_missing_reason(const struct idmap *m);

#endif
