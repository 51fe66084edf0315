/* ledger.c - mediactl load / work: a plan as a shared work queue in the
 * ledger, for many hosts each with its own mediafs mount (ledger_view.c
 * reads it: hosts, status, report, verify). The ledger is --ledger or the
 * journal database: a PostgreSQL connection string (many hosts) or a
 * SQLite file (one host); both go through cli/db's
 * vtable with the same SQL, except the claim's lock clause (FOR UPDATE
 * SKIP LOCKED in PostgreSQL; SQLite has one writer at a time anyway) and
 * the server clock's expression. Leases run on the database's clock, so
 * hosts' clocks need not agree.
 *
 * A worker's threads each claim a batch of queued entries (or entries
 * whose lease expired: their worker died), copy them through the mount
 * (cli/copy's copy_file: temporary, rename, fsync = on the store) and
 * record the batch's results in one statement, each fenced by the claim
 * (worker and state), so a worker that lost its lease cannot overwrite
 * the new owner's result. Two statements a batch, not one a file: a
 * worker that dies mid-batch leaves its finished files unrecorded, and
 * their next owner finds them on the store (below) instead of uploading
 * them again. A
 * heartbeat thread extends the worker's leases every lease/3 seconds. A
 * re-claimed entry is checked on the store first (copy_file's
 * already_there: size and mtime through the mount, proven by one HEAD
 * the mount sends), so it is uploaded again only when the store lacks it
 * or holds other content.
 *
 * Limits: a host's --threads (files at once) and --bwlimit (bytes per
 * second, paced file by file in this process); a plan's global rate
 * (files per second for all workers) is a row of ledger_rates whose slot
 * each file takes before it starts (pace()).
 *
 * Locking: struct ledger's lock serialises the one connection (cli/db is
 * not thread-safe) and guards queries; struct worker's lock its counters.
 * Calls: cli/db, cli/copy, net/json, common. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "common/buf.h"
#include "common/str.h"
#include "net/json.h"

#include "ledger_int.h"

/* One DDL for both databases (SQLite maps the types by affinity). */
static const char *const schema[] = {
	"CREATE TABLE IF NOT EXISTS ledger_plans("
	" name TEXT PRIMARY KEY,"
	" from_dir TEXT NOT NULL, to_dir TEXT NOT NULL,"	/* the plan's */
	" label TEXT,"
	" entries BIGINT NOT NULL,"
	" loaded_at DOUBLE PRECISION NOT NULL)",
	"CREATE TABLE IF NOT EXISTS ledger_entries("
	" plan TEXT NOT NULL,"
	" seq BIGINT NOT NULL,"		/* the plan's line order */
	" src TEXT NOT NULL, dst TEXT NOT NULL,"	/* below from/to */
	" type TEXT,"
	" size BIGINT NOT NULL,"
	" state TEXT NOT NULL,"		/* queued | claimed | done | failed */
	" worker TEXT, host TEXT,"	/* the last claim's */
	" lease_until DOUBLE PRECISION,"	/* database clock, seconds */
	" attempts INTEGER NOT NULL DEFAULT 0,"	/* claims so far */
	" claimed_at DOUBLE PRECISION, finished_at DOUBLE PRECISION,"
	" outcome TEXT,"		/* uploaded | present (already there) */
	" dst_remote TEXT, dst_key TEXT, etag TEXT, error TEXT,"
	" vars TEXT,"			/* the plan line's captures, JSON */
	" src_url TEXT, dst_url TEXT,"	/* old -> new, for mediactl rewrite */
	" PRIMARY KEY(plan, seq))",
	"CREATE INDEX IF NOT EXISTS ledger_entries_state ON "
	"ledger_entries(plan, state, seq)",
	"CREATE INDEX IF NOT EXISTS ledger_entries_worker ON "
	"ledger_entries(worker, state)",
	"CREATE TABLE IF NOT EXISTS ledger_workers("
	" worker TEXT PRIMARY KEY,"	/* host:pid:time */
	" host TEXT NOT NULL, plan TEXT NOT NULL,"
	" lease DOUBLE PRECISION NOT NULL,"	/* seconds */
	" started_at DOUBLE PRECISION NOT NULL,"
	" heartbeat_at DOUBLE PRECISION NOT NULL,"
	" finished_at DOUBLE PRECISION)",
	/* a plan's global rate limit, for stores that limit per account:
	 * each file takes the slot next_at (database clock), which moves
	 * on by 1/rate (a generic cell rate algorithm without bursts) */
	"CREATE TABLE IF NOT EXISTS ledger_rates("
	" plan TEXT PRIMARY KEY,"
	" rate DOUBLE PRECISION NOT NULL,"	/* files per second */
	" next_at DOUBLE PRECISION NOT NULL)",
};

/* Columns since the first ledger (mediactl rewrite's pairs). */
static const char *const added[] = {
	"ALTER TABLE ledger_entries ADD COLUMN vars TEXT",
	"ALTER TABLE ledger_entries ADD COLUMN src_url TEXT",
	"ALTER TABLE ledger_entries ADD COLUMN dst_url TEXT",
};

#define PG_NOW "CAST(extract(epoch from clock_timestamp()) AS DOUBLE PRECISION)"
#define SQ_NOW "((julianday('now') - 2440587.5) * 86400.0)"

static int is_pg(const char *p)
{
	return p && (str_starts(p, "postgres://") ||
		     str_starts(p, "postgresql://") ||
		     strstr(p, "dbname=") || strstr(p, "host="));
}

int cli_journal_is_pg(const struct cli *c)
{
	return is_pg(c->journal_path);
}

int cli_use_ledger(const struct cli *c)
{
	return c->ledger_path || cli_journal_is_pg(c);
}

/* --ledger, else --journal: PostgreSQL, or a SQLite file (the journal
 * itself, or a file of its own, created here). */
int ledger_open(struct cli *c, struct ledger *l)
{
	const char *conn = c->ledger_path ? c->ledger_path : c->journal_path;
	struct errbuf eb = { 0 };
	enum mfs_err rc;
	size_t i;

	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->pg = is_pg(conn);
	l->now = l->pg ? PG_NOW : SQ_NOW;
	if (!l->pg && !c->ledger_path && cli_journal(c))
		return EXIT_STORE;	/* cli_journal creates the file */
	if (!l->pg && c->ledger_path) {
		FILE *f = fopen(conn, "a");

		if (!f)
			return cli_fail(EXIT_STORE, "ledger %s: %s", conn,
					strerror(errno));
		fclose(f);
	}
	rc = l->pg ? db_pg_open(conn, &l->d, &eb) :
		     db_sqlite_open(conn, &l->d, &eb);
	if (rc)
		return cli_fail(EXIT_STORE, "ledger: %s", eb.msg);
	/* no "already exists, skipping" notices on stderr */
	if (l->pg && l->d->ops->exec(l->d, "SET client_min_messages TO warning",
				     NULL, 0, NULL, &eb))
		return cli_fail(EXIT_STORE, "ledger: %s", eb.msg);
	for (i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
		if (l->d->ops->exec(l->d, schema[i], NULL, 0, NULL, &eb))
			return cli_fail(EXIT_STORE, "ledger: %s", eb.msg);
	/* a ledger made before the rewrite's columns: added */
	if (l->d->ops->exec(l->d, "SELECT vars, src_url, dst_url FROM"
			    " ledger_entries LIMIT 0", NULL, 0, NULL, NULL))
		for (i = 0; i < sizeof(added) / sizeof(added[0]); i++)
			if (l->d->ops->exec(l->d, added[i], NULL, 0, NULL, &eb))
				return cli_fail(EXIT_STORE, "ledger: %s",
						eb.msg);
	return 0;
}

void ledger_close(struct ledger *l)
{
	db_close(l->d);
	l->d = NULL;
	pthread_mutex_destroy(&l->lock);
}

/* One statement under the lock; the error printed when eb is NULL. */
static enum mfs_err lexec(struct ledger *l, const char *sql,
			  const char *const *p, int n, int64_t *changes)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc;
	double t0;

	pthread_mutex_lock(&l->lock);
	l->queries++;
	t0 = cli_now();
	rc = l->d->ops->exec(l->d, sql, p, n, changes, &eb);
	l->qsecs += cli_now() - t0;
	pthread_mutex_unlock(&l->lock);
	if (rc)
		fprintf(stderr, "mediactl: ledger: %s\n", eb.msg);
	return rc;
}

enum mfs_err ledger_query(struct ledger *l, const char *sql,
			  const char *const *p, int n, db_row_cb cb, void *ud)
{
	struct errbuf eb = { 0 };
	enum mfs_err rc;
	double t0;

	pthread_mutex_lock(&l->lock);
	l->queries++;
	t0 = cli_now();
	rc = l->d->ops->query(l->d, sql, p, n, cb, ud, &eb);
	l->qsecs += cli_now() - t0;
	pthread_mutex_unlock(&l->lock);
	if (rc)
		fprintf(stderr, "mediactl: ledger: %s\n", eb.msg);
	return rc;
}

/* sql with every "NOW" replaced by the server clock, malloc'd. */
char *ledger_sql(const struct ledger *l, const char *sql)
{
	struct buf b;
	const char *p = sql, *q;

	buf_init(&b, 0);
	while ((q = strstr(p, "NOW"))) {
		if (buf_add(&b, p, (size_t)(q - p)) || buf_adds(&b, l->now))
			goto fail;
		p = q + 3;
	}
	if (buf_adds(&b, p))
		goto fail;
	return buf_take(&b);
fail:
	buf_cleanup(&b);
	return NULL;
}

int ledger_first_row(void *ud, int ncol, const char *const *v)
{
	char **out = ud;

	if (ncol > 0 && v[0] && !*out)
		*out = strdup(v[0]);
	return 1;
}

/* ---- mediactl load */

struct loader {
	struct ledger *l;
	const char *name;
	struct buf sql;
	const char **p;		/* the batch's parameters */
	char **own;		/* strings to free with the batch */
	int np, nown, rows;
	int64_t seq;
};

#define LOAD_BATCH 200
#define LOAD_COLS 7
#define LOAD_OWN 6		/* strings owned per entry */

static void batch_reset(struct loader *ld)
{
	int i;

	for (i = 0; i < ld->nown; i++)
		free(ld->own[i]);
	ld->nown = ld->np = ld->rows = 0;
	buf_cleanup(&ld->sql);
	buf_init(&ld->sql, 0);
}

static enum mfs_err batch_flush(struct loader *ld)
{
	enum mfs_err rc = MFS_OK;

	if (ld->rows) {
		if (buf_adds(&ld->sql, " ON CONFLICT (plan, seq) DO NOTHING"))
			rc = MFS_ENOMEM;
		else
			rc = lexec(ld->l, ld->sql.data, ld->p, ld->np, NULL);
	}
	batch_reset(ld);
	return rc;
}

/* Queue one entry; takes ownership of src, dst, type and vars (freed
 * with the batch even on failure). */
static enum mfs_err batch_add(struct loader *ld, char *src, char *dst,
			      char *type, char *vars, int64_t size)
{
	char *seq = str_fmt("%lld", (long long)ld->seq);
	char *sz = str_fmt("%lld", (long long)size);
	char *ph;
	int b = ld->np;

	ld->own[ld->nown++] = src;
	ld->own[ld->nown++] = dst;
	ld->own[ld->nown++] = type;
	ld->own[ld->nown++] = vars;
	ld->own[ld->nown++] = seq;
	ld->own[ld->nown++] = sz;
	if (!seq || !sz || !src || !dst)
		return MFS_ENOMEM;
	ld->p[ld->np++] = ld->name;
	ld->p[ld->np++] = seq;
	ld->p[ld->np++] = src;
	ld->p[ld->np++] = dst;
	ld->p[ld->np++] = type;
	ld->p[ld->np++] = sz;
	ld->p[ld->np++] = vars;
	ph = str_fmt("%s($%d,CAST($%d AS BIGINT),$%d,$%d,$%d,"
		     "CAST($%d AS BIGINT),$%d,'queued')",
		     ld->rows ? "," : "INSERT INTO ledger_entries(plan,seq,src,"
		     "dst,type,size,vars,state) VALUES", b + 1, b + 2, b + 3,
		     b + 4, b + 5, b + 6, b + 7);
	if (!ph || buf_adds(&ld->sql, ph)) {
		free(ph);
		return MFS_ENOMEM;
	}
	free(ph);
	ld->rows++;
	ld->seq++;
	return ld->rows == LOAD_BATCH ? batch_flush(ld) : MFS_OK;
}

/* Set (rate > 0) or drop a plan's global rate limit. */
static enum mfs_err set_rate(struct ledger *l, const char *plan, double rate)
{
	char r[32];
	const char *p[] = { plan, r };

	snprintf(r, sizeof(r), "%.6f", rate);
	if (rate <= 0)
		return lexec(l, "DELETE FROM ledger_rates WHERE plan=$1", p, 1,
			     NULL);
	return lexec(l, "INSERT INTO ledger_rates(plan,rate,next_at) VALUES"
		     "($1,CAST($2 AS DOUBLE PRECISION),0) ON CONFLICT(plan)"
		     " DO UPDATE SET rate=excluded.rate", p, 2, NULL);
}

static const char load_usage[] =
	"usage: mediactl load PLAN [--name NAME] [--rate FILES_PER_S]\n"
	"                          (mediactl --ledger LEDGER …)\n"
	"Load a plan from 'mediactl plan' into the ledger once, as a queue that\n"
	"'mediactl work' on any number of hosts takes entries from. LEDGER is a\n"
	"PostgreSQL connection string (postgres://user@host/db; the password\n"
	"from PGPASSWORD or ~/.pgpass) or the SQLite journal. Loading the same\n"
	"NAME again changes nothing. NAME defaults to the plan file's name.\n"
	"--rate: at most this many files per second for all workers together\n"
	"(held in the ledger, on its clock; for stores that limit per account);\n"
	"given for a loaded plan it changes the limit (0: none) for workers that\n"
	"start from then on.\n";

int cmd_load(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ledger l;
	struct loader ld = { 0 };
	double rate = -1;
	char *end;
	char *name = NULL, *have = NULL, *line = NULL, *from = NULL,
	     *to = NULL, *label = NULL;
	const char *plan;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	FILE *f = NULL;
	int ch, ret = 0, began = 0;

	while ((ch = getopt_long(argc, argv, "n:r:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			free(name);
			name = strdup(optarg);
			break;
		case 'r':
			rate = strtod(optarg, &end);
			if (*end || !(rate >= 0 && rate <= 1e6)) {
				free(name);
				return cli_fail(EXIT_USAGE, "--rate takes 0 to 1000000 files per second");
			}
			break;
		case 'h':
			fputs(load_usage, stdout);
			free(name);
			return 0;
		default:
			fputs(load_usage, stderr);
			free(name);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fputs(load_usage, stderr);
		free(name);
		return EXIT_USAGE;
	}
	plan = argv[optind];
	if (!name) {
		const char *b = strrchr(plan, '/');
		char *dot;

		name = strdup(b ? b + 1 : plan);
		if (name && (dot = strrchr(name, '.')) && dot != name)
			*dot = '\0';
	}
	f = fopen(plan, "r");
	if (!f) {
		free(name);
		return cli_fail(EXIT_USAGE, "cannot open plan %s: %s", plan,
				strerror(errno));
	}
	if ((ret = ledger_open(c, &l))) {
		fclose(f);
		free(name);
		ledger_close(&l);
		return ret;
	}
	{
		const char *p[] = { name };

		if (ledger_query(&l, "SELECT entries FROM ledger_plans WHERE name=$1",
			         p, 1, ledger_first_row, &have)) {
			ret = EXIT_STORE;
			goto out;
		}
	}
	if (have) {
		if (rate < 0)
			printf("load: plan '%s' is in the ledger already (%s entries); nothing changed\n",
			       name, have);
		else if (set_rate(&l, name, rate))
			ret = EXIT_STORE;
		else
			printf("load: plan '%s' is in the ledger already (%s entries); rate limit %s\n",
			       name, have, rate > 0 ? "set" : "removed");
		goto out;
	}
	ld.l = &l;
	ld.name = name;
	buf_init(&ld.sql, 0);
	ld.p = calloc(LOAD_BATCH * LOAD_COLS, sizeof(*ld.p));
	ld.own = calloc(LOAD_BATCH * LOAD_OWN, sizeof(*ld.own));
	if (!ld.p || !ld.own) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if (lexec(&l, "BEGIN", NULL, 0, NULL)) {
		ret = EXIT_STORE;
		goto out;
	}
	began = 1;
	while ((len = getline(&line, &cap, f)) > 0) {
		struct errbuf eb = { 0 };
		struct js *o = NULL;

		lineno++;
		if (js_parse(line, (size_t)len, &o, &eb)) {
			ret = cli_fail(EXIT_USAGE, "plan %s line %ld: %s", plan,
				       lineno, eb.msg);
			break;
		}
		if (lineno == 1) {
			if (!js_get(o, "mediactl_plan") ||
			    !js_get_str(o, "from") || !js_get_str(o, "to")) {
				js_free(o);
				ret = cli_fail(EXIT_USAGE, "%s is not a plan from 'mediactl plan' (line 1)",
					       plan);
				break;
			}
			from = strdup(js_get_str(o, "from"));
			to = strdup(js_get_str(o, "to"));
			label = cli_dup0(js_get_str(o, "label"));
		} else {
			int64_t size = 0;
			const char *s = js_get_str(o, "src");
			const char *d = js_get_str(o, "dst");

			js_int(js_get(o, "size"), &size);
			if (!s || !d) {
				js_free(o);
				ret = cli_fail(EXIT_USAGE, "plan %s line %ld: no src or dst",
					       plan, lineno);
				break;
			}
			if (batch_add(&ld, strdup(s), strdup(d),
				      cli_dup0(js_get_str(o, "type")),
				      js_get(o, "vars") ?
				      js_dump(js_get(o, "vars"), 1) : NULL,
				      size)) {
				js_free(o);
				ret = cli_fail(EXIT_STORE, "ledger: loading failed");
				break;
			}
		}
		js_free(o);
	}
	if (!ret && lineno == 0)
		ret = cli_fail(EXIT_USAGE, "plan %s is empty", plan);
	if (!ret && batch_flush(&ld))
		ret = cli_fail(EXIT_STORE, "ledger: loading failed");
	if (!ret) {
		char n[32];
		const char *p[] = { name, from, to, label, n };
		char *sql = ledger_sql(&l, "INSERT INTO ledger_plans(name,from_dir,"
				       "to_dir,label,entries,loaded_at) VALUES"
				       "($1,$2,$3,$4,CAST($5 AS BIGINT),NOW)");

		snprintf(n, sizeof(n), "%lld", (long long)ld.seq);
		if (!sql || lexec(&l, sql, p, 5, NULL) ||
		    (rate > 0 && set_rate(&l, name, rate)) ||
		    lexec(&l, "COMMIT", NULL, 0, NULL))
			ret = EXIT_STORE;
		else
			began = 0;
		free(sql);
	}
	if (!ret) {
		char *red = db_redacted(c->ledger_path ? c->ledger_path :
						 c->journal_path);

		printf("load: plan '%s': %lld entries queued in %s", name,
		       (long long)ld.seq, red ? red : "the ledger");
		if (rate > 0)
			printf(", at most %g files/s", rate);
		putchar('\n');
		free(red);
	}
out:
	if (began)
		lexec(&l, "ROLLBACK", NULL, 0, NULL);
	batch_reset(&ld);
	buf_cleanup(&ld.sql);
	free(ld.p);
	free(ld.own);
	free(line);
	free(from);
	free(to);
	free(label);
	free(have);
	free(name);
	fclose(f);
	ledger_close(&l);
	return ret;
}

/* ---- mediactl work */

struct claim {
	char *seq, *src, *dst, *type;
	int64_t size;
	int attempts;
};

struct claims {
	struct claim *e;
	int n, cap;
};

static int claim_row(void *ud, int ncol, const char *const *v)
{
	struct claims *cs = ud;
	struct claim *e;

	if (ncol < 6 || !v[0] || !v[1] || !v[2] || cs->n == cs->cap)
		return 0;
	e = &cs->e[cs->n++];
	e->seq = strdup(v[0]);
	e->src = strdup(v[1]);
	e->dst = strdup(v[2]);
	e->type = cli_dup0(v[3]);
	e->size = v[4] ? strtoll(v[4], NULL, 10) : 0;
	e->attempts = v[5] ? (int)strtol(v[5], NULL, 10) : 1;
	return 0;
}

static void claims_clear(struct claims *cs)
{
	int i;

	for (i = 0; i < cs->n; i++) {
		free(cs->e[i].seq);
		free(cs->e[i].src);
		free(cs->e[i].dst);
		free(cs->e[i].type);
	}
	cs->n = 0;
}

struct worker {
	struct ledger *l;
	const char *plan, *host, *from, *to;
	char id[192];
	char lease_s[32];
	double lease;
	int batch;
	struct cli *c;
	/* guarded by lock, set once (resolved): the target's remote and
	 * the key of --to on it, for the store check of re-claims */
	int resolved;
	struct backend *be;
	char *prefix;
	char *claim_sql, *left_sql, *beat_sql, *beat2_sql;
	char *rate_sql;		/* the plan's next slot, when rated */
	int rated;		/* the plan has a global rate limit */
	double bwlimit;		/* --bwlimit, bytes per second; 0: none */
	double bw_next;		/* guarded by lock: the next file's start
				 * under --bwlimit, cli_now() seconds */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;		/* guarded by lock: heartbeat ends */
	/* guarded by lock: */
	uint64_t files, bytes, uploaded, present, failed, lost, reclaimed;
	int db_failed;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static char *xattr_get(const char *path, const char *name)
{
	char v[1024];
	ssize_t n = getxattr(path, name, v, sizeof(v) - 1);

	if (n < 0)
		return NULL;
	v[n] = '\0';
	return strdup(v);
}

/* One file's result, kept until its batch is recorded (strings owned). */
struct result {
	const struct claim *e;
	int err, present;
	char *dr, *dk, *et, *su, *du, *error;
	int recorded;		/* the ledger took it (our claim held) */
};

static void result_clear(struct result *r)
{
	free(r->dr);
	free(r->dk);
	free(r->et);
	free(r->su);
	free(r->du);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

/* One entry's result, with the source's and the target's URLs (what
 * 'mediactl rewrite' maps), for the batch's statement. */
static void result_set(struct worker *w, struct result *r,
		       const struct claim *e, int err, const char *step,
		       int present, const char *src, const char *dst,
		       const struct obj_meta *head, const char *head_key)
{
	r->e = e;
	r->err = err;
	r->present = present;
	r->dr = err ? NULL : head ? strdup(w->be->name) :
		xattr_get(dst, "user.mediafs.remote");
	r->dk = err ? NULL : head && head_key ? strdup(head_key) :
		xattr_get(dst, "user.mediafs.key");
	r->et = err ? NULL : head ? strdup(head->etag) :
		xattr_get(dst, "user.mediafs.etag");
	r->su = err ? NULL : xattr_get(src, "user.mediafs.url");
	if (!err && head && head_key && w->be->ops->url(w->be, head_key,
							&r->du))
		r->du = NULL;
	else if (!err && !head)
		r->du = xattr_get(dst, "user.mediafs.url");
	r->error = err ? str_fmt("%s: %s", step, strerror(err)) : NULL;
	if (err)
		fprintf(stderr, "mediactl: %s -> %s: %s\n", e->src, e->dst,
			r->error);
}

static int returned_seq(void *ud, int ncol, const char *const *v)
{
	struct result **rs = ud;
	int i;

	if (ncol < 1 || !v[0])
		return 0;
	for (i = 0; rs[i]; i++)
		if (!strcmp(rs[i]->e->seq, v[0]))
			rs[i]->recorded = 1;
	return 0;
}

#define RESULT_COLS 9

/* Record a batch's results in one statement, each fenced by our claim
 * (worker and state): the entries whose lease expired and went to
 * another worker are not returned, and count as lost. */
static void record_batch(struct worker *w, struct result *rs, int n)
{
	struct result **list = calloc((size_t)n + 1, sizeof(*list));
	const char **p = calloc((size_t)(2 + RESULT_COLS * n), sizeof(*p));
	struct buf sql;
	enum mfs_err rc = MFS_ENOMEM;
	char *full = NULL;
	int i, k = 2, oom = 0;

	if (!n) {
		free(list);
		free(p);
		return;
	}
	buf_init(&sql, 0);
	oom |= !list || !p || buf_adds(&sql, "WITH v(seq,state,outcome,error,"
				       "dr,dk,et,su,du) AS (VALUES ");
	for (i = 0; !oom && i < n; i++) {
		struct result *r = &rs[i];

		list[i] = r;
		p[k] = r->e->seq;
		p[k + 1] = r->err ? "failed" : "done";
		p[k + 2] = r->err ? NULL : r->present ? "present" : "uploaded";
		p[k + 3] = r->error;
		p[k + 4] = r->dr;
		p[k + 5] = r->dk;
		p[k + 6] = r->et;
		p[k + 7] = r->su;
		p[k + 8] = r->du;
		oom |= buf_addf(&sql, "%s(CAST($%d AS BIGINT),CAST($%d AS TEXT),"
				"CAST($%d AS TEXT),CAST($%d AS TEXT),"
				"CAST($%d AS TEXT),CAST($%d AS TEXT),"
				"CAST($%d AS TEXT),CAST($%d AS TEXT),"
				"CAST($%d AS TEXT))", i ? "," : "", k + 1,
				k + 2, k + 3, k + 4, k + 5, k + 6, k + 7,
				k + 8, k + 9) != MFS_OK;
		k += RESULT_COLS;
	}
	oom |= !oom && buf_adds(&sql, ") UPDATE ledger_entries SET"
		" state=v.state, outcome=v.outcome, error=v.error,"
		" dst_remote=v.dr, dst_key=v.dk, etag=v.et, src_url=v.su,"
		" dst_url=v.du, finished_at=NOW, lease_until=NULL FROM v"
		" WHERE ledger_entries.plan=$1 AND ledger_entries.seq=v.seq"
		" AND ledger_entries.worker=$2 AND"
		" ledger_entries.state='claimed' RETURNING ledger_entries.seq");
	if (!oom) {
		full = ledger_sql(w->l, sql.data);
		p[0] = w->plan;
		p[1] = w->id;
		if (full)
			rc = ledger_query(w->l, full, p, k, returned_seq, list);
	}
	pthread_mutex_lock(&w->lock);
	for (i = 0; i < n; i++) {
		struct result *r = &rs[i];

		if (rc)
			w->db_failed = 1;
		else if (!r->recorded)
			w->lost++;	/* our lease expired, another took it */
		else if (r->err)
			w->failed++;
		else {
			w->files++;
			w->bytes += (uint64_t)r->e->size;
			if (r->present)
				w->present++;
			else
				w->uploaded++;
		}
	}
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < n; i++) {
		if (!rc && !rs[i].recorded)
			fprintf(stderr, "mediactl: %s: the lease expired before the result was recorded; "
				"the entry's new owner records it\n", rs[i].e->dst);
		result_clear(&rs[i]);
	}
	if (oom)
		fprintf(stderr, "mediactl: ledger: out of memory\n");
	buf_cleanup(&sql);
	free(full);
	free(list);
	free(p);
}

static int count_row(void *ud, int ncol, const char *const *v)
{
	int64_t *n = ud;

	*n = ncol > 0 && v[0] ? strtoll(v[0], NULL, 10) : 0;
	return 1;
}

/* A re-claimed entry: its previous owner died or stalled, maybe after
 * the upload. Ask the store itself (HEAD, not the mount's cache, whose
 * listing may predate that upload): 1 when the key holds src's size and
 * mtime, *head filled. */
static int on_store(struct worker *w, const struct claim *e, const char *src,
		    struct obj_meta *head, char **keyout)
{
	struct errbuf eb = { 0 };
	struct stat st;
	char *key;
	int yes;

	pthread_mutex_lock(&w->lock);
	if (!w->resolved) {
		/* from any recorded upload: its key ends with its dst */
		struct claims one = { 0 };
		struct claim r = { 0 };
		const char *p[] = { w->plan };
		size_t kn, dn;

		w->resolved = 1;
		one.e = &r;
		one.cap = 1;
		if (!ledger_query(w->l, "SELECT dst_remote, dst_key, dst, type, size,"
			          " attempts FROM ledger_entries WHERE plan=$1 AND"
			          " state='done' AND dst_key IS NOT NULL AND"
			          " dst_remote IS NOT NULL LIMIT 1", p, 1,
			          claim_row, &one) && one.n &&
		    (kn = strlen(r.src)) >= (dn = strlen(r.dst)) &&
		    !strcmp(r.src + kn - dn, r.dst)) {
			kn -= dn;
			while (kn && r.src[kn - 1] == '/')
				kn--;
			w->prefix = strndup(r.src, kn);
			if (w->prefix)
				w->be = cli_backend(w->c, r.seq);
		}
		claims_clear(&one);
	}
	pthread_mutex_unlock(&w->lock);
	if (!w->be || stat(src, &st))
		return 0;
	key = w->prefix[0] ? str_fmt("%s/%s", w->prefix, e->dst) :
			     strdup(e->dst);
	if (!key)
		return 0;
	memset(head, 0, sizeof(*head));
	yes = !w->be->ops->head(w->be, key, head, &eb) &&
	      head->size == (uint64_t)st.st_size &&
	      head->mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 +
				st.st_mtim.tv_nsec;
	if (yes)
		*keyout = key;
	else
		free(key);
	return yes;
}

/* Sleep up to s seconds, or until the worker stops. */
static void nap(struct worker *w, double s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)s;
	ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->stop && !interrupted)
		pthread_cond_timedwait(&w->wake, &w->lock, &ts);
	pthread_mutex_unlock(&w->lock);
}

/* Wait for one file's turn: a slot of the plan's global rate (from the
 * ledger, on its clock: the wait until the slot, or none when it has
 * passed) and this worker's bandwidth cap (file by file: a file starts
 * once the bytes before it fit under the cap). Either wait holds the
 * file back, not the claim: the lease is renewed meanwhile. 0, or -1
 * when the ledger failed. */
static int pace(struct worker *w, const struct claim *e)
{
	double wait = 0, now, start, until;

	if (w->rated) {
		const char *p[] = { w->plan };
		char *v = NULL;

		if (ledger_query(w->l, w->rate_sql, p, 1, ledger_first_row, &v))
			return -1;
		wait = v ? strtod(v, NULL) : 0;
		free(v);
	}
	if (w->bwlimit > 0) {
		pthread_mutex_lock(&w->lock);
		now = cli_now();
		start = w->bw_next > now ? w->bw_next : now;
		w->bw_next = start + (double)e->size / w->bwlimit;
		pthread_mutex_unlock(&w->lock);
		if (start - now > wait)
			wait = start - now;
	}
	until = cli_now() + wait;
	while (!interrupted && (wait = until - cli_now()) > 0)
		nap(w, wait);
	return 0;
}

static void *copier(void *arg)
{
	struct worker *w = arg;
	struct claims cs = { 0 };
	struct result *rs;
	char batch[16];
	int nr;

	snprintf(batch, sizeof(batch), "%d", w->batch);
	cs.cap = w->batch;
	cs.e = calloc((size_t)cs.cap, sizeof(*cs.e));
	rs = calloc((size_t)cs.cap, sizeof(*rs));
	if (!cs.e || !rs) {
		free(cs.e);
		free(rs);
		return NULL;
	}
	while (!interrupted) {
		const char *p[] = { w->plan, w->id, w->host, w->lease_s, batch };
		int i, dead;

		pthread_mutex_lock(&w->lock);
		dead = w->db_failed;
		pthread_mutex_unlock(&w->lock);
		if (dead)
			break;
		if (ledger_query(w->l, w->claim_sql, p, 5, claim_row, &cs)) {
			pthread_mutex_lock(&w->lock);
			w->db_failed = 1;
			pthread_mutex_unlock(&w->lock);
			break;
		}
		if (!cs.n) {
			/* nothing free: done, or another worker holds a
			 * lease that may yet expire */
			int64_t left = -1;
			const char *q[] = { w->plan };

			if (ledger_query(w->l, w->left_sql, q, 1, count_row,
				         &left) || left <= 0)
				break;
			nap(w, w->lease / 4 < 1 ? w->lease / 4 : 1);
			continue;
		}
		for (i = 0, nr = 0; i < cs.n; i++) {
			struct claim *e = &cs.e[i];
			char *src = str_fmt("%s/%s", w->from, e->src);
			char *dst = str_fmt("%s/%s", w->to, e->dst);
			const char *step = "out of memory";
			struct obj_meta head;
			char *head_key = NULL;
			int present = 0, err, found = 0;

			if (interrupted || pace(w, e)) {
				free(src);
				free(dst);
				if (!interrupted) {
					pthread_mutex_lock(&w->lock);
					w->db_failed = 1;
					pthread_mutex_unlock(&w->lock);
				}
				break;	/* the rest is released at exit */
			}
			if (e->attempts > 1) {
				pthread_mutex_lock(&w->lock);
				w->reclaimed++;
				pthread_mutex_unlock(&w->lock);
				found = src && dst && on_store(w, e, src, &head,
								   &head_key);
			}
			if (found)
				err = 0, present = 1;
			else
				err = src && dst ? copy_file(src, dst, e->type,
							     &step, &present) :
						   ENOMEM;
			if (src && dst)
				result_set(w, &rs[nr++], e, err, step, present,
					   src, dst, found ? &head : NULL,
					   head_key);
			free(head_key);
			free(src);
			free(dst);
		}
		record_batch(w, rs, nr);
		claims_clear(&cs);
	}
	claims_clear(&cs);
	free(cs.e);
	free(rs);
	return NULL;
}

static void *heartbeat(void *arg)
{
	struct worker *w = arg;
	const char *p[] = { w->id, w->lease_s };

	for (;;) {
		int stop;

		nap(w, w->lease / 3);
		pthread_mutex_lock(&w->lock);
		stop = w->stop;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		/* the heartbeat's time first: a lease always ends after
		 * heartbeat + lease, so a worker whose entries were taken
		 * over shows as lost */
		lexec(w->l, w->beat2_sql, p, 1, NULL);
		lexec(w->l, w->beat_sql, p, 2, NULL);
	}
	return NULL;
}

static const char work_usage[] =
	"usage: mediactl work [--plan NAME] [--from DIR] [--to DIR]\n"
	"                     [--host NAME] [--threads N] [--batch N] [--lease SECONDS]\n"
	"                     [--bwlimit BYTES_PER_S]\n"
	"Take entries of a loaded plan from the ledger and copy them through this\n"
	"host's mediafs mount until none is left. --from/--to: where the plan's\n"
	"source and target are on this host (default: the plan's). Each thread\n"
	"claims --batch entries (default 8) under a lease of --lease seconds\n"
	"(default 60) that a heartbeat renews; the entries of a worker that dies\n"
	"go back to the queue when its lease expires. --host defaults to the\n"
	"host name. This host's limits: --threads files at once (with the mount's\n"
	"-o upload_workers), --bwlimit bytes per second (K, M, G suffixes), paced\n"
	"file by file; the plan's global rate ('load --rate') is taken from the\n"
	"ledger before each file.\n"
	"Exit 0 when every entry this worker took is done, 1 when some\n"
	"failed, 3 when the ledger failed, 130 when interrupted (entries released).\n";

int cmd_work(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plan", required_argument, NULL, 'p' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "host", required_argument, NULL, 'H' },
		{ "threads", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "lease", required_argument, NULL, 'l' },
		{ "bwlimit", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker w = { 0 };
	struct ledger l;
	const char *plan = NULL, *from = NULL, *to = NULL, *host = NULL;
	char hostname[128], *pfrom = NULL, *pto = NULL, *pname = NULL;
	pthread_t tids[64], hb;
	struct sigaction sa;
	int ch, ret = 0, threads = 2, batch = 8, i, started = 0, hb_on = 0;
	double lease = 60, t0, bwlimit = 0;
	char *end;

	while ((ch = getopt_long(argc, argv, "p:f:t:H:n:b:l:B:h", opts,
				 NULL)) != -1) {
		switch (ch) {
		case 'p':
			plan = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'n':
			threads = (int)strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > 64)
				return cli_fail(EXIT_USAGE, "--threads takes 1 to 64");
			break;
		case 'b':
			batch = (int)strtol(optarg, &end, 10);
			if (*end || batch < 1 || batch > 1000)
				return cli_fail(EXIT_USAGE, "--batch takes 1 to 1000");
			break;
		case 'l':
			lease = strtod(optarg, &end);
			if (*end || !(lease >= 1 && lease <= 86400))
				return cli_fail(EXIT_USAGE, "--lease takes 1 to 86400 seconds");
			break;
		case 'B':
			bwlimit = strtod(optarg, &end);
			if (*end == 'k' || *end == 'K')
				bwlimit *= 1024, end++;
			else if (*end == 'm' || *end == 'M')
				bwlimit *= 1024 * 1024, end++;
			else if (*end == 'g' || *end == 'G')
				bwlimit *= 1024.0 * 1024 * 1024, end++;
			if (*end || !(bwlimit >= 1))
				return cli_fail(EXIT_USAGE, "--bwlimit takes bytes per second (K, M, G suffixes)");
			break;
		case 'h':
			fputs(work_usage, stdout);
			return 0;
		default:
			fputs(work_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(work_usage, stderr);
		return EXIT_USAGE;
	}
	if (!host) {
		if (gethostname(hostname, sizeof(hostname)))
			snprintf(hostname, sizeof(hostname), "localhost");
		hostname[sizeof(hostname) - 1] = '\0';
		host = hostname;
	}
	if ((ret = ledger_open(c, &l))) {
		ledger_close(&l);
		return ret;
	}
	{
		struct claims one = { 0 };
		const char *p[] = { plan };
		struct claim pc = { 0 };

		/* the plan: the one named, or the only one */
		one.e = &pc;
		one.cap = 1;
		if (ledger_query(&l, plan ? "SELECT name,from_dir,to_dir,label,entries,"
			         "entries FROM ledger_plans WHERE name=$1" :
			         "SELECT name,from_dir,to_dir,label,entries,entries "
			         "FROM ledger_plans ORDER BY loaded_at DESC", p,
			         plan ? 1 : 0, claim_row, &one)) {
			ret = EXIT_STORE;
			goto out;
		}
		pname = pc.seq;
		pfrom = pc.src;
		pto = pc.dst;
		free(pc.type);
	}
	if (!pname) {
		ret = cli_fail(EXIT_USAGE, plan ? "no plan '%s' in the ledger ('mediactl load' first)" :
			       "no plan in the ledger ('mediactl load' first)%s",
			       plan ? plan : "");
		goto out;
	}
	w.l = &l;
	w.plan = pname;
	w.host = host;
	w.from = from ? from : pfrom;
	w.to = to ? to : pto;
	w.lease = lease;
	w.batch = batch;
	snprintf(w.lease_s, sizeof(w.lease_s), "%.3f", lease);
	w.c = c;
	snprintf(w.id, sizeof(w.id), "%s:%ld:%ld", host, (long)getpid(),
		 (long)time(NULL));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.wake, NULL);
	w.claim_sql = ledger_sql(&l, l.pg ?
		"WITH c AS MATERIALIZED (SELECT plan, seq FROM ledger_entries"
		" WHERE plan=$1 AND (state='queued' OR (state='claimed' AND"
		" lease_until < NOW)) ORDER BY seq LIMIT CAST($5 AS INTEGER)"
		" FOR UPDATE SKIP LOCKED)"
		" UPDATE ledger_entries SET state='claimed', worker=$2, host=$3,"
		" lease_until=NOW + CAST($4 AS DOUBLE PRECISION), claimed_at=NOW,"
		" attempts=attempts+1, error=NULL"
		" WHERE (plan, seq) IN (SELECT plan, seq FROM c)"
		" RETURNING seq, src, dst, type, size, attempts" :
		"UPDATE ledger_entries SET state='claimed', worker=$2, host=$3,"
		" lease_until=NOW + CAST($4 AS DOUBLE PRECISION), claimed_at=NOW,"
		" attempts=attempts+1, error=NULL"
		" WHERE (plan, seq) IN (SELECT plan, seq FROM ledger_entries"
		" WHERE plan=$1 AND (state='queued' OR (state='claimed' AND"
		" lease_until < NOW)) ORDER BY seq LIMIT CAST($5 AS INTEGER))"
		" RETURNING seq, src, dst, type, size, attempts");
	w.left_sql = strdup("SELECT count(*) FROM ledger_entries WHERE plan=$1"
			    " AND state IN ('queued','claimed')");
	w.beat_sql = ledger_sql(&l, "UPDATE ledger_entries SET lease_until=NOW +"
		" CAST($2 AS DOUBLE PRECISION) WHERE worker=$1 AND"
		" state='claimed'");
	w.beat2_sql = ledger_sql(&l, "UPDATE ledger_workers SET heartbeat_at=NOW"
			         " WHERE worker=$1");
	w.rate_sql = ledger_sql(&l, "UPDATE ledger_rates SET next_at=(CASE WHEN"
		" next_at > NOW THEN next_at ELSE NOW END) + 1.0/rate WHERE"
		" plan=$1 RETURNING next_at - 1.0/rate - NOW");
	w.bwlimit = bwlimit;
	if (!w.claim_sql || !w.left_sql || !w.beat_sql ||
	    !w.beat2_sql || !w.rate_sql) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	{
		const char *p[] = { w.id, host, pname, w.lease_s };
		char *sql = ledger_sql(&l, "INSERT INTO ledger_workers(worker,host,"
			"plan,lease,started_at,heartbeat_at) VALUES($1,$2,$3,"
			"CAST($4 AS DOUBLE PRECISION),NOW,NOW)");

		if (!sql || lexec(&l, sql, p, 4, NULL)) {
			free(sql);
			ret = EXIT_STORE;
			goto out;
		}
		free(sql);
	}
	{
		const char *p[] = { pname };
		char *r = NULL;

		if (ledger_query(&l, "SELECT rate FROM ledger_rates WHERE plan=$1", p,
			         1, ledger_first_row, &r)) {
			ret = EXIT_STORE;
			goto out;
		}
		w.rated = r != NULL;
		if (r)
			printf("work: plan '%s' is limited to %g files/s for all workers\n",
			       pname, strtod(r, NULL));
		free(r);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	t0 = cli_now();
	printf("work: worker %s on plan '%s': %s -> %s, %d threads, batches of %d, lease %.0f s\n",
	       w.id, pname, w.from, w.to, threads, batch, lease);
	if (!pthread_create(&hb, NULL, heartbeat, &w))
		hb_on = 1;
	for (i = 0; i < threads; i++)
		if (!pthread_create(&tids[i], NULL, copier, &w))
			started++;
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_lock(&w.lock);
	w.stop = 1;
	pthread_cond_broadcast(&w.wake);
	pthread_mutex_unlock(&w.lock);
	if (hb_on)
		pthread_join(hb, NULL);
	{
		const char *p[] = { w.id };
		char *sql = ledger_sql(&l, "UPDATE ledger_workers SET finished_at=NOW,"
				       "heartbeat_at=NOW WHERE worker=$1");

		/* what an interrupt left claimed goes back to the queue */
		lexec(&l, "UPDATE ledger_entries SET state='queued',"
		      " lease_until=NULL WHERE worker=$1 AND state='claimed'",
		      p, 1, NULL);
		if (sql)
			lexec(&l, sql, p, 1, NULL);
		free(sql);
	}
	{
		double s = cli_now() - t0;
		char b[32];
		uint64_t done = w.files + w.failed;

		cli_bytes(w.bytes, b, sizeof(b));
		printf("work: %s: %llu files (%llu uploaded, %llu already on the store), %s in %.1f s, "
		       "%llu failed, %llu re-claimed after an expired lease, %llu leases lost; "
		       "%llu ledger queries (%.2f per file, %.2f ms per file)\n",
		       w.id, (unsigned long long)w.files,
		       (unsigned long long)w.uploaded,
		       (unsigned long long)w.present, b, s,
		       (unsigned long long)w.failed,
		       (unsigned long long)w.reclaimed,
		       (unsigned long long)w.lost,
		       (unsigned long long)l.queries,
		       done ? (double)l.queries / (double)done : 0.0,
		       done ? 1000.0 * l.qsecs / (double)done : 0.0);
	}
	ret = interrupted ? EXIT_INTERRUPTED : w.db_failed ? EXIT_STORE :
	      w.failed ? EXIT_PROBLEMS : 0;
	pthread_cond_destroy(&w.wake);
	pthread_mutex_destroy(&w.lock);
out:
	free(w.prefix);
	free(w.claim_sql);
	free(w.left_sql);
	free(w.beat_sql);
	free(w.beat2_sql);
	free(w.rate_sql);
	free(pname);
	free(pfrom);
	free(pto);
	ledger_close(&l);
	return ret;
}
