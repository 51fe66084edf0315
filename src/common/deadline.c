/* deadline.c - per-thread operation time limits (see deadline.h).
 * Calls: libc. State: thread-local only. */
#include "common/deadline.h"

#include <stdint.h>
#include <time.h>

static __thread int64_t until_ms;	/* CLOCK_MONOTONIC ms, 0 = none */
static __thread long limit;		/* ms */
static __thread const atomic_int *intr;	/* the caller's flag, or NULL */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void deadline_start(long limit_ms)
{
	if (limit_ms <= 0) {
		deadline_clear();
		return;
	}
	intr = NULL;
	limit = limit_ms;
	until_ms = mono_ms() + limit_ms;
}

void deadline_clear(void)
{
	until_ms = 0;
	limit = 0;
	intr = NULL;
}

void deadline_progress(void)
{
	if (until_ms)
		until_ms = mono_ms() + limit;
}

long deadline_left_ms(void)
{
	int64_t left;

	if (!until_ms)
		return -1;
	left = until_ms - mono_ms();
	return left > 0 ? (long)left : 0;
}

long deadline_limit_ms(void)
{
	return until_ms ? limit : 0;
}

void deadline_watch(const atomic_int *flag)
{
	intr = flag;
}

const atomic_int *deadline_watching(void)
{
	return intr;
}

int deadline_interrupted(void)
{
	return intr && atomic_load(intr) != 0;
}
