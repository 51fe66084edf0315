/* ledger_int.h - what ledger.c (the ledger's schema, load, work) and
 * ledger_view.c (hosts, status/report and verify on the ledger) share.
 * Private to cli/ledger. */
#ifndef MFS_CLI_LEDGER_INT_H
#define MFS_CLI_LEDGER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "cli/db.h"

struct cli;

struct ledger {
	struct db *d;
	int pg;			/* PostgreSQL: SKIP LOCKED, its clock */
	const char *now;	/* the server clock as SQL */
	pthread_mutex_t lock;	/* guards d and queries */
	uint64_t queries;	/* statements sent, for the overhead figure */
	double qsecs;		/* and the seconds they took (round trips) */
};

/* Open the ledger (--ledger, else --journal) and create its tables;
 * prints the error and returns the exit code. ledger_close also after a
 * failed open. */
int ledger_open(struct cli *c, struct ledger *l);
void ledger_close(struct ledger *l);
/* One query under l's lock, rows to cb; the error printed. */
enum mfs_err ledger_query(struct ledger *l, const char *sql,
			  const char *const *p, int n, db_row_cb cb, void *ud);
/* sql with every "NOW" replaced by the database clock (seconds), malloc'd;
 * NULL when out of memory. */
char *ledger_sql(const struct ledger *l, const char *sql);
/* A row callback: the first column of the first row strdup'd into
 * *(char **)ud, which must start NULL. */
int ledger_first_row(void *ud, int ncol, const char *const *v);

#endif
