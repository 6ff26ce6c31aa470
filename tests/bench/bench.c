/* bench.c - akbench: requests/second and latency of an agent over its Unix socket.
 *
 * One epoll loop per thread drives N connections, each with exactly one request outstanding (the way
 * real clients use an agent: ask, wait, ask again). Latency is send-of-request to last byte of reply.
 * Targets speak their own protocol, all framed as uint32 big-endian length + type byte + payload:
 *   akagent-get     AK_MSG_GET <profile>   -> AK_MSG_PROFILE_REPLY
 *   akagent-status  AK_MSG_STATUS          -> AK_MSG_STATUS_REPLY
 *   akagent-list    AK_MSG_LIST_PACKED     -> AK_MSG_LIST_PACKED_REPLY (what akctl and libakclient ask)
 *   akagent-list1   AK_MSG_LIST            -> AK_MSG_LIST_REPLY (the older rows, for older clients)
 *   akagent-mix     GET:LIST:STATUS 80:10:10, in a fixed order on every connection (8 GET, LIST, STATUS)
 *   ssh             SSH2_AGENTC_REQUEST_IDENTITIES (11) -> SSH2_AGENT_IDENTITIES_ANSWER (12)
 *   echo            the akagent GET frame  -> the same frame back (akbench-echo)
 * This is a benchmark, not a test: it only checks each reply's type, and decodes one full akagent
 * reply before measuring so a wrong setup fails loudly instead of measuring error replies.
 */
#include <errno.h>
#include <getopt.h>
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

#include "ak_buf.h"
#include "ak_client.h"
#include "ak_err.h"
#include "ak_proto.h"
#include "ak_smem.h"
#include "ak_store.h"

#define SSH_REQUEST_IDENTITIES 11
#define SSH_IDENTITIES_ANSWER 12
#define RBUF_MAX AK_PROTO_MAX_REPLY	/* largest reply we accept (a LIST of a big store) */

enum target { T_AKAGENT_GET, T_AKAGENT_STATUS, T_AKAGENT_LIST, T_AKAGENT_LIST1, T_AKAGENT_MIX, T_SSH, T_ECHO };

struct conn {
	struct ak_client *cl;	/* the library client: it checks the peer's uid, frames, buffers */
	uint64_t sent_ns;
	unsigned seq;		/* requests sent: which kind the next one is (akagent-mix) */
	int kind;		/* of the request in flight: index into reqs */
	size_t have;		/* size of the reply frame, once whole */
	const uint8_t *rbuf;	/* the reply frame (in cl), once whole */
};

struct lat {
	uint64_t *v;
	size_t n, cap;
};

struct worker {
	pthread_t tid;
	const char *sock;
	int nconn;
	uint64_t warm_end_ns, end_ns;
	struct lat lat;
	uint64_t done, errors;
	int fail;		/* setup failure: message already printed */
};

/* The request frames (one, or GET, LIST, STATUS for the mix), identical for every connection. */
struct reqdef {
	uint8_t frame[512];
	size_t len;
	uint8_t want;		/* the reply type it must get */
};
static struct reqdef reqs[3];
static int mix;			/* akagent-mix: reqs[0..2] in the order 8 x GET, LIST, STATUS */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
lat_push(struct lat *l, uint64_t v)
{
	uint64_t *nv;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 65536;
		if ((nv = realloc(l->v, l->cap * sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
	}
	l->v[l->n++] = v;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Connect c to path: 0, or -1 with a message. Plain buffers: connections live in several threads. */
static int
dial(struct conn *c, const char *path)
{
	char detail[AK_CLIENT_DETAIL_MAX];
	enum ak_err e;

	if ((e = ak_client_connect(path, AK_CLIENT_PLAIN, &c->cl, detail, sizeof(detail))) != AK_OK) {
		fprintf(stderr, "akbench: %s (%s)\n", ak_strerror(e), detail);
		return -1;
	}
	return 0;
}

/* Write the whole request. Requests are tiny and a connection has at most one in flight, so the
 * socket buffer always has room; a short write would be a broken peer. */
static int
send_req(struct conn *c)
{
	unsigned k = c->seq++ % 10;

	c->kind = !mix ? 0 : k < 8 ? 0 : k == 8 ? 1 : 2;
	c->sent_ns = now_ns();
	c->have = 0;
	c->rbuf = NULL;
	return ak_client_send_frame(c->cl, reqs[c->kind].frame, reqs[c->kind].len) == AK_OK ? 0 : -1;
}

/* 1 when the whole reply frame has arrived, 0 if more is needed, -1 on error or EOF. */
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
	int ep, i, n, running = 1;
	uint64_t t;

	if ((conns = calloc((size_t)w->nconn, sizeof(*conns))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		w->fail = 1;
		return NULL;
	}
	for (i = 0; i < w->nconn; i++) {
		if (dial(&conns[i], w->sock) == -1) {
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
	for (i = 0; i < w->nconn; i++)
		if (send_req(&conns[i]) == -1) {
			w->errors++;
			w->fail = 1;
			goto out;
		}
	while (running) {
		n = epoll_wait(ep, evs, 256, 100);
		if (n == -1 && errno != EINTR) {
			w->fail = 1;
			break;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = recv_reply(c);

			if (r == 0)
				continue;
			if (r == -1 || c->rbuf[4] != reqs[c->kind].want) {
				if (w->errors++ == 0)
					fprintf(stderr, "akbench: bad reply (type %d, %zu bytes)\n",
					    c->have > 4 ? c->rbuf[4] : -1, c->have);
				running = 0;
				w->fail = 1;
				break;
			}
			t = now_ns();
			if (t >= w->warm_end_ns) {
				w->done++;
				if (lat_push(&w->lat, t - c->sent_ns) == -1) {
					w->fail = 1;
					running = 0;
					break;
				}
			}
			if (t >= w->end_ns) {
				/* stop issuing; outstanding replies on other connections are simply dropped */
				running = 0;
				break;
			}
			if (send_req(c) == -1) {
				w->errors++;
				w->fail = 1;
				running = 0;
				break;
			}
		}
		if (now_ns() >= w->end_ns)
			running = 0;
	}
out:
	for (i = 0; i < w->nconn; i++)
		ak_client_close(conns[i].cl);
	close(ep);
	free(conns);
	return NULL;
}

/* One synchronous request before measuring: catches a locked agent, a missing profile or a wrong
 * socket with a readable message, and decodes a full akagent reply with the real decoder. */
static int
preflight(const char *sock, enum target tgt)
{
	struct conn c;
	struct ak_buf *b = NULL;
	struct ak_profile *p = NULL;
	struct ak_status st;
	enum ak_err e, we;
	char *detail = NULL;
	uint8_t type;
	int r = -1, rr;

	memset(&c, 0, sizeof(c));
	if (dial(&c, sock) == -1)
		goto out;
	if (send_req(&c) == -1)
		goto out;
	while ((rr = recv_reply(&c)) == 0)
		usleep(100);	/* blocking-ish wait; only once */
	if (rr == -1) {
		fprintf(stderr, "akbench: preflight: connection closed or bad frame\n");
		goto out;
	}
	type = c.rbuf[4];
	if (tgt != T_SSH && tgt != T_ECHO) {
		if ((b = ak_buf_new(RBUF_MAX)) == NULL || ak_buf_put(b, c.rbuf + 5, c.have - 5) != AK_OK)
			goto out;
		if (type == AK_MSG_ERROR) {
			if (ak_proto_get_error(b, &we, &detail) == AK_OK)
				fprintf(stderr, "akbench: agent answered error: %s%s%s\n", ak_strerror(we),
				    detail ? ": " : "", detail ? detail : "");
			goto out;
		}
		if ((tgt == T_AKAGENT_GET || tgt == T_AKAGENT_MIX) && type == AK_MSG_PROFILE_REPLY) {
			if ((e = ak_proto_get_profile(b, &p)) != AK_OK) {
				fprintf(stderr, "akbench: PROFILE_REPLY does not decode: %s\n", ak_strerror(e));
				goto out;
			}
		} else if (tgt == T_AKAGENT_STATUS && type == AK_MSG_STATUS_REPLY) {
			memset(&st, 0, sizeof(st));
			if ((e = ak_proto_get_status(b, &st)) != AK_OK) {
				fprintf(stderr, "akbench: STATUS_REPLY does not decode: %s\n", ak_strerror(e));
				goto out;
			}
			ak_status_clear(&st);
		}
	}
	if (type != reqs[0].want) {
		fprintf(stderr, "akbench: preflight: reply type %u, expected %u\n", type, reqs[0].want);
		goto out;
	}
	r = 0;
out:
	ak_profile_free(p);
	ak_buf_free(b);
	free(detail);
	ak_client_close(c.cl);
	return r;
}

/* Encode one request frame of kind tgt into *d. */
static int
encode(enum target tgt, const char *profile, struct reqdef *d)
{
	struct ak_buf *b;
	int r = -1;

	if (tgt == T_SSH) {
		static const uint8_t ssh_req[5] = { 0, 0, 0, 1, SSH_REQUEST_IDENTITIES };

		memcpy(d->frame, ssh_req, sizeof(ssh_req));
		d->len = sizeof(ssh_req);
		d->want = SSH_IDENTITIES_ANSWER;
		return 0;
	}
	if ((b = ak_buf_new(sizeof(d->frame))) == NULL)
		return -1;
	if (tgt == T_AKAGENT_STATUS) {
		if (ak_proto_begin(b, AK_MSG_STATUS) != AK_OK)
			goto out;
		d->want = AK_MSG_STATUS_REPLY;
	} else if (tgt == T_AKAGENT_LIST) {
		if (ak_proto_begin(b, AK_MSG_LIST_PACKED) != AK_OK)
			goto out;
		d->want = AK_MSG_LIST_PACKED_REPLY;
	} else if (tgt == T_AKAGENT_LIST1) {
		if (ak_proto_begin(b, AK_MSG_LIST) != AK_OK)
			goto out;
		d->want = AK_MSG_LIST_REPLY;
	} else {
		/* the echo target gets the same GET frame, so the bytes moved are comparable */
		if (ak_proto_begin(b, AK_MSG_GET) != AK_OK || ak_buf_put_cstring(b, profile) != AK_OK)
			goto out;
		d->want = tgt == T_ECHO ? AK_MSG_GET : AK_MSG_PROFILE_REPLY;
	}
	if (ak_proto_finish(b, AK_PROTO_MAX_REQUEST) != AK_OK || ak_buf_len(b) > sizeof(d->frame))
		goto out;
	d->len = ak_buf_len(b);
	memcpy(d->frame, ak_buf_ptr(b), d->len);
	r = 0;
out:
	ak_buf_free(b);
	return r;
}

static int
build_request(enum target tgt, const char *profile)
{
	if (tgt != T_AKAGENT_MIX)
		return encode(tgt, profile, &reqs[0]);
	mix = 1;
	return encode(T_AKAGENT_GET, profile, &reqs[0]) == 0 &&
	    encode(T_AKAGENT_LIST, profile, &reqs[1]) == 0 &&
	    encode(T_AKAGENT_STATUS, profile, &reqs[2]) == 0 ? 0 : -1;
}

/*
 * akagent-write: one connection that adds a profile and removes it again, RATE writes a second in all,
 * each a whole keystore transaction in the agent (lock, file, seal, fsync) - the load beside which the
 * GET clients of another akbench measure whether writes stall reads. One long-lived client, so that
 * what is measured is the agent, not the start of a process per write.
 */
static int
run_writer(const char *sock, double rate, double secs)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	struct lat l = { 0 };
	char detail[256], name[32];
	uint64_t start, end, next, t, step = (uint64_t)(1e9 / rate);
	unsigned i;
	enum ak_err e;
	int rc = 1;

	if (ak_client_connect(sock, AK_CLIENT_PLAIN, &cl, detail, sizeof(detail)) != AK_OK) {
		fprintf(stderr, "akbench: %s\n", detail);
		return 1;
	}
	if ((p = ak_profile_new()) == NULL || ak_profile_set_field(&p->provider, "anthropic") != AK_OK ||
	    ak_profile_set_field(&p->secret_var, "ANTHROPIC_API_KEY") != AK_OK ||
	    ak_profile_set_field(&p->secret, "sk-ant-api03-BENCHWRITERBENCHWRITERBENCHWRITERBENCHWRITER"
	    "BENCHWRITERBENCHWRITERBENCHWRITERBENCHWRITERAA") != AK_OK)
		goto out;
	start = next = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	for (i = 1; (t = now_ns()) < end; i++) {
		snprintf(name, sizeof(name), "w%u", (i + 1) / 2);
		if (i % 2) {
			if (ak_profile_set_field(&p->name, name) != AK_OK)
				goto out;
			e = ak_client_add(cl, p, 1);
		} else {
			e = ak_client_remove(cl, name);
		}
		if (e != AK_OK) {
			fprintf(stderr, "akbench: write %u: %s\n", i, ak_strerror(e));
			goto out;
		}
		if (lat_push(&l, now_ns() - t) == -1)
			goto out;
		next += step;
		if ((t = now_ns()) < next) {
			struct timespec ts = { (time_t)((next - t) / 1000000000u), (long)((next - t) % 1000000000u) };

			nanosleep(&ts, NULL);
		}
	}
	if (l.n == 0)
		goto out;
	qsort(l.v, l.n, sizeof(*l.v), cmp_u64);
	printf("%-16s %7d %12.1f %9.1f %9.1f %10zu\n", "akagent-write", 1, (double)l.n / secs,
	    (double)l.v[l.n / 2] / 1e3, (double)l.v[(l.n * 99) / 100] / 1e3, l.n);
	rc = 0;
out:
	free(l.v);
	ak_profile_free(p);
	ak_client_close(cl);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: akbench -s SOCKET -t akagent-get|-status|-list|-list1|-mix|ssh|echo [-c CLIENTS] [-d SECONDS]\n"
	    "               [-w WARMUP_MS] [-j THREADS] [-p PROFILE] [-H]\n"
	    "       akbench -s SOCKET -t akagent-write [-r WRITES_PER_SECOND] [-d SECONDS]\n"
	    "Prints: target clients requests/s p50_us p99_us requests (-H: a header line first).\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *profile = "p050", *tname = NULL;
	enum target tgt = T_ECHO;
	int clients = 1, threads = 1, header = 0, ch, i, fail = 0;
	double secs = 2.0, elapsed, rate = 20;
	long warm_ms = 200;
	struct worker *w;
	struct lat all = { 0 };
	uint64_t start, total = 0;
	size_t k;

	while ((ch = getopt(argc, argv, "s:t:c:d:w:j:p:r:Hh")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 't': tname = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'w': warm_ms = atol(optarg); break;
		case 'j': threads = atoi(optarg); break;
		case 'p': profile = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'H': header = 1; break;
		default: usage();
		}
	}
	if (sock == NULL || tname == NULL || clients < 1 || clients > 4096 || threads < 1 ||
	    threads > clients || secs <= 0 || warm_ms < 0)
		usage();
	if (strcmp(tname, "akagent-write") == 0)
		return rate > 0 && rate <= 10000 && ak_smem_init() == 0 ? run_writer(sock, rate, secs) : 2;
	if (strcmp(tname, "akagent-get") == 0 || strcmp(tname, "akagent") == 0)
		tgt = T_AKAGENT_GET;
	else if (strcmp(tname, "akagent-status") == 0)
		tgt = T_AKAGENT_STATUS;
	else if (strcmp(tname, "akagent-list") == 0)
		tgt = T_AKAGENT_LIST;
	else if (strcmp(tname, "akagent-list1") == 0)
		tgt = T_AKAGENT_LIST1;
	else if (strcmp(tname, "akagent-mix") == 0)
		tgt = T_AKAGENT_MIX;
	else if (strcmp(tname, "ssh") == 0 || strcmp(tname, "ssh-agent") == 0)
		tgt = T_SSH;
	else if (strcmp(tname, "echo") == 0)
		tgt = T_ECHO;
	else
		usage();
	if (ak_smem_init() == -1 || build_request(tgt, profile) == -1) {
		fprintf(stderr, "akbench: cannot encode the request\n");
		return 1;
	}
	if (preflight(sock, tgt) == -1)
		return 1;

	if ((w = calloc((size_t)threads, sizeof(*w))) == NULL)
		return 1;
	start = now_ns();
	for (i = 0; i < threads; i++) {
		w[i].sock = sock;
		w[i].nconn = clients / threads + (i < clients % threads);
		w[i].warm_end_ns = start + (uint64_t)warm_ms * 1000000u;
		w[i].end_ns = w[i].warm_end_ns + (uint64_t)(secs * 1e9);
		if (pthread_create(&w[i].tid, NULL, worker_run, &w[i]) != 0) {
			fprintf(stderr, "akbench: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		fail |= w[i].fail;
		total += w[i].done;
		for (k = 0; k < w[i].lat.n; k++)
			if (lat_push(&all, w[i].lat.v[k]) == -1)
				return 1;
		free(w[i].lat.v);
	}
	/* every counted reply arrived inside [warm_end, end]: the window is exactly secs long */
	elapsed = secs;
	if (fail || all.n == 0) {
		fprintf(stderr, "akbench: %s: run failed after %llu replies\n", tname,
		    (unsigned long long)total);
		return 1;
	}
	qsort(all.v, all.n, sizeof(*all.v), cmp_u64);
	if (header)
		printf("%-16s %7s %12s %9s %9s %10s\n", "target", "clients", "req/s", "p50_us", "p99_us",
		    "requests");
	printf("%-16s %7d %12.0f %9.1f %9.1f %10llu\n", tname, clients, (double)total / elapsed,
	    (double)all.v[all.n / 2] / 1e3, (double)all.v[(all.n * 99) / 100] / 1e3,
	    (unsigned long long)total);
	free(all.v);
	free(w);
	return 0;
}
