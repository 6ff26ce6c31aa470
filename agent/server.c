/* server.c - akagent's event loop: one thread, poll(), non-blocking sockets, timers; signals and the
 * socket watch. The connections themselves are conn.c's.
 *
 * Timers: the state's lifetime/idle deadlines (dispatch.c), per-connection stall/idle limits, holds
 * (failed-unlock delay, UNLOCK gate), the accept pause after EMFILE, and the socket check period when
 * inotify is unavailable. poll() sleeps until the nearest one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_path.h"
#include "ak_proto.h"
#include "ak_util.h"

#define SHUTDOWN_FLUSH_MS 1000
#define FIXED_PFDS 3 /* signal pipe, inotify, listener */

static struct pollfd *pfds;
static size_t cappfds;
static int sigpipe_fd[2] = { -1, -1 };

/* Signals ---------------------------------------------------------------------------------------- */

static void
on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;

	/* Non-blocking: if the pipe is full the loop will wake anyway. */
	(void)!write(sigpipe_fd[1], &c, 1);
	errno = saved;
}

int
agent_signals_init(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };
	struct sigaction sa;
	size_t i;

	if (sigpipe_fd[0] < 0 && pipe2(sigpipe_fd, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return -1;
	return 0;
}

void
agent_signals_close(void)
{
	if (sigpipe_fd[0] >= 0)
		close(sigpipe_fd[0]);
	if (sigpipe_fd[1] >= 0)
		close(sigpipe_fd[1]);
	sigpipe_fd[0] = sigpipe_fd[1] = -1;
}

/* The socket and the loop ------------------------------------------------------------------------ */

static int
sock_is_ours(const struct agent_server_cfg *cfg)
{
	struct stat sb;

	return lstat(cfg->sock_path, &sb) == 0 && sb.st_dev == cfg->sock_dev &&
	    sb.st_ino == cfg->sock_ino;
}

static int
watch_init(const char *sock_path)
{
	char dir[AK_PATH_MAX];
	int fd;

	if (ak_path_dirname(sock_path, dir, sizeof(dir)) != AK_OK)
		return -1;
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	if (inotify_add_watch(fd, dir, IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
	    IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
watch_drain(int fd)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	/* The events themselves do not matter: the caller re-checks the socket path. */
	while (read(fd, ev, sizeof(ev)) > 0)
		;
}

/* Returns the exit status to use, or -1 to keep running. */
static int
handle_signals(const struct agent_server_cfg *cfg, int *unlink_sock)
{
	unsigned char sigs[64];
	ssize_t n, i;
	int code = -1;

	while ((n = read(sigpipe_fd[0], sigs, sizeof(sigs))) > 0) {
		for (i = 0; i < n; i++) {
			switch (sigs[i]) {
			case SIGUSR1:
			case SIGHUP:
				agent_state_lock(sigs[i] == SIGUSR1 ? "SIGUSR1" : "SIGHUP");
				break;
			case SIGINT:
				/* With a command, ^C is for the command: we exit when it does. */
				if (cfg->child > 0)
					break;
				__attribute__((fallthrough)); /* without a command, ^C ends us */
			case SIGTERM:
				ak_info("exiting on signal %d", sigs[i]);
				*unlink_sock = 1;
				code = 0;
				break;
			case SIGCHLD:
				{
					int status;
					pid_t p;

					/* The CMD child, or an askpass (confirm.c). */
					while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
						if (cfg->child <= 0 || p != cfg->child) {
							agent_confirm_exited(p, status);
							continue;
						}
						*unlink_sock = 1;
						if (WIFEXITED(status))
							code = WEXITSTATUS(status);
						else if (WIFSIGNALED(status))
							code = 128 + WTERMSIG(status);
						else
							code = 1;
					}
				}
				break;
			default:
				break;
			}
		}
	}
	return code;
}

static int
ensure_pfds(size_t n)
{
	struct pollfd *np;
	size_t ncap;

	if (n <= cappfds)
		return 0;
	ncap = cappfds ? cappfds : 64;
	while (ncap < n)
		ncap *= 2;
	if ((np = realloc(pfds, ncap * sizeof(*np))) == NULL)
		return -1;
	pfds = np;
	cappfds = ncap;
	return 0;
}

/* The loop's own state between its phases. */
struct loop {
	const struct agent_server_cfg *cfg;
	int ifd;                     /* inotify on the socket's directory, or -1 */
	uint64_t paused_until;       /* accept pause after running out of descriptors */
	uint64_t next_watch;         /* next socket check when inotify is unavailable */
	uint64_t shutdown_deadline;  /* SHUTDOWN asked: exit by then even if its reply is not out */
	int unlink_sock;
	size_t npolled;              /* connections in pfds this round */
};

/* Buffers, the socket watch and the first check of the socket. -1 to go on, else the exit status. */
static int
loop_open(struct loop *l)
{
	if (agent_conns_init() != 0) {
		ak_error("out of secure memory");
		return 1;
	}
	if ((l->ifd = watch_init(l->cfg->sock_path)) < 0) {
		ak_warn("inotify unavailable (%s): checking the socket every %us", strerror(errno),
		    AGENT_WATCH_POLL_MS / 1000);
		l->next_watch = ak_now_ms() + AGENT_WATCH_POLL_MS;
	}
	/* The parent may have printed our exports before the watch existed: whatever happened to the
	 * socket in that window is caught by this one check. */
	if (!sock_is_ours(l->cfg)) {
		ak_warn("socket %s removed or replaced: exiting", l->cfg->sock_path);
		return 0;
	}
	return -1;
}

/* Timers: the state's deadlines, the connections', the accept pause, a requested shutdown, the socket
 * check. -1 to go on, else the exit status. */
static int
loop_timers(struct loop *l, uint64_t now)
{
	int flushing;

	agent_state_tick(now);
	agent_conns_timers(now);
	if (agent_conns_compact() > 0)
		l->paused_until = 0; /* a descriptor came back: try accepting again */
	if (l->paused_until != 0 && now >= l->paused_until)
		l->paused_until = 0;
	if (agent_conns_shutdown(&flushing)) {
		if (l->shutdown_deadline == 0)
			l->shutdown_deadline = now + SHUTDOWN_FLUSH_MS;
		if (!flushing || now >= l->shutdown_deadline) {
			ak_info("exiting on request");
			l->unlink_sock = 1;
			return 0;
		}
	}
	if (l->next_watch != 0 && now >= l->next_watch) {
		if (!sock_is_ours(l->cfg)) {
			ak_warn("socket %s removed or replaced: locking and exiting", l->cfg->sock_path);
			return 0;
		}
		l->next_watch = now + AGENT_WATCH_POLL_MS;
	}
	return -1;
}

/* Fill pfds for this round; returns poll's timeout (ms, -1 = none), or -2 when out of memory. */
static int
loop_poll_set(struct loop *l, uint64_t now)
{
	uint64_t deadline = 0;
	int flushing, down = agent_conns_shutdown(&flushing);

	l->npolled = agent_conns_count();
	if (ensure_pfds(FIXED_PFDS + l->npolled) != 0)
		return -2;
	pfds[0].fd = sigpipe_fd[0];
	pfds[0].events = POLLIN;
	pfds[1].fd = l->ifd;
	pfds[1].events = POLLIN;
	pfds[2].fd = (l->paused_until || down) ? -1 : l->cfg->listen_fd;
	pfds[2].events = POLLIN;
	pfds[0].revents = pfds[1].revents = pfds[2].revents = 0;
	agent_conns_poll_set(pfds + FIXED_PFDS, &deadline);
	agent_min_deadline(&deadline, agent_state_deadline());
	agent_min_deadline(&deadline, l->paused_until);
	agent_min_deadline(&deadline, l->next_watch);
	agent_min_deadline(&deadline, l->shutdown_deadline);
	if (deadline == 0)
		return -1;
	if (deadline <= now)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* What poll reported: signals, the socket watch, new connections, then the polled connections.
 * -1 to go on, else the exit status. */
static int
loop_events(struct loop *l, uint64_t now)
{
	int code;

	if (pfds[0].revents && (code = handle_signals(l->cfg, &l->unlink_sock)) >= 0)
		return code;
	if (l->ifd >= 0 && pfds[1].revents) {
		watch_drain(l->ifd);
		if (!sock_is_ours(l->cfg)) {
			/* Not ours any more: someone else's socket may sit there now, leave it. */
			ak_warn("socket %s removed or replaced: locking and exiting", l->cfg->sock_path);
			return 0;
		}
	}
	if (pfds[2].fd >= 0 && pfds[2].revents)
		l->paused_until = agent_conns_accept(l->cfg->listen_fd, now);
	/* Connections accepted just now are past the pollfd range: they are served next round. */
	agent_conns_serve(pfds + FIXED_PFDS, l->npolled, now);
	return -1;
}

/* Lock, close every connection and, when it is still the one we bound, remove the socket. */
static void
loop_close(struct loop *l)
{
	agent_state_lock("exit");
	agent_conns_free();
	free(pfds);
	pfds = NULL;
	cappfds = 0;
	if (l->ifd >= 0)
		close(l->ifd);
	if (l->unlink_sock && !l->cfg->activated && sock_is_ours(l->cfg))
		unlink(l->cfg->sock_path);
	close(l->cfg->listen_fd);
}

int
agent_server_run(const struct agent_server_cfg *cfg)
{
	struct loop l = { .cfg = cfg, .ifd = -1 };
	int code, timeout;

	if ((code = loop_open(&l)) >= 0)
		goto out;
	for (;;) {
		if ((code = loop_timers(&l, ak_now_ms())) >= 0)
			break;
		if ((timeout = loop_poll_set(&l, ak_now_ms())) == -2) {
			ak_error("out of memory");
			code = 1;
			break;
		}
		if (poll(pfds, FIXED_PFDS + l.npolled, timeout) < 0) {
			if (errno == EINTR)
				continue;
			ak_error("poll: %s", strerror(errno));
			code = 1;
			break;
		}
		if ((code = loop_events(&l, ak_now_ms())) >= 0)
			break;
	}
out:
	loop_close(&l);
	return code;
}
