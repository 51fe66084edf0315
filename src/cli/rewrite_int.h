/* rewrite_int.h - what rewrite.c (plans, commands) and rewrite_apply.c
 * (apply, rollback) share. Private to cli/rewrite. */
#ifndef MFS_CLI_REWRITE_INT_H
#define MFS_CLI_REWRITE_INT_H

struct cli;
struct db;

/* Apply planned rewrite #rwid on db (undo: restore an applied one; dry:
 * only say what a rollback would do). Prints a summary; returns the exit
 * code. */
int rewrite_apply(struct cli *c, struct db *db, const char *rwid, int undo,
		  int dry);
/* Open conn for rewrite #rwid, refusing another database than the one it
 * was planned on; prints the error and returns the exit code. */
int rewrite_open(struct cli *c, const char *rwid, const char *conn,
		 struct db **db);

#endif
