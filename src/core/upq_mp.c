/* upq_mp.c - multipart uploads for the upload queue: parts in parallel,
 * the journal's record of uploads started on the server (and of starts
 * whose reply may never have come), and hashing (of file ranges, and
 * incremental: struct upq_hasher).
 * Calls: backend, meta/journal, common. Locking: struct mp's lock guards
 * its marked fields; nothing of the queue's is touched.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/str.h"
#include "meta/journal.h"
#include "upq_int.h"

/* Hex SHA-256 and (md5 non-NULL) hex MD5 of len bytes of fd at off, in
 * one pass; written only on success. */
enum mfs_err upqi_hash_range(int fd, uint64_t off, uint64_t len,
			     char hex[65], char md5[33])
{
	static const size_t bufsz = 1 << 20;
	unsigned char md[32], mmd[16];
	unsigned int mdlen = 32, mlen = 16;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *mctx = EVP_MD_CTX_new();
	char *buf = malloc(bufsz);
	enum mfs_err rc = MFS_OK;

	if (!ctx || !mctx || !buf ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(mctx, EVP_md5(), NULL)) {
		rc = MFS_ENOMEM;
		goto out;
	}
	while (len) {
		size_t want = len < bufsz ? (size_t)len : bufsz;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n <= 0) {
			rc = MFS_EIO;
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (md5)
			EVP_DigestUpdate(mctx, buf, (size_t)n);
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	str_hex(md, 32, hex);
	if (md5) {
		EVP_DigestFinal_ex(mctx, mmd, &mlen);
		str_hex(mmd, 16, md5);
	}
out:
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(mctx);
	free(buf);
	return rc;
}

struct upq_hasher {
	EVP_MD_CTX *sha, *md5;
	uint64_t size;
};

struct upq_hasher *upq_hasher_new(void)
{
	struct upq_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->sha = EVP_MD_CTX_new();
	h->md5 = EVP_MD_CTX_new();
	if (!h->sha || !h->md5 ||
	    !EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(h->md5, EVP_md5(), NULL)) {
		upq_hasher_free(h);
		return NULL;
	}
	return h;
}

void upq_hasher_free(struct upq_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->sha);
	EVP_MD_CTX_free(h->md5);
	free(h);
}

int upq_hasher_add(struct upq_hasher *h, const void *p, size_t n)
{
	if (!EVP_DigestUpdate(h->sha, p, n) || !EVP_DigestUpdate(h->md5, p, n))
		return -1;
	h->size += n;
	return 0;
}

uint64_t upq_hasher_size(const struct upq_hasher *h)
{
	return h->size;
}

int upq_hasher_digest(const struct upq_hasher *h, struct upq_digest *out)
{
	unsigned char md[32], mmd[16];
	unsigned int mdlen = 32, mlen = 16;
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *m = EVP_MD_CTX_new();
	int ok = s && m && EVP_MD_CTX_copy_ex(s, h->sha) &&
		 EVP_MD_CTX_copy_ex(m, h->md5) &&
		 EVP_DigestFinal_ex(s, md, &mdlen) &&
		 EVP_DigestFinal_ex(m, mmd, &mlen);

	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(m);
	if (!ok)
		return -1;
	out->size = h->size;
	str_hex(md, 32, out->sha256);
	str_hex(mmd, 16, out->md5);
	return 0;
}

struct mp {
	struct backend *be;
	const char *key;
	const char *upload_id;
	int fd;
	uint64_t size;
	uint64_t part_size;
	int nparts;
	char (*etags)[80];
	pthread_mutex_t lock;
	int next;		/* guarded by lock */
	enum mfs_err rc;	/* guarded by lock: first error */
	struct errbuf eb;	/* guarded by lock */
	const atomic_int *stop;	/* the upload's (deadline_watch): set, the
				 * parts' requests stop */
};

static void *part_worker(void *arg)
{
	struct mp *m = arg;
	const atomic_int *was = deadline_watching();

	deadline_watch(m->stop);
	for (;;) {
		struct put_body body;
		struct errbuf eb = { 0 };
		char sha[65], md5[33];
		enum mfs_err rc;
		int p;

		pthread_mutex_lock(&m->lock);
		p = m->rc ? m->nparts : m->next++;
		pthread_mutex_unlock(&m->lock);
		if (p >= m->nparts)
			break;
		body.fd = m->fd;
		body.off = (uint64_t)p * m->part_size;
		body.len = m->size - body.off < m->part_size ?
			   m->size - body.off : m->part_size;
		rc = upqi_hash_range(m->fd, body.off, body.len, sha, md5);
		body.sha256 = sha;
		body.md5 = md5;
		if (!rc)
			rc = m->be->ops->mp_part(m->be, m->key, m->upload_id,
						 p + 1, &body, m->etags[p],
						 &eb);
		if (rc) {
			pthread_mutex_lock(&m->lock);
			if (!m->rc) {
				m->rc = rc;
				m->eb = eb;
			}
			pthread_mutex_unlock(&m->lock);
			break;
		}
	}
	deadline_watch(was);	/* (run by the upload's own thread too) */
	return NULL;
}

/* The multipart upload is recorded in the journal from mp_begin until it is
 * completed or aborted: a daemon killed in between leaves the row, and the
 * next mount aborts the upload (fs_resume_uploads) before sending the file
 * again. Before mp_begin an intent is recorded (JOURNAL_MP_INTENT + jid):
 * a start whose reply never came leaves an upload whose id nobody knows;
 * the intent goes once this upload settles, unless an earlier attempt of
 * the row left it (its start failed); a mount finding an intent lists the
 * key's uploads started since and aborts them (fs_resume_uploads). A
 * start that went unanswered while the daemon runs is settled the same way
 * at once (lost_start), so the intent stays only when that could not be
 * done. */
/* The backend's start of key (at start_s, our clock) went unanswered at
 * least once: abort the key's uploads started since, but keep (the one
 * this attempt uses, or NULL). 1 when settled. */
static int lost_start(struct backend *be, const char *key, time_t start_s,
		      const char *keep)
{
	struct errbuf eb = { 0 };
	int n = 0;
	enum mfs_err rc;

	rc = backend_mp_sweep(be, key,
			      ((int64_t)start_s - BACKEND_MP_CLOCK_SLACK_S) *
				      1000000000LL,
			      keep, &n, &eb);
	if (rc == MFS_EUNSUPP)
		return 1;	/* nothing to list: nothing to do */
	if (n)
		log_info("aborted %d multipart upload%s of %s whose start went unanswered",
			 n, n == 1 ? "" : "s", key);
	if (rc) {
		log_warn("cannot list the multipart uploads of %s a start that went unanswered may have left (the next mount tries again): %s",
			 key, eb.msg);
		return 0;
	}
	return 1;
}

enum mfs_err upqi_multipart(struct upq *q, struct backend *be,
			    const char *key, int fd, uint64_t size,
			    const struct put_meta *pm, int64_t jid,
			    struct obj_meta *out, struct errbuf *eb)
{
	struct mp m = { 0 };
	pthread_t th[16];
	char *upload_id = NULL;
	enum mfs_err rc;
	int i, nth = q->cfg.part_threads, started = 0, fresh = 0;
	int unanswered = 0;
	time_t t0;
	struct errbuf aeb = { 0 };
	char intent[48];

	m.part_size = backend_part_size(size);
	m.nparts = (int)((size + m.part_size - 1) / m.part_size);
	m.etags = calloc((size_t)m.nparts, 80);
	if (!m.etags)
		return MFS_ENOMEM;
	snprintf(intent, sizeof(intent), "%s%lld", JOURNAL_MP_INTENT,
		 (long long)jid);
	if (journal_mp_open(q->j, q->mount_id, be->name, key, intent, jid,
			    &fresh, &aeb))
		log_warn("%s", aeb.msg);
	t0 = time(NULL);
	rc = be->ops->mp_begin(be, key, pm, &upload_id, &unanswered, eb);
	/* an unanswered attempt may have started an upload nobody knows;
	 * also when the upload was stopped (its file deleted) meanwhile:
	 * the sweep is not stopped */
	if (unanswered) {
		const atomic_int *stop = deadline_watching();

		deadline_watch(NULL);
		if (!lost_start(be, key, t0, upload_id))
			fresh = 0;	/* the intent stays for the next mount */
		deadline_watch(stop);
	}
	if (rc) {
		if (fresh)
			journal_mp_close(q->j, be->name, intent, NULL);
		free(m.etags);
		return rc;	/* refused, or settled above */
	}
	eb_clear(&aeb);
	if (journal_mp_open(q->j, q->mount_id, be->name, key, upload_id, jid,
			    NULL, &aeb))
		log_warn("%s", aeb.msg);
	m.be = be;
	m.key = key;
	m.upload_id = upload_id;
	m.fd = fd;
	m.size = size;
	m.stop = deadline_watching();
	pthread_mutex_init(&m.lock, NULL);
	if (nth < 1)
		nth = 1;
	if (nth > 16)
		nth = 16;
	if (nth > m.nparts)
		nth = m.nparts;
	for (i = 0; i < nth; i++)
		if (!pthread_create(&th[i], NULL, part_worker, &m))
			started++;
	if (!started)
		part_worker(&m);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	rc = m.rc;
	if (rc)
		*eb = m.eb;
	else
		rc = be->ops->mp_complete(be, key, upload_id, m.etags,
					  m.nparts, out, eb);
	if (rc) {
		/* parts are billed until aborted; also when the upload was
		 * stopped (its file deleted): the abort is not stopped */
		enum mfs_err arc;

		eb_clear(&aeb);
		deadline_watch(NULL);
		arc = be->ops->mp_abort(be, key, upload_id, &aeb);
		deadline_watch(m.stop);
		if (arc)
			log_warn("could not abort multipart upload of %s (the next mount tries again): %s",
				 key, aeb.msg);
		else
			journal_mp_close(q->j, be->name, upload_id, NULL);
	} else {
		journal_mp_close(q->j, be->name, upload_id, NULL);
		if (out)
			out->size = size;
	}
	/* an intent an earlier attempt of this row left (its start may have
	 * been lost) stays for the next mount, which lists the key's uploads
	 * since then */
	if (fresh)
		journal_mp_close(q->j, be->name, intent, NULL);
	log_dbg(LOG_SUB_UPQ, "multipart %s: %d parts of %llu bytes: %s", key,
		m.nparts, (unsigned long long)m.part_size, mfs_strerror(rc));
	pthread_mutex_destroy(&m.lock);
	free(m.etags);
	free(upload_id);
	return rc;
}

