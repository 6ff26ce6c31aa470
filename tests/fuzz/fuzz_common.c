/* fuzz_common.c - fixtures shared by the targets and the corpus generator. */
#include <string.h>

#include "ak_smem.h"
#include "ak_store.h"
#include "fuzz.h"

int
fuzz_fixed_key(struct ak_kdf *kdf, uint8_t *key)
{
	ak_kdf_new(kdf, AK_KDF_INSECURE_TEST);
	/* Fixed, not random: the seed corpus carries the UNLOCK key, so it must be reproducible. */
	memcpy(kdf->salt, FUZZ_SALT, AK_SALT_BYTES);
	return ak_kdf_derive(kdf, FUZZ_PASSPHRASE, strlen(FUZZ_PASSPHRASE), key) == AK_OK ? 0 : -1;
}

static struct ak_profile *
mk(const char *name, const char *provider, const char *var, const char *secret, const char *desc,
    const char *pvar, const char *pval)
{
	struct ak_profile *p = ak_profile_new();

	if (p == NULL)
		return NULL;
	if (ak_profile_set_field(&p->name, name) != AK_OK ||
	    ak_profile_set_field(&p->provider, provider) != AK_OK ||
	    ak_profile_set_field(&p->secret_var, var) != AK_OK ||
	    ak_profile_set_field(&p->secret, secret) != AK_OK ||
	    ak_profile_set_field(&p->description, desc) != AK_OK ||
	    (pvar != NULL && ak_profile_set_var(p, pvar, pval) != AK_OK)) {
		ak_profile_free(p);
		return NULL;
	}
	p->created = 1700000000;
	p->rotated = 1700000100;
	return p;
}

struct ak_store *
fuzz_sample_store(void)
{
	struct ak_store *s = ak_store_new();
	struct ak_profile *p[3];
	size_t i;

	if (s == NULL)
		return NULL;
	p[0] = mk("work", "anthropic", "ANTHROPIC_API_KEY",
	    "sk-ant-api03-Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo-_xy9QAA",
	    "work key", "ANTHROPIC_BASE_URL", "https://api.anthropic.com");
	p[1] = mk("personal", "openai", "OPENAI_API_KEY",
	    "sk-proj-4fJ8kLm2Qw9zXc7Vb6Nn5Hh3Gg1Dd0Ss", "", "OPENAI_ORG_ID", "org-123");
	p[2] = mk("x.y_z-1", "generic", "TOKEN", "it's a \"secret\"\n$(rm -rf /)`\\'", "odd one", NULL,
	    NULL);
	for (i = 0; i < 3; i++) {
		if (p[i] == NULL || ak_store_put(s, p[i], 0) != AK_OK) {
			for (; i < 3; i++)
				ak_profile_free(p[i]);
			ak_store_free(s);
			return NULL;
		}
	}
	/* ak_store_put stamped the current time: pin the times so the seeds are reproducible. */
	for (i = 0; i < s->n; i++) {
		s->p[i]->created = 1700000000;
		s->p[i]->rotated = 1700000100;
	}
	return s;
}
