/* main.c - akctl-proxy: the key-injecting loopback proxy behind `akctl proxy` and `akctl exec --proxy`.
 *
 * akctl fetches the profile from the agent and starts us with the key on a pipe (--key-fd), never in
 * argv or the environment. We hold it, its header line and the session's placeholder in the secure
 * arena, refuse ptrace and core dumps, listen on loopback (or a Unix socket), and either print the two
 * variables a client needs or run CMD with them and stop when it exits, with CMD's exit status.
 *
 *   akctl-proxy --provider P --profile NAME --upstream URL --key-fd N --secret-var VAR
 *               [--listen ADDR] [--workers N] [--usage-file FILE] [--exec -- CMD [ARG...]]
 *
 * Requests are served by N event loops (default: one per two CPUs this process may run on), each in its
 * own thread with its own libmicrohttpd daemon and libcurl multi handle; the main thread runs the
 * first loop, which also takes the signals, watches CMD and reports usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_opts.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "proxy.h"

#define TOKEN_PREFIX "akp-"
#define TOKEN_RANDOM 32

/* Path prefixes a client may reach, per provider: the inference and model APIs, nothing that manages
 * the account (except for an admin key, which exists for that). */
static const char *const allow_anthropic[] = {
	"/v1/messages", "/v1/models", "/v1/complete", "/v1/files", NULL,
};
static const char *const allow_anthropic_admin[] = { "/v1/organizations", NULL };
static const char *const allow_openai[] = {
	"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/models",
	"/v1/moderations", "/v1/audio", "/v1/images", "/v1/files", "/v1/uploads", "/v1/batches", NULL,
};

static void
die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("akctl: proxy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ak_smem_release_all();
	exit(1);
}

/* libcurl's memory functions: every block it frees is wiped first, so request buffers that held the
 * key's header line do not linger in the heap of this long-lived process. */
static void
w_free(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *
w_malloc(size_t n)
{
	return malloc(n);
}

static void *
w_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if (n <= old && n != 0)
		return p; /* fits where it is: nothing copied, nothing left behind */
	if ((q = malloc(n != 0 ? n : 1)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	w_free(p);
	return q;
}

static char *
w_strdup(const char *s)
{
	return strdup(s);
}

static void *
w_calloc(size_t a, size_t b)
{
	return calloc(a, b);
}

static int
loopback_host(const char *h)
{
	struct in_addr a;

	if (strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0)
		return 1;
	return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* The upstream base: https anywhere, plain http only to this machine; no credentials in it. */
static void
set_upstream(struct px *px, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *path = NULL;
	size_t n;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		die("upstream URL is not a valid URL");
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		die("upstream URL must not carry credentials");
	if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && loopback_host(host)))
		die("refusing to send a key over plain http to a non-loopback host (use https)");
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= sizeof(px->upstream) || strchr(url, '?') != NULL || strchr(url, '#') != NULL)
		die("upstream URL too long, or with a query");
	memcpy(px->upstream, url, n);
	px->upstream[n] = '\0';
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);

	/* The clients' paths carry the provider's own prefix ("/v1" for OpenAI, whose base URL includes
	 * it); the upstream base already ends in its equivalent. */
	if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, px->pv->default_base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		die("internal error: provider base URL");
	px->strip_len = strcmp(path, "/") == 0 ? 0 : strlen(path);
	curl_free(path);
	curl_url_cleanup(u);
}

static void
read_key(struct px *px, int fd)
{
	const struct ak_provider *pv = px->pv;
	char *key, msg[256];
	size_t len = 0, hlen;
	ssize_t n;

	if ((key = ak_smem_alloc(AK_VALUE_MAX + 1)) == NULL)
		die("out of secure memory");
	for (;;) {
		n = read(fd, key + len, AK_VALUE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("reading the key: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == AK_VALUE_MAX)
			die("key too large");
	}
	close(fd);
	key[len] = '\0';
	if (ak_key_issue_fatal(ak_provider_check_key(pv, key, msg, sizeof(msg))))
		die("the profile's key cannot be sent: %s", msg);
	hlen = strlen(pv->auth_header) + 2 + strlen(pv->auth_prefix) + len + 1;
	if ((px->key_header = ak_smem_alloc(hlen)) == NULL)
		die("out of secure memory");
	snprintf(px->key_header, hlen, "%s: %s%s", pv->auth_header, pv->auth_prefix, key);
	ak_smem_free(key);
}

static void
make_token(struct px *px)
{
	unsigned char rnd[TOKEN_RANDOM];
	size_t plen = sizeof(TOKEN_PREFIX) - 1;

	px->token_len = plen + 2 * TOKEN_RANDOM;
	if ((px->token = ak_smem_alloc(px->token_len + 1)) == NULL)
		die("out of secure memory");
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(px->token, TOKEN_PREFIX, plen);
	sodium_bin2hex(px->token + plen, 2 * TOKEN_RANDOM + 1, rnd, sizeof(rnd));
	sodium_memzero(rnd, sizeof(rnd));
}

/* ADDR: [HOST:]PORT with a loopback HOST (default 127.0.0.1, port 0 = ephemeral), or unix:PATH / an
 * absolute PATH. Never a non-loopback address: the placeholder crosses the socket in the clear. */
static int
listen_on(const char *addr, char *base, size_t baselen, char *unixpath, size_t unixlen)
{
	struct sockaddr_in sin;
	struct sockaddr_un sun;
	socklen_t sl = sizeof(sin);
	const char *colon, *portstr = addr;
	char host[64] = "127.0.0.1", *end;
	unsigned long port;
	mode_t old;
	int fd;

	unixpath[0] = '\0';
	if (strncmp(addr, "unix:", 5) == 0 || addr[0] == '/') {
		const char *p = addr[0] == '/' ? addr : addr + 5;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (p[0] != '/' || strlen(p) >= sizeof(sun.sun_path) || strlen(p) >= unixlen)
			die("--listen: a Unix socket needs an absolute path of at most %zu bytes",
			    sizeof(sun.sun_path) - 1);
		memcpy(sun.sun_path, p, strlen(p));
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			die("socket: %s", strerror(errno));
		/* Owner only, from the moment it exists: connecting needs write permission. */
		old = umask(077);
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			die("--listen %s: %s", p, strerror(errno));
		umask(old);
		if (chmod(p, 0600) != 0)
			die("chmod %s: %s", p, strerror(errno));
		snprintf(unixpath, unixlen, "%s", p);
		snprintf(base, baselen, "http://localhost");
	} else {
		if ((colon = strrchr(addr, ':')) != NULL) {
			if ((size_t)(colon - addr) >= sizeof(host))
				die("--listen: bad address");
			memcpy(host, addr, (size_t)(colon - addr));
			host[colon - addr] = '\0';
			portstr = colon + 1;
		}
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		errno = 0;
		port = strtoul(portstr, &end, 10);
		if (portstr[0] == '\0' || *end != '\0' || errno != 0 || port > 65535)
			die("--listen: bad port '%s'", portstr);
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || (ntohl(sin.sin_addr.s_addr) >> 24) != 127)
			die("--listen: only a 127.0.0.0/8 address (or a Unix socket) is allowed");
		sin.sin_port = htons((uint16_t)port);
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			die("socket: %s", strerror(errno));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("--listen %s: %s", addr, strerror(errno));
		if (getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
			die("getsockname: %s", strerror(errno));
		snprintf(base, baselen, "http://%s:%u", host, (unsigned)ntohs(sin.sin_port));
	}
	if (listen(fd, 1024) != 0)
		die("listen: %s", strerror(errno));
	return fd;
}

static void
summary(const struct px *px, const struct px_usage *u, const char *usage_file, int64_t started)
{
	char line[768];
	int fd, n;

	fprintf(stderr, "akctl: proxy: %s: %llu requests forwarded, %llu refused, %llu failed, %llu cut off; "
	    "tokens: %llu in, %llu out, %llu cache read, %llu cache written\n", px->profile,
	    (unsigned long long)u->requests, (unsigned long long)u->refused, (unsigned long long)u->failed,
	    (unsigned long long)u->aborted, (unsigned long long)u->input_tokens,
	    (unsigned long long)u->output_tokens, (unsigned long long)u->cache_read_tokens,
	    (unsigned long long)u->cache_creation_tokens);
	if (usage_file == NULL)
		return;
	n = snprintf(line, sizeof(line), "{\"profile\":\"%s\",\"provider\":\"%s\",\"started\":%lld,\"ended\":%lld,"
	    "\"requests\":%llu,\"refused\":%llu,\"failed\":%llu,\"aborted\":%llu,\"input_tokens\":%llu,"
	    "\"output_tokens\":%llu,\"cache_read_input_tokens\":%llu,\"cache_creation_input_tokens\":%llu}\n",
	    px->profile, px->pv->name, (long long)started, (long long)time(NULL),
	    (unsigned long long)u->requests, (unsigned long long)u->refused, (unsigned long long)u->failed,
	    (unsigned long long)u->aborted, (unsigned long long)u->input_tokens,
	    (unsigned long long)u->output_tokens, (unsigned long long)u->cache_read_tokens,
	    (unsigned long long)u->cache_creation_tokens);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if ((fd = open(usage_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    write(fd, line, (size_t)n) != n)
		fprintf(stderr, "akctl: proxy: --usage-file %s: %s\n", usage_file, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int64_t
px_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
px_curl_run_due(struct px *px)
{
	int running;

	if (px->curl_due >= 0 && px->curl_due <= px_now_ms()) {
		px->curl_due = -1;
		curl_multi_socket_action(px->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

int
px_watch_set(struct px *px, struct px_watch *w, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = w;
	if (w->in_set)
		return epoll_ctl(px->ep, EPOLL_CTL_MOD, w->fd, &ev);
	if (epoll_ctl(px->ep, EPOLL_CTL_ADD, w->fd, &ev) != 0)
		return -1;
	w->in_set = 1;
	return 0;
}

void
px_watch_del(struct px *px, struct px_watch *w)
{
	if (w->in_set)
		(void)epoll_ctl(px->ep, EPOLL_CTL_DEL, w->fd, NULL);
	w->in_set = 0;
}

static void
px_watch_sweep(struct px *px)
{
	struct px_watch *w;

	while ((w = px->dead) != NULL) {
		px->dead = w->dead;
		free(w);
	}
}

static void
usage(void)
{
	fputs("usage: akctl-proxy --provider P --profile NAME --upstream URL --key-fd N --secret-var VAR\n"
	    "                   [--listen ADDR] [--workers N] [--usage-file FILE] [--exec -- CMD [ARG...]]\n"
	    "(run by 'akctl proxy' and 'akctl exec --proxy'; see akctl(1))\n", stderr);
	exit(2);
}


/* One event loop and the descriptors it watches besides libcurl's and the clients'. */
struct worker {
	struct px px;
	struct px_watch w_mhd, w_listen, w_stop, w_sig, w_hand;
	pthread_t thread;
	int started;
};

/* The main thread's view of CMD and the signals (its loop alone touches these). */
static struct {
	int sfd;
	int exec_mode;
	pid_t child;
	int status;
} mainst = { .sfd = -1, .child = -1 };

/* The CPUs this process may run on (taskset, cgroups' cpusets), else the online ones. */
static int
cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Everything a loop needs, made by the main thread before any worker runs (so failures can die()). */
static void
worker_init(struct worker *wk, const struct px *tmpl, struct px_shared *sh, int id)
{
	struct px *px = &wk->px;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;

	*px = *tmpl; /* the configuration; key_header and token point into the one secure arena */
	px->shared = sh;
	px->id = id;
	px->curl_due = -1;
	if ((px->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	if ((px->multi = curl_multi_init()) == NULL || (px->share = curl_share_init()) == NULL)
		die("cannot start libcurl");
	curl_share_setopt(px->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(px->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_multi_setopt(px->multi, CURLMOPT_SOCKETFUNCTION, px_curl_socket_cb);
	curl_multi_setopt(px->multi, CURLMOPT_SOCKETDATA, px);
	curl_multi_setopt(px->multi, CURLMOPT_TIMERFUNCTION, px_curl_timer_cb);
	curl_multi_setopt(px->multi, CURLMOPT_TIMERDATA, px);
	/* Idle upstream connections kept for reuse: enough for a burst of clients. */
	curl_multi_setopt(px->multi, CURLMOPT_MAXCONNECTS, 512L);
	curl_multi_setopt(px->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	/* No listening socket of its own: the loop accepts from the shared one and hands the connection
	 * over (MHD_add_connection), so each new client goes to one loop only. */
	d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_ALLOW_UPGRADE | MHD_USE_TURBO | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL,
	    px_access_cb, px,
	    MHD_OPTION_URI_LOG_CALLBACK, px_uri_cb, px,
	    MHD_OPTION_NOTIFY_COMPLETED, px_completed_cb, px,
	    MHD_OPTION_NOTIFY_CONNECTION, px_conn_cb, px,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)900,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)8192,
	    /* Each connection's buffer for its request head and the answer's headers: these APIs' fit
	     * in 8 KiB (a request head past about 7 KiB is answered 431), and a thousand held streams
	     * stay small. */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(8u << 10),
	    MHD_OPTION_END);
	if (d == NULL || (info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
		die("cannot start the HTTP server");
	px->mhd = d;
	wk->w_mhd.kind = PXW_MHD;
	wk->w_mhd.fd = info->epoll_fd;
	wk->w_listen.kind = PXW_LISTEN;
	wk->w_listen.fd = sh->lfd;
	wk->w_stop.kind = PXW_STOP;
	wk->w_stop.fd = sh->stop_fd;
	/* EPOLLEXCLUSIVE: a new client wakes one loop waiting in epoll_wait, not all of them, and an idle
	 * loop is preferred to a busy one (a busy one is not waiting). */
	{
		int p[2];

		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		sh->handoff[id] = p[1];
		wk->w_hand.kind = PXW_HANDOFF;
		wk->w_hand.fd = p[0];
	}
	if (px_watch_set(px, &wk->w_mhd, EPOLLIN) != 0 || px_watch_set(px, &wk->w_hand, EPOLLIN) != 0 ||
	    px_watch_set(px, &wk->w_listen, EPOLLIN | EPOLLEXCLUSIVE) != 0 ||
	    px_watch_set(px, &wk->w_stop, EPOLLIN) != 0)
		die("epoll_ctl: %s", strerror(errno));
	if (id == 0) {
		wk->w_sig.kind = PXW_SIGNAL;
		wk->w_sig.fd = mainst.sfd;
		if (px_watch_set(px, &wk->w_sig, EPOLLIN) != 0)
			die("epoll_ctl: %s", strerror(errno));
	}
}

/* A client accepted by one loop for another: well under PIPE_BUF, so each write is whole. */
struct handoff {
	int fd;
	socklen_t len;
	struct sockaddr_storage addr;
};

/* One new client. Its turn decides which loop serves it (clients dealt round the loops, so
 * keep-alive connections opened while the first loop is idle do not all stay on it); another loop's
 * gets it through that loop's pipe, and if the pipe is full this one serves it. Another loop may have
 * accepted it first (EAGAIN); a client that could not be taken (descriptors or memory short) is closed
 * by libmicrohttpd. */
static int
take_client(struct px *px)
{
	struct px_shared *sh = px->shared;
	struct handoff h;
	unsigned to;

	memset(&h, 0, sizeof(h));
	h.len = sizeof(h.addr);
	if ((h.fd = accept4(sh->lfd, (struct sockaddr *)&h.addr, &h.len, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
		return 0;
	to = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED) %
	    (unsigned)__atomic_load_n(&sh->nworkers, __ATOMIC_RELAXED);
	if ((int)to != px->id && write(sh->handoff[to], &h, sizeof(h)) == (ssize_t)sizeof(h))
		return 0;
	(void)MHD_add_connection(px->mhd, h.fd, (struct sockaddr *)&h.addr, h.len);
	return 1;
}

/* Clients another loop accepted for this one. */
static int
take_handoffs(struct px *px, int fd)
{
	struct handoff h;
	int n = 0;

	while (read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h)) {
		(void)MHD_add_connection(px->mhd, h.fd, (struct sockaddr *)&h.addr, h.len);
		n = 1;
	}
	return n;
}

/* The main loop's signals: 1 when the proxy is to stop. */
static int
on_signals(void)
{
	struct signalfd_siginfo si;
	int stop = 0;

	while (read(mainst.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			if (mainst.child > 0 && waitpid(mainst.child, &mainst.status, WNOHANG) == mainst.child) {
				mainst.child = -1;
				stop = 1;
			}
			break;
		case SIGINT:
		case SIGQUIT:
			/* With CMD, the terminal's signal is CMD's to act on, as system() does. */
			if (!mainst.exec_mode)
				stop = 1;
			break;
		default:
			if (mainst.child > 0)
				kill(mainst.child, (int)si.ssi_signo);
			else
				stop = 1;
		}
	}
	return stop;
}

/* Run one loop until the proxy stops, then end its requests and free what it holds. */
static void *
worker_run(void *arg)
{
	struct worker *wk = arg;
	struct px *px = &wk->px;
	struct MHD_Daemon *d = px->mhd;
	int stop = 0, running;

	while (!stop) {
		struct epoll_event ev[128];
		MHD_UNSIGNED_LONG_LONG mt;
		int64_t now;
		int i, n, tmo = 1000, mhd_ready = 0;

		if (px->mhd_kick)
			tmo = 0;
		if (MHD_get_timeout(d, &mt) == MHD_YES && mt < (MHD_UNSIGNED_LONG_LONG)tmo)
			tmo = (int)mt;
		if (px->curl_due >= 0 && tmo > 0) {
			now = px_now_ms();
			if (px->curl_due - now < tmo)
				tmo = px->curl_due <= now ? 0 : (int)(px->curl_due - now);
		}
		n = epoll_wait(px->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), tmo);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		if (n <= 0) {
			mhd_ready = 1; /* a timeout: libmicrohttpd's own timers may be due */
			/* Idle for a second after a busy spell: hand the freed heap back to the kernel. */
			if (px->nlive == 0 && px->trim_due && px_now_ms() - px->busy_ms >= 1000) {
				px->trim_due = 0;
				malloc_trim(0);
			}
		}
		for (i = 0; i < n; i++) {
			struct px_watch *w = ev[i].data.ptr;
			int flags = 0;

			switch (w->kind) {
			case PXW_SIGNAL:
				if (on_signals()) {
					stop = 1;
					/* Every other loop watches this descriptor. */
					if (eventfd_write(px->shared->stop_fd, 1) != 0)
						die("eventfd_write: %s", strerror(errno));
				}
				break;
			case PXW_STOP:
				stop = 1;
				break;
			case PXW_LISTEN:
				/* One at a time, as nginx does by default: the next waits for the next turn,
				 * where another idle loop may take it. */
				mhd_ready |= take_client(px);
				break;
			case PXW_HANDOFF:
				mhd_ready |= take_handoffs(px, w->fd);
				break;
			case PXW_MHD:
				mhd_ready = 1;
				break;
			case PXW_CURL:
				if (w->fd < 0)
					break; /* libcurl let go of it earlier in this batch */
				flags |= (ev[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0;
				flags |= (ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0;
				flags |= (ev[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0;
				curl_multi_socket_action(px->multi, w->fd, flags, &running);
				break;
			case PXW_CLIENT:
				px_conn_gone(px, w);
				break;
			case PXW_WS:
				px_ws_event(px, w, ev[i].events);
				break;
			}
		}
		/* Turn the crank until nothing is left to do now: libcurl's due timeouts (a transfer just
		 * added is started by one), finished transfers, libmicrohttpd for woken connections and for
		 * those it still has work for (a timeout of 0: an answer just sent, a connection not yet
		 * read to EAGAIN, one just handed over), without a round through epoll_wait for each. */
		for (i = 0; i < 8; i++) {
			px_curl_run_due(px);
			px_relay_reap(px);
			if (!mhd_ready && !px->mhd_kick)
				break;
			mhd_ready = px->mhd_kick = 0;
			MHD_run(d);
			if (MHD_get_timeout(d, &mt) == MHD_YES && mt == 0)
				mhd_ready = 1;
		}
		px_watch_sweep(px);
		px_ws_sweep(px, 0);
		px_usage_publish(px);
		if (px->id == 0)
			px_report(px->shared, px->profile, 0);
	}

	px_ws_sweep(px, 1);
	px_relay_abort_all(px);
	MHD_run(d);
	MHD_stop_daemon(d);
	px_relay_pool_free(px);
	curl_multi_cleanup(px->multi);
	curl_share_cleanup(px->share);
	close(px->ep);
	close(wk->w_hand.fd); /* a client still in the pipe is closed with the process */
	px_usage_publish(px);
	return NULL;
}

/* A loop whose thread could not start has nothing in flight: just free it. */
static void
worker_finish_unstarted(struct worker *wk)
{
	MHD_stop_daemon(wk->px.mhd);
	curl_multi_cleanup(wk->px.multi);
	curl_share_cleanup(wk->px.share);
	close(wk->px.ep);
	close(wk->w_hand.fd);
}

int
main(int argc, char **argv)
{
	struct px px;
	struct px_shared sh;
	struct px_usage total;
	struct worker *wk;
	struct rlimit rl;
	sigset_t mask, oldmask;
	const char *provider = NULL, *upstream = NULL, *secret_var = NULL, *listen_addr = "127.0.0.1:0";
	const char *usage_file = NULL;
	char base[128], unixpath[108], envbase[160], *end;
	const char *workers = NULL, *key_fd_s = NULL;
	char **cmd = NULL;
	int fd, key_fd = -1, rc = 0, nworkers = 0, i;
	long v;
	int64_t started = time(NULL);
	const struct ak_opt opts[] = {
		AK_VALUE("provider", 0, &provider),
		AK_VALUE("profile", 0, &px.profile),
		AK_VALUE("upstream", 0, &upstream),
		AK_VALUE("key-fd", 0, &key_fd_s),
		AK_VALUE("secret-var", 0, &secret_var),
		AK_VALUE("listen", 0, &listen_addr),
		AK_VALUE("workers", 0, &workers),
		AK_VALUE("usage-file", 0, &usage_file),
		AK_FLAG("exec", 0, &mainst.exec_mode, 1),
		AK_OPT_END,
	};
	struct ak_opts_result res;
	char msg[128];

	memset(&px, 0, sizeof(px));
	memset(&sh, 0, sizeof(sh));
	/* Same-user processes (the child included) must not read this process's memory. */
	prctl(PR_SET_DUMPABLE, 0);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	/* In order: CMD's options after --exec are its own. */
	if (ak_opts_parse(argc, argv, opts, AK_OPTS_IN_ORDER, &res) != AK_OK) {
		ak_opts_describe(&res, msg, sizeof(msg));
		fprintf(stderr, "akctl-proxy: %s\n", msg);
		usage();
	}
	if (workers != NULL) {
		errno = 0;
		v = strtol(workers, &end, 10);
		if (workers[0] == '\0' || *end != '\0' || errno != 0 || v < 1 || v > PX_WORKERS_MAX)
			die("--workers: a number from 1 to %d", PX_WORKERS_MAX);
		nworkers = (int)v;
	}
	if (key_fd_s != NULL) {
		errno = 0;
		key_fd = (int)strtol(key_fd_s, &end, 10);
		if (*end != '\0' || errno != 0 || key_fd < 0)
			usage();
	}
	if (provider == NULL || px.profile == NULL || upstream == NULL || key_fd < 0 || secret_var == NULL)
		usage();
	if (mainst.exec_mode) {
		if (optind >= argc)
			usage();
		cmd = &argv[optind];
		px_report_init(cmd[0]);
	} else if (optind != argc) {
		usage();
	}
	/* One loop per two CPUs by default: the proxy's clients, and what they run, share this machine.
	 * On two CPUs with the client and an upstream busy beside it, a second loop served 17-40% more
	 * requests at 16 clients, and at 256 20% more in one run, 27% fewer in another
	 * (tests/bench/proxy-bench.sh). */
	if (nworkers == 0)
		nworkers = cpus() / 2 < 1 ? 1 : cpus() / 2 > PX_WORKERS_MAX ? PX_WORKERS_MAX : cpus() / 2;
	/* One malloc arena per loop (libcurl's resolver threads would each grow their own), and no
	 * giving memory back to the kernel between requests (a trim and the page faults that refill it
	 * cost more than the request): a loop trims once it has been idle a while instead. */
	mallopt(M_ARENA_MAX, nworkers);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	if ((px.pv = ak_provider_find(provider)) == NULL)
		die("unknown provider '%s'", provider);
	if (strcmp(provider, "anthropic") == 0)
		px.allow = allow_anthropic;
	else if (strcmp(provider, "anthropic-admin") == 0)
		px.allow = allow_anthropic_admin;
	else if (strcmp(provider, "openai") == 0)
		px.allow = allow_openai;
	else
		die("provider %s cannot be proxied (anthropic, anthropic-admin and openai can)", provider);
	if (ak_smem_init() != 0)
		die("cannot start libsodium");
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, w_malloc, w_free, w_realloc, w_strdup, w_calloc) != CURLE_OK)
		die("cannot start libcurl");
	set_upstream(&px, upstream);
	read_key(&px, key_fd);
	make_token(&px);

	/* Two sockets per stream: let 1000 concurrent streams fit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any worker starts, so the workers inherit the mask and only the signalfd of
	 * the main loop sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	if ((mainst.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		die("signalfd: %s", strerror(errno));

	sh.lfd = listen_on(listen_addr, base, sizeof(base), unixpath, sizeof(unixpath));
	if (fcntl(sh.lfd, F_SETFL, fcntl(sh.lfd, F_GETFL) | O_NONBLOCK) != 0)
		die("fcntl: %s", strerror(errno));
	if ((sh.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		die("eventfd: %s", strerror(errno));
	if (pthread_mutex_init(&sh.lock, NULL) != 0)
		die("pthread_mutex_init failed");
	sh.nworkers = nworkers;
	if ((wk = calloc((size_t)nworkers, sizeof(*wk))) == NULL)
		die("out of memory");
	for (i = 0; i < nworkers; i++)
		worker_init(&wk[i], &px, &sh, i);

	/* OpenAI's SDKs want the /v1 in the base URL; Anthropic's do not. */
	snprintf(envbase, sizeof(envbase), "%s%.*s", base, (int)px.strip_len,
	    px.strip_len > 0 ? "/v1" : "");
	if (mainst.exec_mode) {
		if (setenv(px.pv->base_url_env, envbase, 1) != 0 || setenv(secret_var, px.token, 1) != 0 ||
		    setenv("AKCTL_PROFILE", px.profile, 1) != 0)
			die("setting the environment: %s", strerror(errno));
		fflush(NULL);
		/* Before any worker thread exists: the child runs no code another thread could have left
		 * in the middle of a lock. */
		if ((mainst.child = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (mainst.child == 0) {
			sigprocmask(SIG_SETMASK, &oldmask, NULL);
			signal(SIGPIPE, SIG_DFL);
			execvp(cmd[0], cmd);
			fprintf(stderr, "akctl: exec: %s: %s\n", cmd[0], strerror(errno));
			_exit(errno == ENOENT ? 127 : 126);
		}
		/* Our copy of the placeholder in the environment is not needed any more. */
		unsetenv(secret_var);
	} else {
		if (unixpath[0] != '\0')
			printf("AKCTL_PROXY_SOCK=%s; export AKCTL_PROXY_SOCK;\n", unixpath);
		else
			printf("%s=%s; export %s;\n", px.pv->base_url_env, envbase, px.pv->base_url_env);
		printf("%s=%s; export %s;\n", secret_var, px.token, secret_var);
		printf("AKCTL_PROXY_PID=%ld; export AKCTL_PROXY_PID;\n", (long)getpid());
		fflush(stdout);
		/* Close our end of a command substitution, so `eval "$(akctl proxy P &)"` returns. */
		if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0) {
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		fprintf(stderr, "akctl: proxy: profile %s (%s) on %s; stop with Ctrl-C\n", px.profile,
		    px.pv->name, unixpath[0] != '\0' ? unixpath : base);
	}

	for (i = 1; i < nworkers; i++) {
		if ((errno = pthread_create(&wk[i].thread, NULL, worker_run, &wk[i])) != 0) {
			/* Serve with the loops there are: no client is dealt to the others. */
			fprintf(stderr, "akctl: proxy: worker thread: %s\n", strerror(errno));
			__atomic_store_n(&sh.nworkers, i, __ATOMIC_RELAXED);
			for (; i < nworkers; i++)
				worker_finish_unstarted(&wk[i]);
			break;
		}
		wk[i].started = 1;
	}
	worker_run(&wk[0]);
	for (i = 1; i < nworkers; i++)
		if (wk[i].started)
			pthread_join(wk[i].thread, NULL);
	px_report(&sh, px.profile, 1);

	free(wk);
	close(sh.lfd);
	close(sh.stop_fd);
	close(mainst.sfd);
	if (unixpath[0] != '\0')
		unlink(unixpath);
	curl_global_cleanup();
	px_usage_total(&sh, &total);
	summary(&px, &total, usage_file, started);
	pthread_mutex_destroy(&sh.lock);
	ak_smem_release_all();
	if (mainst.exec_mode) {
		if (WIFEXITED(mainst.status))
			rc = WEXITSTATUS(mainst.status);
		else if (WIFSIGNALED(mainst.status))
			rc = 128 + WTERMSIG(mainst.status);
		else
			rc = 1;
	}
	return rc;
}
