/* client.c - the one protocol client (contract in ak_client.h).
 *
 * Connecting is where trust is decided: the default socket sits in a predictable place
 * (/tmp/akagent-$UID when XDG_RUNTIME_DIR is unset) that another user can create first, so its
 * directory is checked before connect() and the listening process's uid after it. Nothing is sent to
 * an agent that fails either check: a request may carry a key (UNLOCK) or a secret (ADD), and a reply
 * is trusted (exports are evaluated by a shell).
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
#include "ak_client.h"
#include "ak_path.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_util.h"

/* An UNLOCK may be parked behind the agent's failed-unlock back-off (at most 8 s). */
#define CLIENT_UNLOCK_TIMEOUT_S 20
/* The first read of a reply asks for this much, to take small replies (a GET's is a few hundred bytes)
 * in one recv; a larger one says its length in its first bytes and the rest is read to fit. Not more:
 * the buffer sits in the secure arena, and each further page it takes is one more page akctl locks. */
#define CLIENT_READ_MIN 1024u

struct ak_client {
	int fd;
	int timeout_s;          /* wanted for requests */
	int fd_snd_s, fd_rcv_s; /* SO_SNDTIMEO and SO_RCVTIMEO as set on fd (0: not yet) */
	struct ak_buf *req;
	struct ak_buf *rep;
	size_t frame_len;       /* of the reply in rep, once whole (0 before) */
	char path[AK_PATH_MAX];
	char detail[AK_CLIENT_DETAIL_MAX];
};

const char *
ak_client_path(const struct ak_client *cl)
{
	return cl != NULL ? cl->path : "";
}

const char *
ak_client_detail(const struct ak_client *cl)
{
	return cl != NULL ? cl->detail : "";
}

int
ak_client_fd(const struct ak_client *cl)
{
	return cl != NULL ? cl->fd : -1;
}

void
ak_client_set_timeout(struct ak_client *cl, int seconds)
{
	cl->timeout_s = seconds > 0 ? seconds : AK_CLIENT_TIMEOUT_S;
}

/* Each timeout is set where it is needed and only when it changes: sends (and connect) use the client's
 * timeout, a reply's wait the request's own (longer for UNLOCK and confirm-on-use). A system call each,
 * and akctl get used to make six of them. */
static void
send_timeout(struct ak_client *cl)
{
	struct timeval tv = { cl->timeout_s, 0 };

	if (cl->fd_snd_s == cl->timeout_s)
		return;
	(void)setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cl->fd_snd_s = cl->timeout_s;
}

static void
recv_timeout(struct ak_client *cl, int seconds)
{
	struct timeval tv = { seconds, 0 };

	if (cl->fd_rcv_s == seconds)
		return;
	(void)setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cl->fd_rcv_s = seconds;
}

/* The default socket's directory must be what akagent itself accepts: a real directory, ours, 0700.
 * A missing directory just means no agent. */
static enum ak_err
check_dir(const char *path, char *detail, size_t detaillen)
{
	char dir[AK_PATH_MAX], why[AK_PATH_MAX + 128];
	enum ak_err r;

	if ((r = ak_path_dirname(path, dir, sizeof(dir))) != AK_OK)
		return r;
	r = ak_path_secure_dir(dir, 0, why, sizeof(why));
	if (r == AK_OK)
		return AK_OK;
	if (r == AK_ERR_UNSAFE_PATH) {
		/* why names the directory and what is wrong ("owned by uid N, not by uid M"). */
		snprintf(detail, detaillen, "socket directory %s", why);
		return AK_ERR_UNTRUSTED_AGENT;
	}
	snprintf(detail, detaillen, "%s", why[0] != '\0' ? why : ak_strerror(r));
	return AK_ERR_NO_AGENT;
}

/* The listening process must run as us, or as root (who can read our memory anyway). */
static enum ak_err
check_peer(int fd, const char *path, char *detail, size_t detaillen)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
		snprintf(detail, detaillen, "%s: cannot read the agent's credentials", path);
		return AK_ERR_UNTRUSTED_AGENT;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		snprintf(detail, detaillen, "%s: the agent process runs as uid %lu, not as uid %lu", path,
		    (unsigned long)cred.uid, (unsigned long)geteuid());
		return AK_ERR_UNTRUSTED_AGENT;
	}
	return AK_OK;
}

enum ak_err
ak_client_connect(const char *path, unsigned flags, struct ak_client **out, char *detail, size_t detaillen)
{
	struct sockaddr_un sun;
	struct ak_client *cl = NULL;
	int is_default = 0;
	size_t len;
	char none[1];
	enum ak_err r;

	*out = NULL;
	if (detail == NULL || detaillen == 0) {
		detail = none; /* every message below is then cut to "" */
		detaillen = sizeof(none);
	}
	detail[0] = '\0';
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return AK_ERR_NOMEM;
	cl->fd = -1;
	cl->timeout_s = AK_CLIENT_TIMEOUT_S;
	if (path != NULL) {
		if (strlen(path) >= sizeof(cl->path)) {
			r = AK_ERR_TOO_LARGE;
			goto out;
		}
		memcpy(cl->path, path, strlen(path) + 1);
	} else if ((r = ak_path_client_socket(cl->path, sizeof(cl->path), &is_default)) != AK_OK) {
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	len = strlen(cl->path);
	if (len == 0 || len >= sizeof(sun.sun_path)) {
		snprintf(detail, detaillen, "%s: socket path too long", cl->path);
		r = AK_ERR_NO_AGENT; /* no agent can be bound at a path this long */
		goto out;
	}
	memcpy(sun.sun_path, cl->path, len + 1);
	if (is_default && (r = check_dir(cl->path, detail, detaillen)) != AK_OK)
		goto out;

	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0) {
		r = AK_ERR_SYSTEM;
		goto out;
	}
	send_timeout(cl); /* a full backlog blocks connect like a send */
	if (connect(cl->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		/* ENOENT, ECONNREFUSED (stale socket), EACCES, ENOTDIR...: nobody we can talk to. */
		snprintf(detail, detaillen, "%s: %s", cl->path, strerror(errno));
		r = AK_ERR_NO_AGENT;
		goto out;
	}
	if ((r = check_peer(cl->fd, cl->path, detail, detaillen)) != AK_OK)
		goto out;
	if (flags & AK_CLIENT_PLAIN) {
		cl->req = ak_buf_new(AK_PROTO_MAX_REQUEST);
		cl->rep = ak_buf_new(AK_PROTO_MAX_REPLY);
	} else {
		cl->req = ak_buf_new_secure(AK_PROTO_MAX_REQUEST);
		cl->rep = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	}
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

/* Raw frames ----------------------------------------------------------------------------------- */

static enum ak_err
send_all(struct ak_client *cl, const uint8_t *p, size_t left)
{
	ssize_t n;

	while (left > 0) {
		/* MSG_NOSIGNAL: an agent that went away is an error, not SIGPIPE. */
		n = send(cl->fd, p, left, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(cl->detail, sizeof(cl->detail), "sending: %s", strerror(errno));
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? AK_ERR_BUSY : AK_ERR_IO;
		}
		p += n;
		left -= (size_t)n;
	}
	return AK_OK;
}

enum ak_err
ak_client_send_frame(struct ak_client *cl, const uint8_t *frame, size_t len)
{
	cl->detail[0] = '\0';
	ak_buf_reset(cl->rep);
	cl->frame_len = 0;
	send_timeout(cl);
	return send_all(cl, frame, len);
}

/* ak_client_recv_frame with the receive timeout already set. */
static enum ak_err
recv_frame(struct ak_client *cl, int wait, const uint8_t **frame, size_t *len)
{
	uint8_t *w;
	size_t need, want;
	ssize_t n;
	enum ak_err r;

	*frame = NULL;
	*len = 0;
	for (;;) {
		need = 0;
		r = ak_proto_frame(cl->rep, AK_PROTO_MAX_REPLY, &cl->frame_len, &need);
		if (r == AK_OK)
			break;
		if (r != AK_ERR_TRUNCATED)
			return r;
		/* Only one reply can arrive, so reading past the frame is harmless (and caught below). */
		want = need > ak_buf_len(cl->rep) ? need - ak_buf_len(cl->rep) : 0;
		if (want < CLIENT_READ_MIN)
			want = CLIENT_READ_MIN;
		/* And at least the room the buffer already has: a reply no larger than one before it (a
		 * load tool's, a LIST's) then comes in one recv, not a first 1 KiB and then the rest. */
		if (want < ak_buf_spare(cl->rep))
			want = ak_buf_spare(cl->rep);
		if (want > 1u << 20)
			want = 1u << 20; /* grow the buffer with what actually arrives */
		if ((r = ak_buf_reserve(cl->rep, want, &w)) != AK_OK)
			return r;
		n = recv(cl->fd, w, want, wait ? 0 : MSG_DONTWAIT);
		if (n <= 0) {
			ak_buf_unreserve(cl->rep, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && !wait && (errno == EAGAIN || errno == EWOULDBLOCK))
				return AK_ERR_TRUNCATED;
			if (n == 0) {
				snprintf(cl->detail, sizeof(cl->detail), "agent closed the connection");
				return AK_ERR_IO;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				snprintf(cl->detail, sizeof(cl->detail), "agent did not answer in %d s",
				    cl->fd_rcv_s);
				return AK_ERR_BUSY;
			}
			snprintf(cl->detail, sizeof(cl->detail), "receiving: %s", strerror(errno));
			return AK_ERR_IO;
		}
		ak_buf_unreserve(cl->rep, want - (size_t)n);
	}
	if (ak_buf_len(cl->rep) != cl->frame_len) {
		snprintf(cl->detail, sizeof(cl->detail), "bytes after the reply");
		return AK_ERR_BAD_MESSAGE;
	}
	*frame = ak_buf_ptr(cl->rep);
	*len = cl->frame_len;
	return AK_OK;
}

enum ak_err
ak_client_recv_frame(struct ak_client *cl, int wait, const uint8_t **frame, size_t *len)
{
	if (wait)
		recv_timeout(cl, cl->timeout_s);
	return recv_frame(cl, wait, frame, len);
}

/* Requests ------------------------------------------------------------------------------------- */

/* Copy an agent's ERROR text, control bytes replaced: it ends up on a terminal. */
static void
keep_detail(struct ak_client *cl, const char *in)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < sizeof(cl->detail); i++) {
		unsigned char ch = (unsigned char)in[i];

		cl->detail[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	cl->detail[i] = '\0';
}

/* Send cl->req (already finished), read one reply frame into cl->rep and consume its length and
 * type. An ERROR reply becomes its ak_err, its detail kept in cl->detail. *type is the reply type. */
static enum ak_err
transact(struct ak_client *cl, uint8_t *type, int timeout_s)
{
	const uint8_t *frame;
	size_t len;
	enum ak_err r, e;
	char *detail = NULL;

	cl->detail[0] = '\0';
	ak_buf_reset(cl->rep);
	cl->frame_len = 0;
	/* The send has the client's timeout (a request is read as soon as it arrives); only the answer
	 * may take the request's longer one. */
	send_timeout(cl);
	recv_timeout(cl, timeout_s);
	r = send_all(cl, ak_buf_ptr(cl->req), ak_buf_len(cl->req));
	ak_buf_reset(cl->req); /* wipe the request now: it may have held a key */
	if (r != AK_OK)
		goto out;
	if ((r = recv_frame(cl, 1, &frame, &len)) != AK_OK)
		goto out;
	if ((r = ak_buf_consume(cl->rep, 4)) != AK_OK || (r = ak_buf_get_u8(cl->rep, type)) != AK_OK)
		goto out;
	if (*type == AK_MSG_ERROR) {
		if ((r = ak_proto_get_error(cl->rep, &e, &detail)) != AK_OK)
			goto out;
		if (detail != NULL)
			keep_detail(cl, detail);
		r = e == AK_OK ? AK_ERR_INTERNAL : e;
		goto out;
	}
	r = AK_OK;
out:
	free(detail);
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
	r = request(cl, ak_proto_begin(cl->req, AK_MSG_STATUS), AK_MSG_STATUS_REPLY, cl->timeout_s);
	if (r == AK_OK)
		r = ak_proto_get_status(cl->rep, st);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_unlock(struct ak_client *cl, const uint8_t *key, uint32_t lifetime)
{
	enum ak_err r;
	int t = cl->timeout_s > CLIENT_UNLOCK_TIMEOUT_S ? cl->timeout_s : CLIENT_UNLOCK_TIMEOUT_S;

	if ((r = ak_proto_begin(cl->req, AK_MSG_UNLOCK)) == AK_OK &&
	    (r = ak_buf_put_string(cl->req, key, key != NULL ? AK_KEY_BYTES : 0)) == AK_OK)
		r = ak_buf_put_u32(cl->req, lifetime);
	return request_ok(cl, r, t); /* wipes cl->req: it held the key */
}

enum ak_err
ak_client_lock(struct ak_client *cl)
{
	return request_ok(cl, ak_proto_begin(cl->req, AK_MSG_LOCK), cl->timeout_s);
}

enum ak_err
ak_client_shutdown(struct ak_client *cl)
{
	uint8_t c;
	ssize_t n;
	enum ak_err r;

	if ((r = request_ok(cl, ak_proto_begin(cl->req, AK_MSG_SHUTDOWN), cl->timeout_s)) != AK_OK)
		return r;
	/* The agent closes us when it exits (after removing its socket): wait for that. */
	recv_timeout(cl, cl->timeout_s);
	while ((n = recv(cl->fd, &c, 1, 0)) > 0 || (n < 0 && errno == EINTR))
		;
	return AK_OK;
}

/* A reply that is a u32 count, then that many entries of one kind. */
struct entry_kind {
	size_t size;       /* sizeof one entry */
	size_t min_bytes;  /* the fewest bytes an entry takes on the wire */
	uint32_t max;      /* the most entries a reply may hold */
	int exact;         /* nothing may follow the entries */
	enum ak_err (*get)(struct ak_buf *b, void *e);
	void (*clear)(void *e);
};

static enum ak_err
get_use_entry(struct ak_buf *b, void *e)
{
	return ak_proto_get_use_entry(b, e);
}

static void
clear_use_entry(void *e)
{
	ak_use_entry_clear(e);
}

/* A LOG entry takes at least 29 bytes. */
static const struct entry_kind log_kind = {
	sizeof(struct ak_use_entry), 29, UINT32_MAX, 1, get_use_entry, clear_use_entry,
};

static void
entries_free(const struct entry_kind *k, void *entries, uint32_t n)
{
	uint32_t i;

	if (entries == NULL)
		return;
	for (i = 0; i < n; i++)
		k->clear((char *)entries + (size_t)i * k->size);
	free(entries);
}

/* Send cl->req (built up to r) and read a reply of type want holding entries of kind k into a new
 * array *out of *n entries (NULL and 0 on failure). A count the payload cannot hold is hostile. */
static enum ak_err
request_entries(struct ak_client *cl, enum ak_err r, uint8_t want, const struct entry_kind *k, void **out,
    uint32_t *n)
{
	char *e = NULL;
	uint32_t count = 0, i = 0;

	*out = NULL;
	*n = 0;
	if ((r = request(cl, r, want, cl->timeout_s)) != AK_OK)
		goto out;
	if ((r = ak_buf_get_u32(cl->rep, &count)) != AK_OK)
		goto out;
	if (count > k->max || count > ak_buf_len(cl->rep) / k->min_bytes) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (count > 0 && (e = calloc(count, k->size)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < count; i++)
		if ((r = k->get(cl->rep, e + (size_t)i * k->size)) != AK_OK)
			goto out;
	if (k->exact && ak_buf_len(cl->rep) != 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	*out = e;
	*n = count;
	e = NULL;
	r = AK_OK;
out:
	entries_free(k, e, i);
	ak_buf_reset(cl->rep);
	return r;
}

/*
 * A LIST reply decodes into one block: a header, the array of entries, then a pool their strings and
 * arrays are carved from (ak_proto_get_list_entry_pool), sized from the payload so it cannot run out.
 * A malloc per string (seven a row and more per variable) and a free each made up most of what
 * `akctl list` of 10,000 profiles cost. The pool's unused tail is never touched, so sizing it for the
 * worst case costs no pages.
 */
struct list_block {
	uint8_t *pool;          /* 16 bytes in all: the entries after it stay 16-aligned */
	size_t pool_used;
};

void
ak_client_list_free(struct ak_list_entry *entries, uint32_t n)
{
	struct list_block *blk;

	(void)n;
	if (entries == NULL)
		return;
	blk = (struct list_block *)entries - 1;
	/* Wipe: the redacted forms and hints carry characters of keys. */
	sodium_memzero(blk->pool, blk->pool_used);
	free(blk);
}

/* One block for count entries and a pool of pool->size bytes after them (pool->p set); NULL when out
 * of memory. */
static struct ak_list_entry *
list_block_new(size_t count, struct ak_proto_pool *pool)
{
	struct list_block *blk;
	struct ak_list_entry *e;

	if ((blk = malloc(sizeof(*blk) + count * sizeof(*e) + pool->size)) == NULL)
		return NULL;
	e = (struct ak_list_entry *)(blk + 1);
	pool->p = (uint8_t *)(e + count);
	blk->pool = pool->p;
	blk->pool_used = 0;
	return e;
}

/* Note how much of the pool was written, so ak_client_list_free wipes all of it. */
static void
list_block_used(struct ak_list_entry *e, const struct ak_proto_pool *pool)
{
	((struct list_block *)e - 1)->pool_used = pool->used;
}

/* LIST or LIST_ONE (the old row encoding). */
static enum ak_err
request_list(struct ak_client *cl, enum ak_err r, struct ak_list_entry **out, uint32_t *n)
{
	struct ak_list_entry *e = NULL;
	struct ak_proto_pool pool = { NULL, 0, 0 };
	uint32_t count = 0, i;

	*out = NULL;
	*n = 0;
	if ((r = request(cl, r, AK_MSG_LIST_REPLY, cl->timeout_s)) != AK_OK)
		goto out;
	if ((r = ak_buf_get_u32(cl->rep, &count)) != AK_OK)
		goto out;
	/* Each entry takes far more than 8 bytes on the wire. */
	if (count > AK_PROFILES_MAX || count > ak_buf_len(cl->rep) / 8) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	pool.size = ak_buf_len(cl->rep) + (size_t)count * AK_PROTO_LIST_POOL_EXTRA;
	if ((e = list_block_new(count, &pool)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < count; i++) {
		if ((r = ak_proto_get_list_entry_pool(cl->rep, &e[i], &pool)) != AK_OK) {
			if (r == AK_ERR_NOMEM)
				r = AK_ERR_INTERNAL; /* cannot happen: the pool was sized for it */
			goto out;
		}
	}
	list_block_used(e, &pool);
	*out = e;
	*n = count;
	e = NULL;
	r = AK_OK;
out:
	if (e != NULL) {
		list_block_used(e, &pool);
		ak_client_list_free(e, 0);
	}
	ak_buf_reset(cl->rep);
	return r;
}

/* The smallest packed row on the wire (a one-byte name, every other field one byte): bounds the
 * entries a reply can hold before anything is decoded. */
#define PACKED_ROW_MIN 11

/* LIST_PACKED into the same one block: the entries, then a pool with the text table and the rows'
 * strings. Sized from the payload, so the pool cannot run out; its untouched tail costs no pages. */
static enum ak_err
request_list_packed(struct ak_client *cl, struct ak_list_entry **out, uint32_t *n)
{
	struct ak_list_entry *e = NULL;
	struct ak_proto_pool pool = { NULL, 0, 0 };
	struct ak_list_unpack u;
	const uint8_t *p;
	size_t wire, used, emax;
	uint32_t i;
	enum ak_err r;

	*out = NULL;
	*n = 0;
	r = request(cl, ak_proto_begin(cl->req, AK_MSG_LIST_PACKED), AK_MSG_LIST_PACKED_REPLY, cl->timeout_s);
	if (r != AK_OK)
		goto out;
	p = ak_buf_ptr(cl->rep);
	wire = ak_buf_len(cl->rep);
	emax = wire / PACKED_ROW_MIN + 1;
	/* The rows' pool is linear in their wire bytes plus a constant a row: summed over them, the one
	 * call below with the whole payload and that constant for each possible row. */
	pool.size = ak_proto_unpack_head_pool(wire) + ak_proto_unpack_row_pool(wire) + emax * 256;
	if ((e = list_block_new(emax, &pool)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = ak_proto_unpack_head(&u, p, wire, &pool, &used)) != AK_OK)
		goto bad;
	p += used;
	wire -= used;
	if (u.n > emax) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	for (i = 0; i < u.n; i++) {
		if ((r = ak_proto_unpack_row(&u, p, wire, &e[i], &pool, &used)) != AK_OK)
			goto bad;
		p += used;
		wire -= used;
	}
	if (wire != 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	list_block_used(e, &pool);
	*out = e;
	*n = u.n;
	e = NULL;
	r = AK_OK;
	goto out;
bad:
	/* The whole payload was there: a row cut short is a malformed reply, and so is a pool too small. */
	if (r == AK_ERR_TRUNCATED || r == AK_ERR_NOMEM)
		r = AK_ERR_BAD_MESSAGE;
out:
	if (e != NULL) {
		list_block_used(e, &pool);
		ak_client_list_free(e, 0);
	}
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_list(struct ak_client *cl, struct ak_list_entry **entries, uint32_t *n)
{
	enum ak_err r = request_list_packed(cl, entries, n);

	/* An agent older than LIST_PACKED says so and keeps the connection: ask for the LIST. */
	if (r == AK_ERR_UNKNOWN_MESSAGE)
		r = request_list(cl, ak_proto_begin(cl->req, AK_MSG_LIST), entries, n);
	return r;
}

/* Streaming a LIST ----------------------------------------------------------------------------- */

#define STREAM_CHUNK (64u << 10) /* one recv takes at most this much */

/* A failed recv (n <= 0) as an ak_err, the reason in cl->detail. */
static enum ak_err
recv_failed(struct ak_client *cl, ssize_t n)
{
	if (n == 0) {
		snprintf(cl->detail, sizeof(cl->detail), "agent closed the connection");
		return AK_ERR_IO;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		snprintf(cl->detail, sizeof(cl->detail), "agent did not answer in %d s", cl->fd_rcv_s);
		return AK_ERR_BUSY;
	}
	snprintf(cl->detail, sizeof(cl->detail), "receiving: %s", strerror(errno));
	return AK_ERR_IO;
}

/* Append up to max bytes (one recv) to cl->rep. */
static enum ak_err
stream_read(struct ak_client *cl, size_t max, size_t *got)
{
	uint8_t *w;
	ssize_t k;
	enum ak_err r;

	if ((r = ak_buf_reserve(cl->rep, max, &w)) != AK_OK)
		return r;
	while ((k = recv(cl->fd, w, max, 0)) < 0 && errno == EINTR)
		;
	if (k <= 0) {
		ak_buf_unreserve(cl->rep, max);
		return recv_failed(cl, k);
	}
	ak_buf_unreserve(cl->rep, max - (size_t)k);
	*got = (size_t)k;
	return AK_OK;
}

/* The packed reply's payload: *left bytes still to come after what cl->rep holds. The whole payload is
 * received and every row decoded once before the first is handed to fn, so a reply that is cut short
 * or malformed anywhere prints nothing (a caller's output is all or nothing); the second pass hands
 * the rows over. The payload is a fifth of LIST's size, so holding it costs little; the rows are never
 * held, each decoded into one small pool that is wiped and reused. */
static enum ak_err
stream_rows(struct ak_client *cl, size_t left, ak_client_list_fn fn, void *arg, uint32_t *n)
{
	struct ak_proto_pool tpool = { NULL, 0, 0 }, rpool = { NULL, 0, 0 };
	struct ak_list_unpack u, u0;
	struct ak_list_entry e;
	const uint8_t *p;
	size_t used, got, len, off, off0;
	int pass;
	enum ak_err r = AK_OK;

	memset(&u, 0, sizeof(u));
	while (left > 0) {
		if ((r = stream_read(cl, left < STREAM_CHUNK ? left : STREAM_CHUNK, &got)) != AK_OK)
			goto out;
		left -= got;
	}
	p = ak_buf_ptr(cl->rep);
	len = ak_buf_len(cl->rep);
	tpool.size = ak_proto_unpack_head_pool(len);
	rpool.size = ak_proto_unpack_row_pool(AK_PROTO_PACKED_ROW_MAX);
	if ((tpool.p = malloc(tpool.size)) == NULL || (rpool.p = malloc(rpool.size)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = ak_proto_unpack_head(&u, p, len, &tpool, &used)) != AK_OK)
		goto out;
	u0 = u;
	off0 = used;
	for (pass = 0; pass < 2; pass++) {
		u = u0;
		off = off0;
		while (u.done < u.n) {
			if ((r = ak_proto_unpack_row(&u, p + off, len - off, &e, &rpool, &used)) != AK_OK)
				goto out;
			off += used;
			if (pass == 1)
				r = fn(arg, &e, u.n);
			/* Wipe the row's strings at once: the redacted form carries characters of the key. */
			sodium_memzero(rpool.p, rpool.used);
			rpool.used = 0;
			if (r != AK_OK)
				goto out;
		}
		if (off != len) {
			r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
	}
	*n = u.n;
out:
	/* Reads fail as IO or BUSY: a row cut short, or one larger than any row can be, is malformed. */
	if (r == AK_ERR_TRUNCATED || r == AK_ERR_NOMEM)
		r = AK_ERR_BAD_MESSAGE;
	if (tpool.p != NULL) {
		sodium_memzero(tpool.p, tpool.used);
		free(tpool.p);
	}
	if (rpool.p != NULL) {
		sodium_memzero(rpool.p, rpool.used);
		free(rpool.p);
	}
	return r;
}

static enum ak_err
list_each_old(struct ak_client *cl, ak_client_list_fn fn, void *arg, uint32_t *n)
{
	struct ak_list_entry *e = NULL;
	uint32_t i, k = 0;
	enum ak_err r;

	if ((r = request_list(cl, ak_proto_begin(cl->req, AK_MSG_LIST), &e, &k)) != AK_OK)
		return r;
	for (i = 0; i < k && r == AK_OK; i++)
		r = fn(arg, &e[i], k);
	ak_client_list_free(e, k);
	if (r == AK_OK)
		*n = k;
	return r;
}

enum ak_err
ak_client_list_each(struct ak_client *cl, ak_client_list_fn fn, void *arg, uint32_t *n)
{
	const uint8_t *frame;
	size_t flen, got, left;
	uint32_t len;
	uint8_t type;
	enum ak_err r;

	*n = 0;
	cl->detail[0] = '\0';
	ak_buf_reset(cl->rep);
	cl->frame_len = 0;
	if ((r = ak_proto_begin(cl->req, AK_MSG_LIST_PACKED)) != AK_OK ||
	    (r = ak_proto_finish(cl->req, AK_PROTO_MAX_REQUEST)) != AK_OK)
		goto out;
	send_timeout(cl);
	recv_timeout(cl, cl->timeout_s);
	r = send_all(cl, ak_buf_ptr(cl->req), ak_buf_len(cl->req));
	ak_buf_reset(cl->req);
	if (r != AK_OK)
		goto out;
	while (ak_buf_len(cl->rep) < 5)
		if ((r = stream_read(cl, STREAM_CHUNK, &got)) != AK_OK)
			goto out;
	if ((r = ak_buf_peek_u32(cl->rep, &len)) != AK_OK)
		goto out;
	type = ak_buf_ptr(cl->rep)[4];
	if (len == 0 || len > AK_PROTO_MAX_REPLY || (size_t)len + 4 < ak_buf_len(cl->rep)) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (type != AK_MSG_LIST_PACKED_REPLY) {
		/* An ERROR (LOCKED, or UNKNOWN_MESSAGE from an older agent): small, read it whole. */
		if ((r = recv_frame(cl, 1, &frame, &flen)) != AK_OK ||
		    (r = ak_buf_consume(cl->rep, 5)) != AK_OK)
			goto out;
		r = AK_ERR_BAD_MESSAGE;
		if (type == AK_MSG_ERROR) {
			enum ak_err e;
			char *detail = NULL;

			if ((r = ak_proto_get_error(cl->rep, &e, &detail)) == AK_OK) {
				if (detail != NULL)
					keep_detail(cl, detail);
				r = e == AK_OK ? AK_ERR_INTERNAL : e;
			}
			free(detail);
		}
		ak_buf_reset(cl->rep);
		if (r == AK_ERR_UNKNOWN_MESSAGE)
			return list_each_old(cl, fn, arg, n);
		return r;
	}
	left = (size_t)len + 4 - ak_buf_len(cl->rep);
	if ((r = ak_buf_consume(cl->rep, 5)) != AK_OK)
		goto out;
	r = stream_rows(cl, left, fn, arg, n);
out:
	if (r != AK_OK && r != AK_ERR_LOCKED)
		/* The rest of the reply may still be on its way: nothing more can be read in step. */
		(void)shutdown(cl->fd, SHUT_RDWR);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_list_one(struct ak_client *cl, const char *name, struct ak_list_entry **entries, uint32_t *n)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_LIST_ONE)) == AK_OK)
		r = ak_buf_put_cstring(cl->req, name);
	r = request_list(cl, r, entries, n);
	if (r == AK_OK && *n != 1) {
		/* One row or an error: anything else is not this agent's answer. */
		ak_client_list_free(*entries, *n);
		*entries = NULL;
		*n = 0;
		r = AK_ERR_BAD_MESSAGE;
	}
	return r;
}

void
ak_client_log_free(struct ak_use_entry *entries, uint32_t n)
{
	entries_free(&log_kind, entries, n);
}

enum ak_err
ak_client_log(struct ak_client *cl, const char *profile, int64_t since, struct ak_use_entry **entries,
    uint32_t *n)
{
	void *e;
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_LOG)) == AK_OK)
		r = ak_proto_put_log_req(cl->req, profile, since);
	r = request_entries(cl, r, AK_MSG_LOG_REPLY, &log_kind, &e, n);
	*entries = e;
	return r;
}

enum ak_err
ak_client_get(struct ak_client *cl, const char *name, struct ak_profile **out)
{
	return ak_client_get_kind(cl, AK_MSG_GET, name, out);
}

enum ak_err
ak_client_get_kind(struct ak_client *cl, uint8_t type, const char *name, struct ak_profile **out)
{
	enum ak_err r;

	*out = NULL;
	if (type != AK_MSG_GET && type != AK_MSG_GET_PREVIOUS)
		return AK_ERR_INVALID;
	if ((r = ak_proto_begin(cl->req, type)) == AK_OK)
		r = ak_buf_put_cstring(cl->req, name);
	/* A profile under confirm-on-use answers only once someone said yes or no at the prompt. */
	if ((r = request(cl, r, AK_MSG_PROFILE_REPLY,
	    cl->timeout_s > AK_CLIENT_CONFIRM_WAIT_S ? cl->timeout_s : AK_CLIENT_CONFIRM_WAIT_S)) == AK_OK)
		r = ak_proto_get_profile(cl->rep, out);
	ak_buf_reset(cl->rep); /* held the secret */
	return r;
}

/* One reply frame into cl->rep (reset first), reading exactly its bytes: the replies to the requests
 * sent after it follow it in the socket. */
static enum ak_err
recv_exact(struct ak_client *cl)
{
	uint8_t *w;
	size_t need, want;
	ssize_t n;
	enum ak_err r;

	ak_buf_reset(cl->rep);
	cl->frame_len = 0;
	for (;;) {
		need = 0;
		r = ak_proto_frame(cl->rep, AK_PROTO_MAX_REPLY, &cl->frame_len, &need);
		if (r == AK_OK)
			return AK_OK;
		if (r != AK_ERR_TRUNCATED)
			return r;
		/* The length field first, then the rest of the frame it announces. */
		want = need > ak_buf_len(cl->rep) ? need - ak_buf_len(cl->rep) : 4 - ak_buf_len(cl->rep);
		if ((r = ak_buf_reserve(cl->rep, want, &w)) != AK_OK)
			return r;
		n = recv(cl->fd, w, want, 0);
		if (n <= 0) {
			ak_buf_unreserve(cl->rep, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0)
				snprintf(cl->detail, sizeof(cl->detail), "agent closed the connection");
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				snprintf(cl->detail, sizeof(cl->detail), "agent did not answer in %d s",
				    cl->fd_rcv_s);
			else
				snprintf(cl->detail, sizeof(cl->detail), "receiving: %s", strerror(errno));
			return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? AK_ERR_BUSY : AK_ERR_IO;
		}
		ak_buf_unreserve(cl->rep, want - (size_t)n);
	}
}

/* Requests of a batch sent before the first reply is read. Bounded so that the requests (a name is at
 * most a few hundred bytes) always fit in the socket's buffer: the agent answers one request only once
 * its previous reply is read, so requests that did not fit would wait on replies nobody reads yet. */
#define GET_BATCH 32

enum ak_err
ak_client_get_batch(struct ak_client *cl, const uint8_t *types, const char *const *names, size_t n,
    ak_client_get_cb cb, void *arg)
{
	struct ak_profile *p = NULL;
	size_t i, j, end;
	uint8_t type;
	enum ak_err r = AK_OK, e;
	char *detail;

	for (i = 0; i < n; i++)
		if (types[i] != AK_MSG_GET && types[i] != AK_MSG_GET_PREVIOUS)
			return AK_ERR_INVALID;
	send_timeout(cl);
	recv_timeout(cl, cl->timeout_s > AK_CLIENT_CONFIRM_WAIT_S ? cl->timeout_s : AK_CLIENT_CONFIRM_WAIT_S);
	for (i = 0; i < n; i = end) {
		end = n - i > GET_BATCH ? i + GET_BATCH : n;
		for (j = i; j < end; j++) {
			if ((r = ak_proto_begin(cl->req, types[j])) != AK_OK ||
			    (r = ak_buf_put_cstring(cl->req, names[j])) != AK_OK ||
			    (r = ak_proto_finish(cl->req, AK_PROTO_MAX_REQUEST)) != AK_OK ||
			    (r = send_all(cl, ak_buf_ptr(cl->req), ak_buf_len(cl->req))) != AK_OK)
				goto out;
			ak_buf_reset(cl->req);
		}
		for (j = i; j < end; j++) {
			cl->detail[0] = '\0';
			if ((r = recv_exact(cl)) != AK_OK || (r = ak_buf_consume(cl->rep, 4)) != AK_OK ||
			    (r = ak_buf_get_u8(cl->rep, &type)) != AK_OK)
				goto out;
			if (type == AK_MSG_ERROR) {
				detail = NULL;
				if ((r = ak_proto_get_error(cl->rep, &e, &detail)) != AK_OK)
					goto out;
				if (detail != NULL)
					keep_detail(cl, detail);
				free(detail);
				e = e == AK_OK ? AK_ERR_INTERNAL : e;
			} else if (type != AK_MSG_PROFILE_REPLY) {
				r = AK_ERR_BAD_MESSAGE;
				goto out;
			} else {
				e = ak_proto_get_profile(cl->rep, &p);
			}
			ak_buf_reset(cl->rep); /* held the secret */
			/* The profile is the callback's from here on. */
			r = cb(arg, j, e, e == AK_OK ? p : NULL);
			p = NULL;
			if (r != AK_OK)
				goto out;
		}
	}
	r = AK_OK;
out:
	ak_profile_free(p);
	ak_buf_reset(cl->req);
	ak_buf_reset(cl->rep);
	return r;
}

enum ak_err
ak_client_add(struct ak_client *cl, const struct ak_profile *p, int force)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_ADD)) == AK_OK)
		r = ak_proto_put_add(cl->req, force ? AK_ADD_FORCE : 0, p);
	return request_ok(cl, r, cl->timeout_s); /* wipes cl->req: it held the secret */
}

enum ak_err
ak_client_put_secret(struct ak_client *cl, const struct ak_profile *p)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_ADD)) == AK_OK)
		r = ak_proto_put_add(cl->req, AK_ADD_FORCE | AK_ADD_IF_SOURCE, p);
	return request_ok(cl, r, cl->timeout_s); /* wipes cl->req: it held the secret */
}

enum ak_err
ak_client_log_usage(struct ak_client *cl, const struct ak_use_entry *e)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_LOG_USAGE)) == AK_OK)
		r = ak_proto_put_usage_report(cl->req, e);
	return request_ok(cl, r, cl->timeout_s);
}

enum ak_err
ak_client_remove(struct ak_client *cl, const char *name)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_REMOVE)) == AK_OK)
		r = ak_buf_put_cstring(cl->req, name);
	return request_ok(cl, r, cl->timeout_s);
}

enum ak_err
ak_client_edit(struct ak_client *cl, const struct ak_edit *e)
{
	enum ak_err r;

	if ((r = ak_proto_begin(cl->req, AK_MSG_EDIT)) == AK_OK)
		r = ak_proto_put_edit(cl->req, e);
	return request_ok(cl, r, cl->timeout_s); /* wipes cl->req: it may have held a secret */
}

void
ak_client_audit_map_free(char **names, char **hashes, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (names != NULL && names[i] != NULL) {
			sodium_memzero(names[i], strlen(names[i]));
			free(names[i]);
		}
		if (hashes != NULL)
			free(hashes[i]);
	}
	free(names);
	free(hashes);
}

enum ak_err
ak_client_audit_map(struct ak_client *cl, char ***names, char ***hashes, uint32_t *n)
{
	char **nm = NULL, **hs = NULL;
	uint32_t count = 0, i = 0;
	enum ak_err r;

	*names = *hashes = NULL;
	*n = 0;
	if ((r = request(cl, ak_proto_begin(cl->req, AK_MSG_AUDIT_MAP), AK_MSG_AUDIT_MAP_REPLY,
	    cl->timeout_s)) != AK_OK)
		goto out;
	if ((r = ak_buf_get_u32(cl->rep, &count)) != AK_OK)
		goto out;
	/* A pair takes at least 10 bytes: a count the payload cannot hold is hostile. */
	if (count > ak_buf_len(cl->rep) / 10) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (count > 0 && ((nm = calloc(count, sizeof(*nm))) == NULL ||
	    (hs = calloc(count, sizeof(*hs))) == NULL)) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < count; i++) {
		if ((r = ak_buf_get_cstring(cl->rep, &nm[i], AK_NAME_MAX, 0)) != AK_OK ||
		    (r = ak_buf_get_cstring(cl->rep, &hs[i], 64, 0)) != AK_OK)
			goto out;
		if (ak_name_check(nm[i]) != AK_OK) {
			r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
	}
	if (ak_buf_len(cl->rep) != 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	*names = nm;
	*hashes = hs;
	*n = count;
	nm = hs = NULL;
out:
	ak_client_audit_map_free(nm, hs, count);
	ak_buf_reset(cl->rep); /* held names */
	return r;
}
