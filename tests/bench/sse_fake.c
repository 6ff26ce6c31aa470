/* sse_fake.c - the streaming upstream for tests/bench/proxy-bench.sh (not a test): every request gets
 * a server-sent-event answer, the first event at once, then EVENTS-1 more INTERVAL_MS apart, so a
 * thousand streams can be held open through a relay. libmicrohttpd does the HTTP on its own epoll
 * thread; a stream between events is a suspended connection, resumed by a timer thread. In C so
 * that the upstream's accept rate and per-event cost stay well below the relay's being measured.
 *
 *   sse_fake PORTFILE [EVENTS [INTERVAL_MS]]   (listens on an ephemeral 127.0.0.1 port, written to
 *                                               PORTFILE once it listens)
 * EVENTS 0: a short JSON message (with its length) instead, answered at once: the proxy end-to-end
 * tests use it as an upstream quick enough to answer while the proxy is still sending.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

struct stream {
	struct stream *next;            /* on the sleepers list while suspended */
	struct MHD_Connection *conn;
	int sent;
	int64_t due;                    /* CLOCK_MONOTONIC ms of the next event */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream *sleepers;
static int events = 5;
static int interval_ms = 500;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t
reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	int n;

	(void)pos;
	if (s->sent == events)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (now_ms() < s->due) {
		/* Between events: park the connection until the timer thread resumes it. */
		MHD_suspend_connection(s->conn);
		pthread_mutex_lock(&lock);
		s->next = sleepers;
		sleepers = s;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	n = snprintf(buf, max, "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":"
	    "{\"output_tokens\":%d}}\n\n", s->sent);
	if (n < 0 || (size_t)n >= max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	s->sent++;
	s->due = now_ms() + interval_ms;
	return n;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **con_cls)
{
	struct MHD_Response *r;
	struct stream *s;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (*con_cls == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return MHD_NO;
		s->conn = conn;
		*con_cls = s;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0; /* the body is not looked at */
		return MHD_YES;
	}
	s = *con_cls;
	if (events == 0) {
		static char msg[] = "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
		    "\"usage\":{\"input_tokens\":3,\"output_tokens\":7}}";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, msg, MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "content-type", "application/json");
		ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if ((r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, reader, s, NULL)) == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "content-type", "text/event-stream");
	ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void
done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls); /* never on the sleepers list: a suspended connection does not complete */
	*con_cls = NULL;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	struct stream *s, **pp, *wake;
	struct sockaddr_in sin;
	FILE *f;
	char tmp[4096];

	if (argc < 2)
		return 2;
	if (argc > 2)
		events = atoi(argv[2]);
	if (argc > 3)
		interval_ms = atoi(argv[3]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO,
	    0, NULL, NULL, answer, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)8192,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16u << 10),
	    MHD_OPTION_END);
	if (d == NULL || (di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL)
		return 1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if ((f = fopen(tmp, "w")) == NULL)
		return 1;
	fprintf(f, "%u", (unsigned)di->port);
	if (fclose(f) != 0 || rename(tmp, argv[1]) != 0)
		return 1;
	for (;;) {
		/* The timer: resume every stream whose next event is due. */
		usleep(5000);
		wake = NULL;
		pthread_mutex_lock(&lock);
		for (pp = &sleepers; (s = *pp) != NULL;) {
			if (s->due <= now_ms()) {
				*pp = s->next;
				s->next = wake;
				wake = s;
			} else {
				pp = &s->next;
			}
		}
		pthread_mutex_unlock(&lock);
		while ((s = wake) != NULL) {
			wake = s->next;
			MHD_resume_connection(s->conn);
		}
	}
}
