/* start.c - akagent start-up: hardening, the socket, daemonising, exports, CMD mode.
 *
 * Start-up order matters:
 *   1. hardening before anything else (no core dumps, not dumpable, umask 077, SIGPIPE ignored);
 *   2. the socket directory is created and verified, then "<dir>/agent.lock" is flock'ed so that two
 *      concurrent starts cannot both bind;
 *   3. an agent already answering STATUS on the socket wins: print its exports and exit 0;
 *   4. bind + listen, then fork; the child installs its signal handlers before it tells the parent it
 *      is ready, so the socket is never left behind by a signal arriving in that window; the parent
 *      prints the exports and exits. Secure memory is allocated (and mlocked) only in the child.
 * Socket activation (activation.c) skips 2-4: the socket is systemd's, and the agent stays in the
 * foreground as its service.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ak_client.h"
#include "ak_log.h"
#include "ak_path.h"
#include "ak_shell.h"
#include "ak_smem.h"

static struct rlimit saved_core, saved_nofile;
static int have_saved_core, have_saved_nofile;
static mode_t saved_umask;

/* Hardening: first thing in main. The old core limit and umask are kept for a CMD child. */
void
agent_harden(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &saved_core) == 0) {
		have_saved_core = 1;
		/* Soft limit 0 (the hard limit stays, so the command we run can get cores back). */
		rl = saved_core;
		rl.rlim_cur = 0;
		(void)setrlimit(RLIMIT_CORE, &rl);
	} else {
		rl.rlim_cur = rl.rlim_max = 0;
		(void)setrlimit(RLIMIT_CORE, &rl);
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	saved_umask = umask(077);
	signal(SIGPIPE, SIG_IGN);
	/* Room for many clients: the soft descriptor limit is often 1024. */
	if (getrlimit(RLIMIT_NOFILE, &saved_nofile) == 0) {
		have_saved_nofile = 1;
		rl = saved_nofile;
		if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536)
			rl.rlim_cur = 65536;
		else
			rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur > saved_nofile.rlim_cur)
			(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Undo what a command should not inherit (before execvp). */
static void
unharden_for_exec(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD, SIGPIPE };
	sigset_t none;
	size_t i;

	if (have_saved_core)
		(void)setrlimit(RLIMIT_CORE, &saved_core);
	if (have_saved_nofile)
		(void)setrlimit(RLIMIT_NOFILE, &saved_nofile);
	umask(saved_umask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int
agent_print(const struct ak_buf *b)
{
	return fwrite(ak_buf_ptr(b), 1, ak_buf_len(b), stdout) == ak_buf_len(b) && fflush(stdout) == 0 ? 0 : -1;
}

/* The keystore named with -f (absolute), exported as AKCTL_KEYSTORE with the agent's variables: akctl
 * never takes the agent's keystore path for unlocking, so the user's environment carries it. */
static const char *export_store;

/* The form ssh-agent prints, which scripts parse (AKAGENT_PID=N unquoted; ak_shell_agent_export), then,
 * after -f, AKCTL_KEYSTORE as akctl env exports a variable. */
static int
print_exports(enum ak_shell sh, const char *sock, long pid)
{
	struct ak_buf *b = ak_buf_new(4 * AK_PATH_MAX + 256);
	char pids[32];
	int ret = -1;

	if (b == NULL)
		goto out;
	snprintf(pids, sizeof(pids), "%ld", pid);
	if (ak_shell_agent_export(b, sh, "AKAGENT_SOCK", sock, 1) == AK_OK &&
	    ak_shell_agent_export(b, sh, "AKAGENT_PID", pids, 0) == AK_OK &&
	    (export_store == NULL || ak_shell_export(b, sh, "AKCTL_KEYSTORE", export_store) == AK_OK))
		ret = agent_print(b);
out:
	ak_buf_free(b);
	if (ret != 0)
		fprintf(stderr, "akagent: cannot print the exports\n");
	return ret;
}

enum ak_err
agent_probe(const char *path, long *pid, struct ak_client **clp, char *detail, size_t detaillen)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	enum ak_err r;

	if (clp != NULL)
		*clp = NULL;
	memset(&st, 0, sizeof(st));
	/* Plain buffers: STATUS carries no secret, and secure memory is only ever allocated in the
	 * daemonised child (mlock is not inherited across fork). */
	if ((r = ak_client_connect(path, AK_CLIENT_PLAIN, &cl, detail, detaillen)) != AK_OK)
		return r;
	ak_client_set_timeout(cl, AGENT_CLIENT_TIMEOUT_S);
	if ((r = ak_client_status(cl, &st)) != AK_OK) {
		r = AK_ERR_BAD_MESSAGE; /* it accepted but did not answer like an agent */
		goto out;
	}
	*pid = (long)st.pid;
	/* A running agent may serve another keystore than -f names: then exporting it would pair the
	 * agent with the wrong file. */
	if (export_store != NULL && (st.store_path == NULL || strcmp(st.store_path, export_store) != 0)) {
		fprintf(stderr, "akagent: the running agent serves %s, not %s: AKCTL_KEYSTORE not set\n",
		    st.store_path != NULL ? st.store_path : "another keystore", export_store);
		export_store = NULL;
	}
	if (clp != NULL) {
		*clp = cl;
		cl = NULL;
	}
out:
	ak_status_clear(&st);
	ak_client_close(cl);
	return r;
}

/* The socket path (absolute: it is exported to other directories) and its directory. */
static int
resolve_socket(const struct agent_opts *o, char *path, size_t len, char *dir, size_t dirlen)
{
	struct sockaddr_un sa;
	enum ak_err r;

	if (o->sock_opt == NULL) {
		if ((r = ak_path_default_socket(path, len)) != AK_OK)
			goto fail;
	} else if (o->sock_opt[0] == '/') {
		if ((size_t)snprintf(path, len, "%s", o->sock_opt) >= len)
			goto toolong;
	} else {
		char cwd[AK_PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "akagent: getcwd: %s\n", strerror(errno));
			return -1;
		}
		if ((size_t)snprintf(path, len, "%s/%s", cwd, o->sock_opt) >= len)
			goto toolong;
	}
	if (strlen(path) >= sizeof(sa.sun_path))
		goto toolong;
	if ((r = ak_path_dirname(path, dir, dirlen)) != AK_OK)
		goto fail;
	return 0;
toolong:
	fprintf(stderr, "akagent: socket path too long (at most %zu bytes)\n", sizeof(sa.sun_path) - 1);
	return -1;
fail:
	fprintf(stderr, "akagent: socket path: %s\n", ak_strerror(r));
	return -1;
}

static int
take_lock(const char *dir)
{
	char path[AK_PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/agent.lock", dir) >= sizeof(path)) {
		fprintf(stderr, "akagent: lock path too long\n");
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		fprintf(stderr, "akagent: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		fprintf(stderr, "akagent: lock %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind and listen at path (removing a stale socket first). Fills *dev and *ino of the new socket. */
static int
bind_socket(const char *path, int stale, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un sa;
	struct stat sb;
	int fd = -1;

	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			fprintf(stderr, "akagent: %s exists and is not a socket\n", path);
			return -1;
		}
		if (!stale)
			ak_warn("replacing unresponsive socket %s", path);
		if (unlink(path) != 0 && errno != ENOENT) {
			fprintf(stderr, "akagent: remove %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	/* umask 077 already makes it 0600; chmod says so explicitly. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	if (chmod(path, 0600) != 0 || listen(fd, SOMAXCONN) != 0 || lstat(path, &sb) != 0) {
		int saved = errno;

		unlink(path);
		errno = saved;
		goto fail;
	}
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	return fd;
fail:
	fprintf(stderr, "akagent: socket %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void
set_agent_env(const char *sock, long pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", pid);
	setenv("AKAGENT_SOCK", sock, 1);
	setenv("AKAGENT_PID", buf, 1);
	if (export_store != NULL)
		setenv("AKCTL_KEYSTORE", export_store, 1);
}

/* Run the command in a child with the variables set; we stay in the foreground serving it. */
static int
run_with_command(const struct agent_opts *o, struct agent_server_cfg *cfg, int lockfd)
{
	pid_t pid;

	if (agent_signals_init() != 0) {
		fprintf(stderr, "akagent: signals: %s\n", strerror(errno));
		return 1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "akagent: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(cfg->listen_fd);
		close(lockfd);
		agent_signals_close();
		unharden_for_exec();
		set_agent_env(cfg->sock_path, (long)getppid());
		execvp(o->cmd[0], o->cmd);
		fprintf(stderr, "akagent: %s: %s\n", o->cmd[0], strerror(errno));
		_exit(127);
	}
	close(lockfd);
	cfg->child = pid;
	return agent_server_run(cfg);
}

/* Fork into the background. Returns in the child (0) to run the server; the parent exits here. */
static int
daemonise(const struct agent_opts *o, const char *sock, int lockfd)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	sigset_t block, old;
	int ready[2], devnull;
	pid_t pid;
	size_t i;
	char c;
	ssize_t n;

	if (pipe2(ready, O_CLOEXEC) != 0) {
		fprintf(stderr, "akagent: pipe: %s\n", strerror(errno));
		exit(1);
	}
	/* Hold these until the child has its handlers, so none can kill it with the socket bound. */
	sigemptyset(&block);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "akagent: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(ready[1]);
		do
			n = read(ready[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			fprintf(stderr, "akagent: the agent failed to start\n");
			exit(1);
		}
		exit(print_exports(o->shell, sock, (long)pid) == 0 ? 0 : 1);
	}
	close(ready[0]);
	(void)setsid();
	if (agent_signals_init() != 0)
		_exit(1);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if ((devnull = open("/dev/null", O_RDWR)) >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	ak_log_use_syslog(1);
	(void)!chdir("/");
	/* Ready: the socket is bound and the handlers are in place. */
	if (write(ready[1], "1", 1) != 1)
		_exit(1);
	close(ready[1]);
	close(lockfd);
	return 0;
}

/* Socket activation: systemd (or systemd-socket-activate) holds the socket and started us for it. */
static int
run_activated(const struct agent_opts *o, struct agent_server_cfg *cfg, int lfd, const char *sock,
    const char *store)
{
	int code;

	if (o->cmd != NULL) {
		fprintf(stderr, "akagent: a socket-activated agent runs no command\n");
		return 2;
	}
	cfg->listen_fd = lfd;
	cfg->sock_path = sock;
	cfg->activated = 1;
	agent_state_init(store, o->lifetime_s, o->idle_s);
	if (agent_signals_init() != 0) {
		fprintf(stderr, "akagent: signals: %s\n", strerror(errno));
		return 1;
	}
	ak_info("socket-activated on %s", sock);
	code = agent_server_run(cfg);
	ak_smem_release_all();
	return code;
}

int
agent_start(const struct agent_opts *o)
{
	struct agent_server_cfg cfg;
	char sock[AK_PATH_MAX], dir[AK_PATH_MAX], store[AK_PATH_MAX], err[512];
	long pid = 0;
	int lockfd = -1, lfd = -1, expl = 0, code = 1;
	enum ak_err r;

	if ((r = ak_path_keystore(o->store_opt, store, sizeof(store), &expl)) != AK_OK) {
		fprintf(stderr, "akagent: keystore path: %s\n", ak_strerror(r));
		return 1;
	}
	if (o->store_opt != NULL)
		export_store = store;
	memset(&cfg, 0, sizeof(cfg));
	/* Started by systemd for its socket: serve that socket in the foreground, print nothing. */
	if ((lfd = agent_activation_socket(sock, sizeof(sock), &cfg.sock_dev, &cfg.sock_ino)) != -1)
		return lfd < 0 ? 1 : run_activated(o, &cfg, lfd, sock, store);
	if (resolve_socket(o, sock, sizeof(sock), dir, sizeof(dir)) != 0)
		return 1;
	err[0] = '\0';
	if ((r = ak_path_secure_dir(dir, 1, err, sizeof(err))) != AK_OK) {
		fprintf(stderr, "akagent: refusing to use %s: %s\n", dir, err[0] ? err : ak_strerror(r));
		return 1;
	}
	if ((lockfd = take_lock(dir)) < 0)
		return 1;

	/* One agent per socket: if one answers, it is the agent. Our directory is 0700, so only root
	 * could have put another user's there: refuse it rather than hand out its exports. */
	r = agent_probe(sock, &pid, NULL, err, sizeof(err));
	if (r == AK_ERR_UNTRUSTED_AGENT) {
		fprintf(stderr, "akagent: %s (%s)\n", ak_strerror(r), err);
		close(lockfd);
		return 1;
	}
	if (r == AK_OK) {
		close(lockfd);
		if (o->cmd != NULL) {
			unharden_for_exec();
			set_agent_env(sock, pid);
			execvp(o->cmd[0], o->cmd);
			fprintf(stderr, "akagent: %s: %s\n", o->cmd[0], strerror(errno));
			return 127;
		}
		return print_exports(o->shell, sock, pid) == 0 ? 0 : 1;
	}

	if ((lfd = bind_socket(sock, r == AK_ERR_NO_AGENT, &cfg.sock_dev, &cfg.sock_ino)) < 0) {
		close(lockfd);
		return 1;
	}
	cfg.listen_fd = lfd;
	cfg.sock_path = sock;
	agent_state_init(store, o->lifetime_s, o->idle_s);

	if (o->cmd != NULL) {
		code = run_with_command(o, &cfg, lockfd);
	} else if (o->foreground) {
		if (agent_signals_init() != 0) {
			fprintf(stderr, "akagent: signals: %s\n", strerror(errno));
			unlink(sock);
			return 1;
		}
		if (print_exports(o->shell, sock, (long)getpid()) != 0) {
			unlink(sock);
			return 1;
		}
		close(lockfd);
		ak_info("listening on %s", sock);
		code = agent_server_run(&cfg);
	} else {
		daemonise(o, sock, lockfd);
		ak_info("listening on %s", sock);
		code = agent_server_run(&cfg);
	}
	ak_smem_release_all();
	return code;
}
