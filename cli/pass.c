/* pass.c - reading passphrases and secret values, never through stdio or readline.
 *
 * Sources, in order: --passphrase-fd N (one line per call, read a byte at a time so that two lines on
 * one descriptor go to two calls), $AKCTL_ASKPASS (a program: prompt as argv[1], passphrase on its
 * stdout), /dev/tty with echo off. Never argv, never an environment variable's value.
 * Every buffer here is in the secure arena and wiped on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"
#include "cli.h"

/* Signals that would leave the terminal without echo if they killed us mid-read. */
static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGPIPE };
#define NSIG_TTY (sizeof(tty_signals) / sizeof(tty_signals[0]))

static volatile sig_atomic_t tty_signo;

static void
tty_catch(int signo)
{
	tty_signo = signo;
}

/* One byte from fd into *ch: 1, 0 at end of file, or -1 with *r AK_ERR_IO on a read error or
 * AK_ERR_BUSY when a caught signal interrupted it (other interruptions are retried). */
static int
read_byte(int fd, char *ch, enum ak_err *r)
{
	ssize_t k;

	for (;;) {
		if ((k = read(fd, ch, 1)) >= 0)
			return (int)k;
		if (errno != EINTR || tty_signo != 0) {
			*r = errno == EINTR ? AK_ERR_BUSY : AK_ERR_IO;
			return -1;
		}
	}
}

/* The end of a read of n bytes into buf: terminated, *len set, and the result (over: bytes past max
 * were dropped; got: anything came at all before the end of file). */
static enum ak_err
read_done(char *buf, size_t n, size_t *len, int over, int got)
{
	buf[n] = '\0';
	*len = n;
	if (over)
		return AK_ERR_TOO_LARGE;
	if (!got)
		return AK_ERR_TRUNCATED;
	return AK_OK;
}

/* Read one line (up to '\n' or EOF) from fd a byte at a time into buf (secure, max + 1 bytes).
 * AK_ERR_TOO_LARGE past max (the rest of the line is consumed and dropped), AK_ERR_TRUNCATED on EOF
 * with nothing read, AK_ERR_IO on a read error, AK_ERR_BUSY when interrupted by a caught signal. */
static enum ak_err
read_line(int fd, char *buf, size_t max, size_t *len)
{
	size_t n = 0;
	int over = 0, got = 0, k;
	char ch;
	enum ak_err r;

	while ((k = read_byte(fd, &ch, &r)) > 0) {
		got = 1;
		if (ch == '\n')
			break;
		if (n < max)
			buf[n++] = ch;
		else
			over = 1;
	}
	ch = 0;
	return k < 0 ? r : read_done(buf, n, len, over, got);
}

#define PASTE_ON "\033[?2004h"
#define PASTE_OFF "\033[?2004l"
#define PASTE_BEGIN "\033[200~"
#define PASTE_END "\033[201~"

/* Read a secret typed or pasted on a terminal in non-canonical mode (no line-length cut) with
 * bracketed paste on: Enter ends it, except inside a paste, where a line break is part of the value,
 * so a key pasted with a wrapped line arrives whole and none of it is left for the shell to read.
 * Backspace and Ctrl-U edit; Ctrl-D on an empty line is end of file. Same returns as read_line. */
static enum ak_err
read_raw(int fd, char *buf, size_t max, size_t *len)
{
	char esc[8];
	size_t n = 0, e = 0;
	int over = 0, pasting = 0, got = 0, k;
	char ch;
	enum ak_err r;

	while ((k = read_byte(fd, &ch, &r)) > 0) {
		got = 1;
		/* Escape sequences: only the paste markers mean something; others are dropped. */
		if (e > 0 || ch == '\033') {
			esc[e++] = ch;
			if (e == strlen(PASTE_BEGIN) || (e >= 2 && ch >= 0x40 && ch <= 0x7e && ch != '[')) {
				if (e == strlen(PASTE_BEGIN) && memcmp(esc, PASTE_BEGIN, e) == 0)
					pasting = 1;
				else if (e == strlen(PASTE_END) && memcmp(esc, PASTE_END, e) == 0)
					pasting = 0;
				e = 0;
			}
			continue;
		}
		if (!pasting && (ch == '\r' || ch == '\n'))
			break;
		if (!pasting && ch == 0x04 && n == 0) {
			got = 0;
			break;
		}
		if (!pasting && (ch == 0x7f || ch == 0x08)) {
			if (n > 0)
				buf[--n] = '\0';
			continue;
		}
		if (!pasting && ch == 0x15) { /* Ctrl-U */
			sodium_memzero(buf, n);
			n = 0;
			continue;
		}
		if (n < max)
			buf[n++] = ch;
		else
			over = 1;
	}
	ch = 0;
	sodium_memzero(esc, sizeof(esc));
	if (k < 0)
		return r;
	/* A pasted value ends with the line break that was copied with it: not part of the secret. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	return read_done(buf, n, len, over, got);
}

/* Prompt on /dev/tty and read a line with echo off (raw: read_raw, for secrets). The terminal settings
 * and signal dispositions are restored on every path, and input left unread is discarded; a caught
 * signal is re-raised after restoring. */
static enum ak_err
tty_read_mode(const char *prompt, char *buf, size_t max, size_t *len, int raw)
{
	struct sigaction sa, old_sa[NSIG_TTY];
	struct termios old_t, new_t;
	size_t i;
	int fd, signo;
	enum ak_err r;

	*len = 0;
	buf[0] = '\0';
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return AK_ERR_NO_PASSPHRASE;
	if (tcgetattr(fd, &old_t) != 0) {
		close(fd);
		return AK_ERR_NO_PASSPHRASE;
	}
	tty_signo = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = tty_catch;
	sa.sa_flags = 0; /* no SA_RESTART: the read must return EINTR */
	for (i = 0; i < NSIG_TTY; i++)
		(void)sigaction(tty_signals[i], &sa, &old_sa[i]);

	new_t = old_t;
	new_t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	if (raw) {
		new_t.c_lflag &= ~(tcflag_t)(ICANON | ECHONL | IEXTEN);
		new_t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON);
		new_t.c_cc[VMIN] = 1;
		new_t.c_cc[VTIME] = 0;
	} else {
		new_t.c_lflag |= ECHONL | ICANON;
	}
	(void)tcsetattr(fd, TCSAFLUSH, &new_t);
	(void)cli_write_all(fd, prompt, strlen(prompt));
	if (raw) {
		(void)cli_write_all(fd, PASTE_ON, strlen(PASTE_ON));
		r = read_raw(fd, buf, max, len);
		(void)cli_write_all(fd, PASTE_OFF, strlen(PASTE_OFF));
	} else {
		r = read_line(fd, buf, max, len);
	}
	(void)tcsetattr(fd, TCSAFLUSH, &old_t);
	if (r == AK_ERR_BUSY || raw)
		(void)cli_write_all(fd, "\n", 1); /* ECHONL did not see a newline (raw: not on) */
	close(fd);

	for (i = 0; i < NSIG_TTY; i++)
		(void)sigaction(tty_signals[i], &old_sa[i], NULL);
	signo = tty_signo;
	if (signo != 0) {
		sodium_memzero(buf, max + 1);
		*len = 0;
		/* Restored: now let the signal do what it would have done (usually kill us). */
		raise(signo);
		return AK_ERR_NO_PASSPHRASE;
	}
	if (r == AK_ERR_TRUNCATED)
		r = AK_ERR_NO_PASSPHRASE; /* EOF on the terminal */
	return r;
}

static enum ak_err
tty_read(const char *prompt, char *buf, size_t max, size_t *len)
{
	return tty_read_mode(prompt, buf, max, len, 0);
}

/* Run $AKCTL_ASKPASS with the prompt as argv[1]; its stdout (one trailing newline stripped) is the
 * passphrase. Non-zero exit, or no program => AK_ERR_NO_PASSPHRASE. */
static enum ak_err
askpass_read(const char *prog, const char *prompt, char *buf, size_t max, size_t *len,
    char *detail, size_t detaillen)
{
	char *argv[3];
	char scratch[256];
	size_t n = 0;
	ssize_t k;
	pid_t pid, w;
	int pfd[2], status, over = 0;
	enum ak_err r;

	*len = 0;
	buf[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return AK_ERR_SYSTEM;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return AK_ERR_SYSTEM;
	}
	if (pid == 0) {
		/* Child: only async-signal-safe calls until exec. */
		if (dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(127);
		argv[0] = (char *)prog;
		argv[1] = (char *)prompt;
		argv[2] = NULL;
		execvp(prog, argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		if (n < max + 1)
			k = read(pfd[0], buf + n, max + 1 - n);
		else
			k = read(pfd[0], scratch, sizeof(scratch)); /* drain so the child never blocks */
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (k == 0)
			break;
		if (n < max + 1)
			n += (size_t)k;
		else
			over = 1;
	}
	sodium_memzero(scratch, sizeof(scratch));
	close(pfd[0]);
	do {
		w = waitpid(pid, &status, 0);
	} while (w < 0 && errno == EINTR);

	if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(detail, detaillen, "AKCTL_ASKPASS program failed");
		r = AK_ERR_NO_PASSPHRASE;
		goto out;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (over || n > max) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
	r = AK_OK;
out:
	if (r != AK_OK)
		sodium_memzero(buf, max + 1);
	return r;
}

/* One passphrase from the configured source into buf (max + 1 bytes). */
static enum ak_err
pass_once(struct cli *c, const char *prompt, char *buf, size_t max, size_t *len, int *from_tty,
    char *detail, size_t detaillen)
{
	const char *askpass;
	enum ak_err r;

	*from_tty = 0;
	if (c->pass_fd >= 0) {
		r = read_line(c->pass_fd, buf, max, len);
		if (r == AK_OK && *len > 0 && buf[*len - 1] == '\r')
			buf[--*len] = '\0'; /* a "\r\n" line from a file written on Windows */
		if (r == AK_ERR_TRUNCATED) {
			snprintf(detail, detaillen, "end of file on --passphrase-fd %d", c->pass_fd);
			r = AK_ERR_NO_PASSPHRASE;
		} else if (r == AK_ERR_IO) {
			snprintf(detail, detaillen, "--passphrase-fd %d: %s", c->pass_fd, strerror(errno));
		}
		return r;
	}
	askpass = getenv("AKCTL_ASKPASS");
	if (askpass != NULL && askpass[0] != '\0')
		return askpass_read(askpass, prompt, buf, max, len, detail, detaillen);
	r = tty_read(prompt, buf, max, len);
	if (r == AK_ERR_NO_PASSPHRASE && detaillen > 0 && detail[0] == '\0')
		snprintf(detail, detaillen, "use a terminal, --passphrase-fd or AKCTL_ASKPASS");
	*from_tty = 1;
	return r;
}

/* A new passphrase's score: AK_OK to take it (perhaps with a warning), AK_ERR_WEAK_PASS when a person at
 * the terminal should choose another (the reason is then printed or, on the last try, in detail). */
static enum ak_err
pass_judge(const char *pass, int from_tty, int last, char *detail, size_t detaillen)
{
	char reason[256];
	enum ak_err r = AK_OK;

	switch (cli_pwq_score(pass, reason, sizeof(reason))) {
	case CLI_PWQ_OK:
		break;
	case CLI_PWQ_UNAVAILABLE:
		cli_note("warning: passphrase strength not checked (%s)", reason);
		break;
	case CLI_PWQ_WEAK:
		/* A script or an askpass program cannot choose again: it is told, not stopped. */
		if (!from_tty) {
			cli_note("warning: weak passphrase: %s", reason);
			break;
		}
		r = AK_ERR_WEAK_PASS;
		if (last)
			snprintf(detail, detaillen, "%s", reason);
		else
			cli_note("passphrase refused: %s; choose another", reason);
		break;
	}
	sodium_memzero(reason, sizeof(reason));
	return r;
}

enum ak_err
cli_pass_read(struct cli *c, const char *prompt, int confirm, char **out, size_t *outlen, char *detail,
    size_t detaillen)
{
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int from_tty = 0, tries;
	char dummy[1];
	enum ak_err r;

	*out = NULL;
	*outlen = 0;
	if (detail == NULL || detaillen == 0) {
		detail = dummy;
		detaillen = sizeof(dummy);
	}
	detail[0] = '\0';
	if ((a = ak_smem_alloc(CLI_PASS_MAX + 1)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = pass_once(c, prompt, a, CLI_PASS_MAX, &alen, &from_tty, detail, detaillen)) != AK_OK)
		goto out;
	/* A new passphrase (confirm): scored, and at a terminal typed twice, since a person typing blind
	 * needs a second chance to notice a typo. A weak one or a mismatch starts again from the first,
	 * CLI_PASS_TRIES times in all. */
	for (tries = 1;; tries++) {
		if (alen == 0) {
			r = AK_ERR_EMPTY;
			goto out;
		}
		if (!confirm)
			break;
		r = pass_judge(a, from_tty, tries == CLI_PASS_TRIES, detail, detaillen);
		if (r != AK_OK && tries == CLI_PASS_TRIES)
			goto out;
		if (r == AK_OK && !from_tty)
			break;
		if (r == AK_OK) {
			if (b == NULL && (b = ak_smem_alloc(CLI_PASS_MAX + 1)) == NULL) {
				r = AK_ERR_NOMEM;
				goto out;
			}
			if ((r = tty_read("Repeat passphrase: ", b, CLI_PASS_MAX, &blen)) != AK_OK)
				goto out;
			if (alen == blen && sodium_memcmp(a, b, alen) == 0)
				break;
			if (tries == CLI_PASS_TRIES) {
				r = AK_ERR_MISMATCH;
				goto out;
			}
			/* A typo in either: start again from the first. */
			fprintf(stderr, "akctl: passphrases do not match, try again\n");
		}
		if ((r = tty_read(prompt, a, CLI_PASS_MAX, &alen)) != AK_OK)
			goto out;
	}
	*out = a;
	*outlen = alen;
	a = NULL;
	r = AK_OK;
out:
	ak_smem_free(a); /* wipes */
	ak_smem_free(b);
	return r;
}

#define SPIN_AFTER_MS 300 /* a derivation quicker than this shows nothing */
#define SPIN_FRAME_MS 100

/* The spinner thread: waits SPIN_AFTER_MS, then draws a frame every SPIN_FRAME_MS on stderr until the
 * pipe it polls becomes readable (the derivation ended), and erases its line. It touches no secret. */
static void *
spinner(void *arg)
{
	static const char frames[] = "|/-\\";
	struct pollfd pfd = { *(int *)arg, POLLIN, 0 };
	unsigned i = 0;
	int shown = 0, wait = SPIN_AFTER_MS;

	for (;;) {
		char line[64];
		int n, k = poll(&pfd, 1, wait);

		if (k < 0 && errno == EINTR)
			continue;
		if (k != 0)
			break;
		n = snprintf(line, sizeof(line), "\r%c deriving the key...", frames[i++ % 4]);
		(void)cli_write_all(STDERR_FILENO, line, (size_t)n);
		shown = 1;
		wait = SPIN_FRAME_MS;
	}
	if (shown)
		(void)cli_write_all(STDERR_FILENO, "\r\033[K", 4);
	return NULL;
}

enum ak_err
cli_pass_derive(struct cli *c, const struct ak_kdf *kdf, const char *pass, size_t passlen, uint8_t **key)
{
	pthread_t th;
	int pfd[2] = { -1, -1 }, spinning = 0;
	enum ak_err r;

	if ((*key = ak_smem_alloc(AK_KEY_BYTES)) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
	/* Argon2id at "moderate" takes seconds: show a person at a terminal that something is happening. */
	if (isatty(STDERR_FILENO) && pipe2(pfd, O_CLOEXEC) == 0)
		spinning = pthread_create(&th, NULL, spinner, &pfd[0]) == 0;
	r = ak_kdf_derive(kdf, pass, passlen, *key);
	if (spinning) {
		(void)cli_write_all(pfd[1], "x", 1);
		(void)pthread_join(th, NULL);
	}
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	if (r != AK_OK)
		return cli_fail(r, NULL, "%s: key derivation", c->cmd);
	return AK_OK;
}

enum ak_err
cli_secret_read(const char *prompt, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t k;
	enum ak_err r;

	*out = NULL;
	*outlen = 0;
	/* Room for the value, a "\r\n" and one byte to detect overflow. */
	if ((buf = ak_smem_alloc(AK_VALUE_MAX + 4)) == NULL)
		return AK_ERR_NOMEM;
	if (isatty(STDIN_FILENO)) {
		if ((r = tty_read_mode(prompt, buf, AK_VALUE_MAX, &n, 1)) != AK_OK)
			goto out;
	} else {
		for (;;) {
			k = read(STDIN_FILENO, buf + n, AK_VALUE_MAX + 3 - n);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				r = AK_ERR_IO;
				goto out;
			}
			if (k == 0)
				break;
			n += (size_t)k;
			if (n == AK_VALUE_MAX + 3) {
				r = AK_ERR_TOO_LARGE;
				goto out;
			}
		}
		if (n > 0 && buf[n - 1] == '\n') {
			n--;
			if (n > 0 && buf[n - 1] == '\r')
				n--;
		}
		buf[n] = '\0';
	}
	if (n > AK_VALUE_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if (n == 0) {
		r = AK_ERR_EMPTY;
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL) {
		r = AK_ERR_INVALID; /* a C string cannot carry it, and no shell could export it */
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
	r = AK_OK;
out:
	ak_smem_free(buf);
	return r;
}
