/* agent.c - akctl's side of the agent: which agent serves akctl's keystore, and the messages for
 * an agent that is missing, locked, not ours or serving another keystore. The protocol client itself
 * is the library's (ak_client.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "ak_client.h"
#include "cli.h"

const char *
cli_socket_path(void)
{
	static char path[AK_PATH_MAX];

	if (path[0] == '\0' && ak_path_client_socket(path, sizeof(path), NULL) != AK_OK)
		snprintf(path, sizeof(path), "(unknown)");
	return path;
}

/* Same file? Paths are absolute but not resolved: compare the strings, then the inodes. */
static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (strcmp(a, b) == 0)
		return 1;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

enum ak_err
cli_agent_for_store(struct cli *c, struct ak_client **clp, struct ak_status *st, char *detail,
    size_t detaillen)
{
	struct ak_client *cl = NULL;
	enum ak_err r;

	*clp = NULL;
	memset(st, 0, sizeof(*st));
	if (detaillen > 0)
		detail[0] = '\0';
	if ((r = cli_store_path(c)) != AK_OK)
		return r;
	if ((r = ak_client_connect(NULL, 0, &cl, detail, detaillen)) != AK_OK)
		return r;
	if ((r = ak_client_status(cl, st)) != AK_OK) {
		cli_sanitize(ak_client_detail(cl), detail, detaillen);
		goto out;
	}
	if (st->store_path == NULL || st->store_path[0] != '/') {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	/* The agent's keystore is only compared, never used: the KDF parameters akctl derives with come
	 * from its own keystore's header, so an agent cannot choose them. */
	if (!same_file(c->store, st->store_path)) {
		snprintf(detail, detaillen, "the agent at %s serves %s, not %s", ak_client_path(cl),
		    st->store_path, c->store);
		r = AK_ERR_OTHER_STORE;
		goto out;
	}
	*clp = cl;
	cl = NULL;
	r = AK_OK;
out:
	if (r != AK_OK)
		ak_status_clear(st);
	ak_client_close(cl);
	return r;
}

enum ak_err
cli_fail_client(struct ak_client *cl, enum ak_err e, const char *context)
{
	if (e == AK_ERR_LOCKED) {
		fprintf(stderr, "akctl: %s: agent is locked: run 'akctl unlock'\n", context);
		return e;
	}
	return cli_fail_agent(e, ak_client_detail(cl), context);
}

enum ak_err
cli_fail_agent(enum ak_err e, const char *detail, const char *context)
{
	if (e == AK_ERR_NO_AGENT) {
		fprintf(stderr, "akctl: %s: no agent reachable at %s (start one with: eval \"$(akagent)\")\n",
		    context, cli_socket_path());
		return e;
	}
	return cli_fail(e, detail, "%s", context);
}

/* Before init there is nothing to unlock: when that is why no agent or only a locked one answers,
 * say what to do instead. */
static int
no_store(const struct cli *c, enum ak_err e)
{
	return (e == AK_ERR_NO_AGENT || e == AK_ERR_LOCKED) && access(c->store, F_OK) != 0 && errno == ENOENT;
}

static enum ak_err
no_store_fail(const struct cli *c, enum ak_err e)
{
	fprintf(stderr, "akctl: %s: no keystore at %s: run 'akctl init' first%s\n", c->cmd, c->store,
	    e == AK_ERR_NO_AGENT ? ", then eval \"$(akagent)\"" : "");
	return e;
}

enum ak_err
cli_agent_direct(struct cli *c, struct ak_client **clp)
{
	char detail[AK_CLIENT_DETAIL_MAX];
	enum ak_err r;

	*clp = NULL;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "%s: keystore path", c->cmd);
	if ((r = ak_client_connect(NULL, 0, clp, detail, sizeof(detail))) != AK_OK)
		return no_store(c, r) ? no_store_fail(c, r) : cli_fail_agent(r, detail, c->cmd);
	return AK_OK;
}

enum ak_err
cli_agent_unlocked(struct cli *c, struct ak_client **clp)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[AK_CLIENT_DETAIL_MAX];
	enum ak_err r;

	*clp = NULL;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "%s: keystore path", c->cmd);
	/* Fast path (env/get): skip STATUS; a locked agent answers the request with LOCKED. */
	if (!c->store_explicit && !cli_can_prompt(c))
		return cli_agent_direct(c, clp);
	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (r != AK_OK)
		return no_store(c, r) ? no_store_fail(c, r) : cli_fail_agent(r, detail, c->cmd);
	if (!st.unlocked) {
		ak_status_clear(&st);
		if (no_store(c, AK_ERR_LOCKED)) {
			ak_client_close(cl);
			return no_store_fail(c, AK_ERR_LOCKED);
		}
		/* Locked, and someone can answer: ask, unlock, carry on (the agent's default lifetime). */
		r = cli_can_prompt(c) ? cli_unlock_pass(c, cl, 0, 1) :
		    cli_fail_client(NULL, AK_ERR_LOCKED, c->cmd);
		if (r != AK_OK) {
			ak_client_close(cl);
			return r;
		}
		*clp = cl;
		return AK_OK;
	}
	ak_status_clear(&st);
	*clp = cl;
	return AK_OK;
}

int
cli_can_prompt(const struct cli *c)
{
	const char *askpass = getenv("AKCTL_ASKPASS");
	int fd;

	if (c->no_prompt)
		return 0;
	if (askpass != NULL && askpass[0] != '\0')
		return 1;
	/* A person at a terminal: eval "$(akctl use P)" has stdout on a pipe but stdin and stderr on
	 * the terminal. */
	if (!isatty(STDIN_FILENO) && !isatty(STDERR_FILENO))
		return 0;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return 0;
	close(fd);
	return 1;
}
