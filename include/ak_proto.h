/* ak_proto.h - the agent's wire protocol (docs/protocol.md).
 *
 * Frame: uint32 length (big-endian, counts the type byte and payload, 1..limit), uint8 type, payload.
 * Requests may be at most AK_PROTO_MAX_REQUEST bytes, replies AK_PROTO_MAX_REPLY. One reply per request,
 * in order. Strings are uint32 length + bytes, never containing NUL.
 */
#ifndef AK_PROTO_H
#define AK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ak_buf.h"
#include "ak_edit.h"
#include "ak_err.h"
#include "ak_store.h"

#define AK_PROTO_VERSION 6
#define AK_PROTO_MAX_REQUEST (256u * 1024)
#define AK_PROTO_MAX_REPLY (64u * 1024 * 1024)

enum ak_msg {
	/* requests */
	AK_MSG_STATUS = 1,   /* -> STATUS_REPLY */
	AK_MSG_UNLOCK = 2,   /* string key (0 or 32 bytes), uint32 lifetime_s (0 = agent default,
	                        0xffffffff = none) -> OK | ERROR */
	AK_MSG_LOCK = 3,     /* -> OK */
	AK_MSG_LIST = 4,     /* -> LIST_REPLY | ERROR */
	AK_MSG_GET = 5,      /* string name -> PROFILE_REPLY | ERROR */
	AK_MSG_ADD = 6,      /* uint8 flags (AK_ADD_*), profile -> OK | ERROR */
	AK_MSG_REMOVE = 7,   /* string name -> OK | ERROR */
	AK_MSG_SHUTDOWN = 8, /* -> OK, then the agent locks and exits */
	AK_MSG_EDIT = 9,     /* edit (ak_edit.h) -> OK | ERROR */
	AK_MSG_GET_PREVIOUS = 10, /* string name -> PROFILE_REPLY with each secret that has a previous
	                             value in its grace replaced by it | ERROR (NO_PREVIOUS) */
	AK_MSG_LOG = 11,     /* string profile ("" = all), uint64 since (unix s, 0 = all) -> LOG_REPLY |
	                        ERROR (LOCKED) */
	AK_MSG_AUDIT_MAP = 12, /* -> AUDIT_MAP_REPLY | ERROR (LOCKED) */
	AK_MSG_LOG_USAGE = 13, /* string profile, string client, uint32 requests, uint64 input, output,
	                        * cache tokens -> OK | ERROR (LOCKED, NO_PROFILE): token counts an
	                        * akctl-proxy saw pass through, recorded in the usage log */
	AK_MSG_LIST_ONE = 14, /* string name -> LIST_REPLY with that profile's row alone | ERROR (LOCKED,
	                         NO_PROFILE): what LIST says of one profile, without the whole list */
	AK_MSG_LIST_PACKED = 15, /* -> LIST_PACKED_REPLY | ERROR (LOCKED): LIST's rows, packed
	                            (ak_proto_pack.h) */
	/* replies */
	AK_MSG_OK = 0x80,
	AK_MSG_ERROR = 0x81,        /* uint32 ak_err, string detail (never a secret) */
	AK_MSG_STATUS_REPLY = 0x82, /* see struct ak_status */
	AK_MSG_LIST_REPLY = 0x83,   /* uint32 n, n x list entry */
	AK_MSG_PROFILE_REPLY = 0x84,/* profile */
	AK_MSG_LOG_REPLY = 0x85,    /* uint32 n, n x use entry, oldest first */
	AK_MSG_AUDIT_MAP_REPLY = 0x86, /* uint32 n, n x (string name, string hash): the audit log's
	                                  keyed hash (32 hex digits) of each profile name */
	AK_MSG_LIST_PACKED_REPLY = 0x87, /* varint n, text table, n x packed row (ak_proto_pack.h) */
};

#define AK_ADD_FORCE 0x01
/* Replace only the secret of the stored profile of that name, and only while its source is still the
 * request's source (a compare-and-swap for pull: a profile edited or re-imported meanwhile is left as
 * it is, AK_ERR_SOURCE_CHANGED). */
#define AK_ADD_IF_SOURCE 0x02
#define AK_LIFETIME_NONE 0xffffffffu

struct ak_status {
	uint32_t proto_version;
	uint8_t unlocked;
	uint8_t weak_kdf;          /* the unlocked store's KDF is below "interactive" */
	uint32_t pid;
	char *store_path;          /* malloc'd on decode */
	uint32_t nprofiles;        /* 0 when locked */
	uint32_t lifetime_left;    /* seconds until auto-lock; 0xffffffff none; 0 when locked */
	uint32_t idle_timeout;     /* seconds; 0xffffffff none */
};

/* A row of LIST: no secret travels, only its redacted form. All strings malloc'd on decode. */
struct ak_list_entry {
	char *name, *provider, *secret_var, *redacted, *description;
	int64_t created, rotated;
	uint32_t nvars;
	char **vars;               /* variable names */
	uint8_t *var_secret;       /* nvars flags: 1 for a secret variable */
	int64_t rotate_every;      /* policy, seconds (0 none) */
	int64_t prev_until;        /* earliest grace deadline of a kept previous value, 0 none */
	int confirm;               /* policy: the agent asks before handing out a secret */
	int expired;               /* the agent wiped the secrets: the profile's lifetime ended */
	int64_t lifetime;          /* policy, seconds after unlock (0 none) */
	int64_t wipe_at;           /* unix s when the agent wipes (or wiped) the secrets, 0 never */
	char *deact_hint;          /* "" none; else the partial hint of the previous main key, to be
	                            * deactivated at the provider when the rotation finishes */
	uint8_t deact_pending;     /* 1: the grace is over (the key wiped), the deactivation is due */
};

/* A row of the agent's usage log: one secret handed out (GET, GET_PREVIOUS) or one write (ADD,
 * REMOVE, EDIT; EXPIRE for the agent's own write when a grace period ends, with the agent as peer).
 * No secret travels; the profile name is secret in this design, so the agent keeps the log in its
 * secure arena and only answers LOG while unlocked. Strings malloc'd on decode. */
#define AK_USE_EXPIRE 0xff /* the op of the agent's grace-expiry write (no request type) */
#define AK_USE_EXE_MAX 4096
struct ak_use_entry {
	int64_t time;              /* unix seconds */
	uint8_t op;                /* AK_MSG_GET, _GET_PREVIOUS, _ADD, _REMOVE, _EDIT, _LOG_USAGE or
	                            * AK_USE_EXPIRE */
	uint32_t pid, uid;         /* the peer (SO_PEERCRED) */
	uint32_t err;              /* enum ak_err: the outcome */
	char *profile;             /* "" when none (EXPIRE) */
	char *exe;                 /* readlink /proc/PID/exe at accept; "" when unknown */
	/* op AK_MSG_LOG_USAGE only (else zero and NULL): what went through akctl-proxy */
	char *client;              /* the proxy's client: its command's name, or "" */
	uint32_t requests;
	uint64_t tokens_in, tokens_out, tokens_cache;
};

/* A use entry's op as akctl log and the audit log name it ("get", "proxy-tokens"...; "other"). */
const char *ak_use_op_name(uint8_t op);

/* Framing ------------------------------------------------------------------------------------------ */
/* Begin a message: resets b and writes a length placeholder and the type. */
enum ak_err ak_proto_begin(struct ak_buf *b, uint8_t type);
/* Patch the length field; AK_ERR_TOO_LARGE past limit. */
enum ak_err ak_proto_finish(struct ak_buf *b, uint32_t limit);
/* Inspect the start of an input buffer: AK_ERR_TRUNCATED if a whole frame is not there yet (then
 * *need is the total bytes needed, when known), AK_ERR_TOO_LARGE if the length exceeds limit or
 * AK_ERR_BAD_MESSAGE if it is 0. On AK_OK *frame_len is 4 + length. */
enum ak_err ak_proto_frame(const struct ak_buf *in, uint32_t limit, size_t *frame_len, size_t *need);

/* Encoders append payload fields to a message begun with ak_proto_begin. */
enum ak_err ak_proto_put_profile(struct ak_buf *b, const struct ak_profile *p);
/* An ADD request's payload: flags (AK_ADD_*), then the profile. */
enum ak_err ak_proto_put_add(struct ak_buf *b, uint8_t flags, const struct ak_profile *p);
enum ak_err ak_proto_put_status(struct ak_buf *b, const struct ak_status *st);
enum ak_err ak_proto_put_list_entry(struct ak_buf *b, const struct ak_profile *p);
enum ak_err ak_proto_put_error(struct ak_buf *b, enum ak_err e, const char *detail);
/* b should be secure: an edit may carry a secret. */
enum ak_err ak_proto_put_edit(struct ak_buf *b, const struct ak_edit *e);

/* Decoders consume payload fields (after the type byte). Each validates every field (names, sizes,
 * counts) and returns AK_ERR_BAD_MESSAGE / AK_ERR_TRUNCATED / AK_ERR_TOO_LARGE on hostile input; on
 * failure nothing is allocated. Profiles decode into the secure arena (ak_profile_free). */
enum ak_err ak_proto_get_profile(struct ak_buf *b, struct ak_profile **out);
enum ak_err ak_proto_get_status(struct ak_buf *b, struct ak_status *st);
void ak_status_clear(struct ak_status *st);
enum ak_err ak_proto_get_list_entry(struct ak_buf *b, struct ak_list_entry *e);
void ak_list_entry_clear(struct ak_list_entry *e);
/* The same decode with the entry's strings and arrays carved one after another from the caller's
 * pool instead of a malloc each (a LIST of 10,000 rows made 70,000): the entry then only borrows
 * them, so it is never passed to ak_list_entry_clear; the pool's owner wipes (the redacted forms and
 * hints) and frees it. AK_ERR_NOMEM when the pool is too small. A row never takes more of the pool
 * than its wire bytes plus AK_PROTO_LIST_POOL_EXTRA. */
struct ak_proto_pool {
	uint8_t *p;
	size_t size;
	size_t used;
};
#define AK_PROTO_LIST_POOL_EXTRA 272
enum ak_err ak_proto_get_list_entry_pool(struct ak_buf *b, struct ak_list_entry *e, struct ak_proto_pool *pool);
/* EDIT payload into *out (secure arena, ak_edit_free); every action checked as ak_edit_add does. */
enum ak_err ak_proto_get_edit(struct ak_buf *b, struct ak_edit **out);
/* LOG request: profile NULL or "" for all, since 0 for all. *profile malloc'd on decode (NULL for
 * all); a non-empty name must pass ak_name_check. */
enum ak_err ak_proto_put_log_req(struct ak_buf *b, const char *profile, int64_t since);
enum ak_err ak_proto_get_log_req(struct ak_buf *b, char **profile, int64_t *since);
enum ak_err ak_proto_put_use_entry(struct ak_buf *b, const struct ak_use_entry *e);
/* *e overwritten; on failure all zero and nothing allocated. */
enum ak_err ak_proto_get_use_entry(struct ak_buf *b, struct ak_use_entry *e);
/* LOG_USAGE request: e's profile, client and counts (the other fields are the agent's to fill).
 * Decode: *e overwritten, strings malloc'd; a profile must pass ak_name_check, a client is at most
 * AK_USE_CLIENT_MAX printable ASCII bytes. */
#define AK_USE_CLIENT_MAX 64
enum ak_err ak_proto_put_usage_report(struct ak_buf *b, const struct ak_use_entry *e);
enum ak_err ak_proto_get_usage_report(struct ak_buf *b, struct ak_use_entry *e);
/* NULL-safe; frees (wiping the profile name) and zeroes. */
void ak_use_entry_clear(struct ak_use_entry *e);
/* ERROR payload: *detail malloc'd (may be NULL). */
enum ak_err ak_proto_get_error(struct ak_buf *b, enum ak_err *e, char **detail);

#endif
