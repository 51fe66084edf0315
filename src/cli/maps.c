/* maps.c - ID maps (maps.h). Written by hand: a string -> string hash is
 * twenty lines, and the CSV subset (a header, quoted fields with "" for a
 * quote, commas) is all the maps the scenarios use. */
#include "cli/maps.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/str.h"
#include "net/json.h"

struct idmap {
	char *name;
	char **keys;		/* slots: NULL or key\0value\0(col\0val\0)*\0 */
	size_t cap, n;		/* cap a power of two */
	const char *file;	/* borrowed during load, for messages */
	char *miss, *missing;	/* user-named reasons (miss=, missing=) */
};

/* The extra columns of a record being loaded: names and values borrowed. */
struct cols {
	const char *name[64], *val[64];
	int n;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static char **slot(const struct idmap *m, const char *key)
{
	size_t i = (size_t)fnv1a(key) & (m->cap - 1);

	while (m->keys[i] && strcmp(m->keys[i], key))
		i = (i + 1) & (m->cap - 1);
	return &m->keys[i];
}

static enum mfs_err grow(struct idmap *m)
{
	struct idmap t = *m;
	size_t i;

	t.cap = m->cap ? m->cap * 2 : 1024;
	t.keys = calloc(t.cap, sizeof(*t.keys));
	if (!t.keys)
		return MFS_ENOMEM;
	for (i = 0; i < m->cap; i++)
		if (m->keys[i])
			*slot(&t, m->keys[i]) = m->keys[i];
	free(m->keys);
	*m = t;
	return MFS_OK;
}

static enum mfs_err put(struct idmap *m, const char *key, const char *val,
			const struct cols *cl, const char *where,
			struct errbuf *eb)
{
	size_t kl = strlen(key), vl = strlen(val), extra = 1, off;
	char **s, *e;
	int i;

	if (!*key)
		return eb_set(eb, MFS_EINVAL, "%s%s: an empty key", m->file,
			      where);
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m))
		return MFS_ENOMEM;
	s = slot(m, key);
	if (*s) {
		if (!strcmp(*s + kl + 1, val))
			return MFS_OK;
		return eb_set(eb, MFS_EINVAL,
			      "%s%s: key '%s' maps to both '%s' and '%s'",
			      m->file, where, key, *s + kl + 1, val);
	}
	for (i = 0; cl && i < cl->n; i++)
		extra += strlen(cl->name[i]) + strlen(cl->val[i]) + 2;
	e = malloc(kl + vl + 2 + extra);
	if (!e)
		return MFS_ENOMEM;
	memcpy(e, key, kl + 1);
	memcpy(e + kl + 1, val, vl + 1);
	off = kl + vl + 2;
	for (i = 0; cl && i < cl->n; i++) {
		size_t a = strlen(cl->name[i]) + 1, b = strlen(cl->val[i]) + 1;

		memcpy(e + off, cl->name[i], a);
		memcpy(e + off + a, cl->val[i], b);
		off += a + b;
	}
	e[off] = '\0';
	*s = e;
	m->n++;
	return MFS_OK;
}

const char *idmap_get(const struct idmap *m, const char *key)
{
	char **s;

	if (!m->cap)
		return NULL;
	s = slot(m, key);
	return *s ? *s + strlen(*s) + 1 : NULL;
}

const char *idmap_col(const struct idmap *m, const char *key,
		      const char *col)
{
	const char *e, *v;

	if (!m->cap)
		return NULL;
	e = *slot(m, key);
	if (!e)
		return NULL;
	v = e + strlen(e) + 1;
	if (!col)
		return v;
	for (e = v + strlen(v) + 1; *e; e = v + strlen(v) + 1) {
		v = e + strlen(e) + 1;
		if (!strcmp(e, col))
			return v;
	}
	return NULL;
}

int idmap_each_col(const struct idmap *m, const char *key,
		   int (*cb)(void *ud, const char *col, const char *val),
		   void *ud)
{
	const char *e, *v;

	if (!m->cap || !(e = *slot(m, key)))
		return 0;
	v = e + strlen(e) + 1;
	for (e = v + strlen(v) + 1; *e; e = v + strlen(v) + 1) {
		v = e + strlen(e) + 1;
		if (cb(ud, e, v))
			return 1;
	}
	return 0;
}

int idmap_each(const struct idmap *m,
	       int (*cb)(void *ud, const char *key, const char *val), void *ud)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->keys[i] &&
		    cb(ud, m->keys[i], m->keys[i] + strlen(m->keys[i]) + 1))
			return 1;
	return 0;
}

const char *idmap_miss_reason(const struct idmap *m)
{
	return m->miss;
}

const char *idmap_missing_reason(const struct idmap *m)
{
	return m->missing;
}

struct idmap *idmap_new(const char *name)
{
	struct idmap *m = calloc(1, sizeof(*m));

	if (m && !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	if (m)
		m->file = "";
	return m;
}

enum mfs_err idmap_put(struct idmap *m, const char *key, const char *val,
		       struct errbuf *eb)
{
	return put(m, key, val, NULL, "", eb);
}

const char *idmap_name(const struct idmap *m)
{
	return m->name;
}

size_t idmap_count(const struct idmap *m)
{
	return m->n;
}

void idmap_free(struct idmap *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->name);
	free(m->miss);
	free(m->missing);
	free(m);
}

static enum mfs_err read_file(const char *path, char **out, size_t *len,
			      struct errbuf *eb)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	*out = NULL;
	if (!f)
		return eb_set(eb, MFS_ENOTFOUND, "cannot open map %s: %s",
			      path, strerror(errno));
	do {
		if (n + 65536 + 1 > cap) {
			char *np = realloc(p, cap = (n + 65536 + 1) * 2);

			if (!np) {
				free(p);
				fclose(f);
				return MFS_ENOMEM;
			}
			p = np;
		}
		r = fread(p + n, 1, 65536, f);
		n += r;
	} while (r);
	if (ferror(f)) {
		free(p);
		fclose(f);
		return eb_set(eb, MFS_EIO, "reading map %s failed", path);
	}
	fclose(f);
	p[n] = '\0';
	*out = p;
	*len = n;
	return MFS_OK;
}

struct obj_load {
	struct idmap *m;
	struct errbuf *eb;
	enum mfs_err rc;
};

static int obj_member(void *ud, const char *key, const struct js *val)
{
	struct obj_load *l = ud;
	char num[64], where[600];
	const char *v = js_scalar(val, num, sizeof(num));

	snprintf(where, sizeof(where), " (key '%.500s')", key);
	if (!v)
		l->rc = eb_set(l->eb, MFS_EINVAL,
			       "%s: the value of '%s' is not a string or number",
			       l->m->file, key);
	else
		l->rc = put(l->m, key, v, NULL, where, l->eb);
	return l->rc != MFS_OK;
}

/* The scalar members of one element of a JSON array map. */
struct elem_cols {
	struct cols c;
	char num[64][32];
};

static int elem_col(void *ud, const char *key, const struct js *val)
{
	struct elem_cols *ec = ud;
	const char *v;

	if (ec->c.n == 64)
		return 1;
	v = js_scalar(val, ec->num[ec->c.n], sizeof(ec->num[0]));
	if (v) {
		ec->c.name[ec->c.n] = key;
		ec->c.val[ec->c.n++] = v;
	}
	return 0;
}

static enum mfs_err load_json(struct idmap *m, const char *p, size_t n,
			      const char *kf, const char *vf,
			      struct errbuf *eb)
{
	struct js *j = NULL;
	enum mfs_err rc = js_parse(p, n, &j, eb);
	size_t i;

	if (rc) {
		eb_prefix(eb, "map %s", m->file);
		return rc;
	}
	if (js_is_obj(j)) {
		struct obj_load l = { m, eb, MFS_OK };

		js_each(j, obj_member, &l);
		rc = l.rc;
	} else if (js_is_arr(j)) {
		if (!kf || !vf) {
			rc = eb_set(eb, MFS_EINVAL,
				    "map %s is a JSON array: name its fields (--map %s=%s,key=FIELD,value=FIELD)",
				    m->file, m->name, m->file);
			goto out;
		}
		for (i = 0; !rc && i < js_len(j); i++) {
			const struct js *e = js_at(j, i);
			char kb[64], vb[64], where[64];
			const char *k = js_scalar(js_get(e, kf), kb, sizeof(kb));
			const char *v = js_scalar(js_get(e, vf), vb, sizeof(vb));

			struct elem_cols ec;

			ec.c.n = 0;
			snprintf(where, sizeof(where), " (element %zu)", i);
			js_each(e, elem_col, &ec);
			if (!k || !v)
				rc = eb_set(eb, MFS_EINVAL,
					    "map %s element %zu has no '%s' or no '%s' (string or number)",
					    m->file, i, kf, vf);
			else
				rc = put(m, k, v, &ec.c, where, eb);
		}
	} else {
		rc = eb_set(eb, MFS_EINVAL,
			    "map %s: a JSON object or an array of objects, please",
			    m->file);
	}
out:
	js_free(j);
	return rc;
}

/* Split one CSV record starting at *pp into fields (in place); *pp moves
 * past its line end. Returns the number of fields, -1 on a bad quote. */
static int csv_fields(char **pp, char **f, int maxf, int *lines)
{
	char *p = *pp, *w;
	int n = 0, quoted;

	for (;;) {
		quoted = *p == '"';
		if (quoted)
			p++;
		w = p;
		if (n < maxf)
			f[n] = w;
		n++;
		for (;;) {
			if (quoted && *p == '"' && p[1] == '"') {
				*w++ = '"';
				p += 2;
			} else if (quoted && *p == '"') {
				quoted = 0;
				p++;
			} else if (quoted && *p) {
				if (*p == '\n')
					(*lines)++;
				*w++ = *p++;
			} else if (quoted) {
				return -1;	/* unterminated */
			} else if (*p == ',' || *p == '\n' || *p == '\r' ||
				   !*p) {
				break;
			} else {
				*w++ = *p++;
			}
		}
		if (*p == ',') {
			*w = '\0';
			p++;
			continue;
		}
		if (*p == '\r')
			*p++ = '\0';
		if (*p == '\n')
			p++;
		*w = '\0';
		break;
	}
	*pp = p;
	return n;
}

#define MAX_COLS 64

static enum mfs_err load_csv(struct idmap *m, char *p, const char *kf,
			     const char *vf, struct errbuf *eb)
{
	char *f[MAX_COLS], *hdr[MAX_COLS], where[64];
	int n, ncol, kc = 0, vc = 1, line = 1, i;
	enum mfs_err rc = MFS_OK;
	struct cols cl;

	if (!strncmp(p, "\xef\xbb\xbf", 3))
		p += 3;		/* a BOM from a spreadsheet */
	ncol = csv_fields(&p, f, MAX_COLS, &line);
	if (ncol < 2 || ncol > MAX_COLS)
		return eb_set(eb, MFS_EINVAL,
			      "map %s line 1: a header of 2 to %d columns, please",
			      m->file, MAX_COLS);
	for (i = 0; i < ncol; i++)
		hdr[i] = f[i];	/* in place in the file's buffer */
	if (kf || vf) {
		kc = vc = -1;
		for (i = 0; i < ncol; i++) {
			if (kf && !strcmp(f[i], kf))
				kc = i;
			if (vf && !strcmp(f[i], vf))
				vc = i;
		}
		if (!kf)
			kc = 0;
		if (!vf)
			vc = 1;
		if (kc < 0 || vc < 0)
			return eb_set(eb, MFS_EINVAL,
				      "map %s line 1: no column '%s' in the header",
				      m->file, kc < 0 ? kf : vf);
	}
	while (!rc && *p) {
		line++;
		n = csv_fields(&p, f, MAX_COLS, &line);
		if (n == 1 && !*f[0])
			continue;	/* a blank line */
		if (n < 0)
			return eb_set(eb, MFS_EINVAL,
				      "map %s line %d: a quote is not closed",
				      m->file, line);
		if (n != ncol)
			return eb_set(eb, MFS_EINVAL,
				      "map %s line %d: %d fields, the header has %d",
				      m->file, line, n, ncol);
		snprintf(where, sizeof(where), " line %d", line);
		cl.n = ncol;
		for (i = 0; i < ncol; i++) {
			cl.name[i] = hdr[i];
			cl.val[i] = f[i];
		}
		rc = put(m, f[kc], f[vc], &cl, where, eb);
	}
	return rc;
}

enum mfs_err idmap_load(const char *arg, struct idmap **out,
			struct errbuf *eb)
{
	char *spec = strdup(arg), *eq, *file, *opt, *kf = NULL, *vf = NULL;
	char *miss = NULL, *missing = NULL;
	char *data = NULL;
	struct idmap *m = NULL;
	enum mfs_err rc = MFS_OK;
	size_t len = 0;
	const char *s;

	*out = NULL;
	if (!spec)
		return MFS_ENOMEM;
	eq = strchr(spec, '=');
	if (!eq || eq == spec) {
		rc = eb_set(eb, MFS_EINVAL,
			    "--map %s: NAME=FILE[,key=FIELD][,value=FIELD], please",
			    arg);
		goto out;
	}
	*eq = '\0';
	file = eq + 1;
	/* options start at the first ",key=" or ",value=" (a file name may
	 * hold commas) */
	for (opt = strchr(file, ','); opt; opt = strchr(opt + 1, ','))
		if (str_starts(opt + 1, "key=") || str_starts(opt + 1, "value=") ||
		    str_starts(opt + 1, "miss=") ||
		    str_starts(opt + 1, "missing="))
			break;
	while (opt) {
		char *next;

		*opt++ = '\0';
		next = strchr(opt, ',');
		if (next)
			*next = '\0';
		if (str_starts(opt, "key=")) {
			kf = opt + 4;
		} else if (str_starts(opt, "value=")) {
			vf = opt + 6;
		} else if (str_starts(opt, "miss=") && opt[5]) {
			miss = opt + 5;
		} else if (str_starts(opt, "missing=") && opt[8]) {
			missing = opt + 8;
		} else {
			rc = eb_set(eb, MFS_EINVAL,
				    "--map %s: unknown option '%s' (key=, value=, miss=REASON, missing=REASON)",
				    arg, opt);
			goto out;
		}
		opt = next;
	}
	for (s = spec; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-')) {
			rc = eb_set(eb, MFS_EINVAL,
				    "--map %s: a map name is letters, digits, '_' and '-'",
				    arg);
			goto out;
		}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(spec)) ||
	    (miss && !(m->miss = strdup(miss))) ||
	    (missing && !(m->missing = strdup(missing)))) {
		rc = MFS_ENOMEM;
		goto out;
	}
	m->file = file;
	rc = read_file(file, &data, &len, eb);
	if (rc)
		goto out;
	s = data;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s == '{' || *s == '[')
		rc = load_json(m, data, len, kf, vf, eb);
	else
		rc = load_csv(m, data, kf, vf, eb);
	m->file = "";
out:
	free(data);
	free(spec);
	if (rc) {
		idmap_free(m);
		return rc;
	}
	*out = m;
	return MFS_OK;
}
