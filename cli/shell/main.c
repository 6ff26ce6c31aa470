/* main.c - akctl-shell: the readline console (contract in shell.h).
 *
 * usage (from akctl only): akctl-shell --akctl PATH [-f KEYSTORE]
 * The prompt shows the agent's state and the active profile: "ak[production]> ", "ak[locked]> ",
 * "ak[no agent]> ", "ak> ". `use PROFILE` / `use --clear` switch the console's own AKCTL_PROFILE (the
 * commands it runs inherit it); `exit`/`quit`/EOF leave. History goes to
 * $XDG_STATE_HOME/akagent/history (0600, directory 0700); lines that look like they carry a secret
 * are never recorded and never run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wordexp.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "ak_client.h"
#include "ak_path.h"
#include "shell.h"

#define HISTORY_MAX 1000

static const char *akctl_path;
static const char *store_opt;

/* Completion tables, generated from akctl's command table like the shell completion scripts. */
#include "shell_cmds.h"

enum shell_arg { ARG_NONE, ARG_PROFILE, ARG_FILE, ARG_COMMAND, ARG_WORDS };

struct shell_cmd {
	const char *name;
	const char *opts;      /* space-separated */
	int arg;               /* enum shell_arg: what the first argument is */
	const char *argwords;  /* ARG_WORDS: the words, space-separated */
};

static const struct shell_cmd cmds[] = {
	SHELL_GEN_CMDS
	{ "exit", "", ARG_NONE, "" },
};

struct shell_optval {
	const char *opt;
	const char *values;    /* space-separated; "" = a file name */
};

static const struct shell_optval optvals[] = { SHELL_GEN_OPTVALS };
#define NOPTVALS (sizeof(optvals) / sizeof(optvals[0]))
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The agent's view, refreshed before each prompt: never a secret (STATUS and LIST only). */
static struct ak_list_entry *profiles;
static uint32_t nprofiles;

static void
refresh(char *prompt, size_t len)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	const char *active = getenv("AKCTL_PROFILE");
	const char *state;

	memset(&st, 0, sizeof(st));
	ak_client_list_free(profiles, nprofiles);
	profiles = NULL;
	nprofiles = 0;
	/* Plain buffers: neither request nor reply carries a secret. */
	if (ak_client_connect(NULL, AK_CLIENT_PLAIN, &cl, NULL, 0) != AK_OK) {
		state = "no agent";
	} else if (ak_client_status(cl, &st) != AK_OK) {
		state = "no agent";
	} else if (!st.unlocked) {
		state = "locked";
	} else {
		state = NULL;
		(void)ak_client_list(cl, &profiles, &nprofiles);
	}
	if (state != NULL)
		snprintf(prompt, len, "ak[%s]> ", state);
	else if (active != NULL && active[0] != '\0')
		snprintf(prompt, len, "ak[%s]> ", active);
	else
		snprintf(prompt, len, "ak> ");
	ak_status_clear(&st);
	ak_client_close(cl);
}

/* Completion ------------------------------------------------------------------------------------- */

static const struct shell_cmd *
find_cmd(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (strlen(cmds[i].name) == len && strncmp(cmds[i].name, name, len) == 0)
			return &cmds[i];
	return NULL;
}

static const struct shell_cmd *comp_cmd;
static const char *comp_prev;

static char *
gen_command(const char *text, int state)
{
	static size_t i;

	if (state == 0)
		i = 0;
	while (i < NCMDS) {
		const char *n = cmds[i++].name;

		if (strncmp(n, text, strlen(text)) == 0)
			return strdup(n);
	}
	return NULL;
}

/* The values of an option (NULL if it has no list; "" if they are file names). */
static const char *
option_values(const char *opt)
{
	size_t i;

	for (i = 0; i < NOPTVALS; i++)
		if (strcmp(optvals[i].opt, opt) == 0)
			return optvals[i].values;
	return NULL;
}

/* An option whose value cannot be guessed (a name, a duration...): offer nothing after it. */
static int
option_takes_plain_value(const char *opt)
{
	const char *p = strstr(SHELL_GEN_PLAIN, opt);
	size_t len = strlen(opt);

	return opt[0] == '-' && p != NULL && p[-1] == ' ' && p[len] == ' ';
}

static const char *comp_list; /* what gen_word offers: space-separated words, or NULL for profiles */

static char *
gen_word(const char *text, int state)
{
	static size_t pos;
	static uint32_t pi;
	size_t tl = strlen(text);

	if (state == 0) {
		pos = 0;
		pi = 0;
	}
	if (comp_list != NULL) {
		while (comp_list[pos] != '\0') {
			const char *w = comp_list + pos;
			size_t wl = strcspn(w, " ");

			pos += wl + (w[wl] == ' ');
			if (wl >= tl && strncmp(w, text, tl) == 0)
				return strndup(w, wl);
		}
		return NULL;
	}
	while (pi < nprofiles) {
		const char *n = profiles[pi++].name;

		if (strncmp(n, text, tl) == 0)
			return strdup(n);
	}
	return NULL;
}

static char **
complete(const char *text, int start, int end)
{
	static char prev[64];
	const char *line = rl_line_buffer, *p = line, *w0 = NULL, *pw = NULL, *vals;
	size_t w0len = 0, pwlen = 0;

	(void)end;
	rl_attempted_completion_over = 1; /* never fall back to file names */
	/* The first word, and the word before the one being completed. */
	while (p < line + start) {
		const char *s;

		while (p < line + start && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= line + start)
			break;
		s = p;
		while (p < line + start && *p != ' ' && *p != '\t')
			p++;
		if (w0 == NULL) {
			w0 = s;
			w0len = (size_t)(p - s);
		}
		pw = s;
		pwlen = (size_t)(p - s);
	}
	if (w0 == NULL)
		return rl_completion_matches(text, gen_command);
	if ((comp_cmd = find_cmd(w0, w0len)) == NULL)
		return NULL;
	comp_prev = NULL;
	if (pw != NULL && pwlen < sizeof(prev)) {
		memcpy(prev, pw, pwlen);
		prev[pwlen] = '\0';
		comp_prev = prev;
	}
	comp_list = NULL;
	if (comp_prev != NULL && (vals = option_values(comp_prev)) != NULL) {
		if (vals[0] == '\0')
			return rl_completion_matches(text, rl_filename_completion_function);
		comp_list = vals;
	} else if (comp_prev != NULL && option_takes_plain_value(comp_prev)) {
		return NULL;
	} else if (text[0] == '-') {
		comp_list = comp_cmd->opts;
	} else {
		switch (comp_cmd->arg) {
		case ARG_PROFILE:
			break; /* gen_word offers the profile names */
		case ARG_FILE:
			return rl_completion_matches(text, rl_filename_completion_function);
		case ARG_COMMAND:
			return rl_completion_matches(text, gen_command);
		case ARG_WORDS:
			comp_list = comp_cmd->argwords;
			break;
		default:
			return NULL;
		}
	}
	return rl_completion_matches(text, gen_word);
}

/* Running commands ------------------------------------------------------------------------------- */

/* akctl [-f KEYSTORE] WORDS... in a child, on our terminal; its exit status (128+N on signal N). */
static int
run_akctl(char **words, size_t n)
{
	char **argv;
	size_t i, k = 0;
	pid_t pid;
	int status;

	if ((argv = calloc(n + 4, sizeof(*argv))) == NULL)
		return 1;
	argv[k++] = (char *)"akctl";
	if (store_opt != NULL) {
		argv[k++] = (char *)"-f";
		argv[k++] = (char *)store_opt;
	}
	for (i = 0; i < n; i++)
		argv[k++] = words[i];
	argv[k] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "akctl shell: fork: %s\n", strerror(errno));
		free(argv);
		return 1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execv(akctl_path, argv);
		fprintf(stderr, "akctl shell: %s: %s\n", akctl_path, strerror(errno));
		_exit(127);
	}
	free(argv);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* use PROFILE | use --clear: the console's own active profile, checked against the agent's list. */
static int
use_profile(char **words, size_t n)
{
	uint32_t i;
	int r;

	if (n != 2) {
		fprintf(stderr, "akctl shell: usage: use PROFILE | use --clear\n");
		return 2;
	}
	if (strcmp(words[1], "--clear") == 0) {
		unsetenv("AKCTL_PROFILE");
		return 0;
	}
	for (i = 0; i < nprofiles; i++) {
		if (strcmp(profiles[i].name, words[1]) == 0) {
			setenv("AKCTL_PROFILE", words[1], 1);
			return 0;
		}
	}
	/* Not in the list (or the agent is locked): akctl says why, with its exit code. */
	if ((r = run_akctl((char *[]){ (char *)"show", words[1] }, 2)) == 0)
		setenv("AKCTL_PROFILE", words[1], 1);
	return r;
}

static void
help(void)
{
	size_t i;

	printf("akctl console: any akctl command without 'akctl', e.g. 'list', 'unlock', 'get work'.\n"
	    "  use PROFILE | use --clear   switch the console's active profile\n"
	    "  help, exit                  this text; leave (also Ctrl-D)\ncommands:");
	for (i = 0; i < NCMDS; i++)
		printf(" %s", cmds[i].name);
	printf("\nSecrets are read at akctl's own prompts with echo off; never paste one on this line.\n");
}

/* History ---------------------------------------------------------------------------------------- */

static char *
history_path(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[AK_PATH_MAX], why[AK_PATH_MAX + 128], *path;
	int fd;

	if (state != NULL && state[0] == '/')
		snprintf(dir, sizeof(dir), "%s/akagent", state);
	else if (home != NULL && home[0] == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/akagent", home);
	else
		return NULL;
	if (ak_path_mkdirs(dir) != AK_OK || ak_path_secure_dir(dir, 0, why, sizeof(why)) != AK_OK)
		return NULL;
	if (asprintf(&path, "%s/history", dir) < 0)
		return NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

int
main(int argc, char **argv)
{
	struct rlimit rl = { 0, 0 };
	char prompt[128], *line, *hist;
	wordexp_t we;
	int i, rc = 0, r;

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--akctl") == 0 && i + 1 < argc)
			akctl_path = argv[++i];
		else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			store_opt = argv[++i];
		else
			break;
	}
	if (akctl_path == NULL || i != argc) {
		fprintf(stderr, "akctl-shell: run it as 'akctl shell'\n");
		return 2;
	}
	signal(SIGINT, SIG_IGN); /* Ctrl-C stops the command running, not the console */
	signal(SIGQUIT, SIG_IGN);
	rl_readline_name = "akctl";
	rl_attempted_completion_function = complete;
	rl_completer_word_break_characters = (char *)" \t";
	using_history();
	stifle_history(HISTORY_MAX);
	if ((hist = history_path()) != NULL)
		(void)read_history(hist);
	else
		fprintf(stderr, "akctl shell: no history file (XDG_STATE_HOME/HOME unusable)\n");
	printf("akctl console: 'help' for commands, Ctrl-D to leave\n");
	for (;;) {
		refresh(prompt, sizeof(prompt));
		if ((line = readline(prompt)) == NULL) {
			printf("\n");
			break;
		}
		/* Tab completion leaves a trailing space: keep history lines as typed. */
		for (size_t l = strlen(line); l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t'); l--)
			line[l - 1] = '\0';
		if (line[strspn(line, " \t")] == '\0') {
			free(line);
			continue;
		}
		if (shell_line_has_secret(line, profiles, nprofiles)) {
			fprintf(stderr, "akctl shell: this line looks like it holds a key: not run, not "
			    "recorded (secrets are asked for with echo off)\n");
			explicit_bzero(line, strlen(line));
			free(line);
			rc = 2;
			continue;
		}
		add_history(line);
		if (hist != NULL && append_history(1, hist) == 0)
			(void)history_truncate_file(hist, HISTORY_MAX);
		/* Shell-like words (quotes, escapes); never command substitution. */
		r = wordexp(line, &we, WRDE_NOCMD);
		free(line);
		if (r != 0) {
			fprintf(stderr, "akctl shell: cannot parse that line (unbalanced quote, or $(...))\n");
			rc = 2;
			continue;
		}
		if (we.we_wordc == 0) {
			wordfree(&we);
			continue;
		}
		if (strcmp(we.we_wordv[0], "exit") == 0 || strcmp(we.we_wordv[0], "quit") == 0) {
			wordfree(&we);
			break;
		}
		if (strcmp(we.we_wordv[0], "help") == 0)
			help(), rc = 0;
		else if (strcmp(we.we_wordv[0], "use") == 0)
			rc = use_profile(we.we_wordv, we.we_wordc);
		else if (strcmp(we.we_wordv[0], "shell") == 0)
			fprintf(stderr, "akctl shell: already in the console\n"), rc = 2;
		else
			rc = run_akctl(we.we_wordv, we.we_wordc);
		if (rc != 0)
			fprintf(stderr, "[exit %d]\n", rc);
		wordfree(&we);
	}
	free(hist);
	ak_client_list_free(profiles, nprofiles);
	return rc;
}
