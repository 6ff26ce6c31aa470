/* redact_fuzz.c - the split fuzz of akctl redact, fast enough for millions of cases.
 *
 * Every variant of a stored key (raw, hex, HEX, %XX, \u00XX, UTF-16LE, base64 and base64url at the
 * three alignments) is framed as "<CASE NOISE " VARIANT " >\n" (NOISE: invalid UTF-8) and written to
 * akctl redact cut at a boundary that walks through every byte of the frame, plus one random cut; every
 * PAUSE cases it pauses, so the filter sees a quiet pipe mid-key, and checks that nothing it let out so
 * far holds a 12-byte window of the secret part. At the end the output is parsed frame by frame: each
 * frame's framing and noise must come through byte for byte, the variant must have become [ak:PROFILE],
 * and what is left of it beside the tag must be either the encoding of the framing bytes around the key
 * (base64's alignment and "\n": at most LEFT_MAX bytes) or a start of the encoded public prefix, which
 * the filter lets out at once by design.
 *
 * usage: akredactfuzz AKCTL KEYFILE PROFILE CASES PAUSE SEED   (the key is read from KEYFILE, never argv)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NVAR 12
#define LEFT_MAX 4 /* bytes beside the tag: base64 of the framing bytes around the key ("Cg==" is "\n") */

static uint8_t *out;
static size_t outlen, outcap;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int out_fd;

static void *
reader(void *arg)
{
	uint8_t b[65536];
	ssize_t n;

	(void)arg;
	for (;;) {
		n = read(out_fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		pthread_mutex_lock(&mu);
		if (outlen + (size_t)n > outcap) {
			outcap = (outlen + (size_t)n) * 2;
			if ((out = realloc(out, outcap)) == NULL) {
				fprintf(stderr, "out of memory\n");
				exit(1);
			}
		}
		memcpy(out + outlen, b, (size_t)n);
		outlen += (size_t)n;
		pthread_mutex_unlock(&mu);
	}
}

static uint64_t rng;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t
b64(const uint8_t *in, size_t n, int url, uint8_t *o)
{
	const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			    : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, k = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		o[k++] = (uint8_t)a[v >> 18];
		o[k++] = (uint8_t)a[(v >> 12) & 63];
		o[k++] = (uint8_t)a[(v >> 6) & 63];
		o[k++] = (uint8_t)a[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		o[k++] = (uint8_t)a[v >> 18];
		o[k++] = (uint8_t)a[(v >> 12) & 63];
		o[k++] = '=';
		o[k++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		o[k++] = (uint8_t)a[v >> 18];
		o[k++] = (uint8_t)a[(v >> 12) & 63];
		o[k++] = (uint8_t)a[(v >> 6) & 63];
		o[k++] = '=';
	}
	return k;
}

static void
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "write to akctl redact: %s\n", strerror(errno));
			exit(1);
		}
		p += k;
		n -= (size_t)k;
	}
}

static const uint8_t *
find(const uint8_t *h, size_t hn, const uint8_t *nd, size_t nn)
{
	return memmem(h, hn, nd, nn);
}

int
main(int argc, char **argv)
{
	static const char *const noise[] = { "\xff\xfe", "\xc3(", "\xe2\x82" };
	uint8_t key[512], *var[NVAR], text[4096], tag[160];
	size_t klen, vlen[NVAR], plen[NVAR], taglen, cases, pause_every, i, j, k, checked = 0, left_max = 0;
	const char *secret;
	size_t slen;
	int in[2], op[2], st;
	pthread_t th;
	pid_t pid;
	FILE *f;

	if (argc != 7) {
		fprintf(stderr, "usage: akredactfuzz AKCTL KEYFILE PROFILE CASES PAUSE SEED\n");
		return 2;
	}
	if ((f = fopen(argv[2], "rb")) == NULL || (klen = fread(key, 1, sizeof(key) - 1, f)) < 30) {
		fprintf(stderr, "cannot read the key file\n");
		return 2;
	}
	fclose(f);
	while (klen > 0 && (key[klen - 1] == '\n' || key[klen - 1] == '\r'))
		klen--;
	secret = (const char *)key + 13; /* after sk-ant-api03- */
	slen = klen - 13;
	taglen = (size_t)snprintf((char *)tag, sizeof(tag), "[ak:%s]", argv[3]);
	cases = strtoull(argv[4], NULL, 10);
	pause_every = strtoull(argv[5], NULL, 10);
	rng = strtoull(argv[6], NULL, 10) * 2654435761u + 88172645463325252ull;

	for (k = 0; k < NVAR; k++)
		if ((var[k] = malloc(klen * 6 + 16)) == NULL)
			return 1;
	memcpy(var[0], key, klen);
	vlen[0] = klen;
	for (i = 0; i < klen; i++) {
		sprintf((char *)var[1] + 2 * i, "%02x", key[i]);
		sprintf((char *)var[2] + 2 * i, "%02X", key[i]);
		sprintf((char *)var[3] + 3 * i, "%%%02X", key[i]);
		sprintf((char *)var[4] + 6 * i, "\\u%04x", key[i]);
		var[5][2 * i] = key[i];
		var[5][2 * i + 1] = 0;
	}
	vlen[1] = vlen[2] = 2 * klen;
	vlen[3] = 3 * klen;
	vlen[4] = 6 * klen;
	vlen[5] = 2 * klen;
	for (k = 0; k < 3; k++) {
		uint8_t blob[600];

		memcpy(blob, "xy", k);
		memcpy(blob + k, key, klen);
		blob[k + klen] = '\n';
		vlen[6 + 2 * k] = b64(blob, k + klen + 1, 0, var[6 + 2 * k]);
		vlen[7 + 2 * k] = b64(blob, k + klen + 1, 1, var[7 + 2 * k]);
	}

	/* Bytes of each variant that encode only the public prefix (13 bytes, "sk-ant-api03-"). */
	plen[0] = 13;
	plen[1] = plen[2] = plen[5] = 26;
	plen[3] = 39;
	plen[4] = 78;
	for (k = 0; k < 3; k++)
		plen[6 + 2 * k] = plen[7 + 2 * k] = ((k + 13) * 8 + 5) / 6; /* its last char mixes in a few bits */

	signal(SIGPIPE, SIG_IGN);
	if (pipe(in) != 0 || pipe(op) != 0)
		return 1;
	if ((pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(op[1], 1);
		close(in[0]);
		close(in[1]);
		close(op[0]);
		close(op[1]);
		execl(argv[1], argv[1], "redact", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(op[1]);
	out_fd = op[0];
	pthread_create(&th, NULL, reader, NULL);

	for (i = 0; i < cases; i++) {
		size_t v = i % NVAR, tl, cuts[3], nc = 0, last = 0, c0, c1;
		const char *nz = noise[next() % 3];

		tl = (size_t)snprintf((char *)text, sizeof(text), "<%zu%s ", i, nz);
		memcpy(text + tl, var[v], vlen[v]);
		tl += vlen[v];
		memcpy(text + tl, " >\n", 3);
		tl += 3;
		c0 = (i / NVAR) % tl;
		c1 = next() % tl;
		if (c0 > c1) {
			size_t t = c0;

			c0 = c1;
			c1 = t;
		}
		if (c0 > 0)
			cuts[nc++] = c0;
		if (c1 > 0 && c1 != c0)
			cuts[nc++] = c1;
		cuts[nc++] = tl;
		for (j = 0; j < nc; j++) {
			write_all(in[1], text + last, cuts[j] - last);
			last = cuts[j];
			if (pause_every && i % pause_every == 0) {
				struct timespec ts = { 0, 2000000 };
				size_t from, n;

				nanosleep(&ts, NULL);
				pthread_mutex_lock(&mu);
				from = checked > 64 ? checked - 64 : 0;
				n = outlen - from;
				for (k = 0; k + 12 <= slen; k++) {
					if (find(out + from, n, (const uint8_t *)secret + k, 12) != NULL) {
						fprintf(stderr, "secret window out after a pause (case %zu)\n", i);
						return 1;
					}
				}
				checked = outlen;
				pthread_mutex_unlock(&mu);
			}
		}
	}
	close(in[1]);
	pthread_join(th, NULL);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "akctl redact exited with status %d\n", st);
		return 1;
	}

	/* Frame by frame: "<i NOISE " exactly, at most LEFT_MAX bytes, the tag, at most LEFT_MAX, " >\n". */
	{
		size_t pos = 0;

		for (i = 0; i < cases; i++) {
			size_t v = i % NVAR, bl, l1, l2;
			const uint8_t *t, *e;
			char before[64];

			bl = 0;
			for (k = 0; k < 3; k++) {
				/* The noise is one of three; the one that matches here is the one written. */
				bl = (size_t)snprintf(before, sizeof(before), "<%zu%s ", i, noise[k]);
				if (pos + bl <= outlen && memcmp(out + pos, before, bl) == 0)
					break;
			}
			if (k == 3) {
				fprintf(stderr, "case %zu: framing changed at output byte %zu\n", i, pos);
				return 1;
			}
			pos += bl;
			t = find(out + pos, outlen - pos < vlen[v] + taglen ? outlen - pos : vlen[v] + taglen, tag, taglen);
			if (t == NULL) {
				fprintf(stderr, "case %zu (variant %zu): no tag\n", i, v);
				return 1;
			}
			l1 = (size_t)(t - (out + pos));
			pos += l1 + taglen;
			e = find(out + pos, outlen - pos < LEFT_MAX + 3 ? outlen - pos : LEFT_MAX + 3,
			    (const uint8_t *)" >\n", 3);
			if (e == NULL) {
				fprintf(stderr, "case %zu (variant %zu): more than %d bytes after the tag\n", i, v, LEFT_MAX);
				return 1;
			}
			l2 = (size_t)(e - (out + pos));
			/* The public prefix may come out as it is: the filter never holds for it alone. */
			if (l1 > LEFT_MAX && !(l1 <= plen[v] && memcmp(out + pos - l1 - taglen, var[v], l1) == 0)) {
				fprintf(stderr, "case %zu (variant %zu): %zu bytes of it before the tag\n", i, v, l1);
				return 1;
			}
			if (l1 > left_max)
				left_max = l1;
			if (l2 > left_max)
				left_max = l2;
			pos += l2 + 3;
		}
		if (pos != outlen) {
			fprintf(stderr, "%zu bytes after the last case\n", outlen - pos);
			return 1;
		}
	}
	printf("ok: %zu cases, %zu bytes out, at most %zu bytes of a variant beside its tag\n", cases, outlen,
	    left_max);
	free(out);
	for (k = 0; k < NVAR; k++)
		free(var[k]);
	return 0;
}
