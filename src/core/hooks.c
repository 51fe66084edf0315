/* hooks.c - write hooks (see hooks.h): the built-in compressor on libvips
 * and exec: hooks through posix_spawn. libvips is initialised once, with
 * its operation cache off and one thread per image (the upload workers
 * already run images in parallel). Calls: libvips, common. Thread-safe.
 */
#include "core/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"

extern char **environ;

const char *const hook_keys[] = {
	"on_write", "compress.jpeg_quality", "compress.png",
	"compress.webp_quality", "compress.max_dimension",
	"compress.strip_metadata", "hook_timeout", NULL
};

/* ---- configuration ---- */

static enum mfs_err int_key(const struct ini *ini, struct ini_section *sec,
			    const char *key, int def, int lo, int hi, int *out,
			    struct errbuf *eb)
{
	const char *v = ini_get(sec, key);
	uint64_t n;

	*out = def;
	if (!v)
		return MFS_OK;
	if (str_parse_u64(v, &n) || n < (uint64_t)lo || n > (uint64_t)hi)
		return eb_set(eb, MFS_EINVAL, "%s: [%s]: %s must be %d..%d, not '%s'",
			      ini->path, sec->name, key, lo, hi, v);
	*out = (int)n;
	return MFS_OK;
}

/* Split an exec: command line on blanks (no shell, no quoting). */
static enum mfs_err split_argv(const char *cmd, char ***out)
{
	char **argv = NULL;
	int n = 0;

	while (*cmd) {
		size_t len;
		char **p;

		cmd += strspn(cmd, " \t");
		len = strcspn(cmd, " \t");
		if (!len)
			break;
		p = realloc(argv, sizeof(*p) * (size_t)(n + 2));
		if (!p)
			goto oom;
		argv = p;
		argv[n] = str_ndup(cmd, len);
		if (!argv[n])
			goto oom;
		argv[++n] = NULL;
		cmd += len;
	}
	*out = argv;
	return MFS_OK;
oom:
	while (n--)
		free(argv[n]);
	free(argv);
	return MFS_ENOMEM;
}

enum mfs_err hook_cfg_parse(const struct ini *ini, struct ini_section *sec,
			    struct hook_cfg **out, struct errbuf *eb)
{
	const char *w = ini_get(sec, "on_write"), *v;
	struct hook_cfg *c;
	enum mfs_err rc;
	int b = 0;

	*out = NULL;
	if (!w || !*w || !strcmp(w, "none"))
		return MFS_OK;
	c = calloc(1, sizeof(*c));
	if (!c)
		return MFS_ENOMEM;
	c->png_lossless = 1;
	rc = int_key(ini, sec, "compress.jpeg_quality", 85, 1, 100,
		     &c->jpeg_quality, eb);
	if (!rc)
		rc = int_key(ini, sec, "compress.webp_quality", 80, 1, 100,
			     &c->webp_quality, eb);
	if (!rc)
		rc = int_key(ini, sec, "compress.max_dimension", 0, 0, 100000,
			     &c->max_dimension, eb);
	if (!rc)
		rc = int_key(ini, sec, "hook_timeout", 60, 1, 86400,
			     &c->timeout_s, eb);
	v = ini_get(sec, "compress.png");
	if (!rc && v) {
		if (!strcmp(v, "lossless"))
			c->png_lossless = 1;
		else if (!strcmp(v, "off"))
			c->png_lossless = 0;
		else
			rc = eb_set(eb, MFS_EINVAL,
				    "%s: [%s]: compress.png must be lossless or off, not '%s'",
				    ini->path, sec->name, v);
	}
	v = ini_get(sec, "compress.strip_metadata");
	if (!rc && v && str_parse_bool(v, &b))
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: [%s]: compress.strip_metadata must be true or false, not '%s'",
			    ini->path, sec->name, v);
	c->strip_metadata = b;
	if (!rc && !strcmp(w, "compress")) {
		c->kind = HOOK_COMPRESS;
		snprintf(c->name, sizeof(c->name), "compress");
	} else if (!rc && str_starts(w, "exec:")) {
		c->kind = HOOK_EXEC;
		rc = split_argv(w + 5, &c->argv);
		if (!rc && (!c->argv || c->argv[0][0] != '/'))
			rc = eb_set(eb, MFS_EINVAL,
				    "%s: [%s]: on_write = exec: needs an absolute path to the tool ('exec:/usr/bin/tool {in} {out}')",
				    ini->path, sec->name);
		else if (!rc && access(c->argv[0], X_OK))
			rc = eb_set(eb, MFS_EINVAL, "%s: [%s]: hook tool %s: %s",
				    ini->path, sec->name, c->argv[0],
				    strerror(errno));
		if (!rc) {
			const char *base = strrchr(c->argv[0], '/');

			snprintf(c->name, sizeof(c->name), "exec:%s", base + 1);
		}
	} else if (!rc) {
		rc = eb_set(eb, MFS_EINVAL,
			    "%s: [%s]: on_write must be compress, exec:/path/to/tool {in} {out} or none, not '%s'",
			    ini->path, sec->name, w);
	}
	if (rc) {
		hook_cfg_free(c);
		return rc;
	}
	*out = c;
	return MFS_OK;
}

void hook_cfg_free(struct hook_cfg *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; c->argv && c->argv[i]; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c);
}

/* ---- the built-in compressor ---- */

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_ready;

static void mfs_vips_log(const char *domain, GLogLevelFlags level,
		     const char *msg, void *ud)
{
	(void)domain;
	(void)level;
	(void)ud;
	log_dbg(LOG_SUB_UPQ, "libvips: %s", msg);
}

static void vips_setup(void)
{
	if (VIPS_INIT("mediafs")) {
		log_err("libvips failed to start: %s", vips_error_buffer());
		return;
	}
	vips_cache_set_max(0);
	vips_concurrency_set(1);
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE,
			  mfs_vips_log, NULL);
	vips_ready = 1;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* The first line of libvips's error buffer (shared by all threads). */
static void vips_why(char *out, size_t cap)
{
	const char *e = vips_error_buffer();
	size_t n = strcspn(e, "\n");

	snprintf(out, cap, "%.*s", (int)n, *e ? e : "unknown libvips error");
	vips_error_clear();
}

/* A PNG that is already well compressed: its image data deflated at
 * zlib's default level or above (FLEVEL 2 or 3 in the zlib header) AND
 * filtered (the first rows do not all use filter 0). Re-encoding such a
 * file almost never wins and costs a full decode and deflate; unfiltered
 * or fast-deflated files are re-encoded. Hand-written on zlib: walking the
 * chunks and inflating the first rows is a few lines no library offers. */
static int png_well_compressed(const char *path)
{
	static const int chans[] = { 1, 0, 3, 1, 2, 0, 4 };
	unsigned char b[65536], rows[65536];
	uint32_t w = 0;
	size_t n, off = 8, rowlen = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0, level = -1;
	ssize_t k;
	z_stream z;

	if (fd < 0)
		return 0;
	k = read(fd, b, sizeof(b));
	close(fd);
	n = k > 0 ? (size_t)k : 0;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return 0;
	z.next_out = rows;
	z.avail_out = sizeof(rows);
	while (off + 12 <= n) {
		uint32_t len = (uint32_t)b[off] << 24 | (uint32_t)b[off + 1] << 16 |
			       (uint32_t)b[off + 2] << 8 | b[off + 3];
		const unsigned char *d = b + off + 8;

		if (len > n - off - 12)
			len = (uint32_t)(n - off - 12);	/* what we have */
		if (!memcmp(b + off + 4, "IHDR", 4) && len >= 13 &&
		    d[9] <= 6 && chans[d[9]]) {
			w = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
			    (uint32_t)d[2] << 8 | d[3];
			rowlen = 1 + ((size_t)w * (size_t)chans[d[9]] * d[8] + 7) / 8;
		} else if (!memcmp(b + off + 4, "IDAT", 4) && len >= 2) {
			if (level < 0)
				level = d[1] >> 6;
			z.next_in = (unsigned char *)d;
			z.avail_in = len;
			if (inflate(&z, Z_NO_FLUSH) < 0 || !z.avail_out)
				break;
		} else if (!memcmp(b + off + 4, "IEND", 4)) {
			break;
		}
		off += 12 + (size_t)len;
	}
	if (level >= 2 && rowlen && sizeof(rows) - z.avail_out > rowlen) {
		size_t got = sizeof(rows) - z.avail_out, i;

		for (i = 0; i < got; i += rowlen)
			if (rows[i])	/* a filtered row */
				r = 1;
	}
	inflateEnd(&z);
	return r;
}

static void compress_image(const struct hook_cfg *c, const char *in,
		     const char *ctype, const char *out,
		     struct hook_result *res)
{
	VipsImage *img = NULL, *tmp = NULL;
	const char *fmt = NULL;
	uint64_t before = file_size(in), after;
	char why[200];
	int rc = 0, pages = 1;

	if (!strcmp(ctype, "image/jpeg"))
		fmt = "jpeg";
	else if (!strcmp(ctype, "image/png") && c->png_lossless)
		fmt = "png";
	else if (!strcmp(ctype, "image/webp"))
		fmt = "webp";
	if (!fmt) {
		snprintf(res->text, sizeof(res->text),
			 "passed through: %s is not recompressed", ctype);
		return;
	}
	if (!strcmp(fmt, "png") && png_well_compressed(in)) {
		snprintf(res->text, sizeof(res->text),
			 "passed through: PNG already filtered and deflated at zlib level 6 or more");
		return;
	}
	pthread_once(&vips_once, vips_setup);
	if (!vips_ready) {
		snprintf(res->text, sizeof(res->text),
			 "failed: libvips is not available");
		return;
	}
	/* streaming unless pixels must move (rotation, resize) */
	img = vips_image_new_from_file(in, "access",
				       c->max_dimension || c->strip_metadata ?
				       VIPS_ACCESS_RANDOM :
				       VIPS_ACCESS_SEQUENTIAL,
				       "fail_on", VIPS_FAIL_ON_WARNING, NULL);
	rc = img ? 0 : -1;
	if (!rc && c->max_dimension &&
	    (img->Xsize > c->max_dimension || img->Ysize > c->max_dimension)) {
		/* fits the box, upright (thumbnail applies the orientation) */
		rc = vips_thumbnail_image(img, &tmp, c->max_dimension, "height",
					  c->max_dimension, "size",
					  VIPS_SIZE_DOWN, NULL);
		g_object_unref(img);
		img = rc ? NULL : tmp;
		tmp = NULL;
	}
	if (!rc && vips_image_get_typeof(img, "n-pages") &&
	    !vips_image_get_int(img, "n-pages", &pages) && pages > 1) {
		g_object_unref(img);
		snprintf(res->text, sizeof(res->text),
			 "passed through: animated %s (%d frames)", fmt, pages);
		return;
	}
	if (!rc && c->strip_metadata) {
		/* the orientation goes into the pixels, then every EXIF,
		 * XMP and IPTC field; the ICC profile stays. (libvips's own
		 * strip would drop the profile too; it still writes a minimal
		 * EXIF block: size, resolution, orientation 1.) */
		rc = vips_autorot(img, &tmp, NULL);
		g_object_unref(img);
		img = NULL;
		if (!rc) {
			rc = vips_copy(tmp, &img, NULL);
			g_object_unref(tmp);
			tmp = NULL;
		}
		if (!rc) {
			char **f = vips_image_get_fields(img);
			int i;

			for (i = 0; f && f[i]; i++)
				if (!strncmp(f[i], "exif-", 5) ||
				    !strncmp(f[i], "xmp-", 4) ||
				    !strncmp(f[i], "iptc-", 5) ||
				    !strcmp(f[i], "orientation"))
					vips_image_remove(img, f[i]);
			g_strfreev(f);
		}
	}
	if (!rc && !strcmp(fmt, "jpeg"))
		rc = vips_jpegsave(img, out, "Q", c->jpeg_quality,
				   "optimize_coding", TRUE, NULL);
	else if (!rc && !strcmp(fmt, "png"))
		rc = vips_pngsave(img, out, "compression", 6, "filter",
				  VIPS_FOREIGN_PNG_FILTER_ALL, NULL);
	else if (!rc)
		rc = vips_webpsave(img, out, "Q", c->webp_quality, "effort", 2,
				   NULL);
	if (img)
		g_object_unref(img);
	if (rc) {
		vips_why(why, sizeof(why));
		unlink(out);
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s", why);
		return;
	}
	after = file_size(out);
	if (!after || after >= before) {
		unlink(out);
		snprintf(res->text, sizeof(res->text),
			 "kept the original: %s re-encoded is %llu bytes, not smaller than %llu",
			 fmt, (unsigned long long)after,
			 (unsigned long long)before);
		return;
	}
	res->applied = 1;
	snprintf(res->text, sizeof(res->text), "%s%s: %llu -> %llu bytes (-%llu%%)",
		 fmt, !strcmp(fmt, "png") ? " lossless" : "",
		 (unsigned long long)before, (unsigned long long)after,
		 (unsigned long long)((before - after) * 100 / before));
}

/* ---- exec: hooks ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* token with every {in} and {out} replaced. */
static char *expand(const char *tok, const char *in, const char *out)
{
	struct buf b;

	buf_init(&b, 0);
	while (*tok) {
		if (!strncmp(tok, "{in}", 4)) {
			buf_adds(&b, in);
			tok += 4;
		} else if (!strncmp(tok, "{out}", 5)) {
			buf_adds(&b, out);
			tok += 5;
		} else {
			buf_add(&b, tok++, 1);
		}
	}
	if (buf_add(&b, "", 1)) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

static void run_exec(const struct hook_cfg *c, const char *in,
		     const char *out, struct hook_result *res)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char **argv = NULL, said[160] = "";
	size_t nsaid = 0;
	int pfd[2] = { -1, -1 }, n = 0, i, status = 0, done = 0, killed = 0;
	int64_t deadline = now_ms() + (int64_t)c->timeout_s * 1000;
	pid_t pid;

	while (c->argv[n])
		n++;
	argv = calloc((size_t)n + 1, sizeof(*argv));
	for (i = 0; argv && i < n; i++)
		if (!(argv[i] = expand(c->argv[i], in, out)))
			break;
	if (!argv || i < n || pipe2(pfd, O_CLOEXEC)) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: cannot start %s", c->name);
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	i = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	pfd[1] = -1;
	if (i) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s: %s", argv[0], strerror(i));
		goto out;
	}
	/* collect its output (the first bytes, for the journal) until it
	 * exits or its time is up */
	while (!done) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int64_t left = deadline - now_ms();
		pid_t w;

		if (left <= 0) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			killed = done = 1;
			break;
		}
		if (pfd[0] >= 0 && poll(&p, 1, left > 100 ? 100 : (int)left) > 0) {
			char tmp[512];
			ssize_t k = read(pfd[0], tmp, sizeof(tmp));

			if (k <= 0) {
				close(pfd[0]);
				pfd[0] = -1;
			} else if (nsaid < sizeof(said) - 1) {
				size_t m = sizeof(said) - 1 - nsaid;

				memcpy(said + nsaid, tmp, (size_t)k < m ? (size_t)k : m);
				nsaid += (size_t)k < m ? (size_t)k : m;
				said[nsaid] = '\0';
			}
		} else if (pfd[0] < 0) {
			struct timespec ts = { 0, 10 * 1000000 };

			nanosleep(&ts, NULL);
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			done = 1;
	}
	for (i = 0; said[i]; i++)	/* one line for the journal */
		if (said[i] == '\n' || said[i] == '\r' || said[i] == '\t')
			said[i] = ' ';
	if (killed) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s killed after %d s", c->name,
			 c->timeout_s);
	} else if (WIFSIGNALED(status)) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s died of signal %d%s%s",
			 c->name, WTERMSIG(status), *said ? ": " : "", said);
	} else if (WEXITSTATUS(status)) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s exited with %d%s%s", c->name,
			 WEXITSTATUS(status), *said ? ": " : "", said);
	} else if (!file_size(out)) {
		snprintf(res->text, sizeof(res->text),
			 "failed, original kept: %s wrote no output to {out}",
			 c->name);
	} else {
		res->applied = 1;
		snprintf(res->text, sizeof(res->text), "%s: %llu -> %llu bytes",
			 c->name, (unsigned long long)file_size(in),
			 (unsigned long long)file_size(out));
	}
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	for (i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
	if (!res->applied)
		unlink(out);
}

void hook_run(const struct hook_cfg *c, const char *in_path,
	      const char *ctype, char *out_path, size_t cap,
	      struct hook_result *res)
{
	memset(res, 0, sizeof(*res));
	snprintf(out_path, cap, "%s.hook-out", in_path);
	unlink(out_path);
	if (!c || c->kind == HOOK_NONE)
		return;
	if (c->kind == HOOK_COMPRESS)
		compress_image(c, in_path, ctype, out_path, res);
	else
		run_exec(c, in_path, out_path, res);
}
