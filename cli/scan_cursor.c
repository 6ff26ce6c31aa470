/* scan_cursor.c - akctl scan --agents: Cursor's state.vscdb files (SQLite), every TEXT and BLOB of
 * the key and value columns of ItemTable and cursorDiskKV.
 *
 * libsqlite3 is loaded with dlopen at the moment a state.vscdb is found, never linked: akctl's get/env
 * start-up stays as small as it is, and a system without SQLite (Debian: libsqlite3-0) only loses this
 * source, with one note. Files are opened read-only and immutable (no lock, no journal, nothing
 * written even beside them). SQLite's allocations, which hold the pages read, go through a wiping
 * allocator. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "scan.h"

/* The few SQLite entry points used, with their stable C ABI (sqlite3.h). */
#define SQ_OK 0
#define SQ_ROW 100
#define SQ_TEXT 3
#define SQ_BLOB 4
#define SQ_OPEN_READONLY 0x1
#define SQ_OPEN_URI 0x40
#define SQ_CONFIG_MALLOC 4

struct sq_mem {
	void *(*xMalloc)(int);
	void (*xFree)(void *);
	void *(*xRealloc)(void *, int);
	int (*xSize)(void *);
	int (*xRoundup)(int);
	int (*xInit)(void *);
	void (*xShutdown)(void *);
	void *pAppData;
};

static struct {
	void *lib;
	int tried;
	int (*config)(int, ...);
	int (*open_v2)(const char *, void **, int, const char *);
	int (*close)(void *);
	int (*prepare_v2)(void *, const char *, int, void **, const char **);
	int (*step)(void *);
	int (*finalize)(void *);
	int (*column_type)(void *, int);
	const void *(*column_blob)(void *, int);
	int (*column_bytes)(void *, int);
	const unsigned char *(*column_text)(void *, int);
	const char *(*errmsg)(void *);
} sq;

/* A size header before each block, so free can wipe it. */
#define HDR 16

static void *
wm_malloc(int n)
{
	uint8_t *p;

	if (n < 0 || (p = malloc((size_t)n + HDR)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + HDR;
}

static int
wm_size(void *q)
{
	int n;

	if (q == NULL)
		return 0;
	memcpy(&n, (uint8_t *)q - HDR, sizeof(n));
	return n;
}

static void
wm_free(void *q)
{
	if (q == NULL)
		return;
	sodium_memzero((uint8_t *)q - HDR, (size_t)wm_size(q) + HDR);
	free((uint8_t *)q - HDR);
}

/* Not realloc: the old block is wiped before it goes back. */
static void *
wm_realloc(void *q, int n)
{
	void *r = wm_malloc(n);
	int old = wm_size(q);

	if (r == NULL)
		return NULL;
	if (q != NULL)
		memcpy(r, q, (size_t)(old < n ? old : n));
	wm_free(q);
	return r;
}

static int
wm_roundup(int n)
{
	return (n + 7) & ~7;
}

static int
wm_init(void *a)
{
	(void)a;
	return SQ_OK;
}

static void
wm_shutdown(void *a)
{
	(void)a;
}

static int
sq_load(void)
{
	static const struct sq_mem mem = { wm_malloc, wm_free, wm_realloc, wm_size, wm_roundup, wm_init,
		wm_shutdown, NULL };

	if (sq.tried)
		return sq.lib != NULL ? 0 : -1;
	sq.tried = 1;
	if ((sq.lib = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL)) == NULL)
		return -1;
#define SYM(f, name) (*(void **)&sq.f = dlsym(sq.lib, name)) == NULL
	if (SYM(config, "sqlite3_config") || SYM(open_v2, "sqlite3_open_v2") || SYM(close, "sqlite3_close") ||
	    SYM(prepare_v2, "sqlite3_prepare_v2") || SYM(step, "sqlite3_step") ||
	    SYM(finalize, "sqlite3_finalize") || SYM(column_type, "sqlite3_column_type") ||
	    SYM(column_blob, "sqlite3_column_blob") || SYM(column_bytes, "sqlite3_column_bytes") ||
	    SYM(column_text, "sqlite3_column_text") || SYM(errmsg, "sqlite3_errmsg") ||
	    sq.config(SQ_CONFIG_MALLOC, &mem) != SQ_OK) {
		dlclose(sq.lib);
		sq.lib = NULL;
		return -1;
	}
#undef SYM
	return 0;
}

/* file: URI of path (%, ?, # and non-printing bytes escaped). */
static int
make_uri(const char *path, char *out, size_t cap)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0;
	const unsigned char *p;

	o = (size_t)snprintf(out, cap, "file:");
	for (p = (const unsigned char *)path; *p; p++) {
		if (o + 4 >= cap)
			return -1;
		if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f) {
			out[o++] = '%';
			out[o++] = hx[*p >> 4];
			out[o++] = hx[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	return snprintf(out + o, cap - o, "?mode=ro&immutable=1") < (int)(cap - o) ? 0 : -1;
}

static void
scan_column(struct scan_ctx *x, void *stmt, int col, const char *label)
{
	struct scan_stream st;
	int t = sq.column_type(stmt, col);
	const void *p;
	int n;

	if (t != SQ_TEXT && t != SQ_BLOB)
		return;
	p = t == SQ_TEXT ? (const void *)sq.column_text(stmt, col) : sq.column_blob(stmt, col);
	n = sq.column_bytes(stmt, col);
	if (p == NULL || n <= 0)
		return;
	scan_stream_begin(x, &st, label);
	scan_stream_whole(x, &st, p, (size_t)n);
	scan_stream_end(x, &st);
}

/* One state.vscdb. -1 with a note when it cannot be read as SQLite. */
static int
scan_vscdb(struct scan_ctx *x, const char *path)
{
	static const char *const tables[] = { "ItemTable", "cursorDiskKV" };
	char uri[8192], sql[128], label[4096 + 320], key[256];
	void *db = NULL, *stmt = NULL;
	const char *err = NULL;
	size_t i;
	int r, rc = -1;

	if (make_uri(path, uri, sizeof(uri)) != 0)
		return -1;
	if (sq.open_v2(uri, &db, SQ_OPEN_READONLY | SQ_OPEN_URI, NULL) != SQ_OK)
		goto out;
	/* Which of the two tables exist: this is also where a file that is not SQLite shows. */
	if (sq.prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &stmt, NULL) != SQ_OK)
		goto out;
	{
		int have[2] = { 0, 0 };

		while ((r = sq.step(stmt)) == SQ_ROW) {
			const unsigned char *name = sq.column_text(stmt, 0);

			for (i = 0; i < 2; i++)
				if (name != NULL && strcmp((const char *)name, tables[i]) == 0)
					have[i] = 1;
		}
		sq.finalize(stmt);
		stmt = NULL;
		if (r != 101 /* SQLITE_DONE */)
			goto out;
		for (i = 0; i < 2; i++) {
			if (!have[i])
				continue;
			snprintf(sql, sizeof(sql), "SELECT key, value FROM %s", tables[i]);
			if (sq.prepare_v2(db, sql, -1, &stmt, NULL) != SQ_OK)
				goto out;
			while ((r = sq.step(stmt)) == SQ_ROW) {
				const unsigned char *k = sq.column_type(stmt, 0) == SQ_TEXT ? sq.column_text(stmt, 0)
											 : NULL;

				/* The key names the finding; a key (not a value) is never a secret's place
				 * in this store, but it is scanned all the same. */
				snprintf(key, sizeof(key), "%s", k != NULL ? (const char *)k : "?");
				snprintf(label, sizeof(label), "%s#%s/%s", path, tables[i], key);
				scan_column(x, stmt, 0, label);
				scan_column(x, stmt, 1, label);
			}
			sq.finalize(stmt);
			stmt = NULL;
			if (r != 101)
				goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		err = db != NULL ? sq.errmsg(db) : "cannot open";
	if (rc != 0)
		cli_note("scan: %s: cannot read as SQLite (%s); skipped", path, err != NULL ? err : "?");
	if (stmt != NULL)
		sq.finalize(stmt);
	if (db != NULL)
		sq.close(db);
	return rc;
}

static void
scan_vscdb_at(struct scan_ctx *x, const char *path)
{
	if (access(path, F_OK) != 0)
		return;
	if (sq_load() != 0) {
		static int told;

		if (!told++)
			cli_note("scan: %s skipped: libsqlite3.so.0 cannot be loaded (Debian package "
			    "libsqlite3-0)", path);
		return;
	}
	scan_vscdb(x, path);
}

void
scan_cursor(struct scan_ctx *x)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char base[4096], path[8192];
	struct dirent *e;
	DIR *d;

	/* Cursor (Electron) keeps its data under the XDG config directory, ~/.config by default. */
	if (xdg != NULL && xdg[0] == '/')
		snprintf(base, sizeof(base), "%s/Cursor/User", xdg);
	else
		snprintf(base, sizeof(base), "%s/.config/Cursor/User", home != NULL && home[0] ? home : ".");
	snprintf(path, sizeof(path), "%s/globalStorage/state.vscdb", base);
	scan_vscdb_at(x, path);
	snprintf(path, sizeof(path), "%s/workspaceStorage", base);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/workspaceStorage/%s/state.vscdb", base, e->d_name);
		scan_vscdb_at(x, path);
	}
	closedir(d);
}
