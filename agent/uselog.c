/* uselog.c - the usage log: every secret the agent hands out and every write, in a bounded ring.
 *
 * Profile names are secret in this design, so every entry (with its name and the peer's executable)
 * lives in the secure arena, entries are recorded only while unlocked, and locking wipes the ring:
 * a locked agent holds no name. The oldest entry is dropped (wiped) when the ring is full.
 */
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"

/* One block per entry: the entry and its profile name. The executable path is shared between entries
 * (a client asks many times): counted references to one arena copy. When the ring is full the oldest
 * block is wiped and reused, so recording a use allocates nothing in the steady state. */
struct exe_ref {
	size_t refs;
	char s[];
};

struct slot {
	struct ak_use_entry e;
	struct exe_ref *exe;
	char name[AK_NAME_MAX + 1];
	char client[AK_USE_CLIENT_MAX + 1]; /* LOG_USAGE's: the proxy's client, else "" */
};

static struct slot *ring[AGENT_USELOG_MAX];
static size_t head, count; /* ring[head] is the oldest of count entries */
static struct exe_ref *last_exe; /* the newest entry's, to share with the next one (not a reference) */

static void
exe_put(struct exe_ref *x)
{
	if (x == NULL || --x->refs > 0)
		return;
	if (x == last_exe)
		last_exe = NULL;
	ak_smem_free(x); /* wipes the path */
}

/* A reference to an arena copy of s: the newest entry's when it is the same path. */
static struct exe_ref *
exe_get(const char *s)
{
	size_t n = strlen(s);
	struct exe_ref *x;

	if (last_exe != NULL && strcmp(last_exe->s, s) == 0) {
		last_exe->refs++;
		return last_exe;
	}
	if ((x = ak_smem_alloc(sizeof(*x) + n + 1)) == NULL)
		return NULL;
	memcpy(x->s, s, n + 1);
	x->refs = 1;
	last_exe = x;
	return x;
}

static void
slot_free(struct slot *sl)
{
	if (sl == NULL)
		return;
	exe_put(sl->exe);
	ak_smem_free(sl); /* wipes the name */
}

/* A filled block for one entry (the ring's oldest reused when full), or NULL: locked, a name that does
 * not fit, or out of secure memory (the request itself still went through). */
static struct slot *
slot_new(uint8_t op, const char *profile, const struct agent_peer *peer, enum ak_err r)
{
	struct slot *sl;
	struct exe_ref *x;
	const char *name = profile != NULL ? profile : "";
	size_t nlen = strlen(name);

	if (!agent_state_unlocked() || nlen > AK_NAME_MAX)
		return NULL;
	if ((x = exe_get(peer != NULL && peer->exe != NULL ? peer->exe : "")) == NULL)
		return NULL;
	if (count == AGENT_USELOG_MAX) {
		/* Reuse the oldest entry's block: wiped first, then filled. */
		sl = ring[head];
		ring[head] = NULL;
		head = (head + 1) % AGENT_USELOG_MAX;
		count--;
		exe_put(sl->exe);
		sodium_memzero(sl, sizeof(*sl));
	} else if ((sl = ak_smem_alloc(sizeof(*sl))) == NULL) {
		exe_put(x);
		return NULL;
	}
	sl->exe = x;
	memcpy(sl->name, name, nlen + 1);
	sl->e.time = ak_now_s();
	sl->e.op = op;
	sl->e.err = (uint32_t)r;
	if (peer != NULL) {
		sl->e.pid = (uint32_t)peer->pid;
		sl->e.uid = (uint32_t)peer->uid;
	} else {
		/* The agent's own write (a grace period ended). */
		sl->e.pid = (uint32_t)getpid();
		sl->e.uid = (uint32_t)getuid();
	}
	sl->e.profile = sl->name;
	sl->e.exe = x->s;
	sl->e.client = sl->client;
	return sl;
}

static void
slot_push(struct slot *sl)
{
	ring[(head + count) % AGENT_USELOG_MAX] = sl;
	count++;
	agent_audit_write(&sl->e);
}

void
agent_uselog_add(uint8_t op, const char *profile, const struct agent_peer *peer, enum ak_err r)
{
	struct slot *sl = slot_new(op, profile, peer, r);

	if (sl != NULL)
		slot_push(sl);
}

void
agent_uselog_add_usage(const struct ak_use_entry *u, const struct agent_peer *peer)
{
	struct slot *sl = slot_new(AK_MSG_LOG_USAGE, u->profile, peer, AK_OK);

	if (sl == NULL)
		return;
	/* The decoder capped the client's name; a longer one is cut, never overrun. */
	snprintf(sl->client, sizeof(sl->client), "%s", u->client != NULL ? u->client : "");
	sl->e.requests = u->requests;
	sl->e.tokens_in = u->tokens_in;
	sl->e.tokens_out = u->tokens_out;
	sl->e.tokens_cache = u->tokens_cache;
	slot_push(sl);
}

void
agent_uselog_wipe(void)
{
	size_t i;

	for (i = 0; i < AGENT_USELOG_MAX; i++) {
		slot_free(ring[i]);
		ring[i] = NULL;
	}
	head = count = 0;
	last_exe = NULL;
}

size_t
agent_uselog_count(void)
{
	return count;
}

static int
matches(const struct ak_use_entry *e, const char *profile, int64_t since)
{
	return e->time >= since && (profile == NULL || strcmp(e->profile, profile) == 0);
}

enum ak_err
agent_uselog_reply(struct ak_buf *out, const char *profile, int64_t since)
{
	size_t i, n = 0;
	enum ak_err r;

	for (i = 0; i < count; i++)
		n += matches(&ring[(head + i) % AGENT_USELOG_MAX]->e, profile, since);
	if ((r = ak_proto_begin(out, AK_MSG_LOG_REPLY)) != AK_OK ||
	    (r = ak_buf_put_u32(out, (uint32_t)n)) != AK_OK)
		return r;
	for (i = 0; i < count; i++) {
		const struct ak_use_entry *e = &ring[(head + i) % AGENT_USELOG_MAX]->e;

		if (matches(e, profile, since) && (r = ak_proto_put_use_entry(out, e)) != AK_OK)
			return r;
	}
	return ak_proto_finish(out, AK_PROTO_MAX_REPLY);
}
