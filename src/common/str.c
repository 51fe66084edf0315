/* str.c - string helpers, percent-encoding, time parsing. Calls: libc. */
#include "common/str.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

char *str_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *str_ndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int str_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

char *str_uri_join(const char *base, const char *path)
{
	struct buf b;

	buf_init(&b, 0);
	if (buf_adds(&b, base) || str_uri_encode(&b, path, strlen(path), 1)) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b);
}

enum mfs_err str_uri_encode(struct buf *out, const char *s, size_t n,
			    int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	enum mfs_err rc = MFS_OK;
	size_t i;

	for (i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = buf_add(out, &s[i], 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			rc = buf_add(out, e, 3);
		}
	}
	return rc;
}

int str_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum mfs_err str_uri_decode(const char *s, size_t n, int plus_space,
			    char **out)
{
	char *p = malloc(n + 1);
	size_t i, j = 0;

	*out = NULL;
	if (!p)
		return MFS_ENOMEM;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 1 < n ? str_hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? str_hexval(s[i + 2]) : -1;

			/* %00 would cut the name short: refuse it too. */
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(p);
				return MFS_EPROTO;
			}
			p[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus_space) {
			p[j++] = ' ';
		} else if (s[i] == '\0') {
			free(p);
			return MFS_EPROTO;
		} else {
			p[j++] = s[i];
		}
	}
	p[j] = '\0';
	*out = p;
	return MFS_OK;
}

void str_hex(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static enum mfs_err digits(const char **sp, int n, int *v)
{
	const char *s = *sp;
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return MFS_EPROTO;
		*v = *v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	return MFS_OK;
}

static enum mfs_err expect(const char **sp, char c)
{
	if (**sp != c)
		return MFS_EPROTO;
	(*sp)++;
	return MFS_OK;
}

/* sec seconds and frac nanoseconds (0 <= frac < 1e9) as nanoseconds,
 * saturated at the ends of int64_t (years before 1678 or after 2262). */
static int64_t sat_ns(int64_t sec, int64_t frac)
{
	int64_t ns;

	if (__builtin_mul_overflow(sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

enum mfs_err str_secs_to_ns(double secs, int64_t *ns)
{
	/* 2^63 ns is 9223372036.854775808 s; the cast of a double beyond
	 * int64_t is undefined behaviour, so compare first */
	if (secs != secs)
		return MFS_EINVAL;	/* NaN */
	if (secs >= 9223372036.0)
		*ns = INT64_MAX;
	else if (secs <= -9223372036.0)
		*ns = INT64_MIN;
	else
		*ns = (int64_t)(secs * 1e9);
	return MFS_OK;
}

enum mfs_err str_parse_iso8601(const char *s, int64_t *ns)
{
	struct tm tm = { 0 };
	int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
	int64_t frac = 0, scale = 1000000000;
	enum mfs_err rc;

	rc = digits(&s, 4, &y);
	if (!rc) rc = expect(&s, '-');
	if (!rc) rc = digits(&s, 2, &mo);
	if (!rc) rc = expect(&s, '-');
	if (!rc) rc = digits(&s, 2, &d);
	if (!rc) rc = expect(&s, 'T');
	if (!rc) rc = digits(&s, 2, &h);
	if (!rc) rc = expect(&s, ':');
	if (!rc) rc = digits(&s, 2, &mi);
	if (!rc) rc = expect(&s, ':');
	if (!rc) rc = digits(&s, 2, &sec);
	if (rc)
		return rc;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (*s - '0') * scale;
			}
			s++;
		}
	}
	if (*s != 'Z' && *s != '\0' && strcmp(s, "+00:00"))
		return MFS_EPROTO;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return MFS_EPROTO;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*ns = sat_ns((int64_t)timegm(&tm), frac);
	return MFS_OK;
}

enum mfs_err str_parse_http_date(const char *s, int64_t *ns)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	if (!end || *end)
		return MFS_EPROTO;
	*ns = sat_ns((int64_t)timegm(&tm), 0);
	return MFS_OK;
}

enum mfs_err str_parse_mtime(const char *s, int64_t *ns)
{
	int64_t sec = 0, frac = 0, scale = 1000000000;
	int neg = 0, nd = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	while (*s >= '0' && *s <= '9') {
		if (sec > INT64_MAX / 10 / 1000000000)
			return MFS_EINVAL;
		sec = sec * 10 + (*s++ - '0');
		nd++;
	}
	if (!nd)
		return MFS_EINVAL;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (*s - '0') * scale;
			}
			s++;
		}
	}
	if (*s)
		return MFS_EINVAL;
	*ns = sat_ns(neg ? -sec : sec, 0);
	/* the fraction saturates too: 9223372036.999 is past INT64_MAX ns */
	if (!neg)
		*ns = *ns > INT64_MAX - frac ? INT64_MAX : *ns + frac;
	else
		*ns = *ns < INT64_MIN + frac ? INT64_MIN : *ns - frac;
	return MFS_OK;
}

enum mfs_err str_parse_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return MFS_EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return MFS_EINVAL;
		if (x > (UINT64_MAX - 9) / 10)
			return MFS_EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return MFS_OK;
}

enum mfs_err str_parse_bool(const char *s, int *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*v = 1;
			return MFS_OK;
		}
		if (!strcasecmp(s, no[i])) {
			*v = 0;
			return MFS_OK;
		}
	}
	return MFS_EINVAL;
}

const char *str_bad_name(const char *name, size_t n)
{
	if (n == 0)
		return "empty path segment ('//' in the key)";
	if (n == 1 && name[0] == '.')
		return "'.' path segment";
	if (n == 2 && name[0] == '.' && name[1] == '.')
		return "'..' path segment";
	if (n > NAME_MAX)
		return "segment longer than 255 bytes";
	if (memchr(name, '\0', n))
		return "NUL byte in name";
	return NULL;
}

uint64_t str_unique64(void)
{
	static unsigned long seq;
	uint64_t r = 0;
	struct timespec ts;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 16) ^
	       __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
}
