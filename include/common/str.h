/* str.h - strings, percent-encoding, hex, times and object-key helpers.
 * Owns nothing. Calls: libc. All functions are thread-safe.
 * One URI encoder (unreserved set only) serves SigV4, REST paths and
 * copy-source headers (API-NOTES E).
 */
#ifndef MFS_COMMON_STR_H
#define MFS_COMMON_STR_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* malloc'd formatted string, NULL on allocation failure. */
char *str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* malloc'd copy of n bytes plus a NUL. */
char *str_ndup(const char *s, size_t n);
int str_starts(const char *s, const char *prefix);
int str_ends(const char *s, const char *suffix);
/* 64 random bits for a name nobody else uses (a temporary): getrandom,
 * or the clock, the pid and a counter before the kernel has entropy. */
uint64_t str_unique64(void);

/* Percent-encode every byte except A-Z a-z 0-9 - . _ ~ (and '/' when
 * keep_slash), uppercase hex. Appends to out. */
enum mfs_err str_uri_encode(struct buf *out, const char *s, size_t n,
			    int keep_slash);
/* base followed by path percent-encoded ('/' kept), malloc'd; NULL when
 * memory ran out. */
char *str_uri_join(const char *base, const char *path);
/* Decode %XX (and '+' as space when plus_space) into a malloc'd string.
 * MFS_EPROTO for a malformed escape or an embedded NUL. */
enum mfs_err str_uri_decode(const char *s, size_t n, int plus_space,
			    char **out);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void str_hex(const unsigned char *p, size_t n, char *out);
/* The value of one hex digit, -1 for any other character. */
int str_hexval(char c);

/* "2024-05-01T10:00:00.000Z" -> ns since the epoch. */
enum mfs_err str_parse_iso8601(const char *s, int64_t *ns);
/* "Wed, 01 May 2024 10:00:00 GMT" -> ns since the epoch. */
enum mfs_err str_parse_http_date(const char *s, int64_t *ns);
/* "1714557600.123456789" or "1714557600" -> ns since the epoch. */
enum mfs_err str_parse_mtime(const char *s, int64_t *ns);
/* Seconds (a JSON number: user metadata) as nanoseconds, saturated at the
 * ends of int64_t; MFS_EINVAL for NaN. Dates parse saturated the same way
 * (a year past 2262 is INT64_MAX ns, not an overflow). */
enum mfs_err str_secs_to_ns(double secs, int64_t *ns);
/* Unsigned decimal, whole string; MFS_EINVAL otherwise. */
enum mfs_err str_parse_u64(const char *s, uint64_t *v);
/* true/false/yes/no/on/off/1/0 */
enum mfs_err str_parse_bool(const char *s, int *v);

/* Is name usable as one path component of a mounted tree? Returns NULL when
 * it is, else a reason ("empty path segment", "'..' segment", ...). */
const char *str_bad_name(const char *name, size_t n);

#endif
