/* log.c - one-line diagnostics on stderr ("prog: message"), or syslog once daemonised.
 * Callers never pass secrets here; this module does not try to detect them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "ak_log.h"

#define LOG_LINE_MAX 1024

static char log_prog[64] = "akagent";
static enum ak_log_level log_level = AK_LOG_WARN;
static int log_syslog;

void
ak_log_init(const char *prog, enum ak_log_level level)
{
	if (prog != NULL) {
		const char *slash = strrchr(prog, '/'), *base = slash != NULL ? slash + 1 : prog;
		size_t n = strnlen(base, sizeof(log_prog) - 1);

		/* Not snprintf: this runs at every akctl start, and printf's code and tables are pages that
		 * nothing else on akctl get's path touches (each one a page fault). */
		memcpy(log_prog, base, n);
		log_prog[n] = '\0';
	}
	log_level = level;
}

void
ak_log_use_syslog(int on)
{
	if (on && !log_syslog)
		openlog(log_prog, LOG_PID, LOG_DAEMON);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on != 0;
}

static int
syslog_priority(enum ak_log_level level)
{
	switch (level) {
	case AK_LOG_ERROR: return LOG_ERR;
	case AK_LOG_WARN: return LOG_WARNING;
	case AK_LOG_INFO: return LOG_INFO;
	case AK_LOG_DEBUG: return LOG_DEBUG;
	}
	return LOG_NOTICE;
}

void
ak_log(enum ak_log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + sizeof(log_prog) + 3];
	va_list ap;
	size_t i;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* One line per call: a newline or control byte in an argument must not forge another entry. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = (msg[i] == '\n' && msg[i + 1] == '\0') ? '\0' : '?';
	if (log_syslog) {
		syslog(syslog_priority(level), "%s", msg);
		return;
	}
	/* A single write so lines from several processes do not interleave. */
	n = snprintf(line, sizeof(line), "%s: %s\n", log_prog, msg);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

		if (write(STDERR_FILENO, line, len) < 0)
			return; /* nowhere left to report it */
	}
}
