/* scripted.h - a scripted HTTP server on 127.0.0.1 for backend unit
 * tests (included by one test file each): every reply is written by the
 * test, so malformed, truncated and hostile answers can be played exactly;
 * the request heads are kept for inspection and counting. */
#ifndef MFS_TESTS_SCRIPTED_H
#define MFS_TESTS_SCRIPTED_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"

#define MAX_REPLIES 16
#define CLOSE_MID -1	/* send half of the reply, then close */
#define CLOSE_NOW -2	/* read the request, close without a word */

struct reply {
	const char *raw;	/* full HTTP response; NULL ends the script */
	int mode;		/* 0, or CLOSE_MID */
};

static struct {
	int fd;
	int port;
	pthread_mutex_t lock;
	struct reply script[MAX_REPLIES];	/* guarded by lock */
	int next;				/* guarded by lock */
	char reqs[MAX_REPLIES][2048];		/* request heads seen */
	int nreq;				/* guarded by lock */
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The server keeps its own copies of the replies, so a connection thread
 * never reads a buffer the test has freed. */
static void play(const struct reply *r)
{
	int i;

	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < MAX_REPLIES; i++)
		free((char *)srv.script[i].raw);
	memset(srv.script, 0, sizeof(srv.script));
	for (i = 0; r[i].raw && i < MAX_REPLIES - 1; i++) {
		srv.script[i] = r[i];
		srv.script[i].raw = strdup(r[i].raw);
	}
	srv.next = 0;
	srv.nreq = 0;
	pthread_mutex_unlock(&srv.lock);
}

static int requests(void)
{
	int n;

	pthread_mutex_lock(&srv.lock);
	n = srv.nreq;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static void *serve_conn(void *arg)
{
	int c = (int)(intptr_t)arg;
	char head[8192];

	for (;;) {
		size_t n = 0;
		struct reply r;

		while (n < sizeof(head) - 1) {
			ssize_t k = read(c, head + n, 1);

			if (k <= 0)
				goto done;
			n++;
			head[n] = '\0';
			if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4))
				break;
		}
		char *copy;
		const char *cl = strcasestr(head, "\r\nContent-Length:");

		if (cl) {	/* the request body, kept after the head */
			long left = strtol(cl + 17, NULL, 10);

			while (left > 0) {
				char sink[4096];
				ssize_t k = read(c, sink, left < (long)sizeof(sink)
						 ? (size_t)left : sizeof(sink));

				if (k <= 0)
					goto done;
				if (n + (size_t)k < sizeof(head) - 1) {
					memcpy(head + n, sink, (size_t)k);
					n += (size_t)k;
					head[n] = '\0';
				}
				left -= k;
			}
		}
		pthread_mutex_lock(&srv.lock);
		if (srv.nreq < MAX_REPLIES) {
			size_t k = n < sizeof(srv.reqs[0]) - 1 ? n :
				   sizeof(srv.reqs[0]) - 1;

			memcpy(srv.reqs[srv.nreq], head, k);
			srv.reqs[srv.nreq++][k] = '\0';
		}
		r = srv.script[srv.next];
		if (r.raw)
			srv.next++;
		copy = strdup(r.raw ? r.raw :
			      "HTTP/1.1 500 Internal Server Error\r\n"
			      "Content-Length: 0\r\n\r\n");
		pthread_mutex_unlock(&srv.lock);
		if (!copy)
			break;
		if (r.mode == CLOSE_NOW) {
			free(copy);
			break;
		}
		if (r.mode == CLOSE_MID) {
			if (write(c, copy, strlen(copy) / 2) < 0)
				perror("write");
			free(copy);
			break;
		}
		if (write(c, copy, strlen(copy)) < 0) {
			free(copy);
			break;
		}
		free(copy);
	}
done:
	close(c);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(srv.fd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			continue;
		if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c))
			close(c);
		else
			pthread_detach(t);
	}
	return NULL;
}

static void start_server(void)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	pthread_t t;
	int one = 1;

	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(srv.fd, (struct sockaddr *)&a, sizeof(a));
	listen(srv.fd, 16);
	getsockname(srv.fd, (struct sockaddr *)&a, &len);
	srv.port = ntohs(a.sin_port);
	pthread_create(&t, NULL, acceptor, NULL);
	pthread_detach(t);
}

/* An HTTP reply with a body and the right Content-Length. */
static char *resp(int status, const char *extra, const char *body)
{
	char *s = NULL;

	if (asprintf(&s, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n%s",
		     status, strlen(body), extra ? extra : "", body) < 0)
		return NULL;
	return s;
}


/* A listing callback that writes "d:name:0|f:name:size|..." into buf. */
struct names {
	char buf[4096];
	int n;
};

static enum mfs_err collect(void *ud, const char *name,
			    const struct obj_meta *m)
{
	struct names *nm = ud;
	size_t l = strlen(nm->buf);

	snprintf(nm->buf + l, sizeof(nm->buf) - l, "%s%s%s:%llu",
		 nm->n ? "|" : "", m->kind == OBJ_DIR ? "d:" : "f:", name,
		 (unsigned long long)m->size);
	nm->n++;
	return MFS_OK;
}

#endif
