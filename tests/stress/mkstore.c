/* mkstore.c - akmkstore: write a keystore holding N generated profiles (tests/stress/gen.h), directly
 * through the library, so a 10,000-profile store takes a second instead of 10,000 rewrites.
 *
 * usage: akmkstore PATH N [SEED] [PRESET]   (passphrase: one line on stdin; PRESET default insecure-test)
 * Refuses to overwrite PATH. Test tool only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_file.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "gen.h"

int
main(int argc, char **argv)
{
	struct ak_store *s = NULL;
	struct ak_kdf kdf;
	enum ak_kdf_preset preset = AK_KDF_INSECURE_TEST;
	uint8_t *key = NULL;
	char pass[1024], name[32], secret[GEN_SECRET_LEN + 1], model[32];
	unsigned n, seed = 1, i;
	size_t pl;
	enum ak_err r;
	int lockfd = -1, rc = 1;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: akmkstore PATH N [SEED] [PRESET]  (passphrase on stdin)\n");
		return 2;
	}
	n = (unsigned)strtoul(argv[2], NULL, 10);
	if (argc >= 4)
		seed = (unsigned)strtoul(argv[3], NULL, 10);
	if (argc == 5 && ak_kdf_preset_parse(argv[4], &preset) != AK_OK) {
		fprintf(stderr, "akmkstore: bad preset\n");
		return 2;
	}
	if (fgets(pass, sizeof(pass), stdin) == NULL) {
		fprintf(stderr, "akmkstore: no passphrase on stdin\n");
		return 2;
	}
	pl = strcspn(pass, "\r\n");
	pass[pl] = '\0';
	if (ak_smem_init() != 0)
		return 1;
	ak_smem_hook_cjson();
	if ((s = ak_store_new()) == NULL || (key = ak_smem_alloc(AK_KEY_BYTES)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		struct ak_profile *p = ak_profile_new();

		gen_name(i, name, sizeof(name));
		gen_secret(seed, i, secret);
		snprintf(model, sizeof(model), "model-%u", i);
		if (p == NULL || ak_profile_set_field(&p->name, name) != AK_OK ||
		    ak_profile_set_field(&p->provider, "anthropic") != AK_OK ||
		    ak_profile_set_field(&p->secret_var, "ANTHROPIC_API_KEY") != AK_OK ||
		    ak_profile_set_field(&p->secret, secret) != AK_OK ||
		    ak_profile_set_var(p, "ANTHROPIC_MODEL", model) != AK_OK) {
			ak_profile_free(p);
			fprintf(stderr, "akmkstore: cannot build profile %u\n", i);
			goto out;
		}
		p->created = p->rotated = 1700000000 + (int64_t)i;
		if ((r = ak_store_put(s, p, 0)) != AK_OK) {
			ak_profile_free(p);
			fprintf(stderr, "akmkstore: put: %s\n", ak_strerror(r));
			goto out;
		}
	}
	ak_kdf_new(&kdf, preset);
	if ((r = ak_kdf_derive(&kdf, pass, pl, key)) != AK_OK ||
	    (r = ak_store_prepare_dir(argv[1])) != AK_OK ||
	    (r = ak_store_lock(argv[1], 5000, &lockfd)) != AK_OK) {
		fprintf(stderr, "akmkstore: %s\n", ak_strerror(r));
		goto out;
	}
	{
		uint8_t *img = NULL;
		size_t len = 0;

		if ((r = ak_store_seal_image(s, &kdf, key, &img, &len)) != AK_OK ||
		    (r = ak_file_write_atomic(argv[1], img, len, 1)) != AK_OK) {
			free(img);
			fprintf(stderr, "akmkstore: %s: %s\n", argv[1], ak_strerror(r));
			goto out;
		}
		free(img);
	}
	rc = 0;
out:
	sodium_memzero(pass, sizeof(pass));
	ak_smem_free(key);
	ak_store_free(s);
	return rc;
}
