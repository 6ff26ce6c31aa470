/* cmd_init.c - akctl init: create a new, empty keystore. Never overwrites one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_file.h"
#include "ak_smem.h"
#include "cli.h"

enum ak_err
cmd_init(struct cli *c, int argc, char **argv)
{
	enum ak_kdf_preset preset = AK_KDF_MODERATE;
	struct ak_store *s = NULL;
	struct ak_kdf kdf;
	struct stat sb;
	uint8_t *key = NULL, *img = NULL;
	char *pass = NULL;
	char prompt[AK_PATH_MAX + 64], detail[256];
	size_t passlen = 0, imglen = 0, stale = 0;
	int lockfd = -1, given, helped;
	enum ak_err rc, r;

	if ((rc = cli_kdf_opts(c, argc, argv, &preset, &given, &helped)) != AK_OK || helped)
		return rc;
	if ((r = cli_store_path(c)) != AK_OK)
		return cli_fail(r, NULL, "init: keystore path");

	/* Check before asking anything; the exclusive write below is what really guarantees it. */
	if (lstat(c->store, &sb) == 0) {
		fprintf(stderr, "akctl: init: keystore already exists at %s\n", c->store);
		return AK_ERR_STORE_EXISTS;
	}
	if ((r = ak_store_prepare_dir(c->store)) != AK_OK) {
		rc = cli_fail(r, NULL, "init: %s", c->store);
		goto out;
	}
	cli_kdf_warn(preset);

	snprintf(prompt, sizeof(prompt), "New passphrase for %s: ", c->store);
	detail[0] = '\0';
	if ((r = cli_pass_read(c, prompt, 1, &pass, &passlen, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "init: passphrase");
		goto out;
	}
	ak_kdf_new(&kdf, preset);
	if ((rc = cli_pass_derive(c, &kdf, pass, passlen, &key)) != 0)
		goto out;
	ak_smem_free(pass); /* wipes: not needed past the KDF */
	pass = NULL;
	if ((s = ak_store_new()) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "init");
		goto out;
	}
	if ((r = ak_store_seal_image(s, &kdf, key, &img, &imglen)) != AK_OK) {
		rc = cli_fail(r, NULL, "init: encrypting");
		goto out;
	}
	if ((r = ak_store_lock(c->store, AK_STORE_LOCK_MS, &lockfd)) != AK_OK) {
		rc = cli_fail(r, NULL, "init: locking %s", c->store);
		goto out;
	}
	/* Temp files a killed writer left of an earlier keystore at this path: older secrets, not ours. */
	if ((r = ak_file_stale_temps(c->store, 1, &stale)) != AK_OK) {
		rc = cli_fail(r, NULL, "init: removing stale temp files next to %s", c->store);
		goto out;
	}
	if ((r = ak_file_write_atomic(c->store, img, imglen, 1)) != AK_OK) {
		if (r == AK_ERR_STORE_EXISTS)
			fprintf(stderr, "akctl: init: keystore already exists at %s\n", c->store);
		rc = r == AK_ERR_STORE_EXISTS ? r :
		    cli_fail(r, NULL, "init: writing %s", c->store);
		goto out;
	}
	printf("akctl: created keystore at %s\n", c->store);
	rc = AK_OK;
out:
	if (lockfd >= 0)
		close(lockfd);
	free(img); /* ciphertext: not secret */
	ak_store_free(s);
	ak_smem_free(key);
	ak_smem_free(pass);
	return rc;
}
