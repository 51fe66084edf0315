/* report.c - mediactl report: the summary a migration team wrote by hand,
 * per category (the remote and the first folder of the key), from the
 * newest journal row of every key (re-runs are not counted twice) and the
 * sources plans skipped. Calls: meta/journal, net/json, cli/util. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "meta/journal.h"
#include "net/json.h"

struct cat {
	char *name;
	int64_t done, failed, pending, rolledback;
	int64_t orig, up;
};

struct agg {
	struct cat *c;
	int n;
	double first, last;
};

static struct cat *cat_get(struct agg *a, const char *name)
{
	struct cat *nc;
	int i;

	for (i = 0; i < a->n; i++)
		if (!strcmp(a->c[i].name, name))
			return &a->c[i];
	nc = realloc(a->c, sizeof(*nc) * (size_t)(a->n + 1));
	if (!nc)
		return NULL;
	a->c = nc;
	memset(&nc[a->n], 0, sizeof(nc[a->n]));
	nc[a->n].name = strdup(name);
	if (!nc[a->n].name)
		return NULL;
	return &nc[a->n++];
}

static int upload_row(void *ud, int ncol, const char *const *v,
		      const char *const *names)
{
	struct agg *a = ud;
	const char *key = v[1] ? v[1] : "", *slash = strchr(key, '/');
	char name[512];
	struct cat *c;
	double t0 = v[5] ? strtod(v[5], NULL) : 0;
	double t1 = v[6] ? strtod(v[6], NULL) : 0;

	(void)ncol;
	(void)names;
	snprintf(name, sizeof(name), "%s/%.*s", v[0],
		 slash ? (int)(slash - key) : 0, key);
	if (!slash)
		snprintf(name, sizeof(name), "%s", v[0]);
	c = cat_get(a, name);
	if (!c)
		return 1;
	if (!strcmp(v[2], "done")) {
		c->done++;
		c->up += v[3] ? strtoll(v[3], NULL, 10) : 0;
		c->orig += v[4] ? strtoll(v[4], NULL, 10) :
			   v[3] ? strtoll(v[3], NULL, 10) : 0;
	} else if (!strcmp(v[2], "failed")) {
		c->failed++;
	} else if (!strcmp(v[2], "pending")) {
		c->pending++;
	} else {
		c->rolledback++;
	}
	if (t0 && (!a->first || t0 < a->first))
		a->first = t0;
	if (t1 > a->last)
		a->last = t1;
	return 0;
}

static int skip_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	struct js *o = ud;
	struct js *kinds = (struct js *)js_get(o, "by_reason");
	struct js *cats = (struct js *)js_get(o, "by_source_folder");
	const char *rel = v[1] ? v[1] : "", *slash = strchr(rel, '/');
	char top[256];
	int64_t n = 0;

	(void)ncol;
	(void)names;
	js_int(js_get(kinds, v[0] ? v[0] : "other"), &n);
	js_set_int(kinds, v[0] ? v[0] : "other", n + 1);
	snprintf(top, sizeof(top), "%.*s",
		 slash ? (int)(slash - rel) : (int)strlen(rel), rel);
	n = 0;
	js_int(js_get(cats, top), &n);
	js_set_int(cats, top, n + 1);
	n = 0;
	js_int(js_get(o, "total"), &n);
	js_set_int(o, "total", n + 1);
	if (n < 20) {
		struct js *ex = (struct js *)js_get(o, "examples"), *e = js_obj();

		js_set_str(e, "source", rel);
		js_set_str(e, "reason", v[2] ? v[2] : "");
		js_push(ex, e);
	}
	return 0;
}

static int print_kind(void *ud, const char *key, const struct js *val)
{
	int64_t n = 0;

	(void)ud;
	js_int(val, &n);
	printf("  %-14s %lld\n", key, (long long)n);
	return 0;
}

static struct js *cat_json(const char *name, const struct cat *c)
{
	struct js *o = js_obj();

	js_set_str(o, "category", name);
	js_set_int(o, "processed", c->done + c->failed + c->pending);
	js_set_int(o, "succeeded", c->done);
	js_set_int(o, "failed", c->failed);
	js_set_int(o, "pending", c->pending);
	js_set_int(o, "rolled_back", c->rolledback);
	js_set_int(o, "original_bytes", c->orig);
	js_set_int(o, "uploaded_bytes", c->up);
	js_set_int(o, "saved_bytes", c->orig - c->up);
	js_set_real(o, "saved_pct", c->orig ?
		    (double)((int64_t)(1000.0 * (double)(c->orig - c->up) /
				       (double)c->orig)) / 10.0 : 0.0);
	return o;
}

int cmd_report(struct cli *c, int argc, char **argv)
{
	const char *label;
	int json, rc, i;
	struct agg a = { 0 };
	struct cat total = { 0 };
	struct js *o, *cats, *sk;
	char t0[32] = "-", t1[32] = "-";

	if (cli_journal_is_pg(c))	/* the shared ledger (cli/ledger) */
		return cmd_hosts(c, argc, argv);
	rc = cli_label_json_opts(argc, argv,
		"usage: mediactl report [--label L] [--json]\n"
		"  per category (remote/first folder): processed, succeeded, failed,\n"
		"  original and uploaded bytes, compression savings; sources plans\n"
		"  skipped, by reason; the batch's duration.\n",
		&label, &json);
	if (rc >= 0)
		return rc;
	rc = cli_journal(c);
	if (rc)
		return rc;
	{
		const char *p[] = { label };

		journal_sql(c->j,
			    "SELECT remote,key,state,size,orig_size,created_at,"
			    "updated_at FROM uploads WHERE id IN (SELECT max(id)"
			    " FROM uploads WHERE state!='cancelled'"
			    " AND substr(key,-1)!='/' AND (?1 IS NULL OR label=?1)"
			    " GROUP BY remote,key) ORDER BY remote,key",
			    p, 1, upload_row, &a, NULL);
		/* copies of the label that failed without a failed upload
		 * of the label to show for them (refused before an upload
		 * existed, or its upload is not labelled): each counts once */
		journal_sql(c->j,
			    "SELECT coalesce(c.dst_remote,'copy'),"
			    " coalesce(c.dst_key,c.rel),'failed',NULL,NULL,"
			    " c.started_at,c.finished_at FROM copies c WHERE"
			    " c.state='failed' AND (?1 IS NULL OR c.label=?1)"
			    " AND NOT EXISTS(SELECT 1 FROM uploads u WHERE"
			    " u.remote=c.dst_remote AND u.key=c.dst_key AND"
			    " u.state!='cancelled' AND (?1 IS NULL OR u.label=?1))"
			    " ORDER BY c.id",
			    p, 1, upload_row, &a, NULL);
		sk = js_obj();
		js_set_int(sk, "total", 0);
		js_set(sk, "by_reason", js_obj());
		js_set(sk, "by_source_folder", js_obj());
		js_set(sk, "examples", js_arr());
		journal_sql(c->j,
			    "SELECT skip_kind,rel,error FROM copies WHERE"
			    " state='skipped' AND (?1 IS NULL OR label=?1)"
			    " ORDER BY id",
			    p, 1, skip_row, sk, NULL);
	}
	o = js_obj();
	cats = js_arr();
	for (i = 0; i < a.n; i++) {
		js_push(cats, cat_json(a.c[i].name, &a.c[i]));
		total.done += a.c[i].done;
		total.failed += a.c[i].failed;
		total.pending += a.c[i].pending;
		total.rolledback += a.c[i].rolledback;
		total.orig += a.c[i].orig;
		total.up += a.c[i].up;
	}
	if (a.first)
		cli_iso(a.first, t0, sizeof(t0));
	if (a.last)
		cli_iso(a.last, t1, sizeof(t1));
	if (label)
		js_set_str(o, "label", label);
	js_set_str(o, "started_at", t0);
	js_set_str(o, "finished_at", t1);
	js_set_real(o, "duration_s", a.first ? a.last - a.first : 0.0);
	js_set(o, "categories", cats);
	js_set(o, "totals", cat_json("total", &total));
	js_set(o, "skipped", sk);
	if (json) {
		cli_print_json(o);
	} else {
		const struct js *r = js_get(sk, "by_reason");
		const struct js *ex = js_get(sk, "examples");
		int64_t nsk = 0;
		size_t k;
		char ob[32], ub[32], dur[32];

		cli_duration(a.first ? a.last - a.first : 0, dur, sizeof(dur));
		printf("report%s%s: %s .. %s (%s)\n", label ? " for label " : "",
		       label ? label : "", t0, t1, dur);
		printf("%-32s %7s %7s %7s %7s %11s %11s %6s\n", "category",
		       "done", "failed", "pending", "rolled", "original",
		       "uploaded", "saved");
		for (i = 0; i <= a.n; i++) {
			const struct cat *x = i < a.n ? &a.c[i] : &total;

			cli_bytes((uint64_t)x->orig, ob, sizeof(ob));
			cli_bytes((uint64_t)x->up, ub, sizeof(ub));
			printf("%-32s %7lld %7lld %7lld %7lld %11s %11s %5.1f%%\n",
			       i < a.n ? x->name : "total", (long long)x->done,
			       (long long)x->failed, (long long)x->pending,
			       (long long)x->rolledback, ob, ub,
			       x->orig ? 100.0 * (double)(x->orig - x->up) /
			       (double)x->orig : 0.0);
		}
		js_int(js_get(sk, "total"), &nsk);
		printf("skipped by plans: %lld\n", (long long)nsk);
		js_each(r, print_kind, NULL);
		for (k = 0; k < js_len(ex) && k < 5; k++)
			printf("  %s: %s\n",
			       js_str(js_get(js_at(ex, k), "source")),
			       js_str(js_get(js_at(ex, k), "reason")));
		js_free(o);
	}
	for (i = 0; i < a.n; i++)
		free(a.c[i].name);
	free(a.c);
	return 0;
}
