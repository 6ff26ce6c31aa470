/* storefile.c - the keystore file: header, key commitment, sealing and opening, reading, locking, and
 * the one write transaction.
 *
 * Layout (docs/keystore-format.md): one line of compact JSON header, '\n', then the
 * XChaCha20-Poly1305-IETF ciphertext of the plaintext document (profile.c). The header line, newline
 * included, is the associated data: any change to any byte of the file makes opening fail.
 * The header is not secret (parsed with cJSON like anything else); the plaintext only ever exists in
 * the secure arena.
 *
 * Keys (version 2). The store key K (Argon2id output, what the agent holds and UNLOCK carries) is
 * never used directly: crypto_kdf (BLAKE2b) derives a commitment key Kc and an encryption key Ke from
 * it. The header carries BLAKE2b-256 keyed by Kc over a fixed label; it is compared in constant time
 * before anything is decrypted. XChaCha20-Poly1305 alone does not commit to its key (one ciphertext can
 * be made to open under many keys, which turns "did it open?" into a partitioning oracle on the
 * passphrase); the commitment, collision-resistant in K, closes that. Separate subkeys keep K out of
 * two primitives at once, and cost nothing since both come from K. Version 1 (encrypted under K itself,
 * no commitment) still opens; every write produces version 2.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_buf.h"
#include "ak_file.h"
#include "ak_jsonw.h"
#include "ak_log.h"
#include "ak_path.h"
#include "ak_smem.h"
#include "ak_rotate.h"
#include "ak_store.h"
#include "ak_util.h"

#define HDR_MAX AK_HEADER_MAX
#define FORMAT_NAME "akagent-keystore"
#define ALG_NAME "argon2id13"
#define CIPHER_NAME "xchacha20poly1305-ietf"
#define SUBKEY_CTX "akstore2" /* crypto_kdf context: exactly 8 bytes */
#define SUBKEY_COMMIT 1
#define SUBKEY_ENCRYPT 2
#define COMMIT_LABEL "akagent-keystore key commitment v2"

_Static_assert(sizeof(SUBKEY_CTX) - 1 == crypto_kdf_CONTEXTBYTES, "crypto_kdf context size");
_Static_assert(AK_KEY_BYTES == crypto_kdf_KEYBYTES, "the store key is a crypto_kdf key");
_Static_assert(AK_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "cipher key size");

/* Header ------------------------------------------------------------------------------------------- */

/* An integral JSON number in [min, max]. */
static int
get_uint(const cJSON *it, uint64_t min, uint64_t max, uint64_t *out)
{
	double d;
	uint64_t v;

	if (!cJSON_IsNumber(it))
		return -1;
	d = it->valuedouble;
	if (!(d >= (double)min && d <= (double)max))
		return -1;
	v = (uint64_t)d;
	if ((double)v != d)
		return -1;
	*out = v;
	return 0;
}

/* Exactly n bytes of canonical, padded standard base64. */
static int
get_b64(const cJSON *it, uint8_t *out, size_t n)
{
	const char *s, *end = NULL;
	size_t slen, binlen = 0;

	if (!cJSON_IsString(it) || (s = it->valuestring) == NULL)
		return -1;
	slen = strlen(s);
	if (sodium_base642bin(out, n, s, slen, NULL, &binlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != s + slen || binlen != n)
		return -1;
	return 0;
}

static int
str_is(const cJSON *it, const char *want)
{
	return cJSON_IsString(it) && it->valuestring != NULL && strcmp(it->valuestring, want) == 0;
}

/* Look up the children of o among names[] (each at most once, nothing else): -1 otherwise. */
static int
collect(const cJSON *o, const char *const *names, const cJSON **found, size_t n)
{
	const cJSON *f;
	size_t k;
	int bad = 0;

	for (k = 0; k < n; k++)
		found[k] = NULL;
	cJSON_ArrayForEach(f, o) {
		for (k = 0; k < n; k++)
			if (f->string != NULL && strcmp(f->string, names[k]) == 0)
				break;
		if (k == n || found[k] != NULL)
			bad = 1;
		else
			found[k] = f;
	}
	return bad ? -1 : 0;
}

enum { H_FORMAT, H_VERSION, H_KDF, H_CIPHER, H_COMMIT, H_NONCE, H_COUNT };
static const char *const hnames[H_COUNT] = { "format", "version", "kdf", "cipher", "commitment",
	"nonce" };
enum { K_ALG, K_PRESET, K_OPS, K_MEM, K_SALT, K_COUNT };
static const char *const knames[K_COUNT] = { "alg", "preset", "opslimit", "memlimit", "salt" };

enum ak_err
ak_header_parse(const uint8_t *file, size_t len, struct ak_header *h, size_t *hdr_len)
{
	char line[HDR_MAX];
	const uint8_t *nl;
	const cJSON *hf[H_COUNT], *kf[K_COUNT];
	cJSON *root = NULL;
	struct ak_header tmp;
	uint64_t v;
	size_t ll;
	int bad;
	enum ak_err r = AK_ERR_BAD_FORMAT;

	if (file == NULL || h == NULL || hdr_len == NULL)
		return AK_ERR_INVALID;
	memset(&tmp, 0, sizeof(tmp));
	if ((nl = memchr(file, '\n', len < HDR_MAX ? len : HDR_MAX)) == NULL)
		return AK_ERR_BAD_FORMAT;
	ll = (size_t)(nl - file);
	if (ll == 0 || memchr(file, '\0', ll) != NULL)
		return AK_ERR_BAD_FORMAT;
	memcpy(line, file, ll);
	line[ll] = '\0';
	if ((root = ak_json_parse(line, strlen(line) + 1, 1)) == NULL || !cJSON_IsObject(root))
		goto out;
	bad = collect(root, hnames, hf, H_COUNT);
	/* Format and version first: a later version may have other fields, and deserves its own error. */
	if (!str_is(hf[H_FORMAT], FORMAT_NAME) || !cJSON_IsNumber(hf[H_VERSION]))
		goto out;
	if (hf[H_VERSION]->valuedouble != 1.0 && hf[H_VERSION]->valuedouble != 2.0) {
		r = AK_ERR_VERSION;
		goto out;
	}
	tmp.version = hf[H_VERSION]->valuedouble == 2.0 ? 2 : 1;
	if (bad || hf[H_KDF] == NULL || !cJSON_IsObject(hf[H_KDF]) || !str_is(hf[H_CIPHER], CIPHER_NAME) ||
	    get_b64(hf[H_NONCE], tmp.nonce, sizeof(tmp.nonce)) != 0)
		goto out;
	/* Version 2 has a commitment, version 1 none. */
	if (tmp.version == 1 ? hf[H_COMMIT] != NULL :
	    get_b64(hf[H_COMMIT], tmp.commitment, sizeof(tmp.commitment)) != 0)
		goto out;
	if (collect(hf[H_KDF], knames, kf, K_COUNT) != 0 || !str_is(kf[K_ALG], ALG_NAME) ||
	    !cJSON_IsString(kf[K_PRESET]) ||
	    ak_kdf_preset_parse(kf[K_PRESET]->valuestring, &tmp.kdf.preset) != AK_OK ||
	    get_b64(kf[K_SALT], tmp.kdf.salt, sizeof(tmp.kdf.salt)) != 0)
		goto out;
	/* Bounded before anyone derives with them (ak_kdf_in_range says why). */
	if (get_uint(kf[K_OPS], AK_KDF_OPS_MIN, AK_KDF_OPS_MAX, &v) != 0)
		goto out;
	tmp.kdf.opslimit = v;
	if (get_uint(kf[K_MEM], AK_KDF_MEM_MIN, AK_KDF_MEM_MAX, &v) != 0)
		goto out;
	tmp.kdf.memlimit = v;
	*h = tmp;
	*hdr_len = ll + 1;
	r = AK_OK;
out:
	cJSON_Delete(root);
	return r;
}

/* The version-2 header line for kdf, commitment and nonce, '\n' included, into buf. Returns its
 * length, 0 on error. */
static size_t
header_format(const struct ak_kdf *kdf, const uint8_t *commit, const uint8_t *nonce, char *buf,
    size_t buflen)
{
	char salt64[sodium_base64_ENCODED_LEN(AK_SALT_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char commit64[sodium_base64_ENCODED_LEN(AK_COMMIT_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char nonce64[sodium_base64_ENCODED_LEN(AK_NONCE_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	enum ak_kdf_preset p;
	int n;

	if (ak_kdf_preset_parse(ak_kdf_preset_name(kdf->preset), &p) != AK_OK || !ak_kdf_in_range(kdf))
		return 0;
	sodium_bin2base64(salt64, sizeof(salt64), kdf->salt, AK_SALT_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(commit64, sizeof(commit64), commit, AK_COMMIT_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(nonce64, sizeof(nonce64), nonce, AK_NONCE_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(buf, buflen,
	    "{\"format\":\"" FORMAT_NAME "\",\"version\":2,\"kdf\":{\"alg\":\"" ALG_NAME "\","
	    "\"preset\":\"%s\",\"opslimit\":%llu,\"memlimit\":%llu,\"salt\":\"%s\"},"
	    "\"cipher\":\"" CIPHER_NAME "\",\"commitment\":\"%s\",\"nonce\":\"%s\"}\n",
	    ak_kdf_preset_name(kdf->preset), (unsigned long long)kdf->opslimit,
	    (unsigned long long)kdf->memlimit, salt64, commit64, nonce64);
	if (n <= 0 || (size_t)n >= buflen)
		return 0;
	return (size_t)n;
}

/* Keys ---------------------------------------------------------------------------------------------- */

/* The version-2 encryption key and key commitment for store key K. ek is the caller's to wipe. */
static void
v2_keys(const uint8_t *key, uint8_t ek[AK_KEY_BYTES], uint8_t commit[AK_COMMIT_BYTES])
{
	uint8_t ck[AK_KEY_BYTES];

	crypto_kdf_derive_from_key(ck, sizeof(ck), SUBKEY_COMMIT, SUBKEY_CTX, key);
	crypto_kdf_derive_from_key(ek, AK_KEY_BYTES, SUBKEY_ENCRYPT, SUBKEY_CTX, key);
	crypto_generichash(commit, AK_COMMIT_BYTES, (const unsigned char *)COMMIT_LABEL,
	    sizeof(COMMIT_LABEL) - 1, ck, sizeof(ck));
	sodium_memzero(ck, sizeof(ck));
}

/* 1 if key is the one a version-2 header commits to (version 1 commits to none: 0, so the caller
 * decrypts to find out). */
static int
key_matches(const struct ak_header *h, const uint8_t *key)
{
	uint8_t ek[AK_KEY_BYTES], commit[AK_COMMIT_BYTES];
	int ok;

	if (h->version != 2)
		return 0;
	v2_keys(key, ek, commit);
	ok = sodium_memcmp(commit, h->commitment, AK_COMMIT_BYTES) == 0;
	sodium_memzero(ek, sizeof(ek));
	return ok;
}

/* Seal / open --------------------------------------------------------------------------------------- */

/* The open proper. The plaintext goes to m (an arena block of at least the ciphertext's length minus
 * the tag, plus one for a NUL), which may be the ciphertext itself (file + the header's length): the
 * AEAD checks the tag before it writes a byte, and then decrypts in place. key is the caller's. */
static enum ak_err
open_into(const uint8_t *file, size_t len, const uint8_t *key, struct ak_header *h_out,
    struct ak_store **out, unsigned char *m, size_t mcap)
{
	struct ak_header h;
	uint8_t ek[AK_KEY_BYTES], commit[AK_COMMIT_BYTES];
	const uint8_t *dk = key;
	unsigned long long mlen = 0;
	size_t hl, clen;
	enum ak_err r;

	if ((r = ak_header_parse(file, len, &h, &hl)) != AK_OK)
		return r;
	clen = len - hl;
	r = AK_ERR_AUTH;
	/* Too short to hold a tag: the file was cut, which is tampering like any other. */
	if (clen < crypto_aead_xchacha20poly1305_ietf_ABYTES)
		goto out;
	if (m == NULL) {
		mcap = clen - crypto_aead_xchacha20poly1305_ietf_ABYTES + 1;
		if ((m = ak_smem_alloc(mcap)) == NULL) {
			r = AK_ERR_NOMEM;
			goto out;
		}
	} else {
		m = (unsigned char *)file + hl; /* in place */
		mcap -= hl;
	}
	if (mcap < clen - crypto_aead_xchacha20poly1305_ietf_ABYTES + 1) {
		r = AK_ERR_INVALID;
		goto out;
	}
	if (h.version == 2) {
		/* The commitment first: a key that does not match never decrypts anything. */
		v2_keys(key, ek, commit);
		if (sodium_memcmp(commit, h.commitment, AK_COMMIT_BYTES) != 0)
			goto out;
		dk = ek;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, file + hl, clen, file, hl,
	    h.nonce, dk) != 0)
		goto out;
	/* Decrypted but unparsable is AUTH too: one answer for every way a forged file can fail. */
	m[mlen] = '\0'; /* room for it was allocated (in place: the tag's first byte) */
	if ((r = ak_store_parse_terminated((const char *)m, (size_t)mlen, out)) != AK_OK) {
		if (r != AK_ERR_NOMEM)
			r = AK_ERR_AUTH;
		goto out;
	}
	if (h_out != NULL)
		*h_out = h;
out:
	sodium_memzero(ek, sizeof(ek));
	if (m != NULL && m != file + hl)
		ak_smem_free(m); /* wipes the plaintext */
	return r;
}

/* key is the caller's (it wipes it). The plaintext exists only in the arena and is wiped here. */
enum ak_err
ak_store_open_image(const uint8_t *file, size_t len, const uint8_t *key, struct ak_header *h_out,
    struct ak_store **out)
{
	if (file == NULL || key == NULL || out == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	return open_into(file, len, key, h_out, out, NULL, 0);
}

/* The plaintext is left in file, an arena block, for the caller's ak_smem_free to wipe. */
enum ak_err
ak_store_open_in_place(uint8_t *file, size_t len, const uint8_t *key, struct ak_header *h_out,
    struct ak_store **out)
{
	if (file == NULL || key == NULL || out == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	/* The block holds len + 1 bytes (ak_store_read_secure's NUL): room for the plaintext's NUL. */
	return open_into(file, len, key, h_out, out, file, len + 1);
}

/* key and pt are the caller's (it wipes them). *out is ciphertext: plain malloc, the caller frees it. */
enum ak_err
ak_store_seal_bytes(const uint8_t *pt, size_t ptlen, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t **out, size_t *outlen)
{
	char hdr[HDR_MAX];
	uint8_t nonce[AK_NONCE_BYTES], ek[AK_KEY_BYTES], commit[AK_COMMIT_BYTES];
	uint8_t *img = NULL;
	unsigned long long clen = 0;
	size_t hl;
	enum ak_err r;

	if ((pt == NULL && ptlen != 0) || kdf == NULL || key == NULL || out == NULL || outlen == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	/* A fresh random nonce per file: 192 bits, so collisions are not a concern. */
	randombytes_buf(nonce, sizeof(nonce));
	v2_keys(key, ek, commit);
	r = AK_ERR_INVALID;
	if ((hl = header_format(kdf, commit, nonce, hdr, sizeof(hdr))) == 0)
		goto out;
	r = AK_ERR_TOO_LARGE;
	if (ptlen > AK_FILE_MAX - hl - crypto_aead_xchacha20poly1305_ietf_ABYTES)
		goto out;
	r = AK_ERR_NOMEM;
	if ((img = malloc(hl + ptlen + crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL)
		goto out;
	memcpy(img, hdr, hl);
	crypto_aead_xchacha20poly1305_ietf_encrypt(img + hl, &clen, pt, ptlen, img, hl, NULL, nonce, ek);
	*out = img;
	*outlen = hl + (size_t)clen;
	r = AK_OK;
out:
	sodium_memzero(ek, sizeof(ek));
	return r;
}

/* key is the caller's (it wipes it). */
enum ak_err
ak_store_seal_image(const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t **out, size_t *outlen)
{
	struct ak_buf *pt = NULL;
	enum ak_err r;

	if (s == NULL || kdf == NULL || key == NULL || out == NULL || outlen == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if ((r = ak_store_serialize_buf(s, &pt)) != AK_OK)
		return r;
	r = ak_store_seal_bytes(ak_buf_ptr(pt), ak_buf_len(pt), kdf, key, out, outlen);
	ak_buf_free(pt); /* wipes the plaintext */
	return r;
}

/* Files ---------------------------------------------------------------------------------------------- */

/* Symlinks are followed on purpose: users may keep the keystore elsewhere and link to it. */
static enum ak_err
read_file(const char *path, unsigned flags, uint8_t **out, size_t *len)
{
	char *buf = NULL;
	enum ak_err r;

	if (out == NULL || len == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	r = ak_file_load(path, AK_FILE_MAX, flags, &buf, len);
	if (r == AK_ERR_NOT_FOUND)
		return AK_ERR_NO_STORE;
	*out = (uint8_t *)buf;
	return r;
}

enum ak_err
ak_store_read(const char *path, uint8_t **out, size_t *len)
{
	return read_file(path, AK_FILE_REGULAR, out, len);
}

/* The file read straight into the arena, where ak_store_open_in_place decrypts it. */
enum ak_err
ak_store_read_secure(const char *path, uint8_t **out, size_t *len)
{
	return read_file(path, AK_FILE_REGULAR | AK_FILE_SECURE, out, len);
}

enum ak_err
ak_store_read_head(const char *path, uint8_t *buf, size_t *len)
{
	enum ak_err r = ak_file_read_head(path, AK_FILE_MAX, buf, AK_HEADER_MAX, len);

	return r == AK_ERR_NOT_FOUND ? AK_ERR_NO_STORE : r;
}

/* A negative timeout waits forever. */
enum ak_err
ak_store_lock(const char *path, int timeout_ms, int *fd)
{
	char lp[AK_PATH_MAX];
	struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
	uint64_t start;
	int lfd, n;

	if (path == NULL || fd == NULL)
		return AK_ERR_INVALID;
	*fd = -1;
	n = snprintf(lp, sizeof(lp), "%s.lock", path);
	if (n < 0 || (size_t)n >= sizeof(lp))
		return AK_ERR_INVALID;
	if ((lfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600)) == -1)
		return errno == ENOENT ? AK_ERR_NO_STORE : AK_ERR_IO;
	start = ak_now_ms();
	for (;;) {
		if (flock(lfd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			close(lfd);
			return AK_ERR_IO;
		}
		if (timeout_ms >= 0 && ak_now_ms() - start >= (uint64_t)timeout_ms) {
			close(lfd);
			return AK_ERR_BUSY;
		}
		nanosleep(&ten_ms, NULL);
	}
	*fd = lfd;
	return AK_OK;
}

enum ak_err
ak_store_prepare_dir(const char *path)
{
	char dir[AK_PATH_MAX];
	struct stat st;
	enum ak_err r;

	if (path == NULL)
		return AK_ERR_INVALID;
	if ((r = ak_path_dirname(path, dir, sizeof(dir))) != AK_OK)
		return r;
	if ((r = ak_path_mkdirs(dir)) != AK_OK)
		return r;
	/* stat, not lstat: a symlinked data directory is the user's choice; ownership still matters. */
	if (stat(dir, &st) != 0)
		return AK_ERR_IO;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return AK_ERR_UNSAFE_PATH;
	return AK_OK;
}

/* Same KDF input (parameters and salt): the derived key still fits. */
static int
same_kdf(const struct ak_kdf *a, const struct ak_kdf *b)
{
	return a->opslimit == b->opslimit && a->memlimit == b->memlimit &&
	    sodium_memcmp(a->salt, b->salt, AK_SALT_BYTES) == 0;
}

/*
 * The file's identity without reading all of it: its length, its header line and its last 16 bytes,
 * the AEAD tag. Every write seals under a fresh random 192-bit nonce, which the header carries, and the
 * tag authenticates the whole ciphertext under that nonce, so two files that agree on these are the
 * same file, or one is a forgery that no longer opens. Taking a forgery for the file we hold only
 * means the next write replaces it with our own sealed copy, which is what opening it would have led
 * to anyway. Hashing the whole image cost about 1.2 ms per MB, on every unlock and twice per write.
 * An image without a header line (not a keystore) is hashed whole.
 */
void
ak_store_image_hash(const uint8_t *img, size_t len, uint8_t *out)
{
	static const uint8_t domain[] = "akagent keystore identity 1";
	crypto_generichash_state st;
	const uint8_t *nl;
	uint8_t le[8];
	size_t hlen, i;
	uint64_t n = len;

	nl = memchr(img, '\n', len < HDR_MAX ? len : HDR_MAX);
	if (nl == NULL || len - (size_t)(nl + 1 - img) < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
		crypto_generichash(out, AK_FILE_HASH_BYTES, img, len, NULL, 0);
		return;
	}
	hlen = (size_t)(nl + 1 - img);
	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)(n >> (8 * i));
	crypto_generichash_init(&st, NULL, 0, AK_FILE_HASH_BYTES);
	crypto_generichash_update(&st, domain, sizeof(domain));
	crypto_generichash_update(&st, le, sizeof(le));
	crypto_generichash_update(&st, img, hlen);
	crypto_generichash_update(&st, img + len - crypto_aead_xchacha20poly1305_ietf_ABYTES,
	    crypto_aead_xchacha20poly1305_ietf_ABYTES);
	crypto_generichash_final(&st, out, AK_FILE_HASH_BYTES);
}

/* ak_store_save, and the hash of the image written (hash may be NULL). */
static enum ak_err
save_hashed(const char *path, const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t *hash)
{
	uint8_t *img = NULL;
	size_t len = 0, stale = 0;
	enum ak_err r;

	if ((r = ak_store_seal_image(s, kdf, key, &img, &len)) != AK_OK)
		return r;
	/*
	 * A writer killed between creating its temp file and the rename leaves a whole older generation
	 * of the store behind, which still opens with the passphrase of its day (after passwd: the old
	 * one) and still holds removed keys. Under the lock no live writer has one, so all are stale.
	 * Before the write, so passwd cannot report success with one left.
	 */
	if ((r = ak_file_stale_temps(path, 1, &stale)) != AK_OK)
		goto out;
	if (stale > 0)
		ak_info("%s: removed %zu temp file(s) an interrupted write left behind", path, stale);
	r = ak_file_write_atomic(path, img, len, 0);
	if (r == AK_OK && hash != NULL)
		ak_store_image_hash(img, len, hash);
out:
	free(img);
	return r;
}

enum ak_err
ak_store_save(const char *path, const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key)
{
	return save_hashed(path, s, kdf, key, NULL);
}

/* The write transaction ---------------------------------------------------------------------------- */

/* Keys are the caller's (it wipes them). The store read exists only in the arena and is freed (wiped)
 * here unless handed out through t->written. */
enum ak_err
ak_store_txn_run(const struct ak_store_txn *t)
{
	struct ak_store *cur = NULL;
	struct ak_header h;
	const struct ak_kdf *kdf;
	const uint8_t *key;
	uint8_t *img = NULL, hash[AK_FILE_HASH_BYTES];
	size_t len = 0, hl;
	int fd = -1;
	enum ak_err r;

	if (t == NULL || t->path == NULL || t->key == NULL || (t->new_kdf == NULL) != (t->new_key == NULL) ||
	    (t->base == NULL) != (t->base_hash == NULL))
		return AK_ERR_INVALID;
	if (t->written != NULL)
		*t->written = NULL;
	if ((r = ak_store_lock(t->path, t->lock_timeout_ms, &fd)) != AK_OK ||
	    (r = ak_store_read(t->path, &img, &len)) != AK_OK)
		goto out;
	/*
	 * The file is byte for byte the one the caller's copy came from: decrypting and parsing it again
	 * (the bulk of a write to a large store) would give the same store. The key must still be the
	 * file's (a store re-keyed to the same bytes cannot be, the header holds the commitment), so the
	 * header is parsed and the commitment checked either way.
	 */
	if (t->base != NULL && *t->base != NULL) {
		ak_store_image_hash(img, len, hash);
		if (sodium_memcmp(hash, t->base_hash, sizeof(hash)) == 0 &&
		    ak_header_parse(img, len, &h, &hl) == AK_OK && key_matches(&h, t->key)) {
			cur = *t->base;
			*t->base = NULL;
		}
	}
	if (cur == NULL && (r = ak_store_open_image(img, len, t->key, &h, &cur)) != AK_OK)
		goto out;
	if (t->apply != NULL && (r = t->apply(cur, t->arg)) != AK_OK)
		goto out;
	/* Previous keys past their grace go with any write: the agent expires them by writing. */
	(void)ak_store_expire(cur, ak_now_s());
	kdf = t->new_kdf != NULL ? t->new_kdf : &h.kdf;
	key = t->new_key != NULL ? t->new_key : t->key;
	if ((r = save_hashed(t->path, cur, kdf, key, t->hash_out)) != AK_OK)
		goto out;
	if (t->kdf_out != NULL)
		*t->kdf_out = *kdf;
	if (t->written != NULL) {
		*t->written = cur;
		cur = NULL;
	}
out:
	if (fd != -1)
		close(fd); /* releases the lock, after the rename */
	ak_store_free(cur);
	free(img); /* ciphertext: nothing to wipe */
	return r;
}

enum ak_err
ak_store_update(const char *path, const uint8_t *key, ak_store_apply_fn apply, void *arg)
{
	struct ak_store_txn t;

	memset(&t, 0, sizeof(t));
	t.path = path;
	t.lock_timeout_ms = AK_STORE_LOCK_MS;
	t.key = key;
	t.apply = apply;
	t.arg = arg;
	return ak_store_txn_run(&t);
}

/* The KDF parameters in path's header. */
static enum ak_err
read_kdf(const char *path, struct ak_kdf *kdf)
{
	struct ak_header h;
	uint8_t *img = NULL;
	size_t len = 0, hl;
	enum ak_err r;

	if ((r = ak_store_read(path, &img, &len)) == AK_OK &&
	    (r = ak_header_parse(img, len, &h, &hl)) == AK_OK)
		*kdf = h.kdf;
	free(img);
	return r;
}

/* pass is the caller's (it wipes it); the key lives in the arena here and is wiped on every path. */
enum ak_err
ak_store_update_pass(const char *path, const char *pass, size_t passlen, ak_store_apply_fn apply,
    void *arg)
{
	struct ak_kdf first, now;
	uint8_t *key = NULL;
	enum ak_err r;

	if (path == NULL || (pass == NULL && passlen != 0))
		return AK_ERR_INVALID;
	if ((key = ak_smem_alloc(AK_KEY_BYTES)) == NULL)
		return AK_ERR_NOMEM;
	if ((r = read_kdf(path, &first)) != AK_OK ||
	    (r = ak_kdf_derive(&first, pass, passlen, key)) != AK_OK)
		goto out;
	r = ak_store_update(path, key, apply, arg);
	/* Re-keyed between our read and the lock (passwd --kdf with the same passphrase): derive again,
	 * outside the lock, and try once more. A wrong passphrase stays AUTH. */
	if (r == AK_ERR_AUTH && read_kdf(path, &now) == AK_OK && !same_kdf(&first, &now)) {
		if ((r = ak_kdf_derive(&now, pass, passlen, key)) != AK_OK)
			goto out;
		r = ak_store_update(path, key, apply, arg);
	}
out:
	ak_smem_free(key); /* wipes */
	return r;
}
