/* cmd_rm.c - akctl rm PROFILE: through the agent when it is unlocked on this keystore, else on the
 * file directly (passphrase, the same keystore transaction). Exit 5 when the profile does not exist. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

struct rm_arg {
	const char *name;
};

static enum ak_err
apply_remove(struct ak_store *s, void *arg)
{
	const struct rm_arg *a = arg;

	return ak_store_remove(s, a->name);
}

enum ak_err
cmd_rm(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct rm_arg ra;
	char detail[512];
	const char *name;
	int helped;
	enum ak_err rc, r;

	memset(&st, 0, sizeof(st));
	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != AK_OK)
		return rc;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "rm: keystore path");

	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (r == AK_ERR_UNTRUSTED_AGENT) {
		rc = cli_fail_agent(r, detail, "rm");
		goto out;
	}
	if (r == AK_OK && st.unlocked) {
		r = ak_client_remove(cl, name);
		if (r != AK_OK) {
			rc = r == AK_ERR_NO_PROFILE ? cli_fail(r, NULL, "rm: %s", name) :
			    cli_fail_client(cl, r, "rm");
			goto out;
		}
	} else {
		ak_client_close(cl);
		cl = NULL;
		detail[0] = '\0';
		ra.name = name;
		r = cli_store_update_direct(c, apply_remove, &ra, detail, sizeof(detail));
		if (r == AK_ERR_NO_PROFILE) {
			rc = cli_fail(r, NULL, "rm: %s", name);
			goto out;
		}
		if (r != AK_OK) {
			rc = cli_fail(r, detail, "rm: %s", c->store);
			goto out;
		}
	}
	cli_note("removed profile %s", name);
	rc = AK_OK;
out:
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}
