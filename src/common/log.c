/* log.c - log sink, subsystems and secret redaction.
 * A mutex (lock) guards secrets[], the sink choice and output order. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define MAX_SECRETS 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];	/* guarded by lock */
static int nsecrets;			/* guarded by lock */
static int use_syslog;			/* guarded by lock */
static unsigned debug_mask;
static enum log_level max_level = LOG_LVL_INFO;

static const struct {
	const char *name;
	unsigned bit;
} subs[] = {
	{ "http", LOG_SUB_HTTP }, { "cache", LOG_SUB_CACHE },
	{ "fuse", LOG_SUB_FUSE }, { "upq", LOG_SUB_UPQ },
	{ "all", LOG_SUB_ALL },
};

int log_parse_subsystems(const char *list, unsigned *mask)
{
	const char *p = list;

	*mask = 0;
	while (*p) {
		/* '+' inside a mount's -o (where ',' starts the next
		 * option), ',' elsewhere */
		size_t n = strcspn(p, ",+");
		size_t i;

		for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
			if (strlen(subs[i].name) == n &&
			    !strncmp(subs[i].name, p, n))
				break;
		if (i == sizeof(subs) / sizeof(subs[0]))
			return -1;
		*mask |= subs[i].bit;
		p += n;
		if (*p == ',' || *p == '+')
			p++;
	}
	return 0;
}

void log_set_debug(unsigned mask)
{
	debug_mask = mask;
	if (mask)
		max_level = LOG_LVL_DEBUG;
}

int log_debug_enabled(enum log_sub sub)
{
	return (debug_mask & sub) != 0;
}

void log_set_level(enum log_level lvl)
{
	max_level = lvl;
}

void log_use_syslog(const char *ident)
{
	pthread_mutex_lock(&lock);
	openlog(ident, LOG_PID, LOG_DAEMON);
	use_syslog = 1;
	pthread_mutex_unlock(&lock);
}

void log_add_secret(const char *secret)
{
	int i;

	if (!secret || strlen(secret) < 4)
		return;
	pthread_mutex_lock(&lock);
	for (i = 0; i < nsecrets; i++)
		if (!strcmp(secrets[i], secret))
			break;
	if (i == nsecrets && nsecrets < MAX_SECRETS) {
		secrets[nsecrets] = strdup(secret);
		if (secrets[nsecrets])
			nsecrets++;
	}
	pthread_mutex_unlock(&lock);
}

/* Caller holds lock. */
static void redact_locked(char *s)
{
	int i;

	for (i = 0; i < nsecrets; i++) {
		size_t n = strlen(secrets[i]);
		char *hit;

		/* Secrets are >= 4 bytes, so each replacement shrinks s
		 * and the loop ends. */
		while ((hit = strstr(s, secrets[i]))) {
			memcpy(hit, "***", 3);
			memmove(hit + 3, hit + n, strlen(hit + n) + 1);
		}
	}
}

void log_redact(char *s)
{
	pthread_mutex_lock(&lock);
	redact_locked(s);
	pthread_mutex_unlock(&lock);
}

static void emit(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *const tag[] = { "error", "warning", "info",
					   "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
				    LOG_DEBUG };
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&lock);
	redact_locked(line);
	if (use_syslog) {
		syslog(prio[lvl], "%s", line);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "mediafs %02d:%02d:%02d.%03ld %s: %s\n",
			tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			tag[lvl], line);
	}
	pthread_mutex_unlock(&lock);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	emit(lvl, fmt, ap);
	va_end(ap);
}

void log_dbg(enum log_sub sub, const char *fmt, ...)
{
	va_list ap;

	if (!(debug_mask & sub))
		return;
	va_start(ap, fmt);
	emit(LOG_LVL_DEBUG, fmt, ap);
	va_end(ap);
}
