/* test_client_list.c - the client's LIST over a real Unix socket, against a scripted agent in a
 * child process: the packed reply arriving a few bytes at a time (the streaming reader, and the
 * one-block decode), an agent older than LIST_PACKED (UNKNOWN_MESSAGE, then the LIST), and a packed
 * reply cut short or with a byte too many (an error, never a crash, and not one row handed over).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ak_buf.h"
#include "ak_client.h"
#include "ak_err.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "t.h"

#define NPROF 300

enum script { S_PACKED_SLOW, S_OLD_AGENT, S_CUT, S_EXTRA };

static struct ak_profile *prof[NPROF];

static void
mk_store(void)
{
	char name[16], key[128];
	unsigned i;

	for (i = 0; i < NPROF; i++) {
		prof[i] = ak_profile_new();
		if (prof[i] == NULL)
			abort();
		snprintf(name, sizeof(name), "p%05u", i);
		/* made up here, key-shaped: test data only */
		snprintf(key, sizeof(key), "sk-ant-api03-%040u%053uAA", i * 31u, i);
		CHECK_EQ(ak_profile_set_field(&prof[i]->name, name), AK_OK);
		CHECK_EQ(ak_profile_set_field(&prof[i]->provider, "anthropic"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&prof[i]->secret_var, "ANTHROPIC_API_KEY"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&prof[i]->secret, key), AK_OK);
		CHECK_EQ(ak_profile_set_field(&prof[i]->description, i % 7 ? "" : "seventh"), AK_OK);
		prof[i]->created = 1764460800 + i;
		prof[i]->rotated = prof[i]->created + (i % 3);
		if (i % 2)
			CHECK_EQ(ak_profile_set_var(prof[i], "ANTHROPIC_MODEL", "m"), AK_OK);
	}
}

static int
read_frame(int fd, uint8_t *type)
{
	uint8_t h[5], skip[256];
	size_t got = 0, len;
	ssize_t n;

	while (got < 5) {
		if ((n = read(fd, h + got, 5 - got)) <= 0)
			return -1;
		got += (size_t)n;
	}
	*type = h[4];
	len = ((size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]) - 1;
	while (len > 0) {
		if ((n = read(fd, skip, len < sizeof(skip) ? len : sizeof(skip))) <= 0)
			return -1;
		len -= (size_t)n;
	}
	return 0;
}

/* Write the bytes in pieces of step bytes, pausing after each small one. */
static void
send_pieces(int fd, const uint8_t *p, size_t len, size_t step)
{
	struct timespec ts = { 0, 200000 };
	size_t k;

	for (k = 0; k < len; k += step) {
		if (write(fd, p + k, len - k < step ? len - k : step) < 0)
			_exit(3);
		if (step < 64)
			nanosleep(&ts, NULL);
	}
}

/* The scripted agent: answers every request on one connection, then exits. */
static void
agent(int lfd, enum script s)
{
	struct ak_buf *b = ak_buf_new(AK_PROTO_MAX_REPLY);
	uint8_t type;
	size_t i;
	int fd;

	if (b == NULL || (fd = accept(lfd, NULL, NULL)) < 0)
		_exit(2);
	while (read_frame(fd, &type) == 0) {
		if (type == AK_MSG_LIST_PACKED && s == S_OLD_AGENT) {
			if (ak_proto_begin(b, AK_MSG_ERROR) != AK_OK ||
			    ak_proto_put_error(b, AK_ERR_UNKNOWN_MESSAGE, NULL) != AK_OK ||
			    ak_proto_finish(b, AK_PROTO_MAX_REPLY) != AK_OK)
				_exit(2);
		} else if (type == AK_MSG_LIST_PACKED) {
			if (ak_proto_put_list_packed(b, prof, NPROF) != AK_OK)
				_exit(2);
		} else if (type == AK_MSG_LIST && s == S_OLD_AGENT) {
			if (ak_proto_begin(b, AK_MSG_LIST_REPLY) != AK_OK || ak_buf_put_u32(b, NPROF) != AK_OK)
				_exit(2);
			for (i = 0; i < NPROF; i++)
				if (ak_proto_put_list_entry(b, prof[i]) != AK_OK)
					_exit(2);
			if (ak_proto_finish(b, AK_PROTO_MAX_REPLY) != AK_OK)
				_exit(2);
		} else {
			_exit(4); /* a request this script does not expect */
		}
		if (s == S_CUT) {
			/* all but the last 3 bytes, then hang up */
			send_pieces(fd, ak_buf_ptr(b), ak_buf_len(b) - 3, 4096);
			break;
		}
		if (s == S_EXTRA) {
			uint8_t *d = ak_buf_data(b);
			size_t l = ak_buf_len(b) - 4 + 1; /* announce one byte more than the rows take */

			d[0] = (uint8_t)(l >> 24);
			d[1] = (uint8_t)(l >> 16);
			d[2] = (uint8_t)(l >> 8);
			d[3] = (uint8_t)l;
			if (ak_buf_put_u8(b, 0) != AK_OK)
				_exit(2);
		}
		send_pieces(fd, ak_buf_ptr(b), ak_buf_len(b), s == S_PACKED_SLOW ? 7 : 65536);
		ak_buf_reset(b);
	}
	close(fd);
	_exit(0);
}

struct seen {
	uint32_t rows;
	int bad;
};

static enum ak_err
row(void *arg, const struct ak_list_entry *e, uint32_t n)
{
	struct seen *s = arg;
	const struct ak_profile *p;

	if (s->rows >= NPROF || n != NPROF) {
		s->bad++;
		return AK_OK;
	}
	p = prof[s->rows++];
	if (strcmp(e->name, p->name) || strcmp(e->secret_var, p->secret_var) ||
	    strcmp(e->description, p->description) || e->created != p->created ||
	    e->rotated != p->rotated || e->nvars != p->nvars ||
	    strncmp(e->redacted, "sk-ant-api03-", 13) != 0)
		s->bad++;
	return AK_OK;
}

/* Run the client's requests against an agent following script s; the two results. */
static void
run(enum script s, const char *dir, enum ak_err *each, enum ak_err *whole, struct seen *seen)
{
	struct sockaddr_un sun;
	struct ak_client *cl = NULL;
	struct ak_list_entry *e = NULL;
	char path[256], detail[AK_CLIENT_DETAIL_MAX];
	uint32_t n = 0, i;
	pid_t pid;
	int lfd, st;

	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		abort();
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(lfd, 1) != 0)
		abort();
	if ((pid = fork()) == 0)
		agent(lfd, s);
	close(lfd);
	memset(seen, 0, sizeof(*seen));
	CHECK_EQ(ak_client_connect(path, 0, &cl, detail, sizeof(detail)), AK_OK);
	*each = cl != NULL ? ak_client_list_each(cl, row, seen, &n) : AK_ERR_NO_AGENT;
	if (*each == AK_OK)
		CHECK_EQ(n, NPROF);
	*whole = AK_ERR_IO;
	if (cl != NULL && (s == S_PACKED_SLOW || s == S_OLD_AGENT)) {
		*whole = ak_client_list(cl, &e, &n);
		if (*whole == AK_OK) {
			CHECK_EQ(n, NPROF);
			for (i = 0; i < n && i < NPROF; i++)
				CHECK(strcmp(e[i].name, prof[i]->name) == 0 && e[i].nvars == prof[i]->nvars &&
				    e[i].rotated == prof[i]->rotated);
		}
		ak_client_list_free(e, n);
	}
	ak_client_close(cl);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int
main(void)
{
	/* In the working directory (the build tree), not /tmp: nothing left behind there if killed. */
	char dir[] = "ak-test-client-list.XXXXXX";
	struct seen seen;
	enum ak_err each, whole;
	char path[300];

	signal(SIGPIPE, SIG_IGN);
	if (ak_smem_init() != 0 || mkdtemp(dir) == NULL)
		return 1;
	mk_store();

	run(S_PACKED_SLOW, dir, &each, &whole, &seen);
	CHECK_EQ(each, AK_OK);
	CHECK_EQ(whole, AK_OK);
	CHECK_EQ(seen.rows, NPROF);
	CHECK_EQ(seen.bad, 0);

	run(S_OLD_AGENT, dir, &each, &whole, &seen);
	CHECK_EQ(each, AK_OK);
	CHECK_EQ(whole, AK_OK);
	CHECK_EQ(seen.rows, NPROF);
	CHECK_EQ(seen.bad, 0);

	run(S_CUT, dir, &each, &whole, &seen);
	CHECK_EQ(each, AK_ERR_IO);
	CHECK_EQ(seen.rows, 0); /* all or nothing: no row of a reply that breaks off */

	run(S_EXTRA, dir, &each, &whole, &seen);
	CHECK_EQ(each, AK_ERR_BAD_MESSAGE);
	CHECK_EQ(seen.rows, 0);
	CHECK_EQ(seen.bad, 0);

	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	unlink(path);
	rmdir(dir);
	for (unsigned i = 0; i < NPROF; i++)
		ak_profile_free(prof[i]);
	T_DONE();
}
