/* kdf.c - Argon2id13 key derivation and its named cost presets.
 *
 * The presets are libsodium's own (so "moderate" means what libsodium means by it), plus
 * "insecure-test", the cheapest parameters Argon2id accepts, which the file records so that
 * `akctl status` can warn about it.
 */
#include <string.h>

#include <sodium.h>

#include "ak_store.h"

static const struct {
	const char *name;
	enum ak_kdf_preset preset;
	uint64_t opslimit;
	uint64_t memlimit;
} presets[] = {
	{ "insecure-test", AK_KDF_INSECURE_TEST, AK_KDF_OPS_MIN, AK_KDF_MEM_MIN },
	{ "interactive", AK_KDF_INTERACTIVE, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE },
	{ "moderate", AK_KDF_MODERATE, crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
	    crypto_pwhash_argon2id_MEMLIMIT_MODERATE },
	{ "sensitive", AK_KDF_SENSITIVE, crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE,
	    crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE },
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

/* The header's accepted range is exactly the presets' span. */
_Static_assert(AK_KDF_OPS_MAX == crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE, "ops max is sensitive");
_Static_assert(AK_KDF_MEM_MAX == crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE, "mem max is sensitive");
_Static_assert(AK_KDF_OPS_MIN == crypto_pwhash_argon2id_OPSLIMIT_MIN, "ops min is Argon2id's");
_Static_assert(AK_KDF_MEM_MIN == crypto_pwhash_argon2id_MEMLIMIT_MIN, "mem min is Argon2id's");

enum ak_err
ak_kdf_preset_parse(const char *s, enum ak_kdf_preset *out)
{
	size_t i;

	if (s == NULL)
		return AK_ERR_INVALID;
	for (i = 0; i < NPRESETS; i++) {
		if (strcmp(s, presets[i].name) == 0) {
			if (out != NULL)
				*out = presets[i].preset;
			return AK_OK;
		}
	}
	return AK_ERR_INVALID;
}

const char *
ak_kdf_preset_name(enum ak_kdf_preset p)
{
	size_t i;

	for (i = 0; i < NPRESETS; i++)
		if (presets[i].preset == p)
			return presets[i].name;
	/* Not reachable with a valid enum; a name that no parser accepts. */
	return "unknown";
}

void
ak_kdf_new(struct ak_kdf *kdf, enum ak_kdf_preset p)
{
	size_t i, k = 2; /* moderate, the default, if p is out of range */

	for (i = 0; i < NPRESETS; i++)
		if (presets[i].preset == p)
			k = i;
	memset(kdf, 0, sizeof(*kdf));
	kdf->preset = presets[k].preset;
	kdf->opslimit = presets[k].opslimit;
	kdf->memlimit = presets[k].memlimit;
	randombytes_buf(kdf->salt, sizeof(kdf->salt));
}

int
ak_kdf_is_weak(const struct ak_kdf *kdf)
{
	return kdf->opslimit < crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE ||
	    kdf->memlimit < crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
}

/*
 * The header is not authenticated until after the KDF has run, so its parameters are attacker input:
 * a forged "opslimit 32, memlimit 4 GiB" would make every unlock allocate 4 GiB and spin for minutes.
 * Nothing above the strongest preset akctl can create (sensitive) is accepted, nothing below the
 * cheapest Argon2id allows (insecure-test), so the worst a forged header costs is one sensitive
 * derivation -- what a real store of that preset costs anyway.
 */
int
ak_kdf_in_range(const struct ak_kdf *kdf)
{
	return kdf->opslimit >= AK_KDF_OPS_MIN && kdf->opslimit <= AK_KDF_OPS_MAX &&
	    kdf->memlimit >= AK_KDF_MEM_MIN && kdf->memlimit <= AK_KDF_MEM_MAX &&
	    kdf->memlimit <= SIZE_MAX;
}

/* The caller wipes pass and key (key is wiped here too when derivation fails). */
enum ak_err
ak_kdf_derive(const struct ak_kdf *kdf, const char *pass, size_t passlen, uint8_t *key)
{
	if (kdf == NULL || key == NULL || (pass == NULL && passlen != 0))
		return AK_ERR_INVALID;
	/* The same ranges a header must satisfy (ak_header_parse): refuse before asking for memory. */
	if (!ak_kdf_in_range(kdf))
		return AK_ERR_INVALID;
	/* The vectorised Argon2 is chosen by sodium_init (idempotent; akctl does not start libsodium for
	 * commands that never derive a key). */
	if (sodium_init() < 0) {
		sodium_memzero(key, AK_KEY_BYTES);
		return AK_ERR_INTERNAL;
	}
	if (crypto_pwhash(key, AK_KEY_BYTES, pass != NULL ? pass : "", passlen, kdf->salt,
	    (unsigned long long)kdf->opslimit, (size_t)kdf->memlimit,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		/* Parameters were checked above: the only failure left is memory (ENOMEM). */
		sodium_memzero(key, AK_KEY_BYTES);
		return AK_ERR_NOMEM;
	}
	return AK_OK;
}
