/* cli.h - what mediactl's subcommands share: the journal and config they
 * agree on with mediafs, output helpers, the daemon's control socket, and
 * each subcommand's entry point (argv[0] is the subcommand's name).
 * Calls: meta/journal, backend, net, common. Single-threaded except where
 * a subcommand says so (copy).
 * Exit codes: 0 fine; 1 the job ran and found problems (a failed copy, a
 * verify mismatch, a rollback that skipped objects); 2 bad usage, a bad
 * map, rule or config; 3 the journal or a store could not be used;
 * 130 interrupted (copy resumes where it stopped).
 */
#ifndef MFS_CLI_CLI_H
#define MFS_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define EXIT_PROBLEMS 1
#define EXIT_USAGE 2
#define EXIT_STORE 3
#define EXIT_INTERRUPTED 130

struct journal;
struct backend;
struct ini;
struct js;

struct cli {
	char *journal_path;	/* --journal, or mediafs's default; for
				 * PostgreSQL with --journal-password's
				 * password (a secret: never printed) */
	char *config_path;	/* --config, or mediafs's default */
	char *ledger_path;	/* --ledger (cli/ledger), or NULL */
	struct journal *j;	/* opened by cli_journal */
	struct ini *ini;	/* loaded by cli_backend */
	struct backend **be;	/* created on demand, one per section */
	int nbe;
};

/* mediafs's defaults: $XDG_STATE_HOME/mediafs/journal.db and
 * $XDG_CONFIG_HOME/mediafs/mediafs.conf (malloc'd). */
char *cli_default_journal(void);
char *cli_default_config(void);
/* Open the journal (creating it); prints the error and returns non-zero
 * when it cannot. */
int cli_journal(struct cli *c);
/* The same for commands whose SQL also means the same in PostgreSQL
 * (status, failed, retry, verify, rewrite, rollback): a PostgreSQL
 * journal too. */
int cli_journal_shared(struct cli *c);
/* The backend of remote name from the config, created once; NULL with
 * the error printed. */
struct backend *cli_backend(struct cli *c, const char *name);
void cli_cleanup(struct cli *c);

/* "mediactl: " + message on stderr (secrets redacted); returns code. */
int cli_fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Human size: "1.5 MiB". */
void cli_bytes(uint64_t n, char *out, size_t cap);
/* Seconds as "1h02m", "3m05s", "12s". */
void cli_duration(double s, char *out, size_t cap);
/* Wall clock, seconds. */
double cli_now(void);
/* strdup that passes NULL through. */
char *cli_dup0(const char *s);
/* A journal_sql callback: the first column of the first row as an
 * int64_t into *ud (a count, an id); stops there. */
int cli_int_row(void *ud, int ncol, const char *const *v,
		const char *const *names);
/* Unix time t as "2026-11-30T10:00:20Z" (UTC). */
void cli_iso(double t, char *out, size_t cap);
/* Print a JSON value on stdout (one line) and free it. */
void cli_print_json(struct js *v);

/* The options of a command that takes only --label L, --json and --help
 * (usage printed for --help): -1 to go on, else the exit code. */
int cli_label_json_opts(int argc, char **argv, const char *usage,
			const char **label, int *json);

/* Ask the daemon behind socket one request line; *reply gets its JSON. */
enum mfs_err cli_ctl(const char *socket, const char *req, struct js **reply,
		     struct errbuf *eb);

/* Copy one file src to dst through a mediafs mount (cli/copy): written
 * under a temporary name, given src's mtime and mode, renamed, then waited
 * for with fsync (mediafs answers when the upload is on the store). When
 * dst is already src's copy (same mtime; same size or original size) only
 * the wait happens and *present (may be NULL) is set. 0 on success, else
 * errno with what failed in *step. type (or NULL) is the content type.
 * Thread-safe (no shared state). */
int copy_file(const char *src, const char *dst, const char *type,
	      const char **step, int *present);

/* The shared ledger (cli/ledger): a plan's entries as a work queue that
 * workers on many hosts claim under a lease. */
int cmd_load(struct cli *c, int argc, char **argv);
int cmd_work(struct cli *c, int argc, char **argv);
int cmd_hosts(struct cli *c, int argc, char **argv);
/* mediactl verify against the ledger: every 'done' entry's object on its
 * store with the ledger's size and ETag. */
int cmd_ledger_verify(struct cli *c, int argc, char **argv);
/* The journal named by --journal is a PostgreSQL connection string. */
int cli_journal_is_pg(const struct cli *c);
/* status / report / verify go to the ledger: --ledger was given, or
 * --journal is a PostgreSQL connection string. */
int cli_use_ledger(const struct cli *c);

int cmd_status(struct cli *c, int argc, char **argv);
int cmd_failed(struct cli *c, int argc, char **argv);
int cmd_wait(struct cli *c, int argc, char **argv);
int cmd_retry(struct cli *c, int argc, char **argv);
int cmd_report(struct cli *c, int argc, char **argv);
int cmd_plan(struct cli *c, int argc, char **argv);
int cmd_copy(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_rollback(struct cli *c, int argc, char **argv);
int cmd_rewrite(struct cli *c, int argc, char **argv);
/* Undo rewrite #id on the database conn (compare-and-set). */
int rewrite_rollback(struct cli *c, const char *id, const char *conn,
		     int dry);

#endif
