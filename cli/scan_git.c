/* scan_git.c - akctl scan --git: every object in the repository's object store, reachable or not
 * (stash, reflog, dangling commits), each once, listed by `git cat-file --batch-all-objects
 * --batch-check --unordered` and read through one `git cat-file --batch` per CPU (far faster than
 * `git log -p`, and it sees what no ref points to). --staged scans only the blobs a commit would add
 * (the pre-commit hook). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "scan.h"

/* cat-file's output, read in large pieces: an object that fits is scanned where it lies. The buffer
 * holds object contents (keys, maybe): wiped when freed. */
#define RD_CAP (4u << 20)

struct rd {
	int fd;
	size_t pos, len;
	uint8_t *buf;
};

static struct rd *
rd_new(int fd)
{
	struct rd *r = calloc(1, sizeof(*r));
	int sz;

	if (r == NULL || (r->buf = malloc(RD_CAP)) == NULL) {
		free(r);
		return NULL;
	}
	r->fd = fd;
	/* A larger pipe: git stalls on a full pipe until we are scheduled, which on a busy machine takes
	 * longer than git needs to fill 1 MiB. Best effort: unprivileged users get at most pipe-max-size
	 * (1 MiB by default). */
	for (sz = 16 << 20; sz >= 1 << 20; sz >>= 2)
		if (fcntl(fd, F_SETPIPE_SZ, sz) >= 0)
			break;
	return r;
}

static void
rd_free(struct rd *r)
{
	if (r == NULL)
		return;
	sodium_memzero(r->buf, RD_CAP);
	free(r->buf);
	free(r);
}

/* Read more after what is buffered, moving it to the start first if need be. 0 at EOF or error. */
static int
rd_more(struct rd *r)
{
	ssize_t n;

	if (r->len == RD_CAP) {
		if (r->pos == 0)
			return 0;
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	do
		n = read(r->fd, r->buf + r->len, RD_CAP - r->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	r->len += (size_t)n;
	return 1;
}

static int
rd_fill(struct rd *r)
{
	if (r->pos < r->len)
		return 1;
	r->pos = r->len = 0;
	return rd_more(r);
}

/* One line (without "\n") into out; 0 at EOF or when too long. */
static int
rd_line(struct rd *r, char *out, size_t cap)
{
	size_t o = 0;

	for (;;) {
		if (!rd_fill(r))
			return 0;
		while (r->pos < r->len) {
			uint8_t ch = r->buf[r->pos++];

			if (ch == '\n') {
				out[o] = '\0';
				return 1;
			}
			if (o + 1 >= cap)
				return 0;
			out[o++] = (char)ch;
		}
	}
}

/* n bytes of content, fed to the stream when st is not NULL, then the "\n" after it. */
static int
rd_object(struct rd *r, struct scan_ctx *x, struct scan_stream *st, uint64_t n)
{
	size_t take;

	/* Whole in the buffer (after reading more when it would fit): scanned in place. */
	if (st != NULL && n + 1 <= RD_CAP) {
		while (r->len - r->pos < n + 1)
			if (!rd_more(r))
				return 0;
		scan_stream_whole(x, st, r->buf + r->pos, (size_t)n);
		r->pos += (size_t)n;
		if (r->buf[r->pos] != '\n')
			return 0;
		r->pos++;
		return 1;
	}
	while (n > 0) {
		if (!rd_fill(r))
			return 0;
		take = r->len - r->pos < n ? r->len - r->pos : (size_t)n;
		if (st != NULL)
			scan_stream_feed(x, st, r->buf + r->pos, take);
		r->pos += take;
		n -= take;
	}
	if (!rd_fill(r) || r->buf[r->pos] != '\n')
		return 0;
	r->pos++;
	return 1;
}

/* Run git with args in dir. Its stdin: infd when >= 0, else a new pipe whose write end goes to *in when
 * in is not NULL; its stdout: a new pipe whose read end goes to *out. Call from the main thread: the
 * child is killed when the thread that forked it ends (akctl killed by a signal included), so no git
 * outlives a scan. */
static pid_t
spawn_io(const char *dir, const char *const *args, int infd, int *in, int *out)
{
	int ip[2] = { -1, -1 }, op[2] = { -1, -1 };
	pid_t pid, parent = getpid();

	if ((in != NULL && pipe2(ip, O_CLOEXEC) != 0) || pipe2(op, O_CLOEXEC) != 0)
		goto fail;
	fflush(NULL);
	if ((pid = fork()) < 0)
		goto fail;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			_exit(127);
		if ((infd >= 0 && dup2(infd, 0) < 0) || (in != NULL && dup2(ip[0], 0) < 0) ||
		    dup2(op[1], 1) < 0)
			_exit(127);
		if (chdir(dir) != 0)
			_exit(127);
		execvp("git", (char *const *)args);
		_exit(127);
	}
	if (in != NULL) {
		close(ip[0]);
		*in = ip[1];
	}
	close(op[1]);
	*out = op[0];
	return pid;
fail:
	if (ip[0] >= 0) {
		close(ip[0]);
		close(ip[1]);
	}
	if (op[0] >= 0) {
		close(op[0]);
		close(op[1]);
	}
	return -1;
}

static pid_t
spawn(const char *dir, const char *const *args, int *in, int *out)
{
	return spawn_io(dir, args, -1, in, out);
}

static int
reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Paths of the blobs in HEAD's tree (`git ls-tree -r -z HEAD`), read at the first finding only, so a
 * clean repository costs nothing: a finding in such a blob is printed as REPO/PATH@OID. */
struct gpath {
	char oid[41];
	const char *path;
};

struct gpaths {
	const char *dir;
	int loaded;
	char *list;
	struct gpath *e;
	size_t n;
	char label[PATH_MAX * 2 + 64];
};

/* Run git with args in dir and read all it prints into *out (malloc'd and NUL-terminated, *len bytes
 * before the NUL). AK_ERR_SYSTEM when it cannot be started (errno says why), AK_ERR_IO when it fails. */
static enum ak_err
git_read(const char *dir, const char *const *args, char **out, size_t *len)
{
	char *buf = NULL, *nb;
	size_t cap = 0;
	ssize_t n;
	pid_t pid;
	int fd;

	*out = NULL;
	*len = 0;
	if ((pid = spawn(dir, args, NULL, &fd)) < 0)
		return AK_ERR_SYSTEM;
	for (;;) {
		if (*len + 65536 + 1 > cap) {
			if ((nb = realloc(buf, cap = cap * 2 + 65536 + 1)) == NULL)
				break;
			buf = nb;
		}
		n = read(fd, buf + *len, cap - *len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	close(fd);
	if (reap(pid) != 0 || buf == NULL) {
		free(buf);
		*len = 0;
		return AK_ERR_IO;
	}
	buf[*len] = '\0';
	*out = buf;
	return AK_OK;
}

static int
cmp_gpath(const void *a, const void *b)
{
	return strcmp(((const struct gpath *)a)->oid, ((const struct gpath *)b)->oid);
}

static void
gpaths_load(struct gpaths *g)
{
	static const char *const args[] = { "git", "ls-tree", "-r", "-z", "--full-tree", "HEAD", NULL };
	size_t len = 0, cape = 0;
	char *p, *end, *tab;

	g->loaded = 1;
	/* An empty repository has no HEAD: no paths, object ids only. */
	if (git_read(g->dir, args, &g->list, &len) != AK_OK)
		return;
	/* "<mode> blob <oid>\t<path>\0" per entry. */
	for (p = g->list, end = g->list + len; p < end; p += strlen(p) + 1) {
		char *sp = strchr(p, ' ');

		/* SHA-1 ids only (40 hex digits); anything else keeps its object id. */
		if ((tab = strchr(p, '\t')) == NULL || sp == NULL || sp > tab ||
		    strncmp(sp + 1, "blob ", 5) != 0 || tab - (sp + 6) != 40)
			continue;
		if (g->n == cape) {
			struct gpath *ne = realloc(g->e, (cape = cape * 2 + 256) * sizeof(*ne));

			if (ne == NULL)
				break;
			g->e = ne;
		}
		memcpy(g->e[g->n].oid, tab - 40, 40);
		g->e[g->n].oid[40] = '\0';
		g->e[g->n].path = tab + 1;
		g->n++;
	}
	if (g->n > 0)
		qsort(g->e, g->n, sizeof(*g->e), cmp_gpath);
}

static void
gpaths_relabel(void *arg, struct scan_stream *st)
{
	struct gpaths *g = arg;
	struct gpath key, *hit;

	if (!g->loaded)
		gpaths_load(g);
	if (st->object == NULL || g->n == 0 || strlen(st->object) != 40)
		return;
	memcpy(key.oid, st->object, 41);
	if ((hit = bsearch(&key, g->e, g->n, sizeof(*g->e), cmp_gpath)) == NULL)
		return;
	snprintf(g->label, sizeof(g->label), "%s/%s@%s", g->dir, hit->path, st->object);
	st->label = g->label;
}

static void
gpaths_free(struct gpaths *g)
{
	free(g->e);
	free(g->list);
}

/* The whole object store, on every CPU. `git cat-file --batch-check` lists every object once (id, type,
 * size; cheap: nothing is inflated); the objects worth scanning (all but trees, which hold names and ids
 * only) are cut into one contiguous slice per CPU of about equal bytes, and each slice goes to a `git
 * cat-file --batch` of its own (its ids written up front to an anonymous file that is its stdin, so
 * nothing can stall on a full pipe), read and matched by a thread of its own: inflating, git's cost,
 * runs on every CPU. Findings are kept per slice and printed by the calling thread in the listing's
 * order, the order of one `--batch-all-objects --unordered` pass, so the output does not depend on the
 * number of CPUs. */
#define GIT_WORKERS_MAX 8

struct gworker {
	struct scan_ctx x;          /* a view of the matcher and a buffer of its own; sink: this worker */
	const char *ids;            /* the slice's "oid\n" lines */
	size_t first, n;            /* the slice: objects first..first+n-1 of the listing */
	size_t hexlen;
	pid_t pid;
	int fd;                     /* cat-file's stdout */
	pthread_t th;
	int started, failed;
	size_t cur;                 /* object being scanned (for the sink) */
	struct scan_findings fl;    /* obj: the index in the listing */
	_Atomic uint64_t objs, bytes; /* progress, read by the calling thread */
	_Atomic int *stop;          /* set by a worker that failed: the others end early */
};

static void
gsink(void *arg, uint64_t line, const char *what, const char *variant, int wrapped, const char *fp,
    int unknown)
{
	struct gworker *w = arg;

	scan_findings_add(&w->fl, w->cur, line, what, variant, wrapped, fp, unknown);
}

static void *
gwork(void *arg)
{
	struct gworker *w = arg;
	struct scan_stream st;
	struct rd *r;
	char hdr[256], oid[128], type[32];
	unsigned long long size;
	uint64_t before;
	size_t i;

	if ((r = rd_new(w->fd)) == NULL) {
		w->failed = 1;
		return NULL;
	}
	for (i = 0; i < w->n; i++) {
		if (*w->stop || !rd_line(r, hdr, sizeof(hdr))) {
			w->failed = 1;
			break;
		}
		/* The slice's ids come back in order: "<oid> <type> <size>", or "<oid> missing" for one
		 * that went away since the listing (a gc ran). */
		if (strncmp(hdr, w->ids + i * (w->hexlen + 1), w->hexlen) != 0) {
			w->failed = 1;
			break;
		}
		if (sscanf(hdr, "%127s %31s %llu", oid, type, &size) != 3) {
			if (strcmp(hdr + w->hexlen, " missing") == 0)
				continue;
			w->failed = 1;
			break;
		}
		w->cur = w->first + i;
		before = w->x.bytes;
		scan_stream_begin(&w->x, &st, "");
		if (!rd_object(r, &w->x, &st, size)) {
			w->failed = 1;
			break;
		}
		scan_stream_end(&w->x, &st);
		w->objs++;
		w->bytes += w->x.bytes - before;
	}
	if (w->failed)
		*w->stop = 1;
	rd_free(r);
	return NULL;
}

/* Every object to scan, from `git cat-file --batch-all-objects --batch-check --unordered`: ids[] holds
 * "oid\n" per object (hexlen + 1 bytes each), size[] their sizes. 0, or -1 (git failed, or no memory:
 * *oom set). */
struct glist {
	char *ids;
	uint64_t *size;
	size_t n, cap, hexlen;
};

static int
glist_load(const char *dir, struct glist *l, int *oom)
{
	static const char *const args[] = { "git", "cat-file", "--batch-all-objects", "--batch-check",
		"--unordered", NULL };
	char hdr[256], oid[128], type[32];
	unsigned long long size;
	struct rd *r;
	pid_t pid;
	int fd, ok = 1;

	*oom = 0;
	if ((pid = spawn(dir, args, NULL, &fd)) < 0)
		return -1;
	if ((r = rd_new(fd)) == NULL) {
		*oom = 1;
		ok = 0;
	}
	while (ok && rd_line(r, hdr, sizeof(hdr))) {
		size_t hl;

		if (sscanf(hdr, "%127s %31s %llu", oid, type, &size) != 3) {
			ok = 0;
			break;
		}
		/* Trees hold names and ids only; blobs, commit messages and tags can hold a key. */
		if (strcmp(type, "tree") == 0)
			continue;
		hl = strlen(oid);
		if (l->hexlen == 0)
			l->hexlen = hl;
		if (hl != l->hexlen) {
			ok = 0;
			break;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 4096;
			char *ni = realloc(l->ids, cap * (hl + 1));
			uint64_t *ns;

			if (ni != NULL)
				l->ids = ni;
			if (ni == NULL || (ns = realloc(l->size, cap * sizeof(*ns))) == NULL) {
				*oom = 1;
				ok = 0;
				break;
			}
			l->size = ns;
			l->cap = cap;
		}
		memcpy(l->ids + l->n * (hl + 1), oid, hl);
		l->ids[l->n * (hl + 1) + hl] = '\n';
		l->size[l->n++] = size;
	}
	close(fd);
	rd_free(r);
	if (!ok)
		kill(pid, SIGTERM);
	if (reap(pid) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* The cat-file children of a running scan, for the signal handler: an interrupted scan (Ctrl-C, kill)
 * kills and reaps them before akctl dies of the signal, so none is left running or unreaped. */
static volatile pid_t sig_pids[GIT_WORKERS_MAX];
static const int sig_stop[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static struct sigaction sig_old[sizeof(sig_stop) / sizeof(sig_stop[0])];

static void
on_stop_signal(int sig)
{
	size_t i;
	int saved = errno;

	for (i = 0; i < GIT_WORKERS_MAX; i++)
		if (sig_pids[i] > 0)
			kill(sig_pids[i], SIGTERM);
	for (i = 0; i < GIT_WORKERS_MAX; i++)
		if (sig_pids[i] > 0)
			while (waitpid(sig_pids[i], NULL, 0) < 0 && errno == EINTR)
				;
	/* Die of the signal, as without this handler. */
	signal(sig, SIG_DFL);
	raise(sig);
	errno = saved;
}

static void
stop_signals(int install)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(sig_stop) / sizeof(sig_stop[0]); i++) {
		if (install)
			sigaction(sig_stop[i], &sa, &sig_old[i]);
		else
			sigaction(sig_stop[i], &sig_old[i], NULL);
	}
}

/* An anonymous file holding len bytes of data, at offset 0: a child's stdin. -1 on failure. */
static int
ids_file(const char *data, size_t len)
{
	size_t off = 0;
	ssize_t n;
	int fd = memfd_create("akctl-scan-ids", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static enum ak_err
scan_all_objects(struct scan_ctx *x, const char *dir)
{
	static const char *const args[] = { "git", "cat-file", "--batch", NULL };
	struct gworker *w = NULL;
	struct glist l;
	struct gpaths gp;
	struct scan_stream st;
	char oid[128], label[PATH_MAX + 160];
	uint64_t total = 0, acc, want;
	size_t nw = 0, i, k, at;
	_Atomic int stop = 0;
	int oom, failed = 0, sigs = 0, ifd;
	enum ak_err rc = AK_OK;

	memset(&l, 0, sizeof(l));
	memset(&gp, 0, sizeof(gp));
	gp.dir = dir;
	if (glist_load(dir, &l, &oom) != 0) {
		if (oom)
			rc = cli_fail(AK_ERR_NOMEM, NULL, "scan");
		failed = 1;
		goto out;
	}
	for (i = 0; i < l.n; i++)
		total += l.size[i];
	nw = scan_cpus(GIT_WORKERS_MAX);
	if (nw > l.n)
		nw = l.n > 0 ? l.n : 1;
	if ((w = calloc(nw, sizeof(*w))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "scan");
		goto out;
	}
	/* Slices of about total/nw bytes each, in listing order. */
	for (k = 0, at = 0, acc = 0; k < nw; k++) {
		w[k].first = at;
		want = total / nw * (k + 1);
		while (at < l.n && (k == nw - 1 || acc < want) && l.n - at > nw - 1 - k)
			acc += l.size[at++];
		w[k].n = at - w[k].first;
		w[k].ids = l.ids + w[k].first * (l.hexlen + 1);
		w[k].hexlen = l.hexlen;
		w[k].stop = &stop;
		w[k].fd = -1;
		w[k].pid = -1;
	}
	/* Views, buffers and children made here: the secure arena is this thread's, and each git is tied
	 * to this thread's life. */
	stop_signals(1);
	sigs = 1;
	for (k = 0; k < nw; k++) {
		struct gworker *g = &w[k];

		if (scan_ctx_worker(&g->x, x, gsink, g) != 0) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "scan");
			goto out;
		}
		if ((ifd = ids_file(g->ids, g->n * (l.hexlen + 1))) < 0) {
			rc = cli_fail(AK_ERR_SYSTEM, strerror(errno), "scan: listing objects for git");
			goto out;
		}
		g->pid = spawn_io(dir, args, ifd, NULL, &g->fd);
		sig_pids[k] = g->pid;
		close(ifd);
		if (g->pid < 0) {
			rc = cli_fail(AK_ERR_SYSTEM, strerror(errno), "scan: running git");
			goto out;
		}
	}
	for (k = 0; k < nw; k++) {
		if (pthread_create(&w[k].th, NULL, gwork, &w[k]) != 0) {
			stop = 1;
			rc = cli_fail(AK_ERR_SYSTEM, NULL, "scan: starting a thread");
			goto out;
		}
		w[k].started = 1;
	}
	/* The progress line while the workers run (a terminal only; otherwise just wait). */
	if (!x->quiet && isatty(STDERR_FILENO)) {
		for (;;) {
			uint64_t objs = 0, bytes = 0, keep = x->bytes;
			struct timespec ts = { 0, 100000000L };

			for (k = 0; k < nw; k++) {
				objs += w[k].objs;
				bytes += w[k].bytes;
			}
			x->bytes = keep + bytes;
			scan_progress(x, objs, "objects", 0);
			x->bytes = keep;
			for (k = 0; k < nw; k++) {
				if (w[k].started && pthread_tryjoin_np(w[k].th, NULL) == EBUSY)
					break;
				w[k].started = 0;
			}
			if (k == nw)
				break;
			nanosleep(&ts, NULL);
		}
		scan_progress(x, 0, NULL, 1);
	}
out:
	/* On failure (rc != AK_OK) the workers see stop and the gits are killed, so every join and reap
	 * returns. */
	if (rc != AK_OK)
		stop = 1;
	for (k = 0; w != NULL && k < nw; k++) {
		if (rc != AK_OK && w[k].pid > 0)
			kill(w[k].pid, SIGTERM);
		if (w[k].started)
			pthread_join(w[k].th, NULL);
		/* A worker that stopped early (its own git failed, or another's) leaves its git with ids
		 * to serve: end it rather than wait. */
		if (stop && w[k].pid > 0)
			kill(w[k].pid, SIGTERM);
		if (w[k].fd >= 0)
			close(w[k].fd);
		if (w[k].pid > 0) {
			/* Reaped here: no longer the signal handler's. */
			sig_pids[k] = -1;
			if (reap(w[k].pid) != 0)
				failed = 1;
		}
		if (w[k].failed)
			failed = 1;
	}
	if (sigs)
		stop_signals(0);
	/* The findings, slice after slice: the listing's order (those made before a failure too). */
	for (k = 0; w != NULL && k < nw; k++) {
		struct gworker *g = &w[k];

		for (i = 0; i < g->fl.n; i++) {
			struct scan_finding *f = &g->fl.f[i];

			if (i == 0 || f->obj != g->fl.f[i - 1].obj) {
				memcpy(oid, l.ids + f->obj * (l.hexlen + 1), l.hexlen);
				oid[l.hexlen] = '\0';
				snprintf(label, sizeof(label), "%s@%s", dir, oid);
				scan_stream_begin(x, &st, label);
				st.object = oid;
				st.relabel = gpaths_relabel;
				st.relabel_arg = &gp;
			}
			scan_report(x, &st, f->line, f->what, f->variant, f->wrapped, f->fp, f->unknown);
		}
		x->found += g->x.found;
		x->unknown += g->x.unknown;
		x->bytes += g->x.bytes;
		if (g->fl.oom) {
			scan_progress(x, 0, NULL, 1);
			cli_note("scan: %s: out of memory: some findings not shown", dir);
		}
	}
	if (rc == AK_OK && failed)
		rc = cli_fail(AK_ERR_IO, NULL, "scan: git cat-file --batch-all-objects in %s failed "
		    "(not a repository?)", dir);
	for (k = 0; w != NULL && k < nw; k++) {
		/* The buffer held object content (keys, maybe). */
		scan_ctx_buffer_free(&w[k].x);
		ak_scan_free(w[k].x.m);
		scan_findings_free(&w[k].fl);
	}
	free(w);
	free(l.ids);
	free(l.size);
	gpaths_free(&gp);
	return rc;
}

/* The blobs a commit would write: `git diff --cached --raw -z`, then each through cat-file --batch. */
static enum ak_err
scan_staged(struct scan_ctx *x, const char *dir)
{
	static const char *const dargs[] = { "git", "diff", "--cached", "--raw", "-z", "--no-abbrev",
		"--no-renames", "--diff-filter=ACMT", NULL };
	static const char *const cargs[] = { "git", "cat-file", "--batch", NULL };
	struct scan_stream st;
	struct rd *r = NULL, *cr = NULL;
	char *list = NULL, *p, *end, hdr[256], oid[128], type[32], label[PATH_MAX + 160];
	size_t len = 0;
	unsigned long long size;
	pid_t cpid = -1;
	int cin = -1, cout = -1;
	enum ak_err rc;

	if ((rc = git_read(dir, dargs, &list, &len)) == AK_ERR_SYSTEM)
		return cli_fail(rc, strerror(errno), "scan: running git");
	if (rc != AK_OK) {
		rc = cli_fail(AK_ERR_IO, NULL, "scan: git diff --cached in %s failed (not a repository?)", dir);
		goto out;
	}
	if ((cpid = spawn(dir, cargs, &cin, &cout)) < 0 || (r = rd_new(cout)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "scan");
		goto out;
	}
	cr = r;
	/* ":100644 100644 OLD NEW M\0path\0" per entry. */
	for (p = list, end = list + len; p < end;) {
		char *meta = p, *path, *sp;

		p += strlen(p) + 1;
		if (p >= end)
			break;
		path = p;
		p += strlen(p) + 1;
		if ((sp = strrchr(meta, ' ')) == NULL || sp - meta < 41)
			continue;
		memcpy(oid, sp - 40, 40);
		oid[40] = '\n';
		if (strncmp(oid, "0000000000000000000000000000000000000000", 40) == 0)
			continue;
		if (write(cin, oid, 41) != 41)
			break;
		oid[40] = '\0';
		if (!rd_line(cr, hdr, sizeof(hdr)) || sscanf(hdr, "%*s %31s %llu", type, &size) != 2)
			break;
		snprintf(label, sizeof(label), "%s", path);
		scan_stream_begin(x, &st, label);
		st.object = oid;
		if (!rd_object(cr, x, &st, size))
			break;
		scan_stream_end(x, &st);
	}
	rc = AK_OK;
out:
	if (cin >= 0)
		close(cin);
	if (cout >= 0)
		close(cout);
	if (cpid > 0)
		reap(cpid);
	rd_free(r);
	free(list);
	return rc;
}

enum ak_err
scan_git(struct scan_ctx *x, const char *dir, int staged)
{
	struct sigaction ign, old;
	enum ak_err rc;

	/* git exiting early must be an error we report, not SIGPIPE. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	rc = staged ? scan_staged(x, dir) : scan_all_objects(x, dir);
	sigaction(SIGPIPE, &old, NULL);
	return rc;
}

/* The hook runs this very akctl (absolute path), so it works without akctl on PATH. */
enum ak_err
scan_install_hook(struct cli *c, const char *dir, int force)
{
	static const char *const args[] = { "git", "rev-parse", "--git-path", "hooks", NULL };
	char hooks[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 16], q[PATH_MAX * 4 + 4];
	ssize_t n;
	size_t i, o = 0;
	pid_t pid;
	int fd;
	enum ak_err rc;
	FILE *f;

	if ((pid = spawn(dir, args, NULL, &fd)) < 0)
		return cli_fail(AK_ERR_SYSTEM, strerror(errno), "scan: running git");
	n = read(fd, hooks, sizeof(hooks) - 1);
	close(fd);
	if (reap(pid) != 0 || n <= 1)
		return cli_fail(AK_ERR_INVALID, NULL, "%s: %s is not in a git repository", c->cmd, dir);
	hooks[n - 1] = '\0'; /* the newline */
	if (cli_front_path(self, sizeof(self)) != 0)
		return cli_fail(AK_ERR_SYSTEM, strerror(errno), "%s: finding akctl", c->cmd);
	/* Single-quote the path for sh. */
	q[o++] = '\'';
	for (i = 0; self[i] && o + 5 < sizeof(q); i++) {
		if (self[i] == '\'') {
			memcpy(q + o, "'\\''", 4);
			o += 4;
		} else {
			q[o++] = self[i];
		}
	}
	q[o++] = '\'';
	q[o] = '\0';
	if (hooks[0] != '/') {
		char rel[PATH_MAX];

		snprintf(rel, sizeof(rel), "%s", hooks);
		if ((size_t)snprintf(hooks, sizeof(hooks), "%s/%s", dir, rel) >= sizeof(hooks))
			return cli_fail(AK_ERR_TOO_LARGE, NULL, "%s: hooks path", c->cmd);
	}
	snprintf(path, sizeof(path), "%s/pre-commit", hooks);
	(void)mkdir(hooks, 0755);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0755);
	if (fd < 0 && errno == EEXIST)
		return cli_fail(AK_ERR_INVALID, NULL, "%s: %s exists (--force replaces it)", c->cmd, path);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		return cli_fail(AK_ERR_IO, strerror(errno), "%s: %s", c->cmd, path);
	(void)fchmod(fd, 0755); /* executable whatever the umask */
	fprintf(f, "#!/bin/sh\n"
	    "# Installed by 'akctl scan --install-hook': refuse a commit whose staged files hold a key\n"
	    "# stored in akagent (in any encoding). Needs the agent unlocked; skip once with\n"
	    "# 'git commit --no-verify'.\n"
	    "exec %s scan --staged --no-patterns\n", q);
	rc = fclose(f) == 0 ? AK_OK : cli_fail(AK_ERR_IO, strerror(errno), "%s: %s", c->cmd, path);
	if (rc == AK_OK)
		printf("installed %s\n", path);
	return rc;
}
