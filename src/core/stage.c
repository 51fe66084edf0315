/* stage.c - staging files. Calls: common. */
#include "core/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/str.h"

struct stage {
	char *dir;
};

enum mfs_err stage_new(const char *dir, struct stage **out, struct errbuf *eb)
{
	struct stage *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return MFS_ENOMEM;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		enum mfs_err rc = eb_set(eb, MFS_EIO,
					 "cannot create staging directory %s: %s",
					 dir, strerror(errno));

		stage_free(s);
		return rc;
	}
	*out = s;
	return MFS_OK;
}

void stage_free(struct stage *s)
{
	if (!s)
		return;
	free(s->dir);
	free(s);
}

enum mfs_err stage_errno(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
		return MFS_ENOSPC;
	case ENOMEM:
		return MFS_ENOMEM;
	case EACCES:
	case EPERM:
		return MFS_EACCES;
	default:
		return MFS_EIO;
	}
}

enum mfs_err stage_create(struct stage *s, int *fd, char **path,
			  struct errbuf *eb)
{
	char *p = str_fmt("%s/up-XXXXXX", s->dir);

	*fd = -1;
	*path = NULL;
	if (!p)
		return MFS_ENOMEM;
	*fd = mkostemp(p, O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;

		free(p);
		return eb_set(eb, stage_errno(e), "cannot create a staging file in %s: %s",
			      s->dir, strerror(e));
	}
	*path = p;
	return MFS_OK;
}

enum mfs_err stage_copy(struct stage *s, int src_fd, int *fd, char **path,
			struct errbuf *eb)
{
	enum mfs_err rc = stage_create(s, fd, path, eb);
	struct stat st;
	loff_t in = 0;

	if (rc)
		return rc;
	if (fstat(src_fd, &st))
		goto fail;
	while (in < st.st_size) {
		ssize_t n = copy_file_range(src_fd, &in, *fd, NULL,
					    (size_t)(st.st_size - in), 0);

		if (n <= 0) {
			/* fall back to read/write */
			char buf[65536];
			ssize_t r = pread(src_fd, buf, sizeof(buf), in);

			if (r <= 0 || write(*fd, buf, (size_t)r) != r)
				goto fail;
			in += r;
		}
	}
	return MFS_OK;
fail:
	rc = eb_set(eb, stage_errno(errno), "copying a staging file: %s",
		    strerror(errno));
	close(*fd);
	unlink(*path);
	free(*path);
	*fd = -1;
	*path = NULL;
	return rc;
}

int stage_sweep(struct stage *s, char *const *keep, int n)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	int removed = 0, i;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char *p;

		if (strncmp(e->d_name, "up-", 3))
			continue;
		p = str_fmt("%s/%s", s->dir, e->d_name);
		if (!p)
			break;
		for (i = 0; i < n; i++)
			if (keep[i] && !strcmp(keep[i], p))
				break;
		if (i == n && !unlink(p))
			removed++;
		free(p);
	}
	closedir(d);
	return removed;
}
