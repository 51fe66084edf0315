/* plan.c - mediactl plan: walk a source tree (normally inside a mediafs
 * mount), apply skip globs and rules with ID maps, and write a copy plan:
 * PLAN (JSON lines: a header, then {"src","dst","size","vars"} per file)
 * and PLAN.skipped ({"src","kind","reason"} per skipped file). Skips are
 * also recorded in the journal (copies, state 'skipped') for reports.
 * Memory: the maps, the set of targets and one directory listing at a
 * time; entries are written as they are found.
 * Calls: cli/maps, cli/rule, meta/sniff, meta/journal, net/json, common. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/maps.h"
#include "cli/rule.h"
#include "common/str.h"
#include "meta/journal.h"
#include "meta/sniff.h"
#include "net/json.h"

#define MAX_RULES 64
#define MAX_MAPS 32
#define MAX_REASONS 64

struct planner {
	struct cli *c;
	char *from, *to, *plan_abs;
	const char *label;
	struct rule *rules[MAX_RULES];
	int nrules;
	struct idmap *maps[MAX_MAPS];
	int nmaps;
	char *skips[MAX_RULES];		/* globs (owned) */
	const char *skip_why[MAX_RULES];	/* user reasons or NULL */
	int nskips;
	struct idmap *used[MAX_MAPS];	/* keys of maps[i] some source had */
	const char *rnames[MAX_REASONS];	/* user reasons counted */
	uint64_t rcounts[MAX_REASONS];
	int nreasons;
	struct idmap *targets;	/* dst -> src: two sources, one target */
	struct sniff *sniff;
	FILE *out, *skipped;
	uint64_t nplan, bytes, nskipped, nerr;
	uint64_t nknown, nsniffed;	/* types the mount knew / read here */
	uint64_t kinds[8];	/* by kind_names */
};

static const char *const kind_names[] = { "skip-rule", "no-rule",
					  "no-mapping", "unreadable",
					  "bad-target", "duplicate-target",
					  "missing-source" };
enum { K_SKIP, K_NORULE, K_NOMAP, K_UNREADABLE, K_BADTARGET, K_DUP,
       K_MISSING, K_NKINDS };

/* Record a skipped source: in PLAN.skipped {"src","kind","reason"} (plus
 * "detail" when the user named the reason: then "reason" is that name)
 * and in the journal (skip_kind: the user's reason, else the kind). */
static void skip_named(struct planner *p, const char *rel, int kind,
		       const char *named, const char *detail)
{
	struct js *o = js_obj();
	char *line;
	char now[32];
	const char *params[] = { p->plan_abs, p->label, NULL, rel,
				 named ? named : kind_names[kind], detail, now };
	char *src = kind == K_MISSING ? str_fmt("(missing) %s", rel)
				      : str_fmt("%s/%s", p->from, rel);
	int i;

	snprintf(now, sizeof(now), "%.3f", cli_now());
	js_set_str(o, "src", rel);
	js_set_str(o, "kind", kind_names[kind]);
	js_set_str(o, "reason", named ? named : detail);
	if (named)
		js_set_str(o, "detail", detail);
	if (named) {
		for (i = 0; i < p->nreasons && strcmp(p->rnames[i], named); i++)
			;
		if (i < MAX_REASONS) {
			if (i == p->nreasons)
				p->rnames[p->nreasons++] = named;
			p->rcounts[i]++;
		}
	}
	line = js_dump(o, 0);
	if (line)
		fprintf(p->skipped, "%s\n", line);
	free(line);
	js_free(o);
	params[2] = src;
	journal_exec(p->c->j,
		     "INSERT OR REPLACE INTO copies(plan,label,src,dst,rel,state,"
		     "skip_kind,error,started_at,finished_at)"
		     " VALUES(?1,?2,?3,'',?4,'skipped',?5,?6,?7,NULL)",
		     params, 7, NULL, NULL);
	free(src);
	p->nskipped++;
	if (!named)
		p->kinds[kind]++;
}

static void skip(struct planner *p, const char *rel, int kind,
		 const char *reason)
{
	skip_named(p, rel, kind, NULL, reason);
}

static int skipped_by_glob(struct planner *p, const char *rel,
			   int *which)
{
	char dir[PATH_MAX];
	int i;

	for (i = 0; i < p->nskips; i++) {
		const char *s;

		if (!fnmatch(p->skips[i], rel, 0)) {
			*which = i;
			return 1;
		}
		/* a glob naming a folder skips what is below it */
		for (s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
			snprintf(dir, sizeof(dir), "%.*s", (int)(s - rel), rel);
			if (!fnmatch(p->skips[i], dir, 0)) {
				*which = i;
				return 1;
			}
		}
	}
	return 0;
}

/* The source's type: what its mediafs mount already knows
 * (user.mediafs.known_type: no request), else sniffed from its first
 * 4 KiB (one read; a directory that is no mediafs mount always). */
static int sniff_file(struct planner *p, const char *path, const char **ext,
		      char *type, size_t tcap, char *why, size_t cap)
{
	char head[SNIFF_BYTES];
	ssize_t n;
	size_t got = 0;
	int fd;

	n = getxattr(path, "user.mediafs.known_type", type, tcap - 1);
	if (n > 0) {
		type[n] = '\0';
		p->nknown++;
		goto decided;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, cap, "cannot open: %s", strerror(errno));
		return -1;
	}
	while (got < sizeof(head) &&
	       (n = read(fd, head + got, sizeof(head) - got)) > 0)
		got += (size_t)n;
	if (n < 0 && !got) {
		snprintf(why, cap, "cannot read: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	/* the bytes decide, the name breaks ties: as mediafs decides the
	 * type it keeps from a read, so a later plan that asks decides the
	 * same */
	sniff_type(p->sniff, head, got, strrchr(path, '/') ?
		   strrchr(path, '/') + 1 : path, type, tcap);
	p->nsniffed++;
decided:
	{
		/* "text/plain; charset=utf-8" names its extension as
		 * text/plain does */
		char base[128];

		snprintf(base, sizeof(base), "%.*s", (int)strcspn(type, "; "),
			 type);
		*ext = sniff_ext(base);
	}
	/* a key named .bin holds application/octet-stream (an XML error
	 * page is not uploaded as text/xml under a .bin name) */
	if (!strcmp(*ext, "bin"))
		snprintf(type, tcap, "application/octet-stream");
	return 0;
}

struct var_add {
	struct js *vars;
	const char *prefix;	/* "map[capture]" */
};

static int add_col(void *ud, const char *col, const char *val)
{
	struct var_add *va = ud;
	char *name = str_fmt("%s.%s", va->prefix, col);

	if (name)
		js_set_str(va->vars, name, val);
	free(name);
	return 0;
}

/* Every loaded map looked up by every capture: {map[capture]} and
 * {map[capture].column} reach the plan's variables (and the rewrite's
 * templates); the keys found are marked used (missing sources). */
static void map_vars(struct planner *p, const struct rule_match *m,
		     struct js *vars)
{
	struct errbuf eb = { 0 };
	int i, k;

	for (i = 0; i < p->nmaps; i++)
		for (k = 0; k < m->n; k++) {
			const char *v = idmap_get(p->maps[i], m->vals[k]);
			char *name;

			if (!v)
				continue;
			if (p->used[i])
				idmap_put(p->used[i], m->vals[k], "1", &eb);
			if (!vars)
				continue;
			name = str_fmt("%s[%s]", idmap_name(p->maps[i]),
				       m->names[k]);
			if (name) {
				struct var_add va = { vars, name };

				js_set_str(vars, name, v);
				idmap_each_col(p->maps[i], m->vals[k], add_col,
					       &va);
			}
			free(name);
		}
}

struct missing_walk {
	struct planner *p;
	int map;
};

static int missing_key(void *ud, const char *key, const char *val)
{
	struct missing_walk *mw = ud;
	struct planner *p = mw->p;
	char why[600];

	(void)val;
	if (idmap_get(p->used[mw->map], key))
		return 0;
	snprintf(why, sizeof(why),
		 "key '%.200s' of map %s: no source below --from has it",
		 key, idmap_name(p->maps[mw->map]));
	skip_named(p, key, K_MISSING,
		   idmap_missing_reason(p->maps[mw->map]), why);
	return 0;
}

static void plan_file(struct planner *p, const char *rel, const struct stat *st)
{
	struct rule_match m;
	struct rule *r = NULL;
	const char *ext = NULL;
	char why[1024], *dst = NULL, *path, type[128] = "";
	enum mfs_err rc;
	int i, glob;

	if (skipped_by_glob(p, rel, &glob)) {
		snprintf(why, sizeof(why), "matches --skip '%s'", p->skips[glob]);
		skip_named(p, rel, K_SKIP, p->skip_why[glob], why);
		return;
	}
	for (i = 0; i < p->nrules && !r; i++)
		if (rule_match(p->rules[i], rel, &m))
			r = p->rules[i];
	if (!r) {
		skip(p, rel, K_NORULE, "no rule matches");
		return;
	}
	map_vars(p, &m, NULL);	/* marks the keys this source has */
	path = str_fmt("%s/%s", p->from, rel);
	rc = rule_expand(r, &m, rel, "bin", &dst, why, sizeof(why));
	if (rc == MFS_ENOTFOUND) {
		/* a map miss decides before any byte is read */
		const struct idmap *mm = rule_missed_map(r, &m);

		skip_named(p, rel, K_NOMAP, mm ? idmap_miss_reason(mm) : NULL,
			   why);
		goto out;
	}
	free(dst);
	dst = NULL;
	if (path && rule_wants_ext(r) &&
	    sniff_file(p, path, &ext, type, sizeof(type), why, sizeof(why))) {
		skip(p, rel, K_UNREADABLE, why);
		goto out;
	}
	rc = rule_expand(r, &m, rel, ext, &dst, why, sizeof(why));
	if (rc == MFS_ENOTFOUND) {
		skip(p, rel, K_NOMAP, why);
	} else if (rc) {
		skip(p, rel, rc == MFS_EINVAL ? K_BADTARGET : K_UNREADABLE,
		     rc == MFS_EINVAL ? why : "out of memory");
	} else if (idmap_get(p->targets, dst)) {
		snprintf(why, sizeof(why), "target %s is also the target of %s",
			 dst, idmap_get(p->targets, dst));
		skip(p, rel, K_DUP, why);
	} else {
		struct js *o = js_obj(), *vars = js_obj();
		char *line;
		struct errbuf eb = { 0 };

		idmap_put(p->targets, dst, rel, &eb);
		js_set_str(o, "src", rel);
		js_set_str(o, "dst", dst);
		js_set_int(o, "size", (int64_t)st->st_size);
		/* the type {ext} was decided by: the copy uploads it as that */
		if (type[0])
			js_set_str(o, "type", type);
		const char *ln[RULE_MAX_CAPS], *lv[RULE_MAX_CAPS];
		int nl = rule_lookups(r, &m, ln, lv, RULE_MAX_CAPS);

		for (i = 0; i < m.n; i++)
			js_set_str(vars, m.names[i], m.vals[i]);
		map_vars(p, &m, vars);
		for (i = 0; i < nl; i++)
			js_set_str(vars, ln[i], lv[i]);
		if (ext)
			js_set_str(vars, "ext", ext);
		js_set(o, "vars", vars);
		line = js_dump(o, 0);
		if (line) {
			fprintf(p->out, "%s\n", line);
			p->nplan++;
			p->bytes += (uint64_t)st->st_size;
		} else {
			/* jansson refuses strings that are not UTF-8 */
			skip(p, rel, K_BADTARGET, "the name is not UTF-8");
		}
		free(line);
		js_free(o);
	}
out:
	free(dst);
	free(path);
	rule_match_cleanup(&m);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk dir (relative rel, "" at the top) in name order. */
static void walk(struct planner *p, const char *rel)
{
	char *path = *rel ? str_fmt("%s/%s", p->from, rel) : strdup(p->from);
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d = path ? opendir(path) : NULL;

	if (!d) {
		fprintf(stderr, "mediactl: cannot list %s: %s\n",
			path ? path : rel, strerror(errno));
		p->nerr++;
		free(path);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, sizeof(*nn) *
					    (cap = cap ? cap * 2 : 64));

			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		char *child = *rel ? str_fmt("%s/%s", rel, names[i])
				   : strdup(names[i]);
		char *cpath = child ? str_fmt("%s/%s", p->from, child) : NULL;
		struct stat st;

		if (!cpath || lstat(cpath, &st)) {
			if (child)
				skip(p, child, K_UNREADABLE, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			walk(p, child);
		} else if (S_ISREG(st.st_mode)) {
			plan_file(p, child, &st);
		} else {
			skip(p, child, K_UNREADABLE, "not a regular file");
		}
		free(cpath);
		free(child);
		free(names[i]);
	}
	free(names);
	free(path);
}

static void plan_usage(FILE *f)
{
	fprintf(f,
		"usage: mediactl plan --from DIR --to DIR --rule 'SOURCE -> TARGET' [--rule ...]\n"
		"                     [--map NAME=FILE[,key=FIELD,value=FIELD][,miss=REASON][,missing=REASON]]...\n"
		"                     [--skip GLOB[,reason=REASON]]... [--label L] -o PLAN\n"
		"  SOURCE: a path below --from with {name} captures (inside one path\n"
		"          segment), * (inside a segment) and ** (across segments).\n"
		"  TARGET: a path below --to from text, {name}, {map[name]} (an ID map\n"
		"          lookup), {map[name].column} (another column of that record),\n"
		"          {ext} (sniffed from the bytes: jpg png gif webp tiff … bin) and\n"
		"          {srcext} (the source name's extension).\n"
		"  Maps: a JSON object {\"old\":\"new\"}, a JSON array of objects (key=,value=\n"
		"        name the fields) or a CSV file with a header (key=,value= name the\n"
		"        columns; default the first two).\n"
		"  --skip GLOB (fnmatch, '*' crosses '/') skips matching files and folders;\n"
		"  ,reason=R names the reason. A map's miss=R names the reason of a source\n"
		"  it has no entry for; missing=R reports its keys no source had.\n"
		"  The first rule that matches a file decides; a file no rule matches, a\n"
		"  capture a map lacks, or an unreadable file is skipped with its reason\n"
		"  in PLAN.skipped and the journal.\n"
		"  S1: mediactl plan --from /mnt/m/backup --to /mnt/m/supa \\\n"
		"        --map users=user-id-mapping.json --skip 'Profile-Pics/salon' \\\n"
		"        --rule 'Profile-Pics/{role}/{old} -> avatars/{users[old]}/{old}.{ext}' -o s1.plan\n");
}

static char *abs_dir(const char *d)
{
	char *r = realpath(d, NULL);
	struct stat st;

	if (r && (stat(r, &st) || !S_ISDIR(st.st_mode))) {
		free(r);
		errno = ENOTDIR;
		return NULL;
	}
	return r;
}

int cmd_plan(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "rule", required_argument, NULL, 'r' },
		{ "map", required_argument, NULL, 'm' },
		{ "skip", required_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct planner p = { 0 };
	const char *rule_txt[MAX_RULES], *from = NULL, *to = NULL;
	const char *out = NULL;
	int nrt = 0, ch, ret = 0, i;
	struct errbuf eb = { 0 };
	double t0 = cli_now();
	char *skpath = NULL;

	p.c = c;
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'r':
			if (nrt == MAX_RULES)
				return cli_fail(EXIT_USAGE, "at most %d rules", MAX_RULES);
			rule_txt[nrt++] = optarg;
			break;
		case 'm':
			if (p.nmaps == MAX_MAPS) {
				ret = cli_fail(EXIT_USAGE, "at most %d maps", MAX_MAPS);
				goto out;
			}
			if (idmap_load(optarg, &p.maps[p.nmaps], &eb)) {
				ret = cli_fail(EXIT_USAGE, "%s", eb.msg);
				goto out;
			}
			p.nmaps++;
			break;
		case 's':
			if (p.nskips == MAX_RULES) {
				ret = cli_fail(EXIT_USAGE, "at most %d --skip", MAX_RULES);
				goto out;
			}
			{
				/* GLOB[,reason=NAME] */
				const char *rs = strstr(optarg, ",reason=");

				p.skips[p.nskips] = rs ?
					str_ndup(optarg, (size_t)(rs - optarg)) :
					strdup(optarg);
				p.skip_why[p.nskips] = rs && rs[8] ? rs + 8 : NULL;
				if (!p.skips[p.nskips]) {
					ret = cli_fail(EXIT_STORE, "out of memory");
					goto out;
				}
				p.nskips++;
			}
			break;
		case 'l':
			p.label = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			plan_usage(stdout);
			goto out;
		default:
			plan_usage(stderr);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (!from || !to || !nrt || !out) {
		ret = cli_fail(EXIT_USAGE, "plan needs --from, --to, at least one --rule and -o PLAN (mediactl plan --help)");
		goto out;
	}
	for (i = 0; i < nrt; i++) {
		if (rule_parse(rule_txt[i], i + 1, p.maps, p.nmaps,
			       &p.rules[i], &eb)) {
			ret = cli_fail(EXIT_USAGE, "%s", eb.msg);
			goto out;
		}
		p.nrules++;
	}
	p.from = abs_dir(from);
	if (!p.from) {
		ret = cli_fail(EXIT_USAGE, "--from %s: %s", from, strerror(errno));
		goto out;
	}
	p.to = abs_dir(to);
	if (!p.to) {
		ret = cli_fail(EXIT_USAGE, "--to %s: %s (create it first)", to,
			       strerror(errno));
		goto out;
	}
	ret = cli_journal(c);
	if (ret)
		goto out;
	p.targets = idmap_new("targets");
	skpath = str_fmt("%s.skipped", out);
	p.out = fopen(out, "w");
	p.skipped = skpath ? fopen(skpath, "w") : NULL;
	if (!p.targets || !p.out || !p.skipped) {
		ret = cli_fail(EXIT_STORE, "cannot write %s: %s",
			       !p.out ? out : skpath, strerror(errno));
		goto out;
	}
	p.plan_abs = realpath(out, NULL);
	for (i = 0; i < p.nmaps; i++)
		if (idmap_missing_reason(p.maps[i]) &&
		    !(p.used[i] = idmap_new("used"))) {
			ret = cli_fail(EXIT_STORE, "out of memory");
			goto out;
		}
	for (i = 0; i < p.nrules; i++)
		if (rule_wants_ext(p.rules[i]) && !p.sniff &&
		    sniff_new(&p.sniff, &eb)) {
			ret = cli_fail(EXIT_STORE, "%s", eb.msg);
			goto out;
		}
	{
		struct js *h = js_obj(), *rs = js_arr(), *sk = js_arr();
		char *line;

		js_set_int(h, "mediactl_plan", 1);
		js_set_str(h, "from", p.from);
		js_set_str(h, "to", p.to);
		for (i = 0; i < nrt; i++)
			js_push_str(rs, rule_txt[i]);
		for (i = 0; i < p.nskips; i++)
			js_push_str(sk, p.skips[i]);	/* globs only */
		js_set(h, "rules", rs);
		js_set(h, "skip", sk);
		if (p.label)
			js_set_str(h, "label", p.label);
		line = js_dump(h, 0);
		fprintf(p.out, "%s\n", line ? line : "{}");
		free(line);
		js_free(h);
	}
	{
		const char *params[] = { p.plan_abs };

		/* a plan written again replaces its skips */
		journal_exec(c->j, "BEGIN", NULL, 0, NULL, NULL);
		journal_exec(c->j, "DELETE FROM copies WHERE plan=?1 AND state='skipped'",
			     params, 1, NULL, NULL);
		walk(&p, "");
		for (i = 0; i < p.nmaps; i++)
			if (p.used[i]) {
				struct missing_walk mw = { &p, i };

				idmap_each(p.maps[i], missing_key, &mw);
			}
		journal_exec(c->j, "COMMIT", NULL, 0, NULL, NULL);
	}
	if (fflush(p.out) || ferror(p.out) || fflush(p.skipped) ||
	    ferror(p.skipped)) {
		ret = cli_fail(EXIT_STORE, "writing %s failed: %s", out,
			       strerror(errno));
		goto out;
	}
	{
		char b[32], d[32];
		int first = 1;

		cli_bytes(p.bytes, b, sizeof(b));
		cli_duration(cli_now() - t0, d, sizeof(d));
		printf("plan %s: %llu files to copy (%s), %llu skipped",
		       out, (unsigned long long)p.nplan, b,
		       (unsigned long long)p.nskipped);
		for (i = 0; i < K_NKINDS; i++)
			if (p.kinds[i]) {
				printf("%s %llu %s", first ? ":" : ",",
				       (unsigned long long)p.kinds[i],
				       kind_names[i]);
				first = 0;
			}
		for (i = 0; i < p.nreasons; i++) {
			printf("%s %llu %s", first ? ":" : ",",
			       (unsigned long long)p.rcounts[i], p.rnames[i]);
			first = 0;
		}
		printf(" (reasons in %s)", skpath);
		if (p.nknown || p.nsniffed)
			printf("; types: %llu known to the mount, %llu read",
			       (unsigned long long)p.nknown,
			       (unsigned long long)p.nsniffed);
		printf("; built in %s\n", d);
	}
	if (p.nerr)
		ret = EXIT_PROBLEMS;
out:
	if (p.out)
		fclose(p.out);
	if (p.skipped)
		fclose(p.skipped);
	for (i = 0; i < p.nrules; i++)
		rule_free(p.rules[i]);
	for (i = 0; i < p.nmaps; i++) {
		idmap_free(p.maps[i]);
		idmap_free(p.used[i]);
	}
	for (i = 0; i < p.nskips; i++)
		free(p.skips[i]);
	idmap_free(p.targets);
	sniff_free(p.sniff);
	free(p.from);
	free(p.to);
	free(p.plan_abs);
	free(skpath);
	return ret;
}
