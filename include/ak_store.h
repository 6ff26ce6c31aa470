/* ak_store.h - the keystore: profiles in memory, and the encrypted file on disk.
 *
 * File (docs/keystore-format.md): one line of JSON header, '\n', then the XChaCha20-Poly1305 ciphertext
 * of the whole plaintext store (a JSON document). The header bytes, newline included, are the AEAD's
 * associated data, so changing any byte of the file is detected. The store key = Argon2id(passphrase,
 * salt, params from the header); format version 2 encrypts under a subkey of it and carries a key
 * commitment (a keyed BLAKE2b under another subkey) that is checked before decrypting.
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
#define AK_COMMIT_BYTES 32
#define AK_HEADER_MAX 4096      /* the header line, '\n' included, is at most this long */
#define AK_STORE_VERSION 2      /* what every write produces; version 1 still opens */
#define AK_DOC_VERSION 3        /* plaintext document every write produces; 1 and 2 still parse */
#define AK_STORE_LOCK_MS 10000  /* how long akctl waits for another writer */

/* Argon2id parameters a header may carry: from the cheapest Argon2id allows (the insecure-test preset)
 * to libsodium's sensitive preset, the strongest akctl creates (kdf.c checks they match). */
#define AK_KDF_OPS_MIN 1
#define AK_KDF_OPS_MAX 4
#define AK_KDF_MEM_MIN 8192u
#define AK_KDF_MEM_MAX (1024u << 20)

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
/* 1 when opslimit and memlimit are within AK_KDF_{OPS,MEM}_{MIN,MAX}. */
int ak_kdf_in_range(const struct ak_kdf *kdf);
/* 1 when the parameters are weaker than libsodium's interactive preset (status warns). */
int ak_kdf_is_weak(const struct ak_kdf *kdf);
/* Argon2id13. key must be AK_KEY_BYTES in secure memory; the caller wipes pass and key.
 * AK_ERR_NOMEM if the KDF cannot get its memory. */
enum ak_err ak_kdf_derive(const struct ak_kdf *kdf, const char *pass, size_t passlen, uint8_t *key);

/* A secret's previous value after a rotation (ak_rotate.h): kept, and served on request, until the
 * grace deadline, then wiped. prev NULL: none. */
struct ak_rot {
	char *prev;         /* the previous value, or NULL */
	int64_t at;         /* unix seconds: when it was replaced */
	int64_t until;      /* unix seconds: grace deadline, after which it is wiped */
	char *hint;         /* main secret only, or NULL: the old key is to be deactivated at the provider
	                     * when the rotation finishes; its partial hint ("sk-ant-api03-R2D...igAA").
	                     * Outlives prev (expiry keeps it) until a finish carries it out. */
};

struct ak_var {
	char *name;
	char *value;
	int secret;         /* 1: a secret (redacted by list/show, kept like the main secret) */
	struct ak_rot rot;  /* secret variables only */
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
	struct ak_var *vars; /* further variables, plain or secret, in insertion order */
	struct ak_rot rot;   /* the main secret's previous value */
	int64_t rotate_every; /* policy: seconds between rotations of the main secret, 0 = none */
	int confirm;          /* policy: the agent asks (AKAGENT_ASKPASS) before handing out a secret */
	int64_t lifetime;     /* policy: seconds after unlock the agent wipes the secrets, 0 = none */
	/* The agent's own state (never in the document): when it wipes this profile's secrets (unix s,
	 * 0 = never), and whether it did. */
	int64_t wipe_at;
	int expired;
	/* Holders beyond the first (ak_store_share), changed atomically: ak_profile_free drops one and
	 * only the last frees and wipes. A shared profile is never changed in place: whoever changes a
	 * profile of a store that may share it takes its own copy first (ak_store_own). */
	unsigned refs;
	/* A profile read from the store is one block (ak_smem_pack_alloc): the struct, then its variables
	 * and strings; pack is the bytes past the struct, 0 when every field is its own allocation. A
	 * string field of a pack is replaced as any other (ak_smem_free wipes it in place). */
	size_t pack;
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
/* The same with the variable's kind: secret 1 makes it a secret variable (replacing a plain one of that
 * name, or the other way round). */
enum ak_err ak_profile_put_var(struct ak_profile *p, const char *name, const char *value, int secret);
/* Remove a variable (wiped). AK_ERR_NOT_FOUND if the profile has none of that name. */
enum ak_err ak_profile_unset_var(struct ak_profile *p, const char *name);
/* The variable named name, or NULL. */
struct ak_var *ak_profile_find_var(const struct ak_profile *p, const char *name);
/* The value of the plain (not secret) variable named name, or NULL: what may travel where a secret
 * must not (another program's arguments, a URL). */
const char *ak_profile_plain_value(const struct ak_profile *p, const char *name);
/* Checks every field's syntax and size (names, variable names, no duplicate variable, secret_var not
 * also a plain variable, non-empty secret). */
enum ak_err ak_profile_validate(const struct ak_profile *p);

/* 1 if a and b are the same secret: constant time in the contents (a timing must not tell how much of a
 * key matched). Both stay their owners' to wipe. */
int ak_secret_equal(const char *a, const char *b);

/* Store ----------------------------------------------------------------------------------------------- */
struct ak_store *ak_store_new(void);
void ak_store_free(struct ak_store *s);   /* wipes every profile */
/* A deep copy of s in the arena (every profile and secret copied), or NULL (out of memory). */
struct ak_store *ak_store_dup(const struct ak_store *s);
/* A store holding the same profiles as s (each gains a holder, nothing is copied), or NULL (out of
 * memory): the agent's snapshot for a write, cheap at any size. Either store may then drop, replace
 * or add profiles freely; to change one of them in place, take it with ak_store_own first. Holders
 * may live in different threads (the counts are atomic); the profiles' contents must not change. */
struct ak_store *ak_store_share(const struct ak_store *s);
/* The profile named name made s's alone (a copy replaces it when another store shares it), ready to
 * be changed in place; NULL if absent or out of memory. */
struct ak_profile *ak_store_own(struct ak_store *s, const char *name);
struct ak_profile *ak_store_find(const struct ak_store *s, const char *name);
/* Insert p (the store takes ownership on AK_OK) and stamp its times, the one place that rule lives:
 * a new profile gets created = rotated = now; a replacement keeps the old `created`, and the old
 * `rotated` too unless the secret changed (compared in constant time), in which case rotated = now.
 * Existing name: AK_ERR_PROFILE_EXISTS unless replace, in which case the old one is freed. */
enum ak_err ak_store_put(struct ak_store *s, struct ak_profile *p, int replace);
/* Remove and free. AK_ERR_NO_PROFILE if absent. */
enum ak_err ak_store_remove(struct ak_store *s, const char *name);
/* Rename from to to (copy 0), or copy from to to (copy 1). Nothing else of the profile changes: a
 * renamed profile keeps `created` and `rotated`; a copy is created now and keeps `rotated` (the age of
 * its secret). AK_ERR_NO_PROFILE if from is absent, AK_ERR_PROFILE_EXISTS if to exists. */
enum ak_err ak_store_rename(struct ak_store *s, const char *from, const char *to, int copy);

/* A time field of the document: a JSON number that is a whole number of seconds within +-2^53 (what a
 * double holds exactly). AK_ERR_BAD_FORMAT otherwise. */
struct cJSON;
enum ak_err ak_store_json_time(const struct cJSON *it, int64_t *dst);

/* Plaintext document <-> store (JSON via cJSON; call ak_smem_hook_cjson() first so every copy is wiped).
 * *out is a NUL-terminated secure allocation (ak_smem_free), *outlen excludes the NUL. */
enum ak_err ak_store_serialize(const struct ak_store *s, char **out, size_t *outlen);
/* The same document left in the secure buffer it is written in (no copy: a write of a large store
 * seals it from there); the caller frees and thereby wipes it with ak_buf_free. */
struct ak_buf;
enum ak_err ak_store_serialize_buf(const struct ak_store *s, struct ak_buf **out);
enum ak_err ak_store_parse(const char *doc, size_t len, struct ak_store **out);
/* The same for a document the caller has already NUL-terminated (doc[len] == '\0'), parsed where it is
 * instead of from a copy: the decrypted file, which is megabytes for a large store. */
enum ak_err ak_store_parse_terminated(const char *doc, size_t len, struct ak_store **out);
/* The same result, and the same error, from one cJSON tree of the whole document: what the reader above
 * (one profile at a time) is held to by the tests and the fuzzer. Several times the memory. */
enum ak_err ak_store_parse_whole(const char *doc, size_t len, struct ak_store **out);

/* The file ------------------------------------------------------------------------------------------- */
struct ak_header {
	uint32_t version;      /* 1 or 2 */
	struct ak_kdf kdf;
	uint8_t commitment[AK_COMMIT_BYTES]; /* version 2 only (zero for 1) */
	uint8_t nonce[AK_NONCE_BYTES];
};

/* Split a file image into header and ciphertext: validates the header JSON (format name, version,
 * algorithm names, KDF parameters within AK_KDF_*_MIN/MAX). *hdr_len is the length of the AD (header
 * line incl. '\n'); the ciphertext is file + *hdr_len. AK_ERR_BAD_FORMAT / AK_ERR_VERSION. */
enum ak_err ak_header_parse(const uint8_t *file, size_t len, struct ak_header *h, size_t *hdr_len);

/* Open a file image with the store key: AK_ERR_AUTH for a wrong key or any tampering -- a commitment
 * that does not match (checked before decrypting), a failed decryption, and equally a plaintext that
 * decrypts but does not parse, so a forged file cannot tell "right key, bad content" from "wrong key".
 * AK_ERR_BAD_FORMAT / AK_ERR_VERSION only for the (public) header. */
enum ak_err ak_store_open_image(const uint8_t *file, size_t len, const uint8_t *key,
    struct ak_header *h_out, struct ak_store **out);
/* The same, decrypting in place: file is an arena block of len + 1 bytes (ak_store_read_secure), and
 * whatever the outcome its ciphertext is gone, the plaintext (or part of it) left in its place for the
 * caller's ak_smem_free to wipe. A large store is then one fresh region, not a ciphertext buffer and a
 * plaintext one. */
enum ak_err ak_store_open_in_place(uint8_t *file, size_t len, const uint8_t *key,
    struct ak_header *h_out, struct ak_store **out);
/* Serialize + encrypt as format version 2 with a fresh nonce under kdf/key into a new malloc'd file
 * image (not secret). */
enum ak_err ak_store_seal_image(const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t **out, size_t *outlen);
/* The same for an arbitrary plaintext pt (the caller's; not parsed): what a holder of the key could
 * write. For tests and fuzzing of the open path. */
enum ak_err ak_store_seal_bytes(const uint8_t *pt, size_t ptlen, const struct ak_kdf *kdf,
    const uint8_t *key, uint8_t **out, size_t *outlen);

/* Read the keystore file (a regular file, up to AK_FILE_MAX) into malloc'd memory: ciphertext, not
 * secret. AK_ERR_NO_STORE if it does not exist; otherwise as ak_file_load (ak_file.h). */
enum ak_err ak_store_read(const char *path, uint8_t **out, size_t *len);
/* The same into an arena block (ak_smem_free; len + 1 bytes, NUL-terminated), for
 * ak_store_open_in_place. */
enum ak_err ak_store_read_secure(const char *path, uint8_t **out, size_t *len);
/* Only what ak_header_parse looks at: the first AK_HEADER_MAX bytes into buf (that many bytes), with
 * ak_store_read's checks and errors. For akctl, which needs the KDF parameters and not the store. */
enum ak_err ak_store_read_head(const char *path, uint8_t *buf, size_t *len);

/* Writer lock: flock(LOCK_EX) on "<path>.lock" (created 0600), waiting at most timeout_ms.
 * Returns the lock fd in *fd (close it to release). AK_ERR_BUSY on timeout. */
enum ak_err ak_store_lock(const char *path, int timeout_ms, int *fd);

/* Make the keystore's directory (and parents) with mode 0700 if missing, and verify it is a directory
 * owned by us. */
enum ak_err ak_store_prepare_dir(const char *path);

/* Seal s under kdf/key and write it atomically, after removing the temp files killed writers left
 * (each an older generation of the store). The caller holds the lock. */
enum ak_err ak_store_save(const char *path, const struct ak_store *s, const struct ak_kdf *kdf,
    const uint8_t *key);

/* The write transaction ------------------------------------------------------------------------------ */
/* Changes the store read under the lock; AK_OK commits (the store is then written), anything else
 * aborts with nothing written. May run more than once (ak_store_update_pass), each time on a fresh
 * store: it must not consume arg. */
typedef enum ak_err (*ak_store_apply_fn)(struct ak_store *s, void *arg);

struct ak_store_txn {
	const char *path;
	int lock_timeout_ms;          /* waiting for another writer; < 0 waits forever */
	const uint8_t *key;           /* the store key that opens the file as it is now */
	ak_store_apply_fn apply;      /* NULL: no change (a re-key) */
	void *arg;
	const struct ak_kdf *new_kdf; /* re-key (passwd): seal under new_kdf/new_key; NULL keeps the kdf */
	const uint8_t *new_key;
	struct ak_store **written;    /* optional: receives the store as written (the caller frees it) */
	struct ak_kdf *kdf_out;       /* optional: the KDF parameters of the file as written */
	/* Optional, both or neither: *base is the store that the file with hash base_hash (ak_store_image_hash) opens
	 * to (the caller's own copy). When the file under the lock still has base_hash (ak_store_image_hash), the change
	 * is applied to *base (taken: set to NULL) instead of decrypting and parsing the file again;
	 * otherwise *base is left alone and the file is opened as usual. */
	struct ak_store **base;
	const uint8_t *base_hash;     /* AK_FILE_HASH_BYTES */
	uint8_t *hash_out;            /* optional: AK_FILE_HASH_BYTES, ak_store_image_hash of the file as written */
};
#define AK_FILE_HASH_BYTES 32
/* What identifies the file a store was read from or written to, for ak_store_txn's base: a BLAKE2b
 * (AK_FILE_HASH_BYTES) of the image's length, header line (its fresh nonce) and AEAD tag. */
void ak_store_image_hash(const uint8_t *img, size_t len, uint8_t *out);

/* The one keystore update: lock -> read -> open (key) -> apply -> remove stale temp files -> seal ->
 * atomic write -> unlock. AK_ERR_AUTH when key no longer opens the file (re-keyed or replaced since
 * the key was derived), else the first failing step's error; on any failure the file is as it was.
 * Keys are the caller's (it wipes them). */
enum ak_err ak_store_txn_run(const struct ak_store_txn *t);
/* The same with the default lock timeout, no re-key, nothing returned. */
enum ak_err ak_store_update(const char *path, const uint8_t *key, ak_store_apply_fn apply, void *arg);
/* akctl's direct path (no unlocked agent): derive the key from the file's header *before* taking the
 * lock (Argon2id takes seconds; no writer should wait for it), then ak_store_update. If the file was
 * re-keyed in between (other KDF parameters), derive again and retry once. pass is the caller's. */
enum ak_err ak_store_update_pass(const char *path, const char *pass, size_t passlen,
    ak_store_apply_fn apply, void *arg);

#endif
