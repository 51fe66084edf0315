/* keylock.h - a set of names held by threads: who holds a name makes every
 * other taker of it wait. Owns: the held names. Calls: libc, pthreads.
 * Thread-safe (one mutex and one condition variable per set). Used where a
 * server must never see two requests about one key at once (Supabase:
 * two moves of one key can answer 500 and leave an orphan, API-NOTES F19).
 */
#ifndef MFS_COMMON_KEYLOCK_H
#define MFS_COMMON_KEYLOCK_H

struct keylock;

/* A new, empty set; NULL when out of memory. */
struct keylock *keylock_new(void);
/* Frees the set (NULL: no-op). No name may be held. */
void keylock_free(struct keylock *kl);

/* Hold names a and b (b may be NULL or equal to a) together: waits until
 * no other thread holds either, then takes both at once, so two takers of
 * overlapping pairs never deadlock. The names are copied. Returns 0 when
 * both were free, 1 when it had to wait, -1 when out of memory (nothing
 * held). */
int keylock_acquire(struct keylock *kl, const char *a, const char *b);
/* Give back what keylock_acquire(kl, a, b) took, and wake the waiters. */
void keylock_release(struct keylock *kl, const char *a, const char *b);

/* Waits seen so far: takers that found a name held (for tests). */
unsigned long keylock_waits(struct keylock *kl);

#endif
