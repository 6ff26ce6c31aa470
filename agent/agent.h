/* agent.h - akagent's internal interfaces: main.c (start-up), server.c (event loop), dispatch.c (state).
 *
 * One event-loop thread: server.c owns the sockets and the timers of connections; dispatch.c owns every
 * secret (the derived key and the decrypted store) and the lock/unlock deadlines. Keystore writes run on
 * writer.c's thread, which owns only the job it was handed until it hands it back.
 */
#ifndef AK_AGENT_H
#define AK_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_proto.h"
#include "ak_shell.h"

struct ak_client;

/* Per-connection limits (milliseconds). */
#define AGENT_STALL_MS 10000u      /* a partial request, or an unread reply, for this long: drop */
#define AGENT_IDLE_CONN_MS 60000u  /* a connection with nothing pending for this long: drop */
#define AGENT_ACCEPT_PAUSE_MS 250u /* out of descriptors: stop accepting this long (or until a close) */
#define AGENT_WATCH_POLL_MS 10000u /* socket check period when inotify is unavailable */
#define AGENT_STORE_LOCK_MS 5000   /* wait for the keystore writer lock */

/* dispatch.c ------------------------------------------------------------------------------------ */

/* store_path is copied; lifetime_s/idle_s: 0 = none. */
void agent_state_init(const char *store_path, uint32_t lifetime_s, uint32_t idle_s);
/* Wipe the key and the store (no-op when locked). */
void agent_state_lock(const char *why);
int agent_state_unlocked(void);
/* Lock if the lifetime or idle deadline has passed. */
void agent_state_tick(uint64_t now_ms);
/* The nearest deadline (ms, monotonic) of the state, or 0 when there is none. */
uint64_t agent_state_deadline(void);
/* UNLOCK requests must not be processed before this time (0 = now). */
uint64_t agent_state_unlock_gate(void);

struct agent_result {
	int close;            /* send the reply, then close the connection */
	int shutdown;         /* send the reply, then lock and exit */
	uint64_t hold_until;  /* do not send the reply (nor read) before this time (0 = no hold) */
	uint64_t confirm_id;  /* no reply: a confirmation runs (confirm.c); run the request again with its
	                         verdict (agent_dispatch_verdict) once agent_confirm_take has one */
	int pending;          /* no reply yet: a keystore write is under way; it comes through
	                       * agent_dispatch_write_done (nothing is read from the peer meanwhile) */
	const uint8_t *ref;   /* the reply is these ref_len bytes, not out (only after
	                       * agent_dispatch_replies_by_ref): valid until the next agent_dispatch or
	                       * store change, so the caller sends them at once and copies what is left */
	size_t ref_len;
};

/* Who sent a request: SO_PEERCRED at accept time; readlink("/proc/PID/exe") at the connection's first
 * request other than STATUS and LIST (conn.c). */
struct agent_peer {
	pid_t pid;
	uid_t uid;
	char *exe;            /* malloc'd; NULL when unreadable */
};

/* Handle one request from peer (NULL: unknown, e.g. the fuzz harness). req holds the payload (after the type byte) and may hold secrets: the caller
 * resets (wipes) it afterwards. The whole reply frame is written to out (a secure buffer, reset
 * first). Never fails: errors become ERROR replies. */
/* From now on a LIST is answered with a reference to the cached reply (agent_result.ref) instead of a
 * copy in out: the connection code sends it straight from the cache. */
void agent_dispatch_replies_by_ref(void);
void agent_dispatch(uint8_t type, struct ak_buf *req, struct ak_buf *out, struct agent_result *res,
    const struct agent_peer *peer);

/* The next agent_dispatch call runs a request whose confirmation came back with verdict v (AK_OK:
 * allowed) and detail (static text, may be NULL). Cleared by that call. */
void agent_dispatch_verdict(enum ak_err v, const char *detail);
void agent_dispatch_verdict_clear(void);

/* confirm.c ------------------------------------------------------------------------------------- */

#define AGENT_CONFIRM_TIMEOUT_S 30u /* default: no answer this long denies */

/* program: AKAGENT_ASKPASS as the agent started (copied; NULL or "": none); secs 0 = the default. */
void agent_confirm_init(const char *program, uint32_t secs);
/* Start asking whether peer may have profile's secret (previous: its previous key). Never blocks: the
 * program runs in its own process group. Returns the confirmation's id (never 0 unless too many run
 * at once); when the program cannot run, the id's verdict is already a denial. */
uint64_t agent_confirm_start(const struct agent_peer *peer, const char *profile, int previous,
    uint64_t now);
/* A child exited (SIGCHLD, from server.c): exit 0 allows, anything else denies. */
void agent_confirm_exited(pid_t pid, int status);
/* When to call agent_confirm_take for id: its deadline, or 1 when it is decided (or gone). */
uint64_t agent_confirm_deadline(uint64_t id);
/* 1 with *verdict and *detail (static, may be NULL) once id is decided (a deadline past denies and
 * kills the program); the id is then freed. 0 while it still runs. */
int agent_confirm_take(uint64_t id, uint64_t now, enum ak_err *verdict, const char **detail);
/* The connection went away: kill its program, forget the id. */
void agent_confirm_cancel(uint64_t id);
/* Lock: kill every program; their requests are denied. */
void agent_confirm_cancel_all(void);

/* audit.c --------------------------------------------------------------------------------------- */

#define AGENT_AUDIT_ROTATE_BYTES (1u << 20) /* PATH becomes PATH.1 past this size */

/* Open (create 0600) the audit log at path: -1 after printing why it is refused (group or other
 * bits, a symlink, not ours, not a regular file). path is copied. */
int agent_audit_open(const char *path);
/* The key of the names' hashes, derived from the keystore key (AK_KEY_BYTES) at unlock; wiped by
 * agent_audit_forget at lock. */
void agent_audit_set_key(const uint8_t *store_key);
void agent_audit_forget(void);
/* Hex of the keyed hash of a profile name into hex (at least AGENT_AUDIT_HASH_HEX bytes); -1 with no key. */
#define AGENT_AUDIT_HASH_BYTES 16
#define AGENT_AUDIT_HASH_HEX (AGENT_AUDIT_HASH_BYTES * 2 + 1)
int agent_audit_hash(const char *profile, char *hex);
/* Append one line for a use-log entry (no-op when no audit log was asked for). */
void agent_audit_write(const struct ak_use_entry *e);
/* AUDIT_MAP_REPLY: every profile name of s with its hash. */
struct ak_store;
enum ak_err agent_audit_map_reply(struct ak_buf *out, const struct ak_store *s);
void agent_audit_close(void);
/* Keystore writes off the loop (writer.c runs them). A job owns everything its write needs. */
struct agent_write_job;
/* submit: hand a job to the writer, 0 when it took it. NULL (the default, and the fuzz harness): every
 * write runs inline. Setting NULL also drops (wipes) writes still queued. */
void agent_dispatch_set_writer(int (*submit)(struct agent_write_job *));
/* On the writer thread: the keystore transaction. Touches only the job (and the thread-safe arena). */
void agent_write_job_run(struct agent_write_job *j);
/* Free a job that will not be finished (wipes the key copy and the change). */
void agent_write_job_drop(struct agent_write_job *j);
/* The peer waiting for j's reply, or NULL when it went away. */
const struct agent_peer *agent_write_job_waiter(const struct agent_write_job *j);
/* Back on the loop: install what j wrote (if the state still matches), log it, write the reply frame
 * into out (when the peer still waits) and start the next queued write. Frees j. */
void agent_dispatch_write_done(struct agent_write_job *j, struct ak_buf *out, struct agent_result *res);
/* The peer's connection is going away: its pending write still completes, its reply is dropped. */
void agent_dispatch_forget(const struct agent_peer *peer);

/* writer.c -------------------------------------------------------------------------------------- */

/* Start the writer thread (signals blocked in it) and register it with dispatch.c. Returns the eventfd
 * that becomes readable when a job is done, or -1 (errno) and writes stay inline. */
int agent_writer_start(void);
/* The finished job, or NULL (clears the eventfd). */
struct agent_write_job *agent_writer_take(void);
/* Wait for a write under way, drop what is not finished, stop the thread. */
void agent_writer_stop(void);

/* uselog.c -------------------------------------------------------------------------------------- */

#define AGENT_USELOG_MAX 1024 /* entries kept; the oldest goes first */

/* Record one use (op: a request type or AK_USE_EXPIRE) of profile (NULL: none) by peer (NULL: the
 * agent itself) with outcome r. Only while unlocked; everything is copied into the secure arena. */
void agent_uselog_add(uint8_t op, const char *profile, const struct agent_peer *peer, enum ak_err r);
/* Free (wipe) every entry: on lock and at exit. */
/* A proxy's token counts (u: profile, client, requests, tokens_*) as one LOG_USAGE entry. */
void agent_uselog_add_usage(const struct ak_use_entry *u, const struct agent_peer *peer);
void agent_uselog_wipe(void);
size_t agent_uselog_count(void);
/* A whole LOG_REPLY frame into out with the entries of profile (NULL: all) since the unix second since. */
enum ak_err agent_uselog_reply(struct ak_buf *out, const char *profile, int64_t since);

/* server.c -------------------------------------------------------------------------------------- */

struct agent_server_cfg {
	int listen_fd;           /* bound, listening, non-blocking */
	const char *sock_path;   /* ours while st_dev/st_ino match */
	dev_t sock_dev;
	ino_t sock_ino;
	pid_t child;             /* CMD mode: the command's pid, else 0 */
	int activated;           /* the socket came from systemd: never unlink it, it is not ours */
};

/* Self-pipe signal handling: install handlers for TERM INT HUP USR1 (and CHLD). -1 on failure. */
int agent_signals_init(void);
/* Close the self-pipe (in a CMD child before exec). */
void agent_signals_close(void);

/* Run until told to exit; returns the process exit status. Before returning the state is locked, every
 * connection closed and, when appropriate, the socket removed. */
int agent_server_run(const struct agent_server_cfg *cfg);

/* main.c, start.c, kill.c ---------------------------------------------------------------------- */

struct agent_opts {
	enum ak_shell shell;
	int kill;
	int foreground;
	int debug;
	const char *sock_opt;
	const char *store_opt;
	uint32_t lifetime_s;
	uint32_t idle_s;
	uint32_t confirm_timeout_s; /* 0: AGENT_CONFIRM_TIMEOUT_S */
	const char *audit_log;      /* --audit-log PATH or NULL */
	char **cmd;               /* CMD [ARG...] or NULL */
};

#define AGENT_CLIENT_TIMEOUT_S 2 /* how long a start-up or -k probe waits for an agent's answer */

/* First thing in main: no core dumps, not dumpable, umask 077, SIGPIPE ignored, more descriptors. */
void agent_harden(void);
/* The start-up: the socket, then daemonise, a CMD child, the foreground or socket activation. Returns
 * the exit status (the daemonising parent exits inside). */
int agent_start(const struct agent_opts *o);
/* Ask whoever listens at path for its STATUS, through the library client (so the listening process
 * must be ours or root's). AK_OK with *pid (and *clp connected, if clp) when an agent answers;
 * AK_ERR_NO_AGENT when nothing listens; AK_ERR_UNTRUSTED_AGENT when another user's process listens
 * (detail says who); AK_ERR_BAD_MESSAGE when something listens but does not answer like an agent. */
enum ak_err agent_probe(const char *path, long *pid, struct ak_client **clp, char *detail, size_t detaillen);
/* Write b to stdout and flush: 0, or -1 when not all of it went out. */
int agent_print(const struct ak_buf *b);
/* -k: stop the agent and print the shell lines that unset its variables. Returns the exit status. */
int agent_kill(const struct agent_opts *o);

/* conn.c ---------------------------------------------------------------------------------------- */

struct pollfd;

/* The request buffer (secure). -1 when out of secure memory. */
int agent_conns_init(void);
/* Close every connection (wiping its buffers) and free the request buffer. */
void agent_conns_free(void);
size_t agent_conns_count(void);
/* Accept what is waiting (peer uid ours or root). Returns the time until which accepting pauses (0 =
 * none): after running out of descriptors or memory. */
uint64_t agent_conns_accept(int lfd, uint64_t now);
/* Stall, idle and hold timers of every connection. */
void agent_conns_timers(uint64_t now);
/* Free dead connections; returns how many. */
size_t agent_conns_compact(void);
/* pf[i] for connection i (agent_conns_count() of them); lowers *deadline to their nearest timer. */
void agent_conns_poll_set(struct pollfd *pf, uint64_t *deadline);
/* Serve the first n connections by what poll said of them. */
void agent_conns_serve(const struct pollfd *pf, size_t n, uint64_t now);
/* Take back finished keystore writes and send their replies. */
void agent_conns_writes_done(uint64_t now);
/* 1 once a client asked for SHUTDOWN; *flushing while its reply is still going out. */
int agent_conns_shutdown(int *flushing);
/* *d = the earlier of *d and t, where 0 means none. */
void agent_min_deadline(uint64_t *d, uint64_t t);

/* activation.c ---------------------------------------------------------------------------------- */

/* The listening socket systemd passed (LISTEN_PID is us, LISTEN_FDS=1 at fd 3), checked like our own:
 * a listening AF_UNIX stream socket bound to a path in a directory that is ours and 0700, the file ours
 * (made 0600 if it was wider). Fills path, *dev, *ino and returns the fd (non-blocking, close-on-exec); -1 when nothing was
 * passed to this process; -2 after printing why a passed socket is refused. Clears LISTEN_*. */
int agent_activation_socket(char *path, size_t pathlen, dev_t *dev, ino_t *ino);

#endif
