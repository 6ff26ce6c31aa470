/* fuzz_dispatch.c - akagent's request handling as the agent runs it, state machine included.
 *
 * The real dispatcher is compiled in (it is #included, so the harness can reset its state between
 * inputs); the framing loop below is server.c's conn_next_frame() without the socket. The store is a
 * real keystore file (insecure-test KDF, fixed salt and passphrase, so the key is known) in a private
 * temporary directory, restored after any input that wrote to it.
 *
 * Input: byte 0 = flags (bit 0: unlock with the right key before the stream), byte 1 = timing
 * (bits 0-1 lifetime, 2-3 idle timeout, 4-7 seconds the clock jumps before each request, squared),
 * then the raw bytes a client sends on one connection.
 *
 * Properties checked for every request:
 *  - exactly one reply frame that decodes completely, of a type allowed for the request, or no reply
 *    and the connection closed; a malformed request closes the connection;
 *  - ERROR replies carry no detail; unknown types get UNKNOWN_MESSAGE;
 *  - STATUS tells the truth (locked/unlocked, profile count, path); LIST and PROFILE replies only
 *    when unlocked; LIST rows match the store, in order, with the secret only in redacted form and no
 *    whole secret anywhere in the reply; GET returns the profile asked for, exactly as stored;
 *  - LOCK locks; a successful UNLOCK unlocks; a failed one changes nothing but the delay;
 *  - after ADD/REMOVE succeeds the file on disk opens with the key to exactly the in-memory store;
 *  - an expired lifetime or idle timeout always locks;
 *  - at the end (locked), the secure arena holds exactly what it held before: nothing leaked.
 */
#include "dispatch.c"
#include "uselog.c"
#include "confirm.c"
#include "audit.c"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ak_file.h"
#include "fuzz.h"

static char fz_dir[256], fz_path[300];
static uint8_t fz_key[AK_KEY_BYTES];
static uint8_t *fz_image;
static size_t fz_image_len;
static int fz_dirty = 1;

static size_t
fz_in_use(void)
{
	struct ak_smem_stats s;

	ak_smem_stats(&s);
	return s.in_use;
}

static void
fz_cleanup(void)
{
	char p[400];

	unlink(fz_path);
	snprintf(p, sizeof(p), "%s.lock", fz_path);
	unlink(p);
	rmdir(fz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ak_kdf kdf;
	struct ak_store *s;
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if (ak_smem_init() != 0)
		abort();
	ak_smem_hook_cjson(); /* as akagent's main() does */
	ak_log_init("fuzz_dispatch", AK_LOG_ERROR);
	/* tmpfs when there is one: every ADD/REMOVE fsyncs. */
	if (access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	else if (tmp == NULL)
		tmp = "/tmp";
	snprintf(fz_dir, sizeof(fz_dir), "%s/akfuzz-XXXXXX", tmp);
	if (mkdtemp(fz_dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(fz_path, sizeof(fz_path), "%s/keystore", fz_dir);
	atexit(fz_cleanup);
	if (fuzz_fixed_key(&kdf, fz_key) != 0 || (s = fuzz_sample_store()) == NULL ||
	    ak_store_seal_image(s, &kdf, fz_key, &fz_image, &fz_image_len) != AK_OK)
		abort();
	ak_store_free(s);
	return 0;
}

/* The bytes of a string field at the start of a payload copy, or NULL. */
static const uint8_t *
fz_first_string(const uint8_t *p, size_t n, size_t *len)
{
	uint32_t l;

	if (n < 4)
		return NULL;
	l = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (l > n - 4)
		return NULL;
	*len = l;
	return p + 4;
}

static int
fz_public_has(const char *needle)
{
	size_t i, k;

	for (i = 0; st.store != NULL && i < st.store->n; i++) {
		const struct ak_profile *p = st.store->p[i];

		if (strstr(p->name, needle) || strstr(p->provider, needle) ||
		    strstr(p->secret_var, needle) || strstr(p->description, needle))
			return 1;
		for (k = 0; k < p->nvars; k++)
			if (strstr(p->vars[k].name, needle))
				return 1;
	}
	return 0;
}

/* The keystore on disk opens with our key to exactly the in-memory store. */
static void
fz_check_disk(void)
{
	uint8_t *img = NULL;
	size_t len = 0, a_len = 0, b_len = 0;
	struct ak_store *disk = NULL;
	char *a = NULL, *b = NULL;

	FUZZ_CHECK(ak_store_read(fz_path, &img, &len) == AK_OK, "keystore readable after a write");
	FUZZ_CHECK(ak_store_open_image(img, len, fz_key, NULL, &disk) == AK_OK,
	    "keystore opens after a write");
	FUZZ_CHECK(ak_store_serialize(disk, &a, &a_len) == AK_OK, "serialize disk");
	FUZZ_CHECK(ak_store_serialize(st.store, &b, &b_len) == AK_OK, "serialize memory");
	FUZZ_CHECK(a_len == b_len && memcmp(a, b, a_len) == 0, "disk store == in-memory store");
	ak_smem_free(a);
	ak_smem_free(b);
	ak_store_free(disk);
	free(img);
}

static void
fz_check_list(struct ak_buf *rb, const uint8_t *reply, size_t reply_len, int one)
{
	struct ak_list_entry e;
	uint32_t n, i;
	char red[128];

	FUZZ_CHECK(ak_buf_get_u32(rb, &n) == AK_OK, "LIST count");
	FUZZ_CHECK(st.store != NULL && n == (one ? 1 : st.store->n), "LIST count == store size, LIST_ONE 1");
	for (i = 0; i < n; i++) {
		const struct ak_profile *p = st.store->p[i];

		FUZZ_CHECK(ak_proto_get_list_entry(rb, &e) == AK_OK, "LIST row decodes");
		if (one)
			p = ak_store_find(st.store, e.name);
		FUZZ_CHECK(p != NULL && strcmp(e.name, p->name) == 0, "LIST rows in store order, LIST_ONE's in the store");
		FUZZ_CHECK(strcmp(e.secret_var, p->secret_var) == 0, "LIST secret_var");
		ak_redact(p->secret, red, sizeof(red));
		FUZZ_CHECK(strcmp(e.redacted, red) == 0, "LIST carries the redacted form");
		FUZZ_CHECK(e.nvars == p->nvars, "LIST var count");
		ak_list_entry_clear(&e);
	}
	FUZZ_CHECK(ak_buf_len(rb) == 0, "LIST reply has no trailing bytes");
	/* No whole secret anywhere in the reply, unless the user put it in a public field. */
	for (i = 0; i < n; i++) {
		const char *sec = st.store->p[i]->secret;
		size_t sl = strlen(sec);

		if (sl >= 16 && memmem(reply, reply_len, sec, sl) != NULL)
			FUZZ_CHECK(fz_public_has(sec), "a secret travelled in a LIST reply");
	}
}

/* LIST_PACKED_REPLY: the same rows LIST gives, in store order, decoded as the client does. */
static void
fz_check_list_packed(struct ak_buf *rb, const uint8_t *reply, size_t reply_len)
{
	struct ak_proto_pool pool = { NULL, 0, 0 };
	struct ak_list_unpack u;
	struct ak_list_entry e, want;
	struct ak_buf *old;
	const uint8_t *p = ak_buf_ptr(rb);
	size_t len = ak_buf_len(rb), used, i;

	pool.size = ak_proto_unpack_head_pool(len) + ak_proto_unpack_row_pool(len) + 64 * (len + 1);
	FUZZ_CHECK((pool.p = malloc(pool.size)) != NULL, "pool");
	FUZZ_CHECK(ak_proto_unpack_head(&u, p, len, &pool, &used) == AK_OK, "LIST_PACKED head decodes");
	FUZZ_CHECK(st.store != NULL && u.n == st.store->n, "LIST_PACKED count == store size");
	p += used;
	len -= used;
	old = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	FUZZ_CHECK(old != NULL, "buffer");
	for (i = 0; i < u.n; i++) {
		FUZZ_CHECK(ak_proto_unpack_row(&u, p, len, &e, &pool, &used) == AK_OK, "LIST_PACKED row decodes");
		p += used;
		len -= used;
		ak_buf_reset(old);
		FUZZ_CHECK(ak_proto_put_list_entry(old, st.store->p[i]) == AK_OK &&
		    ak_proto_get_list_entry(old, &want) == AK_OK, "the LIST row");
		FUZZ_CHECK(strcmp(e.name, want.name) == 0 && strcmp(e.provider, want.provider) == 0 &&
		    strcmp(e.secret_var, want.secret_var) == 0 && strcmp(e.redacted, want.redacted) == 0 &&
		    strcmp(e.description, want.description) == 0 && strcmp(e.deact_hint, want.deact_hint) == 0 &&
		    e.created == want.created && e.rotated == want.rotated && e.nvars == want.nvars &&
		    e.rotate_every == want.rotate_every && e.prev_until == want.prev_until &&
		    e.confirm == want.confirm && e.expired == want.expired && e.lifetime == want.lifetime &&
		    e.wipe_at == want.wipe_at && e.deact_pending == want.deact_pending,
		    "LIST_PACKED row == LIST row, in store order");
		for (used = 0; used < e.nvars; used++)
			FUZZ_CHECK(strcmp(e.vars[used], want.vars[used]) == 0 &&
			    e.var_secret[used] == want.var_secret[used], "LIST_PACKED variables");
		ak_list_entry_clear(&want);
	}
	FUZZ_CHECK(len == 0, "LIST_PACKED reply has no trailing bytes");
	ak_buf_free(old);
	sodium_memzero(pool.p, pool.used);
	free(pool.p);
	/* No whole secret anywhere in the reply, unless the user put it in a public field. */
	for (i = 0; i < st.store->n; i++) {
		const char *sec = st.store->p[i]->secret;
		size_t sl = strlen(sec);

		if (sl >= 16 && memmem(reply, reply_len, sec, sl) != NULL)
			FUZZ_CHECK(fz_public_has(sec), "a secret travelled in a LIST_PACKED reply");
	}
}

static void
fz_check_profile(struct ak_buf *rb, const uint8_t *pl, size_t pl_len)
{
	struct ak_profile *p = NULL;
	const struct ak_profile *want;
	const uint8_t *name;
	size_t nlen = 0, i;

	FUZZ_CHECK(ak_proto_get_profile(rb, &p) == AK_OK, "PROFILE reply decodes");
	FUZZ_CHECK(ak_buf_len(rb) == 0, "PROFILE reply has no trailing bytes");
	name = fz_first_string(pl, pl_len, &nlen);
	FUZZ_CHECK(name != NULL && nlen == strlen(p->name) && memcmp(name, p->name, nlen) == 0,
	    "GET answers the profile asked for");
	want = ak_store_find(st.store, p->name);
	FUZZ_CHECK(want != NULL, "GET profile is in the store");
	FUZZ_CHECK(strcmp(want->secret, p->secret) == 0 && strcmp(want->secret_var, p->secret_var) == 0 &&
	    want->nvars == p->nvars && want->created == p->created && want->rotated == p->rotated,
	    "GET profile is the stored one");
	for (i = 0; i < p->nvars; i++)
		FUZZ_CHECK(strcmp(want->vars[i].name, p->vars[i].name) == 0 &&
		    strcmp(want->vars[i].value, p->vars[i].value) == 0, "GET vars");
	ak_profile_free(p);
}

/* One request through the dispatcher and every check. Returns 1 when the connection ends. */
static int
fz_request(uint8_t type, struct ak_buf *req, struct ak_buf *out)
{
	struct agent_result res;
	struct ak_buf *rb;
	const uint8_t *rp;
	uint8_t *pl, *reply;
	size_t pl_len = ak_buf_len(req), len, flen = 0;
	int was_unlocked = agent_state_unlocked(), stop = 0;
	size_t n_before = st.store ? st.store->n : 0;
	uint8_t rtype;

	/* The dispatcher consumes (and wipes) the request: keep a copy for the checks. */
	pl = malloc(pl_len + 1);
	FUZZ_CHECK(pl != NULL, "alloc");
	memcpy(pl, ak_buf_ptr(req), pl_len);

	agent_dispatch(type, req, out, &res, NULL);
	ak_buf_reset(req); /* as server.c does: it may have held a key or a secret */
	if (res.confirm_id != 0) {
		enum ak_err v;
		const char *d;

		/* Confirm-on-use: no reply yet. The harness has no askpass, so the verdict is already a
		 * denial; the request runs again with it, as conn.c does. */
		FUZZ_CHECK(ak_buf_len(out) == 0, "no reply while a confirmation runs");
		FUZZ_CHECK(agent_confirm_take(res.confirm_id, ak_now_ms(), &v, &d) == 1 && v != AK_OK,
		    "without an askpass the confirmation is denied at once");
		FUZZ_CHECK(ak_buf_put(req, pl, pl_len) == AK_OK, "request copy");
		agent_dispatch_verdict(v, d);
		agent_dispatch(type, req, out, &res, NULL);
		agent_dispatch_verdict_clear();
		ak_buf_reset(req);
		FUZZ_CHECK(res.confirm_id == 0, "a verdict ends the confirmation");
	}

	len = ak_buf_len(out);
	if (len == 0) {
		FUZZ_CHECK(res.close, "no reply means the connection closes");
		free(pl);
		return 1;
	}
	FUZZ_CHECK(ak_proto_frame(out, AK_PROTO_MAX_REPLY, &flen, NULL) == AK_OK && flen == len,
	    "exactly one whole reply frame");
	rp = ak_buf_ptr(out);
	rtype = rp[4];
	reply = malloc(len);
	FUZZ_CHECK(reply != NULL, "alloc");
	memcpy(reply, rp, len);
	rb = ak_buf_new_secure(len);
	FUZZ_CHECK(rb != NULL && ak_buf_put(rb, rp + 5, len - 5) == AK_OK, "reply copy");
	ak_buf_reset(out);

	switch (rtype) {
	case AK_MSG_OK:
		FUZZ_CHECK(len == 5, "OK has no payload");
		FUZZ_CHECK(type == AK_MSG_UNLOCK || type == AK_MSG_LOCK || type == AK_MSG_ADD ||
		    type == AK_MSG_REMOVE || type == AK_MSG_EDIT || type == AK_MSG_SHUTDOWN ||
		    type == AK_MSG_LOG_USAGE,
		    "OK for a request that takes it");
		FUZZ_CHECK(!res.close, "OK does not close");
		switch (type) {
		case AK_MSG_LOCK:
			FUZZ_CHECK(!agent_state_unlocked(), "LOCK locks");
			break;
		case AK_MSG_UNLOCK:
			FUZZ_CHECK(agent_state_unlocked(), "UNLOCK OK means unlocked");
			FUZZ_CHECK(res.hold_until == 0, "a good UNLOCK is not delayed");
			break;
		case AK_MSG_ADD:
		case AK_MSG_REMOVE:
			FUZZ_CHECK(was_unlocked && agent_state_unlocked(), "writes need the key");
			fz_dirty = 1;
			if (type == AK_MSG_REMOVE)
				FUZZ_CHECK(st.store->n == n_before - 1, "REMOVE removes one");
			else
				FUZZ_CHECK(st.store->n == n_before || st.store->n == n_before + 1,
				    "ADD adds or replaces one");
			fz_check_disk();
			break;
		case AK_MSG_EDIT:
			/* A set keeps the count, a rename too, a copy adds one. */
			FUZZ_CHECK(was_unlocked && agent_state_unlocked(), "writes need the key");
			fz_dirty = 1;
			FUZZ_CHECK(st.store->n == n_before || st.store->n == n_before + 1, "EDIT count");
			fz_check_disk();
			break;
		case AK_MSG_SHUTDOWN:
			FUZZ_CHECK(res.shutdown, "SHUTDOWN OK sets shutdown");
			break;
		}
		break;
	case AK_MSG_ERROR: {
		enum ak_err e;
		char *detail = NULL;

		FUZZ_CHECK(ak_proto_get_error(rb, &e, &detail) == AK_OK, "ERROR decodes");
		FUZZ_CHECK(ak_buf_len(rb) == 0, "ERROR has no trailing bytes");
		FUZZ_CHECK(detail == NULL, "the agent's errors carry no detail");
		FUZZ_CHECK(e != AK_ERR_INTERNAL && e != AK_ERR_NOMEM, "no internal error or OOM");
		if (e == AK_ERR_BAD_MESSAGE)
			FUZZ_CHECK(res.close, "a malformed request closes the connection");
		if (type < AK_MSG_STATUS || type > AK_MSG_LIST_PACKED)
			FUZZ_CHECK(e == AK_ERR_UNKNOWN_MESSAGE, "unknown type -> UNKNOWN_MESSAGE");
		if (e == AK_ERR_AUTH) {
			FUZZ_CHECK(type == AK_MSG_UNLOCK && res.hold_until != 0, "failed unlock is delayed");
			FUZZ_CHECK(agent_state_unlocked() == was_unlocked, "failed unlock changes no state");
		}
		if (e == AK_ERR_LOCKED)
			FUZZ_CHECK(!agent_state_unlocked(), "LOCKED only when locked");
		if (type == AK_MSG_LOCK || type == AK_MSG_STATUS || type == AK_MSG_SHUTDOWN)
			FUZZ_CHECK(e == AK_ERR_BAD_MESSAGE, "LOCK/STATUS/SHUTDOWN fail only when malformed");
		if (type != AK_MSG_UNLOCK && type != AK_MSG_LOCK && e != AK_ERR_STORE_CHANGED)
			FUZZ_CHECK(agent_state_unlocked() == was_unlocked, "an error does not change the state");
		free(detail);
		break;
	}
	case AK_MSG_STATUS_REPLY: {
		struct ak_status s;

		FUZZ_CHECK(type == AK_MSG_STATUS, "STATUS_REPLY answers STATUS");
		FUZZ_CHECK(ak_proto_get_status(rb, &s) == AK_OK && ak_buf_len(rb) == 0, "STATUS decodes");
		FUZZ_CHECK(s.proto_version == AK_PROTO_VERSION, "STATUS version");
		FUZZ_CHECK(s.unlocked == (uint8_t)agent_state_unlocked(), "STATUS tells the lock state");
		FUZZ_CHECK(s.nprofiles == (st.store ? st.store->n : 0), "STATUS profile count");
		FUZZ_CHECK(strcmp(s.store_path, fz_path) == 0, "STATUS store path");
		FUZZ_CHECK(s.unlocked || s.lifetime_left == 0, "locked: no lifetime left");
		ak_status_clear(&s);
		break;
	}
	case AK_MSG_LIST_REPLY:
		FUZZ_CHECK((type == AK_MSG_LIST || type == AK_MSG_LIST_ONE) && was_unlocked,
		    "LIST_REPLY only for LIST or LIST_ONE while unlocked");
		fz_check_list(rb, reply, len, type == AK_MSG_LIST_ONE);
		break;
	case AK_MSG_LIST_PACKED_REPLY:
		FUZZ_CHECK(type == AK_MSG_LIST_PACKED && was_unlocked,
		    "LIST_PACKED_REPLY only for LIST_PACKED while unlocked");
		fz_check_list_packed(rb, reply, len);
		break;
	case AK_MSG_LOG_REPLY: {
		struct ak_use_entry ue;
		uint32_t n, i;

		FUZZ_CHECK(type == AK_MSG_LOG && was_unlocked, "LOG_REPLY only for LOG while unlocked");
		FUZZ_CHECK(ak_buf_get_u32(rb, &n) == AK_OK && n <= AGENT_USELOG_MAX, "LOG_REPLY count");
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(ak_proto_get_use_entry(rb, &ue) == AK_OK, "LOG_REPLY entry decodes");
			ak_use_entry_clear(&ue);
		}
		FUZZ_CHECK(ak_buf_len(rb) == 0, "LOG_REPLY has no trailing bytes");
		break;
	}
	case AK_MSG_AUDIT_MAP_REPLY: {
		char *nm, *hs;
		uint32_t n, i;

		FUZZ_CHECK(type == AK_MSG_AUDIT_MAP && was_unlocked, "AUDIT_MAP_REPLY only for AUDIT_MAP while unlocked");
		FUZZ_CHECK(ak_buf_get_u32(rb, &n) == AK_OK && n == (st.store ? st.store->n : 0),
		    "AUDIT_MAP_REPLY: one entry per profile");
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(ak_buf_get_cstring(rb, &nm, AK_NAME_MAX, 0) == AK_OK, "AUDIT_MAP_REPLY name");
			FUZZ_CHECK(ak_buf_get_cstring(rb, &hs, 64, 0) == AK_OK, "AUDIT_MAP_REPLY hash");
			FUZZ_CHECK(strcmp(nm, st.store->p[i]->name) == 0, "AUDIT_MAP_REPLY names the profiles in order");
			free(nm);
			free(hs);
		}
		FUZZ_CHECK(ak_buf_len(rb) == 0, "AUDIT_MAP_REPLY has no trailing bytes");
		break;
	}
	case AK_MSG_PROFILE_REPLY:
		FUZZ_CHECK((type == AK_MSG_GET || type == AK_MSG_GET_PREVIOUS) && was_unlocked,
		    "PROFILE_REPLY only for GET or GET_PREVIOUS while unlocked");
		fz_check_profile(rb, pl, pl_len);
		break;
	default:
		FUZZ_CHECK(0, "reply of an unknown type");
	}
	if (res.close)
		stop = 1;
	if (res.shutdown) {
		agent_state_lock("shutdown requested"); /* what server.c does */
		stop = 1;
	}
	ak_buf_free(rb);
	free(reply);
	free(pl);
	return stop;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t times[4] = { 0, 1, 60, 3600 };
	struct ak_buf *in, *out, *req;
	uint64_t offset = 0, step;
	size_t base;
	uint8_t flags, timing;

	if (size < 2)
		return 0;
	flags = data[0];
	timing = data[1];
	data += 2;
	size -= 2;
	if (size > AK_PROTO_MAX_REQUEST + 4)
		size = AK_PROTO_MAX_REQUEST + 4;

	/* A fresh agent: locked, no failure count, the original keystore. */
	agent_state_lock("fuzz reset");
	memset(&st, 0, sizeof(st));
	agent_state_init(fz_path, times[timing & 3], times[(timing >> 2) & 3]);
	if (fz_dirty) {
		FUZZ_CHECK(ak_file_write_atomic(fz_path, fz_image, fz_image_len, 0) == AK_OK, "reset store");
		fz_dirty = 0;
	}
	step = (uint64_t)(timing >> 4) * (timing >> 4) * 1000;
	base = fz_in_use();

	in = ak_buf_new_secure(AK_PROTO_MAX_REQUEST + 4);
	out = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	req = ak_buf_new_secure(AK_PROTO_MAX_REQUEST);
	FUZZ_CHECK(in && out && req, "alloc");

	if (flags & 1) {
		FUZZ_CHECK(ak_buf_put_string(req, fz_key, sizeof(fz_key)) == AK_OK &&
		    ak_buf_put_u32(req, 0) == AK_OK, "unlock request");
		fz_request(AK_MSG_UNLOCK, req, out);
		FUZZ_CHECK(agent_state_unlocked(), "the right key unlocks");
	}
	FUZZ_CHECK(ak_buf_put(in, data, size) == AK_OK, "input");
	for (;;) {
		const uint8_t *p;
		size_t flen = 0, need = 0;
		uint64_t now;
		enum ak_err r;
		uint8_t type;

		r = ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need);
		if (r == AK_ERR_TRUNCATED)
			break; /* EOF with a partial request: server.c drops the connection */
		if (r != AK_OK || flen < 5)
			break; /* server.c answers BAD_MESSAGE/TOO_LARGE itself and hangs up */
		p = ak_buf_ptr(in);
		type = p[4];
		ak_buf_reset(req);
		FUZZ_CHECK(ak_buf_put(req, p + 5, flen - 5) == AK_OK, "request copy");
		FUZZ_CHECK(ak_buf_consume(in, flen) == AK_OK, "consume");

		/* Time passes between requests; the server ticks the state before serving. */
		offset += step;
		now = ak_now_ms() + offset;
		agent_state_tick(now);
		if (agent_state_unlocked() && agent_state_deadline() != 0)
			FUZZ_CHECK(agent_state_deadline() > now, "a passed deadline always locks");
		if (fz_request(type, req, out))
			break;
	}
	ak_buf_free(in);
	ak_buf_free(out);
	ak_buf_free(req);
	agent_state_lock("fuzz end");
	FUZZ_CHECK(st.key == NULL && st.store == NULL, "locked means no key and no store");
	FUZZ_CHECK(fz_in_use() == base, "secure arena back to where it was (something leaked)");
	return 0;
}
