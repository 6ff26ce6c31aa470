/* uselog.c - the usage log: every secret the agent hands out and every write, in a bounded ring.
 *
 * Profile names are secret in this design, so every entry (with its name and the peer's executable)
 * lives in the secure arena, entries are recorded only while unlocked, and locking wipes the ring:
 * a locked agent holds no name. The oldest entry is dropped (wiped) when the ring is full.
 */
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ak_smem.h"
#include "ak_util.h"

static struct ak_use_entry *ring[AGENT_USELOG_MAX];
static size_t head, count; /* ring[head] is the oldest of count entries */

static void
entry_free(struct ak_use_entry *e)
{
	if (e == NULL)
		return;
	ak_smem_free(e->profile); /* wipes the name */
	ak_smem_free(e->exe);
	ak_smem_free(e->client);
	ak_smem_free(e);
}

static struct ak_use_entry *entry_new(uint8_t op, const char *profile,
    const struct agent_peer *peer, enum ak_err r);
static void entry_push(struct ak_use_entry *e);

void
agent_uselog_add(uint8_t op, const char *profile, const struct agent_peer *peer, enum ak_err r)
{
	entry_push(entry_new(op, profile, peer, r));
}

void
agent_uselog_add_usage(const struct ak_use_entry *u, const struct agent_peer *peer)
{
	struct ak_use_entry *e = entry_new(AK_MSG_LOG_USAGE, u->profile, peer, AK_OK);

	if (e == NULL)
		return;
	if ((e->client = ak_smem_strdup(u->client != NULL ? u->client : "")) == NULL) {
		entry_free(e);
		return;
	}
	e->requests = u->requests;
	e->tokens_in = u->tokens_in;
	e->tokens_out = u->tokens_out;
	e->tokens_cache = u->tokens_cache;
	entry_push(e);
}

static struct ak_use_entry *
entry_new(uint8_t op, const char *profile, const struct agent_peer *peer, enum ak_err r)
{
	struct ak_use_entry *e;

	if (!agent_state_unlocked())
		return NULL;
	if ((e = ak_smem_alloc(sizeof(*e))) == NULL)
		return NULL; /* out of secure memory: the request itself still went through */
	memset(e, 0, sizeof(*e));
	e->time = ak_now_s();
	e->op = op;
	e->err = (uint32_t)r;
	if (peer != NULL) {
		e->pid = (uint32_t)peer->pid;
		e->uid = (uint32_t)peer->uid;
	} else {
		/* The agent's own write (a grace period ended). */
		e->pid = (uint32_t)getpid();
		e->uid = (uint32_t)getuid();
	}
	e->profile = ak_smem_strdup(profile != NULL ? profile : "");
	e->exe = ak_smem_strdup(peer != NULL && peer->exe != NULL ? peer->exe : "");
	if (e->profile == NULL || e->exe == NULL) {
		entry_free(e);
		return NULL;
	}
	return e;
}

static void
entry_push(struct ak_use_entry *e)
{
	size_t slot;

	if (e == NULL)
		return;
	if (count == AGENT_USELOG_MAX) {
		entry_free(ring[head]);
		ring[head] = NULL;
		head = (head + 1) % AGENT_USELOG_MAX;
		count--;
	}
	slot = (head + count) % AGENT_USELOG_MAX;
	ring[slot] = e;
	count++;
	agent_audit_write(e);
}

void
agent_uselog_wipe(void)
{
	size_t i;

	for (i = 0; i < AGENT_USELOG_MAX; i++) {
		entry_free(ring[i]);
		ring[i] = NULL;
	}
	head = count = 0;
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
		n += matches(ring[(head + i) % AGENT_USELOG_MAX], profile, since);
	if ((r = ak_proto_begin(out, AK_MSG_LOG_REPLY)) != AK_OK ||
	    (r = ak_buf_put_u32(out, (uint32_t)n)) != AK_OK)
		return r;
	for (i = 0; i < count; i++) {
		const struct ak_use_entry *e = ring[(head + i) % AGENT_USELOG_MAX];

		if (matches(e, profile, since) && (r = ak_proto_put_use_entry(out, e)) != AK_OK)
			return r;
	}
	return ak_proto_finish(out, AK_PROTO_MAX_REPLY);
}
