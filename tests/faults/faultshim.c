/* faultshim.c - an LD_PRELOAD fault injector for the write paths (tests only, never installed).
 *
 * Environment:
 *   AK_FAULT       "OP:N:WHAT[,OP:N:WHAT...]": the Nth matching call of OP fails (N+ = the Nth and every
 *                  later one, * = every one). WHAT is an errno name (ENOSPC, EIO, EDQUOT, EROFS, EACCES,
 *                  EPERM, EMFILE, ENOMEM, EINTR, EEXIST, EXDEV, EFBIG) or, for write, "short" (write half
 *                  the bytes and report that: legal, the caller must loop) or "shortspc" (half, then the
 *                  next write to that descriptor fails with ENOSPC, like a filling disk).
 *   AK_FAULT_PATH  only calls on paths containing this string count (descriptor calls count when the
 *                  descriptor was opened on such a path). Unset: every path.
 *   AK_FAULT_ARM   if set, calls count only while this file exists (so a long-lived agent can be armed
 *                  for exactly one request); counters restart each time it appears, and its first line,
 *                  if any, replaces AK_FAULT.
 *   AK_FAULT_LOG   append "OP N WHAT PID PATH" here each time a fault fires, so the test knows the
 *                  failure point was reached.
 * OPs: open (open/open64/openat/openat64/creat), mkstemp (mkstemp/mkostemp/mkstemps/mkostemps and their
 * 64 variants), write
 * (write/writev on a tracked descriptor), read, fsync (fsync/fdatasync), close, fchmod, flock, rename
 * (rename/renameat/renameat2), link (link/linkat), unlink (unlink/unlinkat).
 * A failing close really closes the descriptor first, as Linux does.
 */
/* Define open and open64 (etc.) as separate symbols: the build's -D_FILE_OFFSET_BITS=64 would make
 * the headers map one name onto the other. */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum op { OP_OPEN, OP_MKSTEMP, OP_WRITE, OP_READ, OP_FSYNC, OP_CLOSE, OP_FCHMOD, OP_FLOCK, OP_RENAME,
	OP_LINK, OP_UNLINK, OP_COUNT };
static const char *const op_names[OP_COUNT] = { "open", "mkstemp", "write", "read", "fsync", "close",
	"fchmod", "flock", "rename", "link", "unlink" };

#define MAX_RULES 16
#define MAX_FD 65536
#define W_SHORT (-1)
#define W_SHORTSPC (-2)

struct rule {
	enum op op;
	unsigned long n;
	int from;      /* N+ or * */
	int err;       /* errno, or W_SHORT / W_SHORTSPC */
	char what[16];
};

static struct rule rules[MAX_RULES];
static int nrules;
static unsigned long counts[OP_COUNT];
static const char *match_path, *arm_path, *log_path;
static unsigned char tracked[MAX_FD];	/* 1 = opened on a matching path; 2 = also: next write ENOSPC */
static char fdpath[256][128];		/* path of small fds, for the log */
static int inited;

static const struct { const char *name; int val; } errnames[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT }, { "EROFS", EROFS },
	{ "EACCES", EACCES }, { "EPERM", EPERM }, { "EMFILE", EMFILE }, { "ENOMEM", ENOMEM },
	{ "EINTR", EINTR }, { "EEXIST", EEXIST }, { "EXDEV", EXDEV }, { "EFBIG", EFBIG },
	{ "ENOENT", ENOENT }, { "EAGAIN", EAGAIN },
};

/* The real functions. */
static int (*r_open)(const char *, int, ...);
static int (*r_open64)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static int (*r_openat64)(int, const char *, int, ...);
static int (*r_creat)(const char *, mode_t);
static int (*r_mkstemp)(char *);
static int (*r_mkostemp)(char *, int);
static int (*r_mkstemps)(char *, int);
static int (*r_mkostemps)(char *, int, int);
static int (*r_mkstemp64)(char *);
static int (*r_mkostemp64)(char *, int);
static int (*r_mkstemps64)(char *, int);
static int (*r_mkostemps64)(char *, int, int);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_read)(int, void *, size_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_close)(int);
static int (*r_fchmod)(int, mode_t);
static int (*r_flock)(int, int);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*r_link)(const char *, const char *);
static int (*r_linkat)(int, const char *, int, const char *, int);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);

/* dlsym returns an object pointer; ISO C has no cast from it to a function pointer, so copy the bytes
 * (what POSIX guarantees works for dlsym's result). */
#define SYM(v, name) \
	do { \
		void *sym_ = dlsym(RTLD_NEXT, name); \
		memcpy(&(v), &sym_, sizeof(v)); \
	} while (0)

static void
parse_rules(const char *spec)
{
	char buf[512], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, ",", &save); tok != NULL && nrules < MAX_RULES;
	    tok = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(tok, ':'), *c2, *end;
		struct rule *ru = &rules[nrules];
		size_t i;
		int o;

		if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL)
			goto bad;
		*c1 = *c2 = '\0';
		for (o = 0; o < OP_COUNT; o++)
			if (strcmp(tok, op_names[o]) == 0)
				break;
		if (o == OP_COUNT)
			goto bad;
		ru->op = (enum op)o;
		if (strcmp(c1 + 1, "*") == 0) {
			ru->n = 1;
			ru->from = 1;
		} else {
			ru->n = strtoul(c1 + 1, &end, 10);
			ru->from = *end == '+';
			if (ru->n == 0 || (*end != '\0' && strcmp(end, "+") != 0))
				goto bad;
		}
		snprintf(ru->what, sizeof(ru->what), "%s", c2 + 1);
		ru->err = 0;
		if (strcmp(c2 + 1, "short") == 0)
			ru->err = W_SHORT;
		else if (strcmp(c2 + 1, "shortspc") == 0)
			ru->err = W_SHORTSPC;
		for (i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
			if (strcmp(c2 + 1, errnames[i].name) == 0)
				ru->err = errnames[i].val;
		if (ru->err == 0 || (ru->err < 0 && ru->op != OP_WRITE))
			goto bad;
		nrules++;
		continue;
bad:
		fprintf(stderr, "faultshim: bad rule in AK_FAULT (want OP:N:ERRNAME)\n");
		_exit(125);
	}
}

__attribute__((constructor)) static void
shim_init(void)
{
	const char *spec;

	if (inited)
		return;
	SYM(r_open, "open");
	SYM(r_open64, "open64");
	SYM(r_openat, "openat");
	SYM(r_openat64, "openat64");
	SYM(r_creat, "creat");
	SYM(r_mkstemp, "mkstemp");
	SYM(r_mkostemp, "mkostemp");
	SYM(r_mkstemps, "mkstemps");
	SYM(r_mkostemps, "mkostemps");
	SYM(r_mkstemp64, "mkstemp64");
	SYM(r_mkostemp64, "mkostemp64");
	SYM(r_mkstemps64, "mkstemps64");
	SYM(r_mkostemps64, "mkostemps64");
	SYM(r_write, "write");
	SYM(r_writev, "writev");
	SYM(r_read, "read");
	SYM(r_fsync, "fsync");
	SYM(r_fdatasync, "fdatasync");
	SYM(r_close, "close");
	SYM(r_fchmod, "fchmod");
	SYM(r_flock, "flock");
	SYM(r_rename, "rename");
	SYM(r_renameat, "renameat");
	SYM(r_renameat2, "renameat2");
	SYM(r_link, "link");
	SYM(r_linkat, "linkat");
	SYM(r_unlink, "unlink");
	SYM(r_unlinkat, "unlinkat");
	inited = 1;
	if ((spec = getenv("AK_FAULT")) != NULL && *spec != '\0')
		parse_rules(spec);
	match_path = getenv("AK_FAULT_PATH");
	arm_path = getenv("AK_FAULT_ARM");
	log_path = getenv("AK_FAULT_LOG");
}

/* The arm file, when it holds text, replaces AK_FAULT's rules; each time it appears the counters
 * restart, so one long-lived agent can be given a new fault per request. */
static void
load_arm_rules(void)
{
	char buf[512];
	long fd, n;

	fd = syscall(SYS_openat, AT_FDCWD, arm_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = syscall(SYS_read, (int)fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, (int)fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0')
		return;
	nrules = 0;
	memset(rules, 0, sizeof(rules));
	parse_rules(buf);
}

static int
armed(void)
{
	static int was_armed;
	int now;

	if (arm_path == NULL)
		return nrules > 0;
	/* the raw system call: cheap and obviously side-effect free */
	now = syscall(SYS_access, arm_path, F_OK) == 0;
	if (now && !was_armed) {
		memset(counts, 0, sizeof(counts));
		load_arm_rules();
	}
	was_armed = now;
	return now && nrules > 0;
}

static int
path_matches(const char *p)
{
	return p != NULL && (match_path == NULL || strstr(p, match_path) != NULL);
}

static void
log_fire(const struct rule *ru, unsigned long n, const char *path)
{
	char line[512];
	int fd, len;

	if (log_path == NULL)
		return;
	len = snprintf(line, sizeof(line), "%s %lu %s %ld %s\n", op_names[ru->op], n, ru->what,
	    (long)getpid(), path ? path : "?");
	if (len <= 0)
		return;
	if (len >= (int)sizeof(line))
		len = sizeof(line) - 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!syscall(SYS_write, fd, line, (size_t)len);
		syscall(SYS_close, fd);
	}
}

/* Count one matching call of op; returns the rule that fires for it, or NULL. */
static const struct rule *
hit(enum op op, const char *path)
{
	unsigned long n;
	int i;

	if (!inited)
		shim_init();
	if (!armed() || !path_matches(path))
		return NULL;
	n = ++counts[op];
	for (i = 0; i < nrules; i++) {
		const struct rule *ru = &rules[i];

		if (ru->op == op && (n == ru->n || (ru->from && n > ru->n))) {
			log_fire(ru, n, path);
			return ru;
		}
	}
	return NULL;
}

static const char *
fd_path(int fd)
{
	if (fd < 0 || fd >= MAX_FD || !tracked[fd])
		return NULL;
	return fd < 256 ? fdpath[fd] : "(fd)";
}

static void
track(int fd, const char *path)
{
	if (fd < 0 || fd >= MAX_FD)
		return;
	tracked[fd] = path_matches(path) ? 1 : 0;
	if (fd < 256 && path != NULL)
		snprintf(fdpath[fd], sizeof(fdpath[fd]), "%s", path);
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);

/* at_real is used when non-NULL (openat), else real (open). */
static int
do_open(open_fn real, openat_fn at_real, int dirfd, const char *path, int flags, mode_t mode)
{
	const struct rule *ru = hit(OP_OPEN, path);
	int fd;

	if (ru != NULL) {
		errno = ru->err;
		return -1;
	}
	fd = at_real != NULL ? at_real(dirfd, path, flags, mode) : real(path, flags, mode);
	track(fd, path);
	return fd;
}

#define MODE_ARG(flags, mode) do { \
	if ((flags) & (O_CREAT | O_TMPFILE)) { \
		va_list ap; \
		va_start(ap, flags); \
		mode = (mode_t)va_arg(ap, int); \
		va_end(ap); \
	} \
} while (0)

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (!inited)
		shim_init();
	return do_open(r_open, NULL, 0, path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (!inited)
		shim_init();
	return do_open(r_open64, NULL, 0, path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (!inited)
		shim_init();
	return do_open(NULL, r_openat, dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (!inited)
		shim_init();
	return do_open(NULL, r_openat64, dirfd, path, flags, mode);
}

int
creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

#define MKSTEMP_BODY(call) do { \
	const struct rule *ru = hit(OP_MKSTEMP, tmpl); \
	int fd; \
	if (ru != NULL) { \
		errno = ru->err; \
		return -1; \
	} \
	fd = call; \
	track(fd, tmpl); \
	return fd; \
} while (0)

int
mkstemp(char *tmpl)
{
	MKSTEMP_BODY(r_mkstemp(tmpl));
}

int
mkostemp(char *tmpl, int flags)
{
	MKSTEMP_BODY(r_mkostemp(tmpl, flags));
}

int
mkstemps(char *tmpl, int suffixlen)
{
	MKSTEMP_BODY(r_mkstemps(tmpl, suffixlen));
}

int
mkostemps(char *tmpl, int suffixlen, int flags)
{
	MKSTEMP_BODY(r_mkostemps(tmpl, suffixlen, flags));
}

/* With _FILE_OFFSET_BITS=64 (as meson builds) the headers redirect mkostemp to mkostemp64. */
int mkstemp64(char *tmpl);
int mkostemp64(char *tmpl, int flags);
int mkstemps64(char *tmpl, int suffixlen);
int mkostemps64(char *tmpl, int suffixlen, int flags);

int
mkstemp64(char *tmpl)
{
	MKSTEMP_BODY(r_mkstemp64(tmpl));
}

int
mkostemp64(char *tmpl, int flags)
{
	MKSTEMP_BODY(r_mkostemp64(tmpl, flags));
}

int
mkstemps64(char *tmpl, int suffixlen)
{
	MKSTEMP_BODY(r_mkstemps64(tmpl, suffixlen));
}

int
mkostemps64(char *tmpl, int suffixlen, int flags)
{
	MKSTEMP_BODY(r_mkostemps64(tmpl, suffixlen, flags));
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	const struct rule *ru;

	if (!inited)
		shim_init();
	if (fd_path(fd) == NULL)
		return r_write(fd, buf, len);
	if (tracked[fd] == 2) {
		tracked[fd] = 1;
		errno = ENOSPC;
		return -1;
	}
	if ((ru = hit(OP_WRITE, fd_path(fd))) == NULL)
		return r_write(fd, buf, len);
	if (ru->err >= 0) {
		errno = ru->err;
		return -1;
	}
	if (len > 1)
		len /= 2;
	if (ru->err == W_SHORTSPC)
		tracked[fd] = 2;
	return r_write(fd, buf, len);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	const struct rule *ru;

	if (!inited)
		shim_init();
	if (fd_path(fd) == NULL || (ru = hit(OP_WRITE, fd_path(fd))) == NULL || ru->err < 0)
		return r_writev(fd, iov, iovcnt);
	errno = ru->err;
	return -1;
}

ssize_t
read(int fd, void *buf, size_t len)
{
	const struct rule *ru;

	if (!inited)
		shim_init();
	if (fd_path(fd) != NULL && (ru = hit(OP_READ, fd_path(fd))) != NULL) {
		errno = ru->err;
		return -1;
	}
	return r_read(fd, buf, len);
}

#define FD_FAULT(op, call) do { \
	const struct rule *ru; \
	if (!inited) \
		shim_init(); \
	if (fd_path(fd) != NULL && (ru = hit(op, fd_path(fd))) != NULL) { \
		errno = ru->err; \
		return -1; \
	} \
	return call; \
} while (0)

int
fsync(int fd)
{
	FD_FAULT(OP_FSYNC, r_fsync(fd));
}

int
fdatasync(int fd)
{
	FD_FAULT(OP_FSYNC, r_fdatasync(fd));
}

int
fchmod(int fd, mode_t mode)
{
	FD_FAULT(OP_FCHMOD, r_fchmod(fd, mode));
}

int
flock(int fd, int how)
{
	FD_FAULT(OP_FLOCK, r_flock(fd, how));
}

int
close(int fd)
{
	const struct rule *ru = NULL;
	const char *p;

	if (!inited)
		shim_init();
	if ((p = fd_path(fd)) != NULL) {
		ru = hit(OP_CLOSE, p);
		tracked[fd] = 0;
	}
	if (ru != NULL) {
		r_close(fd);
		errno = ru->err;
		return -1;
	}
	return r_close(fd);
}

#define PATH_FAULT(op, path, call) do { \
	const struct rule *ru; \
	if (!inited) \
		shim_init(); \
	if ((ru = hit(op, path)) != NULL) { \
		errno = ru->err; \
		return -1; \
	} \
	return call; \
} while (0)

int
rename(const char *from, const char *to)
{
	PATH_FAULT(OP_RENAME, to, r_rename(from, to));
}

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	PATH_FAULT(OP_RENAME, to, r_renameat(fd1, from, fd2, to));
}

int
renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
	PATH_FAULT(OP_RENAME, to, r_renameat2(fd1, from, fd2, to, flags));
}

int
link(const char *from, const char *to)
{
	PATH_FAULT(OP_LINK, to, r_link(from, to));
}

int
linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	PATH_FAULT(OP_LINK, to, r_linkat(fd1, from, fd2, to, flags));
}

int
unlink(const char *path)
{
	PATH_FAULT(OP_UNLINK, path, r_unlink(path));
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	PATH_FAULT(OP_UNLINK, path, r_unlinkat(dirfd, path, flags));
}
