/* cmd_unlock.c - akctl unlock / lock.
 *
 * The KDF runs here, not in the agent: we read the passphrase and the keystore header, derive the key
 * and send only the 32-byte key. The passphrase never leaves this process and is wiped right after
 * the KDF; the key is wiped after the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"


/* After a successful unlock at a terminal: what the agent holds now and when it locks itself.
 * Nothing is said to a script (stderr not a terminal): its exit code says enough. */
static void
unlock_report(struct ak_client *cl, const char *what)
{
	struct ak_status st;
	char when[32], idle[32], lim[96];
	struct tm tm;
	time_t t;

	if (!isatty(STDERR_FILENO))
		return;
	memset(&st, 0, sizeof(st));
	if (ak_client_status(cl, &st) != AK_OK || !st.unlocked) {
		ak_status_clear(&st);
		return;
	}
	if (st.lifetime_left == AK_LIFETIME_NONE) {
		snprintf(when, sizeof(when), "never");
	} else {
		t = time(NULL) + (time_t)st.lifetime_left;
		if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%H:%M", &tm) == 0)
			snprintf(when, sizeof(when), "?");
	}
	if (st.idle_timeout != AK_LIFETIME_NONE) {
		ak_duration_format(st.idle_timeout, idle, sizeof(idle));
		snprintf(lim, sizeof(lim), "locks at %s or after %s idle", when, idle);
	} else {
		snprintf(lim, sizeof(lim), st.lifetime_left == AK_LIFETIME_NONE ? "no time limit" :
		    "locks at %s", when);
	}
	fprintf(stderr, "%s: %u profile%s; %s\n", what, (unsigned)st.nprofiles,
	    st.nprofiles == 1 ? "" : "s", lim);
	ak_status_clear(&st);
}

enum ak_err
cli_unlock_pass(struct cli *c, struct ak_client *cl, uint32_t lifetime, int quiet_no_pass)
{
	struct ak_header hdr;
	uint8_t file[AK_HEADER_MAX], *key = NULL;
	char *pass = NULL;
	char prompt[AK_PATH_MAX + 64], detail[512];
	const char *askpass = getenv("AKCTL_ASKPASS");
	size_t filelen = 0, passlen = 0, hdrlen = 0;
	int tries, interactive;
	enum ak_err rc, r = AK_OK;

	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "%s: keystore path", c->cmd);
	if ((r = ak_store_read_head(c->store, file, &filelen)) != AK_OK) {
		rc = r == AK_ERR_NO_STORE ? cli_fail(r, "run 'akctl init' first", "%s: %s", c->cmd, c->store) :
		    cli_fail(r, NULL, "%s: %s", c->cmd, c->store);
		goto out;
	}
	if ((r = ak_header_parse(file, filelen, &hdr, &hdrlen)) != AK_OK) {
		rc = cli_fail(r, NULL, "%s: %s", c->cmd, c->store);
		goto out;
	}
	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", c->store);
	/* Only a person typing gets another go; a descriptor or a program gives the same answer. */
	interactive = c->pass_fd < 0 && (askpass == NULL || askpass[0] == '\0');
	for (tries = 0;; tries++) {
		detail[0] = '\0';
		if ((r = cli_pass_read(c, prompt, 0, &pass, &passlen, detail, sizeof(detail))) != AK_OK) {
			if (quiet_no_pass && r == AK_ERR_NO_PASSPHRASE)
				rc = cli_fail_client(NULL, AK_ERR_LOCKED, c->cmd);
			else
				rc = cli_fail(r, detail, "%s: passphrase", c->cmd);
			goto out;
		}
		if ((rc = cli_pass_derive(c, &hdr.kdf, pass, passlen, &key)) != 0)
			goto out;
		ak_smem_free(pass); /* wipes */
		pass = NULL;
		r = ak_client_unlock(cl, key, lifetime);
		ak_smem_free(key);
		key = NULL;
		if (r != AK_ERR_AUTH || !interactive || tries + 1 >= CLI_PASS_TRIES)
			break;
		fprintf(stderr, "akctl: %s: wrong passphrase, try again\n", c->cmd);
	}
	if (r != AK_OK) {
		rc = cli_fail_client(cl, r, c->cmd);
		goto out;
	}
	unlock_report(cl, "unlocked");
	rc = AK_OK;
out:
	ak_smem_free(pass);
	ak_smem_free(key);
	return rc;
}

/* 1 when the unlocked agent wiped a profile whose own lifetime ended. */
static int
any_expired(struct ak_client *cl)
{
	struct ak_list_entry *e = NULL;
	uint32_t n = 0, i;
	int any = 0;

	if (ak_client_list(cl, &e, &n) != AK_OK)
		return 0;
	for (i = 0; i < n; i++)
		any |= e[i].expired;
	ak_client_list_free(e, n);
	return any;
}

enum ak_err
cmd_unlock(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[512];
	uint32_t lifetime = 0, secs;
	const char *lifetime_s = NULL;
	int have_t, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		{ .name = "lifetime", .short_name = 't', .kind = AK_OPT_VALUE, .value = &lifetime_s },
		CLI_OPT_END,
	};

	memset(&st, 0, sizeof(st));
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if ((have_t = lifetime_s != NULL)) {
		if (ak_duration_parse(lifetime_s, &secs) != AK_OK)
			return cli_usage_error(c, "bad duration '%s' (e.g. 90s, 30m, 8h, 1h30m, 0 = no "
			    "limit)", lifetime_s);
		/* 0 on the wire means "agent default"; the user's 0 means "no limit". */
		lifetime = secs == 0 ? AK_LIFETIME_NONE : secs;
	}
	if (optind != argc)
		return cli_no_operand(c, argv);

	/* An agent of ours serving akctl's own keystore, or nothing is sent: the key is derived under the
	 * parameters of that keystore's header, never of a file an agent names. */
	if ((r = cli_store_path(c)) == AK_OK && access(c->store, F_OK) != 0 && errno == ENOENT) {
		fprintf(stderr, "akctl: unlock: no keystore at %s: run 'akctl init' first\n", c->store);
		rc = AK_ERR_NO_STORE;
		goto out;
	}
	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (r != AK_OK) {
		rc = cli_fail_agent(r, detail, "unlock");
		goto out;
	}
	if (st.unlocked && !have_t && any_expired(cl)) {
		/* A profile's own lifetime ended: only the key brings its secrets back. */
		cli_note("unlock: a profile's lifetime ended: reading the keystore again");
	} else if (st.unlocked) {
		if (!have_t) {
			/* Nothing to change: a plain unlock never moves the deadline. */
			if (isatty(STDERR_FILENO))
				unlock_report(cl, "already unlocked");
			else
				cli_note("agent already unlocked");
			rc = AK_OK;
			goto out;
		}
		/* Without the key the agent only shortens the lifetime; a longer one needs the
		 * passphrase, as on the first unlock. */
		r = ak_client_unlock(cl, NULL, lifetime);
		if (r == AK_OK) {
			unlock_report(cl, "lifetime shortened");
			rc = AK_OK;
			goto out;
		}
		if (r != AK_ERR_DENIED) {
			rc = cli_fail_client(cl, r, "unlock");
			goto out;
		}
		cli_note("unlock: a longer lifetime needs the passphrase");
	}
	rc = cli_unlock_pass(c, cl, lifetime, 0);
out:
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}

enum ak_err
cmd_lock(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	char detail[AK_CLIENT_DETAIL_MAX];
	int helped;
	enum ak_err rc, r;

	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (optind != argc)
		return cli_no_operand(c, argv);
	/* Lock whichever agent of ours answers: locking is always safe. */
	if ((r = ak_client_connect(NULL, 0, &cl, detail, sizeof(detail))) != AK_OK)
		return cli_fail_agent(r, detail, "lock");
	r = ak_client_lock(cl);
	rc = r == AK_OK ? AK_OK : cli_fail_client(cl, r, "lock");
	if (rc == AK_OK && isatty(STDERR_FILENO))
		fprintf(stderr, "locked: every secret wiped from the agent\n");
	ak_client_close(cl);
	return rc;
}
