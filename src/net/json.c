/* json.c - the jansson facade (json.h). struct js is jansson's json_t;
 * the facade only narrows the API and makes readers NULL-safe. Calls:
 * jansson, common. */
#include "net/json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J(v) ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))

enum mfs_err js_parse(const char *p, size_t n, struct js **out,
		      struct errbuf *eb)
{
	json_error_t je;
	json_t *j = json_loadb(p ? p : "", n, 0, &je);

	*out = (struct js *)j;
	if (!j)
		return eb_set(eb, MFS_EPROTO, "not JSON: %s (line %d)", je.text,
			      je.line);
	return MFS_OK;
}

void js_free(struct js *v)
{
	json_decref(J(v));
}

const struct js *js_get(const struct js *v, const char *key)
{
	return json_is_object(CJ(v)) ?
	       (const struct js *)json_object_get(CJ(v), key) : NULL;
}

const char *js_get_str(const struct js *o, const char *key)
{
	return js_str(js_get(o, key));
}

const char *js_str(const struct js *v)
{
	return json_is_string(CJ(v)) ? json_string_value(CJ(v)) : NULL;
}

int js_int(const struct js *v, int64_t *out)
{
	char *end;

	if (json_is_integer(CJ(v))) {
		*out = (int64_t)json_integer_value(CJ(v));
		return 0;
	}
	if (json_is_string(CJ(v)) && *json_string_value(CJ(v))) {
		long long n = strtoll(json_string_value(CJ(v)), &end, 10);

		if (!*end) {
			*out = n;
			return 0;
		}
	}
	return -1;
}

int js_num(const struct js *v, double *out)
{
	if (!json_is_number(CJ(v)))
		return -1;
	*out = json_number_value(CJ(v));
	return 0;
}

int js_is_obj(const struct js *v)
{
	return json_is_object(CJ(v));
}

int js_is_arr(const struct js *v)
{
	return json_is_array(CJ(v));
}

int js_is_null(const struct js *v)
{
	return json_is_null(CJ(v));
}

int js_is_true(const struct js *v)
{
	return json_is_true(CJ(v));
}

size_t js_len(const struct js *v)
{
	return json_is_array(CJ(v)) ? json_array_size(CJ(v)) : 0;
}

const struct js *js_at(const struct js *v, size_t i)
{
	return json_is_array(CJ(v)) ?
	       (const struct js *)json_array_get(CJ(v), i) : NULL;
}

struct js *js_obj(void)
{
	return (struct js *)json_object();
}

struct js *js_arr(void)
{
	return (struct js *)json_array();
}

enum mfs_err js_set(struct js *o, const char *key, struct js *child)
{
	if (!o || !child) {
		json_decref(J(child));
		return MFS_ENOMEM;
	}
	return json_object_set_new(J(o), key, J(child)) ? MFS_ENOMEM : MFS_OK;
}

enum mfs_err js_set_str(struct js *o, const char *key, const char *s)
{
	return js_set(o, key, (struct js *)json_string(s));
}

enum mfs_err js_set_int(struct js *o, const char *key, int64_t n)
{
	return js_set(o, key, (struct js *)json_integer((json_int_t)n));
}

enum mfs_err js_set_bool(struct js *o, const char *key, int b)
{
	return js_set(o, key, (struct js *)json_boolean(b));
}

enum mfs_err js_push_str(struct js *a, const char *s)
{
	json_t *v = json_string(s);

	if (!a || !v || json_array_append_new(J(a), v))
		return MFS_ENOMEM;
	return MFS_OK;
}

char *js_dump(const struct js *v, int sorted)
{
	return v ? json_dumps(CJ(v), JSON_COMPACT |
			      (sorted ? JSON_SORT_KEYS : 0)) : NULL;
}

int js_each(const struct js *v, js_each_cb cb, void *ud)
{
	const char *key;
	json_t *val;
	int r;

	if (!json_is_object(CJ(v)))
		return 0;
	json_object_foreach(J(v), key, val) {
		r = cb(ud, key, (const struct js *)val);
		if (r)
			return r;
	}
	return 0;
}

const char *js_scalar(const struct js *v, char *buf, size_t cap)
{
	if (json_is_string(CJ(v)))
		return json_string_value(CJ(v));
	if (json_is_integer(CJ(v)))
		snprintf(buf, cap, "%lld",
			 (long long)json_integer_value(CJ(v)));
	else if (json_is_real(CJ(v)))
		snprintf(buf, cap, "%.17g", json_real_value(CJ(v)));
	else if (json_is_boolean(CJ(v)))
		snprintf(buf, cap, "%s", json_is_true(CJ(v)) ? "true" : "false");
	else
		return NULL;
	return buf;
}

enum mfs_err js_set_real(struct js *o, const char *key, double d)
{
	return js_set(o, key, (struct js *)json_real(d));
}

enum mfs_err js_push(struct js *a, struct js *child)
{
	if (!a || !child || json_array_append_new(J(a), J(child))) {
		json_decref(J(child));
		return MFS_ENOMEM;
	}
	return MFS_OK;
}
