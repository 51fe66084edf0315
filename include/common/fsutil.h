/* fsutil.h - small file-system helpers both programs need: creating a
 * directory path and mediafs's XDG default locations (so mediafs and
 * mediactl agree on them). Calls: libc. Thread-safe.
 */
#ifndef MFS_COMMON_FSUTIL_H
#define MFS_COMMON_FSUTIL_H

#include <sys/types.h>

/* mkdir -p path with mode; with parents_only, not the last component
 * (path names a file). 0 or -1 with errno. */
int fsu_mkdirs(const char *path, mode_t mode, int parents_only);
/* "$var/mediafs<tail>", or "$HOME/<fallback>/mediafs<tail>" when var is
 * unset or empty (malloc'd, NULL on no memory). */
char *fsu_xdg_path(const char *var, const char *fallback, const char *tail);

/* path made absolute against the current directory (malloc'd; NULL on
 * no memory or no cwd). The daemon resolves its paths before libfuse
 * changes to "/". */
char *fsu_abs_path(const char *path);

#endif
