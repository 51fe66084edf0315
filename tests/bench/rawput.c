/* rawput - the S3 server's raw upload limit for the benchmark: one client,
 * N threads, keep-alive connections, one signed PUT per file (payload
 * SHA-256 computed, as mediafs does). Uses the project's S3 backend, so it
 * adds nothing but the requests themselves.
 *   rawput CONFIG REMOTE PREFIX THREADS < file-list   (lines "path\trelkey")
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backend/backend.h"
#include "common/ini.h"
#include "common/str.h"

struct job {
	char **path, **key;
	int n;
	pthread_mutex_t lock;
	int next, failed;
	struct backend *be;
	const char *prefix;
};

static void hash_fd(int fd, uint64_t len, const EVP_MD *type, char *hex)
{
	unsigned char md[32], buf[65536];
	unsigned int mdlen = 32;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint64_t off = 0;

	EVP_DigestInit_ex(c, type, NULL);
	while (off < len) {
		ssize_t r = pread(fd, buf, sizeof(buf), (off_t)off);

		if (r <= 0)
			break;
		EVP_DigestUpdate(c, buf, (size_t)r);
		off += (uint64_t)r;
	}
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	str_hex(md, mdlen, hex);
}

static void *worker(void *arg)
{
	struct job *j = arg;

	for (;;) {
		struct errbuf eb = { 0 };
		struct put_body body;
		struct put_meta pm = { 0 };
		struct stat st;
		char sha[65], md5[33], *key;
		int i, fd;

		pthread_mutex_lock(&j->lock);
		i = j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->n)
			break;
		fd = open(j->path[i], O_RDONLY);
		if (fd < 0 || fstat(fd, &st)) {
			j->failed++;
			continue;
		}
		hash_fd(fd, (uint64_t)st.st_size, EVP_sha256(), sha);
		hash_fd(fd, (uint64_t)st.st_size, EVP_md5(), md5);
		body.fd = fd;
		body.off = 0;
		body.len = (uint64_t)st.st_size;
		body.sha256 = sha;
		body.md5 = md5;
		key = str_fmt("%s%s", j->prefix, j->key[i]);
		if (j->be->ops->put(j->be, key, &body, &pm, NULL, &eb)) {
			fprintf(stderr, "rawput: %s: %s\n", key, eb.msg);
			j->failed++;
		}
		free(key);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	struct job j = { 0 };
	struct timespec t0, t1;
	pthread_t th[64];
	char line[8192];
	int i, nth;

	if (argc != 5)
		return 2;
	nth = atoi(argv[4]) > 64 ? 64 : atoi(argv[4]);
	if (ini_load(argv[1], &ini, &eb) ||
	    backend_create(ini, ini_section(ini, argv[2]), &j.be, &eb)) {
		fprintf(stderr, "rawput: %s\n", eb.msg);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char *tab = strchr(line, '\t');

		line[strcspn(line, "\n")] = '\0';
		if (!tab)
			continue;
		*tab = '\0';
		j.path = realloc(j.path, sizeof(char *) * (size_t)(j.n + 1));
		j.key = realloc(j.key, sizeof(char *) * (size_t)(j.n + 1));
		j.path[j.n] = strdup(line);
		j.key[j.n] = strdup(tab + 1);
		j.n++;
	}
	j.prefix = argv[3];
	pthread_mutex_init(&j.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, worker, &j);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return j.failed ? 1 : 0;
}
