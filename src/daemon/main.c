/* main.c - mediafs: command line and wiring. Options are a fuse_opt table;
 * each remote's own section is parsed by its backend. Builds the remotes,
 * opens the metadata cache under cache_dir/<mount-id>/ (locked, so two
 * daemons never share one), creates core/fs and hands it to the FUSE
 * adapter. Calls: every layer.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <openssl/sha.h>

#include "backend/backend.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/fsutil.h"
#include "common/str.h"
#include "core/fs.h"
#include "core/hooks.h"
#include "core/stage.h"
#include "core/upq.h"
#include "fuse/fuse_ll.h"
#include "meta/journal.h"
#include "meta/db.h"
#include "daemon/ctl.h"
#include "meta/mcache.h"
#include "meta/sniff.h"
#include "core/dcache.h"

#ifndef MFS_VERSION
#define MFS_VERSION "0.1.0"
#endif

#define DEFAULT_TTL 300
#define DEFAULT_NEG_TTL 5

struct options {
	char *config;
	char *cache_dir;
	char *cache_ttl;
	char *negative_ttl;
	char *debug;
	char *readahead;
	char *data_cache;
	char *journal;
	char *journal_sync;
	char *journal_password;
	char *host_id;
	char *workers;
	char *mp_threshold;
	char *marker_wait;
	char *upload_delay;
	char *landing_grace;
	char *label;
	char *op_timeout;
	char *spec;		/* REMOTE:[PREFIX], or NULL for all remotes */
	char *mountpoint;
	int sb_public;		/* -o supabase_public_buckets */
	int sync_close;		/* -o sync_close */
	int foreground;
	int single_thread;
	int help;
	int version;
	int npositional;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }

static const struct fuse_opt opt_spec[] = {
	OPT("config=%s", config),
	OPT("--config=%s", config),
	OPT("cache_dir=%s", cache_dir),
	OPT("cache_ttl=%s", cache_ttl),
	OPT("negative_ttl=%s", negative_ttl),
	OPT("debug=%s", debug),
	OPT("readahead=%s", readahead),
	OPT("data_cache=%s", data_cache),
	OPT("journal=%s", journal),
	OPT("journal_sync=%s", journal_sync),
	OPT("journal_password=%s", journal_password),
	OPT("host_id=%s", host_id),
	OPT("upload_workers=%s", workers),
	OPT("multipart_threshold=%s", mp_threshold),
	OPT("marker_wait=%s", marker_wait),
	OPT("upload_delay=%s", upload_delay),
	OPT("landing_grace=%s", landing_grace),
	OPT("label=%s", label),
	OPT("supabase_public_buckets", sb_public),
	OPT("op_timeout=%s", op_timeout),
	OPT("sync_close", sync_close),
	OPT("-f", foreground),
	OPT("-s", single_thread),
	OPT("-h", help),
	OPT("--help", help),
	OPT("-V", version),
	OPT("--version", version),
	FUSE_OPT_END
};

static const char usage_text[] =
"usage: mediafs [-f] [-o config=FILE,opt,...] REMOTE:[PREFIX] MOUNTPOINT\n"
"       mediafs [-f] [-o config=FILE,opt,...] MOUNTPOINT\n"
"\n"
"Mount one remote (REMOTE:PREFIX) or every remote of the config file, each\n"
"as a top-level directory. Unmount with 'fusermount3 -u MOUNTPOINT'.\n"
"\n"
"options:\n"
"  -f                     stay in the foreground, log to stderr\n"
"  -s                     single-threaded (debugging)\n"
"  -h, --help             this text\n"
"  -V, --version          print the version\n"
"  --config FILE          same as -o config=FILE\n"
"  -o config=FILE         config file (default\n"
"                         $XDG_CONFIG_HOME/mediafs/mediafs.conf)\n"
"  -o cache_dir=DIR       metadata cache (default\n"
"                         $XDG_CACHE_HOME/mediafs); one sub-directory per\n"
"                         mount, kept across remounts\n"
"  -o cache_ttl=SECONDS   how long a directory listing is trusted, also\n"
"                         across remounts (default 300)\n"
"  -o negative_ttl=SECONDS  a name missing from a listing older than this\n"
"                         is asked of the store (one HEAD per name at most\n"
"                         this often), so what other clients write is\n"
"                         found by name (default 5; >= cache_ttl: never)\n"
"  -o readahead=BYTES     largest sequential read-ahead window (default\n"
"                         8388608)\n"
"  -o data_cache=SIZE     file data kept on disk under the cache directory\n"
"                         across opens and remounts, at most SIZE bytes\n"
"                         (K, M, G suffixes; default 1G; 0 = off)\n"
"  -o journal=PATH        the journal of uploads (default\n"
"                         $XDG_STATE_HOME/mediafs/journal.db)\n"
"  -o journal_sync=full   fsync the journal at every commit (survives power\n"
"                         loss; default: survives a daemon crash)\n"
"  -o journal=postgres://USER@HOST:PORT/DB  the journal in PostgreSQL,\n"
"                         shared by every host's mounts and mediactl\n"
"  -o journal_password=env:VAR|file:PATH  its password (or libpq's\n"
"                         PGPASSWORD, ~/.pgpass)\n"
"  -o host_id=NAME        this mount's name in a PostgreSQL journal's rows\n"
"                         (default: the host name)\n"
"  -o upload_workers=N    parallel uploads (default 16)\n"
"  -o multipart_threshold=BYTES  multipart upload from this size (default\n"
"                         67108864); equal parts, 4 in parallel\n"
"  -o marker_wait=SECONDS the empty-folder marker of a new directory waits\n"
"                         for files being written elsewhere (a file below\n"
"                         it makes it unneeded) until none has landed for\n"
"                         this long (default 60)\n"
"  -o upload_delay=MS     an upload starts this long after the file's close\n"
"                         (default 100); a rename or a rewrite meanwhile\n"
"                         costs no request\n"
"  -o landing_grace=SECONDS  a key where a request sent before may still\n"
"                         land (a kill stopped its daemon, or it failed\n"
"                         without an answer; its file deleted or renamed)\n"
"                         is deleted again this long after (default 30;\n"
"                         0: not again)\n"
"  -o label=NAME          tag this mount's journal rows (a migration batch)\n"
"  -o op_timeout=SECONDS  a filesystem call that talks to a server (lookup,\n"
"                         ls, read, rename...) fails with ETIMEDOUT once it\n"
"                         has waited this long without a successful answer,\n"
"                         retries included (default 20, 0 = none); fsync\n"
"                         and close wait for uploads however long\n"
"  -o sync_close          close() of a written file waits for its upload\n"
"                         and returns its error (cp's exit status then\n"
"                         means \"on the store\"; slower)\n"
"  -o supabase_public_buckets  buckets made by mkdir are public (default\n"
"                         private; per remote: public_buckets = true)\n"
"  -o debug=LIST          debug log for subsystems: http,cache,fuse,upq,all\n"
"  -o allow_other, -o ro, ...  passed to FUSE (see mount.fuse3(8))\n"
"\n"
"config file (INI, one section per remote; see mediafs.conf(5)):\n"
"  [backup]\n"
"  type = s3\n"
"  endpoint = https://s3.eu-west-1.amazonaws.com\n"
"  region = eu-west-1\n"
"  bucket = my-backup\n"
"  path_style = false\n"
"  access_key_id = AKIA...\n"
"  secret_access_key = env:BACKUP_SECRET   (or file:PATH, or a literal in a\n"
"                                           chmod 600 config)\n";

/* "512M" -> 536870912. Returns -1 on anything else. */
static int parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (!n || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	}
	if (shift)
		num[n - 1] = '\0';
	if (str_parse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		o->npositional++;
		if (o->npositional == 1) {
			o->mountpoint = strdup(arg);
			return 0;
		}
		if (o->npositional == 2) {
			/* first positional was REMOTE:PREFIX */
			o->spec = o->mountpoint;
			o->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(stderr, "mediafs: unexpected argument '%s'\n", arg);
		return -1;
	}
	return 1;
}

/* "--config FILE" (two words) into "--config=FILE" for fuse_opt. */
static int fix_config_arg(int argc, char **argv, struct fuse_args *args)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			char *s = str_fmt("--config=%s", argv[++i]);

			if (!s || fuse_opt_add_arg(args, s)) {
				free(s);
				return -1;
			}
			free(s);
			continue;
		}
		if (fuse_opt_add_arg(args, argv[i]))
			return -1;
	}
	return 0;
}

/* Mount id: what is mounted, readable, plus a hash of the config path. */
static char *mount_id(const char *config, const char *spec)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1], name[64], *p;
	char *abs = realpath(config, NULL);
	const char *what = spec ? spec : "all";

	SHA256((const unsigned char *)(abs ? abs : config),
	       strlen(abs ? abs : config), md);
	free(abs);
	str_hex(md, 6, hex);
	snprintf(name, sizeof(name), "%.40s", what);
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			*p = '_';
	return str_fmt("%s-%s", name, hex);
}

/* A shared journal's mount id: HOST:ID, HOST from -o host_id or the host
 * name (malloc'd; NULL: no memory). */
static char *host_mount_id(const char *host_id, const char *id)
{
	char host[256] = "";

	if (host_id && *host_id)
		snprintf(host, sizeof(host), "%s", host_id);
	else if (gethostname(host, sizeof(host) - 1) || !*host)
		snprintf(host, sizeof(host), "localhost");
	return str_fmt("%s:%s", host, id);
}

/* The connection string of a PostgreSQL journal, with the password of
 * -o journal_password (env:VAR or file:PATH; a literal would show in ps)
 * added; malloc'd (a secret), or NULL with eb set. */
static char *journal_conn(const struct options *o, const struct ini *ini,
			  struct errbuf *eb)
{
	char *pw = NULL, *conn;

	if (!o->journal_password)
		return strdup(o->journal);
	if (!str_starts(o->journal_password, "env:") &&
	    !str_starts(o->journal_password, "file:")) {
		eb_set(eb, MFS_EINVAL, "journal_password is env:VAR or file:PATH (a password in the mount options would show in ps)");
		return NULL;
	}
	if (secret_resolve(ini, o->journal_password, "journal_password", &pw,
			   eb))
		return NULL;
	conn = db_conn_with_password(o->journal, pw);
	secret_free(pw);
	if (!conn)
		eb_set(eb, MFS_ENOMEM, "out of memory");
	return conn;
}

static char *clean_prefix(const char *p)
{
	size_t n;

	while (*p == '/')
		p++;
	n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	return str_ndup(p, n);
}

struct daemon {
	struct ini *ini;
	struct fs_remote *remotes;
	int nremotes;
	struct mcache *mc;
	struct journal *journal;
	struct stage *stage;
	struct upq *upq;
	struct sniff *sniff;
	struct dcache *dc;
	struct fs *fs;
	int lock_fd;
	int sb_public;		/* -o supabase_public_buckets */
	struct hook_cfg **hooks;	/* per remote, NULL = none */
	struct ctl_config ctl_cfg;	/* the control socket, started after
					 * the fork */
	struct ctl *ctl;
};

static void daemon_cleanup(struct daemon *d)
{
	int i;

	ctl_stop(d->ctl);	/* before the queue it reports on */
	upq_free(d->upq);
	sniff_free(d->sniff);
	fs_free(d->fs);
	dcache_free(d->dc);
	stage_free(d->stage);
	journal_close(d->journal);
	mcache_close(d->mc);
	for (i = 0; i < d->nremotes; i++) {
		backend_free(d->remotes[i].be);
		free(d->remotes[i].prefix);
		hook_cfg_free(d->hooks[i]);
	}
	free(d->remotes);
	free(d->hooks);
	ini_free(d->ini);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
}

static enum mfs_err add_remote(struct daemon *d, struct ini_section *sec,
			       const char *prefix, struct errbuf *eb)
{
	struct fs_remote *r;
	struct hook_cfg **h;
	enum mfs_err rc;

	r = realloc(d->remotes, sizeof(*r) * (size_t)(d->nremotes + 1));
	if (!r)
		return MFS_ENOMEM;
	d->remotes = r;
	h = realloc(d->hooks, sizeof(*h) * (size_t)(d->nremotes + 1));
	if (!h)
		return MFS_ENOMEM;
	d->hooks = h;
	h[d->nremotes] = NULL;
	r = &d->remotes[d->nremotes];
	memset(r, 0, sizeof(*r));
	if (d->sb_public && ini_get(sec, "type") &&
	    !strcmp(ini_get(sec, "type"), "supabase") &&
	    ini_default(sec, "public_buckets", "true"))
		return MFS_ENOMEM;
	rc = backend_create(d->ini, sec, &r->be, eb);
	if (rc)
		return rc;
	rc = hook_cfg_parse(d->ini, sec, &h[d->nremotes], eb);
	if (rc) {
		backend_free(r->be);
		return rc;
	}
	r->name = r->be->name;
	r->prefix = clean_prefix(prefix);
	if (!r->prefix) {
		backend_free(r->be);
		return MFS_ENOMEM;
	}
	d->nremotes++;
	return MFS_OK;
}

static void set_inval(void *ud, void (*fn)(void *ctx, uint64_t ino),
		      void *ctx)
{
	struct daemon *d = ud;

	if (d->upq)
		upq_set_inval(d->upq, fn, ctx);
	if (d->fs)
		fs_set_inval(d->fs, fn, ctx);
}

/* Once mounted and (unless -f) forked into the background: SQLite
 * connections must not cross fork(), so both databases are opened again
 * here, then the upload workers start. */
static void after_fork(void *ud)
{
	struct daemon *d = ud;
	struct errbuf eb = { 0 };

	if (mcache_reopen(d->mc, &eb) || journal_reopen(d->journal, &eb)) {
		log_err("%s: uploads stay pending in the journal until the next mount",
			eb.msg);
		return;
	}
	if (upq_start(d->upq, &eb)) {
		log_err("%s: uploads stay pending in the journal until the next mount",
			eb.msg);
		return;
	}
	if (ctl_start(&d->ctl_cfg, &d->ctl, &eb))
		log_warn("%s; mediactl will read the journal only", eb.msg);
}

static int fail(const char *what, const struct errbuf *eb, enum mfs_err rc)
{
	char msg[sizeof(eb->msg)];

	snprintf(msg, sizeof(msg), "%s", eb->msg[0] ? eb->msg
						      : mfs_strerror(rc));
	log_redact(msg);
	fprintf(stderr, "mediafs: %s%s%s\n", what, *what ? ": " : "", msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct options o = { 0 };
	struct daemon d = { 0 };
	struct fs_config cfg = { 0 };
	struct fuse_mount_opts mo = { 0 };
	struct errbuf eb = { 0 };
	char *cache_root = NULL, *id = NULL, *jid = NULL, *dir = NULL;
	int cache_new = 0;
	char *db = NULL, *lockpath = NULL, *ctl_sock = NULL, *mnt_abs = NULL;
	enum mfs_err rc;
	uint64_t v, data_cache = 1ULL << 30;
	int ret = 1, i;

	d.lock_fd = -1;
	backend_accept_keys(hook_keys);	/* on_write, compress.*, ... */
	if (fix_config_arg(argc, argv, &args) ||
	    fuse_opt_parse(&args, &o, opt_spec, opt_proc)) {
		fprintf(stderr, "Try 'mediafs --help'.\n");
		goto out;
	}
	if (o.help) {
		fputs(usage_text, stdout);
		ret = 0;
		goto out;
	}
	if (o.version) {
		printf("mediafs %s (libfuse %s)\n", MFS_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out;
	}
	if (!o.mountpoint) {
		fprintf(stderr, "mediafs: no mount point given\nTry 'mediafs --help'.\n");
		goto out;
	}
	if (o.debug) {
		unsigned mask;

		if (log_parse_subsystems(o.debug, &mask)) {
			fprintf(stderr, "mediafs: unknown debug subsystem in '%s' (use http, cache, fuse, upq or all, joined by +)\n",
				o.debug);
			goto out;
		}
		log_set_debug(mask);
	}
	if (!o.config)
		o.config = fsu_xdg_path("XDG_CONFIG_HOME", ".config",
				    "/mediafs.conf");
	rc = ini_load(o.config, &d.ini, &eb);
	if (rc) {
		ret = fail("", &eb, rc);
		goto out;
	}

	cfg.ttl_s = DEFAULT_TTL;
	if (o.cache_ttl) {
		if (str_parse_u64(o.cache_ttl, &v) || v > 10 * 365 * 86400) {
			fprintf(stderr, "mediafs: cache_ttl must be a number of seconds, not '%s'\n",
				o.cache_ttl);
			goto out;
		}
		cfg.ttl_s = (int64_t)v;
	}
	cfg.neg_ttl_s = DEFAULT_NEG_TTL;
	if (o.negative_ttl) {
		if (str_parse_u64(o.negative_ttl, &v) ||
		    v > 10 * 365 * 86400) {
			fprintf(stderr, "mediafs: negative_ttl must be a number of seconds, not '%s'\n",
				o.negative_ttl);
			goto out;
		}
		cfg.neg_ttl_s = (int64_t)v;
	}
	mo.op_timeout_ms = 20000;
	if (o.op_timeout) {
		if (str_parse_u64(o.op_timeout, &v) || v > 86400) {
			fprintf(stderr, "mediafs: op_timeout must be a number of seconds (0 = none), not '%s'\n",
				o.op_timeout);
			goto out;
		}
		mo.op_timeout_ms = (long)v * 1000;
	}
	cfg.sync_close = o.sync_close;
	cfg.readahead_max = 8 * 1024 * 1024;
	if (o.readahead) {
		if (str_parse_u64(o.readahead, &v) || v > (1u << 30)) {
			fprintf(stderr, "mediafs: readahead must be a number of bytes up to 1 GiB\n");
			goto out;
		}
		cfg.readahead_max = (size_t)v;
	}

	if (o.data_cache && parse_size(o.data_cache, &data_cache)) {
		fprintf(stderr, "mediafs: data_cache must be a size in bytes (K, M, G suffixes allowed), not '%s'\n",
			o.data_cache);
		goto out;
	}

	d.sb_public = o.sb_public;
	if (o.spec) {
		char *colon = strchr(o.spec, ':');
		struct ini_section *sec;

		if (!colon) {
			fprintf(stderr, "mediafs: '%s' is not REMOTE:[PREFIX] (did you forget the ':'?)\n",
				o.spec);
			goto out;
		}
		*colon = '\0';
		sec = ini_section(d.ini, o.spec);
		if (!sec) {
			fprintf(stderr, "mediafs: no remote [%s] in %s\n",
				o.spec, o.config);
			goto out;
		}
		rc = add_remote(&d, sec, colon + 1, &eb);
		*colon = ':';
		if (rc) {
			ret = fail("", &eb, rc);
			goto out;
		}
		cfg.single = 1;
	} else {
		if (!d.ini->nsec) {
			fprintf(stderr, "mediafs: %s defines no remotes\n",
				o.config);
			goto out;
		}
		for (i = 0; i < d.ini->nsec; i++) {
			rc = add_remote(&d, &d.ini->sec[i], "", &eb);
			if (rc) {
				ret = fail("", &eb, rc);
				goto out;
			}
		}
	}

	cache_root = o.cache_dir ? fsu_abs_path(o.cache_dir)
				 : fsu_xdg_path("XDG_CACHE_HOME", ".cache", "");
	id = mount_id(o.config, o.spec);
	dir = cache_root && id ? str_fmt("%s/%s", cache_root, id) : NULL;
	db = dir ? str_fmt("%s/meta.db", dir) : NULL;
	lockpath = dir ? str_fmt("%s/lock", dir) : NULL;
	if (!db || !lockpath) {
		fprintf(stderr, "mediafs: out of memory\n");
		goto out;
	}
	if (fsu_mkdirs(dir, 0700, 0)) {
		fprintf(stderr, "mediafs: cannot create cache directory %s: %s\n",
			dir, strerror(errno));
		goto out;
	}
	d.lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d.lock_fd < 0 || flock(d.lock_fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "mediafs: cache %s is in use by another mediafs (same config and remote mounted twice?)\n",
			dir);
		goto out;
	}
	cache_new = access(db, F_OK) != 0;
	rc = mcache_open(db, &d.mc, &eb);
	if (rc) {
		ret = fail("", &eb, rc);
		goto out;
	}

	{
		struct upq_config uc = { 0 };
		int shared = o.journal && journal_is_shared(o.journal);
		char *jpath = shared ? journal_conn(&o, d.ini, &eb) :
			      o.journal ? fsu_abs_path(o.journal)
				: fsu_xdg_path("XDG_STATE_HOME", ".local/state",
					   "/journal.db");
		char *jdir = jpath && !shared ? strdup(jpath) : NULL;
		char *sdir = str_fmt("%s/staging", dir);
		int full = 0;

		if (o.journal_sync && strcmp(o.journal_sync, "full") &&
		    strcmp(o.journal_sync, "normal")) {
			fprintf(stderr, "mediafs: journal_sync is 'full' or 'normal'\n");
			goto out;
		}
		full = o.journal_sync && !strcmp(o.journal_sync, "full");
		if (jdir && strrchr(jdir, '/')) {
			*strrchr(jdir, '/') = '\0';
			if (*jdir && fsu_mkdirs(jdir, 0700, 0))
				fprintf(stderr, "mediafs: cannot create %s: %s\n",
					jdir, strerror(errno));
		}
		if (shared && !jpath) {
			free(sdir);
			ret = fail("", &eb, MFS_EINVAL);
			goto out;
		}
		rc = jpath && sdir ? journal_open(jpath, full, &d.journal, &eb)
				   : MFS_ENOMEM;
		if (!rc)
			rc = stage_new(sdir, &d.stage, &eb);
		if (jpath && shared)	/* may hold the password */
			memset(jpath, 0, strlen(jpath));
		free(jpath);
		/* a shared journal's rows name the host: each daemon
		 * resumes only its own */
		jid = shared ? host_mount_id(o.host_id, id) : strdup(id);
		if (!rc && !jid)
			rc = MFS_ENOMEM;
		free(jdir);
		free(sdir);
		if (rc) {
			ret = fail("", &eb, rc);
			goto out;
		}
		uc.mount_id = jid;
		uc.label = o.label;
		if (sniff_new(&d.sniff, &eb))
			log_warn("%s; uploads without a type set will be application/octet-stream",
				 eb.msg);
		uc.sniff = d.sniff;
		uc.stage = d.stage;
		if (o.workers && (str_parse_u64(o.workers, &v) || !v ||
				  v > 256)) {
			fprintf(stderr, "mediafs: upload_workers must be 1..256\n");
			goto out;
		}
		uc.workers = o.workers ? (int)v : 16;
		if (o.mp_threshold &&
		    (str_parse_u64(o.mp_threshold, &v) || v < (5u << 20))) {
			fprintf(stderr, "mediafs: multipart_threshold must be at least 5242880 bytes\n");
			goto out;
		}
		uc.multipart_threshold = o.mp_threshold ? v : 0;
		if (o.marker_wait && (str_parse_u64(o.marker_wait, &v) || !v ||
				      v > 86400)) {
			fprintf(stderr, "mediafs: marker_wait must be 1..86400 seconds\n");
			goto out;
		}
		uc.marker_wait_ms = o.marker_wait ? (long)v * 1000 : 0;
		if (o.upload_delay && (str_parse_u64(o.upload_delay, &v) ||
				       v > 3600000)) {
			fprintf(stderr, "mediafs: upload_delay must be 0..3600000 milliseconds\n");
			goto out;
		}
		/* (upq: 0 is its default, below 0 none) */
		uc.settle_ms = o.upload_delay ? (v ? (long)v : -1) : 0;
		if (o.landing_grace && (str_parse_u64(o.landing_grace, &v) ||
					v > 86400)) {
			fprintf(stderr, "mediafs: landing_grace must be 0..86400 seconds\n");
			goto out;
		}
		/* (upq: 0 is its default, below 0 none) */
		uc.landing_grace_ms = o.landing_grace ?
				      (v ? (long)v * 1000 : -1) : 0;
		rc = upq_new(&uc, d.mc, d.journal, &d.upq, &eb);
		if (rc) {
			ret = fail("", &eb, rc);
			goto out;
		}
		for (i = 0; i < d.nremotes; i++)
			if (d.hooks[i] && upq_set_hook(d.upq, d.remotes[i].be,
						       d.hooks[i]))
				goto out;
	}

	{
		char *ddir = str_fmt("%s/data", dir);

		rc = ddir ? dcache_new(ddir, data_cache, &d.dc, &eb)
			  : MFS_ENOMEM;
		free(ddir);
		if (rc) {
			ret = fail("", &eb, rc);
			goto out;
		}
	}
	cfg.dc = d.dc;
	cfg.sniff = d.sniff;
	cfg.remotes = d.remotes;
	cfg.nremotes = d.nremotes;
	cfg.upq = d.upq;
	cfg.stage = d.stage;
	cfg.journal = d.journal;
	cfg.mount_id = jid;
	cfg.cache_new = cache_new;
	cfg.uid = getuid();
	cfg.gid = getgid();
	cfg.file_mode = 0644;
	cfg.dir_mode = 0755;
	rc = fs_new(&cfg, d.mc, &d.fs, &eb);
	if (rc) {
		ret = fail("", &eb, rc);
		goto out;
	}
	fs_forget_rolled_back(d.fs);
	fs_settle_moves(d.fs);
	rc = fs_prime(d.fs, &eb);
	if (rc) {
		ret = fail("cannot mount", &eb, rc);
		goto out;
	}
	{
		int resumed = 0, lost = 0;

		rc = fs_resume_uploads(d.fs, &resumed, &lost, &eb);
		if (rc) {
			ret = fail("resuming uploads", &eb, rc);
			goto out;
		}
		if (resumed || lost)
			log_info("resuming %d uploads left pending by the last run%s",
				 resumed, lost ? " (some could not be resumed: see above)" : "");
	}
	ctl_sock = str_fmt("%s/ctl.sock", dir);
	mnt_abs = realpath(o.mountpoint, NULL);
	d.ctl_cfg.socket_path = ctl_sock;
	d.ctl_cfg.mount_id = jid;
	d.ctl_cfg.mountpoint = mnt_abs ? mnt_abs : o.mountpoint;
	d.ctl_cfg.label = o.label;
	d.ctl_cfg.upq = d.upq;
	d.ctl_cfg.journal = d.journal;
	d.ctl_cfg.dc = d.dc;
	if (!ctl_sock)
		goto out;
	mo.started = after_fork;
	mo.set_inval = set_inval;
	mo.ud = &d;
	mo.foreground = o.foreground;
	mo.single_thread = o.single_thread;
	{
		/* what mount(8) and df show: the remote, or "mediafs" */
		char fsname[600], *q = fsname;
		const char *p = o.spec ? o.spec : "mediafs";

		q += snprintf(fsname, sizeof(fsname), "-ofsname=");
		for (; *p && q < fsname + sizeof(fsname) - 3; p++) {
			if (*p == ',' || *p == '\\')
				*q++ = '\\';
			*q++ = *p;
		}
		*q = '\0';
		if (fuse_opt_add_arg(&args, fsname))
			goto out;
	}
	if (fuse_opt_add_arg(&args, "-osubtype=mediafs") ||
	    fuse_opt_add_arg(&args, "-odefault_permissions"))
		goto out;
	ret = fuse_ll_run(d.fs, &args, o.mountpoint, &mo);
	/* unmounted: finish what was written before exiting (mediactl still
	 * sees the queue meanwhile) */
	upq_drain(d.upq);
	ctl_stop(d.ctl);
	d.ctl = NULL;
	{
		struct upq_stats st;

		upq_stats(d.upq, &st);
		if (st.done || st.failed)
			log_info("%lu uploads done, %lu failed", st.done,
				 st.failed);
		if (st.failed && st.failed == st.failed_before) {
			/* nothing failed in this run: the exit status says so */
			log_warn("%lu uploads that failed in an earlier run are still not on the store; their files are kept ('mediactl failed', 'mediactl retry')",
				 st.failed);
		} else if (st.failed) {
			/* the unmount summary: what is not on the store */
			char *list = malloc(65536);
			struct upq_tally t;

			if (list) {
				char *line = list, *nl;

				upq_tally(d.upq, NULL, "", &t, list, 65536);
				for (; *line; line = nl + 1) {
					nl = strchr(line, '\n');
					if (!nl)
						break;
					*nl = '\0';
					log_err("not uploaded: %s", line);
				}
				free(list);
			}
			log_err("%lu uploads failed; their files are kept in the staging directory and the journal ('mediactl failed', 'mediactl retry' at the next mount)",
				st.failed);
			ret = 1;
		}
	}
	for (i = 0; i < d.nremotes; i++) {
		const struct backend_stats *b = &d.remotes[i].be->stats;

		if (b->list + b->head + b->get + b->put + b->copy + b->del +
		    b->other)
			log_info("remote [%s]: %lu LIST, %lu HEAD, %lu GET, %lu PUT, %lu COPY, %lu DELETE, %lu other requests; %lu retries",
				 d.remotes[i].name, b->list, b->head, b->get,
				 b->put, b->copy, b->del, b->other, b->retries);
	}
out:
	daemon_cleanup(&d);
	fuse_opt_free_args(&args);
	free(o.config);
	free(o.cache_dir);
	free(o.cache_ttl);
	free(o.negative_ttl);
	free(o.debug);
	free(o.readahead);
	free(o.data_cache);
	free(o.journal);
	free(o.journal_sync);
	free(o.journal_password);
	free(o.host_id);
	free(o.workers);
	free(o.marker_wait);
	free(o.upload_delay);
	free(o.mp_threshold);
	free(o.label);
	free(o.op_timeout);
	free(o.spec);
	free(o.mountpoint);
	free(cache_root);
	free(id);
	free(jid);
	free(dir);
	free(db);
	free(lockpath);
	free(ctl_sock);
	free(mnt_abs);
	return ret;
}
