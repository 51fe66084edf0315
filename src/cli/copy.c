/* copy.c - mediactl copy: execute a plan through the mount with N worker
 * threads. Each file is written under a temporary name rsync-style
 * (".NAME.mctlcp": mediafs holds such names until their rename, so the
 * upload happens once, under the final name), given the source's mtime
 * and mode, renamed, then fsync'ed through a read-only handle: mediafs
 * answers that fsync when the upload is on the server (or failed), so a
 * row marked done in the journal's copies table is a file on the store.
 * A crash or Ctrl-C loses at most the files in flight: a re-run skips
 * every (plan, source) done before and removes leftover temporaries.
 * Locking: lock guards next, the counters and the journal writes' order
 * (the journal has its own lock; ours keeps the counters consistent).
 * Calls: meta/journal, net/json, cli/util. */
#include <errno.h>
#include <fcntl.h>
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

#include "cli/cli.h"
#include "cli/maps.h"
#include "common/fsutil.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/json.h"

#define BUFSZ (1 << 20)
#define TEMP_SUFFIX ".mctlcp"

struct entry {
	char *src, *dst, *vars;	/* paths relative to from/to; vars JSON */
	char *type;		/* the content type the plan decided, or NULL */
	uint64_t size;
};

struct copier {
	struct cli *c;
	char *plan_abs, *from, *to;
	const char *label;
	struct entry *e;
	size_t n, next;
	pthread_mutex_t lock;
	/* guarded by lock: */
	uint64_t files_done, files_failed, files_skipped, bytes_done;
	uint64_t files_total, bytes_total;
	double t0;
	int stopping;
	int tty;
	double every;
	int finished;
	pthread_cond_t tick;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void entries_free(struct copier *cp)
{
	size_t i;

	for (i = 0; i < cp->n; i++) {
		free(cp->e[i].src);
		free(cp->e[i].dst);
		free(cp->e[i].vars);
		free(cp->e[i].type);
	}
	free(cp->e);
}

/* Read PLAN: its header, then one entry a line. */
static int load_plan(struct copier *cp, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;
	long lineno = 0;
	int ret = 0;

	if (!f)
		return cli_fail(EXIT_USAGE, "cannot open plan %s: %s", path,
				strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		struct errbuf eb = { 0 };
		struct js *o = NULL;

		lineno++;
		if (js_parse(line, (size_t)len, &o, &eb)) {
			ret = cli_fail(EXIT_USAGE, "plan %s line %ld: %s", path,
				       lineno, eb.msg);
			break;
		}
		if (lineno == 1) {
			const char *fr = js_str(js_get(o, "from"));
			const char *to = js_str(js_get(o, "to"));

			if (!js_get(o, "mediactl_plan") || !fr || !to) {
				js_free(o);
				ret = cli_fail(EXIT_USAGE, "%s is not a plan from 'mediactl plan' (line 1)",
					       path);
				break;
			}
			cp->from = strdup(fr);
			cp->to = strdup(to);
			if (!cp->label && js_str(js_get(o, "label")))
				cp->label = strdup(js_str(js_get(o, "label")));
		} else {
			struct entry *e;
			int64_t size = 0;
			const char *s = js_str(js_get(o, "src"));
			const char *d = js_str(js_get(o, "dst"));

			if (!s || !d) {
				js_free(o);
				ret = cli_fail(EXIT_USAGE, "plan %s line %ld: no src or dst",
					       path, lineno);
				break;
			}
			if (cp->n == alloc) {
				struct entry *ne = realloc(cp->e, sizeof(*ne) *
					(alloc = alloc ? alloc * 2 : 1024));

				if (!ne) {
					js_free(o);
					ret = cli_fail(EXIT_STORE, "out of memory");
					break;
				}
				cp->e = ne;
			}
			e = &cp->e[cp->n++];
			js_int(js_get(o, "size"), &size);
			e->size = size > 0 ? (uint64_t)size : 0;
			e->src = strdup(s);
			e->dst = strdup(d);
			e->vars = js_dump(js_get(o, "vars"), 1);
			e->type = js_str(js_get(o, "type")) ?
				  strdup(js_str(js_get(o, "type"))) : NULL;
		}
		js_free(o);
	}
	free(line);
	fclose(f);
	if (!ret && lineno == 0)
		ret = cli_fail(EXIT_USAGE, "plan %s is empty", path);
	return ret;
}

/* A mediafs xattr of path, malloc'd, or NULL (not on a mediafs mount). */
static char *xattr(const char *path, const char *name)
{
	char buf[4096];
	ssize_t n = getxattr(path, name, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* dst is the copy of src an interrupted run made (same mtime, and the
 * same size or, behind a compressing hook, the same original size)? */
static int already_there(const struct stat *sst, const char *dst)
{
	struct stat dstt;
	char v[32];
	ssize_t n;

	if (stat(dst, &dstt) || dstt.st_mtim.tv_sec != sst->st_mtim.tv_sec ||
	    dstt.st_mtim.tv_nsec != sst->st_mtim.tv_nsec)
		return 0;
	if (dstt.st_size == sst->st_size)
		return 1;
	n = getxattr(dst, "user.mediafs.original_size", v, sizeof(v) - 1);
	if (n <= 0)
		return 0;
	v[n] = '\0';
	return strtoll(v, NULL, 10) == (long long)sst->st_size;
}

/* dst, which already_there() found, is a copy the store holds or is
 * being given? The mount's word on it (user.mediafs.upload_state) alone
 * is not enough: a failed upload stays in the mount, its fsync answering
 * the old failure (the copy is made again: its rename replaces the failed
 * upload, which is sent anew), and a listing the mount cached (across
 * remounts, for cache_ttl) still shows an object deleted behind it, by a
 * rollback for one. A stored copy is proven by the store:
 * user.mediafs.refresh makes the mount ask it (one HEAD) and drop what is
 * gone, then dst is looked at again. A target that is no mediafs mount
 * (no such xattrs) is taken as it is. */
static int proven(const struct stat *sst, const char *dst)
{
	char v[1024];
	ssize_t n = getxattr(dst, "user.mediafs.upload_state", v,
			     sizeof(v) - 1);

	if (n < 0)	/* (ERANGE: a long "failed: why") */
		return errno == ENODATA || errno == ENOTSUP;
	v[n] = '\0';
	if (!strncmp(v, "failed", 6))
		return 0;
	if (strcmp(v, "done"))
		return 1;	/* pending or uploading: the fsync waits */
	if (setxattr(dst, "user.mediafs.refresh", "1", 1, 0))
		return 0;
	return already_there(sst, dst);
}

/* The source's own content type (a mediafs mount shows it as
 * user.mediafs.content_type), when it says more than "bytes": a plan that
 * decided no type (no {ext} in its rule) copies each object with the type
 * it had (S5: same keys, same Content-Type). NULL when there is none. */
static const char *source_type(int fd, char *buf, size_t cap)
{
	ssize_t n = fgetxattr(fd, "user.mediafs.content_type", buf, cap - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (!strcmp(buf, "application/octet-stream") ||
	    !strcmp(buf, "binary/octet-stream") || strchr(buf, '\n'))
		return NULL;
	return buf;
}

/* Copy one file; 0 on success, else errno with what in *step. type (the
 * plan's decision, or NULL) is set as the upload's content type; *present
 * (when given) says the target already held it. */
int copy_file(const char *src, const char *dst, const char *type,
	      const char **step, int *present)
{
	char *tmp = NULL, *dir = strdup(dst), *slash, *buf = NULL;
	int in = -1, out = -1, err = 0;
	struct stat st;
	ssize_t r;
	char stype[256];

	*step = "out of memory";
	if (!dir)
		return ENOMEM;
	slash = strrchr(dir, '/');
	*slash = '\0';
	tmp = str_fmt("%s/.%s" TEMP_SUFFIX, dir, slash + 1);
	buf = malloc(BUFSZ);
	if (!tmp || !buf) {
		err = ENOMEM;
		goto out;
	}
	*step = "creating the target folder";
	if (fsu_mkdirs(dir, 0755, 0)) {
		err = errno;
		goto out;
	}
	/* a temporary an interrupted run left behind */
	if (unlink(tmp) && errno != ENOENT) {
		*step = "removing an old temporary";
		err = errno;
		goto out;
	}
	*step = "opening the source";
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st)) {
		err = errno;
		goto out;
	}
	if (present)
		*present = 0;
	if (already_there(&st, dst) && proven(&st, dst)) {
		if (present)
			*present = 1;
		goto uploaded;
	}	/* only its upload may still be running */
	*step = "creating the target";
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		err = errno;
		goto out;
	}
	for (;;) {
		*step = "reading the source";
		r = read(in, buf, BUFSZ);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			goto out;
		}
		if (!r)
			break;
		*step = "writing the target";
		{
			ssize_t off = 0;

			while (off < r) {
				ssize_t w = write(out, buf + off,
						  (size_t)(r - off));

				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					err = errno;
					goto out;
				}
				off += w;
			}
		}
	}
	{
		struct timespec ts[2] = { st.st_atim, st.st_mtim };

		*step = "setting mtime and mode";
		if (fchmod(out, st.st_mode & 07777) || futimens(out, ts)) {
			err = errno;
			goto out;
		}
		/* the type the plan decided (and named the key by) is the
		 * type uploaded: it rides with the upload (a target that keeps
		 * no user xattrs is no mediafs mount: nothing to tell) */
		*step = "setting the content type";
		if (!type)
			type = source_type(in, stype, sizeof(stype));
		if (type && fsetxattr(out, "user.mediafs.content_type", type,
				      strlen(type), 0) && errno != ENOTSUP) {
			err = errno;
			goto out;
		}
	}
	*step = "closing the target (mediafs refused the data)";
	if (close(out)) {
		out = -1;
		err = errno;
		goto out;
	}
	out = -1;
	*step = "renaming the temporary";
	if (rename(tmp, dst)) {
		err = errno;
		goto out;
	}
uploaded:
	/* wait for the upload: mediafs answers fsync when it is stored */
	*step = "uploading (fsync)";
	out = open(dst, O_RDONLY | O_CLOEXEC);
	if (out < 0 || fsync(out))
		err = errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (err && tmp)
		unlink(tmp);
	free(tmp);
	free(dir);
	free(buf);
	return err;
}

/* The mount answers for dst's remote and key: 1, or 0 with errno when
 * asking failed (ENOTCONN: the daemon died after the fsync). A target that
 * is no mediafs mount (no such xattrs at all) counts as known. */
static int dst_known(const char *dst)
{
	char v[8];

	if (getxattr(dst, "user.mediafs.remote", v, 0) > 0 &&
	    getxattr(dst, "user.mediafs.key", v, 0) > 0)
		return 1;
	return errno == ENODATA || errno == ENOTSUP;
}

static void record(struct copier *cp, const struct entry *e, const char *src,
		   const char *dst, int err, const char *step, double t0)
{
	char *sr = xattr(src, "user.mediafs.remote");
	char *sk = xattr(src, "user.mediafs.key");
	char *su = xattr(src, "user.mediafs.url");
	/* also for a failure: where it was going, when the mount says */
	char *dr = xattr(dst, "user.mediafs.remote");
	char *dk = xattr(dst, "user.mediafs.key");
	char *du = xattr(dst, "user.mediafs.url");
	char *error = err ? str_fmt("%s: %s", step, strerror(err)) : NULL;
	char size[32], ts0[32], ts1[32];
	const char *p[] = { cp->plan_abs, cp->label, src, dst, e->src, sr, sk,
			    su, dr, dk, du, size, e->vars,
			    err ? "failed" : "done", error, ts0, ts1 };

	snprintf(size, sizeof(size), "%llu", (unsigned long long)e->size);
	snprintf(ts0, sizeof(ts0), "%.3f", t0);
	snprintf(ts1, sizeof(ts1), "%.3f", cli_now());
	/* the copy's row and its upload's label in one transaction: killed
	 * between them, a copy counted done would leave an upload no label
	 * names (rollback --label, verify and report would miss it); cp->lock
	 * keeps the other workers' rows out of it (one connection) */
	pthread_mutex_lock(&cp->lock);
	journal_exec(cp->c->j, "BEGIN", NULL, 0, NULL, NULL);
	journal_exec(cp->c->j,
		     "INSERT OR REPLACE INTO copies(plan,label,src,dst,rel,"
		     "src_remote,src_key,src_url,dst_remote,dst_key,dst_url,"
		     "size,vars,state,error,started_at,finished_at) VALUES"
		     "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
		     p, 17, NULL, NULL);
	if (!err && cp->label && dr && dk) {
		/* the upload belongs to the batch too */
		const char *q[] = { cp->label, dr, dk };

		journal_exec(cp->c->j,
			     "UPDATE uploads SET label=?1 WHERE id=(SELECT max(id)"
			     " FROM uploads WHERE remote=?2 AND key=?3 AND"
			     " state='done') AND label IS NULL",
			     q, 3, NULL, NULL);
	}
	if (journal_exec(cp->c->j, "COMMIT", NULL, 0, NULL, NULL))
		journal_exec(cp->c->j, "ROLLBACK", NULL, 0, NULL, NULL);
	pthread_mutex_unlock(&cp->lock);
	if (err)
		fprintf(stderr, "mediactl: %s -> %s: %s\n", e->src, e->dst,
			error);
	free(sr);
	free(sk);
	free(su);
	free(dr);
	free(dk);
	free(du);
	free(error);
}

static void *worker(void *arg)
{
	struct copier *cp = arg;

	for (;;) {
		struct entry *e;
		char *src, *dst;
		const char *step = "";
		double t0;
		int err;

		pthread_mutex_lock(&cp->lock);
		while (cp->next < cp->n && !cp->e[cp->next].src)
			cp->next++;	/* done by an earlier run */
		if (interrupted || cp->stopping || cp->next >= cp->n) {
			pthread_mutex_unlock(&cp->lock);
			break;
		}
		e = &cp->e[cp->next++];
		pthread_mutex_unlock(&cp->lock);
		src = str_fmt("%s/%s", cp->from, e->src);
		dst = str_fmt("%s/%s", cp->to, e->dst);
		t0 = cli_now();
		err = src && dst ? copy_file(src, dst, e->type, &step, NULL) : ENOMEM;
		if (!err && src && dst && !dst_known(dst)) {
			/* stored, but the mount cannot say where (it went
			 * away after the fsync): not done, a re-run checks */
			err = errno ? errno : EIO;
			step = "reading the destination's key (xattr)";
		}
		if (src && dst)
			record(cp, e, src, dst, err, step, t0);
		pthread_mutex_lock(&cp->lock);
		if (err) {
			cp->files_failed++;
		} else {
			cp->files_done++;
			cp->bytes_done += e->size;
		}
		pthread_mutex_unlock(&cp->lock);
		free(src);
		free(dst);
	}
	return NULL;
}

static void progress_line(struct copier *cp, int final)
{
	double el = cli_now() - cp->t0, rate, eta = 0;
	uint64_t files = cp->files_done + cp->files_failed;
	char b[32], t[32], r[32], e[32];
	int width = 24, fill, i;

	rate = el > 0 ? (double)cp->bytes_done / el : 0;
	if (rate > 0 && cp->bytes_total > cp->bytes_done)
		eta = (double)(cp->bytes_total - cp->bytes_done) / rate;
	else if (files && cp->files_total > files)
		eta = el / (double)files * (double)(cp->files_total - files);
	cli_bytes(cp->bytes_done, b, sizeof(b));
	cli_bytes(cp->bytes_total, t, sizeof(t));
	cli_bytes((uint64_t)rate, r, sizeof(r));
	cli_duration(eta, e, sizeof(e));
	if (cp->tty && !final) {
		fill = cp->files_total ? (int)((double)width * (double)files /
					       (double)cp->files_total) : width;
		fprintf(stderr, "\r[");
		for (i = 0; i < width; i++)
			fputc(i < fill ? '#' : '.', stderr);
		fprintf(stderr, "] %llu/%llu files, %s/%s, %s/s, ETA %s%s\033[K",
			(unsigned long long)files,
			(unsigned long long)cp->files_total, b, t, r, e,
			cp->files_failed ? ", some failed" : "");
	} else {
		fprintf(stderr, "%s%llu/%llu files (%llu failed), %s of %s, %s/s, %.0f files/min, ETA %s\n",
			cp->tty ? "\r\033[K" : "",
			(unsigned long long)files,
			(unsigned long long)cp->files_total,
			(unsigned long long)cp->files_failed, b, t, r,
			el > 0 ? 60.0 * (double)files / el : 0.0, e);
	}
	fflush(stderr);
}

static void *progress(void *arg)
{
	struct copier *cp = arg;
	struct timespec ts;

	pthread_mutex_lock(&cp->lock);
	while (!cp->finished) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)cp->every;
		ts.tv_nsec += (long)((cp->every - (double)(time_t)cp->every) * 1e9);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cp->tick, &cp->lock, &ts);
		if (!cp->finished)
			progress_line(cp, 0);
	}
	pthread_mutex_unlock(&cp->lock);
	return NULL;
}

static int done_row(void *ud, int ncol, const char *const *v,
		    const char *const *names)
{
	(void)ncol;
	(void)names;
	return idmap_put(ud, v[0] ? v[0] : "", "1", NULL) != MFS_OK;
}

int cmd_copy(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "label", required_argument, NULL, 'l' },
		{ "progress", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct copier cp = { 0 };
	struct idmap *done = NULL;
	pthread_t *th = NULL, pt;
	long jobs = 8;
	int ch, ret = 0, i, nth = 0;
	size_t k;
	char *label = NULL;

	cp.every = 0;
	while ((ch = getopt_long(argc, argv, "j:", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			jobs = strtol(optarg, NULL, 10);
			if (jobs < 1 || jobs > 256)
				return cli_fail(EXIT_USAGE, "--jobs is 1..256");
			break;
		case 'l':
			free(label);
			label = strdup(optarg);
			break;
		case 'p':
			cp.every = strtod(optarg, NULL);
			break;
		case 'h':
			printf("usage: mediactl copy PLAN [--jobs N] [--label L] [--progress SECONDS]\n"
			       "  copy every planned file through the mount, N at a time (default 8),\n"
			       "  each one stored on the server before it counts as done. Run it again\n"
			       "  after a crash or Ctrl-C: finished files are skipped. --label tags the\n"
			       "  uploads (default: the plan's --label). Progress goes to stderr: a bar on\n"
			       "  a terminal (every second), else a line every 10 s (or SECONDS).\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_fail(EXIT_USAGE, "copy takes one PLAN (mediactl copy --help)");
	cp.c = c;
	cp.label = label;
	pthread_mutex_init(&cp.lock, NULL);
	pthread_cond_init(&cp.tick, NULL);
	ret = load_plan(&cp, argv[optind]);
	if (ret)
		goto out;
	label = (char *)cp.label;
	cp.plan_abs = realpath(argv[optind], NULL);
	ret = cli_journal(c);
	if (ret)
		goto out;
	done = idmap_new("done");
	if (!done || !cp.plan_abs) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	{
		const char *p[] = { cp.plan_abs };

		journal_sql(c->j, "SELECT rel FROM copies WHERE plan=?1 AND state='done'",
			    p, 1, done_row, done, NULL);
	}
	for (k = 0; k < cp.n; k++) {
		if (idmap_get(done, cp.e[k].src)) {
			/* a NULL src marks it done: workers pass over it */
			free(cp.e[k].src);
			cp.e[k].src = NULL;
			cp.files_skipped++;
			continue;
		}
		cp.files_total++;
		cp.bytes_total += cp.e[k].size;
	}
	if (cp.files_skipped)
		fprintf(stderr, "mediactl: %llu files of this plan were copied by an earlier run; %llu to go\n",
			(unsigned long long)cp.files_skipped,
			(unsigned long long)cp.files_total);
	cp.tty = isatty(2);
	if (cp.every <= 0)
		cp.every = cp.tty ? 1 : 10;
	cp.t0 = cli_now();
	{
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	th = calloc((size_t)jobs, sizeof(*th));
	if (!th) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	pthread_create(&pt, NULL, progress, &cp);
	for (i = 0; i < jobs; i++)
		if (!pthread_create(&th[i], NULL, worker, &cp))
			nth++;
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_lock(&cp.lock);
	cp.finished = 1;
	pthread_cond_broadcast(&cp.tick);
	pthread_mutex_unlock(&cp.lock);
	pthread_join(pt, NULL);
	if (cp.files_total)
		progress_line(&cp, 1);
	{
		char d[32];

		cli_duration(cli_now() - cp.t0, d, sizeof(d));
		printf("copied %llu files, %llu failed, %llu done before, in %s\n",
		       (unsigned long long)cp.files_done,
		       (unsigned long long)cp.files_failed,
		       (unsigned long long)cp.files_skipped, d);
	}
	if (interrupted) {
		fprintf(stderr, "mediactl: interrupted; run the same command again to resume\n");
		ret = EXIT_INTERRUPTED;
	} else if (cp.files_failed) {
		ret = EXIT_PROBLEMS;
	}
out:
	free(th);
	idmap_free(done);
	entries_free(&cp);
	free(cp.plan_abs);
	free(cp.from);
	free(cp.to);
	free(label);
	pthread_mutex_destroy(&cp.lock);
	pthread_cond_destroy(&cp.tick);
	return ret;
}
