/* echo_server.c - akbench-echo: the floor for akbench. A poll() loop on one thread, like akagent's,
 * that answers every frame (uint32 big-endian length + bytes) with the same frame and does nothing
 * else. What akagent costs above this is its own work (decode, look up, encode).
 *
 * usage: akbench-echo SOCKET    (removes SOCKET on SIGTERM/SIGINT)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONN 1024
#define FRAME_MAX (256u * 1024 + 4)

struct conn {
	int fd;
	size_t in_len;		/* bytes buffered in in[] */
	size_t out_len, out_off;	/* pending echo in out[] when a write was short */
	uint8_t *in, *out;
};

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Flush pending output; 0 when all written, 1 when the socket is full, -1 on error. */
static int
conn_flush(struct conn *c)
{
	ssize_t w;

	while (c->out_off < c->out_len) {
		w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (w <= 0)
			return -1;
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read, and move every complete frame to the output. -1 closes the connection. */
static int
conn_read(struct conn *c)
{
	ssize_t r;
	size_t off = 0, flen;
	uint32_t len;

	r = recv(c->fd, c->in + c->in_len, FRAME_MAX - c->in_len, 0);
	if (r == -1)
		return (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	if (r == 0)
		return -1;
	c->in_len += (size_t)r;
	while (c->in_len - off >= 4) {
		len = (uint32_t)c->in[off] << 24 | (uint32_t)c->in[off + 1] << 16 |
		    (uint32_t)c->in[off + 2] << 8 | c->in[off + 3];
		if (len == 0 || len > FRAME_MAX - 4)
			return -1;
		flen = 4 + (size_t)len;
		if (c->in_len - off < flen)
			break;
		if (c->out_len + flen > FRAME_MAX)
			break;	/* the client is not reading; wait for the output to drain */
		memcpy(c->out + c->out_len, c->in + off, flen);
		c->out_len += flen;
		off += flen;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return conn_flush(c) == -1 ? -1 : 0;
}

int
main(int argc, char **argv)
{
	static struct conn conns[MAX_CONN];
	static struct pollfd pfd[MAX_CONN + 1];
	static int slot[MAX_CONN + 1];
	struct sockaddr_un sun;
	struct sigaction sa;
	int lfd, i, n, np, fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: akbench-echo SOCKET\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, argv[1]);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(lfd, 128) == -1) {
		fprintf(stderr, "akbench-echo: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (i = 0; i < MAX_CONN; i++)
		conns[i].fd = -1;

	while (!quit) {
		/* only live connections go to poll(): a trivial server should cost nothing per idle slot */
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0, np = 1; i < MAX_CONN; i++) {
			if (conns[i].fd == -1)
				continue;
			pfd[np].fd = conns[i].fd;
			pfd[np].events = conns[i].out_len ? POLLOUT : POLLIN;
			pfd[np].revents = 0;
			slot[np++] = i;
		}
		if ((n = poll(pfd, (nfds_t)np, -1)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
				for (i = 0; i < MAX_CONN && conns[i].fd != -1; i++)
					;
				if (i == MAX_CONN || (conns[i].in = malloc(FRAME_MAX)) == NULL ||
				    (conns[i].out = malloc(FRAME_MAX)) == NULL) {
					if (i < MAX_CONN) {
						free(conns[i].in);
						conns[i].in = NULL;
					}
					close(fd);
					continue;
				}
				conns[i].fd = fd;
			}
		}
		for (i = 1; i < np; i++) {
			struct conn *c = &conns[slot[i]];
			short re = pfd[i].revents;

			if (re & POLLOUT) {
				if (conn_flush(c) == -1)
					conn_close(c);
			} else if (re & (POLLIN | POLLHUP | POLLERR)) {
				if (conn_read(c) == -1)
					conn_close(c);
			}
		}
	}
	unlink(argv[1]);
	return 0;
}
