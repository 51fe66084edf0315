/* rule.c - copy-plan rules (rule.h): a tiny pattern matcher and template
 * expander. Patterns are matched by backtracking over at most a few
 * tokens, so the cost is linear in practice. */
#include "cli/rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/maps.h"
#include "common/buf.h"
#include "common/str.h"

enum tok_kind { T_LIT, T_CAP, T_STAR, T_GLOBSTAR, T_VAR, T_MAP, T_EXT,
		T_SRCEXT };

struct tok {
	enum tok_kind kind;
	char *text;		/* literal text, capture or variable name */
	const struct idmap *map;	/* T_MAP */
	char *col;		/* T_MAP: a column of the record, or NULL */
	int cap;		/* T_VAR, T_MAP: index of the capture */
};

struct rule {
	struct tok *src, *dst;
	int nsrc, ndst;
	const char *caps[RULE_MAX_CAPS];	/* names, borrowed from src */
	int ncaps;
	int wants_ext;
};

static void toks_free(struct tok *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(t[i].text);
		free(t[i].col);
	}
	free(t);
}

void rule_free(struct rule *r)
{
	if (!r)
		return;
	toks_free(r->src, r->nsrc);
	toks_free(r->dst, r->ndst);
	free(r);
}

int rule_wants_ext(const struct rule *r)
{
	return r->wants_ext;
}

static enum mfs_err add_tok(struct tok **t, int *n, enum tok_kind kind,
			    const char *s, size_t len)
{
	struct tok *nt = realloc(*t, sizeof(**t) * (size_t)(*n + 1));

	if (!nt)
		return MFS_ENOMEM;
	*t = nt;
	memset(&nt[*n], 0, sizeof(nt[*n]));
	nt[*n].kind = kind;
	nt[*n].text = str_ndup(s, len);
	if (!nt[*n].text)
		return MFS_ENOMEM;
	(*n)++;
	return MFS_OK;
}

static int is_name(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static int find_cap(const struct rule *r, const char *name, size_t n)
{
	int i;

	for (i = 0; i < r->ncaps; i++)
		if (strlen(r->caps[i]) == n && !strncmp(r->caps[i], name, n))
			return i;
	return -1;
}

static enum mfs_err parse_src(struct rule *r, const char *s, size_t len,
			      int index, struct errbuf *eb)
{
	const char *p = s, *end = s + len, *lit = s;
	enum mfs_err rc = MFS_OK;

	while (!rc && p < end) {
		if (*p != '{' && *p != '*') {
			p++;
			continue;
		}
		if (p > lit)
			rc = add_tok(&r->src, &r->nsrc, T_LIT, lit,
				     (size_t)(p - lit));
		if (rc)
			break;
		if (*p == '*') {
			int two = p + 1 < end && p[1] == '*';

			rc = add_tok(&r->src, &r->nsrc,
				     two ? T_GLOBSTAR : T_STAR, "", 0);
			p += two ? 2 : 1;
		} else {
			const char *close = memchr(p, '}', (size_t)(end - p));

			if (!close || !is_name(p + 1, (size_t)(close - p - 1)))
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: '{' in the source must open a {name} of letters, digits and '_'",
					      index);
			if (find_cap(r, p + 1, (size_t)(close - p - 1)) >= 0)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: {%.*s} is captured twice",
					      index, (int)(close - p - 1), p + 1);
			if (r->ncaps == RULE_MAX_CAPS)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: more than %d captures",
					      index, RULE_MAX_CAPS);
			if (r->nsrc && r->src[r->nsrc - 1].kind == T_CAP)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: two captures side by side cannot be told apart",
					      index);
			rc = add_tok(&r->src, &r->nsrc, T_CAP, p + 1,
				     (size_t)(close - p - 1));
			if (!rc)
				r->caps[r->ncaps++] = r->src[r->nsrc - 1].text;
			p = close + 1;
		}
		lit = p;
	}
	if (!rc && p > lit)
		rc = add_tok(&r->src, &r->nsrc, T_LIT, lit, (size_t)(p - lit));
	return rc;
}

static enum mfs_err parse_dst(struct rule *r, const char *s, int index,
			      struct idmap *const *maps, int nmaps,
			      struct errbuf *eb)
{
	const char *p = s, *lit = s;
	enum mfs_err rc = MFS_OK;
	int i;

	while (!rc && *p) {
		const char *close, *br;
		struct tok *t;
		size_t n;

		if (*p != '{') {
			p++;
			continue;
		}
		if (p > lit)
			rc = add_tok(&r->dst, &r->ndst, T_LIT, lit,
				     (size_t)(p - lit));
		close = strchr(p, '}');
		if (rc || !close)
			return rc ? rc : eb_set(eb, MFS_EINVAL,
						"rule %d: a '{' in the target is not closed",
						index);
		n = (size_t)(close - p - 1);
		br = memchr(p + 1, '[', n);
		if (br) {	/* {map[capture]} or {map[capture].column} */
			size_t mn = (size_t)(br - p - 1);
			const char *rb = memchr(br, ']', (size_t)(close - br));
			size_t cn = rb ? (size_t)(rb - br - 1) : 0;
			const char *col = rb && rb + 1 < close ? rb + 2 : NULL;
			const struct idmap *m = NULL;
			int c;

			if (!rb || !is_name(p + 1, mn) || !is_name(br + 1, cn) ||
			    (rb + 1 < close &&
			     (rb[1] != '.' ||
			      !is_name(col, (size_t)(close - col)))))
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: '%.*s' is not {map[name]} or {map[name].column}",
					      index, (int)n + 2, p);
			for (i = 0; i < nmaps; i++)
				if (strlen(idmap_name(maps[i])) == mn &&
				    !strncmp(idmap_name(maps[i]), p + 1, mn))
					m = maps[i];
			if (!m)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: no map named '%.*s' (give it with --map %.*s=FILE)",
					      index, (int)mn, p + 1, (int)mn,
					      p + 1);
			c = find_cap(r, br + 1, cn);
			if (c < 0)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: the source captures no {%.*s}",
					      index, (int)cn, br + 1);
			rc = add_tok(&r->dst, &r->ndst, T_MAP, p + 1, n);
			if (rc)
				return rc;
			t = &r->dst[r->ndst - 1];
			t->map = m;
			t->cap = c;
			if (col && !(t->col = str_ndup(col, (size_t)(close - col))))
				return MFS_ENOMEM;
		} else if (n == 3 && !strncmp(p + 1, "ext", 3) &&
			   find_cap(r, "ext", 3) < 0) {
			rc = add_tok(&r->dst, &r->ndst, T_EXT, "ext", 3);
			r->wants_ext = 1;
		} else if (n == 6 && !strncmp(p + 1, "srcext", 6) &&
			   find_cap(r, "srcext", 6) < 0) {
			rc = add_tok(&r->dst, &r->ndst, T_SRCEXT, "srcext", 6);
		} else {
			int c = is_name(p + 1, n) ? find_cap(r, p + 1, n) : -1;

			if (c < 0)
				return eb_set(eb, MFS_EINVAL,
					      "rule %d: the target uses {%.*s}, which the source does not capture (nor is it ext, srcext or map[name])",
					      index, (int)n, p + 1);
			rc = add_tok(&r->dst, &r->ndst, T_VAR, p + 1, n);
			if (!rc)
				r->dst[r->ndst - 1].cap = c;
		}
		p = close + 1;
		lit = p;
	}
	if (!rc && p > lit)
		rc = add_tok(&r->dst, &r->ndst, T_LIT, lit, (size_t)(p - lit));
	return rc;
}

enum mfs_err rule_parse(const char *text, int index, struct idmap *const *maps,
			int nmaps, struct rule **out, struct errbuf *eb)
{
	struct rule *r = calloc(1, sizeof(*r));
	const char *arrow = strstr(text, "->");
	const char *se, *ds;
	enum mfs_err rc;

	*out = NULL;
	if (!r)
		return MFS_ENOMEM;
	if (!arrow) {
		rule_free(r);
		return eb_set(eb, MFS_EINVAL,
			      "rule %d '%s': SOURCE -> TARGET, please", index,
			      text);
	}
	se = arrow;
	while (se > text && se[-1] == ' ')
		se--;
	while (*text == ' ' || *text == '/')
		text++;
	ds = arrow + 2;
	while (*ds == ' ' || *ds == '/')
		ds++;
	rc = se > text ? parse_src(r, text, (size_t)(se - text), index, eb) :
	     eb_set(eb, MFS_EINVAL, "rule %d: the source pattern is empty",
		    index);
	if (!rc && !*ds)
		rc = eb_set(eb, MFS_EINVAL, "rule %d: the target is empty",
			    index);
	if (!rc)
		rc = parse_dst(r, ds, index, maps, nmaps, eb);
	if (!rc && strstr(ds, "->"))
		rc = eb_set(eb, MFS_EINVAL, "rule %d: more than one '->'",
			    index);
	if (rc) {
		rule_free(r);
		return rc;
	}
	*out = r;
	return MFS_OK;
}

/* Match tokens t[i..] against s; captures go into m->vals. */
static int match_at(const struct rule *r, int i, const char *s,
		    struct rule_match *m)
{
	const struct tok *t;
	size_t n;
	const char *p;

	if (i == r->nsrc)
		return !*s;
	t = &r->src[i];
	switch (t->kind) {
	case T_LIT:
		n = strlen(t->text);
		return !strncmp(s, t->text, n) && match_at(r, i + 1, s + n, m);
	case T_STAR:
	case T_GLOBSTAR:
	case T_CAP:
		/* longest first: {old}.jpeg takes the last dot's split */
		for (p = s; *p && (t->kind == T_GLOBSTAR || *p != '/'); p++)
			;
		for (;; p--) {
			if ((t->kind != T_CAP || p > s) &&
			    match_at(r, i + 1, p, m)) {
				if (t->kind == T_CAP) {
					int c;

					for (c = 0; c < r->ncaps; c++)
						if (r->caps[c] == t->text)
							break;
					free(m->vals[c]);
					m->vals[c] = str_ndup(s, (size_t)(p - s));
				}
				return 1;
			}
			if (p == s)
				return 0;
		}
	default:
		return 0;
	}
}

int rule_match(const struct rule *r, const char *rel, struct rule_match *m)
{
	int i;

	memset(m, 0, sizeof(*m));
	m->n = r->ncaps;
	for (i = 0; i < r->ncaps; i++)
		m->names[i] = r->caps[i];
	if (!match_at(r, 0, rel, m)) {
		rule_match_cleanup(m);
		return 0;
	}
	for (i = 0; i < r->ncaps; i++)
		if (!m->vals[i]) {
			rule_match_cleanup(m);
			return 0;	/* out of memory */
		}
	return 1;
}

void rule_match_cleanup(struct rule_match *m)
{
	int i;

	for (i = 0; i < RULE_MAX_CAPS; i++) {
		free(m->vals[i]);
		m->vals[i] = NULL;
	}
	m->n = 0;
}

enum mfs_err rule_expand(const struct rule *r, const struct rule_match *m,
			 const char *rel, const char *ext, char **out,
			 char *why, size_t cap)
{
	struct buf b;
	const char *v, *seg, *base, *dot;
	enum mfs_err rc = MFS_OK;
	int i;

	*out = NULL;
	buf_init(&b, 0);
	for (i = 0; !rc && i < r->ndst; i++) {
		const struct tok *t = &r->dst[i];

		switch (t->kind) {
		case T_LIT:
			v = t->text;
			break;
		case T_VAR:
			v = m->vals[t->cap];
			break;
		case T_MAP:
			v = idmap_col(t->map, m->vals[t->cap], t->col);
			if (!v && t->col && idmap_get(t->map, m->vals[t->cap])) {
				snprintf(why, cap, "no column '%s' for %s='%s' in %s",
					 t->col, m->names[t->cap],
					 m->vals[t->cap], idmap_name(t->map));
				rc = MFS_ENOTFOUND;
			} else if (!v) {
				snprintf(why, cap, "no mapping for %s='%s' in %s",
					 m->names[t->cap], m->vals[t->cap],
					 idmap_name(t->map));
				rc = MFS_ENOTFOUND;
			}
			break;
		case T_EXT:
			v = ext ? ext : "bin";
			break;
		case T_SRCEXT:
			base = strrchr(rel, '/');
			base = base ? base + 1 : rel;
			dot = strrchr(base, '.');
			v = dot && dot > base ? dot + 1 : "";
			break;
		default:
			v = "";
		}
		if (!rc)
			rc = buf_adds(&b, v);
	}
	if (!rc && !b.data)
		rc = buf_adds(&b, "");
	if (rc) {
		buf_cleanup(&b);
		return rc;
	}
	/* every segment must be a name the mount can create */
	for (seg = b.data; !rc;) {
		const char *slash = strchr(seg, '/');
		size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
		const char *bad = str_bad_name(seg, n);

		if (bad) {
			snprintf(why, cap, "the target '%s' is not a usable path (%s)",
				 b.data, bad);
			rc = MFS_EINVAL;
		}
		if (!slash)
			break;
		seg = slash + 1;
	}
	if (rc) {
		buf_cleanup(&b);
		return rc;
	}
	*out = buf_take(&b);
	return MFS_OK;
}

int rule_lookups(const struct rule *r, const struct rule_match *m,
		 const char **names, const char **vals, int max)
{
	int i, n = 0;

	for (i = 0; i < r->ndst && n < max; i++) {
		const struct tok *t = &r->dst[i];
		const char *v;

		if (t->kind != T_MAP)
			continue;
		v = idmap_col(t->map, m->vals[t->cap], t->col);
		if (!v)
			continue;
		names[n] = t->text;
		vals[n++] = v;
	}
	return n;
}

const struct idmap *rule_missed_map(const struct rule *r,
				    const struct rule_match *m)
{
	int i;

	for (i = 0; i < r->ndst; i++) {
		const struct tok *t = &r->dst[i];

		if (t->kind == T_MAP &&
		    !idmap_col(t->map, m->vals[t->cap], t->col))
			return t->map;
	}
	return NULL;
}
