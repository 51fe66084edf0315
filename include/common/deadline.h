/* deadline.h - a per-thread time limit for one operation. Owns: one
 * thread-local deadline. Calls: libc only. Thread-safe (each thread sees
 * its own). The FUSE adapter sets it when a request starts; the HTTP layer
 * shortens its timeouts and backoff sleeps to what is left, refuses to
 * start an exchange once it has passed, and moves it on after each
 * successful answer (deadline_progress). So an operation that talks to a
 * server which never answers (or only fails) ends within the limit,
 * retries included, while a long one that makes progress (a directory
 * rename copying 500 objects) is not cut. Threads that never set one
 * (upload workers) have no limit.
 * Beside the limit, an operation may carry its caller's interrupt flag
 * (deadline_watch): the FUSE adapter passes one in for calls a killed or
 * signalled process may give up on (lookup, getattr, opendir); the HTTP
 * layer stops an exchange, a backoff sleep or the next page once it is
 * set, and the operation ends with MFS_EINTR.
 */
#ifndef MFS_COMMON_DEADLINE_H
#define MFS_COMMON_DEADLINE_H

#include <stdatomic.h>

/* Start a limit of limit_ms from now for this thread's current operation;
 * limit_ms <= 0 clears it. Both forget the interrupt flag (deadline_watch).
 */
void deadline_start(long limit_ms);
void deadline_clear(void);
/* A successful answer arrived: the limit counts again from now. */
void deadline_progress(void);

/* Milliseconds left: -1 when there is no limit, 0 when it has passed. */
long deadline_left_ms(void);

/* The limit this thread's deadline was started with (ms), 0 = none. */
long deadline_limit_ms(void);

/* Watch flag (borrowed: it must outlive the watch; NULL = none) for this
 * thread's current operation: once another thread sets it non-zero,
 * deadline_interrupted() says so. The setter owns the flag's lifetime and
 * calls deadline_watch(NULL) before it goes. */
void deadline_watch(const atomic_int *flag);
/* The flag this thread watches (NULL = none): for threads that work for
 * the operation (its parts) to watch it too. */
const atomic_int *deadline_watching(void);
/* Has the current operation's caller been interrupted? 1 or 0. */
int deadline_interrupted(void);

#endif
