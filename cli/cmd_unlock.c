/* cmd_unlock.c - akctl unlock / lock.
 *
 * The KDF runs here, not in the agent: we read the passphrase and the keystore header, derive the key
 * and send only the 32-byte key. The passphrase never leaves this process and is wiped right after
 * the KDF; the key is wiped after the request.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

int
cmd_unlock(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lifetime", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_header hdr;
	uint8_t *file = NULL, *key = NULL;
	char *pass = NULL;
	char prompt[AK_PATH_MAX + 64], detail[512];
	size_t filelen = 0, passlen = 0, hdrlen = 0;
	uint32_t lifetime = 0, secs;
	int ch, rc;
	enum ak_err r;

	memset(&st, 0, sizeof(st));
	while ((ch = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (ak_duration_parse(optarg, &secs) != AK_OK)
				return cli_usage_error(c, "bad duration '%s' (e.g. 90s, 30m, 8h, 1h30m, 0 = no "
				    "limit)", optarg);
			/* 0 on the wire means "agent default"; the user's 0 means "no limit". */
			lifetime = secs == 0 ? AK_LIFETIME_NONE : secs;
			break;
		case 'h':
			return cli_cmd_help(c->cmd);
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);

	/* An agent of ours serving akctl's own keystore, or nothing is sent: the key is derived under the
	 * parameters of that keystore's header, never of a file an agent names. */
	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (r != AK_OK) {
		rc = cli_fail_agent(r, detail, "unlock");
		goto out;
	}
	if (st.unlocked) {
		/* Never prompt: an empty key only resets the lifetime. */
		if ((r = ak_client_unlock(cl, NULL, lifetime)) != AK_OK) {
			rc = cli_fail_client(cl, r, "unlock");
			goto out;
		}
		cli_note("agent already unlocked");
		rc = 0;
		goto out;
	}

	if ((r = ak_store_read(c->store, &file, &filelen)) != AK_OK) {
		rc = cli_fail(r, NULL, "unlock: %s", c->store);
		goto out;
	}
	if ((r = ak_header_parse(file, filelen, &hdr, &hdrlen)) != AK_OK) {
		rc = cli_fail(r, NULL, "unlock: %s", c->store);
		goto out;
	}
	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", c->store);
	detail[0] = '\0';
	if ((r = cli_pass_read(c, prompt, 0, &pass, &passlen, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "unlock: passphrase");
		goto out;
	}
	if ((rc = cli_pass_derive(c, &hdr.kdf, pass, passlen, &key)) != 0)
		goto out;
	ak_smem_free(pass); /* wipes */
	pass = NULL;
	if ((r = ak_client_unlock(cl, key, lifetime)) != AK_OK) {
		rc = cli_fail_client(cl, r, "unlock");
		goto out;
	}
	rc = 0;
out:
	ak_smem_free(pass);
	ak_smem_free(key);
	free(file); /* ciphertext and header only */
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}

int
cmd_lock(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	char detail[AK_CLIENT_DETAIL_MAX];
	int rc;
	enum ak_err r;

	if ((rc = cli_opts_help_only(c, argc, argv)) != 0)
		return rc < 0 ? 0 : rc;
	if (optind != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	/* Lock whichever agent of ours answers: locking is always safe. */
	if ((r = ak_client_connect(NULL, 0, &cl, detail, sizeof(detail))) != AK_OK)
		return cli_fail_agent(r, detail, "lock");
	r = ak_client_lock(cl);
	rc = r == AK_OK ? 0 : cli_fail_client(cl, r, "lock");
	ak_client_close(cl);
	return rc;
}
