/* imagekit_write.c - ImageKit writes (API-NOTES C2, C5-C7, C9): the
 * custom metadata fields, uploads (never sent again blindly: a failed or
 * doubtful upload is re-checked, and only the new content counts as
 * landed), metadata updates, copy, move and rename (files: the APIs;
 * folders: bulk jobs), deletes, folders. Calls: imagekit.c (the request
 * loop, searches, the index), net, common. Thread-safe like imagekit.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imagekit_int.h"
#include "common/buf.h"
#include "common/deadline.h"
#include "common/log.h"
#include "common/str.h"

/* ---- custom metadata fields ---- */

static const char *const FIELDS[] = { "mtime", "mode" };

/* Make sure the fields "mtime" and "mode" exist (once per mount). Returns
 * 1 when uploads may carry them. */
static int fields_ready(struct backend *be)
{
	struct ik *ik = be->priv;
	struct errbuf eb = { 0 };
	struct js *arr = NULL;
	enum mfs_err rc;
	size_t i, f;
	int ok;

	pthread_mutex_lock(&ik->fields_lock);
	if (ik->fields) {
		ok = ik->fields > 0;
		pthread_mutex_unlock(&ik->fields_lock);
		return ok;
	}
	rc = imagekit_api(be, "GET", "/v1/customMetadataFields", NULL,
		 "custom metadata fields", &arr, &eb);
	for (f = 0; !rc && f < 2; f++) {
		int have = 0;
		char *body;

		for (i = 0; i < js_len(arr); i++) {
			const struct js *o = js_at(arr, i);
			const char *n = js_get_str(o, "name");
			const char *t = js_get_str(js_get(o, "schema"), "type");

			if (!n || strcmp(n, FIELDS[f]))
				continue;
			have = 1;
			if (!t || strcmp(t, "Number"))
				rc = eb_set(&eb, MFS_EINVAL,
					    "the account's field '%s' is of type %s, not Number",
					    FIELDS[f], t ? t : "unknown");
		}
		if (have)
			continue;
		body = str_fmt("{\"name\":\"%s\",\"label\":\"%s\",\"schema\":{\"type\":\"Number\"}}",
			       FIELDS[f], FIELDS[f]);
		rc = body ? imagekit_api(be, "POST", "/v1/customMetadataFields", body,
				"custom metadata field", NULL, &eb)
			  : MFS_ENOMEM;
		free(body);
		if (!rc)
			log_info("remote [%s]: created the custom metadata field '%s' (mediafs keeps mtime and mode there)",
				 be->name, FIELDS[f]);
	}
	js_free(arr);
	if (rc == MFS_ENOMEM || rc == MFS_ETRANSIENT || rc == MFS_EIO ||
	    rc == MFS_EINTR) {
		/* try again with the next upload (EINTR: this one was stopped,
		 * its file deleted; a review: that turned the fields off for
		 * the rest of the mount) */
		pthread_mutex_unlock(&ik->fields_lock);
		log_warn("remote [%s]: custom metadata fields: %s", be->name,
			 eb.msg);
		return 0;
	}
	ik->fields = rc ? -1 : 1;
	if (rc)
		log_warn("remote [%s]: cannot use custom metadata fields mtime/mode (%s): mtimes are not kept; use rsync --size-only",
			 be->name, eb.msg);
	pthread_mutex_unlock(&ik->fields_lock);
	return !rc;
}

/* {"mtime":S.NNN,"mode":N} for m, malloc'd; "{}" without them. */
static char *custom_meta(const struct put_meta *m, int fields)
{
	if (!fields || (!m->mtime_ns && !m->mode))
		return strdup("{}");
	if (!m->mode)
		return str_fmt("{\"mtime\":%lld.%09lld}",
			       (long long)(m->mtime_ns / 1000000000),
			       (long long)(m->mtime_ns % 1000000000));
	if (!m->mtime_ns)
		return str_fmt("{\"mode\":%u}", m->mode & 07777);
	return str_fmt("{\"mtime\":%lld.%09lld,\"mode\":%u}",
		       (long long)(m->mtime_ns / 1000000000),
		       (long long)(m->mtime_ns % 1000000000), m->mode & 07777);
}

/* ---- writes ---- */

static enum mfs_err form_field(struct buf *b, const char *bound,
			       const char *name, const char *value)
{
	return buf_addf(b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n",
			bound, name, value);
}

/* The multipart body of an upload: fields, then the file's bytes. */
static enum mfs_err upload_body(const struct put_body *body, const char *name,
				const char *folder, const char *cmeta,
				const char *bound, struct buf *b,
				struct errbuf *eb)
{
	enum mfs_err rc;
	uint64_t done = 0;

	rc = form_field(b, bound, "fileName", name);
	if (!rc)
		rc = form_field(b, bound, "folder", folder);
	if (!rc)
		rc = form_field(b, bound, "useUniqueFileName", "false");
	if (!rc)
		rc = form_field(b, bound, "overwriteFile", "true");
	if (!rc)
		rc = form_field(b, bound, "customMetadata", cmeta);
	if (!rc)
		rc = form_field(b, bound, "responseFields", "customMetadata");
	if (!rc)
		rc = buf_addf(b, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
			      bound, name);
	while (!rc && done < body->len) {
		char chunk[65536];
		size_t want = body->len - done < sizeof(chunk) ?
			      (size_t)(body->len - done) : sizeof(chunk);
		ssize_t n = pread(body->fd, chunk, want,
				  (off_t)(body->off + done));

		if (n <= 0)
			return eb_set(eb, MFS_EIO, "reading the staged file: %s",
				      n ? strerror(errno) : "short file");
		rc = buf_add(b, chunk, (size_t)n);
		done += (uint64_t)n;
	}
	if (!rc)
		rc = buf_addf(b, "\r\n--%s--\r\n", bound);
	return rc;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Are the bytes ImageKit serves for key (the version in m) the body's?
 * Read in ranged chunks (the original bytes, tr=orig-true). */
static int same_bytes(struct backend *be, const char *key,
		      const struct obj_meta *m, const struct put_body *body)
{
	size_t cap = 1 << 20;
	char *got = malloc(cap), *want = malloc(cap);
	uint64_t off = 0;
	int same = got && want;

	while (same && off < body->len) {
		struct errbuf eb = { 0 };
		size_t len = body->len - off < cap ? (size_t)(body->len - off)
						   : cap;
		size_t n = 0;
		ssize_t r;

		if (imagekit_get(be, key, off, len, m->etag, got, &n, &eb) ||
		    n != len)
			same = 0;
		r = same ? pread(body->fd, want, len, (off_t)(body->off + off))
			 : -1;
		if (r != (ssize_t)len || memcmp(got, want, len))
			same = 0;
		off += len;
	}
	free(got);
	free(want);
	return same;
}

/* After a failed or doubtful upload (begun at t0, CLOCK_MONOTONIC ns):
 * does ImageKit hold what was sent? Its size (and the mtime field) must
 * match, and it must be proven to be the new content, not the version
 * the upload meant to replace: updated after the attempt began, on
 * ImageKit's own clock (the search reply's Date, 1 s resolution, minus
 * the time since t0, is a bound the attempt's start is below), or else
 * its bytes equal to the body's. Size and mtime alone prove nothing. */
static int landed(struct backend *be, const char *key,
		  const struct put_body *body, const struct put_meta *pm,
		  int fields, int64_t t0, const char *oldver,
		  struct obj_meta *out)
{
	struct errbuf eb = { 0 };
	int64_t date = 0, sent = mono_ns();

	if (imagekit_find_dated(be, key, 0, out, &date, &eb))
		return 0;
	if (out->size != body->len)
		return 0;
	/* custom metadata numbers are doubles: microseconds survive */
	if (fields && pm->mtime_ns && llabs(out->mtime_ns - pm->mtime_ns) > 1000)
		return 0;
	if (date && out->server_mtime_ns && strcmp(out->etag, oldver) &&
	    out->server_mtime_ns >= date + 1000000000LL - (sent - t0)) {
		log_dbg(LOG_SUB_HTTP, "%s: version %s was updated after the upload began (ImageKit's clock)",
			key, out->etag);
		return 1;
	}
	if (same_bytes(be, key, out, body)) {
		log_dbg(LOG_SUB_HTTP, "%s: version %s holds the bytes sent",
			key, out->etag);
		return 1;
	}
	return 0;
}

/* Is path what ImageKit makes of want (every character it does not keep
 * turned into '_')? */
static int sanitised_of(const char *path, const char *want)
{
	if (strlen(path) != strlen(want))
		return 0;
	for (; *want; want++, path++)
		if (*path != *want &&
		    !(*path == '_' && *want != '/' &&
		      !imagekit_name_char_ok((unsigned char)*want)))
			return 0;
	return 1;
}

enum mfs_err imagekit_put(struct backend *be, const char *key,
			   const struct put_body *body,
			   const struct put_meta *meta, struct obj_meta *out,
			   struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct put_meta none = { 0 };
	const char *name;
	char *folder = imagekit_parent(ik, key, &name), *cmeta = NULL, *url = NULL;
	char bound[64], *want = NULL, oldver[80] = "";
	struct ik_ent *old;
	struct buf b;
	enum mfs_err rc;
	int fields, attempt;

	memset(out, 0, sizeof(*out));
	buf_init(&b, 0);
	if (!meta)
		meta = &none;
	if (!folder)
		return MFS_ENOMEM;
	if (!body->len) {
		free(folder);
		return eb_set(eb, MFS_EUNSUPP,
			      "%s: ImageKit cannot store empty files", key);
	}
	fields = fields_ready(be);
	cmeta = custom_meta(meta, fields);
	url = str_fmt("%s/api/v1/files/upload", ik->upload);
	want = imagekit_path(ik, key);
	snprintf(bound, sizeof(bound), "mediafs-%08lx%08lx",
		 (unsigned long)random(), (unsigned long)time(NULL));
	/* the version an overwrite replaces: never proof of the new one */
	if ((old = imagekit_idx_get(ik, key))) {
		snprintf(oldver, sizeof(oldver), "%s",
			 old->version ? old->version : "");
		imagekit_ent_free(old);
	}
	rc = cmeta && url && want ? upload_body(body, name, folder, cmeta,
						bound, &b, eb)
				  : MFS_ENOMEM;
	for (attempt = 0; !rc; attempt++) {
		struct ik_call c = { 0 };
		struct js *j = NULL;
		char ctype[120];
		int64_t t0 = mono_ns();

		snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s",
			 bound);
		c.method = "POST";
		c.url = url;
		c.what = key;
		c.body = b.data;
		c.body_len = b.len;
		c.ctype = ctype;
		c.once = 1;
		c.counter = &be->stats.put;
		rc = imagekit_json(be, &c, &j, eb);
		if (!rc) {
			const char *fp = js_get_str(j, "filePath");
			const char *fid = js_get_str(j, "fileId");
			const char *ver = js_get_str(js_get(j, "versionInfo"),
						     "id");
			int64_t size = -1;

			js_int(js_get(j, "size"), &size);
			imagekit_meta_from_file(j, out);
			if (fp && fid && strcmp(fp, want) &&
			    sanitised_of(fp, want)) {
				/* sanitised after all: do not leave it (also
				 * when the upload was stopped meanwhile) */
				char *p = str_fmt("/v1/files/%s", fid);
				const atomic_int *stop = deadline_watching();

				deadline_watch(NULL);
				if (p)
					imagekit_api(be, "DELETE", p, NULL, fp,
						     NULL, NULL);
				deadline_watch(stop);
				free(p);
				rc = eb_set(eb, MFS_EINVAL,
					    "%s: ImageKit stored it as %s (a name it rewrites); removed",
					    key, fp);
			} else if (!js_is_obj(j) || !fp || !fid || !ver) {
				/* a 200 that is not a stored file's reply */
				const char *msg = js_get_str(j, "message");

				rc = eb_set(eb, MFS_ETRANSIENT,
					    "upload of %s: the reply names no stored file%s%s",
					    key, msg ? ": " : "",
					    msg ? msg : "");
			} else if (strcmp(fp, want)) {
				rc = eb_set(eb, MFS_ETRANSIENT,
					    "upload of %s: the reply names another file (%.200s)",
					    key, fp);
			} else if (oldver[0] && !strcmp(ver, oldver)) {
				rc = eb_set(eb, MFS_ETRANSIENT,
					    "upload of %s: the reply names version %s, the one the upload replaces",
					    key, ver);
			} else if (size != (int64_t)body->len) {
				rc = eb_set(eb, MFS_ETRANSIENT,
					    "upload of %s: the reply says %lld bytes, %llu were sent",
					    key, (long long)size,
					    (unsigned long long)body->len);
			} else {
				imagekit_remember(ik, key, j);
				out->mtime_ns = meta->mtime_ns ?
						meta->mtime_ns : out->mtime_ns;
				out->mode = meta->mode & 07777;
			}
			js_free(j);
			if (rc != MFS_ETRANSIENT)
				break;
			log_warn("%s: not trusted, re-checking",
				 eb ? eb->msg : key);
			j = NULL;
		}
		js_free(j);
		if (rc != MFS_ETRANSIENT)
			break;
		/* never upload again blindly: maybe it landed and only the
		 * reply was lost */
		if (landed(be, key, body, meta, fields, t0, oldver, out)) {
			log_info("%s: the upload's reply was lost, but ImageKit holds it (%llu bytes, version %s, proven new): not sent again",
				 key, (unsigned long long)body->len, out->etag);
			out->mtime_ns = meta->mtime_ns ? meta->mtime_ns
						       : out->mtime_ns;
			out->mode = meta->mode & 07777;
			rc = MFS_OK;
			break;
		}
		if (attempt >= ik->retries) {
			eb_prefix(eb, "upload of %s: gave up after %d retries",
				  key, ik->retries);
			rc = MFS_EIO;
			break;
		}
		__atomic_add_fetch(&be->stats.retries, 1, __ATOMIC_RELAXED);
		http_sleep_ms(http_backoff_ms(attempt, ik->backoff_ms, 20000));
		rc = MFS_OK;
	}
	buf_cleanup(&b);
	free(folder);
	free(cmeta);
	free(url);
	free(want);
	return rc;
}

/* Update mtime/mode in place: PATCH the file's details. */
static enum mfs_err patch_meta(struct backend *be, const char *key,
			       const struct put_meta *meta,
			       struct obj_meta *out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = NULL;
	struct js *j = NULL;
	char *cm, *body = NULL, *path = NULL;
	enum mfs_err rc;

	if (!fields_ready(be))
		return eb_set(eb, MFS_EUNSUPP,
			      "%s: mtime and mode cannot be kept (no custom metadata fields)",
			      key);
	rc = imagekit_lookup(be, key, &e, eb);
	if (rc)
		return rc;
	cm = custom_meta(meta, 1);
	if (cm)
		body = str_fmt("{\"customMetadata\":%s}", cm);
	path = str_fmt("/v1/files/%s/details", e->file_id);
	rc = body && path ? imagekit_api(be, "PATCH", path, body, key, &j, eb)
			  : MFS_ENOMEM;
	if (!rc) {
		imagekit_meta_from_file(j, out);
		imagekit_remember(ik, key, j);
	}
	js_free(j);
	imagekit_ent_free(e);
	free(cm);
	free(body);
	free(path);
	return rc;
}

enum mfs_err imagekit_copy(struct backend *be, const char *src,
			    const char *dst, const struct put_meta *meta,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sp = NULL, *dfold = imagekit_parent(ik, dst, &dn), *body = NULL;
	struct js *j = NULL;
	enum mfs_err rc;

	if (!strcmp(src, dst)) {
		free(dfold);
		return meta ? patch_meta(be, src, meta, out, eb) : MFS_OK;
	}
	sn = imagekit_base_name(src);
	if (!dfold)
		return MFS_ENOMEM;
	if (strcmp(sn, dn)) {
		free(dfold);
		return eb_set(eb, MFS_EUNSUPP,
			      "ImageKit copies keep the file's name (%s -> %s)",
			      src, dst);
	}
	sp = imagekit_path(ik, src);
	j = js_obj();
	if (sp && j && !js_set_str(j, "sourceFilePath", sp) &&
	    !js_set_str(j, "destinationPath", dfold) &&
	    !js_set_bool(j, "includeFileVersions", 0))
		body = js_dump(j, 0);
	js_free(j);
	rc = body ? imagekit_api(be, "POST", "/v1/files/copy", body, src, NULL, eb)
		  : MFS_ENOMEM;
	if (!rc)
		rc = meta ? patch_meta(be, dst, meta, out, eb)
			  : imagekit_find(be, dst, 0, out, eb);
	free(sp);
	free(dfold);
	free(body);
	return rc;
}

/* Does key exist on the server (as file or folder)? 1 yes, 0 no, <0 error
 * (in *rc). */
static int exists(struct backend *be, const char *key, enum mfs_err *rc,
		  struct errbuf *eb)
{
	struct obj_meta m;

	*rc = imagekit_find(be, key, 1, &m, eb);
	if (*rc == MFS_ENOTFOUND) {
		*rc = MFS_OK;
		return 0;
	}
	return *rc ? -1 : 1;
}

/* The name a move of src to dst goes through (IK_MOVE_PREFIX and 16 hex
 * digits of an FNV-1a hash of both keys): no other writer uses it, and a
 * move a kill stopped between its steps is found under it again
 * (imagekit_move_undo) from the two keys the journal recorded. */
static void move_name(char out[sizeof(IK_MOVE_PREFIX) + 16], const char *src,
		      const char *dst)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *k[] = { src, dst };
	size_t i, n;

	for (i = 0; i < 2; i++)
		for (n = 0; n <= strlen(k[i]); n++) {	/* (with its NUL) */
			h ^= (unsigned char)k[i][n];
			h *= 0x100000001b3ULL;
		}
	snprintf(out, sizeof(IK_MOVE_PREFIX) + 16, IK_MOVE_PREFIX "%016llx",
		 (unsigned long long)h);
}

/* Start a bulk job (kind: "moveFolder" with sourceFolderPath and
 * destinationPath, "renameFolder" with folderPath and newFolderName) and
 * wait until ImageKit says it completed. */
static enum mfs_err bulk_job(struct backend *be, const char *kind,
			     const char *a, const char *av, const char *b,
			     const char *bv, const char *what,
			     struct errbuf *eb)
{
	struct js *j = NULL;
	char *path = str_fmt("/v1/bulkJobs/%s", kind), *id = NULL;
	enum mfs_err rc;
	time_t until = time(NULL) + JOB_TIMEOUT_S;
	long wait = 100;

	rc = path ? imagekit_api2(be, "POST", path, what, a, av, b, bv,
			 !strcmp(kind, "renameFolder"), &j, eb)
		  : MFS_ENOMEM;
	if (!rc && !js_get_str(j, "jobId"))
		rc = eb_set(eb, MFS_EPROTO, "%s %s: no jobId in the reply",
			    kind, what);
	if (!rc)
		id = str_fmt("/v1/bulkJobs/%s", js_get_str(j, "jobId"));
	js_free(j);
	j = NULL;
	if (!rc && !id)
		rc = MFS_ENOMEM;
	while (!rc) {
		const char *st;

		http_sleep_ms(wait);
		rc = imagekit_api(be, "GET", id, NULL, what, &j, eb);
		st = rc ? NULL : js_get_str(j, "status");
		if (!rc && st && !strcasecmp(st, "Completed")) {
			js_free(j);
			break;
		}
		if (!rc && st && strcasecmp(st, "Pending") &&
		    strcasecmp(st, "Running") && strcasecmp(st, "In_Progress"))
			rc = eb_set(eb, MFS_EIO, "%s %s: the job ended as %s",
				    kind, what, st);
		js_free(j);
		j = NULL;
		if (!rc && time(NULL) > until)
			rc = eb_set(eb, MFS_EIO,
				    "%s %s: the job was still pending after %d s",
				    kind, what, JOB_TIMEOUT_S);
		if (wait < 2000)
			wait *= 2;
	}
	if (!rc)
		log_info("remote [%s]: %s %s: job completed", be->name, kind,
			 what);
	free(path);
	free(id);
	return rc;
}

/* The two steps of a rename on ImageKit: within a folder, and into
 * another folder (keeping the name); a file's through the file APIs, a
 * folder's (dir) through bulk jobs, polled until done. */
static enum mfs_err step_rename(struct backend *be, int dir, const char *path,
				const char *newname, const char *what,
				struct errbuf *eb)
{
	return dir ? bulk_job(be, "renameFolder", "folderPath", path,
			      "newFolderName", newname, what, eb)
		   : imagekit_api2(be, "PUT", "/v1/files/rename", what, "filePath",
			  path, "newFileName", newname, 1, NULL, eb);
}

static enum mfs_err step_move(struct backend *be, int dir, const char *path,
			      const char *folder, const char *what,
			      struct errbuf *eb)
{
	return dir ? bulk_job(be, "moveFolder", "sourceFolderPath", path,
			      "destinationPath", folder, what, eb)
		   : imagekit_api2(be, "POST", "/v1/files/move", what, "sourceFilePath",
			  path, "destinationPath", folder, 0, NULL, eb);
}

/* Requests relocate takes for src to dst: one for the same folder or the
 * same name, three for another folder and another name (backend.h). */
int imagekit_move_steps(const struct backend *be, const char *src,
			const char *dst, int dir)
{
	const struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sfold = imagekit_parent(ik, src, &sn);
	char *dfold = imagekit_parent(ik, dst, &dn);
	int steps = 3;	/* (no memory: recorded) */

	(void)dir;	/* a folder's steps are a file's */
	if (sfold && dfold && (!strcmp(sfold, dfold) || !strcmp(sn, dn)))
		steps = 1;
	free(sfold);
	free(dfold);
	return steps;
}

/* Rename file or folder (dir) src to dst. A target that exists is refused:
 * ImageKit would stack a file onto it as new versions, or merge folders.
 * Same folder: one rename; same name: one move (it keeps the name).
 * Another folder and another name: never through a name someone may use
 * (a move onto a name that is taken stacks or merges, and the rename after
 * it took both away: a file moved in beside one of its base name, #15.43,
 * or a folder moved where an upload made one of its name meanwhile,
 * #15.45): a rename to a move name (move_name) in the old folder, the move,
 * then the rename to the new name. A step that fails undoes the ones
 * before it (best effort: what stays under a move name is logged). */
static enum mfs_err relocate(struct backend *be, const char *src,
			     const char *dst, int dir, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sfold = imagekit_parent(ik, src, &sn), *dfold = imagekit_parent(ik, dst, &dn);
	char *sp = imagekit_path(ik, src), *tp = NULL, *mp = NULL;
	char tmp[sizeof(IK_MOVE_PREFIX) + 16];
	enum mfs_err rc = sfold && dfold && sp ? MFS_OK : MFS_ENOMEM;
	struct errbuf e2 = { 0 };

	if (!rc && exists(be, dst, &rc, eb) > 0)
		rc = eb_set(eb, MFS_EEXIST,
			    "%s exists on ImageKit: mediafs does not rename onto it",
			    dst);
	if (rc)
		goto out;
	if (!strcmp(sfold, dfold)) {
		rc = step_rename(be, dir, sp, dn, src, eb);
		goto done;
	}
	if (!strcmp(sn, dn)) {
		rc = step_move(be, dir, sp, dfold, src, eb);
		goto done;
	}
	move_name(tmp, src, dst);
	tp = str_fmt("%s%s%s", sfold, strcmp(sfold, "/") ? "/" : "", tmp);
	mp = str_fmt("%s%s%s", dfold, strcmp(dfold, "/") ? "/" : "", tmp);
	if (!tp || !mp) {
		rc = MFS_ENOMEM;
		goto out;
	}
	rc = step_rename(be, dir, sp, tmp, src, eb);
	if (rc)
		goto done;
	rc = step_move(be, dir, tp, dfold, src, eb);
	if (rc) {
		if (step_rename(be, dir, tp, sn, src, &e2))
			log_err("remote [%s]: %s is %s on ImageKit now (its move failed, and so did the way back: %s)",
				be->name, src, tp, e2.msg);
		goto done;
	}
	rc = step_rename(be, dir, mp, dn, dst, eb);
	if (rc && (step_move(be, dir, mp, sfold, src, &e2) ||
		   step_rename(be, dir, tp, sn, src, &e2)))
		log_err("remote [%s]: %s is under a move name on ImageKit now (%s or %s: its rename failed, and so did the way back: %s)",
			be->name, src, mp, tp, e2.msg);
done:	/* (also after a failed step: where it is now is found again) */
	imagekit_idx_drop(ik, src, dir);
out:
	free(sfold);
	free(dfold);
	free(sp);
	free(tp);
	free(mp);
	return rc;
}

/* key's sibling called name (the same folder). */
static char *sibling(const char *key, const char *name)
{
	const char *slash = strrchr(key, '/');

	return slash ? str_fmt("%.*s/%s", (int)(slash - key), key, name)
		     : strdup(name);
}

/* Put back what relocate left between its steps (a kill, or an undo that
 * failed): under the move name in dst's folder (moved, not yet renamed)
 * it goes back to src's folder, then under the move name there it takes
 * src's name again. Up to 3 searches and 2 requests; 2 searches when
 * nothing was left. One with src's name meanwhile is not replaced (it
 * would stack onto it as versions): an error, the object stays. */
static enum mfs_err undo_once(struct backend *be, const char *src,
			      const char *dst, int dir, int *found,
			      struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sfold = imagekit_parent(ik, src, &sn), *dfold = imagekit_parent(ik, dst, &dn);
	char tmp[sizeof(IK_MOVE_PREFIX) + 16];
	char *tkey = NULL, *mkey = NULL, *tp = NULL, *mp = NULL;
	enum mfs_err rc = sfold && dfold ? MFS_OK : MFS_ENOMEM;
	int at = 0;

	if (rc || !strcmp(sfold, dfold) || !strcmp(sn, dn))
		goto out;	/* one request: nothing between steps */
	move_name(tmp, src, dst);
	tkey = sibling(src, tmp);
	mkey = sibling(dst, tmp);
	tp = tkey ? imagekit_path(ik, tkey) : NULL;
	mp = mkey ? imagekit_path(ik, mkey) : NULL;
	if (!tp || !mp) {
		rc = MFS_ENOMEM;
		goto out;
	}
	/* searched in the order the steps take it (a step of the stopped
	 * daemon still on its way moves it on, never back: searched after,
	 * it is found there) */
	at = exists(be, tkey, &rc, eb);
	if (!rc && !at && (at = exists(be, mkey, &rc, eb)) > 0)
		at = 2;		/* moved, not renamed */
	if (found)
		*found = at > 0;
	if (rc || at <= 0)
		goto out;
	if (exists(be, src, &rc, eb)) {
		/* src's name taken again since: the move goes on, if dst's
		 * is free */
		if (!rc && exists(be, dst, &rc, eb))
			rc = rc ? rc : eb_set(eb, MFS_EEXIST,
					      "%s and %s both exist again: what the move left stays under %s",
					      src, dst, tmp);
		if (!rc && at == 1)
			rc = step_move(be, dir, tp, dfold, src, eb);
		if (!rc)
			rc = step_rename(be, dir, mp, dn, dst, eb);
		if (!rc)
			log_info("remote [%s]: %s is under its new name %s: its move was stopped between its steps, and %s exists again",
				 be->name, src, dst, src);
		goto out;
	}
	if (at == 2)
		rc = step_move(be, dir, mp, sfold, src, eb);
	if (!rc)
		rc = step_rename(be, dir, tp, sn, src, eb);
	/* a step of the stopped daemon may still be running (a request on
	 * its way, a folder's bulk job still pending): it may have moved it
	 * on meanwhile */
	if (!rc && (exists(be, mkey, &rc, eb) > 0 || (!rc &&
		    exists(be, tkey, &rc, eb) > 0)))
		rc = eb_set(eb, MFS_ENOTFOUND,
			    "%s is still under the move name %s (a step of the stopped daemon still ran)",
			    src, tmp);
	if (!rc)
		log_info("remote [%s]: %s is back under its name: its move to %s was stopped between its steps",
			 be->name, src, dst);
out:
	if (at > 0) {
		imagekit_idx_drop(ik, src, dir);
		imagekit_idx_drop(ik, tkey, dir);
		imagekit_idx_drop(ik, mkey, dir);
	}
	free(sfold);
	free(dfold);
	free(tkey);
	free(mkey);
	free(tp);
	free(mp);
	return rc;
}

/* A step of the stopped daemon may still be on its way (a request
 * answered after its death, a folder's bulk job still pending) and move
 * it on after the search, or after the steps here: searched again a
 * second later, until a pass finds nothing (3 more at most; a pass that
 * failed leaves the move in the journal for the next mount). A step
 * answered "not found" (it moved on meanwhile) is searched again the same
 * way. Costs a second and 2 searches at the mount after a kill that
 * stopped a move. */
enum mfs_err imagekit_move_undo(struct backend *be, const char *src,
				const char *dst, int dir, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *sn, *dn;
	char *sf = imagekit_parent(ik, src, &sn), *df = imagekit_parent(ik, dst, &dn);
	int found = 0, tries, oom = !sf || !df;
	int one = !oom && (!strcmp(sf, df) || !strcmp(sn, dn));
	enum mfs_err rc;

	free(sf);
	free(df);
	if (oom)
		return MFS_ENOMEM;
	if (one)	/* one request: nothing between steps */
		return MFS_OK;
	rc = undo_once(be, src, dst, dir, &found, eb);

	for (tries = 0; tries < 3 && (!rc || rc == MFS_ENOTFOUND); tries++) {
		sleep(1);
		memset(eb, 0, sizeof(*eb));
		rc = undo_once(be, src, dst, dir, &found, eb);
		if (!rc && !found)
			break;
	}
	return rc;
}

enum mfs_err imagekit_move(struct backend *be, const char *src,
			    const char *dst, struct errbuf *eb)
{
	return relocate(be, src, dst, 0, eb);
}

static enum mfs_err delete_id(struct backend *be, const char *key,
			      const char *id, struct errbuf *eb)
{
	char *p = str_fmt("/v1/files/%s", id);
	enum mfs_err rc;

	if (!p)
		return MFS_ENOMEM;
	__atomic_add_fetch(&be->stats.del, 1, __ATOMIC_RELAXED);
	rc = imagekit_api(be, "DELETE", p, NULL, key, NULL, eb);
	free(p);
	return rc == MFS_ENOTFOUND ? MFS_OK : rc;
}


enum mfs_err imagekit_del(struct backend *be, const char *key,
			   struct errbuf *eb)
{
	struct ik *ik = be->priv;
	struct ik_ent *e = NULL;
	size_t n = strlen(key);
	enum mfs_err rc;

	if (n && key[n - 1] == '/') {	/* a directory marker */
		char *d = str_ndup(key, n - 1);

		rc = d ? imagekit_rmdir(be, d, eb) : MFS_ENOMEM;
		free(d);
		return rc;
	}
	rc = imagekit_lookup(be, key, &e, eb);
	if (rc == MFS_ENOTFOUND)
		return MFS_OK;
	if (!rc)
		rc = delete_id(be, key, e->file_id, eb);
	if (!rc)
		imagekit_idx_drop(ik, key, 0);
	if (e)
		imagekit_ent_free(e);
	return rc;
}

enum mfs_err imagekit_del_many(struct backend *be, const char *const *keys,
				int n, int *failed, struct errbuf *eb)
{
	int i;

	*failed = 0;
	for (i = 0; i < n; i++) {
		struct errbuf e1 = { 0 };

		if (imagekit_del(be, keys[i], &e1)) {
			if (!*failed)
				*eb = e1;
			(*failed)++;
		}
	}
	return MFS_OK;
}

/* ---- folders ---- */

enum mfs_err imagekit_mkdir(struct backend *be, const char *dir,
			     const struct put_meta *meta, struct errbuf *eb)
{
	struct ik *ik = be->priv;
	const char *name;
	char *parent = imagekit_parent(ik, dir, &name), *pp = NULL;
	enum mfs_err rc;

	(void)meta;
	if (parent)
		pp = str_fmt("%s%s", parent, strcmp(parent, "/") ? "/" : "");
	rc = pp ? imagekit_api2(be, "POST", "/v1/folder", dir, "folderName", name,
		       "parentFolderPath", pp, 0, NULL, eb)
		: MFS_ENOMEM;
	free(parent);
	free(pp);
	return rc;
}

static enum mfs_err count_one(void *ud, const char *name,
			      const struct obj_meta *m)
{
	(void)name;
	(void)m;
	(*(int *)ud)++;
	return MFS_EEXIST;	/* one is enough: stop */
}

enum mfs_err imagekit_rmdir(struct backend *be, const char *dir,
			     struct errbuf *eb)
{
	struct ik *ik = be->priv;
	char *p = imagekit_path(ik, dir), *fp = NULL;
	enum mfs_err rc;
	int children = 0;

	/* the API deletes recursively: look first */
	rc = imagekit_list_all(be, dir, 1, count_one, &children, eb);
	if (rc == MFS_EEXIST)
		rc = MFS_OK;
	if (!rc && children)
		rc = eb_set(eb, MFS_ENOTEMPTY,
			    "%s: not empty on ImageKit (the folder holds files this mount has not listed)",
			    dir);
	if (!rc) {
		fp = p ? str_fmt("%s/", p) : NULL;
		rc = fp ? imagekit_api2(be, "DELETE", "/v1/folder", dir, "folderPath", fp,
			       NULL, NULL, 0, NULL, eb)
			: MFS_ENOMEM;
		if (rc == MFS_ENOTFOUND)
			rc = MFS_OK;
	}
	free(p);
	free(fp);
	return rc;
}

enum mfs_err imagekit_move_dir(struct backend *be, const char *src,
				const char *dst, struct errbuf *eb)
{
	struct obj_meta m;
	enum mfs_err rc = imagekit_find(be, src, 1, &m, eb);

	if (rc == MFS_ENOTFOUND || (!rc && m.kind != OBJ_DIR))
		return MFS_OK;	/* never stored (its marker is still queued) */
	return rc ? rc : relocate(be, src, dst, 1, eb);
}
