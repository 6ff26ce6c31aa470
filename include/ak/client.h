/* ak/client.h - libakclient: take a key from akagent straight into memory the caller owns.
 *
 * A C program links this (pkg-config --cflags --libs akclient) instead of reading a key from its
 * environment: the key goes from the agent's socket into a buffer the caller passes, and nowhere else.
 *
 * Trust: the same checks as akctl. With no path (and no $AKAGENT_SOCK) the default socket's directory
 * must be ours and 0700 before anything is sent, and after connecting the agent's process must run as
 * our uid (or root), else AKCLIENT_ERR_UNTRUSTED.
 *
 * Memory: the library's own copies of a key (its request and reply buffers, the decoded profile) sit in
 * locked pages and are wiped before it returns. The caller owns buf in akclient_get: it should wipe it
 * (explicit_bzero, sodium_memzero) when done.
 *
 * Threads: one thread at a time uses the library (its secure memory is not thread-safe). Every object
 * belongs to the caller until passed to its _free/_close function; NULL is accepted there.
 */
#ifndef AK_CLIENT_PUBLIC_H
#define AK_CLIENT_PUBLIC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results. Numbers are part of the ABI; new ones may be added (treat unknown ones as failure). */
enum {
	AKCLIENT_OK = 0,
	AKCLIENT_ERR_NO_AGENT = 1,     /* nothing answers at the socket */
	AKCLIENT_ERR_UNTRUSTED = 2,    /* the socket directory or the agent belongs to another user */
	AKCLIENT_ERR_LOCKED = 3,       /* the agent is locked ('akctl unlock') */
	AKCLIENT_ERR_NO_PROFILE = 4,   /* no such profile */
	AKCLIENT_ERR_NO_VAR = 5,       /* the profile has no such variable */
	AKCLIENT_ERR_TOO_SMALL = 6,    /* buf too small: *len says how many bytes the value needs */
	AKCLIENT_ERR_INVALID = 7,      /* a bad argument (NULL, empty name) */
	AKCLIENT_ERR_FAILED = 8,       /* anything else: see akclient_detail() */
};

struct akclient;          /* a connection to one agent */
struct akclient_status;   /* the agent's state, as akctl status shows it */
struct akclient_list;     /* profile names and providers (never a secret) */

/* The library's version, e.g. "0.1.0". */
const char *akclient_version(void);
/* A one-line message for a result code. */
const char *akclient_strerror(int code);

/* Connect to the agent at socket_path, or (NULL) at $AKAGENT_SOCK, else at the default socket.
 * On AKCLIENT_OK *out is connected (akclient_close it). */
int akclient_open(const char *socket_path, struct akclient **out);
void akclient_close(struct akclient *c);
/* Why the last call on c failed ("" if it did not): secret-free, one line. */
const char *akclient_detail(const struct akclient *c);

/* Copy the value of a profile's variable into buf, NUL-terminated: var NULL (or the profile's secret
 * variable's name) gives the secret. *len (may be NULL) gets the value's length without the NUL, also
 * on AKCLIENT_ERR_TOO_SMALL (buf is then wiped, not partly filled). */
int akclient_get(struct akclient *c, const char *profile, const char *var, char *buf, size_t buflen,
    size_t *len);

int akclient_status(struct akclient *c, struct akclient_status **out);
void akclient_status_free(struct akclient_status *st);
int akclient_status_unlocked(const struct akclient_status *st);          /* 1 unlocked, 0 locked */
unsigned akclient_status_profiles(const struct akclient_status *st);     /* 0 when locked */
long akclient_status_pid(const struct akclient_status *st);
/* Seconds until the agent locks itself; -1 for never (or locked). */
long akclient_status_lifetime_left(const struct akclient_status *st);
const char *akclient_status_keystore(const struct akclient_status *st);  /* valid until _free */

/* Needs an unlocked agent. */
int akclient_list(struct akclient *c, struct akclient_list **out);
void akclient_list_free(struct akclient_list *l);
size_t akclient_list_count(const struct akclient_list *l);
/* Entry i (< count): valid until akclient_list_free; NULL past the end. */
const char *akclient_list_name(const struct akclient_list *l, size_t i);
const char *akclient_list_provider(const struct akclient_list *l, size_t i);
const char *akclient_list_secret_var(const struct akclient_list *l, size_t i);

#ifdef __cplusplus
}
#endif

#endif
