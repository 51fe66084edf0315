/* log.h - logging with subsystems and secret redaction.
 * Owns: the log sink (stderr or syslog), enabled subsystems, the list of
 * registered secrets. Calls: libc, syslog. A mutex guards the secret list
 * and serialises output; logging is safe from any thread.
 */
#ifndef MFS_COMMON_LOG_H
#define MFS_COMMON_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Debug subsystems, enabled with -o debug=http,cache,fuse,upq */
enum log_sub {
	LOG_SUB_NONE = 0,
	LOG_SUB_HTTP = 1 << 0,
	LOG_SUB_CACHE = 1 << 1,
	LOG_SUB_FUSE = 1 << 2,
	LOG_SUB_UPQ = 1 << 3,
	LOG_SUB_ALL = 0xff,
};

/* Parse "http,cache" into a mask. Returns -1 on an unknown name. */
int log_parse_subsystems(const char *list, unsigned *mask);
void log_set_debug(unsigned mask);
int log_debug_enabled(enum log_sub sub);
void log_set_level(enum log_level lvl);
/* Send further output to syslog (when daemonised) instead of stderr. */
void log_use_syslog(const char *ident);

/* Register a secret: from now on, every occurrence in any log line is
 * replaced by "***". The string is copied. Short strings (< 4 bytes) are
 * ignored to avoid blanking common words. */
void log_add_secret(const char *secret);
/* Redact registered secrets from s in place (for messages leaving the
 * process some other way, e.g. error buffers shown to the user). */
void log_redact(char *s);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_dbg(enum log_sub sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)

#endif
