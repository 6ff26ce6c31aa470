/* cmd_pull.c - akctl pull PROFILE...|--all: re-fetch profiles imported from a cloud secret manager.
 *
 * A team rotates a key in its secret manager; each laptop runs `akctl pull`. The profile remembers its
 * URI in `source` (set by import). Needs an unlocked agent, which writes the result. Three phases so
 * no agent connection sits idle across a slow fetch: read the profiles, fetch, then store each changed
 * value with one ADD that the agent applies only if the profile's source is still the one fetched
 * (AK_ADD_IF_SOURCE: a compare-and-swap under its writer lock; edits made meanwhile to the other
 * fields survive). The agent moves `rotated` itself when the secret changes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"
#include "net.h"

struct pull_item {
	char name[AK_NAME_MAX + 1];
	struct ak_profile *p; /* secure: the profile as phase 1 read it (source, old secret) */
	char *value;          /* secure: fetched value, wiped in items_free */
	size_t value_len;
	int skip;             /* 1: nothing to do (no cloud source with --all, or failed) */
};

struct pull {
	struct cli *c;
	struct cloud_opts opts;
	struct pull_item *it;
	size_t n;
	int all;
	enum ak_err rc; /* the first failure; later ones only print */
};

static void
items_free(struct pull_item *it, size_t n)
{
	size_t i;

	for (i = 0; it != NULL && i < n; i++) {
		ak_profile_free(it[i].p);
		ak_smem_free(it[i].value);
	}
	free(it);
}

static const char *
ctx(const char *name, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "pull: %s", name);
	return buf;
}

/* The first failure is the command's result; later ones only print. */
static void
note_rc(enum ak_err *rc, enum ak_err e)
{
	if (*rc == AK_OK)
		*rc = e;
}

/* Phase 1: which profiles, as stored. Returns AK_OK, or the error that ends the command. */
static enum ak_err
pull_read(struct pull *pl, char **names, size_t nnames)
{
	struct ak_client *cl = NULL;
	struct ak_list_entry *le = NULL;
	uint32_t nle = 0;
	char cbuf[AK_NAME_MAX + 16];
	size_t i;
	int ncloud = 0;
	enum ak_err x, r;

	if ((x = cli_agent_unlocked(pl->c, &cl)) != AK_OK)
		return x;
	if (pl->all && (r = ak_client_list(cl, &le, &nle)) != AK_OK) {
		x = cli_fail_client(cl, r, "pull");
		goto out;
	}
	pl->n = pl->all ? nle : nnames;
	if ((pl->it = calloc(pl->n > 0 ? pl->n : 1, sizeof(*pl->it))) == NULL) {
		x = cli_fail(AK_ERR_NOMEM, NULL, "pull");
		goto out;
	}
	for (i = 0; i < pl->n; i++) {
		struct pull_item *it = &pl->it[i];

		snprintf(it->name, sizeof(it->name), "%s", pl->all ? le[i].name : names[i]);
		if ((r = ak_client_get(cl, it->name, &it->p)) != AK_OK) {
			it->skip = 1;
			if (r == AK_ERR_NO_AGENT || r == AK_ERR_LOCKED) {
				x = cli_fail_client(cl, r, "pull");
				goto out;
			}
			note_rc(&pl->rc, cli_fail_client(cl, r, ctx(it->name, cbuf, sizeof(cbuf))));
			continue;
		}
		if (!cloud_is_uri(it->p->source)) {
			it->skip = 1;
			if (!pl->all) {
				fprintf(stderr, "akctl: pull: %s: not imported from a cloud source\n", it->name);
				note_rc(&pl->rc, AK_ERR_UNSUPPORTED);
			}
		} else {
			ncloud++;
		}
	}
	if (pl->all && ncloud == 0)
		cli_note("pull: no profile was imported from a cloud source");
out:
	if (le != NULL)
		ak_client_list_free(le, nle);
	ak_client_close(cl);
	return x;
}

/* Phase 2: fetch, with no agent connection open. Returns AK_OK, or the error that ends the command. */
static enum ak_err
pull_fetch(struct pull *pl)
{
	char detail[512], clean[512];
	size_t i;
	int netup = 0;
	enum ak_err r;

	for (i = 0; i < pl->n; i++) {
		struct pull_item *it = &pl->it[i];

		if (it->skip)
			continue;
		if (!netup) {
			if ((r = net_init()) != AK_OK)
				return cli_fail(r, NULL, "pull: network");
			netup = 1;
		}
		r = cloud_fetch(it->p->source, &pl->opts, &it->value, &it->value_len, detail, sizeof(detail));
		if (r != AK_OK) {
			it->skip = 1;
			/* The detail is the whole story ("Vault: HTTP 403: permission denied"). */
			cli_sanitize(detail, clean, sizeof(clean));
			fprintf(stderr, "akctl: pull: %s: %s\n", it->name, clean[0] != '\0' ? clean : ak_strerror(r));
			note_rc(&pl->rc, r);
		}
	}
	if (netup)
		net_cleanup();
	return AK_OK;
}

/* Phase 3: store what changed, each with one compare-and-swap ADD. Returns AK_OK, or the error that
 * ends the command. */
static enum ak_err
pull_store(struct pull *pl)
{
	struct ak_client *cl = NULL;
	char cbuf[AK_NAME_MAX + 16];
	size_t i, slen;
	enum ak_err x = AK_OK, r;

	for (i = 0; i < pl->n; i++) {
		struct pull_item *it = &pl->it[i];

		if (it->skip)
			continue;
		if ((slen = strlen(it->p->secret)) == it->value_len &&
		    sodium_memcmp(it->p->secret, it->value, slen) == 0) {
			printf("%s: unchanged\n", it->name);
			continue;
		}
		if (cl == NULL && (x = cli_agent_unlocked(pl->c, &cl)) != AK_OK)
			break;
		if ((r = ak_profile_set_field(&it->p->secret, it->value)) != AK_OK ||
		    (r = ak_profile_validate(it->p)) != AK_OK)
			note_rc(&pl->rc, cli_fail(r, NULL, "pull: %s", it->name));
		else if ((r = ak_client_put_secret(cl, it->p)) != AK_OK)
			note_rc(&pl->rc, cli_fail_client(cl, r, ctx(it->name, cbuf, sizeof(cbuf))));
		else
			printf("%s: updated (rotated)\n", it->name);
	}
	fflush(stdout);
	ak_client_close(cl);
	return x;
}

enum ak_err
cmd_pull(struct cli *c, int argc, char **argv)
{
	struct pull pl;
	uint32_t secs;
	const char *timeout_s = NULL;
	int i, helped;
	enum ak_err x;
	const struct ak_opt opts[] = {
		CLI_FLAG("all", &pl.all, 1),
		CLI_VALUE("region", &pl.opts.region),
		CLI_VALUE("timeout", &timeout_s),
		CLI_OPT_END,
	};

	memset(&pl, 0, sizeof(pl));
	pl.c = c;
	if ((x = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return x;
	if (timeout_s != NULL) {
		if (ak_duration_parse(timeout_s, &secs) != AK_OK || secs == 0)
			return cli_usage_error(c, "bad --timeout '%s'", timeout_s);
		pl.opts.timeout_ms = (long)secs * 1000;
	}
	if (pl.all == (optind < argc))
		return cli_usage_error(c, pl.all ? "--all takes no PROFILE" : "missing PROFILE (or --all)");
	for (i = optind; i < argc; i++)
		if (ak_name_check(argv[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_NAME, NULL, "pull: '%s'", argv[i]);

	if ((x = pull_read(&pl, argv + optind, (size_t)(argc - optind))) == AK_OK &&
	    (x = pull_fetch(&pl)) == AK_OK)
		x = pull_store(&pl);
	items_free(pl.it, pl.n);
	return x != AK_OK ? x : pl.rc;
}
