/* json.h - a thin facade over jansson for the JSON APIs (Supabase Storage,
 * later ImageKit). Owns: parsed and built values. Calls: jansson, common.
 * Values are not shared between threads; parsing is thread-safe.
 * Readers are NULL-safe: a missing or wrongly typed value reads as absent
 * (every field may be null or missing on some server version: API-NOTES E).
 */
#ifndef MFS_NET_JSON_H
#define MFS_NET_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct js;	/* one JSON value */

/* Parse n bytes. MFS_EPROTO with the parser's message on bad input. */
enum mfs_err js_parse(const char *p, size_t n, struct js **out,
		      struct errbuf *eb);
/* Release a value from js_parse or a builder (NULL is fine). */
void js_free(struct js *v);

/* Member key of an object, NULL when absent or v is not an object. */
const struct js *js_get(const struct js *v, const char *key);
/* The string of a string value, else NULL. */
const char *js_str(const struct js *v);
/* The string member key of object o, else NULL. */
const char *js_get_str(const struct js *o, const char *key);
/* Integer of a number (or a decimal string: statusCode "404"); 0 if ok. */
int js_int(const struct js *v, int64_t *out);
/* A number's value (integer or real); 0 if ok. */
int js_num(const struct js *v, double *out);
int js_is_obj(const struct js *v);
int js_is_arr(const struct js *v);
int js_is_null(const struct js *v);
int js_is_true(const struct js *v);
/* Arrays: length (0 for a non-array) and element i. */
size_t js_len(const struct js *v);
const struct js *js_at(const struct js *v, size_t i);

/* Building: a new object or array; setters return MFS_ENOMEM on failure
 * and take ownership of child values. */
struct js *js_obj(void);
struct js *js_arr(void);
enum mfs_err js_set_str(struct js *o, const char *key, const char *s);
enum mfs_err js_set_int(struct js *o, const char *key, int64_t n);
enum mfs_err js_set_bool(struct js *o, const char *key, int b);
enum mfs_err js_set(struct js *o, const char *key, struct js *child);
enum mfs_err js_push_str(struct js *a, const char *s);
/* Members of an object in order; a non-zero return of cb stops and is
 * returned. 0 for a non-object. */
typedef int (*js_each_cb)(void *ud, const char *key, const struct js *val);
int js_each(const struct js *v, js_each_cb cb, void *ud);
/* A scalar as text: a string as it is, a number or boolean formatted into
 * buf; NULL for null, arrays and objects. */
const char *js_scalar(const struct js *v, char *buf, size_t cap);
enum mfs_err js_set_real(struct js *o, const char *key, double d);
/* Append child to array a (takes ownership). */
enum mfs_err js_push(struct js *a, struct js *child);
/* Compact text, keys sorted when sorted; malloc'd, NULL on failure. */
char *js_dump(const struct js *v, int sorted);

#endif
