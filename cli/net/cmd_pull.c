/* cmd_pull.c - akctl pull PROFILE...|--all: re-fetch profiles imported from a cloud secret manager.
 *
 * A team rotates a key in its secret manager; each laptop runs `akctl pull`. The profile remembers its
 * URI in `source` (set by import). Needs an unlocked agent, which writes the result. Three phases so
 * no agent connection sits idle across a slow fetch: read the sources, fetch, then for each changed
 * value re-read the profile and store it with only the secret replaced (so edits made meanwhile to its
 * other fields survive). The agent moves `rotated` itself when the secret changes.
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
	char *source;   /* secure copy of the profile's source (a URI holds no secret) */
	char *value;    /* secure: fetched value, wiped in items_free */
	size_t value_len;
	int skip;       /* 1: nothing to do (no cloud source with --all, or failed) */
};

static void
items_free(struct pull_item *it, size_t n)
{
	size_t i;

	for (i = 0; it != NULL && i < n; i++) {
		ak_smem_free(it[i].source);
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

/* First failure wins the exit code; later ones only print. */
static void
note_rc(int *rc, int code)
{
	if (*rc == 0)
		*rc = code;
}

int
cmd_pull(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "region", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cloud_opts opts = { NULL, 0 };
	struct ak_client *cl = NULL;
	struct ak_list_entry *le = NULL;
	struct ak_profile *p = NULL;
	struct pull_item *it = NULL;
	uint32_t nle = 0, secs;
	size_t n = 0, i, slen;
	char detail[512], clean[512], cbuf[AK_NAME_MAX + 16];
	int ch, all = 0, rc = 0, x, netup = 0, ncloud = 0;
	enum ak_err r;

	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			all = 1;
			break;
		case 'r':
			opts.region = optarg;
			break;
		case 't':
			if (ak_duration_parse(optarg, &secs) != AK_OK || secs == 0)
				return cli_usage_error(c, "bad --timeout '%s'", optarg);
			opts.timeout_ms = (long)secs * 1000;
			break;
		case 'h':
			return cli_cmd_help(c->cmd);
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	if (all == (optind < argc))
		return cli_usage_error(c, all ? "--all takes no PROFILE" : "missing PROFILE (or --all)");
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (ak_name_check(argv[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_NAME, NULL, "pull: '%s'", argv[i]);

	/* Phase 1: which profiles, and their sources. */
	if ((x = cli_agent_unlocked(c, &cl)) != 0)
		return x;
	if (all) {
		if ((r = ak_client_list(cl, &le, &nle)) != AK_OK) {
			rc = cli_fail_client(cl, r, "pull");
			goto out;
		}
		n = nle;
	} else {
		n = (size_t)(argc - optind);
	}
	if ((it = calloc(n > 0 ? n : 1, sizeof(*it))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "pull");
		goto out;
	}
	for (i = 0; i < n; i++) {
		snprintf(it[i].name, sizeof(it[i].name), "%s", all ? le[i].name : argv[optind + (int)i]);
		if ((r = ak_client_get(cl, it[i].name, &p)) != AK_OK) {
			it[i].skip = 1;
			if (r == AK_ERR_NO_AGENT || r == AK_ERR_LOCKED) {
				rc = cli_fail_client(cl, r, "pull");
				goto out;
			}
			note_rc(&rc, cli_fail_client(cl, r, ctx(it[i].name, cbuf, sizeof(cbuf))));
			continue;
		}
		if (!cloud_is_uri(p->source)) {
			it[i].skip = 1;
			if (!all) {
				fprintf(stderr, "akctl: pull: %s: not imported from a cloud source\n", it[i].name);
				note_rc(&rc, 1);
			}
		} else if ((it[i].source = ak_smem_strdup(p->source)) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "pull");
			goto out;
		} else {
			ncloud++;
		}
		ak_profile_free(p);
		p = NULL;
	}
	ak_client_close(cl);
	cl = NULL;
	if (all && ncloud == 0) {
		cli_note("pull: no profile was imported from a cloud source");
		goto out;
	}

	/* Phase 2: fetch, with no agent connection open. */
	if (ncloud > 0) {
		if ((r = net_init()) != AK_OK) {
			rc = cli_fail(r, NULL, "pull: network");
			goto out;
		}
		netup = 1;
	}
	for (i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		r = cloud_fetch(it[i].source, &opts, &it[i].value, &it[i].value_len, detail, sizeof(detail));
		if (r != AK_OK) {
			it[i].skip = 1;
			/* The detail is the whole story ("Vault: HTTP 403: permission denied"). */
			cli_sanitize(detail, clean, sizeof(clean));
			fprintf(stderr, "akctl: pull: %s: %s\n", it[i].name,
			    clean[0] != '\0' ? clean : ak_strerror(r));
			note_rc(&rc, ak_err_exit_code(r));
		}
	}

	/* Phase 3: store what changed. */
	for (i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		if (cl == NULL && (x = cli_agent_unlocked(c, &cl)) != 0) {
			rc = x;
			goto out;
		}
		if ((r = ak_client_get(cl, it[i].name, &p)) != AK_OK) {
			note_rc(&rc, cli_fail_client(cl, r, ctx(it[i].name, cbuf, sizeof(cbuf))));
			continue;
		}
		if (strcmp(p->source, it[i].source) != 0) {
			fprintf(stderr, "akctl: pull: %s: changed while fetching; not updated\n", it[i].name);
			note_rc(&rc, 1);
		} else if ((slen = strlen(p->secret)) == it[i].value_len &&
		    sodium_memcmp(p->secret, it[i].value, slen) == 0) {
			printf("%s: unchanged\n", it[i].name);
		} else if ((r = ak_profile_set_field(&p->secret, it[i].value)) != AK_OK ||
		    (r = ak_profile_validate(p)) != AK_OK) {
			note_rc(&rc, cli_fail(r, NULL, "pull: %s", it[i].name));
		} else if ((r = ak_client_add(cl, p, 1)) != AK_OK) {
			note_rc(&rc, cli_fail_client(cl, r, ctx(it[i].name, cbuf, sizeof(cbuf))));
		} else {
			printf("%s: updated (rotated)\n", it[i].name);
		}
		ak_profile_free(p);
		p = NULL;
	}
	fflush(stdout);
out:
	if (netup)
		net_cleanup();
	ak_profile_free(p);
	items_free(it, n);
	if (le != NULL)
		ak_client_list_free(le, nle);
	ak_client_close(cl);
	return rc;
}
