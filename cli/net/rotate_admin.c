/* rotate_admin.c - rotate's admin API steps (akctl-net): deactivate the old key at Anthropic when a
 * rotation finishes, and make the new key an OpenAI project service account's (rotate --create).
 *
 * Keys come from the agent into the secure arena and are wiped here; the connection to the agent is
 * closed before any network wait. Only a key's name and id (never the key, nor its hint's source) are
 * printed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "cli.h"

/* The previous main key of name, while kept: a secure copy in *key, or NULL when none is kept. */
static enum ak_err
previous_key(struct ak_client *cl, const char *name, char **key)
{
	struct ak_profile *cur = NULL, *prev = NULL;
	enum ak_err r;

	*key = NULL;
	if ((r = ak_client_get(cl, name, &cur)) != AK_OK)
		goto out;
	if ((r = ak_client_get_kind(cl, AK_MSG_GET_PREVIOUS, name, &prev)) != AK_OK)
		goto out;
	/* GET_PREVIOUS swaps in every kept previous value: the main key is one only if it differs. */
	if (strlen(cur->secret) == strlen(prev->secret) &&
	    sodium_memcmp(cur->secret, prev->secret, strlen(cur->secret)) == 0) {
		r = AK_ERR_NO_PREVIOUS;
		goto out;
	}
	if ((*key = ak_smem_strdup(prev->secret)) == NULL)
		r = AK_ERR_NOMEM;
out:
	ak_profile_free(cur); /* wipes */
	ak_profile_free(prev);
	return r;
}

enum ak_err
cli_admin_deactivate(struct cli *c, const char *name, const char *admin_opt, const char *hint)
{
	struct ak_client *cl = NULL;
	struct admin a;
	struct admin_key k;
	char detail[512], *key = NULL;
	enum ak_err rc, r;

	memset(&a, 0, sizeof(a));
	detail[0] = '\0';
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		return rc;
	if (hint == NULL && (r = previous_key(cl, name, &key)) != AK_OK) {
		rc = r == AK_ERR_NO_PREVIOUS ?
		    cli_fail(r, "nothing to deactivate", "rotate: %s", name) :
		    cli_fail_client(cl, r, "rotate");
		goto out;
	}
	if ((r = admin_open(cl, ADMIN_ANTHROPIC, admin_opt, &a, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "rotate: %s: --deactivate", name);
		goto out;
	}
	ak_client_close(cl); /* no connection held across the network wait */
	cl = NULL;
	if ((r = admin_find_key(&a, NULL, hint, key, &k, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "rotate: %s: not finished", name);
		goto out;
	}
	if (strcmp(k.status, "inactive") == 0) {
		printf("the old key of %s, \"%s\" (%s), was already inactive\n", name, k.name, k.id);
	} else {
		if ((r = admin_deactivate(&a, k.id, &k, detail, sizeof(detail))) != AK_OK) {
			rc = cli_fail(r, detail, "rotate: %s: not finished", name);
			goto out;
		}
		printf("deactivated the old key of %s: \"%s\" (%s)\n", name, k.name, k.id);
	}
	fflush(stdout);
	rc = AK_OK;
out:
	ak_smem_free(key); /* wipes */
	admin_close(&a);
	ak_client_close(cl);
	return rc;
}

enum ak_err
cli_admin_create(struct cli *c, const char *name, const char *admin_opt, const char *project,
    char **key)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	struct admin a;
	char detail[512], proj[ADMIN_ID_MAX], sa[AK_NAME_MAX + 64], id[ADMIN_ID_MAX], when[32];
	time_t now = time(NULL);
	struct tm tm;
	enum ak_err rc, r;
	size_t i;

	*key = NULL;
	memset(&a, 0, sizeof(a));
	proj[0] = '\0';
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		return rc;
	if ((r = ak_client_get(cl, name, &p)) != AK_OK) {
		rc = cli_fail_client(cl, r, "rotate");
		goto out;
	}
	if (strcmp(p->provider, "openai") != 0) {
		rc = cli_fail(AK_ERR_UNSUPPORTED, "only OpenAI's admin API makes keys (project service "
		    "accounts); Anthropic's makes none: create the key in the Console", "rotate: %s: --create",
		    name);
		goto out;
	}
	if (project != NULL)
		snprintf(proj, sizeof(proj), "%s", project);
	for (i = 0; project == NULL && i < p->nvars; i++)
		if (strcmp(p->vars[i].name, "OPENAI_PROJECT_ID") == 0 && !p->vars[i].secret)
			snprintf(proj, sizeof(proj), "%s", p->vars[i].value);
	if ((r = admin_open(cl, ADMIN_OPENAI, admin_opt, &a, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "rotate: %s: --create", name);
		goto out;
	}
	ak_client_close(cl);
	cl = NULL;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
	snprintf(sa, sizeof(sa), "akagent-%s-%s", name, when);
	if ((r = admin_create_sa(&a, proj, sa, key, id, sizeof(id), detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "rotate: %s: --create", name);
		goto out;
	}
	cli_note("rotate: %s: created service account \"%s\" (%s) in project %s", name, sa, id, proj);
	rc = AK_OK;
out:
	ak_profile_free(p);
	admin_close(&a);
	ak_client_close(cl);
	return rc;
}
