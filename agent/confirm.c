/* confirm.c - confirm-on-use: ask AKAGENT_ASKPASS before a profile's secret is handed out.
 *
 * The agent never waits for the askpass. A request that needs a confirmation starts the program
 * (posix_spawn: no copy of the agent's memory, and so of its secrets, is ever made) in its own process
 * group and parks its connection; the loop goes on serving everyone else. SIGCHLD (server.c's
 * self-pipe) reports the exit status here, and a deadline denies and kills a program that does not
 * answer. conn.c collects the verdict by id and re-runs the request with it (dispatch.c); a connection
 * that goes away, or a lock, cancels its entry, which kills the program.
 *
 * The prompt (argv[1], the ssh-askpass convention) names the profile and the requesting process: its
 * executable, pid and working directory. It never holds a secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_smem.h"
#include "ak_util.h"

extern char **environ;

#define CONFIRM_MAX 64 /* askpass programs running at once; more are denied */

struct pending {
	uint64_t id;           /* 0: free slot */
	pid_t pid;             /* the askpass, 0 once it exited (or never ran) */
	uint64_t deadline;     /* ms, monotonic */
	int decided;
	enum ak_err verdict;
	const char *detail;    /* static text, no secret */
};

static struct pending tab[CONFIRM_MAX];
static uint64_t next_id = 1;
static char *askpass;      /* AKAGENT_ASKPASS at start, or NULL */
static uint32_t timeout_s = AGENT_CONFIRM_TIMEOUT_S;

void
agent_confirm_init(const char *program, uint32_t secs)
{
	free(askpass);
	askpass = program != NULL && program[0] != '\0' ? strdup(program) : NULL;
	if (secs != 0)
		timeout_s = secs;
}

static struct pending *
find(uint64_t id)
{
	size_t i;

	if (id == 0)
		return NULL;
	for (i = 0; i < CONFIRM_MAX; i++)
		if (tab[i].id == id)
			return &tab[i];
	return NULL;
}

static void
decide(struct pending *p, enum ak_err v, const char *detail)
{
	if (p->decided)
		return;
	p->decided = 1;
	p->verdict = v;
	p->detail = detail;
	if (p->pid > 0)
		(void)kill(-p->pid, SIGKILL); /* its whole group: a script's children too */
}

/* Printable copy of s into out (controls as '?'): the prompt may be shown on a terminal. */
static void
clean(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	out[i] = '\0';
}

static int
spawn(struct pending *p, const char *prompt)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	char *argv[3];
	int r;

	argv[0] = askpass;
	argv[1] = (char *)prompt;
	argv[2] = NULL;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE); /* ignored by the agent, not by the program */
	sigaddset(&def, SIGCHLD);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	sigaddset(&def, SIGUSR1);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (posix_spawnattr_init(&at) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	/* stdin and stdout /dev/null: a confirmation is only an exit status. stderr stays the agent's. */
	r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (r == 0)
		r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
		    POSIX_SPAWN_SETSIGDEF);
	if (r == 0)
		r = posix_spawnattr_setpgroup(&at, 0);
	if (r == 0)
		r = posix_spawnattr_setsigmask(&at, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(&at, &def);
	if (r == 0) {
		/* Tell an ssh-askpass this is a yes/no question, not a passphrase prompt. */
		(void)setenv("SSH_ASKPASS_PROMPT", "confirm", 1);
		r = posix_spawn(&p->pid, askpass, &fa, &at, argv, environ);
		(void)unsetenv("SSH_ASKPASS_PROMPT");
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		p->pid = 0;
		errno = r;
		return -1;
	}
	return 0;
}

uint64_t
agent_confirm_start(const struct agent_peer *peer, const char *profile, int previous, uint64_t now)
{
	char link[64], cwd[1024], exe[1024], prompt[3200];
	struct pending *p = NULL;
	ssize_t n;
	size_t i;

	for (i = 0; i < CONFIRM_MAX; i++)
		if (tab[i].id == 0) {
			p = &tab[i];
			break;
		}
	if (p == NULL)
		return 0;
	memset(p, 0, sizeof(*p));
	p->id = next_id++;
	p->deadline = now + (uint64_t)timeout_s * 1000;
	if (askpass == NULL) {
		decide(p, AK_ERR_NOT_CONFIRMED, "AKAGENT_ASKPASS was not set when the agent started: nothing "
		    "can confirm the use of this profile");
		return p->id;
	}
	cwd[0] = '\0';
	if (peer != NULL) {
		snprintf(link, sizeof(link), "/proc/%ld/cwd", (long)peer->pid);
		if ((n = readlink(link, prompt, sizeof(prompt) - 1)) > 0) {
			prompt[n] = '\0';
			clean(cwd, sizeof(cwd), prompt);
		}
	}
	clean(exe, sizeof(exe), peer != NULL && peer->exe != NULL ? peer->exe : "");
	snprintf(prompt, sizeof(prompt),
	    "akagent: allow %s (pid %ld, in %s) to use the %ssecret of profile '%s'?",
	    exe[0] ? exe : "an unknown program", peer != NULL ? (long)peer->pid : 0L,
	    cwd[0] ? cwd : "an unknown directory", previous ? "previous " : "", profile);
	if (spawn(p, prompt) != 0) {
		ak_warn("AKAGENT_ASKPASS %s: %s", askpass, strerror(errno));
		decide(p, AK_ERR_NOT_CONFIRMED, "AKAGENT_ASKPASS could not be run by the agent");
	}
	sodium_memzero(prompt, sizeof(prompt)); /* it named the profile */
	return p->id;
}

void
agent_confirm_exited(pid_t pid, int status)
{
	size_t i;

	for (i = 0; i < CONFIRM_MAX; i++) {
		struct pending *p = &tab[i];

		if (p->id == 0 || p->pid != pid)
			continue;
		p->pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			decide(p, AK_OK, NULL);
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			decide(p, AK_ERR_NOT_CONFIRMED, "AKAGENT_ASKPASS could not be run by the agent");
		else
			decide(p, AK_ERR_NOT_CONFIRMED, NULL);
		return;
	}
}

uint64_t
agent_confirm_deadline(uint64_t id)
{
	struct pending *p = find(id);

	if (p == NULL)
		return 1; /* gone (locked): due now */
	return p->decided ? 1 : p->deadline;
}

int
agent_confirm_take(uint64_t id, uint64_t now, enum ak_err *v, const char **detail)
{
	struct pending *p = find(id);

	if (p == NULL) {
		*v = AK_ERR_NOT_CONFIRMED;
		*detail = "the agent was locked while asking";
		return 1;
	}
	if (!p->decided && now >= p->deadline) {
		ak_info("confirmation not answered in %us: denied", timeout_s);
		decide(p, AK_ERR_CONFIRM_TIMEOUT, NULL);
	}
	if (!p->decided)
		return 0;
	*v = p->verdict;
	*detail = p->detail;
	p->id = 0; /* a killed program's exit is reaped by the loop and matches nothing */
	return 1;
}

void
agent_confirm_cancel(uint64_t id)
{
	struct pending *p = find(id);

	if (p == NULL)
		return;
	decide(p, AK_ERR_NOT_CONFIRMED, NULL);
	p->id = 0;
}

void
agent_confirm_cancel_all(void)
{
	size_t i;

	for (i = 0; i < CONFIRM_MAX; i++)
		if (tab[i].id != 0) {
			decide(&tab[i], AK_ERR_NOT_CONFIRMED, NULL);
			tab[i].id = 0;
		}
}
