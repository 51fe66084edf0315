/* main.c - mediactl: the companion of mediafs. Parses the global options
 * and hands the rest to a subcommand (cli.h). Calls: cli, common. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/str.h"
#include "core/hooks.h"
#include "meta/db.h"
#include "meta/journal.h"

static const struct {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *what;
	/* the command against the shared ledger (--ledger), or NULL */
	int (*on_ledger)(struct cli *c, int argc, char **argv);
} cmds[] = {
	{ "status", cmd_status, "pending, done and failed uploads; live queues",
	  cmd_hosts },
	{ "failed", cmd_failed, "failed uploads and their errors", NULL },
	{ "retry", cmd_retry, "queue failed uploads again", NULL },
	{ "wait", cmd_wait, "wait until the uploads below a path are on the store", NULL },
	{ "plan", cmd_plan, "build a copy plan from a tree, rules and ID maps", NULL },
	{ "copy", cmd_copy, "execute a plan through the mount, resumably", NULL },
	{ "verify", cmd_verify, "check uploaded objects (and URLs) against the stores",
	  cmd_ledger_verify },
	{ "report", cmd_report, "a migration's summary per category", cmd_hosts },
	{ "rewrite", cmd_rewrite, "point a database (PostgreSQL, SQLite) at the moved media", NULL },
	{ "rollback", cmd_rollback, "delete what a batch uploaded, or undo a rewrite", NULL },
	{ "load", cmd_load, "load a plan into the ledger as a queue for many hosts",
	  cmd_load },
	{ "work", cmd_work, "take entries from the ledger and copy them through this host's mount",
	  cmd_work },
	{ "hosts", cmd_hosts, "the ledger's progress per plan and per host",
	  cmd_hosts },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mediactl [--journal PATH|postgres://…] [--journal-password env:VAR|file:PATH]\n"
		   "                [--ledger postgres://…|PATH]\n"
		   "                [--config FILE] COMMAND [ARGS]\n\n"
		   "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].what);
	fprintf(f, "\n'mediactl COMMAND --help' for a command's options; man mediactl(1).\n"
		   "--journal defaults to mediafs's (-o journal=): $XDG_STATE_HOME/mediafs/journal.db\n"
		   "--config defaults to mediafs's: $XDG_CONFIG_HOME/mediafs/mediafs.conf\n"
		   "--ledger (also after status, report, verify, load, work, hosts): the\n"
		   "shared ledger of 'load' and 'work'; those commands then read it\n");
}

/* A command that has a ledger variant takes --ledger URL (or
 * --ledger=URL) among its own options too: lifted out of argv (up to a
 * "--") into c->ledger_path. 0, or EXIT_USAGE when URL is missing. */
static int take_ledger(struct cli *c, int *argc, char **argv)
{
	int i, j, n;

	for (i = 1; i < *argc && strcmp(argv[i], "--"); i++) {
		const char *v = NULL;

		if (!strcmp(argv[i], "--ledger")) {
			if (i + 1 >= *argc)
				return cli_fail(EXIT_USAGE, "--ledger needs a connection string or path");
			v = argv[i + 1];
			n = 2;
		} else if (str_starts(argv[i], "--ledger=")) {
			v = argv[i] + 9;
			n = 1;
		} else {
			continue;
		}
		free(c->ledger_path);
		c->ledger_path = strdup(v);
		if (!c->ledger_path)
			return cli_fail(EXIT_STORE, "out of memory");
		for (j = i; j + n <= *argc; j++)
			argv[j] = argv[j + n];
		*argc -= n;
		i--;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "journal", required_argument, NULL, 'j' },
		{ "journal-password", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'c' },
		{ "ledger", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c = { 0 };
	const char *pwspec = NULL;
	int ch, ret = EXIT_USAGE;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* in order with stderr's progress */
	log_set_level(LOG_LVL_WARN);
	backend_accept_keys(hook_keys);	/* the same config as mediafs */
	while ((ch = getopt_long(argc, argv, "+j:c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			free(c.journal_path);
			c.journal_path = strdup(optarg);
			break;
		case 'p':
			pwspec = optarg;
			break;
		case 'c':
			free(c.config_path);
			c.config_path = strdup(optarg);
			break;
		case 'L':
			free(c.ledger_path);
			c.ledger_path = strdup(optarg);
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto out;
		case 'V':
			printf("mediactl %s\n", MFS_VERSION);
			ret = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		goto out;
	}
	if (!c.journal_path)
		c.journal_path = cli_default_journal();
	if (!c.config_path)
		c.config_path = cli_default_config();
	if (!c.journal_path || !c.config_path) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if (pwspec) {
		/* the PostgreSQL journal's password, as mediafs's
		 * -o journal_password: it joins the connection string */
		struct errbuf eb = { 0 };
		char *pw = NULL, *conn;

		if (!journal_is_shared(c.journal_path) ||
		    (!str_starts(pwspec, "env:") && !str_starts(pwspec, "file:"))) {
			ret = cli_fail(EXIT_USAGE, "--journal-password is env:VAR or file:PATH, for a PostgreSQL --journal");
			goto out;
		}
		if (secret_resolve(NULL, pwspec, "--journal-password", &pw, &eb)) {
			ret = cli_fail(EXIT_USAGE, "%s", eb.msg);
			goto out;
		}
		conn = db_conn_with_password(c.journal_path, pw);
		secret_free(pw);
		if (!conn) {
			ret = cli_fail(EXIT_STORE, "out of memory");
			goto out;
		}
		free(c.journal_path);
		c.journal_path = conn;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[optind], cmds[i].name))
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		ret = cli_fail(EXIT_USAGE, "unknown command '%s' (mediactl --help lists them)",
			       argv[optind]);
		goto out;
	}
	optind++;	/* the subcommand parses from its own name on */
	{
		int sub_argc = argc - optind + 1;
		char **sub_argv = argv + optind - 1;

		if (cmds[i].on_ledger &&
		    (ret = take_ledger(&c, &sub_argc, sub_argv)))
			goto out;
		optind = 0;	/* getopt_long starts afresh */
		/* --ledger names the ledger; a PostgreSQL --journal is the
		 * daemons' journal (status adds the ledger's hosts when the
		 * database holds one, verify checks the journal's uploads),
		 * and the ledger for the commands only it answers (report) */
		ret = cmds[i].on_ledger &&
		      (c.ledger_path || (cli_use_ledger(&c) &&
					 cmds[i].fn != cmd_status &&
					 cmds[i].fn != cmd_verify)) ?
		      cmds[i].on_ledger(&c, sub_argc, sub_argv) :
		      cmds[i].fn(&c, sub_argc, sub_argv);
	}
out:
	cli_cleanup(&c);
	return ret;
}
