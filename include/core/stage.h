/* stage.h - local staging files for writes: every file written through the
 * mount lives here from create/open until its upload is done.
 * Owns: the staging directory and its spare files. Calls: common.
 * Thread-safe.
 */
#ifndef MFS_CORE_STAGE_H
#define MFS_CORE_STAGE_H

#include <stdint.h>

#include "common/err.h"

struct stage;

/* dir is created if missing; copied. */
enum mfs_err stage_new(const char *dir, struct stage **out, struct errbuf *eb);
void stage_free(struct stage *s);
/* A new empty staging file open read-write; *path is malloc'd. */
enum mfs_err stage_create(struct stage *s, int *fd, char **path,
			  struct errbuf *eb);
/* The upload of path is done (its bytes are on the store and the caches
 * say so): the file is emptied and kept for a later stage_create when no
 * other descriptor is open on it, else removed; either way path is gone.
 * s NULL: removed. */
void stage_done(struct stage *s, const char *path);
/* Files taken from the spares, kept as spares, removed at stage_done. */
void stage_stats(struct stage *s, uint64_t *reused, uint64_t *kept,
		 uint64_t *dropped);
/* A new staging file holding a copy of src_fd's whole content. */
enum mfs_err stage_copy(struct stage *s, int src_fd, int *fd, char **path,
			struct errbuf *eb);
/* Remove every staging file not named in keep[] (n paths), and every
 * spare: what a crash left of files never closed. Returns how many were removed. */
int stage_sweep(struct stage *s, char *const *keep, int n);
/* Map a write(2)/ftruncate(2) errno to our enum (ENOSPC stays ENOSPC). */
enum mfs_err stage_errno(int err);

#endif
