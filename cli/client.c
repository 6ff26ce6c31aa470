/* client.c - every byte akctl exchanges with the agent goes through here.
 *
 * One blocking Unix-socket connection, one request at a time, 10 s send/receive timeouts so akctl
 * never hangs on a stuck agent. Request and reply buffers are secure (they carry keys and secrets)
 * and are wiped after every exchange and on close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_buf.h"
#include "ak_proto.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

#define CLIENT_TIMEOUT_S 10
/* An UNLOCK may be parked behind the agent's failed-unlock back-off (at most 8 s). */
#define CLIENT_UNLOCK_TIMEOUT_S 20
#define CLIENT_DETAIL_MAX 512

struct ak_client {
	int fd;
	int timeout_s;          /* as set on fd */
	struct ak_buf *req;
	struct ak_buf *rep;
	char detail[CLIENT_DETAIL_MAX];
};

static char sock_path[AK_PATH_MAX];

const char *
ak_client_socket_path(void)
{
	return sock_path;
}

const char *
ak_client_detail(const struct ak_client *cl)
{
	return cl != NULL ? cl->detail : "";
}

static void
set_timeout(int fd, int seconds)
{
	struct timeval tv = { seconds, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

enum ak_err
ak_client_connect(struct ak_client **out)
{
	struct sockaddr_un sun;
	struct ak_client *cl = NULL;
	size_t len;
	enum ak_err r;

	*out = NULL;
	if ((r = cli_secure_init()) != AK_OK)
		return r;
	if ((r = ak_path_client_socket(sock_path, sizeof(sock_path))) != AK_OK)
		return r;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	len = strlen(sock_path);
	if (len >= sizeof(sun.sun_path))
		return AK_ERR_NO_AGENT; /* no agent can be bound at a path this long */
	memcpy(sun.sun_path, sock_path, len + 1);

	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return AK_ERR_NOMEM;
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0) {
		r = AK_ERR_SYSTEM;
		goto out;
	}
	set_timeout(cl->fd, CLIENT_TIMEOUT_S);
	cl->timeout_s = CLIENT_TIMEOUT_S;
	if (connect(cl->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		/* ENOENT, ECONNREFUSED (stale socket), EACCES, ENOTDIR...: nobody we can talk to. */
		snprintf(cl->detail, sizeof(cl->detail), "%s", strerror(errno));
		r = AK_ERR_NO_AGENT;
		goto out;
	}
	cl->req = ak_buf_new_secure(AK_PROTO_MAX_REQUEST);
	cl->rep = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	if (cl->req == NULL || cl->rep == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	*out = cl;
	cl = NULL;
	r = AK_OK;
out:
	ak_client_close(cl);
	return r;
}

void
ak_client_close(struct ak_client *cl)
{
	if (cl == NULL)
		return;
	if (cl->fd >= 0)
		close(cl->fd);
	ak_buf_free(cl->req);
	ak_buf_free(cl->rep);
	free(cl);
}

/* Send cl->req (already finished) and read one reply frame into cl->rep, consuming its length and
 * type. An ERROR reply becomes its ak_err, its detail kept in cl->detail. *type is the reply type. */
static enum ak_err
transact(struct ak_client *cl, uint8_t *type, int timeout_s)
{
	const uint8_t *p;
	uint8_t *w;
	size_t left, frame_len, need, want;
	ssize_t n;
	enum ak_err r, e;
	char *detail = NULL;

	cl->detail[0] = '\0';
	ak_buf_reset(cl->rep);
	if (cl->timeout_s != timeout_s) {
		set_timeout(cl->fd, timeout_s);
		cl->timeout_s = timeout_s;
	}

	p = ak_buf_ptr(cl->req);
	left = ak_buf_len(cl->req);
	while (left > 0) {
		/* MSG_NOSIGNAL: an agent that went away is an error, not SIGPIPE. */
		n = send(cl->fd, p, left, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(cl->detail, sizeof(cl->detail), "sending: %s", strerror(errno));
			r = (errno == EAGAIN || errno == EWOULDBLOCK) ? AK_ERR_BUSY : AK_ERR_IO;
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	ak_buf_reset(cl->req); /* wipe the request now: it may have held a key */

	for (;;) {
		need = 0;
		r = ak_proto_frame(cl->rep, AK_PROTO_MAX_REPLY, &frame_len, &need);
		if (r == AK_OK)
			break;
		if (r != AK_ERR_TRUNCATED)
			goto out;
		/* Only one reply can arrive, so reading past the frame is harmless: ask for a page at
		 * least, to take small replies in one recv. */
		want = need > ak_buf_len(cl->rep) ? need - ak_buf_len(cl->rep) : 0;
		if (want < 4096)
			want = 4096;
		if (want > 1u << 20)
			want = 1u << 20; /* grow the buffer with what actually arrives */
		if ((r = ak_buf_reserve(cl->rep, want, &w)) != AK_OK)
			goto out;
		n = recv(cl->fd, w, want, 0);
		if (n <= 0) {
			ak_buf_unreserve(cl->rep, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0) {
				snprintf(cl->detail, sizeof(cl->detail), "agent closed the connection");
				r = AK_ERR_IO;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				snprintf(cl->detail, sizeof(cl->detail), "agent did not answer in %d s",
				    timeout_s);
				r = AK_ERR_BUSY;
			} else {
				snprintf(cl->detail, sizeof(cl->detail), "receiving: %s", strerror(errno));
				r = AK_ERR_IO;
			}
			goto out;
		}
		ak_buf_unreserve(cl->rep, want - (size_t)n);
	}
	/* One request in flight: the frame is all we hold. Drop the length, read the type. */
	if ((r = ak_buf_consume(cl->rep, 4)) != AK_OK || (r = ak_buf_get_u8(cl->rep, type)) != AK_OK)
		goto out;
	if (*type == AK_MSG_ERROR) {
		if ((r = ak_proto_get_error(cl->rep, &e, &detail)) != AK_OK)
			goto out;
		if (detail != NULL)
			cli_sanitize(detail, cl->detail, sizeof(cl->detail));
		r = e == AK_OK ? AK_ERR_INTERNAL : e;
		goto out;
	}
	r = AK_OK;
out:
	free(detail);
	ak_buf_reset(cl->req);
	return r;
}

/* Finish and send cl->req, whose building ended with r (an error there: nothing is sent), and read a
 * reply of type want into cl->rep; the caller parses it, then resets cl->rep. cl->req is wiped on every
 * path (it may have held a key or a secret), and cl->rep too on failure. */
static enum ak_err
request(struct ak_client *cl, enum ak_err r, uint8_t want, int timeout_s)
{
	uint8_t rt;

	if (r != AK_OK || (r = ak_proto_finish(cl->req, AK_PROTO_MAX_REQUEST)) != AK_OK)
		goto out;
	if ((r = transact(cl, &rt, timeout_s)) != AK_OK)
		goto out;
	r = rt == want ? AK_OK : AK_ERR_BAD_MESSAGE;
out:
	ak_buf_reset(cl->req);
	if (r != AK_OK)
		ak_buf_reset(cl->rep);
	return r;
}

/* A request expecting OK. Both buffers are wiped on return. */
static enum ak_err
request_ok(struct ak_client *cl, enum ak_err r, int timeout_s)
{
	r = request(cl, r, AK_MSG_OK, timeout_s);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_status(struct ak_client *cl, struct ak_status *st)
{
	enum ak_err r;

	memset(st, 0, sizeof(*st));
	r = request(cl, ak_proto_begin(cl->req, AK_MSG_STATUS), AK_MSG_STATUS_REPLY, CLIENT_TIMEOUT_S);
	if (r == AK_OK)
		r = ak_proto_get_status(cl->rep, st);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_unlock(struct ak_client *cl, const uint8_t *key, uint32_t lifetime)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_UNLOCK)) == AK_OK &&
	    (r = ak_buf_put_string(cl->req, key, key != NULL ? AK_KEY_BYTES : 0)) == AK_OK)
		r = ak_buf_put_u32(cl->req, lifetime);
	return request_ok(cl, r, CLIENT_UNLOCK_TIMEOUT_S); /* wipes cl->req: it held the key */
}

enum ak_err
ak_client_lock(struct ak_client *cl)
{
	return request_ok(cl, ak_proto_begin(cl->req, AK_MSG_LOCK), CLIENT_TIMEOUT_S);
}

void
ak_client_list_free(struct ak_list_entry *entries, uint32_t n)
{
	uint32_t i;

	if (entries == NULL)
		return;
	for (i = 0; i < n; i++)
		ak_list_entry_clear(&entries[i]);
	free(entries);
}

enum ak_err
ak_client_list(struct ak_client *cl, struct ak_list_entry **entries, uint32_t *n)
{
	struct ak_list_entry *e = NULL;
	uint32_t count = 0, i = 0;
	enum ak_err r;

	*entries = NULL;
	*n = 0;
	r = request(cl, ak_proto_begin(cl->req, AK_MSG_LIST), AK_MSG_LIST_REPLY, CLIENT_TIMEOUT_S);
	if (r != AK_OK)
		goto out;
	if ((r = ak_buf_get_u32(cl->rep, &count)) != AK_OK)
		goto out;
	/* Each entry takes far more than 8 bytes: a count the payload cannot hold is hostile. */
	if (count > AK_PROFILES_MAX || count > ak_buf_len(cl->rep) / 8) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (count > 0 && (e = calloc(count, sizeof(*e))) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < count; i++)
		if ((r = ak_proto_get_list_entry(cl->rep, &e[i])) != AK_OK)
			goto out;
	*entries = e;
	*n = count;
	e = NULL;
	r = AK_OK;
out:
	ak_client_list_free(e, i);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_get(struct ak_client *cl, const char *name, struct ak_profile **out)
{
	enum ak_err r;

	*out = NULL;
	if ((r = ak_proto_begin(cl->req, AK_MSG_GET)) == AK_OK)
		r = ak_buf_put_cstring(cl->req, name);
	if ((r = request(cl, r, AK_MSG_PROFILE_REPLY, CLIENT_TIMEOUT_S)) == AK_OK)
		r = ak_proto_get_profile(cl->rep, out);
	ak_buf_reset(cl->rep); /* held the secret */
	return r;
}

enum ak_err
ak_client_add(struct ak_client *cl, const struct ak_profile *p, int force)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_ADD)) == AK_OK &&
	    (r = ak_buf_put_u8(cl->req, force ? AK_ADD_FORCE : 0)) == AK_OK)
		r = ak_proto_put_profile(cl->req, p);
	return request_ok(cl, r, CLIENT_TIMEOUT_S); /* wipes cl->req: it held the secret */
}

enum ak_err
ak_client_remove(struct ak_client *cl, const char *name)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_REMOVE)) == AK_OK)
		r = ak_buf_put_cstring(cl->req, name);
	return request_ok(cl, r, CLIENT_TIMEOUT_S);
}

/* Same file? Paths are absolute but not resolved: compare the strings, then the inodes. */
static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (strcmp(a, b) == 0)
		return 1;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

enum ak_err
cli_agent_for_store(struct cli *c, struct ak_client **clp, struct ak_status *st, char *detail,
    size_t detaillen)
{
	struct ak_client *cl = NULL;
	enum ak_err r;

	*clp = NULL;
	memset(st, 0, sizeof(*st));
	if (detaillen > 0)
		detail[0] = '\0';
	if ((r = cli_store_path(c)) != AK_OK)
		return r;
	if ((r = ak_client_connect(&cl)) != AK_OK) {
		snprintf(detail, detaillen, "socket %s", sock_path);
		return r;
	}
	if ((r = ak_client_status(cl, st)) != AK_OK) {
		cli_sanitize(cl->detail, detail, detaillen);
		goto out;
	}
	if (st->store_path == NULL || st->store_path[0] != '/') {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (c->store_explicit) {
		if (!same_file(c->store, st->store_path)) {
			snprintf(detail, detaillen, "the agent at %s serves %s, not %s", sock_path,
			    st->store_path, c->store);
			r = AK_ERR_NO_AGENT;
			goto out;
		}
	} else if (strlen(st->store_path) < sizeof(c->store)) {
		/* No keystore was named: the running agent's is the one the user means. */
		memcpy(c->store, st->store_path, strlen(st->store_path) + 1);
	}
	*clp = cl;
	cl = NULL;
	r = AK_OK;
out:
	if (r != AK_OK)
		ak_status_clear(st);
	ak_client_close(cl);
	return r;
}

int
cli_fail_client(struct ak_client *cl, enum ak_err e, const char *context)
{
	if (e == AK_ERR_LOCKED) {
		fprintf(stderr, "akctl: %s: agent is locked: run 'akctl unlock'\n", context);
		return ak_err_exit_code(e);
	}
	if (e == AK_ERR_NO_AGENT) {
		fprintf(stderr, "akctl: %s: no agent reachable at %s (start one with: eval \"$(akagent)\")\n",
		    context, sock_path);
		return ak_err_exit_code(e);
	}
	return cli_fail(e, ak_client_detail(cl), "%s", context);
}

int
cli_agent_unlocked(struct cli *c, struct ak_client **clp)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[CLIENT_DETAIL_MAX];
	enum ak_err r;

	*clp = NULL;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "%s: keystore path", c->cmd);
	if (!c->store_explicit) {
		/* Fast path (env/get): skip STATUS; a locked agent answers the request with LOCKED. */
		if ((r = ak_client_connect(&cl)) != AK_OK)
			return cli_fail_client(cl, r, c->cmd);
		*clp = cl;
		return 0;
	}
	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (r == AK_ERR_NO_AGENT && detail[0] != '\0' && strncmp(detail, "socket ", 7) != 0)
		return cli_fail(r, detail, "%s", c->cmd);
	if (r == AK_ERR_NO_AGENT)
		return cli_fail_client(NULL, r, c->cmd);
	if (r != AK_OK)
		return cli_fail(r, detail, "%s", c->cmd);
	if (!st.unlocked) {
		ak_status_clear(&st);
		ak_client_close(cl);
		return cli_fail_client(NULL, AK_ERR_LOCKED, c->cmd);
	}
	ak_status_clear(&st);
	*clp = cl;
	return 0;
}
