/* cmd_passwd.c - akctl passwd: re-key the keystore file directly (old + new passphrase), then hand the
 * new key to the agent if it is unlocked on this keystore.
 *
 * The old passphrase is checked before the new one is asked (no typing twice for nothing), and the
 * keystore transaction (which takes the lock) runs only after both are read, so a person typing never
 * holds up the agent's writes. Under the lock the file is re-read and must still open with the old key:
 * nothing written in between is lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"
#include "cli.h"

enum ak_err
cmd_passwd(struct cli *c, int argc, char **argv)
{
	enum ak_kdf_preset preset = AK_KDF_MODERATE;
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_store *s = NULL;
	struct ak_header hdr, hdr2;
	struct ak_store_txn t;
	struct ak_kdf newkdf;
	uint8_t *file = NULL, *oldkey = NULL, *newkey = NULL;
	char *pass = NULL;
	char prompt[AK_PATH_MAX + 64], detail[512];
	size_t filelen = 0, passlen = 0, hdrlen = 0;
	uint32_t lifetime;
	int have_preset, helped;
	enum ak_err rc, r;

	memset(&st, 0, sizeof(st));
	if ((rc = cli_kdf_opts(c, argc, argv, &preset, &have_preset, &helped)) != AK_OK || helped)
		return rc;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "passwd: keystore path");

	/* 1. Old passphrase, checked against the file as it is now. */
	if ((r = ak_store_read(c->store, &file, &filelen)) != AK_OK ||
	    (r = ak_header_parse(file, filelen, &hdr, &hdrlen)) != AK_OK) {
		rc = cli_fail(r, NULL, "passwd: %s", c->store);
		goto out;
	}
	snprintf(prompt, sizeof(prompt), "Old passphrase for %s: ", c->store);
	if ((r = cli_pass_read(c, prompt, 0, &pass, &passlen, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "passwd: old passphrase");
		goto out;
	}
	oldkey = ak_smem_alloc(AK_KEY_BYTES);
	newkey = ak_smem_alloc(AK_KEY_BYTES);
	if (oldkey == NULL || newkey == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "passwd");
		goto out;
	}
	if ((r = ak_kdf_derive(&hdr.kdf, pass, passlen, oldkey)) != AK_OK) {
		rc = cli_fail(r, NULL, "passwd: key derivation");
		goto out;
	}
	ak_smem_free(pass);
	pass = NULL;
	if ((r = ak_store_open_image(file, filelen, oldkey, &hdr2, &s)) != AK_OK) {
		rc = cli_fail(r, NULL, "passwd: %s", c->store);
		goto out;
	}
	ak_store_free(s);
	s = NULL;
	free(file);
	file = NULL;

	/* 2. New passphrase and fresh KDF parameters (same preset unless --kdf). */
	if (!have_preset)
		preset = hdr.kdf.preset;
	snprintf(prompt, sizeof(prompt), "New passphrase for %s: ", c->store);
	if ((r = cli_pass_read(c, prompt, 1, &pass, &passlen, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "passwd: new passphrase");
		goto out;
	}
	if (have_preset)
		cli_kdf_warn(preset);
	ak_kdf_new(&newkdf, preset);
	if ((r = ak_kdf_derive(&newkdf, pass, passlen, newkey)) != AK_OK) {
		rc = cli_fail(r, NULL, "passwd: key derivation");
		goto out;
	}
	ak_smem_free(pass);
	pass = NULL;

	/* 3. One keystore transaction: under the lock, re-read (keep whatever was written meanwhile), open
	 * with the old key, remove stale temp files (older generations that the old passphrase opens),
	 * seal under the new key, replace. */
	memset(&t, 0, sizeof(t));
	t.path = c->store;
	t.lock_timeout_ms = AK_STORE_LOCK_MS;
	t.key = oldkey;
	t.new_kdf = &newkdf;
	t.new_key = newkey;
	if ((r = ak_store_txn_run(&t)) != AK_OK) {
		/* AUTH: someone re-keyed it between our two reads. */
		rc = cli_fail(r == AK_ERR_AUTH ? AK_ERR_STORE_CHANGED : r, NULL, "passwd: %s", c->store);
		goto out;
	}
	cli_note("passphrase changed for %s", c->store);

	/* 4. An agent unlocked on this keystore keeps working: give it the new key, same time left. */
	if (cli_agent_for_store(c, &cl, &st, detail, sizeof(detail)) == AK_OK && st.unlocked) {
		lifetime = st.lifetime_left;
		if (lifetime == 0)
			lifetime = 1; /* about to expire: 0 would mean "agent default" */
		if ((r = ak_client_unlock(cl, newkey, lifetime)) != AK_OK) {
			rc = cli_fail_client(cl, r, "passwd: re-unlocking the agent with the new key");
			goto out;
		}
	}
	rc = AK_OK;
out:
	free(file);
	ak_store_free(s);
	ak_smem_free(pass);
	ak_smem_free(oldkey);
	ak_smem_free(newkey);
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}
