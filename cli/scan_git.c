/* scan_git.c - akctl scan --git: every object in the repository's object store, reachable or not
 * (stash, reflog, dangling commits), each once, read through `git cat-file --batch-all-objects --batch
 * --unordered` (one process streaming objects in pack order: far faster than `git log -p`, and it sees
 * what no ref points to). --staged scans only the blobs a commit would add (the pre-commit hook). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Run git with args in dir; *in (may be NULL) is its stdin, *out its stdout. */
static pid_t
spawn(const char *dir, const char *const *args, int *in, int *out)
{
	int ip[2] = { -1, -1 }, op[2] = { -1, -1 };
	pid_t pid;

	if ((in != NULL && pipe2(ip, O_CLOEXEC) != 0) || pipe2(op, O_CLOEXEC) != 0)
		goto fail;
	fflush(NULL);
	if ((pid = fork()) < 0)
		goto fail;
	if (pid == 0) {
		if ((in != NULL && dup2(ip[0], 0) < 0) || dup2(op[1], 1) < 0)
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

static enum ak_err
scan_all_objects(struct scan_ctx *x, const char *dir)
{
	static const char *const args[] = { "git", "cat-file", "--batch-all-objects", "--batch",
		"--unordered", NULL };
	struct rd *r;
	struct scan_stream st;
	char hdr[256], oid[128], type[32], label[PATH_MAX + 160];
	unsigned long long size;
	struct gpaths gp;
	uint64_t nobj = 0;
	pid_t pid;
	int fd, ok = 1, scan;

	memset(&gp, 0, sizeof(gp));
	gp.dir = dir;
	if ((pid = spawn(dir, args, NULL, &fd)) < 0)
		return cli_fail(AK_ERR_SYSTEM, strerror(errno), "scan: running git");
	if ((r = rd_new(fd)) == NULL) {
		close(fd);
		reap(pid);
		return cli_fail(AK_ERR_NOMEM, NULL, "scan");
	}
	while (rd_line(r, hdr, sizeof(hdr))) {
		if (sscanf(hdr, "%127s %31s %llu", oid, type, &size) != 3) {
			ok = 0;
			break;
		}
		/* Trees hold names and ids only; blobs, commit messages and tags can hold a key. */
		scan = strcmp(type, "tree") != 0;
		snprintf(label, sizeof(label), "%s@%s", dir, oid);
		scan_stream_begin(x, &st, label);
		st.object = oid;
		st.relabel = gpaths_relabel;
		st.relabel_arg = &gp;
		if (!rd_object(r, x, scan ? &st : NULL, size)) {
			ok = 0;
			break;
		}
		scan_stream_end(x, &st);
		scan_progress(x, ++nobj, "objects", 0);
	}
	scan_progress(x, 0, NULL, 1);
	close(fd);
	rd_free(r);
	gpaths_free(&gp);
	if (reap(pid) != 0 || !ok)
		return cli_fail(AK_ERR_IO, NULL, "scan: git cat-file --batch-all-objects in %s failed "
		    "(not a repository?)", dir);
	return AK_OK;
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
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return cli_fail(AK_ERR_SYSTEM, strerror(errno), "%s: finding akctl", c->cmd);
	self[n] = '\0';
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
