/* local.c - a directory on disk as a remote: the no-server way to try
 * mediafs, a migration target on disk, a reference backend for tests.
 * Keys are paths below the root; a key with an empty, "." or ".." segment
 * is refused, so nothing escapes the root. Writes go to a temporary file
 * in the target directory and are renamed into place (atomic, like a PUT);
 * mtime and mode are the file's own. ETags are derived from size, mtime
 * and inode, so a changed file is noticed. Calls: common. Thread-safe (no
 * mutable state).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"

#define TMP_PREFIX ".mediafs-tmp-"

struct local {
	char *root;	/* absolute, no trailing '/' */
};

static enum mfs_err from_errno(int e, const char *what, const char *key,
			       struct errbuf *eb)
{
	enum mfs_err rc;

	switch (e) {
	case ENOENT: rc = MFS_ENOTFOUND; break;
	case EEXIST: rc = MFS_EEXIST; break;
	case EACCES: case EPERM: rc = MFS_EACCES; break;
	case ENOTDIR: rc = MFS_ENOTDIR; break;
	case EISDIR: rc = MFS_EISDIR; break;
	case ENOTEMPTY: rc = MFS_ENOTEMPTY; break;
	case ENOSPC: case EDQUOT: rc = MFS_ENOSPC; break;
	case ENAMETOOLONG: rc = MFS_ENAMETOOLONG; break;
	case EROFS: rc = MFS_EROFS; break;
	default: rc = MFS_EIO; break;
	}
	return eb_set(eb, rc, "%s %s: %s", what, key, strerror(e));
}

/* root/key, refusing keys that are not plain relative paths. */
static enum mfs_err path_of(struct local *l, const char *key, char **out,
			    struct errbuf *eb)
{
	const char *p = key;

	*out = NULL;
	while (*key && *p) {
		size_t n = strcspn(p, "/");
		const char *bad = str_bad_name(p, n);

		if (bad)
			return eb_set(eb, MFS_EINVAL, "key '%s': %s", key, bad);
		p += n;
		if (*p == '/')
			p++;
	}
	*out = *key ? str_fmt("%s/%s", l->root, key) : strdup(l->root);
	return *out ? MFS_OK : MFS_ENOMEM;
}

static void etag_of(const struct stat *st, char out[80])
{
	snprintf(out, 80, "%llx-%llx-%llx", (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
		 (unsigned long long)st->st_mtim.tv_nsec,
		 (unsigned long long)st->st_ino);
}

static void meta_of(const struct stat *st, struct obj_meta *m, int full)
{
	memset(m, 0, sizeof(*m));
	m->kind = S_ISDIR(st->st_mode) ? OBJ_DIR : OBJ_FILE;
	m->size = m->kind == OBJ_FILE ? (uint64_t)st->st_size : 0;
	m->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
		      st->st_mtim.tv_nsec;
	m->server_mtime_ns = m->mtime_ns;
	m->mode = st->st_mode & 07777;
	m->full = full;
	if (m->kind == OBJ_FILE)
		etag_of(st, m->etag);
}

static enum mfs_err local_list(struct backend *be, const char *dir,
			       backend_list_cb cb, void *ud, struct errbuf *eb)
{
	struct local *l = be->priv;
	struct dirent *e;
	enum mfs_err rc;
	char *path;
	DIR *d;
	int fd;

	__atomic_add_fetch(&be->stats.list, 1, __ATOMIC_RELAXED);
	rc = path_of(l, dir, &path, eb);
	if (rc)
		return rc;
	d = opendir(path);
	if (!d) {
		rc = errno == ENOENT ? MFS_OK : from_errno(errno, "listing",
							    path, eb);
		free(path);
		return rc;	/* a missing directory lists empty */
	}
	fd = dirfd(d);
	while (!rc && (e = readdir(d))) {
		struct obj_meta m;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    str_starts(e->d_name, TMP_PREFIX))
			continue;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;	/* vanished meanwhile */
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			continue;	/* links, devices: not media */
		meta_of(&st, &m, 1);
		rc = cb(ud, e->d_name, &m);
	}
	closedir(d);
	free(path);
	return rc;
}

static enum mfs_err local_head(struct backend *be, const char *key,
			       struct obj_meta *out, struct errbuf *eb)
{
	struct stat st;
	char *path;
	enum mfs_err rc = path_of(be->priv, key, &path, eb);

	__atomic_add_fetch(&be->stats.head, 1, __ATOMIC_RELAXED);
	if (rc)
		return rc;
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		rc = from_errno(errno ? errno : ENOENT, "stat", key, eb);
	else
		meta_of(&st, out, 1);
	free(path);
	return rc;
}

static enum mfs_err local_get(struct backend *be, const char *key,
			      uint64_t off, size_t len, const char *etag,
			      char *dst, size_t *got, struct errbuf *eb)
{
	struct stat st;
	char *path, now[80];
	enum mfs_err rc = path_of(be->priv, key, &path, eb);
	ssize_t n;
	int fd;

	__atomic_add_fetch(&be->stats.get, 1, __ATOMIC_RELAXED);
	*got = 0;
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return from_errno(errno, "open", key, eb);
	if (etag && *etag && !fstat(fd, &st)) {
		etag_of(&st, now);
		if (strcmp(now, etag)) {
			close(fd);
			return eb_set(eb, MFS_ECONFLICT,
				      "%s changed on disk meanwhile", key);
		}
	}
	while (*got < len) {
		n = pread(fd, dst + *got, len - *got, (off_t)(off + *got));
		if (n < 0) {
			rc = from_errno(errno, "read", key, eb);
			break;
		}
		if (!n)
			break;
		*got += (size_t)n;
	}
	close(fd);
	return rc;
}

static enum mfs_err local_url(struct backend *be, const char *key, char **out)
{
	struct local *l = be->priv;
	struct buf b;
	enum mfs_err rc;

	buf_init(&b, 0);
	rc = buf_adds(&b, "file://");
	if (!rc)
		rc = str_uri_encode(&b, l->root, strlen(l->root), 1);
	if (!rc)
		rc = buf_adds(&b, "/");
	if (!rc)
		rc = str_uri_encode(&b, key, strlen(key), 1);
	if (rc) {
		buf_cleanup(&b);
		return rc;
	}
	*out = buf_take(&b);
	return MFS_OK;
}

/* mkdir -p of path's directory part */
static int mkparents(char *path)
{
	char *s;

	for (s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			*s = '/';
			return -1;
		}
		*s = '/';
	}
	return 0;
}

static void apply_meta(int fd, const struct put_meta *m)
{
	if (!m)
		return;
	if (m->mode && fchmod(fd, m->mode & 07777))
		log_warn("chmod: %s", strerror(errno));
	if (m->mtime_ns) {
		struct timespec ts[2];

		ts[0].tv_sec = m->mtime_ns / 1000000000;
		ts[0].tv_nsec = m->mtime_ns % 1000000000;
		ts[1] = ts[0];
		if (futimens(fd, ts))
			log_warn("utimens: %s", strerror(errno));
	}
}

/* Write len bytes of src_fd at off into key, atomically (temp + rename). */
static enum mfs_err write_file(struct backend *be, const char *key, int src_fd,
			       uint64_t off, uint64_t len,
			       const struct put_meta *meta, struct obj_meta *out,
			       struct errbuf *eb)
{
	char *path = NULL, *tmp = NULL, *slash;
	enum mfs_err rc = path_of(be->priv, key, &path, eb);
	struct stat st;
	loff_t in = (loff_t)off;
	uint64_t left = len;
	int fd = -1;

	if (rc)
		return rc;
	if (!*key) {
		free(path);
		return eb_set(eb, MFS_EISDIR, "the root is a directory");
	}
	slash = strrchr(path, '/');
	tmp = str_fmt("%.*s/" TMP_PREFIX "XXXXXX", (int)(slash - path), path);
	if (!tmp) {
		rc = MFS_ENOMEM;
		goto out;
	}
	if (mkparents(path))
		goto fail;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto fail;
	while (left && src_fd >= 0) {
		ssize_t n = copy_file_range(src_fd, &in, fd, NULL,
					    (size_t)left, 0);

		if (n <= 0) {
			char b[65536];
			ssize_t r = pread(src_fd, b, left < sizeof(b) ?
					  (size_t)left : sizeof(b), in);

			if (r <= 0 || write(fd, b, (size_t)r) != r)
				goto fail;
			n = r;
			in += r;
		}
		left -= (uint64_t)n;
	}
	apply_meta(fd, meta);
	if (fstat(fd, &st) || rename(tmp, path))
		goto fail;
	if (out)
		meta_of(&st, out, 1);
	goto out;
fail:
	rc = from_errno(errno, "writing", key, eb);
	if (fd >= 0)
		unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(path);
	return rc;
}

static enum mfs_err local_put(struct backend *be, const char *key,
			      const struct put_body *body,
			      const struct put_meta *meta, struct obj_meta *out,
			      struct errbuf *eb)
{
	__atomic_add_fetch(&be->stats.put, 1, __ATOMIC_RELAXED);
	return write_file(be, key, body->fd, body->off, body->len, meta, out,
			  eb);
}

static enum mfs_err local_copy(struct backend *be, const char *src,
			       const char *dst, const struct put_meta *meta,
			       struct obj_meta *out, struct errbuf *eb)
{
	struct put_meta keep = { 0 };
	struct stat st;
	char *path;
	enum mfs_err rc = path_of(be->priv, src, &path, eb);
	int fd;

	__atomic_add_fetch(&be->stats.copy, 1, __ATOMIC_RELAXED);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &st)) {
		rc = from_errno(errno, "copying", src, eb);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!meta) {	/* COPY: the source's own metadata */
		keep.mode = st.st_mode;
		keep.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
				st.st_mtim.tv_nsec;
		meta = &keep;
	}
	rc = write_file(be, dst, fd, 0, (uint64_t)st.st_size, meta, out, eb);
	close(fd);
	return rc;
}

static enum mfs_err local_del(struct backend *be, const char *key,
			      struct errbuf *eb)
{
	char *path;
	enum mfs_err rc = path_of(be->priv, key, &path, eb);

	__atomic_add_fetch(&be->stats.del, 1, __ATOMIC_RELAXED);
	if (rc)
		return rc;
	if (unlink(path) && errno != ENOENT)
		rc = from_errno(errno, "deleting", key, eb);
	free(path);
	return rc;
}

/* A rename on the store's own disk: one atomic rename(2), not a copy of
 * every byte and a delete (a kill between them left both names, and a
 * folder of files was copied file by file, unrecorded). Folders above dst
 * are made first; a folder src that was never made (its marker still
 * queued) is not an error, as for move_dir's other backends. */
static enum mfs_err rename_key(struct backend *be, const char *src,
			       const char *dst, int dir, struct errbuf *eb)
{
	char *from = NULL, *to = NULL;
	enum mfs_err rc = path_of(be->priv, src, &from, eb);

	__atomic_add_fetch(&be->stats.other, 1, __ATOMIC_RELAXED);
	if (!rc)
		rc = path_of(be->priv, dst, &to, eb);
	if (!rc && (!*src || !*dst))
		rc = eb_set(eb, MFS_EINVAL, "the root cannot be renamed");
	if (!rc && mkparents(to))
		rc = from_errno(errno, "renaming to", dst, eb);
	if (!rc && rename(from, to)) {
		struct stat st;

		if (dir && errno == ENOENT && lstat(from, &st) &&
		    errno == ENOENT)
			rc = MFS_OK;	/* never stored */
		else
			rc = from_errno(errno, "renaming", src, eb);
	}
	free(from);
	free(to);
	return rc;
}

static enum mfs_err local_move(struct backend *be, const char *src,
			       const char *dst, struct errbuf *eb)
{
	return rename_key(be, src, dst, 0, eb);
}

static enum mfs_err local_move_dir(struct backend *be, const char *src,
				   const char *dst, struct errbuf *eb)
{
	return rename_key(be, src, dst, 1, eb);
}

static int longer_first(const void *a, const void *b)
{
	size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

static enum mfs_err local_del_many(struct backend *be,
				   const char *const *keys, int n, int *failed,
				   struct errbuf *eb)
{
	const char **dirs = calloc((size_t)n + 1, sizeof(*dirs));
	int i, nd = 0;

	*failed = 0;
	if (!dirs)
		return MFS_ENOMEM;
	for (i = 0; i < n; i++) {
		size_t len = strlen(keys[i]);

		if (len && keys[i][len - 1] == '/') {
			dirs[nd++] = keys[i];	/* a marker: below */
			continue;
		}
		if (local_del(be, keys[i], *failed ? NULL : eb))
			(*failed)++;
	}
	/* markers stand for directories: remove the empty ones, deepest
	 * first, once their files are gone */
	qsort(dirs, (size_t)nd, sizeof(*dirs), longer_first);
	for (i = 0; i < nd; i++) {
		char *dir = str_ndup(dirs[i], strlen(dirs[i]) - 1), *path = NULL;

		if (dir && !path_of(be->priv, dir, &path, NULL))
			rmdir(path);
		free(dir);
		free(path);
	}
	free(dirs);
	return MFS_OK;
}

static enum mfs_err local_mkdir(struct backend *be, const char *dir,
				const struct put_meta *meta, struct errbuf *eb)
{
	char *path;
	enum mfs_err rc = path_of(be->priv, dir, &path, eb);

	if (rc)
		return rc;
	if ((mkparents(path) || mkdir(path, meta && meta->mode ?
				      meta->mode & 07777 : 0755)) &&
	    errno != EEXIST)
		rc = from_errno(errno, "mkdir", dir, eb);
	free(path);
	return rc;
}

static enum mfs_err local_rmdir(struct backend *be, const char *dir,
				struct errbuf *eb)
{
	char *path;
	enum mfs_err rc = path_of(be->priv, dir, &path, eb);

	if (rc)
		return rc;
	if (rmdir(path) && errno != ENOENT)
		rc = from_errno(errno, "rmdir", dir, eb);
	free(path);
	return rc;
}

static void local_free(struct backend *be)
{
	struct local *l;

	if (!be)
		return;
	l = be->priv;
	if (l)
		free(l->root);
	backend_dealloc(be);
}

/* A key whose path (below the root, with room for the temporary name a
 * write goes through) passes PATH_MAX: refused before anything is made,
 * else mkdir made a folder that rmdir could not remove (pjdfstest). */
static int local_check_key(struct backend *be, const char *key, int is_dir,
			   char *why, size_t cap)
{
	const struct local *l = be->priv;
	size_t n = strlen(l->root) + 1 + strlen(key);

	(void)is_dir;
	if (n + 1 + sizeof(TMP_PREFIX) + 32 > PATH_MAX) {
		snprintf(why, cap, "the path below %s would pass PATH_MAX (%d bytes)",
			 l->root, PATH_MAX);
		return 2;
	}
	return 0;
}

static const struct backend_ops local_ops = {
	.type = "local",
	.caps = BE_CAP_RANGE_READ | BE_CAP_WRITE | BE_CAP_SERVER_COPY |
		BE_CAP_USER_MTIME | BE_CAP_DIR_MARKERS,
	.list = local_list,
	.head = local_head,
	.get = local_get,
	.url = local_url,
	.put = local_put,
	.copy = local_copy,
	.move = local_move,
	.move_dir = local_move_dir,
	.del = local_del,
	.del_many = local_del_many,
	.mkdir = local_mkdir,
	.rmdir = local_rmdir,
	.check_key = local_check_key,
	.free = local_free,
};

static const char *const local_keys[] = { "type", "path", NULL };

enum mfs_err local_backend_create(struct ini *ini, struct ini_section *sec,
				  struct backend **out, struct errbuf *eb)
{
	struct backend *be = backend_alloc(&local_ops, sec, sizeof(struct local));
	struct local *l;
	const char *p;
	struct stat st;
	enum mfs_err rc;

	*out = NULL;
	if (!be)
		return MFS_ENOMEM;
	l = be->priv;
	rc = backend_check_keys(ini, sec, local_keys, eb);
	p = ini_get(sec, "path");
	if (!rc && (!p || !*p))
		rc = eb_set(eb, MFS_EINVAL, "%s:%d: [%s] needs 'path = DIR'",
			    ini->path, sec->line, sec->name);
	if (!rc) {
		l->root = realpath(p, NULL);
		if (!l->root || stat(l->root, &st) || !S_ISDIR(st.st_mode))
			rc = eb_set(eb, MFS_ECONFIG,
				    "%s:%d: [%s] path '%s' is not a directory",
				    ini->path, sec->line, sec->name, p);
	}
	if (!rc) {
		be->ident = str_fmt("local %s", l->root);
		if (!be->ident || !be->name)
			rc = MFS_ENOMEM;
	}
	if (rc) {
		local_free(be);
		return rc;
	}
	*out = be;
	return MFS_OK;
}
