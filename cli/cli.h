/* cli.h - akctl's internal interfaces: global context, commands, agent client, passphrase reader, output.
 *
 * Nothing here is part of the library: these symbols live only in the akctl executable.
 * Secrets handed out by these functions are in the secure arena (ak_smem); the caller wipes them
 * (ak_smem_free / ak_profile_free), as each comment says.
 */
#ifndef AK_CLI_H
#define AK_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "ak_client.h"
#include "ak_err.h"
#include "ak_opts.h"
#include "ak_path.h"
#include "ak_proto.h"
#include "ak_shell.h"
#include "ak_store.h"

#define CLI_PASS_MAX 1024 /* passphrase bytes */
#define CLI_PASS_TRIES 3  /* at a terminal: wrong or mismatched passphrases before giving up */

/* Global state, filled by main() from the options before the command. */
struct cli {
	const char *cmd;          /* the command's name, for messages */
	const char *store_opt;    /* -f PATH, or NULL */
	int pass_fd;              /* --passphrase-fd N, or -1 */
	int no_prompt;            /* --no-prompt: a locked agent is exit 4, never a question */
	int store_resolved;
	int store_explicit;       /* -f or AKCTL_KEYSTORE chose the keystore */
	char store[AK_PATH_MAX];  /* valid once store_resolved */
	int previous;             /* --previous (get env use exec): serve the keys a rotation replaced */
	int sent_get;             /* cli_fetch_profile's GET was answered (not LOCKED): the agent logged it */
	int status;               /* the exit status of a command that succeeded with a verdict (cli_status) */
	int argc0;                /* main()'s argc/argv, for handing a command to akctl-net */
	char **argv0;
};

/* Commands, and every helper below that reports an error, return enum ak_err: AK_OK, or the error,
 * already printed. main() alone turns it into the exit status (ak_err_exit_code). A command whose
 * outcome is a verdict rather than an error (test's 10-17, exec's command, scan's "found") records it
 * with cli_status and returns AK_OK. Help printed on -h is AK_OK too. argv[0] is the command name. */
typedef enum ak_err (*cli_cmd_fn)(struct cli *c, int argc, char **argv);
/* entry.c: record status as the process's exit status when the command returns AK_OK; returns AK_OK. */
enum ak_err cli_status(struct cli *c, int status);
enum ak_err cmd_init(struct cli *c, int argc, char **argv);
enum ak_err cmd_unlock(struct cli *c, int argc, char **argv);
enum ak_err cmd_lock(struct cli *c, int argc, char **argv);
enum ak_err cmd_status(struct cli *c, int argc, char **argv);
enum ak_err cmd_passwd(struct cli *c, int argc, char **argv);
enum ak_err cmd_add(struct cli *c, int argc, char **argv);
enum ak_err cmd_rm(struct cli *c, int argc, char **argv);
enum ak_err cmd_set(struct cli *c, int argc, char **argv);
enum ak_err cmd_rename(struct cli *c, int argc, char **argv);
enum ak_err cmd_cp(struct cli *c, int argc, char **argv);
enum ak_err cmd_rotate(struct cli *c, int argc, char **argv);
/* entry.c: take "--previous" out of argv (before "--"; for exec, before the profile) into c->previous.
 * cmd_rotate.c: a list entry's rotation mark: "overdue", "due" or "" (ak_rot_due). */
void cli_take_previous(struct cli *c, int *argc, char **argv, int exec);
struct ak_list_entry;
const char *cli_rotation_mark(const struct ak_list_entry *e, int64_t now);
/* status: a "rotation:" count line when some profile has a policy, a "previous:" one when keys are
 * kept (LIST on cl; nothing on failure). */
void cli_rotation_status(struct ak_client *cl);
/* status: profiles under confirm-on-use, and their own lifetimes (expired, and the next wipe). */
void cli_use_policy_status(struct ak_client *cl);
/* list: " confirm", " expired" or " wiped in 45m" for one entry into buf ("" when none). */
void cli_use_policy_mark(const struct ak_list_entry *e, int64_t now, char *buf, size_t buflen);
enum ak_err cmd_list(struct cli *c, int argc, char **argv);
enum ak_err cmd_show(struct cli *c, int argc, char **argv);
enum ak_err cmd_log(struct cli *c, int argc, char **argv);
enum ak_err cmd_get(struct cli *c, int argc, char **argv);
enum ak_err cmd_env(struct cli *c, int argc, char **argv);
enum ak_err cmd_use(struct cli *c, int argc, char **argv);
enum ak_err cmd_exec(struct cli *c, int argc, char **argv);
/* cmd_env.c, for get/env/use and exec: fetch profile name from an agent unlocked on our keystore
 * (GET, or GET_PREVIOUS with --previous). Prints errors ("did you mean" for a missing profile) and
 * returns them. *p is secure: the caller wipes it with ak_profile_free(). With ents (may be NULL), also
 * every stored profile's variable names (LIST: no secret), for exec's isolation: the caller frees them
 * with ak_client_list_free. */
enum ak_err cli_fetch_profile(struct cli *c, const char *name, struct ak_profile **p, struct ak_list_entry **ents,
    uint32_t *nents);
/* cmd_env.c: --shell NAME into *sh (data_ok: the dotenv and json formats too), or with name NULL the
 * shell that runs akctl (ak_shell_detect). AK_OK, or AK_ERR_INVALID after reporting an unknown name. */
enum ak_err cli_shell_choose(struct cli *c, const char *name, int data_ok, enum ak_shell *sh);
/* cmd_env.c: export lines for every variable of p (the secret first) into out, a secure buffer the
 * caller wipes (env, use, dir-env). */
enum ak_err cli_export_profile(struct ak_buf *out, enum ak_shell sh, const struct ak_profile *p);
/* The value of var in p (the secret or another variable), pointing into p: p's owner wipes it. NULL if
 * p has no such variable. */
const char *cli_profile_var(const struct ak_profile *p, const char *var);
/* A secret reference in an environment or an env file: ak://PROFILE/VAR (exec resolves it, import
 * --replace writes it). */
#define CLI_REF_PREFIX "ak://"
enum ak_err cmd_allow(struct cli *c, int argc, char **argv);
enum ak_err cmd_deny(struct cli *c, int argc, char **argv);
enum ak_err cmd_hook(struct cli *c, int argc, char **argv);
enum ak_err cmd_direnv(struct cli *c, int argc, char **argv);
enum ak_err cmd_help(struct cli *c, int argc, char **argv);
/* Network commands (akctl-net only; in akctl the table points them at cli_net_exec). */
enum ak_err cmd_test(struct cli *c, int argc, char **argv);
enum ak_err cmd_import(struct cli *c, int argc, char **argv);
enum ak_err cmd_pull(struct cli *c, int argc, char **argv);
enum ak_err cmd_usage(struct cli *c, int argc, char **argv);
/* rotate's admin steps (akctl-net, cli/net/rotate_admin.c). Each prints its own messages and returns
 * them. deactivate: find the previous main key of name at Anthropic (by hint, the stored one, or when
 * NULL by the kept previous key itself) and set it inactive. create: a new OpenAI project service
 * account for name; *key its key (secure: the caller wipes it). admin and project may be NULL. */
enum ak_err cli_admin_deactivate(struct cli *c, const char *name, const char *admin, const char *hint);
enum ak_err cli_admin_create(struct cli *c, const char *name, const char *admin, const char *project,
    char **key);
/* helper.c: the path of helper program name (akctl-net, akctl-proxy, akctl-shell): beside akctl, else
 * LIBEXECDIR/akagent. 0, or -1 if the path does not fit. */
int cli_helper_path(const char *name, char *out, size_t outlen);
/* The akctl a user runs, for what is written down to run later (the git hook): the front beside
 * akctl-main or in BINDIR when this is akctl-main, else this program. 0, or -1. */
int cli_front_path(char *out, size_t outlen);
/* akctl shell (and akctl alone on a terminal): replace this process with akctl-shell, the readline
 * console, so that akctl itself never loads libreadline. */
enum ak_err cli_shell_exec(struct cli *c, int argc, char **argv);
/* akctl: replace this process with akctl-net and the same arguments (net_exec.c). */
enum ak_err cli_net_exec(struct cli *c, int argc, char **argv);
/* akctl proxy, and akctl exec --proxy: cli_proxy_wanted (entry.c) says whether exec's arguments ask
 * for the proxy (before any "--"); cli_proxy_exec (cmd_proxy.c) then runs exec through akctl-proxy. */
enum ak_err cmd_proxy(struct cli *c, int argc, char **argv);
int cli_proxy_wanted(int argc, char **argv);
enum ak_err cli_proxy_exec(struct cli *c, int argc, char **argv);
/* add --validate: check p's key live (akctl: runs akctl-net test --key-stdin, the key on a pipe, never
 * argv; akctl-net: in process, cmd_test.c). Prints one line on stderr; returns akctl test's exit code
 * (0 valid). p stays owned by the caller. */
int cli_net_validate(struct cli *c, const struct ak_profile *p);

/* main.c ------------------------------------------------------------------------------------------ */
/* Print the usage of command name (from the table) to stdout; returns AK_OK (for --help). The front
 * (front.c) has no table: there this hands the whole command over to the full CLI. */
enum ak_err cli_cmd_help(const char *name);

/* entry.c (the front and the full CLI alike) ----------------------------------------------------- */
/* A program's own part of main: global options before the command, the command's name, its argv (in
 * *cargvp, via cli_cmd_args; cli_entry frees it), and the command run. Returns the command's error. */
typedef enum ak_err (*cli_run_fn)(struct cli *c, int argc, char **argv, char ***cargvp);
/* main() of akctl and of the front: hardening (no core file, not dumpable), c set up, run, the exit
 * status (ak_err_exit_code, or the verdict of cli_status), stdout flushed, the secure arena wiped. */
int cli_entry(int argc, char **argv, cli_run_fn run);
/* One global option at argv[*a] (with its value in argv[*a + 1] if separate): 1 taken (*a advanced past
 * a separate value), 0 not a global option, or -2 after reporting a bad value. */
int cli_global_opt(struct cli *c, int argc, char **argv, int *a);
/* The command at argv[a]: its arguments (argv[a] first) copied into *cargvp, a NULL-ended array the
 * caller frees, with the global options after the command taken out (up to "--"; for exec up to the
 * command it runs); their count in *cargc. AK_OK, or the error reported. */
enum ak_err cli_cmd_args(struct cli *c, int argc, char **argv, int a, char ***cargvp, int *cargc);
/* Resolve the keystore path (-f, AKCTL_KEYSTORE, default) into c->store once. */
enum ak_err cli_store_path(struct cli *c);

/* output.c ---------------------------------------------------------------------------------------- */
/* "akctl: <context>: <ak_strerror(e)>[ (detail)]" on stderr; returns e.
 * detail may be NULL; it is sanitised (control bytes dropped). Never pass a secret. */
enum ak_err cli_fail(enum ak_err e, const char *detail, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "akctl: <cmd>: <message> (see 'akctl <cmd> --help')" on stderr; returns AK_ERR_INVALID (exit 2). */
enum ak_err cli_usage_error(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A command that takes no operand got argv[optind]: the usage error (AK_ERR_INVALID). */
enum ak_err cli_no_operand(struct cli *c, char **argv);
/* opts.c: a command's options, as a table of struct ak_opt (ak_opts.h) ended by CLI_OPT_END; these are
 * its long-only entries. */
#define CLI_FLAG(nm, p, v) AK_FLAG(nm, 0, p, v)
#define CLI_VALUE(nm, p) AK_VALUE(nm, 0, p)
#define CLI_LIST(nm, arr, cnt, mx) AK_LIST(nm, 0, arr, cnt, mx)
#define CLI_OPT_END AK_OPT_END
/* Parse argv's options by the table opts (ak_opts_parse), and -h/--help (help printed: AK_OK with
 * *helped 1, the command is done). stop: stop at the first operand (exec). AK_OK with optind at the
 * first operand, or AK_ERR_INVALID after reporting a bad option as a usage error. */
enum ak_err cli_opts_parse(struct cli *c, int argc, char **argv, const struct ak_opt *opts, int stop,
    int *helped);
/* A command with no option but -h/--help: cli_opts_parse with an empty table. */
enum ak_err cli_opts_help_only(struct cli *c, int argc, char **argv, int *helped);
/* A command whose one option is --json (list's, show's, status', doctor's shape). */
enum ak_err cli_opts_json(struct cli *c, int argc, char **argv, int *json, int *helped);
/* The single PROFILE operand at argv[optind] into *name: AK_OK, or the error after reporting it
 * missing or followed by another argument (AK_ERR_INVALID) or not a valid name (AK_ERR_BAD_NAME). */
enum ak_err cli_one_profile(struct cli *c, int argc, char **argv, const char **name);
/* The options of init and passwd, [--kdf NAME] and no operand: NAME into *preset (*given 1), help as
 * cli_opts_parse. AK_OK, or AK_ERR_INVALID after reporting an unknown name or option. */
enum ak_err cli_kdf_opts(struct cli *c, int argc, char **argv, enum ak_kdf_preset *preset, int *given,
    int *helped);
/* The warning for a chosen --kdf insecure-test (nothing for other presets). */
void cli_kdf_warn(enum ak_kdf_preset preset);
/* The candidate closest to word within a typo's distance (for "did you mean"), or NULL. */
const char *cli_closest(const char *word, const char *const *cands, size_t n);
/* "akctl: <message>" on stderr. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* write(2) all of buf to fd, retrying on EINTR/short writes. AK_ERR_IO on failure. */
enum ak_err cli_write_all(int fd, const void *buf, size_t len);
/* "2025-01-31T12:00:00Z" into buf (>= 24 bytes); "-" for 0. */
void cli_iso_time(int64_t t, char *buf, size_t buflen);
/* Print a JSON text from cJSON and a newline on stdout, with DEL and U+0080..U+009F (and stray bytes
 * 0x80..0x9f) as \u escapes: cJSON leaves them raw, and a terminal may obey C1 controls. */
void cli_json_put(const char *s);
/* The same without the newline, for an answer written in pieces: each piece must end between two
 * characters (a whole JSON value, or its punctuation). */
void cli_json_write(const char *s);
/* Print o as one line of JSON through cli_json_put (every command's --json output). AK_ERR_NOMEM if it
 * cannot be printed (nothing printed then). o stays the caller's. */
struct cJSON;
enum ak_err cli_json_print(const struct cJSON *o);
/* The end of a --json output: print o when built (1: building it did not run out of memory), else
 * report "<context>: out of memory"; then free o. AK_OK or AK_ERR_NOMEM. */
enum ak_err cli_json_done(struct cJSON *o, int built, const char *context);
/* Display width of s as cli_print_padded shows it (code points, escapes rendered: ak_render.h). */
size_t cli_width(const char *s);
/* Print s, rendered (ak_render), padded with spaces to width w. */
void cli_print_padded(const char *s, size_t w);
/* Print label, then s rendered (ak_render), then a newline, on stdout. */
void cli_print_line(const char *label, const char *s);
/* Copy in into out rendered for a terminal (ak_render: controls, DEL, C1 shown as \x1b, \u009b...),
 * truncated to outlen. Messages, notes and usage errors are rendered this way as a whole. */
void cli_sanitize(const char *in, char *out, size_t outlen);

/* Colour, decided in one place: only on a terminal (fd), never with NO_COLOR set (non-empty) or TERM
 * unset, empty or "dumb". cli_color returns the escape sequence for c, or "" when colour is off (so
 * callers print it unconditionally); CLI_COLOR_OFF ends a coloured run. */
enum cli_color {
	CLI_COLOR_OK,   /* green: unlocked, valid */
	CLI_COLOR_WARN, /* yellow: locked */
	CLI_COLOR_BAD,  /* red: rejected */
	CLI_COLOR_OFF,
};
int cli_color_on(int fd);
const char *cli_color(int fd, enum cli_color c);
/* A green check mark or a red cross and a space before a verdict, or "" when colour is off. */
const char *cli_mark(int fd, int ok);

/* pass.c ------------------------------------------------------------------------------------------ */
/* Read a passphrase: --passphrase-fd (one line per call), else $AKCTL_ASKPASS, else /dev/tty with echo
 * off (asked twice when confirm; on a mismatch both again, AK_ERR_MISMATCH after CLI_PASS_TRIES), else
 * AK_ERR_NO_PASSPHRASE. confirm also means a new passphrase: it is scored (cli_pwq_score); a weak one
 * typed at the terminal is refused with the reason and asked again (AK_ERR_WEAK_PASS after
 * CLI_PASS_TRIES), one from --passphrase-fd or AKCTL_ASKPASS is taken with a warning on stderr.
 * *out is a NUL-terminated secure allocation: the caller wipes it with ak_smem_free(). Empty =>
 * AK_ERR_EMPTY, more than CLI_PASS_MAX bytes => AK_ERR_TOO_LARGE. detail (may be NULL) gets a reason. */
enum ak_err cli_pass_read(struct cli *c, const char *prompt, int confirm, char **out, size_t *outlen,
    char *detail, size_t detaillen);
/* pwquality.c: score a new passphrase with libpwquality (loaded with dlopen only now, so that no other
 * command loads it or libcrack2). CLI_PWQ_WEAK puts the library's reason in reason (its text:
 * print it through cli_note/cli_fail, which render it as one safe line); CLI_PWQ_UNAVAILABLE says why nothing was scored. pass stays the caller's. */
enum cli_pwq { CLI_PWQ_OK, CLI_PWQ_WEAK, CLI_PWQ_UNAVAILABLE };
enum cli_pwq cli_pwq_score(const char *pass, char *reason, size_t reasonlen);
/* Derive the key for kdf from pass (passlen bytes; pass stays the caller's to wipe) into *key, a
 * secure AK_KEY_BYTES allocation the caller wipes with ak_smem_free() (also when this fails). Returns
 * AK_OK, or the error after reporting "<cmd>" (no memory) or "<cmd>: key derivation". */
enum ak_err cli_pass_derive(struct cli *c, const struct ak_kdf *kdf, const char *pass, size_t passlen,
    uint8_t **key);
/* Read a secret value for `add`: the tty with echo off when stdin is a terminal, else all of stdin
 * (one trailing "\n" or "\r\n" stripped). At most AK_VALUE_MAX bytes, empty => AK_ERR_EMPTY.
 * *out is secure; the caller wipes it with ak_smem_free(). */
enum ak_err cli_secret_read(const char *prompt, char **out, size_t *outlen);

/* add_guide.c: `akctl add` alone at a terminal: ask name, provider, variable and plain variables,
 * then run cmd_add with them as options (it reads the secret and checks it). Returns add's result. */
enum ak_err cli_add_guided(struct cli *c);

/* write.c: the direct-file path (no agent unlocked on this keystore), for cli_write and rm.
 * Asks the passphrase (no prompt when the file does not exist: AK_ERR_NO_STORE), then runs the
 * keystore transaction ak_store_update_pass with apply/arg. detail gets a secret-free reason. */
enum ak_err cli_store_update_direct(struct cli *c, ak_store_apply_fn apply, void *arg, char *detail,
    size_t detaillen);
/* write.c: one keystore change, by agent_write(cl, arg) through the agent when it is unlocked on akctl's
 * keystore, else by apply(store, arg) in the transaction on the file (asks the passphrase). An agent
 * that is not ours is AK_ERR_UNTRUSTED_AGENT, never a quiet fallback. *direct (may be NULL) is 1 when
 * the file was written directly. detail gets a secret-free reason (the agent's, sanitised). */
typedef enum ak_err (*cli_agent_write_fn)(struct ak_client *cl, void *arg);
enum ak_err cli_write(struct cli *c, cli_agent_write_fn agent_write, ak_store_apply_fn apply, void *arg,
    int *direct, char *detail, size_t detaillen);

/* cmd_add.c: store p (validated here) through the agent when it is unlocked on akctl's keystore, else
 * directly on the file (asks the passphrase, as add does). An existing profile is AK_ERR_PROFILE_EXISTS
 * unless force; *replaced (may be NULL) is 1 when the direct path replaced one (the agent does not say).
 * p stays owned, and wiped, by the caller. On failure detail gets a secret-free reason ("" if none).
 * Shared by add and import. */
enum ak_err cli_profile_put(struct cli *c, const struct ak_profile *p, int force, int *replaced,
    char *detail, size_t detaillen);

/* cmd_set.c: apply edit e through the agent when it is unlocked on akctl's keystore, else directly on
 * the file (asks the passphrase). e stays the caller's, unchanged (the transaction may apply it twice).
 * detail gets a secret-free reason. */
struct ak_edit;
enum ak_err cli_edit_run(struct cli *c, struct ak_edit *e, char *detail, size_t detaillen);
/* cmd_set.c: read n secrets (prompts[i] at a terminal, each with echo off). From a pipe, one secret is
 * all of stdin (as cli_secret_read); several are one line each, in order ("\r\n" accepted), exactly n
 * non-empty lines (AK_ERR_TRUNCATED fewer, AK_ERR_TOO_LARGE more, AK_ERR_EMPTY an empty one).
 * outs[i] are secure: the caller wipes each with ak_smem_free (all NULL on failure). */
enum ak_err cli_secrets_read(const char *const *prompts, size_t n, char **outs);

/* cmd_unlock.c: ask the passphrase (three tries at a terminal), derive the key from akctl's keystore
 * header and UNLOCK cl (an agent serving that keystore) with lifetime. At a terminal, says what it holds
 * now. quiet_no_pass: no passphrase source is reported as "agent is locked" (exit 4), for read commands
 * that only prompt when they can. Returns AK_OK or the error, reported. */
enum ak_err cli_unlock_pass(struct cli *c, struct ak_client *cl, uint32_t lifetime, int quiet_no_pass);

/* agent.c ----------------------------------------------------------------------------------------- */
/* The socket akctl's clients use ($AKAGENT_SOCK, else the default), for messages. */
const char *cli_socket_path(void);

/* The agent for akctl's keystore: connect and ask STATUS. AK_ERR_NO_AGENT if none answers,
 * AK_ERR_UNTRUSTED_AGENT if the socket's directory or the agent's process is another user's (nothing
 * sent), AK_ERR_OTHER_STORE if the agent serves another file than akctl's keystore (-f, AKCTL_KEYSTORE
 * or the default: akctl never takes the agent's), each with a reason in detail.
 * On AK_OK *cl is connected and *st filled: the caller closes and clears both. */
enum ak_err cli_agent_for_store(struct cli *c, struct ak_client **cl, struct ak_status *st, char *detail,
    size_t detaillen);
/* For read commands: an agent unlocked on our store. A locked one is unlocked first when someone can
 * answer (cli_can_prompt: the passphrase is asked); else print the error ("agent is locked: run 'akctl
 * unlock'" exit 4, no agent...) and return it; AK_OK on success. */
enum ak_err cli_agent_unlocked(struct cli *c, struct ak_client **cl);
/* The agent at the socket, connected and checked (socket directory, peer), nothing asked: for a read
 * that sends its request at once and learns of a locked agent from the answer. Prints the error (no
 * agent, not ours...) and returns it; AK_OK with *cl connected (the caller closes it). */
enum ak_err cli_agent_direct(struct cli *c, struct ak_client **cl);
/* 1 when a locked agent may be unlocked by asking: not --no-prompt, and AKCTL_ASKPASS is set or a
 * terminal is at hand (stdin or stderr a terminal, /dev/tty opens). */
int cli_can_prompt(const struct cli *c);
/* Print a failed request's error with the agent's detail; returns e. */
enum ak_err cli_fail_client(struct ak_client *cl, enum ak_err e, const char *context);
/* Print a failed connection or cli_agent_for_store (detail from it; "no agent reachable at SOCKET"
 * for AK_ERR_NO_AGENT); returns e. */
enum ak_err cli_fail_agent(enum ak_err e, const char *detail, const char *context);

#endif
