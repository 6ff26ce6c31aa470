/* kill.c - akagent -k: stop the agent named by AKAGENT_SOCK (SHUTDOWN) or AKAGENT_PID (SIGTERM, once
 * /proc says it is an akagent of this user), then print what takes its variables back out of the shell. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "agent.h"
#include "ak_client.h"
#include "ak_path.h"
#include "ak_restore.h"
#include "ak_shell.h"

/* The shell was switched with akctl use: put back what it replaced (the record is in the shell's
 * environment, AKCTL_RESTORE), since the profiles go with the agent. */
static int
print_restore(enum ak_shell sh)
{
	const char *enc = getenv(AK_RESTORE_VAR);
	struct ak_restore *r = NULL;
	struct ak_buf *b = NULL;
	int ret = -1;

	if (enc == NULL || enc[0] == '\0')
		return 0;
	if (ak_restore_decode(enc, 0, &r) != AK_OK) {
		fprintf(stderr, "akagent: %s is not a record of akctl use: left alone\n", AK_RESTORE_VAR);
		return 0;
	}
	/* Plain memory, wiped on free: no secure arena outside the daemon. */
	if ((b = ak_buf_new(16u << 20)) == NULL ||
	    ak_restore_lines(b, sh, r, NULL, NULL) != AK_OK ||
	    ak_shell_unset(b, sh, AK_RESTORE_VAR) != AK_OK)
		goto out;
	if (fwrite(ak_buf_ptr(b), 1, ak_buf_len(b), stdout) != ak_buf_len(b))
		goto out;
	ret = 0;
out:
	ak_buf_free(b);
	ak_restore_free(r);
	return ret;
}

/* Take back what the start-up printed: the restore record, then AKAGENT_SOCK and AKAGENT_PID. */
static int
print_unsets(enum ak_shell sh, long pid)
{
	struct ak_buf *b = NULL;
	char line[64];
	int ret = -1;

	if (print_restore(sh) != 0)
		return -1;
	snprintf(line, sizeof(line), "echo Agent pid %ld killed;\n", pid);
	if ((b = ak_buf_new(256)) == NULL || ak_shell_unset(b, sh, "AKAGENT_SOCK") != AK_OK ||
	    ak_shell_unset(b, sh, "AKAGENT_PID") != AK_OK || ak_buf_put(b, line, strlen(line)) != AK_OK)
		goto out;
	ret = agent_print(b);
out:
	ak_buf_free(b);
	return ret;
}

/* Is pid an akagent of ours? Our agent is not dumpable, so /proc/PID/exe is unreadable to us
 * (EACCES): then /proc/PID/comm must say "akagent". The real and effective uid must be ours. */
static int
pid_is_our_agent(long pid)
{
	char p[64], buf[AK_PATH_MAX], line[256];
	const char *base;
	ssize_t n;
	FILE *f;
	int ok = 0;

	snprintf(p, sizeof(p), "/proc/%ld/exe", pid);
	if ((n = readlink(p, buf, sizeof(buf) - 1)) >= 0) {
		buf[n] = '\0';
		if (n > 10 && strcmp(buf + n - 10, " (deleted)") == 0)
			buf[n - 10] = '\0';
		base = strrchr(buf, '/');
		base = base ? base + 1 : buf;
		if (strcmp(base, "akagent") != 0)
			return 0;
	} else {
		snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
		if ((f = fopen(p, "re")) == NULL)
			return 0;
		ok = fgets(buf, sizeof(buf), f) != NULL && strcmp(buf, "akagent\n") == 0;
		fclose(f);
		if (!ok)
			return 0;
		ok = 0;
	}
	snprintf(p, sizeof(p), "/proc/%ld/status", pid);
	if ((f = fopen(p, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long ruid, euid;

		if (sscanf(line, "Uid: %lu %lu", &ruid, &euid) == 2) {
			ok = ruid == (unsigned long)getuid() && euid == (unsigned long)getuid();
			break;
		}
	}
	fclose(f);
	return ok;
}

int
agent_kill(const struct agent_opts *o)
{
	struct ak_client *cl = NULL;
	char detail[AK_CLIENT_DETAIL_MAX];
	long pid = 0;
	int done = 0, ret = 1;
	const char *env;
	enum ak_err r;

	/* -a PATH, else $AKAGENT_SOCK, else the default socket (its directory verified first). */
	r = agent_probe(o->sock_opt, &pid, &cl, detail, sizeof(detail));
	if (r == AK_ERR_UNTRUSTED_AGENT) {
		fprintf(stderr, "akagent: %s (%s)\n", ak_strerror(r), detail);
		goto out;
	}
	if (r == AK_OK && ak_client_shutdown(cl) == AK_OK)
		done = 1;
	if (!done && (env = getenv("AKAGENT_PID")) != NULL && *env != '\0') {
		char *end;

		errno = 0;
		pid = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || pid <= 1) {
			fprintf(stderr, "akagent: AKAGENT_PID is not a process id\n");
			goto out;
		}
		if (!pid_is_our_agent(pid)) {
			fprintf(stderr, "akagent: process %ld is not an akagent of this user\n", pid);
			goto out;
		}
		if (kill((pid_t)pid, SIGTERM) != 0) {
			fprintf(stderr, "akagent: kill %ld: %s\n", pid, strerror(errno));
			goto out;
		}
		done = 1;
	}
	if (!done) {
		fprintf(stderr, "akagent: no agent to kill (AKAGENT_SOCK does not answer, AKAGENT_PID not set)\n");
		goto out;
	}
	ret = print_unsets(o->shell, pid) == 0 ? 0 : 1;
out:
	ak_client_close(cl);
	return ret;
}
