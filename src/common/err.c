/* err.c - error names and error buffers. Calls: libc. No state. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[MFS_ERR_COUNT] = {
	[MFS_OK] = "success",
	[MFS_ENOTFOUND] = "not found",
	[MFS_EEXIST] = "already exists",
	[MFS_EACCES] = "access denied",
	[MFS_ETRANSIENT] = "temporary failure",
	[MFS_ECONFLICT] = "conflict",
	[MFS_EUNSUPP] = "not supported by this remote",
	[MFS_EINVAL] = "invalid argument",
	[MFS_EPROTO] = "malformed reply from server",
	[MFS_ENOMEM] = "out of memory",
	[MFS_EIO] = "input/output error",
	[MFS_ENOTDIR] = "not a directory",
	[MFS_EISDIR] = "is a directory",
	[MFS_ENOTEMPTY] = "directory not empty",
	[MFS_ENOSPC] = "no space left",
	[MFS_EROFS] = "read-only",
	[MFS_ENAMETOOLONG] = "name too long",
	[MFS_ERANGE] = "result too large",
	[MFS_ENODATA] = "no such attribute",
	[MFS_ECONFIG] = "configuration error",
	[MFS_EXDEV] = "not on the same remote",
	[MFS_EFBIG] = "file too large for the store",
	[MFS_ETIMEDOUT] = "timed out",
	[MFS_EINTR] = "interrupted",
};

const char *mfs_strerror(enum mfs_err rc)
{
	if ((unsigned)rc >= MFS_ERR_COUNT || !names[rc])
		return "unknown error";
	return names[rc];
}

enum mfs_err eb_set(struct errbuf *eb, enum mfs_err rc, const char *fmt, ...)
{
	va_list ap;

	if (!eb)
		return rc;
	va_start(ap, fmt);
	vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
	va_end(ap);
	return rc;
}

void eb_prefix(struct errbuf *eb, const char *fmt, ...)
{
	char old[sizeof(eb->msg)];
	va_list ap;
	int n;

	if (!eb)
		return;
	memcpy(old, eb->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n + 2 < sizeof(eb->msg)) {
		size_t room = sizeof(eb->msg) - (size_t)n;

		memcpy(eb->msg + n, ": ", 2);
		memcpy(eb->msg + n + 2, old, room - 2);
		eb->msg[sizeof(eb->msg) - 1] = '\0';
	}
}

void eb_clear(struct errbuf *eb)
{
	if (!eb)
		return;
	eb->msg[0] = '\0';
	eb->http_status = 0;
}
