/* db.h - moved to meta/db.h (the journal uses it too); this forwarding
 * header keeps '#include "cli/db.h"' building until every user names
 * meta/db.h. */
#include "meta/db.h"
