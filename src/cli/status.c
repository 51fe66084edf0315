/* status.c - mediactl status, failed and retry: views of the journal
 * (SQLite, or PostgreSQL shared by hosts: the SQL means the same in both),
 * and of live daemons through their control sockets.
 * Calls: meta/journal, meta/db (redaction), net/json, cli/util. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/str.h"
#include "meta/db.h"
#include "meta/journal.h"
#include "net/json.h"

/* A failed row no later upload of the same key superseded. */
#define STILL_FAILED_ \
	"u.state='failed' AND NOT EXISTS (SELECT 1 FROM uploads u2 WHERE " \
	"u2.remote=u.remote AND u2.key=u.key AND u2.id>u.id AND " \
	"u2.state IN ('done','pending'))"
#define STILL_FAILED "(" STILL_FAILED_ ")"
/* 1 for a still failed row, else 0 (sum() of a boolean is SQLite only) */
#define IS_STILL_FAILED "CASE WHEN " STILL_FAILED_ " THEN 1 ELSE 0 END"

static int64_t num(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

/* ---- live daemons ---- */

struct daemons {
	struct js *arr;		/* their status replies */
	char **stale;		/* mount ids whose daemon is gone */
	int nstale;
	int shared;		/* PostgreSQL: rows of other hosts too */
};

static int daemon_row(void *ud, int ncol, const char *const *v,
		      const char *const *names)
{
	struct daemons *d = ud;
	struct errbuf eb = { 0 };
	struct js *reply = NULL;
	pid_t pid = (pid_t)num(v[1]);

	(void)ncol;
	(void)names;
	if (pid <= 0 || kill(pid, 0) ||
	    cli_ctl(v[2], "status", &reply, &eb)) {
		char **ns;

		/* another host's daemon is not ours to find or remove (a
		 * killed one's row is replaced at its next mount) */
		if (d->shared)
			return 0;
		ns = realloc(d->stale, sizeof(*ns) * (size_t)(d->nstale + 1));

		if (ns && (ns[d->nstale] = strdup(v[0]))) {
			d->stale = ns;
			d->nstale++;
		} else if (ns) {
			d->stale = ns;
		}
		return 0;
	}
	js_set_str(reply, "socket", v[2]);
	js_push(d->arr, reply);
	return 0;
}

/* The status of every live daemon on this journal; rows of dead ones are
 * removed. Returns a JSON array. */
static struct js *live_daemons(struct cli *c)
{
	struct daemons d = { js_arr(), NULL, 0, journal_shared(c->j) };
	int i;

	journal_sql(c->j, "SELECT mount_id,pid,socket FROM daemons", NULL, 0,
		    daemon_row, &d, NULL);
	for (i = 0; i < d.nstale; i++) {
		const char *p[] = { d.stale[i] };

		journal_exec(c->j, "DELETE FROM daemons WHERE mount_id=?1", p,
			     1, NULL, NULL);
		free(d.stale[i]);
	}
	free(d.stale);
	return d.arr;
}

/* ---- status ---- */

static int group_row(void *ud, int ncol, const char *const *v,
		     const char *const *names)
{
	struct js *o = js_obj();

	(void)ncol;
	(void)names;
	js_set_str(o, "remote", v[0]);
	if (v[1])
		js_set_str(o, "label", v[1]);
	js_set_int(o, "pending", num(v[2]));
	js_set_int(o, "done", num(v[3]));
	js_set_int(o, "failed", num(v[4]));
	js_set_int(o, "uploaded_bytes", num(v[5]));
	js_set_int(o, "original_bytes", num(v[6]));
	js_push(ud, o);
	return 0;
}

static int rate_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	struct js *o = ud;

	(void)ncol;
	(void)names;
	js_set_int(o, "files_last_minute", num(v[0]));
	js_set_int(o, "bytes_last_minute", num(v[1]));
	return 0;
}

static int host_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	struct js *o = js_obj();

	(void)ncol;
	(void)names;
	js_set_str(o, "mount_id", v[0]);
	js_set_int(o, "pending", num(v[1]));
	js_set_int(o, "done", num(v[2]));
	js_set_int(o, "failed", num(v[3]));
	js_set_int(o, "uploaded_bytes", num(v[4]));
	js_set_int(o, "last_update", num(v[5]));
	js_push(ud, o);
	return 0;
}

/* Counts of an upload row set, the same SQL for SQLite and PostgreSQL. */
#define COUNTS \
	" sum(CASE WHEN state='pending' THEN 1 ELSE 0 END)," \
	" sum(CASE WHEN state='done' THEN 1 ELSE 0 END)," \
	" sum(" IS_STILL_FAILED ")," \
	" sum(CASE WHEN state='done' THEN size ELSE 0 END)"
#define COUNTED \
	" FROM uploads u WHERE (CAST(?1 AS TEXT) IS NULL OR label=?1)" \
	" AND state!='cancelled' AND key NOT LIKE '%/'"

static struct js *status_json(struct cli *c, const char *label)
{
	struct js *o = js_obj(), *groups = js_arr();
	const char *p[] = { label };
	char now[32], *red;
	const char *rp[] = { now };

	journal_sql(c->j,
		    "SELECT remote,label," COUNTS ","
		    " sum(CASE WHEN state='done' THEN coalesce(orig_size,size)"
		    "  ELSE 0 END)" COUNTED
		    " GROUP BY remote,label ORDER BY remote,label",
		    p, 1, group_row, groups, NULL);
	/* the connection string may carry a password */
	red = journal_shared(c->j) ? db_redacted(c->journal_path) : NULL;
	js_set_str(o, "journal", red ? red : c->journal_path);
	free(red);
	js_set(o, "remotes", groups);
	if (journal_shared(c->j)) {
		/* one row per host's mount: the mount id is HOST:ID */
		struct js *hosts = js_arr();

		journal_sql(c->j,
			    "SELECT mount_id," COUNTS ","
			    " CAST(max(updated_at) AS BIGINT)" COUNTED
			    " GROUP BY mount_id ORDER BY mount_id",
			    p, 1, host_row, hosts, NULL);
		js_set(o, "hosts", hosts);
	}
	snprintf(now, sizeof(now), "%.3f", cli_now() - 60);
	journal_sql(c->j,
		    "SELECT count(*),coalesce(sum(size),0) FROM uploads"
		    " WHERE state='done' AND updated_at>=?1",
		    rp, 1, rate_row, o, NULL);
	js_set(o, "daemons", live_daemons(c));
	return o;
}

static void print_status(const struct js *o)
{
	const struct js *g = js_get(o, "remotes"), *d = js_get(o, "daemons");
	int64_t files = 0, bytes = 0;
	size_t i;

	printf("journal %s\n", js_str(js_get(o, "journal")));
	if (!js_len(g)) {
		printf("no uploads recorded yet\n");
	} else {
		printf("%-16s %-16s %8s %8s %8s %11s %11s %6s\n", "remote",
		       "label", "pending", "done", "failed", "uploaded",
		       "original", "saved");
	}
	for (i = 0; i < js_len(g); i++) {
		const struct js *e = js_at(g, i);
		int64_t p = 0, dn = 0, f = 0, ub = 0, ob = 0;
		char up[32], orig[32], saved[16] = "-";

		js_int(js_get(e, "pending"), &p);
		js_int(js_get(e, "done"), &dn);
		js_int(js_get(e, "failed"), &f);
		js_int(js_get(e, "uploaded_bytes"), &ub);
		js_int(js_get(e, "original_bytes"), &ob);
		cli_bytes((uint64_t)ub, up, sizeof(up));
		cli_bytes((uint64_t)ob, orig, sizeof(orig));
		if (ob > 0 && ob != ub)
			snprintf(saved, sizeof(saved), "%.1f%%",
				 100.0 * (double)(ob - ub) / (double)ob);
		printf("%-16s %-16s %8lld %8lld %8lld %11s %11s %6s\n",
		       js_str(js_get(e, "remote")),
		       js_str(js_get(e, "label")) ? js_str(js_get(e, "label")) : "-",
		       (long long)p, (long long)dn, (long long)f, up, orig,
		       saved);
	}
	for (i = 0; i < js_len(js_get(o, "hosts")); i++) {
		const struct js *e = js_at(js_get(o, "hosts"), i);
		int64_t p = 0, dn = 0, f = 0, ub = 0, t = 0;
		char up[32], when[32] = "-";

		if (!i)
			printf("%-32s %8s %8s %8s %11s %s\n", "per host: mount",
			       "pending", "done", "failed", "uploaded",
			       "last update");
		js_int(js_get(e, "pending"), &p);
		js_int(js_get(e, "done"), &dn);
		js_int(js_get(e, "failed"), &f);
		js_int(js_get(e, "uploaded_bytes"), &ub);
		js_int(js_get(e, "last_update"), &t);
		cli_bytes((uint64_t)ub, up, sizeof(up));
		if (t > 0)
			cli_iso((double)t, when, sizeof(when));
		printf("%-32s %8lld %8lld %8lld %11s %s\n",
		       js_str(js_get(e, "mount_id")), (long long)p,
		       (long long)dn, (long long)f, up, when);
	}
	js_int(js_get(o, "files_last_minute"), &files);
	js_int(js_get(o, "bytes_last_minute"), &bytes);
	{
		char b[32];

		cli_bytes((uint64_t)bytes / 60, b, sizeof(b));
		printf("last minute: %lld files, %s/s\n", (long long)files, b);
	}
	for (i = 0; i < js_len(d); i++) {
		const struct js *e = js_at(d, i);
		int64_t pid = 0, q = 0, r = 0, dn = 0, f = 0, bd = 0;
		int64_t du = 0, dl = 0;
		char b[32];

		js_int(js_get(e, "pid"), &pid);
		js_int(js_get(e, "queued"), &q);
		js_int(js_get(e, "running"), &r);
		js_int(js_get(e, "done"), &dn);
		js_int(js_get(e, "failed"), &f);
		js_int(js_get(e, "bytes_done"), &bd);
		cli_bytes((uint64_t)bd, b, sizeof(b));
		printf("daemon %lld on %s: %lld queued, %lld uploading, %lld done, %lld failed, %s since mount\n",
		       (long long)pid, js_str(js_get(e, "mountpoint")),
		       (long long)q, (long long)r, (long long)dn, (long long)f,
		       b);
		if (!js_int(js_get(e, "data_cache_limit"), &dl) && dl > 0) {
			char u[32], l[32];

			js_int(js_get(e, "data_cache_bytes"), &du);
			cli_bytes((uint64_t)du, u, sizeof(u));
			cli_bytes((uint64_t)dl, l, sizeof(l));
			printf("  data cache: %s of %s on disk\n", u, l);
		}
	}
	if (!js_len(d))
		printf("no mediafs running on this journal\n");
}

static volatile sig_atomic_t stop_watch;

static void on_sigint(int sig)
{
	(void)sig;
	stop_watch = 1;
}

/* The shared ledger's progress per plan and host (cli/ledger) after the
 * journal's, when this PostgreSQL database holds one. */
static void ledger_status(struct cli *c, const char *label)
{
	char a0[] = "hosts", a1[] = "--label";
	char *argv[] = { a0, a1, (char *)label, NULL };
	int64_t has = 0;

	if (journal_sql(c->j, "SELECT CASE WHEN to_regclass('ledger_plans')"
			" IS NULL THEN 0 ELSE 1 END", NULL, 0, cli_int_row,
			&has, NULL) || !has)
		return;
	fflush(stdout);
	optind = 0;	/* cmd_hosts parses its own options */
	cmd_hosts(c, label ? 3 : 1, argv);
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL;
	int json = 0, ch, rc, tty = isatty(1);
	double every = 0;
	long count = -1;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'J':
			json = 1;
			break;
		case 'w':
			every = optarg ? strtod(optarg, NULL) : 2;
			if (every < 0.1)
				every = 0.1;
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		case 'l':
			label = optarg;
			break;
		case 'h':
			printf("usage: mediactl status [--label L] [--json] [--watch[=SECONDS]] [--count N]\n"
			       "  uploads per remote and label (pending, done, failed, bytes, compression),\n"
			       "  the last minute's rate, and every running mediafs's live queue.\n"
			       "  --watch refreshes every SECONDS (default 2) until Ctrl-C or N times.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	rc = cli_journal_shared(c);
	if (rc)
		return rc;
	signal(SIGINT, on_sigint);
	for (;;) {
		struct js *o = status_json(c, label);

		if (every > 0 && tty && !json)
			printf("\033[H\033[J");
		if (json) {
			cli_print_json(o);
		} else {
			print_status(o);
			js_free(o);
			if (journal_shared(c->j))
				ledger_status(c, label);
		}
		fflush(stdout);
		if (every <= 0 || stop_watch || (count > 0 && --count == 0))
			break;
		usleep((useconds_t)(every * 1e6));
		if (stop_watch)
			break;
		if (!tty && !json)
			printf("\n");
	}
	return 0;
}

/* ---- failed ---- */

static int failed_row(void *ud, int ncol, const char *const *v,
		      const char *const *names)
{
	struct js *o = js_obj();

	(void)ncol;
	(void)names;
	js_set_int(o, "id", num(v[0]));
	js_set_str(o, "remote", v[1]);
	js_set_str(o, "key", v[2]);
	js_set_str(o, "error", v[3] ? v[3] : "");
	if (v[4])
		js_set_str(o, "label", v[4]);
	js_set_str(o, "mount_id", v[5]);
	js_set_int(o, "size", num(v[6]));
	js_push(ud, o);
	return 0;
}

static struct js *failed_rows(struct cli *c, const char *label)
{
	struct js *a = js_arr();
	const char *p[] = { label };

	journal_sql(c->j,
		    "SELECT id,remote,key,error,label,mount_id,size FROM uploads u"
		    " WHERE " STILL_FAILED
		    " AND (CAST(?1 AS TEXT) IS NULL OR label=?1)"
		    " ORDER BY id",
		    p, 1, failed_row, a, NULL);
	return a;
}

int cmd_failed(struct cli *c, int argc, char **argv)
{
	const char *label;
	int json, rc;
	struct js *a;
	size_t i, n;

	rc = cli_label_json_opts(argc, argv,
		"usage: mediactl failed [--label L] [--json]\n"
		"  uploads that failed and were not uploaded since, with the error;\n"
		"  the staged data is kept: 'mediactl retry' sends it again.\n",
		&label, &json);
	if (rc >= 0)
		return rc;
	rc = cli_journal_shared(c);
	if (rc)
		return rc;
	a = failed_rows(c, label);
	n = js_len(a);
	if (json) {
		cli_print_json(a);
		return 0;
	}
	for (i = 0; i < n; i++) {
		const struct js *e = js_at(a, i);
		int64_t id = 0;

		js_int(js_get(e, "id"), &id);
		printf("%lld\t%s:%s\t%s\n", (long long)id,
		       js_str(js_get(e, "remote")), js_str(js_get(e, "key")),
		       js_str(js_get(e, "error")));
	}
	printf("%zu failed upload%s\n", n, n == 1 ? "" : "s");
	js_free(a);
	return 0;
}

/* ---- retry ---- */

struct retry_sel {
	char **args;		/* ids or keys ("remote:key" or "key") */
	int nargs, all;
};

static int selected(const struct retry_sel *s, const struct js *e)
{
	char id[32];
	int64_t v = 0;
	int i;

	if (s->all)
		return 1;
	js_int(js_get(e, "id"), &v);
	snprintf(id, sizeof(id), "%lld", (long long)v);
	for (i = 0; i < s->nargs; i++) {
		const char *a = s->args[i], *colon = strchr(a, ':');
		const char *rem = js_str(js_get(e, "remote"));
		const char *key = js_str(js_get(e, "key"));

		if (!strcmp(a, id) || !strcmp(a, key))
			return 1;
		if (colon && strlen(rem) == (size_t)(colon - a) &&
		    !strncmp(a, rem, (size_t)(colon - a)) &&
		    !strcmp(colon + 1, key))
			return 1;
	}
	return 0;
}

int cmd_retry(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct retry_sel s = { 0 };
	const char *label = NULL;
	struct js *a, *d;
	int ch, rc, live = 0, later = 0;
	size_t i, k;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			s.all = 1;
			break;
		case 'l':
			label = optarg;
			break;
		case 'h':
			printf("usage: mediactl retry [--label L] (--all | ID | KEY | REMOTE:KEY ...)\n"
			       "  queue failed uploads again. A running mediafs of the upload's mount\n"
			       "  sends them at once; otherwise they go up at that mount's next start.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	s.args = argv + optind;
	s.nargs = argc - optind;
	if (!s.all && !s.nargs)
		return cli_fail(EXIT_USAGE, "retry what? --all, or upload ids/keys from 'mediactl failed'");
	rc = cli_journal_shared(c);
	if (rc)
		return rc;
	a = failed_rows(c, label);
	d = live_daemons(c);
	for (i = 0; i < js_len(a); i++) {
		const struct js *e = js_at(a, i);
		const char *mid = js_str(js_get(e, "mount_id"));
		const struct js *owner = NULL;
		int64_t id = 0;
		char idtxt[32];

		if (!selected(&s, e))
			continue;
		js_int(js_get(e, "id"), &id);
		snprintf(idtxt, sizeof(idtxt), "%lld", (long long)id);
		for (k = 0; k < js_len(d); k++)
			if (!strcmp(js_str(js_get(js_at(d, k), "mount_id")), mid))
				owner = js_at(d, k);
		if (owner) {
			/* the daemon holds the item: it queues it again */
			char *req = str_fmt("retry %s", idtxt);
			struct errbuf eb = { 0 };
			struct js *reply = NULL;
			int64_t n = 0;

			if (req && !cli_ctl(js_str(js_get(owner, "socket")),
					    req, &reply, &eb))
				js_int(js_get(reply, "requeued"), &n);
			js_free(reply);
			free(req);
			live += (int)n;
		} else {
			const char *p[] = { idtxt };

			if (!journal_exec(c->j,
					  "UPDATE uploads SET state='pending',error=NULL"
					  " WHERE id=?1 AND state='failed'",
					  p, 1, NULL, NULL))
				later++;
		}
	}
	printf("%d queued again in a running mediafs, %d pending until their mount starts again\n",
	       live, later);
	js_free(a);
	js_free(d);
	return 0;
}
