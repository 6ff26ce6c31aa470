/* dispatch.c - the agent's state (locked/unlocked, key, store, deadlines) and its request handlers.
 *
 * Every secret the agent holds lives here: the derived key (ak_smem, AK_KEY_BYTES) and the decrypted
 * store (ak_store, all in the arena). Locking frees both, which wipes them. Nothing below logs a
 * profile name or value: names are secret too.
 */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "ak_edit.h"
#include "ak_log.h"
#include "ak_path.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"

#define UNLOCK_DELAY_BASE_MS 250u
#define UNLOCK_DELAY_MAX_MS 8000u

static struct {
	char store_path[AK_PATH_MAX];
	uint8_t *key;              /* AK_KEY_BYTES in the arena while unlocked, else NULL */
	struct ak_store *store;    /* while unlocked, else NULL */
	struct ak_kdf kdf;         /* of the unlocked store (not secret) */
	uint32_t def_lifetime_s;   /* -t: 0 = none */
	uint32_t idle_s;           /* --idle: 0 = none */
	uint64_t lock_at;          /* lifetime deadline (ms), 0 = none */
	uint64_t idle_at;          /* idle deadline (ms), 0 = none */
	unsigned fails;            /* consecutive failed unlocks */
	uint64_t unlock_gate;      /* no UNLOCK is processed before this (ms) */
	uint64_t expire_retry;     /* a failed grace-expiry write is retried no sooner (ms), 0 = now */
	int64_t unlocked_at;       /* unix s of the last unlock: profiles' own lifetimes count from it */
	int64_t next_expiry;       /* ak_store_next_expiry(store), kept by store_changed() */
	int64_t next_wipe;         /* profiles_next_wipe(store), kept by store_changed() */
	struct ak_buf *list_reply; /* secure: the whole LIST_REPLY frame for store, NULL = not built */
	struct ak_buf *list_packed; /* secure: the same rows as LIST_PACKED_REPLY, NULL = not built */
	uint32_t pid;              /* ours, taken at the first STATUS (after daemonising), 0 = not yet */
	int expiring;              /* a grace-expiry write is queued or under way */
	/* The identity (ak_store_image_hash) of the keystore file that store is exactly the opened form
	 * of (read at unlock or written by us), valid while file_hash_ok: a write then starts from a copy of store instead of
	 * parsing the file again, when the file under the lock still has this hash. Any other change to
	 * store (a lifetime wipe, an expiry in memory, a lock) goes through store_changed(), which drops it. */
	uint8_t file_hash[AK_FILE_HASH_BYTES];
	int file_hash_ok;
} st;

/* The verdict of a confirmation for the request being run again (agent_dispatch_verdict). */
static struct {
	int set;
	enum ak_err v;
	const char *detail;
} verdict;

/* Text for the ERROR reply of the request being handled (static, no secret), or NULL. */
static const char *err_detail;


/* Keystore writes: the writer's hook (NULL: inline), the job it holds, and those waiting their turn. */
static int (*writer)(struct agent_write_job *);
static struct agent_write_job *inflight;
static struct agent_write_job *queue_head, *queue_tail;
static void jobs_cancel(void);

/* Everything derived from st.store is rebuilt from here, after every change to it: the loop asks for
 * the next expiry each round and LIST is the most frequent large reply, and both would otherwise cost
 * a walk of the whole store each time. The cached reply names profiles: it is a secure buffer, wiped
 * here. */
static int64_t profiles_next_wipe(const struct ak_store *s);

static void
store_changed(void)
{
	ak_buf_free(st.list_reply);
	st.list_reply = NULL;
	ak_buf_free(st.list_packed);
	st.list_packed = NULL;
	st.file_hash_ok = 0;
	st.next_expiry = ak_store_next_expiry(st.store);
	st.next_wipe = profiles_next_wipe(st.store);
}

static void expiry_start(uint64_t now);

/* After store_changed(): store is the opened form of the file whose hash is h, unless a profile in it
 * is wiped (its lifetime ended), which the file still holds. */
static void
store_from_file(const uint8_t *h)
{
	size_t i;

	for (i = 0; st.store != NULL && i < st.store->n; i++)
		if (st.store->p[i]->expired)
			return;
	memcpy(st.file_hash, h, sizeof(st.file_hash));
	st.file_hash_ok = st.store != NULL;
}

/* The peer of the request being handled (NULL: unknown), for the usage log. */
static const struct agent_peer *cur_peer;

void
agent_state_init(const char *store_path, uint32_t lifetime_s, uint32_t idle_s)
{
	snprintf(st.store_path, sizeof(st.store_path), "%s", store_path);
	st.def_lifetime_s = lifetime_s;
	st.idle_s = idle_s;
}

int
agent_state_unlocked(void)
{
	return st.key != NULL;
}

void
agent_state_lock(const char *why)
{
	/* The usage log names profiles: it goes with the secrets. Pending confirmations are denied. */
	agent_uselog_wipe();
	agent_confirm_cancel_all();
	/* Writes not started yet give up their key copy and secrets now (and answer LOCKED). */
	jobs_cancel();
	if (st.key == NULL && st.store == NULL)
		return;
	/* Both frees wipe: the store's every profile, and the derived key. */
	ak_store_free(st.store);
	st.store = NULL;
	store_changed();
	ak_smem_free(st.key);
	st.key = NULL;
	agent_audit_forget();
	st.lock_at = 0;
	st.idle_at = 0;
	st.expire_retry = 0;
	/* Unmap (wiped) slabs nothing lives in any more: a locked agent keeps almost no locked memory. */
	ak_smem_trim();
	ak_info("locked (%s)", why);
}

/* Milliseconds (monotonic) until the wall-clock second t, 0 if it has come. */
static uint64_t
wall_wait_ms(int64_t t)
{
	struct timespec ts;
	int64_t now_ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return t * 1000 > now_ms ? (uint64_t)(t * 1000 - now_ms) : 0;
}

/* A profile's own lifetime: wipe its secrets (current and previous) from memory; the keystore keeps
 * them, and the next unlock reads them again. */
static void
profile_wipe(struct ak_profile *p)
{
	size_t i;

	(void)ak_profile_set_field(&p->secret, "");
	ak_rot_clear(&p->rot);
	for (i = 0; i < p->nvars; i++) {
		if (!p->vars[i].secret)
			continue;
		(void)ak_profile_set_field(&p->vars[i].value, "");
		ak_rot_clear(&p->vars[i].rot);
	}
	p->expired = 1;
}

/* Stamp every profile's wipe time from the unlock time (a store read again after a write has none),
 * and wipe those whose time has come. Returns how many were wiped now. */
static size_t
profiles_expire(struct ak_store *s, int64_t now_s)
{
	size_t i, n = 0;

	if (s == NULL)
		return 0;
	for (i = 0; i < s->n; i++) {
		struct ak_profile *p = s->p[i];
		int64_t w = p->lifetime != 0 ? st.unlocked_at + p->lifetime : 0;

		/* Written only when it changes: the writer's snapshot may be reading this profile. */
		if (p->wipe_at != w)
			p->wipe_at = w;
		if (w != 0 && w <= now_s && !p->expired) {
			/* Wiped in our own copy when the writer's snapshot shares it (the snapshot's goes
			 * with the write; the store it brings back is wiped by name). Out of memory: the
			 * next tick tries again. */
			if ((p = ak_store_own(s, p->name)) == NULL)
				continue;
			profile_wipe(p);
			n++;
		}
	}
	return n;
}

/* The earliest wipe time still to come (unix s), 0 = none. */
static int64_t
profiles_next_wipe(const struct ak_store *s)
{
	int64_t t = 0;
	size_t i;

	for (i = 0; s != NULL && i < s->n; i++)
		if (s->p[i]->wipe_at != 0 && !s->p[i]->expired && (t == 0 || s->p[i]->wipe_at < t))
			t = s->p[i]->wipe_at;
	return t;
}

void
agent_state_tick(uint64_t now)
{
	int64_t exp;

	if (st.key == NULL)
		return;
	if (st.lock_at != 0 && now >= st.lock_at) {
		agent_state_lock("lifetime expired");
		return;
	}
	if (st.idle_at != 0 && now >= st.idle_at) {
		agent_state_lock("idle timeout");
		return;
	}
	exp = st.next_wipe;
	if (exp != 0 && wall_wait_ms(exp) == 0 && profiles_expire(st.store, ak_now_s()) > 0) {
		store_changed();
		ak_info("a profile's lifetime ended: its secrets wiped");
		ak_smem_trim();
	}
	/* A previous key whose grace is over: wiped from the keystore by a write (which expires it), and
	 * from memory even if that write fails, so it is never served or held past its deadline. */
	exp = st.next_expiry;
	if (exp != 0 && wall_wait_ms(exp) == 0 && now >= st.expire_retry && !st.expiring)
		expiry_start(now);
}

uint64_t
agent_state_deadline(void)
{
	uint64_t d = 0, e;
	int64_t exp;

	if (st.key == NULL)
		return 0;
	if (st.lock_at != 0)
		d = st.lock_at;
	if (st.idle_at != 0 && (d == 0 || st.idle_at < d))
		d = st.idle_at;
	if ((exp = st.next_expiry) != 0 && !st.expiring) {
		e = ak_now_ms() + wall_wait_ms(exp);
		if (e < st.expire_retry)
			e = st.expire_retry;
		if (d == 0 || e < d)
			d = e;
	}
	if ((exp = st.next_wipe) != 0) {
		e = ak_now_ms() + wall_wait_ms(exp);
		if (d == 0 || e < d)
			d = e;
	}
	return d;
}

uint64_t
agent_state_unlock_gate(void)
{
	return st.unlock_gate;
}

static void
touch_idle(uint64_t now)
{
	if (st.key != NULL && st.idle_s != 0)
		st.idle_at = now + (uint64_t)st.idle_s * 1000;
}

/* The lock deadline a requested lifetime gives (0 = the agent's default, AK_LIFETIME_NONE = none):
 * 0 for no deadline. */
static uint64_t
lifetime_deadline(uint32_t req, uint64_t now)
{
	uint32_t secs = req;

	if (req == 0)
		secs = st.def_lifetime_s;
	else if (req == AK_LIFETIME_NONE)
		secs = 0;
	return secs ? now + (uint64_t)secs * 1000 : 0;
}

static void
set_lifetime(uint32_t req, uint64_t now)
{
	st.lock_at = lifetime_deadline(req, now);
}

static const char *
msg_name(uint8_t type)
{
	switch (type) {
	case AK_MSG_STATUS: return "STATUS";
	case AK_MSG_UNLOCK: return "UNLOCK";
	case AK_MSG_LOCK: return "LOCK";
	case AK_MSG_LIST: return "LIST";
	case AK_MSG_GET: return "GET";
	case AK_MSG_ADD: return "ADD";
	case AK_MSG_REMOVE: return "REMOVE";
	case AK_MSG_SHUTDOWN: return "SHUTDOWN";
	case AK_MSG_EDIT: return "EDIT";
	case AK_MSG_GET_PREVIOUS: return "GET_PREVIOUS";
	case AK_MSG_LOG: return "LOG";
	case AK_MSG_AUDIT_MAP: return "AUDIT_MAP";
	case AK_MSG_LOG_USAGE: return "LOG_USAGE";
	case AK_MSG_LIST_ONE: return "LIST_ONE";
	case AK_MSG_LIST_PACKED: return "LIST_PACKED";
	default: return "unknown";
	}
}

/* Replies ----------------------------------------------------------------------------------------- */

static enum ak_err
reply_simple(struct ak_buf *out, uint8_t type)
{
	enum ak_err r;

	if ((r = ak_proto_begin(out, type)) != AK_OK)
		return r;
	return ak_proto_finish(out, AK_PROTO_MAX_REPLY);
}

/* Replace whatever is in out by an ERROR frame. detail must not hold a secret. */
static void
reply_error(struct ak_buf *out, enum ak_err e, const char *detail)
{
	if (ak_proto_begin(out, AK_MSG_ERROR) != AK_OK ||
	    ak_proto_put_error(out, e, detail) != AK_OK ||
	    ak_proto_finish(out, AK_PROTO_MAX_REPLY) != AK_OK)
		ak_buf_reset(out); /* cannot even say why: the caller closes on an empty reply */
}

void
agent_dispatch_verdict_clear(void)
{
	memset(&verdict, 0, sizeof(verdict));
}

void
agent_dispatch_verdict(enum ak_err v, const char *detail)
{
	verdict.set = 1;
	verdict.v = v;
	verdict.detail = detail;
}

/* Request handlers: each returns AK_OK after writing its own reply to out, or an error the caller
 * turns into an ERROR reply. AK_ERR_BAD_MESSAGE (malformed payload) also closes the connection. */

static enum ak_err
payload_end(const struct ak_buf *req)
{
	return ak_buf_len(req) == 0 ? AK_OK : AK_ERR_BAD_MESSAGE;
}

static enum ak_err
do_status(struct ak_buf *req, struct ak_buf *out, uint64_t now)
{
	struct ak_status s;
	enum ak_err r;

	if ((r = payload_end(req)) != AK_OK)
		return r;
	memset(&s, 0, sizeof(s));
	s.proto_version = AK_PROTO_VERSION;
	s.unlocked = st.key != NULL;
	s.weak_kdf = st.key != NULL && ak_kdf_is_weak(&st.kdf);
	if (st.pid == 0)
		st.pid = (uint32_t)getpid();
	s.pid = st.pid;
	s.store_path = st.store_path;
	s.nprofiles = st.store ? (uint32_t)st.store->n : 0;
	if (st.key == NULL)
		s.lifetime_left = 0;
	else if (st.lock_at == 0)
		s.lifetime_left = AK_LIFETIME_NONE;
	else
		s.lifetime_left = st.lock_at > now ? (uint32_t)((st.lock_at - now + 999) / 1000) : 0;
	s.idle_timeout = st.idle_s ? st.idle_s : AK_LIFETIME_NONE;
	if ((r = ak_proto_begin(out, AK_MSG_STATUS_REPLY)) != AK_OK ||
	    (r = ak_proto_put_status(out, &s)) != AK_OK)
		return r;
	return ak_proto_finish(out, AK_PROTO_MAX_REPLY);
}

/* Read the keystore file and open it with key, decrypting in place: the file is read into the arena,
 * so the plaintext needs no buffer of its own. Its hash is taken before the ciphertext is gone. */
static enum ak_err
open_file(const uint8_t *key, struct ak_header *hdr, struct ak_store **out, uint8_t *hash)
{
	uint8_t *img = NULL;
	size_t len = 0;
	enum ak_err r;

	if ((r = ak_store_read_secure(st.store_path, &img, &len)) != AK_OK)
		goto out;
	ak_store_image_hash(img, len, hash);
	r = ak_store_open_in_place(img, len, key, hdr, out);
out:
	ak_smem_free(img); /* wipes the plaintext */
	return r;
}

static enum ak_err
do_unlock(struct ak_buf *req, struct ak_buf *out, uint64_t now, struct agent_result *res)
{
	const uint8_t *kp;
	size_t klen;
	uint32_t lifetime;
	uint8_t *key = NULL;
	struct ak_store *store = NULL;
	struct ak_header hdr;
	uint8_t hash[AK_FILE_HASH_BYTES];
	enum ak_err r;

	if (ak_buf_get_string_direct(req, &kp, &klen, AK_KEY_BYTES) != AK_OK ||
	    (klen != 0 && klen != AK_KEY_BYTES) ||
	    ak_buf_get_u32(req, &lifetime) != AK_OK || payload_end(req) != AK_OK) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (klen == 0) {
		/* "akctl unlock -t" on an unlocked agent: without the key the lifetime may only get shorter.
		 * Whoever can reach the socket must not keep the secrets unlocked longer than the person
		 * who typed the passphrase chose. */
		uint64_t d;

		if (st.key == NULL) {
			r = AK_ERR_LOCKED;
			goto out;
		}
		d = lifetime_deadline(lifetime, now);
		if (d == 0 ? st.lock_at != 0 : st.lock_at != 0 && d > st.lock_at) {
			r = AK_ERR_DENIED;
			goto out;
		}
		st.lock_at = d;
		r = reply_simple(out, AK_MSG_OK);
		goto out;
	}
	/* The key is copied out of the request buffer (which the caller wipes) into the arena. */
	if ((key = ak_smem_alloc(AK_KEY_BYTES)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	memcpy(key, kp, AK_KEY_BYTES);
	r = open_file(key, &hdr, &store, hash);
	if (r == AK_ERR_AUTH) {
		uint64_t delay;
		unsigned n;

		st.fails++;
		n = st.fails > 6 ? 6 : st.fails; /* 250 ms * 2^5 = 8 s: the cap */
		delay = (uint64_t)UNLOCK_DELAY_BASE_MS << (n - 1);
		if (delay > UNLOCK_DELAY_MAX_MS)
			delay = UNLOCK_DELAY_MAX_MS;
		st.unlock_gate = now + delay;
		res->hold_until = st.unlock_gate;
		ak_warn("unlock failed (%u consecutive)", st.fails);
		goto out;
	}
	if (r != AK_OK)
		goto out;
	/* Success: replace whatever we held (a second UNLOCK re-reads the file, e.g. after passwd). */
	ak_store_free(st.store);
	ak_smem_free(st.key);
	st.store = store;
	st.key = key;
	store = NULL;
	key = NULL;
	st.kdf = hdr.kdf;
	st.fails = 0;
	st.unlock_gate = 0;
	st.unlocked_at = ak_now_s();
	(void)profiles_expire(st.store, st.unlocked_at);
	store_changed(); /* after the wipe times are stamped: LIST shows them */
	store_from_file(hash);
	agent_audit_set_key(st.key);
	set_lifetime(lifetime, now);
	touch_idle(now);
	ak_info("unlocked");
	r = reply_simple(out, AK_MSG_OK);
out:
	ak_store_free(store);
	ak_smem_free(key); /* wipes a key that did not open the store */
	return r;
}

/* The reply is built once per store and copied out after: it only changes when the store does. */
static int list_by_ref;

void
agent_dispatch_replies_by_ref(void)
{
	list_by_ref = 1;
}

static enum ak_err
do_list(struct ak_buf *req, struct ak_buf *out, struct agent_result *res)
{
	struct ak_buf *b;
	enum ak_err r;
	size_t i;

	if ((r = payload_end(req)) != AK_OK)
		return r;
	if (st.key == NULL)
		return AK_ERR_LOCKED;
	if (st.list_reply == NULL) {
		if ((b = ak_buf_new_secure(AK_PROTO_MAX_REPLY)) == NULL)
			return AK_ERR_NOMEM;
		if ((r = ak_proto_begin(b, AK_MSG_LIST_REPLY)) != AK_OK ||
		    (r = ak_buf_put_u32(b, (uint32_t)st.store->n)) != AK_OK)
			goto fail;
		for (i = 0; i < st.store->n; i++)
			if ((r = ak_proto_put_list_entry(b, st.store->p[i])) != AK_OK)
				goto fail;
		if ((r = ak_proto_finish(b, AK_PROTO_MAX_REPLY)) != AK_OK)
			goto fail;
		st.list_reply = b;
	}
	/* The most frequent large reply: copying it into the connection's buffer, and wiping it there
	 * once sent, cost more than sending it. */
	if (list_by_ref) {
		res->ref = ak_buf_ptr(st.list_reply);
		res->ref_len = ak_buf_len(st.list_reply);
		return AK_OK;
	}
	return ak_buf_put(out, ak_buf_ptr(st.list_reply), ak_buf_len(st.list_reply));
fail:
	ak_buf_free(b);
	return r;
}

/* LIST_PACKED: the same rows in about a fifth of the bytes (clients of this version ask for it; LIST
 * stays for older ones). Built once per store and sent from the cache like LIST. */
static enum ak_err
do_list_packed(struct ak_buf *req, struct ak_buf *out, struct agent_result *res)
{
	struct ak_buf *b;
	enum ak_err r;

	if ((r = payload_end(req)) != AK_OK)
		return r;
	if (st.key == NULL)
		return AK_ERR_LOCKED;
	if (st.list_packed == NULL) {
		if ((b = ak_buf_new_secure(AK_PROTO_MAX_REPLY)) == NULL)
			return AK_ERR_NOMEM;
		if ((r = ak_proto_put_list_packed(b, st.store->p, st.store->n)) != AK_OK) {
			ak_buf_free(b);
			return r;
		}
		st.list_packed = b;
	}
	if (list_by_ref) {
		res->ref = ak_buf_ptr(st.list_packed);
		res->ref_len = ak_buf_len(st.list_packed);
		return AK_OK;
	}
	return ak_buf_put(out, ak_buf_ptr(st.list_packed), ak_buf_len(st.list_packed));
}

/* A profile name field: well-formed string (else BAD_MESSAGE), then its syntax (else BAD_NAME). The
 * name is copied into the arena; the caller frees it with ak_smem_free. */
static enum ak_err
get_name(struct ak_buf *req, char **name)
{
	enum ak_err r;

	*name = NULL;
	if (ak_buf_get_cstring(req, name, AK_TEXT_MAX, 1) != AK_OK || payload_end(req) != AK_OK) {
		ak_smem_free(*name);
		*name = NULL;
		return AK_ERR_BAD_MESSAGE;
	}
	if ((r = ak_name_check(*name)) != AK_OK) {
		ak_smem_free(*name);
		*name = NULL;
	}
	return r;
}

/* The request's profile name (*name: the caller frees it, which wipes it) and that profile in the
 * unlocked store: LOCKED or NO_PROFILE otherwise. */
static enum ak_err
get_stored(struct ak_buf *req, char **name, const struct ak_profile **p)
{
	enum ak_err r;

	*p = NULL;
	if ((r = get_name(req, name)) != AK_OK)
		return r;
	if (st.key == NULL)
		return AK_ERR_LOCKED;
	if ((*p = ak_store_find(st.store, *name)) == NULL)
		return AK_ERR_NO_PROFILE;
	return AK_OK;
}

/* LIST_ONE: the LIST row of one profile, so that a client asking about one name (akctl add checks it
 * is free) does not fetch the whole list: at 10,000 profiles that is 1.5 MB, rebuilt after each write. */
static enum ak_err
do_list_one(struct ak_buf *req, struct ak_buf *out)
{
	const struct ak_profile *p;
	char *name = NULL;
	enum ak_err r;

	if ((r = get_stored(req, &name, &p)) != AK_OK)
		goto out;
	if ((r = ak_proto_begin(out, AK_MSG_LIST_REPLY)) != AK_OK || (r = ak_buf_put_u32(out, 1)) != AK_OK ||
	    (r = ak_proto_put_list_entry(out, p)) != AK_OK)
		goto out;
	r = ak_proto_finish(out, AK_PROTO_MAX_REPLY);
out:
	if (r != AK_OK)
		ak_buf_reset(out);
	ak_smem_free(name); /* names are secret: wiped */
	return r;
}

/* GET, or GET_PREVIOUS: a copy of the profile with its previous keys in place of the current ones.
 * A profile under confirm-on-use first starts a confirmation and sends nothing (res->confirm_id); the
 * request comes back with the verdict. */
static enum ak_err
do_get(struct ak_buf *req, struct ak_buf *out, int previous, struct agent_result *res, uint64_t now)
{
	const struct ak_profile *p;
	struct ak_profile *view = NULL;
	char *name = NULL;
	enum ak_err r;

	if ((r = get_name(req, &name)) != AK_OK)
		goto out;
	if (verdict.set && verdict.v != AK_OK) {
		/* Denied, not answered, or the agent locked meanwhile: nothing is looked up. */
		r = verdict.v;
		err_detail = verdict.detail;
		goto out;
	}
	if (st.key == NULL) {
		r = AK_ERR_LOCKED;
		goto out;
	}
	if ((p = ak_store_find(st.store, name)) == NULL) {
		r = AK_ERR_NO_PROFILE;
		goto out;
	}
	if (p->expired) {
		r = AK_ERR_EXPIRED;
		goto out;
	}
	if (p->confirm && !verdict.set) {
		if ((res->confirm_id = agent_confirm_start(cur_peer, name, previous, now)) == 0) {
			r = AK_ERR_NOT_CONFIRMED;
			err_detail = "too many confirmations are pending";
			goto out;
		}
		ak_smem_free(name); /* nothing logged yet: the verdict's run logs the outcome */
		return AK_OK;
	}
	if (previous) {
		if ((r = ak_profile_previous_view(p, ak_now_s(), &view)) != AK_OK)
			goto out;
		p = view;
	}
	if ((r = ak_proto_begin(out, AK_MSG_PROFILE_REPLY)) != AK_OK ||
	    (r = ak_proto_put_profile(out, p)) != AK_OK)
		goto out;
	r = ak_proto_finish(out, AK_PROTO_MAX_REPLY);
out:
	if (name != NULL)
		agent_uselog_add(previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name, cur_peer, r);
	ak_profile_free(view); /* wipes the copy */
	ak_smem_free(name);
	return r;
}

/* The write path: one keystore transaction (ak_store_txn_run) -- under the keystore lock, re-read and
 * open the current file with our key so nothing another writer did is lost, apply the change, seal
 * with a fresh nonce, write atomically -- and only then swap the in-memory store. On failure the old
 * in-memory store stays. */
struct write_op {
	struct ak_profile *add;   /* ADD: owned until put into the store */
	int force;
	int if_source;            /* ADD with AK_ADD_IF_SOURCE: only add->secret is taken */
	const char *remove;       /* REMOVE: name */
	struct ak_edit *edit;     /* EDIT */
	int expire;               /* nothing but the expiry every write does */
};

/* The stored profile with only its secret replaced, while its source is the request's. Runs on the
 * store as re-read under the writer lock, so the comparison and the write are one step. */
static enum ak_err
put_secret_if_source(struct ak_store *s, struct write_op *op)
{
	const struct ak_profile *cur = ak_store_find(s, op->add->name);
	struct ak_profile *p;
	enum ak_err r;

	if (cur == NULL)
		return AK_ERR_NO_PROFILE;
	if (strcmp(cur->source, op->add->source) != 0)
		return AK_ERR_SOURCE_CHANGED;
	if ((p = ak_profile_dup(cur)) == NULL)
		return AK_ERR_NOMEM;
	if ((r = ak_profile_set_field(&p->secret, op->add->secret)) == AK_OK)
		r = ak_store_put(s, p, 1);
	if (r != AK_OK)
		ak_profile_free(p);
	return r;
}

/* ak_store_put stamps created/rotated: the rule lives there, not here. */
static enum ak_err
apply_op(struct ak_store *s, void *arg)
{
	struct write_op *op = arg;
	enum ak_err r;

	if (op->expire)
		return AK_OK;
	if (op->remove != NULL)
		return ak_store_remove(s, op->remove);
	if (op->edit != NULL)
		return ak_edit_apply(s, op->edit);
	if (op->if_source)
		return put_secret_if_source(s, op);
	if ((r = ak_store_put(s, op->add, op->force)) == AK_OK)
		op->add = NULL; /* the store owns it now */
	return r;
}

/* One write: everything it needs is its own, so it can run on the writer thread while the loop goes on
 * (see writer.c). It lives in the arena: it holds a key copy and the change's secrets. */
struct agent_write_job {
	struct agent_write_job *next;    /* in the queue */
	const struct agent_peer *waiter; /* the connection waiting for the reply; NULL: gone, or none */
	struct agent_peer who;           /* for the usage log: pid, uid and a copy of exe */
	uint8_t type;                    /* AK_MSG_ADD, _REMOVE, _EDIT, or AK_USE_EXPIRE */
	char name[AK_NAME_MAX + 1];      /* the profile, for the usage log */
	char *rm_name;                   /* REMOVE: what op.remove points at (arena) */
	struct write_op op;
	char path[AK_PATH_MAX];
	uint8_t *key;                    /* AK_KEY_BYTES arena copy, wiped with the job */
	enum ak_err cancelled;           /* not AK_OK: finish with this error without writing */
	/* Set by agent_write_job_run: */
	enum ak_err r;
	struct ak_store *written;
	struct ak_kdf kdf;
	uint8_t hash[AK_FILE_HASH_BYTES]; /* of the file written */
	/* Taken from the loop just before the job runs (job_base): a copy of st.store and the hash of
	 * the file it came from, so the write need not parse the file again. NULL: parse it. */
	struct ak_store *base;
	uint8_t base_hash[AK_FILE_HASH_BYTES];
};

/* Wipe what the job holds of secrets (the key copy, the change): when it is done or cancelled. */
static void
job_wipe(struct agent_write_job *j)
{
	ak_smem_free(j->key);
	j->key = NULL;
	ak_profile_free(j->op.add);
	j->op.add = NULL;
	ak_edit_free(j->op.edit);
	j->op.edit = NULL;
	ak_smem_free(j->rm_name);
	j->rm_name = NULL;
	j->op.remove = NULL;
	ak_store_free(j->written);
	j->written = NULL;
	ak_store_free(j->base);
	j->base = NULL;
}

static void
job_free(struct agent_write_job *j)
{
	if (j == NULL)
		return;
	job_wipe(j);
	free(j->who.exe);
	ak_smem_free(j); /* wipes the name */
}

void
agent_write_job_drop(struct agent_write_job *j)
{
	job_free(j);
}

const struct agent_peer *
agent_write_job_waiter(const struct agent_write_job *j)
{
	return j->waiter;
}

/* A job for the current state (unlocked) of a request by peer (NULL: the agent itself). */
static struct agent_write_job *
job_new(uint8_t type, const struct agent_peer *peer)
{
	struct agent_write_job *j;

	if ((j = ak_smem_alloc(sizeof(*j))) == NULL)
		return NULL;
	j->type = type;
	j->waiter = peer;
	if (peer != NULL) {
		j->who.pid = peer->pid;
		j->who.uid = peer->uid;
		if (peer->exe != NULL && (j->who.exe = strdup(peer->exe)) == NULL)
			goto fail;
	} else {
		j->who.pid = getpid();
		j->who.uid = getuid();
	}
	snprintf(j->path, sizeof(j->path), "%s", st.store_path);
	if ((j->key = ak_smem_alloc(AK_KEY_BYTES)) == NULL)
		goto fail;
	memcpy(j->key, st.key, AK_KEY_BYTES);
	return j;
fail:
	job_free(j);
	return NULL;
}

void
agent_write_job_run(struct agent_write_job *j)
{
	struct ak_store_txn t;

	if (j->cancelled != AK_OK) {
		j->r = j->cancelled;
		return;
	}
	memset(&t, 0, sizeof(t));
	t.path = j->path;
	t.lock_timeout_ms = AGENT_STORE_LOCK_MS;
	t.key = j->key;
	t.apply = apply_op;
	t.arg = &j->op;
	t.written = &j->written;
	t.kdf_out = &j->kdf;
	t.hash_out = j->hash;
	if (j->base != NULL) {
		t.base = &j->base;
		t.base_hash = j->base_hash;
	}
	j->r = ak_store_txn_run(&t);
}

/* On the loop, right before j runs (earlier jobs have changed the store by then): a snapshot of the
 * store when it is exactly what the file held, so the writer can skip decrypting and parsing the file.
 * A snapshot sharing the profiles (ak_store_share), not a copy of each: the loop keeps serving its own
 * store meanwhile, and neither side changes a shared profile in place (ak_store_own), so a write costs
 * the loop one pointer array, and installing the written store frees only what the write replaced. */
static void
job_base(struct agent_write_job *j)
{
	if (j->base != NULL || j->cancelled != AK_OK || !st.file_hash_ok || st.store == NULL)
		return;
	if ((j->base = ak_store_share(st.store)) != NULL)
		memcpy(j->base_hash, st.file_hash, sizeof(j->base_hash));
}

/* Back on the loop: the written store replaces ours when it was written with the key we still hold
 * (a lock, or an unlock with another key, happened meanwhile otherwise). */
static enum ak_err
job_install(struct agent_write_job *j)
{
	int same = st.key != NULL && j->key != NULL && sodium_memcmp(st.key, j->key, AK_KEY_BYTES) == 0;
	struct ak_profile *p;
	size_t i;

	if (j->r == AK_ERR_AUTH) {
		/* Re-keyed (akctl passwd) or replaced: our key is stale, so let go of everything. */
		if (same)
			agent_state_lock("keystore changed");
		return AK_ERR_STORE_CHANGED;
	}
	if (j->r != AK_OK)
		return j->r;
	if (same) {
		/* The store as written holds every secret again: a profile wiped by its own lifetime stays
		 * wiped (by name) until the next unlock, whatever the write changed. */
		for (i = 0; st.store != NULL && i < st.store->n; i++)
			if (st.store->p[i]->expired && (p = ak_store_own(j->written, st.store->p[i]->name)) != NULL)
				profile_wipe(p);
		ak_store_free(st.store);
		st.store = j->written;
		j->written = NULL;
		st.kdf = j->kdf;
		(void)profiles_expire(st.store, ak_now_s());
		store_changed();
		store_from_file(j->hash);
	}
	return AK_OK;
}

/* The end of a grace-expiry write. */
static void
expiry_done(struct agent_write_job *j)
{
	enum ak_err r = job_install(j);

	st.expiring = 0;
	agent_uselog_add(AK_USE_EXPIRE, NULL, NULL, r);
	if (r != AK_OK) {
		if (st.key == NULL)
			return; /* the keystore changed under us: locked, nothing left to wipe */
		(void)ak_store_expire(st.store, ak_now_s());
		store_changed();
		st.expire_retry = ak_now_ms() + 5000;
		ak_warn("could not write the keystore after a grace period ended; retrying");
	} else {
		st.expire_retry = 0;
		ak_info("a previous key's grace period ended: wiped");
	}
}

/* Hand the next queued job to the writer when it is free. */
static void
jobs_kick(void)
{
	struct agent_write_job *j;

	if (inflight != NULL || writer == NULL || (j = queue_head) == NULL)
		return;
	job_base(j);
	if (writer(j) != 0)
		return;
	queue_head = j->next;
	if (queue_head == NULL)
		queue_tail = NULL;
	j->next = NULL;
	inflight = j;
}

static void
jobs_cancel(void)
{
	struct agent_write_job *j;

	for (j = queue_head; j != NULL; j = j->next) {
		j->cancelled = AK_ERR_LOCKED;
		job_wipe(j);
	}
}

void
agent_dispatch_set_writer(int (*submit)(struct agent_write_job *))
{
	struct agent_write_job *j;

	writer = submit;
	if (submit != NULL)
		return;
	/* Stopped: the writer dropped the job it held; drop those that waited. */
	inflight = NULL;
	while ((j = queue_head) != NULL) {
		queue_head = j->next;
		job_free(j);
	}
	queue_tail = NULL;
	st.expiring = 0;
}

void
agent_dispatch_forget(const struct agent_peer *peer)
{
	struct agent_write_job *j;

	if (peer == NULL)
		return;
	if (inflight != NULL && inflight->waiter == peer)
		inflight->waiter = NULL;
	for (j = queue_head; j != NULL; j = j->next)
		if (j->waiter == peer)
			j->waiter = NULL;
}

/* Run j: on the writer (res->pending, the reply comes later) or, without one, here and now. Takes j.
 * Returns the write's outcome when it ran here (the caller replies), AK_OK when pending. */
static enum ak_err
job_submit(struct agent_write_job *j, struct agent_result *res)
{
	enum ak_err r;

	if (writer == NULL || j->waiter == NULL) {
		job_base(j);
		agent_write_job_run(j);
		r = job_install(j);
		agent_uselog_add(j->type, j->name, cur_peer, r);
		job_free(j);
		return r;
	}
	if (queue_tail != NULL)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	res->pending = 1;
	jobs_kick();
	return AK_OK;
}

static void
expiry_start(uint64_t now)
{
	struct agent_write_job *j;

	if ((j = job_new(AK_USE_EXPIRE, NULL)) == NULL) {
		st.expire_retry = now + 5000;
		return;
	}
	j->op.expire = 1;
	st.expiring = 1;
	if (writer != NULL) {
		if (queue_tail != NULL)
			queue_tail->next = j;
		else
			queue_head = j;
		queue_tail = j;
		jobs_kick();
		return;
	}
	job_base(j);
	agent_write_job_run(j);
	expiry_done(j);
	job_free(j);
	ak_smem_trim();
}

void
agent_dispatch_write_done(struct agent_write_job *j, struct ak_buf *out, struct agent_result *res)
{
	enum ak_err r;

	memset(res, 0, sizeof(*res));
	if (j == inflight)
		inflight = NULL;
	if (j->type == AK_USE_EXPIRE) {
		expiry_done(j);
	} else {
		r = job_install(j);
		agent_uselog_add(j->type, j->name, &j->who, r);
		ak_debug("request %s (%u): %s", msg_name(j->type), (unsigned)j->type, ak_strerror(r));
		if (out != NULL) {
			ak_buf_reset(out);
			if (r == AK_OK)
				r = reply_simple(out, AK_MSG_OK);
			if (r != AK_OK)
				reply_error(out, r, NULL);
			if (ak_buf_len(out) == 0)
				res->close = 1;
		}
	}
	job_free(j);
	ak_smem_trim();
	jobs_kick();
}

static enum ak_err
do_add(struct ak_buf *req, struct ak_buf *out, struct agent_result *res)
{
	struct write_op op;
	struct agent_write_job *j;
	char name[AK_NAME_MAX + 1] = "";
	uint8_t flags;
	enum ak_err r;

	memset(&op, 0, sizeof(op));
	/* The decoder validates the profile too; any failure is a malformed request (docs/protocol.md). */
	if (ak_buf_get_u8(req, &flags) != AK_OK ||
	    ak_proto_get_profile(req, &op.add) != AK_OK || payload_end(req) != AK_OK ||
	    ak_profile_validate(op.add) != AK_OK) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (st.key == NULL) {
		r = AK_ERR_LOCKED;
		goto out;
	}
	/* The store may take op.add: keep its name for the log (wiped below). */
	snprintf(name, sizeof(name), "%s", op.add->name);
	op.force = (flags & AK_ADD_FORCE) != 0;
	op.if_source = (flags & AK_ADD_IF_SOURCE) != 0;
	if ((j = job_new(AK_MSG_ADD, cur_peer)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	memcpy(j->name, name, sizeof(name));
	j->op = op;
	op.add = NULL; /* the job's now */
	name[0] = '\0'; /* the job logs it */
	if ((r = job_submit(j, res)) != AK_OK || res->pending)
		goto out;
	r = reply_simple(out, AK_MSG_OK);
out:
	if (name[0] != '\0')
		agent_uselog_add(AK_MSG_ADD, name, cur_peer, r);
	sodium_memzero(name, sizeof(name));
	ak_profile_free(op.add); /* wipes the secret if the store did not take it */
	return r;
}

static enum ak_err
do_remove(struct ak_buf *req, struct ak_buf *out, struct agent_result *res)
{
	const struct ak_profile *p;
	struct agent_write_job *j;
	char *name = NULL;
	enum ak_err r;

	/* Cheap answer without touching the file when we already know it is absent. */
	if ((r = get_stored(req, &name, &p)) != AK_OK)
		goto out;
	if ((j = job_new(AK_MSG_REMOVE, cur_peer)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->op.remove = j->rm_name = name;
	name = NULL; /* the job's now; it logs the outcome */
	if ((r = job_submit(j, res)) != AK_OK || res->pending)
		goto out;
	r = reply_simple(out, AK_MSG_OK);
out:
	if (name != NULL)
		agent_uselog_add(AK_MSG_REMOVE, name, cur_peer, r);
	ak_smem_free(name);
	return r;
}

static enum ak_err
do_edit(struct ak_buf *req, struct ak_buf *out, struct agent_result *res)
{
	struct write_op op;
	struct agent_write_job *j;
	enum ak_err r;

	memset(&op, 0, sizeof(op));
	if ((r = ak_proto_get_edit(req, &op.edit)) != AK_OK || payload_end(req) != AK_OK) {
		/* A bad name or variable name says which; anything else is a malformed request. */
		if (r != AK_ERR_BAD_NAME && r != AK_ERR_BAD_VARNAME && r != AK_ERR_EMPTY)
			r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (st.key == NULL) {
		r = AK_ERR_LOCKED;
		goto out;
	}
	if (ak_store_find(st.store, op.edit->profile) == NULL) {
		r = AK_ERR_NO_PROFILE;
		goto out;
	}
	if ((j = job_new(AK_MSG_EDIT, cur_peer)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	snprintf(j->name, sizeof(j->name), "%s", op.edit->profile);
	j->op = op;
	op.edit = NULL; /* the job's now; it logs the outcome */
	if ((r = job_submit(j, res)) != AK_OK || res->pending)
		goto out;
	r = reply_simple(out, AK_MSG_OK);
out:
	if (op.edit != NULL)
		agent_uselog_add(AK_MSG_EDIT, op.edit->profile, cur_peer, r);
	ak_edit_free(op.edit); /* wipes a secret it carried */
	return r;
}

/* AUDIT_MAP: each profile's name with the hash the audit log writes for it, only while unlocked. */
static enum ak_err
do_audit_map(struct ak_buf *req, struct ak_buf *out)
{
	enum ak_err r;

	if ((r = payload_end(req)) != AK_OK)
		return r;
	if (st.key == NULL)
		return AK_ERR_LOCKED;
	return agent_audit_map_reply(out, st.store);
}

/* LOG: the usage log, only while unlocked (it names profiles). */
static enum ak_err
do_log(struct ak_buf *req, struct ak_buf *out)
{
	char *profile = NULL;
	int64_t since;
	enum ak_err r;

	if (ak_proto_get_log_req(req, &profile, &since) != AK_OK || payload_end(req) != AK_OK) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (st.key == NULL) {
		r = AK_ERR_LOCKED;
		goto out;
	}
	r = agent_uselog_reply(out, profile, since);
out:
	if (profile != NULL)
		sodium_memzero(profile, strlen(profile));
	free(profile);
	return r;
}

/* LOG_USAGE: a proxy's token counts for a profile, into the usage log (only while unlocked: the log
 * names profiles, and a locked agent keeps none). */
static enum ak_err
do_log_usage(struct ak_buf *req, struct ak_buf *out)
{
	struct ak_use_entry e;
	enum ak_err r;

	if (ak_proto_get_usage_report(req, &e) != AK_OK || payload_end(req) != AK_OK) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (st.key == NULL) {
		r = AK_ERR_LOCKED;
		goto out;
	}
	if (ak_store_find(st.store, e.profile) == NULL) {
		r = AK_ERR_NO_PROFILE;
		goto out;
	}
	agent_uselog_add_usage(&e, cur_peer);
	r = reply_simple(out, AK_MSG_OK);
out:
	ak_use_entry_clear(&e); /* wipes the name */
	return r;
}

void
agent_dispatch(uint8_t type, struct ak_buf *req, struct ak_buf *out, struct agent_result *res,
    const struct agent_peer *peer)
{
	uint64_t now = ak_now_ms();
	enum ak_err r;

	cur_peer = peer;
	err_detail = NULL;
	memset(res, 0, sizeof(*res));
	ak_buf_reset(out);
	/* Activity is what uses or changes a secret: STATUS and LIST (names and redacted forms only) are
	 * what a prompt, a completion or `akctl status` polls, and must not keep the keys unlocked
	 * forever. */
	if (type != AK_MSG_STATUS && type != AK_MSG_LIST && type != AK_MSG_LIST_ONE && type != AK_MSG_LOG &&
	    type != AK_MSG_AUDIT_MAP && type != AK_MSG_LIST_PACKED)
		touch_idle(now);
	switch (type) {
	case AK_MSG_STATUS:
		r = do_status(req, out, now);
		break;
	case AK_MSG_UNLOCK:
		r = do_unlock(req, out, now, res);
		break;
	case AK_MSG_LOCK:
		if ((r = payload_end(req)) == AK_OK) {
			agent_state_lock("requested");
			r = reply_simple(out, AK_MSG_OK);
		}
		break;
	case AK_MSG_LIST:
		r = do_list(req, out, res);
		break;
	case AK_MSG_GET:
		r = do_get(req, out, 0, res, now);
		break;
	case AK_MSG_GET_PREVIOUS:
		r = do_get(req, out, 1, res, now);
		break;
	case AK_MSG_ADD:
		r = do_add(req, out, res);
		break;
	case AK_MSG_REMOVE:
		r = do_remove(req, out, res);
		break;
	case AK_MSG_EDIT:
		r = do_edit(req, out, res);
		break;
	case AK_MSG_LOG:
		r = do_log(req, out);
		break;
	case AK_MSG_AUDIT_MAP:
		r = do_audit_map(req, out);
		break;
	case AK_MSG_LOG_USAGE:
		r = do_log_usage(req, out);
		break;
	case AK_MSG_LIST_ONE:
		r = do_list_one(req, out);
		break;
	case AK_MSG_LIST_PACKED:
		r = do_list_packed(req, out, res);
		break;
	case AK_MSG_SHUTDOWN:
		if ((r = payload_end(req)) == AK_OK) {
			res->shutdown = 1;
			r = reply_simple(out, AK_MSG_OK);
		}
		break;
	default:
		r = AK_ERR_UNKNOWN_MESSAGE;
		break;
	}
	cur_peer = NULL;
	memset(&verdict, 0, sizeof(verdict));
	if (res->pending)
		return; /* agent_dispatch_write_done answers */
	ak_debug("request %s (%u): %s%s", msg_name(type), (unsigned)type, ak_strerror(r),
	    res->confirm_id != 0 ? " (confirmation pending)" : "");
	/* Parsing and sealing the store leave whole slabs free: give them back (cheap when none is). */
	if (type == AK_MSG_UNLOCK || type == AK_MSG_ADD || type == AK_MSG_REMOVE || type == AK_MSG_EDIT)
		ak_smem_trim();
	if (r == AK_OK)
		return;
	if (r == AK_ERR_BAD_MESSAGE)
		res->close = 1;
	reply_error(out, r, err_detail);
	err_detail = NULL;
	if (ak_buf_len(out) == 0)
		res->close = 1;
}
