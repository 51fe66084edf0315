/* fsutil.c - file-system helpers (fsutil.h). */
#include "common/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/str.h"

int fsu_mkdirs(const char *path, mode_t mode, int parents_only)
{
	char *p = strdup(path), *s;
	int rc = 0;

	if (!p)
		return -1;
	for (s = p + 1; *s && !rc; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (!rc && !parents_only && mkdir(p, mode) && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

char *fsu_xdg_path(const char *var, const char *fallback, const char *tail)
{
	const char *base = getenv(var), *home = getenv("HOME");

	if (base && *base)
		return str_fmt("%s/mediafs%s", base, tail);
	return str_fmt("%s/%s/mediafs%s", home ? home : "/", fallback, tail);
}

char *fsu_abs_path(const char *path)
{
	char cwd[4096];

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return str_fmt("%s/%s", cwd, path);
}
