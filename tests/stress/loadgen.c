/* loadgen.c - akloadgen: a checking load client for tests/stress/load.sh.
 *
 * C connections (spread over J threads, one epoll loop each) keep exactly one request outstanding and
 * together send N requests. Against akagent each request is GET of a random generated profile, LIST, or
 * STATUS (weights -m G:L:S), and every reply is checked with a parser written here, independent of the
 * library's decoder: GET must return that profile's name, its generated secret (gen.h) and its plain
 * variable; LIST must hold all P profiles, in order, each redacted to the secret's last 4 characters;
 * STATUS must say unlocked with P profiles. Against ssh-agent (-t ssh) each request is
 * REQUEST_IDENTITIES and the answer must list exactly -k keys. A wrong answer is counted, not fatal.
 *
 * usage: akloadgen -s SOCK -t akagent|ssh [-c CLIENTS] [-n REQUESTS] [-j THREADS] [-P PROFILES]
 *                  [-S SEED] [-m G:L:S] [-k SSHKEYS] [-H]
 * Prints one line: target clients requests errors wrong seconds req/s p50_us p99_us p999_us max_us.
 * Exit 0 only with zero errors and zero wrong answers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_client.h"
#include "ak_proto.h"
#include "gen.h"

#define RBUF_MAX (8u << 20)
#define SSH_REQ 11
#define SSH_ANS 12

struct conn {
	struct ak_client *cl;  /* the library client (transport only: replies are checked here) */
	uint64_t sent_ns;
	uint8_t kind;          /* request type sent */
	unsigned idx;          /* GET: profile index */
	size_t have;           /* size of the reply frame, once whole */
	const uint8_t *rbuf;   /* the reply frame (in cl), once whole */
	uint64_t rng;
};

struct worker {
	pthread_t tid;
	int nconn;
	uint64_t *lat;
	size_t nlat, caplat;
	uint64_t errors, wrong;
	int fail;
};

static const char *sock_path;
static int ssh_mode;
static unsigned nprof = 200, seed = 1, w_get = 80, w_list = 10, w_status = 10, ssh_keys = 1;
static uint64_t total_req = 100000;
static uint64_t issued;       /* atomic */
static char (*secrets)[GEN_SECRET_LEN + 1];
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Connect c: 0, or -1 with a message. Plain buffers: connections live in several threads. */
static int
dial(struct conn *c)
{
	char detail[AK_CLIENT_DETAIL_MAX];
	enum ak_err e;

	if ((e = ak_client_connect(sock_path, AK_CLIENT_PLAIN, &c->cl, detail, sizeof(detail))) != AK_OK) {
		pthread_mutex_lock(&print_mu);
		fprintf(stderr, "akloadgen: %s (%s)\n", ak_strerror(e), detail);
		pthread_mutex_unlock(&print_mu);
		return -1;
	}
	return 0;
}

static void
wrong(struct worker *w, const char *what, const struct conn *c)
{
	if (w->wrong++ < 5) {
		pthread_mutex_lock(&print_mu);
		fprintf(stderr, "akloadgen: wrong answer: %s (request %u, profile %u, %zu bytes, type 0x%02x)\n",
		    what, c->kind, c->idx, c->have, c->have > 4 ? c->rbuf[4] : 0);
		pthread_mutex_unlock(&print_mu);
	}
}

/* A little reader over one reply. */
struct rd {
	const uint8_t *p, *end;
	int bad;
};

static uint32_t
rd_u32(struct rd *r)
{
	uint32_t v;

	if (r->end - r->p < 4) {
		r->bad = 1;
		return 0;
	}
	v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return v;
}

static void
rd_skip(struct rd *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return;
	}
	r->p += n;
}

/* A string field; returns its bytes (not NUL-terminated) and length. */
static const uint8_t *
rd_str(struct rd *r, size_t *len)
{
	const uint8_t *s;

	*len = rd_u32(r);
	if (r->bad || (size_t)(r->end - r->p) < *len) {
		r->bad = 1;
		*len = 0;
		return (const uint8_t *)"";
	}
	s = r->p;
	r->p += *len;
	return s;
}

static int
str_eq(const uint8_t *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

static int
check_get(const struct conn *c, struct rd *r)
{
	char name[32], model[32];
	const uint8_t *s;
	size_t l, nvars;

	gen_name(c->idx, name, sizeof(name));
	snprintf(model, sizeof(model), "model-%u", c->idx);
	s = rd_str(r, &l);
	if (!str_eq(s, l, name))
		return -1;
	rd_str(r, &l);                         /* provider */
	s = rd_str(r, &l);
	if (!str_eq(s, l, "ANTHROPIC_API_KEY"))
		return -1;
	s = rd_str(r, &l);
	if (!str_eq(s, l, secrets[c->idx]))
		return -1;
	rd_str(r, &l);                         /* description */
	rd_str(r, &l);                         /* source */
	rd_skip(r, 16);                        /* created, rotated */
	nvars = rd_u32(r);
	if (nvars != 1)
		return -1;
	s = rd_str(r, &l);
	if (!str_eq(s, l, "ANTHROPIC_MODEL"))
		return -1;
	s = rd_str(r, &l);
	if (!str_eq(s, l, model))
		return -1;
	return r->bad || r->p != r->end ? -1 : 0;
}

static int
check_list(struct rd *r)
{
	char name[32];
	const uint8_t *s;
	size_t l, nv, k;
	unsigned i, n;

	if ((n = rd_u32(r)) != nprof)
		return -1;
	for (i = 0; i < n && !r->bad; i++) {
		gen_name(i, name, sizeof(name));
		s = rd_str(r, &l);
		if (!str_eq(s, l, name))
			return -1;
		rd_str(r, &l);                         /* provider */
		rd_str(r, &l);                         /* secret var */
		s = rd_str(r, &l);                     /* redacted: ends with the secret's last 4 */
		if (l < 4 || memcmp(s + l - 4, secrets[i] + GEN_SECRET_LEN - 4, 4) != 0 || l >= 40)
			return -1;
		rd_str(r, &l);                         /* description */
		rd_skip(r, 16);
		nv = rd_u32(r);
		for (k = 0; k < nv; k++)
			rd_str(r, &l);
	}
	return r->bad || r->p != r->end ? -1 : 0;
}

static int
check_status(struct rd *r)
{
	size_t l;

	if (rd_u32(r) != 1)                    /* proto version */
		return -1;
	if (r->end - r->p < 2 || r->p[0] != 1) /* unlocked */
		return -1;
	rd_skip(r, 2);
	rd_u32(r);                             /* pid */
	rd_str(r, &l);                         /* store path */
	if (rd_u32(r) != nprof)
		return -1;
	rd_skip(r, 8);
	return r->bad || r->p != r->end ? -1 : 0;
}

static int
check_reply(struct worker *w, const struct conn *c)
{
	struct rd r = { c->rbuf + 5, c->rbuf + c->have, 0 };
	uint8_t t = c->rbuf[4];

	if (ssh_mode) {
		if (t != SSH_ANS || rd_u32(&r) != ssh_keys) {
			wrong(w, "ssh answer", c);
			return -1;
		}
		return 0;
	}
	if (c->kind == AK_MSG_GET && (t != AK_MSG_PROFILE_REPLY || check_get(c, &r) != 0)) {
		wrong(w, "GET reply", c);
		return -1;
	}
	if (c->kind == AK_MSG_LIST && (t != AK_MSG_LIST_REPLY || check_list(&r) != 0)) {
		wrong(w, "LIST reply", c);
		return -1;
	}
	if (c->kind == AK_MSG_STATUS && (t != AK_MSG_STATUS_REPLY || check_status(&r) != 0)) {
		wrong(w, "STATUS reply", c);
		return -1;
	}
	return 0;
}

/* Take a request slot and send it; 1 = sent, 0 = all requests issued, -1 = error. */
static int
send_next(struct conn *c)
{
	uint8_t req[64];
	size_t len;

	if (__atomic_fetch_add(&issued, 1, __ATOMIC_RELAXED) >= total_req)
		return 0;
	if (ssh_mode) {
		c->kind = SSH_REQ;
		memcpy(req, "\0\0\0\1\13", 5);
		len = 5;
	} else {
		unsigned x = (unsigned)(xorshift(&c->rng) % (w_get + w_list + w_status));
		char name[32];
		size_t nl;

		c->kind = x < w_get ? AK_MSG_GET : x < w_get + w_list ? AK_MSG_LIST : AK_MSG_STATUS;
		if (c->kind == AK_MSG_GET) {
			c->idx = (unsigned)(xorshift(&c->rng) % nprof);
			gen_name(c->idx, name, sizeof(name));
			nl = strlen(name);
			len = 4 + 1 + 4 + nl;
			req[0] = 0, req[1] = 0, req[2] = 0, req[3] = (uint8_t)(len - 4);
			req[4] = AK_MSG_GET;
			req[5] = 0, req[6] = 0, req[7] = 0, req[8] = (uint8_t)nl;
			memcpy(req + 9, name, nl);
		} else {
			memcpy(req, "\0\0\0\1", 4);
			req[4] = c->kind;
			len = 5;
		}
	}
	c->have = 0;
	c->rbuf = NULL;
	c->sent_ns = now_ns();
	return ak_client_send_frame(c->cl, req, len) == AK_OK ? 1 : -1;
}

/* 1 = a whole reply, 0 = need more, -1 = error/EOF. */
static int
recv_reply(struct conn *c)
{
	enum ak_err e = ak_client_recv_frame(c->cl, 0, &c->rbuf, &c->have);

	if (e == AK_ERR_TRUNCATED)
		return 0;
	return e == AK_OK && c->have <= RBUF_MAX ? 1 : -1;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev, evs[256];
	struct conn *conns;
	int ep, i, n, active = 0;

	if ((conns = calloc((size_t)w->nconn, sizeof(*conns))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		w->fail = 1;
		return NULL;
	}
	for (i = 0; i < w->nconn; i++) {
		conns[i].rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uintptr_t)&conns[i] * 2654435761u) ^ (uint64_t)i;
		if (dial(&conns[i]) == -1) {
			w->fail = 1;
			goto out;
		}
		ev.events = EPOLLIN;
		ev.data.ptr = &conns[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ak_client_fd(conns[i].cl), &ev) == -1) {
			w->fail = 1;
			goto out;
		}
	}
	for (i = 0; i < w->nconn; i++) {
		int s = send_next(&conns[i]);

		if (s < 0) {
			w->errors++;
			goto out;
		}
		active += s;
	}
	while (active > 0) {
		n = epoll_wait(ep, evs, 256, 10000);
		if (n == 0) {
			fprintf(stderr, "akloadgen: no reply for 10 s (%d requests outstanding)\n", active);
			w->errors += (uint64_t)active;
			break;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			w->fail = 1;
			break;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = recv_reply(c), s;
			uint64_t t;

			if (r == 0)
				continue;
			if (r == -1) {
				if (w->errors++ < 5)
					fprintf(stderr, "akloadgen: connection error (%zu bytes)\n", c->have);
				epoll_ctl(ep, EPOLL_CTL_DEL, ak_client_fd(c->cl), NULL);
				active--;
				continue;
			}
			t = now_ns();
			if (w->nlat == w->caplat) {
				uint64_t *nl;

				w->caplat = w->caplat ? w->caplat * 2 : 65536;
				if ((nl = realloc(w->lat, w->caplat * sizeof(*nl))) == NULL) {
					w->fail = 1;
					goto out;
				}
				w->lat = nl;
			}
			w->lat[w->nlat++] = t - c->sent_ns;
			(void)check_reply(w, c);
			if ((s = send_next(c)) < 0) {
				w->errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, ak_client_fd(c->cl), NULL);
				active--;
			} else if (s == 0) {
				active--;
			}
		}
	}
out:
	for (i = 0; i < w->nconn; i++)
		ak_client_close(conns[i].cl);
	close(ep);
	free(conns);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int clients = 256, threads = 1, header = 0, ch, i, fail = 0;
	const char *tname = "akagent";
	struct worker *w;
	uint64_t *all, start, errors = 0, nwrong = 0;
	size_t nall = 0, k;
	double secs;

	while ((ch = getopt(argc, argv, "s:t:c:n:j:P:S:m:k:H")) != -1) {
		switch (ch) {
		case 's': sock_path = optarg; break;
		case 't': tname = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 'n': total_req = strtoull(optarg, NULL, 10); break;
		case 'j': threads = atoi(optarg); break;
		case 'P': nprof = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S': seed = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm':
			if (sscanf(optarg, "%u:%u:%u", &w_get, &w_list, &w_status) != 3 ||
			    w_get + w_list + w_status == 0)
				goto usage;
			break;
		case 'k': ssh_keys = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'H': header = 1; break;
		default: goto usage;
		}
	}
	if (sock_path == NULL || clients < 1 || threads < 1 || threads > clients || nprof == 0 ||
	    total_req == 0)
		goto usage;
	if (strcmp(tname, "ssh") == 0 || strcmp(tname, "ssh-agent") == 0)
		ssh_mode = 1;
	else if (strcmp(tname, "akagent") != 0)
		goto usage;
	if (sodium_init() < 0 || (secrets = calloc(nprof, sizeof(*secrets))) == NULL)
		return 1;
	for (k = 0; k < nprof; k++)
		gen_secret(seed, (unsigned)k, secrets[k]);
	if ((w = calloc((size_t)threads, sizeof(*w))) == NULL)
		return 1;
	start = now_ns();
	for (i = 0; i < threads; i++) {
		w[i].nconn = clients / threads + (i < clients % threads);
		if (pthread_create(&w[i].tid, NULL, worker_run, &w[i]) != 0)
			return 1;
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		fail |= w[i].fail;
		errors += w[i].errors;
		nwrong += w[i].wrong;
		nall += w[i].nlat;
	}
	secs = (double)(now_ns() - start) / 1e9;
	if ((all = malloc((nall ? nall : 1) * sizeof(*all))) == NULL)
		return 1;
	nall = 0;
	for (i = 0; i < threads; i++) {
		memcpy(all + nall, w[i].lat, w[i].nlat * sizeof(*all));
		nall += w[i].nlat;
		free(w[i].lat);
	}
	if (nall == 0) {
		fprintf(stderr, "akloadgen: no replies\n");
		return 1;
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	if (header)
		printf("%-8s %7s %9s %6s %6s %7s %9s %8s %8s %8s %8s\n", "target", "clients", "requests",
		    "errors", "wrong", "secs", "req/s", "p50_us", "p99_us", "p999_us", "max_us");
	printf("%-8s %7d %9zu %6llu %6llu %7.2f %9.0f %8.1f %8.1f %8.1f %8.1f\n", tname, clients, nall,
	    (unsigned long long)errors, (unsigned long long)nwrong, secs, (double)nall / secs,
	    all[nall / 2] / 1e3, all[nall * 99 / 100] / 1e3, all[nall * 999 / 1000] / 1e3,
	    all[nall - 1] / 1e3);
	free(all);
	free(w);
	free(secrets);
	return fail || errors || nwrong || nall != total_req ? 1 : 0;
usage:
	fprintf(stderr, "usage: akloadgen -s SOCK -t akagent|ssh [-c CLIENTS] [-n REQUESTS] [-j THREADS]\n"
	    "                 [-P PROFILES] [-S SEED] [-m GET:LIST:STATUS] [-k SSHKEYS] [-H]\n");
	return 2;
}
