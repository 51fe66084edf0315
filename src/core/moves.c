/* moves.c - moves on a server in steps, recorded in the journal while
 * they run (include/core/moves.h). ImageKit renames a file or folder to
 * another folder and another name in three requests, through a name of
 * mediafs's own (#15.45); a daemon killed between them left the object
 * under that name, hidden from listings and from the mount, with nothing
 * to find it again (#15.55, the model tester's slow seed imagekit 450308).
 * Calls: backend, meta (journal), common.
 */
#include "core/moves.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum mfs_err moves_run(struct journal *j, const char *mount_id,
		       struct backend *be, const char *src, const char *dst,
		       int dir, struct errbuf *eb)
{
	struct errbuf e2 = { 0 };
	enum mfs_err rc;
	int noted = j && be->ops->move_undo;

	if (noted) {
		rc = journal_move_open(j, mount_id, be->name, src, dst, dir,
				       eb);
		if (rc)
			return rc;
	}
	rc = dir ? be->ops->move_dir(be, src, dst, eb)
		 : be->ops->move(be, src, dst, eb);
	if (!noted)
		return rc;
	/* a failed move undoes its steps itself; what that could not undo
	 * is put back now, or at the next mount */
	if (rc && be->ops->move_undo(be, src, dst, dir, &e2)) {
		log_warn("remote [%s]: the move of %s to %s failed half way; putting it back failed too (tried again at the next mount): %s",
			 be->name, src, dst, e2.msg);
		return rc;
	}
	if (journal_move_close(j, mount_id, be->name, src, dst, &e2))
		log_warn("cannot note in the journal that the move of %s to %s is over (the next mount checks it again): %s",
			 src, dst, e2.msg);
	return rc;
}

struct left {
	char **v;	/* remote, src, dst; 3 a move */
	int *dir;
	int n, cap;
};

static void collect(void *ud, const char *remote, const char *src,
		    const char *dst, int dir)
{
	struct left *l = ud;

	if (l->n == l->cap) {
		int cap = l->cap * 2 + 4;
		char **v = realloc(l->v, sizeof(*v) * (size_t)cap * 3);
		int *d;

		if (!v)
			return;
		l->v = v;
		d = realloc(l->dir, sizeof(*d) * (size_t)cap);
		if (!d)
			return;
		l->dir = d;
		l->cap = cap;
	}
	l->v[l->n * 3] = strdup(remote);
	l->v[l->n * 3 + 1] = strdup(src);
	l->v[l->n * 3 + 2] = strdup(dst);
	l->dir[l->n++] = dir;
}

int moves_undo_left(struct journal *j, const char *mount_id,
		    struct backend *(*be_of)(void *ud, const char *remote),
		    void *ud)
{
	struct left l = { NULL, NULL, 0, 0 };
	int i, undone = 0;

	if (journal_move_list(j, mount_id, collect, &l))
		log_warn("cannot read the journal's moves left half done");
	for (i = 0; i < l.n; i++) {
		char **m = l.v + i * 3;
		struct backend *be = m[0] ? be_of(ud, m[0]) : NULL;
		struct errbuf eb = { 0 };

		if (!be || !m[1] || !m[2] || !be->ops->move_undo)
			continue;	/* another mount's remote, or no memory */
		if (be->ops->move_undo(be, m[1], m[2], l.dir[i], &eb)) {
			log_warn("remote [%s]: cannot put back %s, whose move to %s a stopped daemon left half done (tried again at the next mount): %s",
				 m[0], m[1], m[2], eb.msg);
			continue;
		}
		journal_move_close(j, mount_id, m[0], m[1], m[2], NULL);
		undone++;
	}
	for (i = 0; i < l.n * 3; i++)
		free(l.v[i]);
	free(l.v);
	free(l.dir);
	return undone;
}
