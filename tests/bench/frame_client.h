/* frame_client.h - the client side both load tools share (akbench, akloadgen): a monotonic clock,
 * a blocking Unix-socket dial, and a non-blocking read of one length-prefixed reply frame
 * (u32 big-endian length, type, payload: akagent's and ssh-agent's framing alike). */
#ifndef AK_FRAME_CLIENT_H
#define AK_FRAME_CLIENT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t
fc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A connected socket, or -1 with a message on stderr prefixed by prog. */
static inline int
fc_dial(const char *prog, const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%s: socket path too long\n", prog);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "%s: connect %s: %s\n", prog, path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what is there into buf (max bytes, *have already filled). 1 when exactly one whole frame has
 * arrived, 0 if more is needed, -1 on error, EOF, a frame larger than max, or bytes past the frame
 * (one reply per request: extra bytes are a protocol error). */
static inline int
fc_recv_frame(int fd, uint8_t *buf, size_t max, size_t *have)
{
	uint32_t len;
	ssize_t r;

	for (;;) {
		r = recv(fd, buf + *have, max - *have, MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0)
			return -1;
		*have += (size_t)r;
		if (*have == max)
			break;
	}
	if (*have < 5)
		return 0;
	len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (len == 0 || len > max - 4)
		return -1;
	if (*have < 4 + (size_t)len)
		return 0;
	return *have == 4 + (size_t)len ? 1 : -1;
}

#endif
