/* ledger_view.c - the shared ledger read from any host: mediactl hosts
 * (and status / report with --ledger or a PostgreSQL --journal): each
 * plan's progress and every worker's; mediactl verify --ledger: every
 * done entry's object checked on its store, 8 HEADs at once (struct
 * vjobs: its lock hands out entries; each thread writes only the entries
 * it took).
 * Calls: cli/ledger (ledger_int.h), backend, net/json, common. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "common/str.h"
#include "net/json.h"

#include "ledger_int.h"

struct hosts {
	int json;
	struct js *arr;
	double now;
};

static double num(const char *v)
{
	return v ? strtod(v, NULL) : 0;
}

static int plan_row(void *ud, int ncol, const char *const *v)
{
	struct hosts *h = ud;

	if (ncol < 8)
		return 0;
	if (h->json) {
		struct js *o = js_obj();

		js_set_str(o, "plan", v[0] ? v[0] : "");
		js_set_int(o, "entries", (int64_t)num(v[1]));
		js_set_int(o, "done", (int64_t)num(v[2]));
		js_set_int(o, "failed", (int64_t)num(v[3]));
		js_set_int(o, "claimed", (int64_t)num(v[4]));
		js_set_int(o, "queued", (int64_t)num(v[5]));
		js_set_int(o, "reclaimed", (int64_t)num(v[6]));
		js_set_int(o, "bytes", (int64_t)num(v[7]));
		js_push(h->arr, o);
	} else {
		printf("plan %s: %s entries: %s done, %s failed, %s claimed, %s queued "
		       "(%s claimed again after an expired lease)\n",
		       v[0] ? v[0] : "", v[1] ? v[1] : "0", v[2] ? v[2] : "0",
		       v[3] ? v[3] : "0", v[4] ? v[4] : "0", v[5] ? v[5] : "0",
		       v[6] ? v[6] : "0");
	}
	return 0;
}

static int worker_row(void *ud, int ncol, const char *const *v)
{
	struct hosts *h = ud;
	double started, beat, fin, last, lease, rate, span;
	const char *state;

	if (ncol < 14)
		return 0;
	started = num(v[3]);
	beat = num(v[4]);
	fin = v[5] ? num(v[5]) : 0;
	lease = num(v[6]);
	last = v[10] ? num(v[10]) : 0;
	h->now = num(v[11]);
	span = (fin ? fin : last ? last : started) - started;
	rate = span > 0 ? num(v[8]) / span : 0;
	state = fin ? "finished" : h->now - beat > lease ? "lost" : "running";
	if (h->json) {
		struct js *o = js_obj();

		js_set_str(o, "worker", v[0] ? v[0] : "");
		js_set_str(o, "host", v[1] ? v[1] : "");
		js_set_str(o, "plan", v[2] ? v[2] : "");
		js_set_str(o, "state", state);
		js_set_int(o, "files", (int64_t)num(v[7]));
		js_set_int(o, "bytes", (int64_t)num(v[8]));
		js_set_int(o, "failed", (int64_t)num(v[9]));
		js_set_int(o, "uploaded", (int64_t)num(v[12]));
		js_set_int(o, "present", (int64_t)num(v[13]));
		js_set_int(o, "bytes_per_s", (int64_t)rate);
		js_set_int(o, "heartbeat_age_s", (int64_t)(h->now - beat));
		js_push(h->arr, o);
	} else {
		char b[32], r[32], age[32];

		cli_bytes((uint64_t)num(v[8]), b, sizeof(b));
		cli_bytes((uint64_t)rate, r, sizeof(r));
		cli_duration(h->now - beat > 0 ? h->now - beat : 0, age,
			     sizeof(age));
		printf("  host %-16s %-8s %6lld files %10s %10s/s %4lld failed  heartbeat %s ago  (%s)\n",
		       v[1] ? v[1] : "", state, (long long)num(v[7]), b, r,
		       (long long)num(v[9]), age, v[0] ? v[0] : "");
	}
	return 0;
}

static const char hosts_usage[] =
	"usage: mediactl hosts [--json]   (mediactl --journal LEDGER …)\n"
	"Each loaded plan's progress in the ledger and every worker's: host,\n"
	"files, bytes, rate, failures, last heartbeat; 'lost' when the heartbeat\n"
	"is older than the worker's lease. With a PostgreSQL ledger 'status'\n"
	"and 'report' show the same.\n";

int cmd_hosts(struct cli *c, int argc, char **argv)
{
	struct hosts h = { 0 };
	struct ledger l;
	const char *label = NULL;
	char *sql = NULL;
	int ret;

	ret = cli_label_json_opts(argc, argv, hosts_usage, &label, &h.json);
	if (ret >= 0)
		return ret;
	if ((ret = ledger_open(c, &l))) {
		ledger_close(&l);
		return ret;
	}
	if (h.json)
		h.arr = js_arr();
	if (ledger_query(&l, "SELECT p.name, p.entries,"
		         " (SELECT count(*) FROM ledger_entries e WHERE e.plan=p.name AND e.state='done'),"
		         " (SELECT count(*) FROM ledger_entries e WHERE e.plan=p.name AND e.state='failed'),"
		         " (SELECT count(*) FROM ledger_entries e WHERE e.plan=p.name AND e.state='claimed'),"
		         " (SELECT count(*) FROM ledger_entries e WHERE e.plan=p.name AND e.state='queued'),"
		         " (SELECT count(*) FROM ledger_entries e WHERE e.plan=p.name AND e.attempts>1),"
		         " (SELECT coalesce(sum(size),0) FROM ledger_entries e WHERE e.plan=p.name)"
		         " FROM ledger_plans p ORDER BY p.loaded_at", NULL, 0,
		         plan_row, &h)) {
		ret = EXIT_STORE;
		goto out;
	}
	sql = ledger_sql(&l, "SELECT w.worker, w.host, w.plan, w.started_at,"
		  " w.heartbeat_at, w.finished_at, w.lease,"
		  " (SELECT count(*) FROM ledger_entries e WHERE e.worker=w.worker AND e.state='done'),"
		  " (SELECT coalesce(sum(size),0) FROM ledger_entries e WHERE e.worker=w.worker AND e.state='done'),"
		  " (SELECT count(*) FROM ledger_entries e WHERE e.worker=w.worker AND e.state='failed'),"
		  " (SELECT max(finished_at) FROM ledger_entries e WHERE e.worker=w.worker),"
		  " NOW,"
		  " (SELECT count(*) FROM ledger_entries e WHERE e.worker=w.worker AND e.state='done' AND e.outcome='uploaded'),"
		  " (SELECT count(*) FROM ledger_entries e WHERE e.worker=w.worker AND e.state='done' AND e.outcome='present')"
		  " FROM ledger_workers w ORDER BY w.started_at, w.worker");
	if (!sql || ledger_query(&l, sql, NULL, 0, worker_row, &h))
		ret = EXIT_STORE;
	if (h.json && !ret)
		cli_print_json(h.arr);
	else
		js_free(h.arr);
out:
	free(sql);
	ledger_close(&l);
	return ret;
}

/* ---- mediactl verify against the ledger */

struct ventry {
	char *plan, *seq, *src, *state, *remote, *key, *etag;
	uint64_t size;
	struct backend *be;	/* the remote's, resolved before the checks */
	char *why;		/* what is wrong (malloc'd), or NULL */
};

struct ventries {
	struct ventry *e;
	size_t n, cap;
	int oom;
};

static int ventry_row(void *ud, int ncol, const char *const *v)
{
	struct ventries *vs = ud;
	struct ventry *e;

	if (ncol < 8)
		return 0;
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 256;
		struct ventry *ne = realloc(vs->e, cap * sizeof(*ne));

		if (!ne) {
			vs->oom = 1;
			return 1;
		}
		vs->e = ne;
		vs->cap = cap;
	}
	e = &vs->e[vs->n++];
	e->plan = cli_dup0(v[0]);
	e->seq = cli_dup0(v[1]);
	e->src = cli_dup0(v[2]);
	e->state = cli_dup0(v[3]);
	e->remote = cli_dup0(v[4]);
	e->key = cli_dup0(v[5]);
	e->etag = cli_dup0(v[6]);
	e->size = v[7] ? strtoull(v[7], NULL, 10) : 0;
	e->be = NULL;
	e->why = NULL;
	return 0;
}

static void ventries_free(struct ventries *vs)
{
	size_t i;

	for (i = 0; i < vs->n; i++) {
		free(vs->e[i].plan);
		free(vs->e[i].seq);
		free(vs->e[i].src);
		free(vs->e[i].state);
		free(vs->e[i].remote);
		free(vs->e[i].key);
		free(vs->e[i].etag);
		free(vs->e[i].why);
	}
	free(vs->e);
}

/* An etag without its quotes, into out. */
static void bare_etag(const char *t, char *out, size_t cap)
{
	size_t n;

	if (*t == '"')
		t++;
	snprintf(out, cap, "%s", t);
	n = strlen(out);
	if (n && out[n - 1] == '"')
		out[n - 1] = '\0';
}

/* What is wrong with one done entry's object (malloc'd), or NULL. The
 * object must be there; with an etag in the ledger the store's must be
 * it (then a size other than the plan's is the remote's on_write
 * transform); without one the size must be the plan's. */
static char *ventry_check(const struct ventry *e)
{
	struct errbuf eb = { 0 };
	struct obj_meta m;
	char want[96], have[96];
	enum mfs_err rc;

	if (!e->remote || !e->key)
		return strdup("no remote or key recorded");
	if (!e->be)
		return str_fmt("no remote '%s' in the config", e->remote);
	memset(&m, 0, sizeof(m));
	rc = e->be->ops->head(e->be, e->key, &m, &eb);
	if (rc == MFS_ENOTFOUND)
		return strdup("missing on the store");
	if (rc)
		return str_fmt("cannot check: %s", eb.msg);
	bare_etag(e->etag ? e->etag : "", want, sizeof(want));
	bare_etag(m.etag, have, sizeof(have));
	if (*want && *have && strcmp(want, have))
		return str_fmt("etag %s, the ledger says %s (size %llu, the plan's %llu)",
			       have, want, (unsigned long long)m.size,
			       (unsigned long long)e->size);
	if (!(*want && *have) && m.size != e->size)
		return str_fmt("size %llu, the plan's %llu",
			       (unsigned long long)m.size,
			       (unsigned long long)e->size);
	return NULL;
}

/* The checks, VERIFY_JOBS at once (HEADs are round trips; backends are
 * thread-safe): each thread takes the next entry under lock. */
#define VERIFY_JOBS 8

struct vjobs {
	struct ventries *vs;
	size_t next;		/* guarded by lock */
	pthread_mutex_t lock;
};

static int is_done(const struct ventry *e)
{
	return e->state && !strcmp(e->state, "done");
}

static void *vjob(void *arg)
{
	struct vjobs *j = arg;

	for (;;) {
		struct ventry *e;

		pthread_mutex_lock(&j->lock);
		e = j->next < j->vs->n ? &j->vs->e[j->next++] : NULL;
		pthread_mutex_unlock(&j->lock);
		if (!e)
			break;
		if (is_done(e))
			e->why = ventry_check(e);
	}
	return NULL;
}

static const char lverify_usage[] =
	"usage: mediactl verify --ledger LEDGER [--plan NAME]   (and --config)\n"
	"Every 'done' entry of the ledger's plans (or of plan NAME) is checked on\n"
	"its store (HEAD, through mediafs's config): present, with the ETag the\n"
	"ledger recorded (or, when none was, the plan's size). Entries not done\n"
	"(queued, claimed, failed) are listed too. Exit 1 listing what is wrong,\n"
	"3 when the ledger or the config cannot be used.\n";

int cmd_ledger_verify(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plan", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ventries vs = { 0 };
	struct ledger l;
	const char *plan = NULL;
	size_t i, ok = 0, bad = 0, notdone = 0, checked = 0;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			plan = optarg;
			break;
		case 'h':
			fputs(lverify_usage, stdout);
			return 0;
		default:
			fputs(lverify_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(lverify_usage, stderr);
		return EXIT_USAGE;
	}
	if ((ret = ledger_open(c, &l))) {
		ledger_close(&l);
		return ret;
	}
	{
		const char *p[] = { plan };

		if (ledger_query(&l, plan ?
			         "SELECT plan, seq, src, state, dst_remote, dst_key,"
			         " etag, size FROM ledger_entries WHERE plan=$1"
			         " ORDER BY plan, seq" :
			         "SELECT plan, seq, src, state, dst_remote, dst_key,"
			         " etag, size FROM ledger_entries ORDER BY plan, seq",
			         p, plan ? 1 : 0, ventry_row, &vs) || vs.oom) {
			ret = EXIT_STORE;
			goto out;
		}
	}
	{
		struct vjobs j = { .vs = &vs };
		pthread_t tids[VERIFY_JOBS];
		int k, started = 0;

		/* cli_backend is not thread-safe: every remote first */
		for (i = 0; i < vs.n; i++)
			if (is_done(&vs.e[i]) && vs.e[i].remote)
				vs.e[i].be = cli_backend(c, vs.e[i].remote);
		pthread_mutex_init(&j.lock, NULL);
		for (k = 0; k < VERIFY_JOBS; k++)
			if (!pthread_create(&tids[k], NULL, vjob, &j))
				started++;
		if (!started)
			vjob(&j);
		for (k = 0; k < started; k++)
			pthread_join(tids[k], NULL);
		pthread_mutex_destroy(&j.lock);
	}
	for (i = 0; i < vs.n; i++) {
		const struct ventry *e = &vs.e[i];
		const char *why;

		if (!is_done(e)) {
			notdone++;
			printf("  not done: plan %s #%s %s (%s)\n",
			       e->plan ? e->plan : "", e->seq ? e->seq : "",
			       e->src ? e->src : "", e->state ? e->state : "?");
			continue;
		}
		checked++;
		why = e->why;
		if (why) {
			bad++;
			printf("  wrong: %s:%s (plan %s #%s): %s\n",
			       e->remote ? e->remote : "?",
			       e->key ? e->key : "?", e->plan ? e->plan : "",
			       e->seq ? e->seq : "", why);
		} else {
			ok++;
		}
	}
	printf("verify: %zu done entries checked on the store: %zu as recorded, %zu wrong; %zu entries not done\n",
	       checked, ok, bad, notdone);
	ret = bad || notdone ? EXIT_PROBLEMS : 0;
out:
	ventries_free(&vs);
	ledger_close(&l);
	return ret;
}
