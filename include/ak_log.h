/* ak_log.h - logging for the agent (-d) and diagnostics. Never pass a secret to these. */
#ifndef AK_LOG_H
#define AK_LOG_H

enum ak_log_level { AK_LOG_ERROR = 0, AK_LOG_WARN = 1, AK_LOG_INFO = 2, AK_LOG_DEBUG = 3 };

/* Messages above level are dropped. Default AK_LOG_WARN to stderr. prog prefixes each line. */
void ak_log_init(const char *prog, enum ak_log_level level);
/* Once daemonised with no stderr: send lines to syslog instead (0 = stderr). */
void ak_log_use_syslog(int on);
void ak_log(enum ak_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ak_error(...) ak_log(AK_LOG_ERROR, __VA_ARGS__)
#define ak_warn(...) ak_log(AK_LOG_WARN, __VA_ARGS__)
#define ak_info(...) ak_log(AK_LOG_INFO, __VA_ARGS__)
#define ak_debug(...) ak_log(AK_LOG_DEBUG, __VA_ARGS__)

#endif
