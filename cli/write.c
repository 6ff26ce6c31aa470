/* write.c - akctl's keystore writes (add, import, set, rename, cp, rotate, rm): through the agent when it
 * is unlocked on akctl's keystore (it owns the file while unlocked), else directly on the file: the
 * passphrase, then the same keystore transaction the agent runs (ak_store_update).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ak_smem.h"
#include "cli.h"

enum ak_err
cli_store_update_direct(struct cli *c, ak_store_apply_fn apply, void *arg, char *detail,
    size_t detaillen)
{
	char prompt[AK_PATH_MAX + 64];
	char *pass = NULL;
	size_t passlen = 0;
	enum ak_err r;

	/* Fail early (no prompt) when there is no file to open. */
	if (access(c->store, F_OK) != 0)
		return AK_ERR_NO_STORE;
	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", c->store);
	if ((r = cli_pass_read(c, prompt, 0, &pass, &passlen, detail, detaillen)) != AK_OK)
		goto out;
	r = ak_store_update_pass(c->store, pass, passlen, apply, arg);
out:
	ak_smem_free(pass); /* wipes */
	return r;
}

enum ak_err
cli_write(struct cli *c, cli_agent_write_fn agent_write, ak_store_apply_fn apply, void *arg, int *direct,
    char *detail, size_t detaillen)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	enum ak_err r;

	memset(&st, 0, sizeof(st));
	if (direct != NULL)
		*direct = 0;
	if (detaillen > 0)
		detail[0] = '\0';
	if ((r = cli_store_path(c)) != AK_OK)
		return r;
	r = cli_agent_for_store(c, &cl, &st, detail, detaillen);
	if (r == AK_ERR_UNTRUSTED_AGENT)
		goto out; /* never fall back quietly past an impostor: the user must see it */
	if (r == AK_OK && st.unlocked) {
		if ((r = agent_write(cl, arg)) != AK_OK && detaillen > 0)
			cli_sanitize(ak_client_detail(cl), detail, detaillen);
		goto out;
	}
	ak_client_close(cl);
	cl = NULL;
	if (detaillen > 0)
		detail[0] = '\0';
	if (direct != NULL)
		*direct = 1;
	r = cli_store_update_direct(c, apply, arg, detail, detaillen);
out:
	ak_status_clear(&st);
	ak_client_close(cl);
	return r;
}
