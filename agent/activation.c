/* activation.c - take a listening socket handed over by systemd (or systemd-socket-activate).
 *
 * The protocol is small enough to do without libsystemd: LISTEN_PID names the process meant to take the
 * descriptors, LISTEN_FDS how many start at fd 3, LISTEN_FDNAMES their names. The socket still gets
 * every check a socket we bind ourselves gets: a Unix stream socket that is listening, a path in a
 * directory that is ours and 0700, the file itself ours (and made 0600); and server.c checks SO_PEERCRED on every
 * connection as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_path.h"

#define LISTEN_FDS_START 3

static void
forget_env(void)
{
	/* A command the agent runs must not believe these descriptors are meant for it. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

static int
env_number(const char *name, long *out)
{
	const char *v = getenv(name);
	char *end;

	if (v == NULL || v[0] == '\0')
		return -1;
	errno = 0;
	*out = strtol(v, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -1;
}

int
agent_activation_socket(char *path, size_t pathlen, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	struct stat sb;
	char dir[AK_PATH_MAX], why[AK_PATH_MAX + 128];
	long pid, nfds;
	int fd = LISTEN_FDS_START, v, flags;
	socklen_t vlen;

	if (env_number("LISTEN_PID", &pid) != 0 || pid != (long)getpid())
		return -1; /* not for us (or not activated at all): bind our own socket */
	if (env_number("LISTEN_FDS", &nfds) != 0 || nfds != 1) {
		forget_env();
		fprintf(stderr, "akagent: socket activation: expected exactly one socket (LISTEN_FDS)\n");
		return -2;
	}
	forget_env();
	if (fstat(fd, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
		fprintf(stderr, "akagent: socket activation: fd %d is not a socket\n", fd);
		return -2;
	}
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vlen) != 0 || v != AF_UNIX) {
		fprintf(stderr, "akagent: socket activation: fd %d is not a Unix socket\n", fd);
		return -2;
	}
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) != 0 || v != SOCK_STREAM) {
		fprintf(stderr, "akagent: socket activation: fd %d is not a stream socket\n", fd);
		return -2;
	}
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) != 0 || v != 1) {
		fprintf(stderr, "akagent: socket activation: fd %d is not listening\n", fd);
		return -2;
	}
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) != 0 || salen <= sizeof(sa_family_t) ||
	    sa.sun_path[0] != '/' || strnlen(sa.sun_path, sizeof(sa.sun_path)) >= sizeof(sa.sun_path)) {
		/* An abstract or unnamed socket has no directory to check, and nothing to export. */
		fprintf(stderr, "akagent: socket activation: fd %d is not bound to a path\n", fd);
		return -2;
	}
	if ((size_t)snprintf(path, pathlen, "%s", sa.sun_path) >= pathlen ||
	    ak_path_dirname(path, dir, sizeof(dir)) != AK_OK) {
		fprintf(stderr, "akagent: socket activation: socket path too long\n");
		return -2;
	}
	why[0] = '\0';
	if (ak_path_secure_dir(dir, 0, why, sizeof(why)) != AK_OK) {
		fprintf(stderr, "akagent: refusing the activated socket: %s\n", why[0] ? why : dir);
		return -2;
	}
	if (lstat(path, &sb) != 0 || !S_ISSOCK(sb.st_mode) || sb.st_uid != geteuid()) {
		fprintf(stderr, "akagent: refusing the activated socket %s: not a socket of ours\n", path);
		return -2;
	}
	/* systemd's default SocketMode is 0666 (the unit asks 0600; systemd-socket-activate cannot): the
	 * 0700 directory already keeps others out, and the socket is made 0600 as akagent binds its own. */
	if ((sb.st_mode & 077) != 0 && chmod(path, 0600) != 0) {
		fprintf(stderr, "akagent: activated socket %s: chmod 0600: %s\n", path, strerror(errno));
		return -2;
	}
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	/* The server polls it: non-blocking; and no command we run inherits it. */
	if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		fprintf(stderr, "akagent: socket activation: %s\n", strerror(errno));
		return -2;
	}
	return fd;
}
