/* keylock.c - names held by threads (see keylock.h). Calls: libc,
 * pthreads. kl->lock guards the held array and the wait count; takers
 * sleep on kl->cond and every release wakes them all (few names are held
 * at once: a linear scan is cheaper than a hash). */
#include "common/keylock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct keylock {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char **held;		/* guarded by lock: the names held */
	size_t n, cap;		/* guarded by lock */
	unsigned long waits;	/* guarded by lock */
};

struct keylock *keylock_new(void)
{
	struct keylock *kl = calloc(1, sizeof(*kl));

	if (!kl)
		return NULL;
	pthread_mutex_init(&kl->lock, NULL);
	pthread_cond_init(&kl->cond, NULL);
	return kl;
}

void keylock_free(struct keylock *kl)
{
	size_t i;

	if (!kl)
		return;
	for (i = 0; i < kl->n; i++)
		free(kl->held[i]);
	free(kl->held);
	pthread_cond_destroy(&kl->cond);
	pthread_mutex_destroy(&kl->lock);
	free(kl);
}

static int is_held(const struct keylock *kl, const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < kl->n; i++)
		if (!strcmp(kl->held[i], name))
			return 1;
	return 0;
}

int keylock_acquire(struct keylock *kl, const char *a, const char *b)
{
	char *ca = strdup(a), *cb = NULL;
	int waited = 0;

	if (b && strcmp(a, b))
		cb = strdup(b);
	if (!ca || (b && strcmp(a, b) && !cb)) {
		free(ca);
		free(cb);
		return -1;
	}
	pthread_mutex_lock(&kl->lock);
	if (kl->n + 2 > kl->cap) {
		size_t ncap = kl->cap ? kl->cap * 2 : 16;
		char **p = realloc(kl->held, ncap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&kl->lock);
			free(ca);
			free(cb);
			return -1;
		}
		kl->held = p;
		kl->cap = ncap;
	}
	while (is_held(kl, ca) || is_held(kl, cb)) {
		if (!waited++)
			kl->waits++;
		pthread_cond_wait(&kl->cond, &kl->lock);
	}
	kl->held[kl->n++] = ca;
	if (cb)
		kl->held[kl->n++] = cb;
	pthread_mutex_unlock(&kl->lock);
	return waited ? 1 : 0;
}

static void drop(struct keylock *kl, const char *name)
{
	size_t i;

	for (i = 0; i < kl->n; i++) {
		if (!strcmp(kl->held[i], name)) {
			free(kl->held[i]);
			kl->held[i] = kl->held[--kl->n];
			return;
		}
	}
}

void keylock_release(struct keylock *kl, const char *a, const char *b)
{
	pthread_mutex_lock(&kl->lock);
	drop(kl, a);
	if (b && strcmp(a, b))
		drop(kl, b);
	pthread_cond_broadcast(&kl->cond);
	pthread_mutex_unlock(&kl->lock);
}

unsigned long keylock_waits(struct keylock *kl)
{
	unsigned long w;

	pthread_mutex_lock(&kl->lock);
	w = kl->waits;
	pthread_mutex_unlock(&kl->lock);
	return w;
}
