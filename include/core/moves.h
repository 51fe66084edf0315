/* core/moves.h - renames on a server that take more than one request (a
 * copy and a delete; ImageKit's rename to another folder and name through
 * a move name), recorded in the journal while they run, so that one a kill
 * stopped half way is settled at the next mount (fs_resume.c): the store
 * is made to match what the mount shows.
 */
#ifndef MFS_CORE_MOVES_H
#define MFS_CORE_MOVES_H

#include "backend/backend.h"
#include "common/err.h"
#include "meta/journal.h"

/* Does a move of src to dst on be (dir: a folder) take several requests,
 * so that it is recorded? When the backend says its move has steps
 * (move_steps: ImageKit's, to another folder and another name); else a
 * file when be has no server-side move (a copy and a delete), a folder
 * when moved key by key on a store of marker objects (S3, Supabase). */
int moves_noted(const struct backend *be, const char *src, const char *dst,
		int dir);

/* Record the move before its first request (moves_noted only; a journal
 * that cannot record it refuses the move), and forget it once the store
 * and the cache both have it where it ends (moved, or failed and put
 * back): a record left says "not known to be settled". */
enum mfs_err moves_begin(struct journal *j, const char *mount_id,
			 struct backend *be, const char *src, const char *dst,
			 int dir, struct errbuf *eb);
void moves_end(struct journal *j, const char *mount_id, struct backend *be,
	       const char *src, const char *dst, int dir);

/* be's own move of src to dst (dir: move_dir); one that fails half way is
 * put back at once (move_undo; *left = 1 when that failed too). Returns
 * the move's result. */
enum mfs_err moves_move(struct backend *be, const char *src, const char *dst,
			int dir, int *left, struct errbuf *eb);

#endif
