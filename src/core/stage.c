/* stage.c - staging files. Calls: common.
 *
 * Spare files: a staging file whose upload is done is renamed to a private
 * spare name, emptied and kept (up to STAGE_SPARES), and the next
 * stage_create renames a spare to a fresh name instead of allocating an
 * inode. On ext4 without a journal (this project's CI disks) creating an
 * inode shortly after others were deleted scans every recently deleted
 * inode of the group (ext4's recently_deleted()): measured 520-650 us per
 * create after a burst of deletions, 18-28 us otherwise, on the cp -r
 * path of every file (docs/BENCHMARKS.md). A file is only kept when no
 * descriptor but ours is open on it (a write lease is granted only then),
 * so a reader still holding the old staged bytes never sees them change;
 * its old name is gone before the check (a reader opening it late gets
 * ENOENT, as after an unlink), and a reused file never gets a name back.
 */
#include "core/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/str.h"

#define STAGE_SPARES 64

struct stage {
	char *dir;
	pthread_mutex_t lock;
	char *spare[STAGE_SPARES];	/* emptied files, private names */
	int nspare;
	uint64_t reused, kept, dropped;
};

enum mfs_err stage_new(const char *dir, struct stage **out, struct errbuf *eb)
{
	struct stage *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return MFS_ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
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
	while (s->nspare > 0) {
		char *p = s->spare[--s->nspare];

		unlink(p);
		free(p);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

/* A fresh name "DIR/PFX-<16 hex>" (random: never one handed out before). */
static char *fresh_name(const struct stage *s, const char *pfx)
{
	return str_fmt("%s/%s-%016llx", s->dir, pfx,
		       (unsigned long long)str_unique64());
}

/* Rename from to a fresh name with prefix pfx; the new path, or NULL. */
static char *rename_fresh(const struct stage *s, const char *from,
			  const char *pfx)
{
	int tries;

	for (tries = 0; tries < 4; tries++) {
		char *to = fresh_name(s, pfx);

		if (!to)
			return NULL;
		if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE))
			return to;
		free(to);
		if (errno != EEXIST)
			return NULL;
	}
	return NULL;
}

/* A spare renamed to a fresh staging name and opened; 0 if none. */
static int take_spare(struct stage *s, int *fd, char **path)
{
	for (;;) {
		char *sp = NULL, *p;

		pthread_mutex_lock(&s->lock);
		if (s->nspare > 0)
			sp = s->spare[--s->nspare];
		pthread_mutex_unlock(&s->lock);
		if (!sp)
			return 0;
		p = rename_fresh(s, sp, "up");
		if (p) {
			*fd = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
			if (*fd >= 0) {
				free(sp);
				*path = p;
				pthread_mutex_lock(&s->lock);
				s->reused++;
				pthread_mutex_unlock(&s->lock);
				return 1;
			}
			unlink(p);
			free(p);
		} else {
			unlink(sp);
		}
		free(sp);
	}
}

void stage_done(struct stage *s, const char *path)
{
	char *sp;
	int fd, keep = 0;

	if (!s) {
		unlink(path);
		return;
	}
	/* the old name goes first: from here on nobody can open the file */
	sp = rename_fresh(s, path, "sp");
	if (!sp) {
		unlink(path);
		return;
	}
	fd = open(sp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	/* granted only while no other descriptor is open on the file */
	if (fd >= 0 && !fcntl(fd, F_SETLEASE, F_WRLCK)) {
		keep = !ftruncate(fd, 0);
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&s->lock);
	if (keep && s->nspare < STAGE_SPARES) {
		s->spare[s->nspare++] = sp;
		s->kept++;
		sp = NULL;
	} else {
		s->dropped++;
	}
	pthread_mutex_unlock(&s->lock);
	if (sp) {
		unlink(sp);
		free(sp);
	}
}

void stage_stats(struct stage *s, uint64_t *reused, uint64_t *kept,
		 uint64_t *dropped)
{
	pthread_mutex_lock(&s->lock);
	*reused = s->reused;
	*kept = s->kept;
	*dropped = s->dropped;
	pthread_mutex_unlock(&s->lock);
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
	case EFBIG:	/* past the staging file system's largest file */
		return MFS_EFBIG;
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
	if (take_spare(s, fd, path)) {
		free(p);
		return MFS_OK;
	}
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

		/* spares of an earlier run are never kept */
		if (strncmp(e->d_name, "up-", 3) &&
		    strncmp(e->d_name, "sp-", 3))
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
