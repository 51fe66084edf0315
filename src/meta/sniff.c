/* sniff.c - content type sniffing with libmagic. lock guards cookie. */
#include "meta/sniff.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <magic.h>

struct sniff {
	pthread_mutex_t lock;
	magic_t cookie;		/* guarded by lock */
};

/* Extension -> type, consulted only when the bytes are not conclusive. */
static const struct {
	const char *ext;
	const char *type;
} by_ext[] = {
	{ "html", "text/html" }, { "htm", "text/html" },
	{ "css", "text/css" }, { "js", "text/javascript" },
	{ "mjs", "text/javascript" }, { "json", "application/json" },
	{ "csv", "text/csv" }, { "txt", "text/plain" },
	{ "md", "text/markdown" }, { "xml", "application/xml" },
	{ "svg", "image/svg+xml" }, { "webmanifest", "application/manifest+json" },
	{ "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "png", "image/png" }, { "gif", "image/gif" },
	{ "webp", "image/webp" }, { "avif", "image/avif" },
	{ "heic", "image/heic" }, { "tif", "image/tiff" },
	{ "tiff", "image/tiff" }, { "ico", "image/vnd.microsoft.icon" },
	{ "mp4", "video/mp4" }, { "webm", "video/webm" },
	{ "mov", "video/quicktime" }, { "mp3", "audio/mpeg" },
	{ "pdf", "application/pdf" }, { "woff2", "font/woff2" },
	{ "woff", "font/woff" },
};

enum mfs_err sniff_new(struct sniff **out, struct errbuf *eb)
{
	struct sniff *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return MFS_ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR |
			       MAGIC_NO_CHECK_COMPRESS);
	if (!s->cookie || magic_load(s->cookie, NULL)) {
		enum mfs_err rc = eb_set(eb, MFS_EIO,
					 "cannot load the libmagic database: %s",
					 s->cookie ? magic_error(s->cookie)
						   : "out of memory");

		sniff_free(s);
		return rc;
	}
	*out = s;
	return MFS_OK;
}

void sniff_free(struct sniff *s)
{
	if (!s)
		return;
	if (s->cookie)
		magic_close(s->cookie);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const char *ext_type(const char *name)
{
	const char *dot = name ? strrchr(name, '.') : NULL;
	size_t i;

	if (!dot || strchr(dot, '/'))
		return NULL;
	for (i = 0; i < sizeof(by_ext) / sizeof(by_ext[0]); i++)
		if (!strcasecmp(dot + 1, by_ext[i].ext))
			return by_ext[i].type;
	return NULL;
}

static int textual(const char *type)
{
	return !strncmp(type, "text/", 5) || strstr(type, "json") ||
	       strstr(type, "xml");
}

/* Bytes that say nothing specific: let the extension decide. */
static int generic(const char *t)
{
	return !t || !strcmp(t, "application/octet-stream") ||
	       !strcmp(t, "text/plain") || !strcmp(t, "application/x-empty") ||
	       !strcmp(t, "inode/x-empty") || !strncmp(t, "text/x-", 7);
}

/* The image formats a media store is mostly made of, told by their first
 * bytes exactly as libmagic's rules tell them (file 5.44: jpeg, images,
 * riff); libmagic tries hundreds of rules under one lock, and an upload
 * worker sniffed every file. NULL: ask libmagic. */
static const char *known_image(const unsigned char *p, size_t n)
{
	static const unsigned char png[16] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
		'I', 'H', 'D', 'R',
	};

	if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return "image/jpeg";
	if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
		return "image/gif";
	if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
		return "image/webp";
	if (n >= sizeof(png) && !memcmp(p, png, sizeof(png)))
		return "image/png";
	return NULL;
}

void sniff_type(struct sniff *s, const void *p, size_t n, const char *name,
		char *out, size_t cap)
{
	const char *t = NULL, *e;
	char got[128] = "";

	if (s && n && (t = known_image(p, n)))
		snprintf(got, sizeof(got), "%s", t);
	else if (s && n) {
		pthread_mutex_lock(&s->lock);
		t = magic_buffer(s->cookie, p, n);
		if (t)
			snprintf(got, sizeof(got), "%s", t);
		pthread_mutex_unlock(&s->lock);
	}
	t = got[0] ? got : NULL;
	e = ext_type(name);
	/* text bytes may be told apart by a textual extension (.css, .json,
	 * .svg), never turned into a binary type by one (text named .jpg) */
	if (e && t && !strncmp(t, "text/", 5) && !textual(e))
		e = NULL;
	if (generic(t) && e)
		t = e;
	else if (!t || !strcmp(t, "application/x-empty") ||
		 !strcmp(t, "inode/x-empty"))
		t = "application/octet-stream";
	snprintf(out, cap, "%s", t);
}

const char *sniff_ext(const char *type)
{
	static const char *const map[][2] = {
		{ "image/jpeg", "jpg" }, { "image/png", "png" },
		{ "image/gif", "gif" }, { "image/webp", "webp" },
		{ "image/tiff", "tiff" }, { "image/avif", "avif" },
		{ "image/heic", "heic" }, { "image/heif", "heif" },
		{ "image/bmp", "bmp" }, { "image/svg+xml", "svg" },
		{ "image/x-icon", "ico" }, { "image/vnd.microsoft.icon", "ico" },
		{ "video/mp4", "mp4" }, { "video/quicktime", "mov" },
		{ "video/webm", "webm" }, { "video/x-matroska", "mkv" },
		{ "audio/mpeg", "mp3" }, { "audio/ogg", "ogg" },
		{ "application/pdf", "pdf" }, { "application/json", "json" },
		{ "text/plain", "txt" }, { "text/html", "html" },
		{ "text/csv", "csv" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(type, map[i][0]))
			return map[i][1];
	return "bin";
}
