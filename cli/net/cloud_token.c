/* cloud_token.c - token programs (gcloud, az, ...): run with execvp and no shell, stdin and stderr on
 * /dev/null, a deadline, and the token read from stdout into the secure arena. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ak_smem.h"
#include "ak_util.h"
#include "cloud.h"

static void
child_exec(char *const argv[], int wfd)
{
	int nul;

	/* Never prompt (stdin /dev/null), never print over our one-line error (stderr /dev/null). */
	if ((nul = open("/dev/null", O_RDWR)) < 0)
		_exit(126);
	if (dup2(nul, 0) < 0 || dup2(wfd, 1) < 0 || dup2(nul, 2) < 0)
		_exit(126);
	/* The agent socket and anything else we hold stay with us. */
	closefrom(3);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	_exit(errno == ENOENT ? 127 : 126);
}

enum ak_err
cloud_run_token(char *const argv[], long timeout_ms, char **tok, char *detail, size_t detaillen)
{
	struct pollfd pfd;
	char *buf = NULL;
	size_t n = 0;
	uint64_t deadline;
	ssize_t k;
	pid_t pid;
	int fds[2] = { -1, -1 }, status = 0, left, timed_out = 0, overflow = 0;
	enum ak_err r;

	*tok = NULL;
	if ((buf = ak_smem_alloc(CLOUD_TOKEN_MAX + 1)) == NULL)
		return cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
	if (pipe2(fds, O_CLOEXEC) != 0) {
		r = cloud_err(AK_ERR_SYSTEM, detail, detaillen, "%s: pipe: %s", argv[0], strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		r = cloud_err(AK_ERR_SYSTEM, detail, detaillen, "%s: fork: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, fds[1]);
	close(fds[1]);
	fds[1] = -1;
	deadline = ak_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = ak_now_ms();

		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		left = (int)(deadline - now);
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd.revents == 0)
			continue;
		if (n == CLOUD_TOKEN_MAX) {
			overflow = 1;
			break;
		}
		k = read(fds[0], buf + n, CLOUD_TOKEN_MAX - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (timed_out || overflow)
		kill(pid, SIGKILL); /* our own child, by pid */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		r = cloud_err(AK_ERR_BUSY, detail, detaillen, "'%s' did not answer within %ld s", argv[0],
		    timeout_ms / 1000);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		r = cloud_err(AK_ERR_NO_PROFILE, detail, detaillen, "'%s' is not installed", argv[0]);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "'%s %s' failed (%s %d)", argv[0],
		    argv[1] != NULL ? argv[1] : "", WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	    buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (overflow || !cloud_token_ok(buf, n)) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "'%s %s' printed no usable token", argv[0],
		    argv[1] != NULL ? argv[1] : "");
		goto out;
	}
	*tok = buf;
	buf = NULL;
	r = AK_OK;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	ak_smem_free(buf); /* wipes a partial token */
	return r;
}
