/* moves.c - renames on a server in several requests, recorded in the
 * journal while they run (include/core/moves.h). ImageKit renames a file
 * or folder to another folder and another name in three requests,
 * through a name of mediafs's own (#15.45); a daemon killed between them
 * left the object under that name, hidden from listings and from the
 * mount, with nothing to find it again (#15.55, the model tester's slow
 * seed imagekit 450308). On S3 a rename is a copy and a delete; killed
 * between them, the store kept both names and a mount with a cold cache
 * listed the file twice; a folder on S3 or Supabase moves key by key.
 * fs_moves.c settles what such a move left.
 * Calls: backend, meta (journal), common.
 */
#include "core/moves.h"

#include "common/log.h"

int moves_noted(const struct backend *be, const char *src, const char *dst,
		int dir)
{
	if (be->ops->move_steps)
		return be->ops->move_steps(be, src, dst, dir) > 1;
	if (!dir)
		return !be->ops->move;
	/* a folder moved key by key (S3: a COPY and a DELETE each;
	 * Supabase: a move each, its folders kept by a placeholder file) */
	return !be->ops->move_dir && (be->ops->caps & BE_CAP_MARKER_OBJECTS);
}

enum mfs_err moves_begin(struct journal *j, const char *mount_id,
			 struct backend *be, const char *src, const char *dst,
			 int dir, struct errbuf *eb)
{
	int created = 0;
	enum mfs_err rc;

	if (!j || !moves_noted(be, src, dst, dir))
		return MFS_OK;
	rc = journal_move_open(j, mount_id, be->name, src, dst, dir, &created,
			       eb);
	/* the same move recorded before and not settled (it failed half way
	 * and so did its undo): what it left under the move name is put back
	 * first, or this one would go through the same name */
	if (!rc && !created && be->ops->move_undo) {
		rc = be->ops->move_undo(be, src, dst, dir, eb);
		if (rc)
			eb_prefix(eb, "an earlier move of %s to %s was left half done",
				  src, dst);
	}
	return rc;
}

void moves_end(struct journal *j, const char *mount_id, struct backend *be,
	       const char *src, const char *dst, int dir)
{
	struct errbuf eb = { 0 };

	if (!j || !moves_noted(be, src, dst, dir))
		return;
	if (journal_move_close(j, mount_id, be->name, src, dst, &eb))
		log_warn("cannot note in the journal that the move of %s to %s is over (the next mount checks it again): %s",
			 src, dst, eb.msg);
}

enum mfs_err moves_move(struct backend *be, const char *src, const char *dst,
			int dir, int *left, struct errbuf *eb)
{
	struct errbuf e2 = { 0 };
	enum mfs_err rc = dir ? be->ops->move_dir(be, src, dst, eb)
			      : be->ops->move(be, src, dst, eb);

	*left = 0;
	/* a failed move undoes its steps itself; what that could not undo
	 * is put back now (else the record stays, for the next mount). A
	 * target that exists is refused before any step. */
	if (rc && rc != MFS_EEXIST && be->ops->move_undo &&
	    be->ops->move_undo(be, src, dst, dir, &e2)) {
		log_warn("remote [%s]: the move of %s to %s failed half way; putting it back failed too (tried again at the next mount): %s",
			 be->name, src, dst, e2.msg);
		*left = 1;
	}
	return rc;
}
