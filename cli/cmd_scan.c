/* cmd_scan.c - akctl scan: find every copy of a stored secret in files, histories, AI tools' transcripts
 * and (scan_git.c) git's object store. Prints where and which key, never the value. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <sodium.h>

#include "ak_cpu.h"
#include "ak_smem.h"
#include "scan.h"

/* Read a file this much at a time: with the matcher's tables it stays in the CPU's second-level cache
 * (512 KiB here) between the copy the kernel makes into it and the scan; 1 MiB did not. */
#define SCAN_CHUNK (256u << 10)

void
scan_names_free(struct scan_names *nm)
{
	size_t i;

	for (i = 0; i < nm->n; i++) {
		free(nm->label[i]);
		free(nm->profiles[i]);
	}
	free(nm->label);
	free(nm->profiles);
	ak_client_list_free(nm->ents, nm->nents);
	memset(nm, 0, sizeof(*nm));
}

/* Append ", add" (or sep + add) to a malloc'd string. */
static int
append(char **s, const char *sep, const char *add)
{
	size_t a = *s ? strlen(*s) : 0, b = strlen(add), c = strlen(sep);
	char *n = realloc(*s, a + c + b + 1);

	if (n == NULL)
		return -1;
	if (a > 0)
		memcpy(n + a, sep, c);
	else
		c = 0;
	memcpy(n + a + c, add, b + 1);
	*s = n;
	return 0;
}

/* 1 when the comma-separated list holds name. */
static int
list_has(const char *list, const char *name)
{
	size_t l = strlen(name);
	const char *s = list;

	while ((s = strstr(s, name)) != NULL) {
		if ((s == list || s[-1] == ',') && (s[l] == ',' || s[l] == '\0'))
			return 1;
		s += l;
	}
	return 0;
}

/* Add one profile's secret (current or previous) to the matcher under "NAME VAR" + suffix. 0, or the exit
 * code after reporting. */
static enum ak_err
load_one(struct cli *c, struct ak_scan *m, struct scan_names *nm, const char *name, const char *var,
    const char *value, const char *suffix)
{
	char label[AK_NAME_MAX + AK_VARNAME_MAX + 16];
	enum ak_err r;
	uint32_t id;

	r = ak_scan_add(m, value, strlen(value), &id);
	if (r == AK_ERR_INVALID) {
		cli_note("%s: profile %s: %s%s is too short to search for (fewer than %d bytes after its "
		    "prefix); skipped", c->cmd, name, var, suffix, AK_SCAN_MIN_SECRET);
		return AK_OK;
	}
	if (r != AK_OK)
		return cli_fail(r, NULL, "%s", c->cmd);
	if (id >= nm->cap) {
		/* More secrets than the first guess (secret variables): grow, the new entries empty. */
		size_t cap = (size_t)id * 2 + 1;
		char **l = realloc(nm->label, cap * sizeof(char *)), **pr;

		if (l == NULL)
			return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		nm->label = l;
		if ((pr = realloc(nm->profiles, cap * sizeof(char *))) == NULL)
			return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		nm->profiles = pr;
		memset(nm->label + nm->cap, 0, (cap - nm->cap) * sizeof(char *));
		memset(nm->profiles + nm->cap, 0, (cap - nm->cap) * sizeof(char *));
		nm->cap = cap;
	}
	snprintf(label, sizeof(label), "%s %s%s", name, var, suffix);
	if (id >= nm->n)
		nm->n = id + 1;
	/* The same key as another profile's previous and current is listed under both names once. */
	if ((nm->profiles[id] == NULL || !list_has(nm->profiles[id], name)) &&
	    append(&nm->profiles[id], ",", name) != 0)
		return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
	if (append(&nm->label[id], ", ", label) != 0)
		return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
	return AK_OK;
}

/* Every secret of p: the main one and each secret variable. With cur (p is the previous-key view),
 * only the values that differ from cur's: where nothing was rotated the view holds the current value. */
static enum ak_err
load_profile(struct cli *c, struct ak_scan *m, struct scan_names *nm, const struct ak_profile *p,
    const struct ak_profile *cur, const char *suffix)
{
	size_t i, j;
	enum ak_err rc;

	if ((cur == NULL || strcmp(p->secret, cur->secret) != 0) &&
	    (rc = load_one(c, m, nm, p->name, p->secret_var, p->secret, suffix)) != 0)
		return rc;
	for (i = 0; i < p->nvars; i++) {
		if (!p->vars[i].secret || p->vars[i].value == NULL)
			continue;
		if (cur != NULL) {
			for (j = 0; j < cur->nvars && strcmp(cur->vars[j].name, p->vars[i].name) != 0; j++)
				;
			if (j < cur->nvars && cur->vars[j].value != NULL &&
			    strcmp(cur->vars[j].value, p->vars[i].value) == 0)
				continue;
		}
		if ((rc = load_one(c, m, nm, p->name, p->vars[i].name, p->vars[i].value, suffix)) != 0)
			return rc;
	}
	return AK_OK;
}

/* scan_load's batch of GET and GET_PREVIOUS replies, in request order (a profile's previous keys right
 * after the profile). */
struct loading {
	struct cli *c;
	struct ak_scan *m;
	struct scan_names *nm;
	struct ak_client *cl;
	const uint8_t *types;
	struct ak_profile *cur;  /* the last profile fetched: its previous-key view is compared with it */
	enum ak_err rc;          /* the failure already reported, if any */
};

static enum ak_err
load_reply(void *arg, size_t i, enum ak_err r, struct ak_profile *p)
{
	struct loading *ld = arg;

	if (ld->types[i] == AK_MSG_GET) {
		ak_profile_free(ld->cur);
		ld->cur = NULL;
		if (r != AK_OK)
			return ld->rc = cli_fail_client(ld->cl, r, ld->c->cmd);
		ld->cur = p;
		return ld->rc = load_profile(ld->c, ld->m, ld->nm, p, NULL, "");
	}
	/* NO_PREVIOUS: its grace ended since the list; nothing left to find. The view holds the current
	 * key where only another variable was rotated: not a previous key then. */
	if (r == AK_ERR_NO_PREVIOUS)
		return AK_OK;
	if (r != AK_OK)
		return ld->rc = cli_fail_client(ld->cl, r, ld->c->cmd);
	ld->rc = ld->cur != NULL ? load_profile(ld->c, ld->m, ld->nm, p, ld->cur, " (previous)") : AK_OK;
	ak_profile_free(p);
	return ld->rc;
}

enum ak_err
scan_load(struct cli *c, int holdback, struct ak_scan **out, struct scan_names *nm)
{
	struct ak_client *cl = NULL;
	struct ak_list_entry *ents = NULL;
	struct ak_scan *m = NULL;
	struct loading ld = { 0 };
	uint8_t *types = NULL;
	const char **names = NULL;
	size_t nreq = 0;
	uint32_t n = 0, i;
	enum ak_err r;
	enum ak_err rc;

	*out = NULL;
	memset(nm, 0, sizeof(*nm));
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	if ((r = ak_client_list(cl, &ents, &n)) != AK_OK) {
		rc = cli_fail_client(cl, r, c->cmd);
		goto out;
	}
	/* Room for two secrets per profile to begin with (its key and its previous one); load_one grows it
	 * for secret variables. */
	if ((m = ak_scan_new(holdback)) == NULL ||
	    (nm->label = calloc(2 * (size_t)n + 1, sizeof(char *))) == NULL ||
	    (nm->profiles = calloc(2 * (size_t)n + 1, sizeof(char *))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	nm->cap = 2 * (size_t)n + 1;
	/* Every profile (and the previous keys of those that keep one) in one pipelined batch: one
	 * round trip to the agent for each, waiting on a busy machine, was most of a small scan. */
	if ((types = calloc(2 * (size_t)n + 1, 1)) == NULL ||
	    (names = calloc(2 * (size_t)n + 1, sizeof(*names))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	for (i = 0; i < n; i++) {
		types[nreq] = AK_MSG_GET;
		names[nreq++] = ents[i].name;
		if (ents[i].prev_until != 0) {
			types[nreq] = AK_MSG_GET_PREVIOUS;
			names[nreq++] = ents[i].name;
		}
	}
	ld.c = c;
	ld.m = m;
	ld.nm = nm;
	ld.cl = cl;
	ld.types = types;
	if ((r = ak_client_get_batch(cl, types, names, nreq, load_reply, &ld)) != AK_OK) {
		rc = ld.rc != AK_OK ? ld.rc : cli_fail_client(cl, r, c->cmd);
		goto out;
	}
	if ((r = ak_scan_build(m)) != AK_OK) {
		rc = cli_fail(r, NULL, "%s", c->cmd);
		goto out;
	}
	*out = m;
	m = NULL;
	nm->ents = ents;
	nm->nents = n;
	ents = NULL;
	rc = AK_OK;
out:
	ak_profile_free(ld.cur);
	free(types);
	free(names);
	ak_client_list_free(ents, n);
	ak_client_close(cl);
	ak_scan_free(m);
	if (rc != AK_OK)
		scan_names_free(nm);
	return rc;
}

/* Output ------------------------------------------------------------------------------------------ */

void
scan_report(struct scan_ctx *x, struct scan_stream *st, uint64_t line, const char *what, const char *variant,
    int wrapped, const char *fp, int unknown)
{
	char label[1024];

	if (x->quiet)
		return;
	if (x->sink != NULL) {
		x->sink(x->sink_arg, line, what, variant, wrapped, fp, unknown);
		return;
	}
	scan_progress(x, 0, NULL, 1);  /* a finding line never runs into the progress line */
	if (st->relabel != NULL && !st->relabeled) {
		st->relabeled = 1;
		st->relabel(st->relabel_arg, st);
	}
	cli_sanitize(st->label, label, sizeof(label));
	if (x->json) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL)
			return;
		cJSON_AddStringToObject(o, "path", st->label);
		if (st->object != NULL)
			cJSON_AddStringToObject(o, "object", st->object);
		cJSON_AddNumberToObject(o, "line", (double)line);
		cJSON_AddStringToObject(o, unknown ? "pattern" : "key", what);
		cJSON_AddStringToObject(o, "variant", variant);
		cJSON_AddBoolToObject(o, "wrapped", wrapped);
		cJSON_AddBoolToObject(o, "unknown", unknown);
		cJSON_AddStringToObject(o, "fingerprint", fp);
		(void)cli_json_print(o);
		cJSON_Delete(o);
		return;
	}
	printf("%s:%llu: %s%s (%s%s) fp:%s\n", label, (unsigned long long)line, unknown ? "unknown " : "", what, variant,
	    wrapped ? ", wrapped" : "", fp);
}

/* Newlines in p[0..n). Found lines are short (tens of bytes) in text, so a memchr per line costs more
 * in calls than in bytes: count a vector at a time instead. Each compare adds 1 (as -1) per newline
 * to a byte lane; 255 rounds at most before the lanes are summed, so none overflows. A finding half a
 * mapped megabyte in is counted up to from the file's start: with 16 bytes at a time that was 3% of a
 * scan of 1 GiB with 256 findings. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static uint64_t
count_lines_avx2(const uint8_t *p, size_t n, size_t *done)
{
	const __m256i nl = _mm256_set1_epi8('\n'), zero = _mm256_setzero_si256();
	uint64_t c = 0;
	size_t i = 0;

	while (n - i >= 32) {
		__m256i acc = zero;
		size_t r;

		for (r = 0; r < 255 && n - i >= 32; r++, i += 32)
			acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(
			    _mm256_loadu_si256((const __m256i *)(const void *)(p + i)), nl));
		acc = _mm256_sad_epu8(acc, zero);
		c += (uint64_t)_mm256_extract_epi64(acc, 0) + (uint64_t)_mm256_extract_epi64(acc, 1) +
		    (uint64_t)_mm256_extract_epi64(acc, 2) + (uint64_t)_mm256_extract_epi64(acc, 3);
	}
	*done = i;
	return c;
}
#endif

static uint64_t
count_lines(const uint8_t *p, size_t n)
{
	uint64_t c = 0;
	size_t i = 0;

#if defined(__x86_64__) || defined(__i386__)
	if (ak_cpu_avx2())
		c = count_lines_avx2(p, n, &i);
#endif
#ifdef __SSE2__
	{
		const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();

		while (n - i >= 16) {
			__m128i acc = zero;
			size_t r;

			for (r = 0; r < 255 && n - i >= 16; r++, i += 16)
				acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(
				    _mm_loadu_si128((const __m128i *)(const void *)(p + i)), nl));
			acc = _mm_sad_epu8(acc, zero);
			c += (uint64_t)_mm_cvtsi128_si64(acc);
			c += (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc));
		}
	}
#endif
	for (; i < n; i++)
		c += p[i] == '\n';
	return c;
}

struct pass {
	struct scan_ctx *x;
	struct scan_stream *st;
	const uint8_t *data;     /* what is being scanned: x->buf, or a whole object in place */
	size_t nhits;
	size_t hs[64], he[64];   /* stored hits of this pass, to drop patterns they explain */
	size_t lpos;             /* newlines in data[0..lpos) counted: lcnt (hits come in order) */
	uint64_t lcnt;
};

/* Count the newlines of a re-readable stream's bytes that left the buffer uncounted, from the file
 * itself (only once something is found in it: most files have no finding, and counting every byte
 * read cost a sixth of a scan). A file that changed since gives a line number that is off, no more. */
static void
lines_catch_up(struct scan_stream *st)
{
	uint8_t b[16384];
	uint64_t at = st->lbase;
	ssize_t r;

	while (at < st->base) {
		size_t want = st->base - at < sizeof(b) ? (size_t)(st->base - at) : sizeof(b);

		r = pread(st->fd, b, want, (off_t)at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		st->line += count_lines(b, (size_t)r);
		at += (uint64_t)r;
	}
	sodium_memzero(b, sizeof(b));
	st->lbase = st->base;
}

/* The 1-based line of data[pos]: counted on from the previous hit's, only when something is found. */
static uint64_t
line_at(struct pass *ps, size_t pos)
{
	if (ps->st->lbase < ps->st->base)
		lines_catch_up(ps->st);
	if (pos < ps->lpos) {
		ps->lpos = 0;
		ps->lcnt = 0;
	}
	ps->lcnt += count_lines(ps->data + ps->lpos, pos - ps->lpos);
	ps->lpos = pos;
	return ps->st->line + 1 + ps->lcnt;
}

static int
on_hit(void *arg, const struct ak_scan_hit *h)
{
	struct pass *ps = arg;
	struct scan_ctx *x = ps->x;
	struct scan_stream *st = ps->st;
	char fp[13];

	if (ps->nhits < 64) {
		ps->hs[ps->nhits] = h->start;
		ps->he[ps->nhits] = h->end;
	}
	ps->nhits++;
	if (st->base + h->end <= st->done)
		return 0;
	x->found++;
	ak_scan_secret_fingerprint(x->m, h->secret, fp);
	scan_report(x, st, line_at(ps, h->start),
	    h->secret < x->names.n && x->names.label[h->secret] ? x->names.label[h->secret] : "?",
	    ak_scan_variant_name(h->variant), h->wrapped, fp, 0);
	return 0;
}

static int
on_pattern(void *arg, const struct ak_scan_hit *h)
{
	struct pass *ps = arg;
	struct scan_ctx *x = ps->x;
	struct scan_stream *st = ps->st;
	char fp[13];
	size_t i;

	if (st->base + h->end <= st->done)
		return 0;
	for (i = 0; i < ps->nhits && i < 64; i++)
		if (h->start < ps->he[i] && ps->hs[i] < h->end)
			return 0; /* a stored key */
	x->unknown++;
	ak_scan_fingerprint(x->m, ps->data + h->start, h->end - h->start, fp);
	scan_report(x, st, line_at(ps, h->start), ak_scan_pattern_name(h->secret), "raw",
	    0, fp, 1);
	return 0;
}

static void
scan_bytes(struct scan_ctx *x, struct scan_stream *st, const uint8_t *data, size_t n)
{
	struct pass ps = { x, st, data, 0, { 0 }, { 0 }, 0, 0 };

	ak_scan_buf(x->m, data, n, on_hit, &ps);
	if (x->patterns)
		ak_scan_patterns(data, n, on_pattern, &ps);
}

static void
scan_pass(struct scan_ctx *x, struct scan_stream *st)
{
	scan_bytes(x, st, x->buf, st->n);
	st->done = st->base + st->n;
}

void
scan_stream_whole(struct scan_ctx *x, struct scan_stream *st, const uint8_t *data, size_t len)
{
	if (st->n > 0 || st->zsh) {
		scan_stream_feed(x, st, data, len);
		return;
	}
	scan_bytes(x, st, data, len);
	st->done = st->base + len;
}

void
scan_stream_begin(struct scan_ctx *x, struct scan_stream *st, const char *label)
{
	memset(st, 0, sizeof(*st));
	st->label = label;
	st->fd = -1;
	(void)x;
}

/* When the buffer is full: scan it and keep an occurrence's worth of overlap at its start, so one that
 * straddles is whole next time. */
static void
make_room(struct scan_ctx *x, struct scan_stream *st)
{
	size_t keep = ak_scan_span(x->m);

	if (st->n < x->cap)
		return;
	scan_pass(x, st);
	x->dirty = x->cap;
	if (st->fd < 0) {
		st->line += count_lines(x->buf, st->n - keep);
		st->lbase = st->base + st->n - keep;
	}
	memmove(x->buf, x->buf + st->n - keep, keep);
	st->base += st->n - keep;
	st->n = keep;
}

void
scan_stream_feed(struct scan_ctx *x, struct scan_stream *st, const uint8_t *data, size_t len)
{
	size_t take, i, o;

	while (len > 0) {
		make_room(x, st);
		take = x->cap - st->n < len ? x->cap - st->n : len;
		if (!st->zsh) {
			memcpy(x->buf + st->n, data, take);
			st->n += take;
		} else {
			/* zsh metafies bytes 0x83..0xa2 (and NUL) as 0x83, byte ^ 0x20. */
			for (i = 0, o = st->n; i < take; i++) {
				if (st->meta) {
					x->buf[o++] = data[i] ^ 0x20;
					st->meta = 0;
				} else if (data[i] == 0x83) {
					st->meta = 1;
				} else {
					x->buf[o++] = data[i];
				}
			}
			st->n = o;
		}
		data += take;
		len -= take;
	}
}

void
scan_stream_end(struct scan_ctx *x, struct scan_stream *st)
{
	if (st->n > 0 && st->base + st->n > st->done)
		scan_pass(x, st);
	x->bytes += st->done;
	/* The buffer held file content that may include keys: wipe it between files. */
	if (st->n > x->dirty)
		x->dirty = st->n;
	sodium_memzero(x->buf, st->n);
	st->n = 0;
}

int
scan_fd(struct scan_ctx *x, int fd, const char *path, int zsh)
{
	struct scan_stream st;
	uint8_t *chunk = NULL;
	ssize_t n;
	int rc = -1, e;

	scan_stream_begin(x, &st, path);
	st.zsh = zsh;
	if (!zsh)
		st.fd = fd; /* lines are counted from the file when something is found */
	if (zsh && (chunk = malloc(SCAN_CHUNK)) == NULL) {
		close(fd);
		return -1;
	}
	for (;;) {
		/* Straight into the scan buffer (no copy), except zsh's, which is unmetafied on the way. */
		if (chunk == NULL) {
			make_room(x, &st);
			n = read(fd, x->buf + st.n, x->cap - st.n);
		} else {
			n = read(fd, chunk, SCAN_CHUNK);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (chunk == NULL)
			st.n += (size_t)n;
		else
			scan_stream_feed(x, &st, chunk, (size_t)n);
	}
	e = errno;
	scan_stream_end(x, &st);
	if (n == 0)
		rc = 0;
	if (chunk != NULL) {
		sodium_memzero(chunk, SCAN_CHUNK);
		free(chunk);
	}
	close(fd);
	errno = e;
	return rc;
}

int
scan_open(const char *path, struct stat *sb)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -1;
	if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		return -2;
	}
	return fd;
}

int
scan_file(struct scan_ctx *x, const char *path, int zsh)
{
	struct stat sb;
	int fd = scan_open(path, &sb);

	if (fd == -2 || (fd < 0 && errno == ENOENT))
		return 0;
	return fd < 0 ? -1 : scan_fd(x, fd, path, zsh);
}

/* Walk a tree: every regular file, symlinks never followed, .git skipped unless with_git. A filter
 * (may be NULL) picks file names. */
typedef int (*name_filter)(const char *name);

static void
walk(struct scan_ctx *x, const char *dir, int with_git, name_filter want, int depth)
{
	DIR *d;
	struct dirent *e;
	struct stat sb;
	char path[4096];

	if (depth > 64 || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir,
		    e->d_name) >= sizeof(path))
			continue;
		/* The entry's type saves a stat per file; scan_file checks the file it opened anyway. */
		if (e->d_type == DT_REG)
			sb.st_mode = S_IFREG;
		else if (e->d_type == DT_DIR)
			sb.st_mode = S_IFDIR;
		else if (lstat(path, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (!with_git && strcmp(e->d_name, ".git") == 0)
				continue;
			walk(x, path, with_git, want, depth + 1);
		} else if (S_ISREG(sb.st_mode) && (want == NULL || want(e->d_name))) {
			scan_submit(x, path);
		}
	}
	closedir(d);
}

static void
scan_path(struct scan_ctx *x, const char *path, int with_git)
{
	struct stat sb;

	if (stat(path, &sb) != 0) {
		cli_note("scan: %s: %s", path, strerror(errno));
		return;
	}
	if (S_ISDIR(sb.st_mode))
		walk(x, path, with_git, NULL, 0);
	else
		scan_submit(x, path);
}

/* Histories and transcripts under $HOME --------------------------------------------------------- */

static int
is_jsonl(const char *n)
{
	size_t l = strlen(n);

	return l > 6 && strcmp(n + l - 6, ".jsonl") == 0;
}

static int
is_rollout(const char *n)
{
	return strncmp(n, "rollout-", 8) == 0 && is_jsonl(n);
}

static int
is_events(const char *n)
{
	return strcmp(n, "events.jsonl") == 0;
}

static void
home_path(char *out, size_t len, const char *rel)
{
	const char *h = getenv("HOME");

	snprintf(out, len, "%s/%s", h != NULL && h[0] ? h : ".", rel);
}

void
scan_history(struct scan_ctx *x)
{
	static const char *const files[] = {
		".bash_history", ".local/share/fish/fish_history", ".python_history",
		".node_repl_history", ".psql_history", ".sqlite_history", ".mysql_history",
		".local/state/python_history",
	};
	static const char *const zsh[] = { ".zsh_history", ".histfile", ".zhistory" };
	char path[4096];
	const char *hf = getenv("HISTFILE");
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		home_path(path, sizeof(path), files[i]);
		scan_file(x, path, 0);
	}
	for (i = 0; i < sizeof(zsh) / sizeof(zsh[0]); i++) {
		home_path(path, sizeof(path), zsh[i]);
		scan_file(x, path, 1);
	}
	/* $HISTFILE elsewhere (already scanned when it is one of the above: reported twice, harmless). */
	if (hf != NULL && hf[0] == '/' && strstr(hf, "/.") != NULL) {
		home_path(path, sizeof(path), "");
		if (strncmp(hf, path, strlen(path)) != 0)
			scan_file(x, hf, strstr(hf, "zsh") != NULL);
	}
}

void
scan_agents(struct scan_ctx *x)
{
	static const char *const files[] = {
		".claude/history.jsonl", ".claude.json", ".claude/settings.local.json",
		".claude/settings.json",
	};
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		home_path(path, sizeof(path), files[i]);
		scan_file(x, path, 0);
	}
	home_path(path, sizeof(path), ".claude/projects");
	walk(x, path, 0, is_jsonl, 0);
	home_path(path, sizeof(path), ".codex/sessions");
	walk(x, path, 0, is_rollout, 0);
	home_path(path, sizeof(path), ".copilot/session-state");
	walk(x, path, 0, is_events, 0);
	scan_cursor(x);
}

int
scan_ctx_buffer(struct scan_ctx *x)
{
	x->cap = SCAN_CHUNK + ak_scan_span(x->m);
	x->dirty = 0;
	x->buf = malloc(x->cap);
	return x->buf != NULL ? 0 : -1;
}

/* Only what content reached: the rest of the buffer was never written, and wiping it would make the
 * kernel supply every page of it first (a worker that only scanned mapped files wrote none). */
void
scan_ctx_buffer_free(struct scan_ctx *x)
{
	if (x->buf != NULL) {
		sodium_memzero(x->buf, x->dirty);
		free(x->buf);
	}
	x->buf = NULL;
	x->dirty = 0;
}

int
scan_ctx_worker(struct scan_ctx *w, const struct scan_ctx *x, scan_sink sink, void *sink_arg)
{
	*w = *x;
	w->pool = NULL;
	w->found = w->unknown = 0;
	w->bytes = 0;
	w->sink = sink;
	w->sink_arg = sink_arg;
	w->buf = NULL;
	if ((w->m = ak_scan_view(x->m)) == NULL)
		return -1;
	return scan_ctx_buffer(w);
}

void
scan_ctx_finish(struct scan_ctx *x)
{
	scan_ctx_buffer_free(x);
	scan_names_free(&x->names);
	ak_scan_free(x->m); /* wipes the secrets it was built from */
}

/* The command ------------------------------------------------------------------------------------- */

enum ak_err
cmd_scan(struct cli *c, int argc, char **argv)
{
	struct scan_ctx x;
	int git = 0, history = 0, agents = 0, all = 0, hook = 0, staged = 0, force = 0, helped, i;
	const struct ak_opt opts[] = {
		CLI_FLAG("git", &git, 1),
		CLI_FLAG("history", &history, 1),
		CLI_FLAG("agents", &agents, 1),
		CLI_FLAG("all", &all, 1),
		CLI_FLAG("json", &x.json, 1),
		CLI_FLAG("no-patterns", &x.patterns, 0),
		CLI_FLAG("install-hook", &hook, 1),
		CLI_FLAG("staged", &staged, 1),
		CLI_FLAG("force", &force, 1),
		CLI_OPT_END,
	};
	enum ak_err rc;

	memset(&x, 0, sizeof(x));
	x.patterns = 1;
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (hook) {
		if (argc - optind > 1)
			return cli_usage_error(c, "--install-hook takes at most one repository");
		return scan_install_hook(c, optind < argc ? argv[optind] : ".", force);
	}
	if ((rc = scan_load(c, 0, &x.m, &x.names)) != 0)
		return rc;
	if (scan_ctx_buffer(&x) != 0) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	if (all)
		git = history = agents = 1;
	if (staged) {
		rc = scan_git(&x, optind < argc ? argv[optind] : ".", 1);
	} else {
		rc = AK_OK;
		/* Files on every CPU (findings still printed in walk order). */
		if (scan_pool_start(&x) != 0) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
			goto out;
		}
		if (optind < argc) {
			for (i = optind; i < argc; i++)
				scan_path(&x, argv[i], git);
		} else if (all || !(git || history || agents)) {
			scan_path(&x, ".", git);
		}
		scan_pool_finish(&x);
		if (git) {
			if (optind < argc) {
				for (i = optind; i < argc && rc == AK_OK; i++)
					rc = scan_git(&x, argv[i], 0);
			} else {
				rc = scan_git(&x, ".", 0);
			}
		}
		if (history)
			scan_history(&x);
		if (agents)
			scan_agents(&x);
	}
	if (rc == AK_OK && (x.found > 0 || x.unknown > 0)) {
		if (!x.json)
			fprintf(stderr, "akctl: scan: %zu stored key occurrence%s, %zu unknown key%s\n", x.found,
			    x.found == 1 ? "" : "s", x.unknown, x.unknown == 1 ? "" : "s");
		rc = cli_status(c, 1); /* found: a finding, not an error */
	}
out:
	scan_ctx_finish(&x);
	return rc;
}
