/* util.c - what mediactl's subcommands share (cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/fsutil.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/json.h"

char *cli_default_journal(void)
{
	return fsu_xdg_path("XDG_STATE_HOME", ".local/state", "/journal.db");
}

char *cli_default_config(void)
{
	return fsu_xdg_path("XDG_CONFIG_HOME", ".config", "/mediafs.conf");
}

int cli_fail(int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_redact(msg);
	fprintf(stderr, "mediactl: %s\n", msg);
	return code;
}

int cli_journal(struct cli *c)
{
	struct errbuf eb = { 0 };

	if (c->j)
		return 0;
	if (cli_journal_is_pg(c))
		return cli_fail(EXIT_USAGE, "a PostgreSQL journal serves 'status', 'failed', 'retry', "
				"'verify', 'rewrite', 'rollback' and the ledger's 'load', 'work', "
				"'hosts' and 'report'; this command needs the SQLite journal");
	if (fsu_mkdirs(c->journal_path, 0700, 1))
		return cli_fail(EXIT_STORE, "cannot create the directory of %s: %s",
				c->journal_path, strerror(errno));
	if (journal_open(c->journal_path, 0, &c->j, &eb))
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	return 0;
}

int cli_journal_shared(struct cli *c)
{
	struct errbuf eb = { 0 };

	if (c->j || !cli_journal_is_pg(c))
		return cli_journal(c);
	if (journal_open(c->journal_path, 0, &c->j, &eb))
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	return 0;
}

struct backend *cli_backend(struct cli *c, const char *name)
{
	struct errbuf eb = { 0 };
	struct ini_section *sec;
	struct backend **nb, *be = NULL;
	int i;

	for (i = 0; i < c->nbe; i++)
		if (!strcmp(c->be[i]->name, name))
			return c->be[i];
	if (!c->ini && ini_load(c->config_path, &c->ini, &eb)) {
		cli_fail(EXIT_USAGE, "%s", eb.msg);
		return NULL;
	}
	sec = ini_section(c->ini, name);
	if (!sec) {
		cli_fail(EXIT_USAGE, "the journal names remote [%s], which %s does not define",
			 name, c->config_path);
		return NULL;
	}
	if (backend_create(c->ini, sec, &be, &eb)) {
		cli_fail(EXIT_USAGE, "remote [%s]: %s", name, eb.msg);
		return NULL;
	}
	nb = realloc(c->be, sizeof(*nb) * (size_t)(c->nbe + 1));
	if (!nb) {
		backend_free(be);
		return NULL;
	}
	c->be = nb;
	c->be[c->nbe++] = be;
	return be;
}

void cli_cleanup(struct cli *c)
{
	int i;

	for (i = 0; i < c->nbe; i++)
		backend_free(c->be[i]);
	free(c->be);
	ini_free(c->ini);
	journal_close(c->j);
	if (c->journal_path)	/* may hold a PostgreSQL password */
		memset(c->journal_path, 0, strlen(c->journal_path));
	free(c->journal_path);
	free(c->config_path);
	free(c->ledger_path);
}

void cli_bytes(uint64_t n, char *out, size_t cap)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(out, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(out, cap, "%.1f %s", v, units[u]);
}

void cli_duration(double s, char *out, size_t cap)
{
	long t = s < 0 ? 0 : (long)(s + 0.5);

	if (t >= 3600)
		snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(out, cap, "%lds", t);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_iso(double t, char *out, size_t cap)
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_print_json(struct js *v)
{
	char *s = js_dump(v, 0);

	if (s)
		printf("%s\n", s);
	free(s);
	js_free(v);
}

enum mfs_err cli_ctl(const char *socket_path, const char *req,
		     struct js **reply, struct errbuf *eb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192];
	size_t got = 0;
	ssize_t r;
	int fd;
	struct timeval tv = { 5, 0 };

	*reply = NULL;
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return eb_set(eb, MFS_EINVAL, "socket path too long");
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return eb_set(eb, MFS_EIO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, strlen(req)) < 0 || write(fd, "\n", 1) < 0) {
		eb_set(eb, MFS_ETRANSIENT, "%s: %s", socket_path,
		       strerror(errno));
		close(fd);
		return MFS_ETRANSIENT;
	}
	while (got < sizeof(buf) - 1 &&
	       (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	return js_parse(buf, got, reply, eb);
}

int cli_label_json_opts(int argc, char **argv, const char *usage,
			const char **label, int *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*label = NULL;
	*json = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'J':
			*json = 1;
			break;
		case 'l':
			*label = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	return -1;
}

char *cli_dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

int cli_int_row(void *ud, int ncol, const char *const *v,
		const char *const *names)
{
	(void)ncol;
	(void)names;
	*(int64_t *)ud = v[0] ? strtoll(v[0], NULL, 10) : 0;
	return 1;
}
