/* stage.h - local staging files for writes: every file written through the
 * mount lives here from create/open until its upload is done.
 * Owns: the staging directory. Calls: common. Thread-safe (no shared state
 * beyond the directory name).
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
/* A new staging file holding a copy of src_fd's whole content. */
enum mfs_err stage_copy(struct stage *s, int src_fd, int *fd, char **path,
			struct errbuf *eb);
/* Remove every staging file not named in keep[] (n paths): what a crash
 * left of files never closed. Returns how many were removed. */
int stage_sweep(struct stage *s, char *const *keep, int n);
/* Map a write(2)/ftruncate(2) errno to our enum (ENOSPC stays ENOSPC). */
enum mfs_err stage_errno(int err);

#endif
