/* ak_client.h - the one protocol client: akctl, akagent -k and its start-up probe, the bench and the
 * load tools all talk to an agent through it.
 *
 * Trust: a client only talks to an agent of its own user. Before connecting to the default socket
 * (no path given and no $AKAGENT_SOCK) its directory must be a real directory owned by us with no
 * group/other bits, the way akagent creates it; after every connect() the listening process's uid
 * (SO_PEERCRED) must be ours or root's. Either refusal is AK_ERR_UNTRUSTED_AGENT and nothing is sent.
 *
 * One blocking Unix-socket connection, one request in flight, send/receive timeouts so a client never
 * hangs on a stuck agent. Request and reply buffers are wiped after every exchange and on close; they
 * live in the secure arena (started by the caller: ak_smem_init) unless AK_CLIENT_PLAIN is given.
 * Not thread-safe per connection; connections in different threads must be AK_CLIENT_PLAIN (the
 * secure arena is single-threaded).
 */
#ifndef AK_CLIENT_H
#define AK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"
#include "ak_proto.h"
#include "ak_store.h"

#define AK_CLIENT_TIMEOUT_S 10     /* default send/receive timeout */
#define AK_CLIENT_CONFIRM_WAIT_S 150 /* GET: the agent may ask first (akagent --confirm-timeout, 2m at most) */
#define AK_CLIENT_DETAIL_MAX 512

/* Flags for ak_client_connect. */
#define AK_CLIENT_PLAIN 0x1u       /* plain heap buffers (threads, load tools); never for keys */

struct ak_client;

/* Connect to the agent at path, or (path NULL) at $AKAGENT_SOCK, else at the default socket, whose
 * directory is verified first. Returns:
 *   AK_OK                   *out connected (close with ak_client_close);
 *   AK_ERR_NO_AGENT         nothing listens there (no such file, stale socket, no access);
 *   AK_ERR_UNTRUSTED_AGENT  the default socket's directory, or the listening process, belongs to
 *                           another user (nothing was sent);
 *   AK_ERR_NOMEM, AK_ERR_SYSTEM.
 * detail (may be NULL) gets a one-line reason naming the path (and the owner found), "" on AK_OK. */
enum ak_err ak_client_connect(const char *path, unsigned flags, struct ak_client **out, char *detail,
    size_t detaillen);
void ak_client_close(struct ak_client *cl); /* NULL ok; wipes the buffers */

/* The path this client connected to, the detail of the last failed request ("" if none: an agent's
 * ERROR text with control bytes replaced, or what went wrong on the socket), and its descriptor. */
const char *ak_client_path(const struct ak_client *cl);
const char *ak_client_detail(const struct ak_client *cl);
int ak_client_fd(const struct ak_client *cl);
/* Send/receive timeout in seconds for the following requests. */
void ak_client_set_timeout(struct ak_client *cl, int seconds);

/* Requests. Each returns the agent's error (from an ERROR reply) or a transport error:
 * AK_ERR_IO (connection lost), AK_ERR_BUSY (no answer within the timeout), AK_ERR_BAD_MESSAGE. */
enum ak_err ak_client_status(struct ak_client *cl, struct ak_status *st); /* ak_status_clear after */
/* key: AK_KEY_BYTES (not wiped here: the caller owns it), or NULL for "already unlocked: reset lifetime".
 * lifetime: seconds, 0 = agent default, AK_LIFETIME_NONE = none. */
enum ak_err ak_client_unlock(struct ak_client *cl, const uint8_t *key, uint32_t lifetime);
enum ak_err ak_client_lock(struct ak_client *cl);
/* Ask the agent to exit; AK_OK once it has acknowledged and closed the connection (its socket is gone
 * by then). */
enum ak_err ak_client_shutdown(struct ak_client *cl);
/* *entries: an array of *n entries, one allocation with their strings; free with ak_client_list_free
 * (never ak_list_entry_clear on one of them). */
enum ak_err ak_client_list(struct ak_client *cl, struct ak_list_entry **entries, uint32_t *n);
void ak_client_list_free(struct ak_list_entry *entries, uint32_t n);
/* The same rows one at a time (LIST_PACKED): the whole packed reply is received and checked before
 * the first row is handed over, so fn sees every row or none; the rows are never held at once, and
 * e (with its strings) is valid during the call only (wiped after it). fn's own error stops the list
 * and is returned. *n: the row count once all are through. An agent older than LIST_PACKED is asked
 * for the LIST, whose rows are then handed over the same way. */
typedef enum ak_err (*ak_client_list_fn)(void *arg, const struct ak_list_entry *e, uint32_t n);
enum ak_err ak_client_list_each(struct ak_client *cl, ak_client_list_fn fn, void *arg, uint32_t *n);
/* LIST_ONE: the LIST row of one profile, *n == 1 (AK_ERR_NO_PROFILE when there is none); freed the same
 * way. An agent older than the request answers AK_ERR_UNKNOWN_MESSAGE. */
enum ak_err ak_client_list_one(struct ak_client *cl, const char *name, struct ak_list_entry **entries,
    uint32_t *n);
/* *out in the secure arena: the caller wipes it with ak_profile_free(). */
enum ak_err ak_client_get(struct ak_client *cl, const char *name, struct ak_profile **out);
/* The same with type AK_MSG_GET or AK_MSG_GET_PREVIOUS (the previous keys, while in their grace). */
enum ak_err ak_client_get_kind(struct ak_client *cl, uint8_t type, const char *name,
    struct ak_profile **out);
/* GET or GET_PREVIOUS (types[i]) of names[i] for each i < n, pipelined: requests are sent in batches
 * before their replies are read (the agent answers in order), so n profiles cost a few round trips, not
 * n. cb(arg, i, r, p) is called for each in order: r is that request's result, p (when r is AK_OK) the
 * profile in the secure arena, the callback's to free with ak_profile_free. A callback returning other
 * than AK_OK stops the batch and is returned. On any error other than a request's own (passed to cb)
 * replies may be left unread: close the client. */
typedef enum ak_err (*ak_client_get_cb)(void *arg, size_t i, enum ak_err r, struct ak_profile *p);
enum ak_err ak_client_get_batch(struct ak_client *cl, const uint8_t *types, const char *const *names,
    size_t n, ak_client_get_cb cb, void *arg);
enum ak_err ak_client_add(struct ak_client *cl, const struct ak_profile *p, int force);
/* Store p->secret as the secret of the profile named p->name, only if that profile's source is still
 * p->source (one ADD with AK_ADD_IF_SOURCE; its other fields stay as stored). AK_ERR_NO_PROFILE when
 * it is gone, AK_ERR_SOURCE_CHANGED when its source differs. */
enum ak_err ak_client_put_secret(struct ak_client *cl, const struct ak_profile *p);
enum ak_err ak_client_remove(struct ak_client *cl, const char *name);
/* Apply an edit (ak_edit.h) under the keystore lock; e stays the caller's. */
enum ak_err ak_client_edit(struct ak_client *cl, const struct ak_edit *e);

/* The agent's usage log (LOG), oldest first: profile NULL for every profile, since 0 for all time.
 * *entries malloc'd; free with ak_client_log_free (wipes the names). */
enum ak_err ak_client_log(struct ak_client *cl, const char *profile, int64_t since,
    struct ak_use_entry **entries, uint32_t *n);
void ak_client_log_free(struct ak_use_entry *entries, uint32_t n);
/* AUDIT_MAP: each profile name (names[i], malloc'd) with the audit log's hash of it (hashes[i]).
 * Free both with ak_client_audit_map_free (wipes the names). */
enum ak_err ak_client_audit_map(struct ak_client *cl, char ***names, char ***hashes, uint32_t *n);
void ak_client_audit_map_free(char **names, char **hashes, uint32_t n);
/* LOG_USAGE: token counts seen passing through a proxy for e->profile (e->client, e->requests,
 * e->tokens_*), recorded by the agent in its usage log. */
enum ak_err ak_client_log_usage(struct ak_client *cl, const struct ak_use_entry *e);

/* Raw frames, for the load tools (which also speak ssh-agent's framing: u32 big-endian length, type,
 * payload). One request in flight: send a whole frame, then receive its reply.
 * ak_client_send_frame: frame is sent as is (length prefix included); the last reply is dropped.
 * ak_client_recv_frame: AK_OK when one whole reply frame has arrived: *frame points at it (prefix
 * included; valid until the next call on cl), *len its size. wait = 0 reads only what is there and
 * returns AK_ERR_TRUNCATED when more is needed (poll ak_client_fd and call again). Bytes past the
 * frame are AK_ERR_BAD_MESSAGE (one reply per request). */
enum ak_err ak_client_send_frame(struct ak_client *cl, const uint8_t *frame, size_t len);
enum ak_err ak_client_recv_frame(struct ak_client *cl, int wait, const uint8_t **frame, size_t *len);

#endif
