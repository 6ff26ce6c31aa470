/* conn.c - akagent's connections: accepting (peer check), reading frames, dispatching one request at a
 * time, flushing replies, and the per-connection timers. server.c's loop polls what these ask for.
 *
 * Each connection has a secure input buffer (requests may carry keys and secrets) and a secure output
 * buffer (replies carry secrets); both wipe what they consume. A connection answers one request at a
 * time: the next frame is taken only once the previous reply is flushed, which also bounds memory.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_proto.h"

#define READ_MIN 1024
#define READ_MAX 65536
#define ACCEPT_BATCH 64

struct conn {
	int fd;
	struct ak_buf *in;      /* secure: requests (UNLOCK keys, ADD secrets) */
	struct ak_buf *out;     /* secure: replies (profiles) */
	uint64_t last_active;   /* accept or last request (ms) */
	uint64_t msg_start;     /* first byte of the pending partial request (ms), 0 = none */
	uint64_t out_since;     /* reply queued or last write progress (ms) */
	uint64_t hold_until;    /* parked until (ms), 0 = not parked */
	int pending;            /* its keystore write is under way: the reply comes later */
	int eof;                /* the peer will send nothing more */
	int closing;            /* close once the reply is flushed */
	int dead;
	uint64_t confirm_id;    /* parked while a confirmation runs (confirm.c); the request stays in in */
	struct agent_peer peer; /* for the usage log */
	int exe_read;           /* peer.exe looked up (at the first request that may be logged) */
};

static struct conn **conns;
static size_t nconns, capconns;
static struct ak_buf *req;          /* one request's payload, copied out of its frame */
static struct conn *shutdown_conn;  /* the connection that asked us to exit, until its OK is out */
static int shutdown_req;

void
agent_min_deadline(uint64_t *d, uint64_t t)
{
	if (t != 0 && (*d == 0 || t < *d))
		*d = t;
}

/* Best effort: tell a refused peer why, without ever blocking on it. */
static void
send_error_and_close(int fd, enum ak_err e)
{
	struct ak_buf *b = ak_buf_new(256);

	if (b != NULL && ak_proto_begin(b, AK_MSG_ERROR) == AK_OK &&
	    ak_proto_put_error(b, e, NULL) == AK_OK && ak_proto_finish(b, 256) == AK_OK)
		(void)!send(fd, ak_buf_ptr(b), ak_buf_len(b), MSG_NOSIGNAL | MSG_DONTWAIT);
	ak_buf_free(b);
	close(fd);
}

static void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->pending)
		agent_dispatch_forget(&c->peer);
	if (c->fd >= 0)
		close(c->fd);
	agent_confirm_cancel(c->confirm_id); /* kills its askpass */
	ak_buf_free(c->in);
	ak_buf_free(c->out);
	free(c->peer.exe);
	if (c == shutdown_conn)
		shutdown_conn = NULL;
	free(c);
}

/* Takes peer->exe (freed with the connection, or here on failure). */
static int
conn_add(int fd, uint64_t now, struct agent_peer *peer)
{
	struct conn *c;

	if (nconns == capconns) {
		size_t ncap = capconns ? capconns * 2 : 64;
		struct conn **nc = realloc(conns, ncap * sizeof(*nc));

		if (nc == NULL)
			goto fail;
		conns = nc;
		capconns = ncap;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->peer = *peer;
	peer->exe = NULL;
	c->fd = fd;
	c->in = ak_buf_new_secure(AK_PROTO_MAX_REQUEST + 4);
	c->out = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	if (c->in == NULL || c->out == NULL) {
		c->fd = -1; /* the caller closes fd */
		conn_free(c);
		return -1;
	}
	c->last_active = now;
	conns[nconns++] = c;
	return 0;
fail:
	free(peer->exe);
	peer->exe = NULL;
	return -1;
}

static void
queue_error(struct conn *c, enum ak_err e, uint64_t now)
{
	if (ak_proto_begin(c->out, AK_MSG_ERROR) != AK_OK ||
	    ak_proto_put_error(c->out, e, NULL) != AK_OK ||
	    ak_proto_finish(c->out, AK_PROTO_MAX_REPLY) != AK_OK)
		ak_buf_reset(c->out);
	c->out_since = now;
	c->closing = 1;
}

/* The peer's executable, NULL when unreadable (another user's process, e.g. root's). Looked up once,
 * at the connection's first request that may be logged, while its sender waits for the answer, so the
 * pid is normally still the process that connected (read after the peer is gone, it may have been
 * reused). STATUS and LIST (either form), which most connections send alone or first, never need
 * it: a readlink was a good part of what a new connection cost. */
static char *
peer_exe(pid_t pid)
{
	char link[64], path[AK_USE_EXE_MAX + 1];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%ld/exe", (long)pid);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return NULL;
	path[n] = '\0';
	return strdup(path);
}

/* Send a reply given by reference (the cached LIST reply) straight from where it is; what the socket
 * does not take now is copied into c->out, since the reference does not outlive this request. */
static int
conn_send_ref(struct conn *c, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			c->dead = 1;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (len > 0 && ak_buf_put(c->out, p, len) != AK_OK) {
		c->dead = 1;
		return -1;
	}
	return 0;
}

/* Take the next complete frame from c->in and dispatch it. Returns 1 if something happened (a reply
 * was queued or the connection was parked), 0 if no complete frame is there. */
static int
conn_next_frame(struct conn *c, uint64_t now)
{
	struct agent_result res;
	const uint8_t *p;
	size_t flen = 0, need = 0;
	uint8_t type;
	enum ak_err r;

	r = ak_proto_frame(c->in, AK_PROTO_MAX_REQUEST, &flen, &need);
	if (r == AK_ERR_TRUNCATED) {
		if (ak_buf_len(c->in) == 0)
			c->msg_start = 0;
		else if (c->msg_start == 0)
			c->msg_start = now;
		return 0;
	}
	if (r != AK_OK || flen < 5) {
		/* Oversized or zero-length: answer, then hang up without reading the rest. */
		ak_debug("bad frame: %s", ak_strerror(r));
		ak_buf_reset(c->in);
		c->msg_start = 0;
		queue_error(c, r == AK_ERR_TOO_LARGE ? AK_ERR_TOO_LARGE : AK_ERR_BAD_MESSAGE, now);
		return 1;
	}
	p = ak_buf_ptr(c->in);
	type = p[4];
	if (type == AK_MSG_UNLOCK) {
		uint64_t gate = agent_state_unlock_gate();

		/* Rate limit: no UNLOCK from anyone before the failure delay ends. */
		if (gate > now) {
			c->hold_until = gate;
			return 1;
		}
	}
	ak_buf_reset(req);
	if (ak_buf_put(req, p + 5, flen - 5) != AK_OK) {
		ak_buf_reset(c->in);
		queue_error(c, AK_ERR_NOMEM, now);
		return 1;
	}
	c->last_active = now;
	if (!c->exe_read && type != AK_MSG_STATUS && type != AK_MSG_LIST &&
	    type != AK_MSG_LIST_PACKED) {
		c->peer.exe = peer_exe(c->peer.pid);
		c->exe_read = 1;
	}
	agent_dispatch(type, req, c->out, &res, &c->peer);
	ak_buf_reset(req); /* wipe: it may have held a key or a secret */
	if (res.confirm_id != 0) {
		/* Parked, the request kept in c->in: it runs again with the confirmation's verdict. */
		c->confirm_id = res.confirm_id;
		return 1;
	}
	ak_buf_consume(c->in, flen); /* wipes the request bytes in the connection buffer */
	c->msg_start = ak_buf_len(c->in) ? now : 0;
	if (res.pending) {
		/* Parked, like a hold, until agent_conns_writes_done brings its reply. */
		c->pending = 1;
		return 1;
	}
	c->out_since = now;
	if (res.ref != NULL && conn_send_ref(c, res.ref, res.ref_len) != 0)
		return 1;
	if (res.close || (ak_buf_len(c->out) == 0 && res.ref == NULL))
		c->closing = 1;
	if (res.hold_until != 0)
		c->hold_until = res.hold_until;
	if (res.shutdown) {
		/* Lock now; exit once this OK is flushed (or after a short grace). */
		agent_state_lock("shutdown requested");
		shutdown_req = 1;
		shutdown_conn = c;
		c->closing = 1;
	}
	return 1;
}

/* Write what we can. Returns -1 when the connection died. */
static int
conn_flush(struct conn *c, uint64_t now)
{
	while (ak_buf_len(c->out) > 0) {
		ssize_t n = send(c->fd, ak_buf_ptr(c->out), ak_buf_len(c->out), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			c->dead = 1;
			return -1;
		}
		ak_buf_consume(c->out, (size_t)n); /* wipes the sent reply bytes */
		c->out_since = now;
	}
	return 0;
}

/* Move the connection forward as far as it can go without blocking. */
static void
conn_progress(struct conn *c, uint64_t now)
{
	while (!c->dead) {
		if (c->hold_until != 0 || c->confirm_id != 0 || c->pending)
			return;
		if (ak_buf_len(c->out) > 0) {
			if (conn_flush(c, now) != 0 || ak_buf_len(c->out) > 0)
				return;
		}
		if (c->closing) {
			c->dead = 1;
			return;
		}
		if (!conn_next_frame(c, now))
			break;
	}
	/* Nothing queued and no complete request: a peer that sent EOF is done. */
	if (!c->dead && c->eof)
		c->dead = 1;
}

static void
conn_read(struct conn *c, uint64_t now)
{
	for (;;) {
		size_t room = ak_buf_max(c->in) - ak_buf_len(c->in);
		size_t want = READ_MIN, need = 0, flen;
		uint8_t *p;
		ssize_t n;

		/* Read about what the pending frame still needs: most requests are a few bytes, and
		 * every connection's buffer comes out of locked memory. */
		if (ak_proto_frame(c->in, AK_PROTO_MAX_REQUEST, &flen, &need) == AK_ERR_TRUNCATED &&
		    need > ak_buf_len(c->in) && need - ak_buf_len(c->in) > want)
			want = need - ak_buf_len(c->in);
		if (want > READ_MAX)
			want = READ_MAX;
		if (want > room)
			want = room;

		if (want == 0)
			break;
		if (ak_buf_reserve(c->in, want, &p) != AK_OK) {
			c->dead = 1;
			return;
		}
		n = read(c->fd, p, want);
		if (n < 0) {
			ak_buf_unreserve(c->in, want);
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = 1;
			break;
		}
		ak_buf_unreserve(c->in, want - (size_t)n);
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if ((size_t)n < want)
			break;
	}
	if (!c->dead)
		conn_progress(c, now);
}

static uint64_t
conn_deadline(const struct conn *c)
{
	if (c->confirm_id != 0)
		return agent_confirm_deadline(c->confirm_id);
	if (c->hold_until != 0)
		return c->hold_until;
	if (ak_buf_len(c->out) > 0)
		return c->out_since + AGENT_STALL_MS;
	if (ak_buf_len(c->in) > 0)
		return (c->msg_start ? c->msg_start : c->last_active) + AGENT_STALL_MS;
	return c->last_active + AGENT_IDLE_CONN_MS;
}

static void
conn_timers(struct conn *c, uint64_t now)
{
	/* A pending write has its own bound (the keystore lock timeout): no timer here. */
	if (c->dead || c->pending || now < conn_deadline(c))
		return;
	if (c->confirm_id != 0) {
		enum ak_err v;
		const char *detail;

		if (!agent_confirm_take(c->confirm_id, now, &v, &detail))
			return;
		c->confirm_id = 0;
		agent_dispatch_verdict(v, detail);
		conn_progress(c, now); /* runs the kept request with the verdict */
		agent_dispatch_verdict_clear(); /* never left for another request */
		return;
	}
	if (c->hold_until != 0) {
		c->hold_until = 0;
		conn_progress(c, now);
		return;
	}
	ak_debug("dropping %s client", ak_buf_len(c->in) || ak_buf_len(c->out) ? "stalled" : "idle");
	c->dead = 1;
}

size_t
agent_conns_compact(void)
{
	size_t i, j, freed = 0;

	for (i = j = 0; i < nconns; i++) {
		if (conns[i]->dead) {
			conn_free(conns[i]);
			freed++;
		} else
			conns[j++] = conns[i];
	}
	nconns = j;
	return freed;
}

/* Fills *peer (pid, uid; exe is looked up later) for an allowed peer. */
static int
peer_allowed(int fd, struct agent_peer *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	memset(peer, 0, sizeof(*peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return 0;
	if (cr.uid == getuid() || cr.uid == 0) {
		peer->pid = cr.pid;
		peer->uid = cr.uid;
		return 1;
	}
	ak_warn("refused a connection from uid %lu", (unsigned long)cr.uid);
	return 0;
}

uint64_t
agent_conns_accept(int lfd, uint64_t now)
{
	int k;

	for (k = 0; k < ACCEPT_BATCH; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct agent_peer peer;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Stop polling the listener until a connection closes or the pause ends. */
				ak_warn("accept: %s; pausing", strerror(errno));
				return now + AGENT_ACCEPT_PAUSE_MS;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				ak_warn("accept: %s", strerror(errno));
			return 0;
		}
		if (!peer_allowed(fd, &peer)) {
			send_error_and_close(fd, AK_ERR_DENIED);
			continue;
		}
		if (conn_add(fd, now, &peer) != 0) {
			ak_warn("out of memory for a connection");
			send_error_and_close(fd, AK_ERR_NOMEM);
			return now + AGENT_ACCEPT_PAUSE_MS;
		}
		/* Clients send their first request right after connecting, and it is often there by the
		 * time we accept: serving it now saves a poll round (a read that finds nothing costs less). */
		conn_read(conns[nconns - 1], now);
	}
	return 0;
}

int
agent_conns_init(void)
{
	if (req == NULL && (req = ak_buf_new_secure(AK_PROTO_MAX_REQUEST)) == NULL)
		return -1;
	agent_dispatch_replies_by_ref();
	return 0;
}

void
agent_conns_free(void)
{
	size_t i;

	for (i = 0; i < nconns; i++)
		conn_free(conns[i]);
	nconns = 0;
	free(conns);
	conns = NULL;
	capconns = 0;
	ak_buf_free(req);
	req = NULL;
}

size_t
agent_conns_count(void)
{
	return nconns;
}

void
agent_conns_timers(uint64_t now)
{
	size_t i;

	for (i = 0; i < nconns; i++)
		conn_timers(conns[i], now);
}

int
agent_conns_shutdown(int *flushing)
{
	*flushing = shutdown_conn != NULL;
	return shutdown_req;
}

void
agent_conns_poll_set(struct pollfd *pf, uint64_t *deadline)
{
	size_t i;

	for (i = 0; i < nconns; i++) {
		struct conn *c = conns[i];

		pf[i].fd = c->fd;
		pf[i].revents = 0;
		if (c->pending) {
			pf[i].events = 0; /* waiting for its write: only hang-ups */
			continue;
		}
		if (c->hold_until != 0 || c->confirm_id != 0)
			pf[i].events = 0; /* parked: only hang-ups */
		else if (ak_buf_len(c->out) > 0)
			pf[i].events = POLLOUT;
		else
			pf[i].events = POLLIN;
		agent_min_deadline(deadline, conn_deadline(c));
	}
}

void
agent_conns_serve(const struct pollfd *pf, size_t n, uint64_t now)
{
	size_t i;

	for (i = 0; i < n && i < nconns; i++) {
		struct conn *c = conns[i];
		short re = pf[i].revents;

		if (re == 0 || c->dead)
			continue;
		if (re & (POLLERR | POLLNVAL)) {
			c->dead = 1;
			continue;
		}
		if (c->hold_until != 0 || c->confirm_id != 0 || c->pending) {
			if (re & POLLHUP)
				c->dead = 1; /* conn_free cancels a confirmation */
			continue;
		}
		if (re & POLLOUT)
			conn_progress(c, now);
		if (!c->dead && (re & (POLLIN | POLLHUP)))
			conn_read(c, now);
	}
}

void
agent_conns_writes_done(uint64_t now)
{
	struct agent_write_job *j;

	while ((j = agent_writer_take()) != NULL) {
		const struct agent_peer *w = agent_write_job_waiter(j);
		struct agent_result res;
		struct conn *c = NULL;
		size_t i;

		for (i = 0; w != NULL && i < nconns; i++)
			if (&conns[i]->peer == w && !conns[i]->dead) {
				c = conns[i];
				break;
			}
		agent_dispatch_write_done(j, c != NULL ? c->out : NULL, &res);
		if (c == NULL)
			continue;
		c->pending = 0;
		c->out_since = now;
		c->last_active = now;
		if (res.close || ak_buf_len(c->out) == 0)
			c->closing = 1;
		conn_progress(c, now);
	}
}
