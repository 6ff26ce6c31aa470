/* scan.h - akctl's leak scanner and redaction filter (cmd_scan.c, scan_git.c, cmd_redact.c).
 *
 * The matcher is built from every profile's secret, fetched from the unlocked agent; the values pass
 * through the secure arena only (ak_profile_free wipes them) and the matcher keeps keyed hashes.
 */
#ifndef AK_CLI_SCAN_H
#define AK_CLI_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "ak_scan.h"
#include "cli.h"

/* What each secret of the matcher is called: "production ANTHROPIC_API_KEY", and its profiles. */
struct scan_names {
	size_t n;
	size_t cap;        /* entries allocated in label and profiles */
	char **label;      /* by secret id; "dev ANTHROPIC_API_KEY, prod ANTHROPIC_API_KEY" when shared */
	char **profiles;   /* by secret id; "dev,prod" */
	/* The profiles as listed (names, rotation policy and times; no secret), for doctor. */
	struct ak_list_entry *ents;
	uint32_t nents;
};

/* Fetch every profile from the agent (LIST + GET) and add each secret (the main one and every secret
 * variable) to a new matcher, and the previous key of each profile whose list entry says one is kept (GET_PREVIOUS), labelled "prod VAR (previous)":
 * a key just rotated away still works until its grace ends, so a copy of it is still a leak. Returns AK_OK with
 * *out and *names filled (free with scan_names_free / ak_scan_free), or the error after reporting it. */
enum ak_err scan_load(struct cli *c, int holdback, struct ak_scan **out, struct scan_names *names);
void scan_names_free(struct scan_names *nm);

/* Where a scanning thread's findings go instead of being printed (scan_pool.c). */
typedef void (*scan_sink)(void *arg, uint64_t line, const char *what, const char *variant, int wrapped,
    const char *fp, int unknown);

/* One scan's state: output mode, counters, the matcher. */
struct scan_ctx {
	struct ak_scan *m;
	struct scan_names names;
	int json, patterns;
	int quiet;         /* count findings, print nothing (doctor) */
	size_t found, unknown;
	uint64_t bytes;    /* scanned so far, and files (the progress line) */
	uint64_t files;
	uint8_t *buf;      /* chunk + overlap */
	size_t cap;
	size_t dirty;      /* how much of buf content has ever reached: what its free wipes */
	struct scan_pool *pool;  /* files scanned by worker threads, or NULL */
	scan_sink sink;          /* NULL: print */
	void *sink_arg;
};

/* A stream being scanned: feed bytes, then end. label is printed before ":line:". */
struct scan_stream {
	const char *label;
	const char *object;   /* git object id, or NULL */
	size_t n;             /* bytes in ctx->buf */
	uint64_t base;        /* stream offset of buf[0] */
	uint64_t line;        /* newlines before stream offset lbase */
	uint64_t lbase;       /* base, or less when newlines are counted only on a finding (fd) */
	int fd;               /* the file the stream reads, to count newlines from; -1: none */
	uint64_t done;        /* hits ending at or before this offset were reported */
	int zsh;              /* unmetafy (zsh history) */
	int meta;             /* a 0x83 at the end of the last feed */
	/* Called once, before the first finding is printed, to give the stream a better label (a git
	 * object's path); may be NULL. Set after scan_stream_begin. */
	void (*relabel)(void *arg, struct scan_stream *st);
	void *relabel_arg;
	int relabeled;
};
void scan_stream_begin(struct scan_ctx *x, struct scan_stream *st, const char *label);
void scan_stream_feed(struct scan_ctx *x, struct scan_stream *st, const uint8_t *data, size_t len);
void scan_stream_end(struct scan_ctx *x, struct scan_stream *st);
/* A stream's whole content at once, scanned where it lies (no copy); the caller wipes data. Right after
 * scan_stream_begin only; then scan_stream_end. */
void scan_stream_whole(struct scan_ctx *x, struct scan_stream *st, const uint8_t *data, size_t len);
/* Scan a file by path (regular files only, never through a symlink). 0, or -1 when it cannot be read. */
int scan_file(struct scan_ctx *x, const char *path, int zsh);
/* The same from a regular file open for reading, read to its end; closes fd. Newlines are counted from
 * the file itself when something is found (pread), unless zsh. */
int scan_fd(struct scan_ctx *x, int fd, const char *path, int zsh);
/* Open path to scan it: read-only, never through a symlink, a regular file only. The descriptor; -1
 * with errno when it cannot be opened (ENOENT: gone since it was listed, nothing to report); -2 when
 * it is not a regular file (skipped). *sb: its status. */
int scan_open(const char *path, struct stat *sb);
/* Print one finding (or pass it to x->sink). st gives the label; line is 1-based. */
void scan_report(struct scan_ctx *x, struct scan_stream *st, uint64_t line, const char *what,
    const char *variant, int wrapped, const char *fp, int unknown);

/* scan_pool.c: scan files on every CPU the process may use. Between start and finish, scan_submit
 * queues a file for a worker thread (each with a view of the matcher and a buffer of its own); the
 * findings are printed by the calling thread in the order the files were submitted, so the output is
 * the same as a scan on one thread. Without a pool (one CPU, or not started) scan_submit scans at
 * once. start: 0, or -1 out of memory. finish: waits for every file, prints, adds the counts to x. On a
 * terminal, both show a progress line on stderr (files, bytes). */
int scan_pool_start(struct scan_ctx *x);
/* The CPUs this process may run on (its affinity mask), at least 1 and at most max. */
size_t scan_cpus(size_t max);
/* Findings a worker thread keeps to be printed later, in order, by the calling thread. obj is the
 * caller's index of what was scanned (the object in scan --git's listing; 0 for a file). */
struct scan_finding {
	size_t obj;
	uint64_t line;
	const char *what, *variant; /* static or the names table: outlive the scan */
	int wrapped, unknown;
	char fp[13];
};
struct scan_findings {
	struct scan_finding *f;
	size_t n, cap;
	int oom;                    /* a finding could not be kept: said after the others */
};
/* Append one finding (a sink's arguments); out of memory sets l->oom. */
void scan_findings_add(struct scan_findings *l, size_t obj, uint64_t line, const char *what,
    const char *variant, int wrapped, const char *fp, int unknown);
void scan_findings_free(struct scan_findings *l);
void scan_submit(struct scan_ctx *x, const char *path);
void scan_pool_finish(struct scan_ctx *x);
/* The progress line on stderr when it is a terminal: redrawn at most a few times a second; done
 * clears it. */
void scan_progress(struct scan_ctx *x, uint64_t items, const char *what, int done);

/* The --history sources (shell and REPL histories in HOME, zsh unmetafied) and the --agents sources
 * (Claude Code, Codex, Copilot CLI transcripts). Missing files are skipped. */
void scan_history(struct scan_ctx *x);
void scan_agents(struct scan_ctx *x);
/* scan_cursor.c: Cursor's state.vscdb files (SQLite, loaded at the moment of use), part of --agents. */
void scan_cursor(struct scan_ctx *x);
/* A scan context for x->m/x->names already loaded: the chunk buffer. 0, or -1 out of memory. */
int scan_ctx_buffer(struct scan_ctx *x);
/* Wipe what the buffer ever held and free it. */
void scan_ctx_buffer_free(struct scan_ctx *x);
/* A worker thread's context made from x: the same names and options, its own view of the matcher and
 * its own buffer, no pool, counts from zero, findings to sink. 0, or -1 out of memory; either way w->m
 * and w->buf are what was made (or NULL), for the caller to free. */
int scan_ctx_worker(struct scan_ctx *w, const struct scan_ctx *x, scan_sink sink, void *sink_arg);
/* Free what a scan context holds: the buffer, the names and the matcher (x itself stays the caller's). */
void scan_ctx_finish(struct scan_ctx *x);

/* scan_git.c: every object of the repository at dir (blobs, commits, tags), or only the staged blobs. */
enum ak_err scan_git(struct scan_ctx *x, const char *dir, int staged);
/* Install the pre-commit hook in the repository at dir. Returns AK_OK or the error, reported. */
enum ak_err scan_install_hook(struct cli *c, const char *dir, int force);

enum ak_err cmd_scan(struct cli *c, int argc, char **argv);
enum ak_err cmd_doctor(struct cli *c, int argc, char **argv);
enum ak_err cmd_exposure(struct cli *c, int argc, char **argv);
enum ak_err cmd_redact(struct cli *c, int argc, char **argv);

/* cmd_redact.c: exec --redact (called by cmd_exec when it sees --redact before "--"). */
enum ak_err cli_exec_redact(struct cli *c, int argc, char **argv);

#endif
