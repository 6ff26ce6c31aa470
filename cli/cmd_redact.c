/* cmd_redact.c - akctl redact (a stdin-to-stdout filter) and akctl exec --redact (a command's output
 * through the same filter, on a pseudo-terminal when ours is one).
 *
 * The filter writes everything through at once except a suffix that may still grow into a stored
 * secret's distinctive part (ak_scan_holdback); a secret split across writes, with pauses between
 * them, is therefore never written in part. A public prefix alone (sk-ant-api03-) is never held: it
 * goes out, and the distinctive part after it becomes [ak:PROFILE]. Bytes are bytes: invalid UTF-8 and
 * binary data pass through unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "scan.h"

/* What one read takes, at most. A pipe hands over at most its buffer per wake-up (64 KiB by default),
 * and each wake-up is a context switch on both sides: the pipes the filter reads and writes are
 * enlarged to PIPE_SIZE where the system allows (a user may ask for up to fs.pipe-max-size, 1 MiB by
 * default), and the filter reads as much. Latency is not traded for it: a read returns whatever has
 * arrived, and the filter writes it out at once. */
#define RD_CHUNK (256u << 10)
#define PIPE_SIZE (1 << 20)

struct redactor {
	struct ak_scan *m;
	const struct scan_names *nm;
	int fd;            /* output */
	uint8_t *buf;
	size_t cap, n, ctx; /* buf[0..ctx) was written already (kept as context for prefixes) */
	size_t keep;
	size_t cursor, lastend;
	int failed;
};

static void
rd_write(struct redactor *r, const void *p, size_t n)
{
	if (n > 0 && !r->failed && cli_write_all(r->fd, p, n) != AK_OK)
		r->failed = 1;
}

static int
rd_hit(void *arg, const struct ak_scan_hit *h)
{
	struct redactor *r = arg;
	size_t from = h->start > r->ctx ? h->start : r->ctx;
	const char *who = h->secret < r->nm->n && r->nm->profiles[h->secret] ? r->nm->profiles[h->secret] : "?";

	if (h->end <= r->ctx || from < r->cursor)
		return 0;
	rd_write(r, r->buf + r->cursor, from - r->cursor);
	rd_write(r, "[ak:", 4);
	rd_write(r, who, strlen(who));
	rd_write(r, "]", 1);
	r->cursor = r->lastend = h->end;
	return 0;
}

/* Write out what can no longer be part of a secret; final: everything. */
static void
rd_process(struct redactor *r, int final)
{
	size_t hold, hs, cs;

	r->cursor = r->ctx;
	r->lastend = 0;
	ak_scan_buf(r->m, r->buf, r->n, rd_hit, r);
	/* Only what follows the last replaced secret can still start one. */
	hold = final ? 0 : ak_scan_holdback(r->m, r->buf + r->lastend, r->n - r->lastend);
	hs = r->n - hold;
	if (hs < r->cursor)
		hs = r->cursor;
	rd_write(r, r->buf + r->cursor, hs - r->cursor);
	/* Keep the held bytes, plus written context after the last replaced secret (never the secret). */
	cs = hs > r->keep ? hs - r->keep : 0;
	if (cs < r->lastend)
		cs = r->lastend;
	sodium_memzero(r->buf, cs); /* it held what we replaced */
	memmove(r->buf, r->buf + cs, r->n - cs);
	r->n -= cs;
	r->ctx = hs - cs;
	sodium_memzero(r->buf + r->n, cs);
}

/* Read from fd straight into the buffer (no copy) and write out what can go. Returns what read(2)
 * returned. */
static ssize_t
rd_read(struct redactor *r, int fd)
{
	size_t room = r->cap - r->n;
	ssize_t n = read(fd, r->buf + r->n, room < RD_CHUNK ? room : RD_CHUNK);

	if (n > 0) {
		r->n += (size_t)n;
		rd_process(r, 0);
	}
	return n;
}

/* A pipe at fd: make its buffer PIPE_SIZE (a failure leaves it as it was, which only costs speed). */
static void
pipe_enlarge(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode) && fcntl(fd, F_GETPIPE_SZ) < PIPE_SIZE)
		(void)fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE);
}

static int
rd_init(struct redactor *r, struct ak_scan *m, const struct scan_names *nm, int fd)
{
	memset(r, 0, sizeof(*r));
	r->m = m;
	r->nm = nm;
	r->fd = fd;
	r->keep = ak_scan_span(m);
	/* Held suffix and context are at most a span each; room for a chunk on top. */
	r->cap = 2 * r->keep + RD_CHUNK;
	if ((r->buf = malloc(r->cap)) == NULL)
		return -1;
	return 0;
}

static void
rd_finish(struct redactor *r)
{
	if (r->buf == NULL)
		return;
	rd_process(r, 1);
	sodium_memzero(r->buf, r->cap);
	free(r->buf);
	r->buf = NULL;
}

enum ak_err
cmd_redact(struct cli *c, int argc, char **argv)
{
	struct redactor r;
	struct ak_scan *m = NULL;
	struct scan_names nm;
	ssize_t n;
	int helped;
	enum ak_err rc;

	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (optind < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if ((rc = scan_load(c, 1, &m, &nm)) != 0)
		return rc;
	if (rd_init(&r, m, &nm, 1) != 0) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	pipe_enlarge(0);
	pipe_enlarge(1);
	for (;;) {
		n = rd_read(&r, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || r.failed)
			break;
	}
	rd_finish(&r);
	rc = n < 0 ? cli_fail(AK_ERR_IO, strerror(errno), "%s: reading", c->cmd) : (r.failed ? AK_ERR_IO : AK_OK);
out:
	scan_names_free(&nm);
	ak_scan_free(m);
	return rc;
}

/* exec --redact ------------------------------------------------------------------------------------ */

static volatile sig_atomic_t got_winch;

static void
on_winch(int sig)
{
	(void)sig;
	got_winch = 1;
}

/* Our akctl again, as "akctl [-f STORE] exec ARGS-without---redact". */
static char **
child_argv(struct cli *c, int argc, char **argv)
{
	static char self[4096];
	char **a = calloc((size_t)argc + 4, sizeof(char *));
	ssize_t n;
	int i, k = 0, dashdash = 0;

	if (a == NULL || (n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		free(a);
		return NULL;
	}
	self[n] = '\0';
	a[k++] = self;
	if (c->store_opt != NULL) {
		a[k++] = "-f";
		a[k++] = (char *)c->store_opt;
	}
	for (i = 0; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0)
			dashdash = 1;
		if (!dashdash && strcmp(argv[i], "--redact") == 0)
			continue;
		a[k++] = argv[i];
	}
	a[k] = NULL;
	return a;
}

static int
exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Copy from fd in through the redactor until EOF/EIO; returns 0 at EOF. */
static int
pump(int in, struct redactor *r)
{
	ssize_t n = rd_read(r, in);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	return n > 0;
}

enum ak_err
cli_exec_redact(struct cli *c, int argc, char **argv)
{
	struct redactor ro = { 0 }, re = { 0 };
	struct ak_scan *m = NULL;
	struct scan_names nm;
	struct termios saved, raw;
	struct winsize ws;
	struct sigaction sa, old_winch, ign, old_int, old_quit;
	struct pollfd pf[3];
	uint8_t *buf = NULL;
	char **cargv = NULL;
	int tty = isatty(1), raw_set = 0, master = -1, op[2] = { -1, -1 }, ep[2] = { -1, -1 };
	enum ak_err rc;
	int status = 0, open_out, open_err, in_open;
	pid_t pid = -1;

	if ((rc = scan_load(c, 1, &m, &nm)) != 0)
		return rc;
	if ((buf = malloc(RD_CHUNK)) == NULL || (cargv = child_argv(c, argc, argv)) == NULL ||
	    rd_init(&ro, m, &nm, 1) != 0 || rd_init(&re, m, &nm, 2) != 0) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	if (tty) {
		/* The command gets a terminal of its own: colours, prompts, resizes, raw mode all work,
		 * and its output still comes through us. */
		if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || grantpt(master) != 0 ||
		    unlockpt(master) != 0) {
			rc = cli_fail(AK_ERR_SYSTEM, strerror(errno), "%s: pseudo-terminal", c->cmd);
			goto out;
		}
		if (ioctl(1, TIOCGWINSZ, &ws) == 0)
			(void)ioctl(master, TIOCSWINSZ, &ws);
	} else if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0) {
		rc = cli_fail(AK_ERR_SYSTEM, strerror(errno), "%s: pipe", c->cmd);
		goto out;
	} else {
		pipe_enlarge(op[0]);
		pipe_enlarge(ep[0]);
		pipe_enlarge(1);
		pipe_enlarge(2);
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		rc = cli_fail(AK_ERR_SYSTEM, strerror(errno), "%s: fork", c->cmd);
		goto out;
	}
	if (pid == 0) {
		if (tty) {
			const char *sname = ptsname(master);
			int slave;

			if (sname == NULL || setsid() < 0 || (slave = open(sname, O_RDWR)) < 0)
				_exit(127);
			(void)ioctl(slave, TIOCSCTTY, 0);
			if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
				_exit(127);
			if (slave > 2)
				close(slave);
		} else if (dup2(op[1], 1) < 0 || dup2(ep[1], 2) < 0) {
			_exit(127);
		}
		execv(cargv[0], cargv);
		_exit(127);
	}
	/* Ctrl-C and Ctrl-\ are the command's to handle; we go on until it exits. */
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, &old_winch);
	if (tty && isatty(0) && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		if (tcsetattr(0, TCSANOW, &raw) == 0)
			raw_set = 1;
	}
	if (!tty) {
		close(op[1]);
		close(ep[1]);
		op[1] = ep[1] = -1;
	}
	open_out = 1;
	open_err = !tty;
	in_open = tty;
	while (open_out || open_err) {
		int np = 0, io = -1, ie = -1, ii = -1;

		if (got_winch) {
			got_winch = 0;
			if (tty && ioctl(1, TIOCGWINSZ, &ws) == 0)
				(void)ioctl(master, TIOCSWINSZ, &ws);
		}
		if (open_out) {
			pf[np].fd = tty ? master : op[0];
			pf[np].events = POLLIN;
			io = np++;
		}
		if (open_err) {
			pf[np].fd = ep[0];
			pf[np].events = POLLIN;
			ie = np++;
		}
		if (in_open) {
			pf[np].fd = 0;
			pf[np].events = POLLIN;
			ii = np++;
		}
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (io >= 0 && pf[io].revents && !pump(pf[io].fd, &ro))
			open_out = 0;
		if (ie >= 0 && pf[ie].revents && !pump(ep[0], &re))
			open_err = 0;
		if (ii >= 0 && pf[ii].revents) {
			ssize_t n = read(0, buf, RD_CHUNK);

			if (n <= 0)
				in_open = 0; /* our stdin ended: the command keeps its terminal */
			else if (cli_write_all(master, buf, (size_t)n) != AK_OK)
				in_open = 0;
		}
	}
	rd_finish(&ro);
	rd_finish(&re);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rc = cli_status(c, exit_code(status)); /* the command's own status, as exec gives it */
	if (raw_set)
		(void)tcsetattr(0, TCSANOW, &saved);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGWINCH, &old_winch, NULL);
out:
	rd_finish(&ro);
	rd_finish(&re);
	if (master >= 0)
		close(master);
	for (int i = 0; i < 2; i++) {
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	free(cargv);
	if (buf != NULL) {
		sodium_memzero(buf, RD_CHUNK);
		free(buf);
	}
	scan_names_free(&nm);
	ak_scan_free(m);
	return rc;
}
