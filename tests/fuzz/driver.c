/* driver.c - replay a fuzz target without libFuzzer (the 'fuzz-replay' meson suite, any compiler).
 *
 * usage: fuzz_<x>-replay [-n MUTATIONS] [-s SEED] PATH...
 * Every PATH is a file or a directory (its regular files, sorted, one level). Each file is run as is,
 * then MUTATIONS times mutated (bit flips, byte sets, inserts, deletes, truncation, splices with the
 * previous file), deterministically from SEED, so a failure reproduces with the same command line.
 * A failed property aborts, like under libFuzzer; the last input is written to ./replay-crash-<x>.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1u << 20)

/* Weak: a target that needs no set-up does not define it. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static uint64_t rng;
static const char *target_name = "target";
static uint8_t *cur;
static size_t cur_len;

static uint64_t
next(void)
{
	/* xorshift64*: tiny and deterministic. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static void
save_crash(void)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "replay-crash-%s", target_name);
	if (cur == NULL || (f = fopen(path, "wb")) == NULL)
		return;
	fwrite(cur, 1, cur_len, f);
	fclose(f);
	fprintf(stderr, "replay: input that failed written to %s (%zu bytes)\n", path, cur_len);
}

static void
on_abort(int sig)
{
	(void)sig;
	save_crash();
	signal(SIGABRT, SIG_DFL);
	abort();
}

static void
run(const uint8_t *d, size_t n)
{
	/* A private copy of exactly n bytes, as libFuzzer passes, so an over-read is an ASan report. */
	uint8_t *copy = malloc(n ? n : 1);

	if (copy == NULL)
		exit(2);
	memcpy(copy, d, n);
	cur = copy;
	cur_len = n;
	LLVMFuzzerTestOneInput(copy, n);
	cur = NULL;
	free(copy);
}

static size_t
mutate(uint8_t *buf, size_t len, const uint8_t *other, size_t olen)
{
	static const uint8_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff, '\n', '\'', '"', '\\', '=', 0x20 };
	int k, rounds = 1 + (int)(next() % 4);
	size_t i, n;

	for (k = 0; k < rounds; k++) {
		switch (next() % 8) {
		case 0: /* flip a bit */
			if (len > 0)
				buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* set a byte */
			if (len > 0)
				buf[next() % len] = (uint8_t)next();
			break;
		case 2: /* an interesting byte */
			if (len > 0)
				buf[next() % len] = interesting[next() % sizeof(interesting)];
			break;
		case 3: /* insert bytes */
			n = 1 + next() % 8;
			if (len + n <= REPLAY_MAX_INPUT) {
				size_t j;

				i = len ? next() % (len + 1) : 0;
				memmove(buf + i + n, buf + i, len - i);
				for (j = 0; j < n; j++)
					buf[i + j] = (next() & 1) ? (uint8_t)next() :
					    interesting[next() % sizeof(interesting)];
				len += n;
			}
			break;
		case 4: /* delete bytes */
			if (len > 0) {
				i = next() % len;
				n = 1 + next() % (len - i);
				memmove(buf + i, buf + i + n, len - i - n);
				len -= n;
			}
			break;
		case 5: /* truncate */
			if (len > 0)
				len = next() % len;
			break;
		case 6: /* a big-endian u32 at a random place: lengths and counts */
			if (len >= 4) {
				uint32_t v = (next() & 1) ? (uint32_t)next() : (uint32_t)(next() % 300);

				i = next() % (len - 3);
				buf[i] = (uint8_t)(v >> 24);
				buf[i + 1] = (uint8_t)(v >> 16);
				buf[i + 2] = (uint8_t)(v >> 8);
				buf[i + 3] = (uint8_t)v;
			}
			break;
		case 7: /* splice: a piece of the other input */
			if (olen > 0) {
				size_t from = next() % olen, at = len ? next() % len : 0;

				n = 1 + next() % (olen - from);
				if (at + n > REPLAY_MAX_INPUT)
					n = REPLAY_MAX_INPUT - at;
				memcpy(buf + at, other + from, n);
				if (at + n > len)
					len = at + n;
			}
			break;
		}
	}
	return len;
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;

	if (f == NULL)
		return NULL;
	if ((buf = malloc(REPLAY_MAX_INPUT)) == NULL) {
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	return buf;
}

int
main(int argc, char **argv)
{
	unsigned long muts = 200;
	uint64_t seed = 1;
	char **files = NULL;
	size_t nfiles = 0, cap = 0, i, execs = 0;
	uint8_t *prev = NULL, *work;
	size_t prev_len = 0;
	const char *slash;
	int a;

	slash = strrchr(argv[0], '/');
	target_name = slash ? slash + 1 : argv[0];
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-n") == 0 && a + 1 < argc) {
			muts = strtoul(argv[++a], NULL, 10);
			continue;
		}
		if (strcmp(argv[a], "-s") == 0 && a + 1 < argc) {
			seed = strtoull(argv[++a], NULL, 10);
			continue;
		}
		{
			struct stat sb;
			DIR *d;
			struct dirent *de;

			if (stat(argv[a], &sb) != 0) {
				fprintf(stderr, "replay: %s: %s\n", argv[a], strerror(errno));
				return 2;
			}
			if (!S_ISDIR(sb.st_mode)) {
				if (nfiles == cap && (files = realloc(files, (cap = cap * 2 + 16) * sizeof(*files))) == NULL)
					return 2;
				files[nfiles++] = strdup(argv[a]);
				continue;
			}
			if ((d = opendir(argv[a])) == NULL)
				return 2;
			while ((de = readdir(d)) != NULL) {
				char p[4096];

				if (de->d_name[0] == '.')
					continue;
				snprintf(p, sizeof(p), "%s/%s", argv[a], de->d_name);
				if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
					continue;
				if (nfiles == cap && (files = realloc(files, (cap = cap * 2 + 16) * sizeof(*files))) == NULL)
					return 2;
				files[nfiles++] = strdup(p);
			}
			closedir(d);
		}
	}
	if (nfiles == 0) {
		fprintf(stderr, "replay: no input files\n");
		return 2;
	}
	qsort(files, nfiles, sizeof(*files), cmp);
	signal(SIGABRT, on_abort);
	if ((work = malloc(REPLAY_MAX_INPUT)) == NULL)
		return 2;
	for (i = 0; i < nfiles; i++) {
		size_t len = 0, wl;
		uint8_t *in = read_file(files[i], &len);
		unsigned long m;

		if (in == NULL) {
			fprintf(stderr, "replay: cannot read %s\n", files[i]);
			return 2;
		}
		run(in, len);
		execs++;
		rng = seed * 0x9e3779b97f4a7c15ULL + i + 1;
		for (m = 0; m < muts; m++) {
			memcpy(work, in, len);
			wl = mutate(work, len, prev ? prev : in, prev ? prev_len : len);
			run(work, wl);
			execs++;
		}
		free(prev);
		prev = in;
		prev_len = len;
	}
	printf("replay: %s: %zu files, %zu executions, no failure\n", target_name, nfiles, execs);
	free(prev);
	free(work);
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	return 0;
}
