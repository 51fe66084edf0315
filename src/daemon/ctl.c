/* ctl.c - the daemon's control socket (see ctl.h). One thread polls the
 * listening socket and a stop pipe; requests are tiny, so they are served
 * one after another. The thread touches only upq (its own lock), the data
 * cache's byte count (its own lock) and the journal (its own lock). */
#include "daemon/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/str.h"
#include "core/dcache.h"
#include "core/upq.h"
#include "meta/journal.h"
#include "net/json.h"

#define MAX_REQ 4096
#define MAX_IDS 1024

struct ctl {
	char *path, *mount_id, *mountpoint, *label;
	struct upq *upq;
	struct dcache *dc;
	struct journal *journal;
	int fd;			/* listening socket */
	int stop[2];		/* a byte on stop[1] ends the thread */
	pthread_t thread;
	int running;
	time_t started;
};

static char *reply_status(struct ctl *c)
{
	struct upq_stats st;
	struct js *o = js_obj();
	char *s = NULL;
	uint64_t used = 0, limit = 0;

	upq_stats(c->upq, &st);
	if (c->dc)
		dcache_usage(c->dc, &used, &limit);
	if (o && !js_set_str(o, "mount_id", c->mount_id) &&
	    !js_set_int(o, "pid", (int64_t)getpid()) &&
	    !js_set_str(o, "mountpoint", c->mountpoint) &&
	    !(c->label && js_set_str(o, "label", c->label)) &&
	    !js_set_int(o, "queued", (int64_t)st.queued) &&
	    !js_set_int(o, "running", (int64_t)st.running) &&
	    !js_set_int(o, "done", (int64_t)st.done) &&
	    !js_set_int(o, "failed", (int64_t)st.failed) &&
	    !js_set_int(o, "bytes_done", (int64_t)st.bytes_done) &&
	    !js_set_int(o, "data_cache_bytes", (int64_t)used) &&
	    !js_set_int(o, "data_cache_limit", (int64_t)limit) &&
	    !js_set_int(o, "uptime_s", (int64_t)(time(NULL) - c->started)))
		s = js_dump(o, 1);
	js_free(o);
	return s;
}

static char *reply_retry(struct ctl *c, char *args)
{
	int64_t ids[MAX_IDS];
	uint64_t v;
	int n = 0, count;
	char *p = args, *end;

	while (n < MAX_IDS) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		end = strchr(p, ' ');
		if (end)
			*end = '\0';
		if (str_parse_u64(p, &v))
			return strdup("{\"error\":\"retry takes upload ids\"}");
		ids[n++] = (int64_t)v;
		if (!end)
			break;
		p = end + 1;
	}
	count = upq_retry(c->upq, n ? ids : NULL, n);
	log_info("control: %d failed uploads queued again", count);
	return str_fmt("{\"requeued\":%d}", count);
}

static void serve(struct ctl *c, int fd)
{
	char req[MAX_REQ + 1], *nl, *reply;
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (got < MAX_REQ && poll(&p, 1, 2000) > 0) {
		ssize_t r = read(fd, req + got, MAX_REQ - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = '\0';
		if (memchr(req, '\n', got))
			break;
	}
	req[got] = '\0';
	nl = strchr(req, '\n');
	if (nl)
		*nl = '\0';
	if (!strcmp(req, "status"))
		reply = reply_status(c);
	else if (!strncmp(req, "retry", 5) && (!req[5] || req[5] == ' '))
		reply = reply_retry(c, req + 5);
	else
		reply = strdup("{\"error\":\"unknown request\"}");
	if (reply) {
		size_t len = strlen(reply), off = 0;

		while (off < len) {
			ssize_t w = write(fd, reply + off, len - off);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (write(fd, "\n", 1) < 0)
			log_dbg(LOG_SUB_FUSE, "control: client went away");
	}
	free(reply);
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;
	struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN },
			       { .fd = c->stop[0], .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN) {
			int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				serve(c, fd);
				close(fd);
			}
		}
	}
	return NULL;
}

static void ctl_free(struct ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop[0] >= 0)
		close(c->stop[0]);
	if (c->stop[1] >= 0)
		close(c->stop[1]);
	free(c->path);
	free(c->mount_id);
	free(c->mountpoint);
	free(c->label);
	free(c);
}

enum mfs_err ctl_start(const struct ctl_config *cfg, struct ctl **out,
		       struct errbuf *eb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *c = calloc(1, sizeof(*c));
	enum mfs_err rc = MFS_OK;
	char pid[32], now[32];

	*out = NULL;
	if (!c)
		return MFS_ENOMEM;
	c->fd = c->stop[0] = c->stop[1] = -1;
	c->path = strdup(cfg->socket_path);
	c->mount_id = strdup(cfg->mount_id);
	c->mountpoint = strdup(cfg->mountpoint);
	c->label = cfg->label ? strdup(cfg->label) : NULL;
	c->upq = cfg->upq;
	c->dc = cfg->dc;
	c->journal = cfg->journal;
	c->started = time(NULL);
	if (!c->path || !c->mount_id || !c->mountpoint ||
	    (cfg->label && !c->label)) {
		rc = MFS_ENOMEM;
		goto out;
	}
	if (strlen(c->path) >= sizeof(sa.sun_path)) {
		rc = eb_set(eb, MFS_EINVAL,
			    "control socket path %s is longer than %zu bytes",
			    c->path, sizeof(sa.sun_path) - 1);
		goto out;
	}
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	unlink(c->path);	/* a dead daemon's (the cache lock is ours) */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || pipe2(c->stop, O_CLOEXEC) ||
	    bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(c->path, 0600) || listen(c->fd, 8)) {
		rc = eb_set(eb, MFS_EIO, "control socket %s: %s", c->path,
			    strerror(errno));
		goto out;
	}
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(now, sizeof(now), "%lld", (long long)c->started);
	{
		const char *params[] = { c->mount_id, pid, c->path,
					 c->mountpoint, c->label, now };

		rc = journal_exec(c->journal,
				  "INSERT INTO daemons(mount_id,pid,socket,"
				  "mountpoint,label,started_at) "
				  "VALUES(?1,?2,?3,?4,?5,?6) "
				  "ON CONFLICT(mount_id) DO UPDATE SET "
				  "pid=excluded.pid,socket=excluded.socket,"
				  "mountpoint=excluded.mountpoint,"
				  "label=excluded.label,"
				  "started_at=excluded.started_at",
				  params, 6, NULL, eb);
	}
	if (rc)
		goto out;
	if (pthread_create(&c->thread, NULL, ctl_main, c)) {
		rc = eb_set(eb, MFS_EIO, "control thread: %s", strerror(errno));
		goto out;
	}
	c->running = 1;
out:
	if (rc) {
		if (c->fd >= 0)
			unlink(c->path);
		ctl_free(c);
		return rc;
	}
	*out = c;
	return MFS_OK;
}

void ctl_stop(struct ctl *c)
{
	const char *params[2];
	char pid[32];

	if (!c)
		return;
	if (c->running) {
		if (write(c->stop[1], "x", 1) < 0)
			log_warn("control: cannot stop its thread");
		pthread_join(c->thread, NULL);
	}
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	params[0] = c->mount_id;
	params[1] = pid;
	journal_exec(c->journal,
		     "DELETE FROM daemons WHERE mount_id=?1 AND pid=?2",
		     params, 2, NULL, NULL);
	unlink(c->path);
	ctl_free(c);
}
