/* core/moves.h - moves on a server that take more than one request
 * (a backend with move_undo), recorded in the journal while their steps
 * run, so that one a kill stopped half way is put back at the next mount.
 */
#ifndef MFS_CORE_MOVES_H
#define MFS_CORE_MOVES_H

#include "backend/backend.h"
#include "common/err.h"
#include "meta/journal.h"

/* Move src to dst (dir: a folder, be->ops->move_dir; else be->ops->move)
 * on be. With be->ops->move_undo the move is recorded first (a journal
 * that cannot record it refuses the move); a move that fails is put back
 * at once, and stays recorded (for the next mount) if that fails too. */
enum mfs_err moves_run(struct journal *j, const char *mount_id,
		       struct backend *be, const char *src, const char *dst,
		       int dir, struct errbuf *eb);

/* At mount, before the queue starts: every move of mount_id the journal
 * still records was stopped between its steps; put each back (be_of
 * finds the remote's backend by name, NULL when it is not this mount's).
 * Returns how many were settled (put back, or nothing left to put back). */
int moves_undo_left(struct journal *j, const char *mount_id,
		    struct backend *(*be_of)(void *ud, const char *remote),
		    void *ud);

#endif
