/* ak_store.h - the keystore: profiles in memory, and the encrypted file on disk.
 *
 * File (docs/keystore-format.md): one line of JSON header, '\n', then the XChaCha20-Poly1305 ciphertext
 * of the whole plaintext store (a JSON document). The header bytes, newline included, are the AEAD's
 * associated data, so changing any byte of the file is detected. Key = Argon2id(passphrase, salt, params
 * from the header).
 *
 * Every struct below, and every string in it, lives in the secure arena (ak_smem) and is wiped on free.
 */
#ifndef AK_STORE_H
#define AK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

#define AK_KEY_BYTES 32
#define AK_SALT_BYTES 16
#define AK_NONCE_BYTES 24
#define AK_NAME_MAX 64          /* profile name */
#define AK_VARNAME_MAX 128      /* variable name */
#define AK_VALUE_MAX 65536      /* a secret or variable value, bytes */
#define AK_TEXT_MAX 1024        /* provider, description, source */
#define AK_VARS_MAX 64          /* plain variables per profile */
#define AK_PROFILES_MAX 100000
#define AK_FILE_MAX (256u << 20) /* keystore file size cap */

enum ak_kdf_preset {
	AK_KDF_INSECURE_TEST = 0, /* opslimit 1, memlimit 8 KiB: tests only; recorded, status warns */
	AK_KDF_INTERACTIVE = 1,
	AK_KDF_MODERATE = 2, /* default */
	AK_KDF_SENSITIVE = 3,
};

struct ak_kdf {
	enum ak_kdf_preset preset;      /* as recorded; informational */
	uint64_t opslimit;
	uint64_t memlimit;              /* bytes */
	uint8_t salt[AK_SALT_BYTES];
};

/* Parse "insecure-test|interactive|moderate|sensitive". */
enum ak_err ak_kdf_preset_parse(const char *s, enum ak_kdf_preset *out);
const char *ak_kdf_preset_name(enum ak_kdf_preset p);
/* Fill params for a preset with a fresh random salt. */
void ak_kdf_new(struct ak_kdf *kdf, enum ak_kdf_preset p);
/* 1 when the parameters are weaker than libsodium's interactive preset (status warns). */
int ak_kdf_is_weak(const struct ak_kdf *kdf);
/* Argon2id13. key must be AK_KEY_BYTES in secure memory; the caller wipes pass and key.
 * AK_ERR_NOMEM if the KDF cannot get its memory. */
enum ak_err ak_kdf_derive(const struct ak_kdf *kdf, const char *pass, size_t passlen, uint8_t *key);

struct ak_var {
	char *name;
	char *value;
};

struct ak_profile {
	char *name;
	char *provider;     /* "anthropic" by default */
	char *secret_var;   /* "ANTHROPIC_API_KEY" by default */
	char *secret;       /* the API key */
	char *description;  /* may be "" */
	char *source;       /* where it was imported from (cloud URI), may be "" */
	int64_t created;    /* unix seconds */
	int64_t rotated;    /* unix seconds: last time the secret changed */
	size_t nvars;
	struct ak_var *vars; /* plain variables, in insertion order */
};

struct ak_store {
	size_t n;
	size_t cap;
	struct ak_profile **p; /* sorted by name */
};

/* Profiles ------------------------------------------------------------------------------------------ */
/* A new empty profile; all strings "" and times 0. NULL on failure. */
struct ak_profile *ak_profile_new(void);
/* Wipe and free (NULL ok). */
void ak_profile_free(struct ak_profile *p);
/* Deep copy into the arena. NULL on failure. */
struct ak_profile *ak_profile_dup(const struct ak_profile *p);
/* Replace a string field with a copy of s (old value wiped). */
enum ak_err ak_profile_set_field(char **field, const char *s);
/* Add or replace a plain variable (name validated; AK_ERR_TOO_LARGE past AK_VARS_MAX). */
enum ak_err ak_profile_set_var(struct ak_profile *p, const char *name, const char *value);
/* Checks every field's syntax and size (names, variable names, no duplicate variable, secret_var not
 * also a plain variable, non-empty secret). */
enum ak_err ak_profile_validate(const struct ak_profile *p);

/* Store ----------------------------------------------------------------------------------------------- */
struct ak_store *ak_store_new(void);
void ak_store_free(struct ak_store *s);   /* wipes every profile */
struct ak_profile *ak_store_find(const struct ak_store *s, const char *name);
/* Insert p (the store takes ownership on AK_OK). Existing name: AK_ERR_PROFILE_EXISTS unless replace,
 * in which case the old one is freed and p keeps the old `created` time. */
enum ak_err ak_store_put(struct ak_store *s, struct ak_profile *p, int replace);
/* Remove and free. AK_ERR_NO_PROFILE if absent. */
enum ak_err ak_store_remove(struct ak_store *s, const char *name);

/* Plaintext document <-> store (JSON via cJSON; call ak_smem_hook_cjson() first so every copy is wiped).
 * *out is a NUL-terminated secure allocation (ak_smem_free), *outlen excludes the NUL. */
enum ak_err ak_store_serialize(const struct ak_store *s, char **out, size_t *outlen);
enum ak_err ak_store_parse(const char *doc, size_t len, struct ak_store **out);

/* The file ------------------------------------------------------------------------------------------- */
struct ak_header {
	uint32_t version;      /* 1 */
	struct ak_kdf kdf;
	uint8_t nonce[AK_NONCE_BYTES];
};

/* Split a file image into header and ciphertext: validates the header JSON (format name, version,
 * algorithm names, parameter ranges). *hdr_len is the length of the AD (header line incl. '\n');
 * the ciphertext is file + *hdr_len. AK_ERR_BAD_FORMAT / AK_ERR_VERSION. */
enum ak_err ak_header_parse(const uint8_t *file, size_t len, struct ak_header *h, size_t *hdr_len);

/* Decrypt a file image with key (AK_ERR_AUTH on any tampering or wrong key) and parse it. */
enum ak_err ak_store_open_image(const uint8_t *file, size_t len, const uint8_t *key,
    struct ak_header *h_out, struct ak_store **out);
/* Serialize + encrypt with a fresh nonce under kdf/key into a new malloc'd file image (not secret). */
enum ak_err ak_store_seal_image(const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t **out, size_t *outlen);

/* Read a whole file (up to AK_FILE_MAX) into malloc'd memory. AK_ERR_NO_STORE if it does not exist. */
enum ak_err ak_file_read(const char *path, uint8_t **out, size_t *len);

/* Writer lock: flock(LOCK_EX) on "<path>.lock" (created 0600), waiting at most timeout_ms.
 * Returns the lock fd in *fd (close it to release). AK_ERR_BUSY on timeout. */
enum ak_err ak_store_lock(const char *path, int timeout_ms, int *fd);
/* Atomic durable replace: temp file in the same directory (0600), write all, fsync, rename over path,
 * fsync the directory. If exclusive, fails with AK_ERR_STORE_EXISTS when path exists (link, not
 * rename). On any failure the previous file is untouched and the temp file removed. Caller holds the lock. */
enum ak_err ak_file_write_atomic(const char *path, const uint8_t *data, size_t len, int exclusive);

/* Make the keystore's directory (and parents) with mode 0700 if missing, and verify it is a directory
 * owned by us. */
enum ak_err ak_store_prepare_dir(const char *path);

/* Convenience for akctl's direct path (agent not unlocked): lock, read, derive, decrypt.
 * On success the lock is held (*lockfd) and *key (secure, AK_KEY_BYTES) and *hdr are filled. */
enum ak_err ak_store_load_locked(const char *path, const char *pass, size_t passlen, int *lockfd,
    struct ak_header *hdr, uint8_t *key, struct ak_store **out);
/* Seal s under hdr->kdf/key and write it atomically (lock must be held). */
enum ak_err ak_store_save(const char *path, const struct ak_store *s, const struct ak_kdf *kdf,
    const uint8_t *key);

#endif
