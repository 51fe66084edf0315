/* verify.c - mediactl verify and rollback: the journal's newest finished
 * upload of every key (of a label) checked against its store, through the
 * same backends and config as mediafs; rollback deletes what a batch
 * uploaded, but only objects whose etag still is the journal's.
 * Both talk to the stores directly, not through a mount: a running
 * mediafs sees a rollback's deletions when its listings expire
 * (cache_ttl) or at once after a remount (it forgets the cached files the
 * journal's rollback events name: core/fs_fresh).
 * Calls: backend, net/http, meta/journal, net/json, cli/util. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "common/str.h"
#include "meta/journal.h"
#include "net/http.h"
#include "net/json.h"

/* The newest upload of each key, still standing (not deleted or renamed
 * through the mount since, by itself or with a directory above it: a
 * directory rename is one event naming the directory; not rolled back). */
#define NEWEST_DONE \
	"SELECT id,remote,key,size,etag,sha256,url FROM uploads u WHERE id IN" \
	" (SELECT max(id) FROM uploads WHERE state IN ('done','rolledback')" \
	"  AND key NOT LIKE '%/' AND (CAST(?1 AS TEXT) IS NULL OR label=?1)" \
	"  GROUP BY remote,key) AND state='done' AND NOT EXISTS" \
	" (SELECT 1 FROM events e WHERE e.remote=u.remote AND e.time>u.updated_at" \
	"  AND ((e.key=u.key AND e.op IN ('delete','rename')) OR (e.op='rename'" \
	"  AND substr(u.key,1,length(e.key)+1)=e.key||'/')))" \
	" ORDER BY remote,key"

struct urow {
	int64_t id;
	char *remote, *key, *etag, *url;
	uint64_t size;
};

struct rows {
	struct urow *r;
	size_t n, cap;
};

static int collect(void *ud, int ncol, const char *const *v,
		   const char *const *names)
{
	struct rows *rs = ud;
	struct urow *u;

	(void)ncol;
	(void)names;
	if (rs->n == rs->cap) {
		struct urow *nr = realloc(rs->r, sizeof(*nr) *
					  (rs->cap = rs->cap ? rs->cap * 2 : 256));

		if (!nr)
			return 1;
		rs->r = nr;
	}
	u = &rs->r[rs->n++];
	u->id = strtoll(v[0], NULL, 10);
	u->remote = strdup(v[1]);
	u->key = strdup(v[2]);
	u->size = v[3] ? strtoull(v[3], NULL, 10) : 0;
	u->etag = strdup(v[4] ? v[4] : "");
	u->url = v[6] ? strdup(v[6]) : NULL;
	return 0;
}

static void rows_free(struct rows *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		free(rs->r[i].remote);
		free(rs->r[i].key);
		free(rs->r[i].etag);
		free(rs->r[i].url);
	}
	free(rs->r);
}

static int load_rows(struct cli *c, const char *label, struct rows *rs)
{
	const char *p[] = { label };
	struct errbuf eb = { 0 };

	if (journal_sql(c->j, NEWEST_DONE, p, 1, collect, rs, &eb))
		return cli_fail(EXIT_STORE, "%s", eb.msg);
	return 0;
}

/* Check one row against the store: NULL when fine, else a problem. */
static char *check_store(struct backend *be, const struct urow *u)
{
	struct obj_meta m;
	struct errbuf eb = { 0 };
	enum mfs_err rc = be->ops->head(be, u->key, &m, &eb);

	if (rc == MFS_ENOTFOUND)
		return strdup("missing");
	if (rc)
		return str_fmt("cannot check: %s", eb.msg);
	if (m.size != u->size)
		return str_fmt("size %llu, the journal says %llu",
			       (unsigned long long)m.size,
			       (unsigned long long)u->size);
	if (*u->etag && *m.etag && strcmp(u->etag, m.etag))
		return str_fmt("etag %s, the journal says %s (changed since)",
			       m.etag, u->etag);
	return NULL;
}

static char *check_url(struct http_client *hc, const struct urow *u)
{
	struct http_request req = { .method = "HEAD", .url = u->url,
				    .body_fd = -1 };
	struct http_response resp;
	struct errbuf eb = { 0 };
	char *why = NULL;
	const char *cl;

	http_response_init(&resp);
	if (http_perform(hc, &req, &resp, &eb)) {
		why = str_fmt("url %s: %s", u->url, eb.msg);
	} else if (resp.status != 200) {
		why = str_fmt("url %s: HTTP %ld%s", u->url, resp.status,
			      resp.status == 401 || resp.status == 403 ||
			      resp.status == 400 ?
			      " (a private object's URL needs credentials)" : "");
	} else if ((cl = http_header(&resp, "content-length")) &&
		   strtoull(cl, NULL, 10) != u->size) {
		why = str_fmt("url %s: Content-Length %s, the journal says %llu",
			      u->url, cl, (unsigned long long)u->size);
	}
	http_response_cleanup(&resp);
	return why;
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "urls", no_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL;
	int urls = 0, json = 0, ch, ret;
	struct rows rs = { 0 };
	struct http_client *hc = NULL;
	struct js *bad = js_arr();
	size_t i, nbad = 0, nok = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			label = optarg;
			break;
		case 'u':
			urls = 1;
			break;
		case 'J':
			json = 1;
			break;
		case 'h':
			printf("usage: mediactl verify [--label L] [--urls] [--json]\n"
			       "  every object the journal says was uploaded (the newest upload of each\n"
			       "  key, of label L) is checked on its store: present, same size, same\n"
			       "  etag. --urls also fetches each URL (HEAD: status 200, Content-Length).\n"
			       "  Exit 1 when anything does not match.\n");
			js_free(bad);
			return 0;
		default:
			js_free(bad);
			return EXIT_USAGE;
		}
	}
	ret = cli_journal_shared(c);
	if (!ret)
		ret = load_rows(c, label, &rs);
	if (ret)
		goto out;
	if (urls) {
		struct http_opts ho = { 10, 30, 60, NULL, NULL };

		hc = http_client_new(&ho);
		if (!hc) {
			ret = cli_fail(EXIT_STORE, "cannot start an HTTP client");
			goto out;
		}
	}
	for (i = 0; i < rs.n; i++) {
		const struct urow *u = &rs.r[i];
		struct backend *be = cli_backend(c, u->remote);
		char *why;

		if (!be) {
			ret = EXIT_USAGE;
			goto out;
		}
		why = check_store(be, u);
		if (!why && urls && u->url)
			why = check_url(hc, u);
		if (why) {
			struct js *o = js_obj();

			js_set_int(o, "id", u->id);
			js_set_str(o, "remote", u->remote);
			js_set_str(o, "key", u->key);
			js_set_str(o, "problem", why);
			js_push(bad, o);
			if (!json)
				printf("MISMATCH %s:%s: %s\n", u->remote, u->key,
				       why);
			nbad++;
			free(why);
		} else {
			nok++;
		}
	}
	if (json) {
		struct js *o = js_obj();

		js_set_int(o, "checked", (int64_t)rs.n);
		js_set_int(o, "ok", (int64_t)nok);
		js_set_int(o, "mismatches", (int64_t)nbad);
		js_set(o, "problems", bad);
		bad = NULL;
		cli_print_json(o);
	} else {
		printf("verified %zu objects%s: %zu ok, %zu mismatches\n", rs.n,
		       urls ? " and URLs" : "", nok, nbad);
	}
	ret = nbad ? EXIT_PROBLEMS : 0;
out:
	js_free(bad);
	http_client_free(hc);
	rows_free(&rs);
	return ret;
}

int cmd_rollback(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "rewrite", required_argument, NULL, 'r' },
		{ "db", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL, *rewrite = NULL, *conn = NULL;
	int dry = 0, ch, ret;
	struct rows rs = { 0 };
	size_t i, ndel = 0, nkept = 0, ngone = 0, nerr = 0;

	while ((ch = getopt_long(argc, argv, "n", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			label = optarg;
			break;
		case 'n':
			dry = 1;
			break;
		case 'r':
			rewrite = optarg;
			break;
		case 'd':
			conn = optarg;
			break;
		case 'h':
			printf("usage: mediactl rollback --label L [--dry-run]\n"
			       "       mediactl rollback --rewrite ID --db CONN [--dry-run]\n"
			       "  --rewrite: restore the values rewrite #ID changed (compare-and-set:\n"
			       "  a row changed since is kept and reported), delete the rows it\n"
			       "  inserted and its log-table rows.\n"
			       "  delete the objects batch L uploaded (the newest upload of each key),\n"
			       "  only where the store still holds exactly what was uploaded (same\n"
			       "  etag); an object changed since is kept and reported. Each deletion\n"
			       "  is recorded in the journal. Exit 1 when anything was kept.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (rewrite)
		return rewrite_rollback(c, rewrite, conn, dry);
	if (!label)
		return cli_fail(EXIT_USAGE, "rollback needs --label (the batch to undo) or --rewrite ID");
	ret = cli_journal_shared(c);
	if (!ret)
		ret = load_rows(c, label, &rs);
	if (ret)
		goto out;
	for (i = 0; i < rs.n; i++) {
		const struct urow *u = &rs.r[i];
		struct backend *be = cli_backend(c, u->remote);
		struct obj_meta m;
		struct errbuf eb = { 0 };
		enum mfs_err rc;
		char id[32];
		const char *p[] = { id };

		if (!be) {
			ret = EXIT_USAGE;
			goto out;
		}
		snprintf(id, sizeof(id), "%lld", (long long)u->id);
		rc = be->ops->head(be, u->key, &m, &eb);
		if (rc == MFS_ENOTFOUND) {
			printf("gone    %s:%s (already deleted)\n", u->remote,
			       u->key);
			ngone++;
			if (!dry)
				journal_exec(c->j, "UPDATE uploads SET state='rolledback',"
					     "error='already gone at rollback' WHERE id=?1",
					     p, 1, NULL, NULL);
			continue;
		}
		if (rc) {
			printf("error   %s:%s: %s\n", u->remote, u->key, eb.msg);
			nerr++;
			continue;
		}
		if (!*u->etag || strcmp(m.etag, u->etag)) {
			printf("kept    %s:%s: changed since the upload (etag %s, the journal says %s)\n",
			       u->remote, u->key, m.etag, *u->etag ? u->etag : "none");
			nkept++;
			continue;
		}
		if (dry) {
			printf("delete  %s:%s\n", u->remote, u->key);
			ndel++;
			continue;
		}
		rc = be->ops->del(be, u->key, &eb);
		if (rc) {
			printf("error   %s:%s: %s\n", u->remote, u->key, eb.msg);
			nerr++;
			continue;
		}
		printf("deleted %s:%s\n", u->remote, u->key);
		ndel++;
		journal_exec(c->j, "UPDATE uploads SET state='rolledback' WHERE id=?1",
			     p, 1, NULL, NULL);
		{
			char now[32];
			const char *q[] = { u->remote, u->key, label, now };

			snprintf(now, sizeof(now), "%.3f", cli_now());
			journal_exec(c->j, "INSERT INTO events(time,mount_id,remote,"
				     "op,key,detail) VALUES(?4,'mediactl',?1,"
				     "'rollback',?2,'label '||CAST(?3 AS TEXT))",
				     q, 4, NULL, NULL);
			journal_exec(c->j, "UPDATE copies SET state='rolledback'"
				     " WHERE dst_remote=?1 AND dst_key=?2 AND state='done'",
				     q, 2, NULL, NULL);
		}
	}
	printf("%s%zu deleted, %zu kept (changed since), %zu already gone, %zu errors\n",
	       dry ? "dry run: would have " : "", ndel, nkept, ngone, nerr);
	ret = nerr ? EXIT_STORE : nkept ? EXIT_PROBLEMS : 0;
out:
	rows_free(&rs);
	return ret;
}
