/* ctl.h - the daemon's control socket: mediactl asks a running mediafs for
 * its live queue state and tells it to retry failed uploads.
 * Owns: a Unix socket (mode 0600) in the mount's cache directory, one
 * thread that answers one request at a time, and the mount's row in the
 * journal's daemons table (how mediactl finds the socket).
 * Protocol: one request line, one JSON reply line, then close:
 *   status            -> {"mount_id":…,"pid":…,"queued":…,"running":…,
 *                          "done":…,"failed":…,"bytes_done":…,…}
 *   retry [ID ...]    -> {"requeued":N}   (no ID: every failed upload)
 * Calls: core/upq, meta/journal, net/json, common.
 */
#ifndef MFS_DAEMON_CTL_H
#define MFS_DAEMON_CTL_H

#include "common/err.h"

struct upq;
struct journal;
struct dcache;

struct ctl_config {
	const char *socket_path;	/* copied */
	const char *mount_id;		/* copied */
	const char *mountpoint;		/* copied (absolute) */
	const char *label;		/* copied, may be NULL */
	struct upq *upq;		/* borrowed, outlives the ctl */
	struct journal *journal;	/* borrowed, outlives the ctl */
	struct dcache *dc;		/* borrowed, outlives the ctl; the
					 * data cache's disk use in status */
};

struct ctl;

/* Bind the socket, register in the journal, start the thread. */
enum mfs_err ctl_start(const struct ctl_config *cfg, struct ctl **out,
		       struct errbuf *eb);
/* Stop the thread, remove the socket and the registration (NULL: no-op). */
void ctl_stop(struct ctl *c);

#endif
