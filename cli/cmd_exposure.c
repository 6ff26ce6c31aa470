/* cmd_exposure.c - akctl exposure: where a stored key is live in plaintext right now.
 *
 * Sources: the environment of every process of ours (/proc/PID/environ; processes that made themselves
 * non-dumpable, such as the agent and akctl, are root's in /proc and unreadable, so they are passed
 * over), tmux's global environment (when a server runs), the systemd user manager's environment, and
 * the --history and --agents sources of akctl scan. A finding names the place, the variable and the
 * profile, never the value; exit 1 when anything is found.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "scan.h"

#define EXPO_MAX (16u << 20)   /* bytes read from one environment or one command */
#define EXPO_WAIT_MS 5000      /* a command that says nothing for this long is given up */

struct expo {
	struct scan_ctx *x;
	const char *kind;        /* "process", "tmux", "systemd" */
	long pid;                /* process only */
	const char *comm;
	const uint8_t *buf;
	size_t len;
	char sep;                /* between variables: NUL (environ) or '\n' (command output) */
	size_t last_end;         /* one finding per variable */
};

static void
report(struct expo *e, const char *var, const struct ak_scan_hit *h)
{
	struct scan_ctx *x = e->x;
	const char *label = h->secret < x->names.n && x->names.label[h->secret] ? x->names.label[h->secret] : "?";
	const char *profiles = h->secret < x->names.n && x->names.profiles[h->secret] ? x->names.profiles[h->secret] : "";
	char fp[13], v[256], comm[64], where[128];

	ak_scan_secret_fingerprint(x->m, h->secret, fp);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL)
			return;
		cJSON_AddStringToObject(o, "source", e->kind);
		if (e->pid > 0) {
			cJSON_AddNumberToObject(o, "pid", (double)e->pid);
			cJSON_AddStringToObject(o, "command", e->comm);
		}
		cJSON_AddStringToObject(o, "variable", var);
		cJSON_AddStringToObject(o, "key", label);
		cJSON_AddStringToObject(o, "profiles", profiles);
		cJSON_AddStringToObject(o, "variant", ak_scan_variant_name(h->variant));
		cJSON_AddStringToObject(o, "fingerprint", fp);
		(void)cli_json_print(o);
		cJSON_Delete(o);
		return;
	}
	cli_sanitize(var, v, sizeof(v));
	if (e->pid > 0) {
		cli_sanitize(e->comm, comm, sizeof(comm));
		snprintf(where, sizeof(where), "process %ld (%s)", e->pid, comm);
	} else {
		snprintf(where, sizeof(where), "%s", strcmp(e->kind, "tmux") == 0 ? "tmux global environment" :
		    "systemd user manager");
	}
	printf("%s: %s: %s (%s%s) fp:%s\n", where, v, label, ak_scan_variant_name(h->variant),
	    h->wrapped ? ", wrapped" : "", fp);
}

static int
on_hit(void *arg, const struct ak_scan_hit *h)
{
	struct expo *e = arg;
	size_t s = h->start, n;
	char var[256];

	if (h->start < e->last_end)
		return 0;
	while (s > 0 && e->buf[s - 1] != (uint8_t)e->sep)
		s--;
	for (n = 0; s + n < e->len && e->buf[s + n] != '=' && e->buf[s + n] != (uint8_t)e->sep &&
	    n < sizeof(var) - 1; n++)
		var[n] = (char)e->buf[s + n];
	var[n] = '\0';
	/* The rest of this variable is the same finding. */
	for (e->last_end = h->end; e->last_end < e->len && e->buf[e->last_end] != (uint8_t)e->sep; e->last_end++)
		;
	e->x->found++;
	report(e, var, h);
	return 0;
}

static void
scan_vars(struct expo *e, const uint8_t *buf, size_t len)
{
	e->buf = buf;
	e->len = len;
	e->last_end = 0;
	ak_scan_buf(e->x->m, buf, len, on_hit, e);
}

/* All of fd into a new buffer (at most EXPO_MAX bytes), *len its size; NULL on failure. */
static uint8_t *
read_all(int fd, size_t *len, int timeout_ms)
{
	uint8_t *b = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t k;

	for (;;) {
		if (timeout_ms >= 0) {
			struct pollfd p = { fd, POLLIN, 0 };

			if (poll(&p, 1, timeout_ms) <= 0)
				break;
		}
		if (n == cap) {
			if (cap >= EXPO_MAX)
				break;
			cap = cap ? cap * 2 : 65536;
			if ((nb = malloc(cap)) == NULL)
				break;
			if (b != NULL) {
				memcpy(nb, b, n);
				sodium_memzero(b, n);
				free(b);
			}
			b = nb;
		}
		k = read(fd, b + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	*len = n;
	return b;
}

static void
wipe_free(uint8_t *b, size_t n)
{
	if (b != NULL) {
		sodium_memzero(b, n);
		free(b);
	}
}

static void
scan_processes(struct scan_ctx *x)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	uid_t me = getuid();
	pid_t self = getpid();

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[64], comm[64] = "?", *end;
		struct stat sb;
		long pid = strtol(de->d_name, &end, 10);
		uint8_t *b;
		size_t n = 0;
		int fd;

		if (*end != '\0' || pid <= 0 || pid == (long)self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld", pid);
		if (stat(path, &sb) != 0 || sb.st_uid != me)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		b = read_all(fd, &n, -1);
		close(fd);
		if (b == NULL)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			ssize_t k = read(fd, comm, sizeof(comm) - 1);

			comm[k > 0 ? k : 0] = '\0';
			comm[strcspn(comm, "\n")] = '\0';
			close(fd);
		}
		{
			struct expo e = { x, "process", pid, comm, NULL, 0, '\0', 0 };

			scan_vars(&e, b, n);
		}
		wipe_free(b, n);
	}
	closedir(d);
}

/* Run argv (stdin and stderr /dev/null) and scan what it prints as NAME=VALUE lines. Absent programs
 * and failures (no tmux server, no user manager) are silent: nothing runs there to hold a key. */
static void
scan_command(struct scan_ctx *x, const char *kind, char *const argv[])
{
	int p[2], st, fd;
	pid_t pid;
	uint8_t *b;
	size_t n = 0;

	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 2);
		}
		dup2(p[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	b = read_all(p[0], &n, EXPO_WAIT_MS);
	close(p[0]);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (b != NULL) {
		struct expo e = { x, kind, 0, NULL, NULL, 0, '\n', 0 };

		scan_vars(&e, b, n);
	}
	wipe_free(b, n);
}

enum ak_err
cmd_exposure(struct cli *c, int argc, char **argv)
{
	static char *const tmux[] = { "tmux", "show-environment", "-g", NULL };
	static char *const systemd[] = { "systemctl", "--user", "show-environment", NULL };
	struct scan_ctx x;
	int history = 1, agents = 1, helped;
	enum ak_err rc;
	const struct ak_opt opts[] = {
		CLI_FLAG("json", &x.json, 1),
		CLI_FLAG("no-history", &history, 0),
		CLI_FLAG("no-agents", &agents, 0),
		CLI_OPT_END,
	};

	memset(&x, 0, sizeof(x));
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (optind < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if ((rc = scan_load(c, 0, &x.m, &x.names)) != 0)
		return rc;
	if (scan_ctx_buffer(&x) != 0) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	/* Flush before each child starts, so nothing buffered is written twice. */
	fflush(stdout);
	scan_processes(&x);
	fflush(stdout);
	scan_command(&x, "tmux", tmux);
	fflush(stdout);
	scan_command(&x, "systemd", systemd);
	if (history)
		scan_history(&x);
	if (agents)
		scan_agents(&x);
	rc = AK_OK;
	if (x.found > 0) {
		if (!x.json)
			fprintf(stderr, "akctl: exposure: %zu place%s holding a stored key\n", x.found,
			    x.found == 1 ? "" : "s");
		rc = cli_status(c, 1); /* found: a finding, not an error */
	}
out:
	scan_ctx_finish(&x);
	return rc;
}
