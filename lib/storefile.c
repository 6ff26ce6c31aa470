/* storefile.c - the keystore file: header, sealing and opening, reading, locking, atomic writes.
 *
 * Layout (docs/keystore-format.md): one line of compact JSON header, '\n', then the
 * XChaCha20-Poly1305-IETF ciphertext of the plaintext document (profile.c). The header line, newline
 * included, is the associated data: any change to any byte of the file makes opening fail.
 * The header is not secret (parsed with cJSON like anything else); the plaintext only ever exists in
 * the secure arena.
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

#include "ak_log.h"
#include "ak_path.h"
#include "ak_smem.h"
#include "ak_store.h"

#define HDR_MAX 4096 /* header line, '\n' included */
#define FORMAT_NAME "akagent-keystore"
#define ALG_NAME "argon2id13"
#define CIPHER_NAME "xchacha20poly1305-ietf"
#define OPS_MIN 1
#define OPS_MAX 32
#define MEM_MIN 8192
#define MEM_MAX ((uint64_t)4 << 30)
#define LOAD_LOCK_TIMEOUT_MS 10000

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

enum { H_FORMAT, H_VERSION, H_KDF, H_CIPHER, H_NONCE, H_COUNT };
static const char *const hnames[H_COUNT] = { "format", "version", "kdf", "cipher", "nonce" };
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
	if ((root = cJSON_ParseWithOpts(line, NULL, 1)) == NULL || !cJSON_IsObject(root))
		goto out;
	bad = collect(root, hnames, hf, H_COUNT);
	/* Format and version first: a later version may have other fields, and deserves its own error. */
	if (!str_is(hf[H_FORMAT], FORMAT_NAME) || !cJSON_IsNumber(hf[H_VERSION]))
		goto out;
	if (hf[H_VERSION]->valuedouble != 1.0) {
		r = AK_ERR_VERSION;
		goto out;
	}
	tmp.version = 1;
	if (bad || hf[H_KDF] == NULL || !cJSON_IsObject(hf[H_KDF]) || !str_is(hf[H_CIPHER], CIPHER_NAME) ||
	    get_b64(hf[H_NONCE], tmp.nonce, sizeof(tmp.nonce)) != 0)
		goto out;
	if (collect(hf[H_KDF], knames, kf, K_COUNT) != 0 || !str_is(kf[K_ALG], ALG_NAME) ||
	    !cJSON_IsString(kf[K_PRESET]) ||
	    ak_kdf_preset_parse(kf[K_PRESET]->valuestring, &tmp.kdf.preset) != AK_OK ||
	    get_b64(kf[K_SALT], tmp.kdf.salt, sizeof(tmp.kdf.salt)) != 0)
		goto out;
	if (get_uint(kf[K_OPS], OPS_MIN, OPS_MAX, &v) != 0)
		goto out;
	tmp.kdf.opslimit = v;
	if (get_uint(kf[K_MEM], MEM_MIN, MEM_MAX, &v) != 0)
		goto out;
	tmp.kdf.memlimit = v;
	*h = tmp;
	*hdr_len = ll + 1;
	r = AK_OK;
out:
	cJSON_Delete(root);
	return r;
}

/* The header line for kdf and nonce, '\n' included, into buf. Returns its length, 0 on error. */
static size_t
header_format(const struct ak_kdf *kdf, const uint8_t *nonce, char *buf, size_t buflen)
{
	char salt64[sodium_base64_ENCODED_LEN(AK_SALT_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char nonce64[sodium_base64_ENCODED_LEN(AK_NONCE_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	enum ak_kdf_preset p;
	int n;

	if (ak_kdf_preset_parse(ak_kdf_preset_name(kdf->preset), &p) != AK_OK ||
	    kdf->opslimit < OPS_MIN || kdf->opslimit > OPS_MAX ||
	    kdf->memlimit < MEM_MIN || kdf->memlimit > MEM_MAX)
		return 0;
	sodium_bin2base64(salt64, sizeof(salt64), kdf->salt, AK_SALT_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(nonce64, sizeof(nonce64), nonce, AK_NONCE_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(buf, buflen,
	    "{\"format\":\"" FORMAT_NAME "\",\"version\":1,\"kdf\":{\"alg\":\"" ALG_NAME "\","
	    "\"preset\":\"%s\",\"opslimit\":%llu,\"memlimit\":%llu,\"salt\":\"%s\"},"
	    "\"cipher\":\"" CIPHER_NAME "\",\"nonce\":\"%s\"}\n",
	    ak_kdf_preset_name(kdf->preset), (unsigned long long)kdf->opslimit,
	    (unsigned long long)kdf->memlimit, salt64, nonce64);
	if (n <= 0 || (size_t)n >= buflen)
		return 0;
	return (size_t)n;
}

/* Seal / open --------------------------------------------------------------------------------------- */

/* key is the caller's (it wipes it). The plaintext exists only in the arena and is wiped here. */
enum ak_err
ak_store_open_image(const uint8_t *file, size_t len, const uint8_t *key, struct ak_header *h_out,
    struct ak_store **out)
{
	struct ak_header h;
	unsigned char *m = NULL;
	unsigned long long mlen = 0;
	size_t hl, clen;
	enum ak_err r;

	if (file == NULL || key == NULL || out == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	if ((r = ak_header_parse(file, len, &h, &hl)) != AK_OK)
		return r;
	clen = len - hl;
	/* Too short to hold a tag: the file was cut, which is tampering like any other. */
	if (clen < crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return AK_ERR_AUTH;
	if ((m = ak_smem_alloc(clen - crypto_aead_xchacha20poly1305_ietf_ABYTES + 1)) == NULL)
		return AK_ERR_NOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, file + hl, clen, file, hl,
	    h.nonce, key) != 0) {
		r = AK_ERR_AUTH;
		goto out;
	}
	if ((r = ak_store_parse((const char *)m, (size_t)mlen, out)) != AK_OK)
		goto out;
	if (h_out != NULL)
		*h_out = h;
out:
	ak_smem_free(m); /* wipes the plaintext */
	return r;
}

/* key is the caller's (it wipes it). *out is ciphertext: plain malloc, the caller frees it. */
enum ak_err
ak_store_seal_image(const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key,
    uint8_t **out, size_t *outlen)
{
	char hdr[HDR_MAX];
	uint8_t nonce[AK_NONCE_BYTES];
	char *pt = NULL;
	size_t ptlen = 0, hl;
	uint8_t *img = NULL;
	unsigned long long clen = 0;
	enum ak_err r;

	if (s == NULL || kdf == NULL || key == NULL || out == NULL || outlen == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	/* A fresh random nonce per file: 192 bits, so collisions are not a concern. */
	randombytes_buf(nonce, sizeof(nonce));
	if ((hl = header_format(kdf, nonce, hdr, sizeof(hdr))) == 0)
		return AK_ERR_INVALID;
	if ((r = ak_store_serialize(s, &pt, &ptlen)) != AK_OK)
		return r;
	if (ptlen > AK_FILE_MAX - hl - crypto_aead_xchacha20poly1305_ietf_ABYTES) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((img = malloc(hl + ptlen + crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	memcpy(img, hdr, hl);
	crypto_aead_xchacha20poly1305_ietf_encrypt(img + hl, &clen, (const unsigned char *)pt, ptlen,
	    img, hl, NULL, nonce, key);
	*out = img;
	*outlen = hl + (size_t)clen;
	r = AK_OK;
out:
	ak_smem_free(pt); /* wipes the plaintext */
	return r;
}

/* Files ---------------------------------------------------------------------------------------------- */

/* Symlinks are followed on purpose: users may keep the keystore elsewhere and link to it. */
enum ak_err
ak_file_read(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t size, got = 0;
	ssize_t n;
	int fd;
	enum ak_err r = AK_ERR_IO;

	if (path == NULL || out == NULL || len == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return errno == ENOENT ? AK_ERR_NO_STORE : AK_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if (st.st_size < 0 || (uint64_t)st.st_size > AK_FILE_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size ? size : 1)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	while (got < size) {
		if ((n = read(fd, buf + got, size - got)) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
	r = AK_OK;
out:
	free(buf);
	close(fd);
	return r;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
	start = mono_ms();
	for (;;) {
		if (flock(lfd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			close(lfd);
			return AK_ERR_IO;
		}
		if (timeout_ms >= 0 && mono_ms() - start >= (uint64_t)timeout_ms) {
			close(lfd);
			return AK_ERR_BUSY;
		}
		nanosleep(&ten_ms, NULL);
	}
	*fd = lfd;
	return AK_OK;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) { /* should not happen for a regular file; do not spin */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make the rename/link itself durable. */
static int
fsync_dir_of(const char *path)
{
	char dir[AK_PATH_MAX];
	int dfd, rc;

	if (ak_path_dirname(path, dir, sizeof(dir)) != AK_OK)
		return -1;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(dfd);
	if (close(dfd) != 0)
		rc = -1;
	return rc;
}

/* The error for a failed write step: a full disk and a refusal are worth telling apart from I/O. */
static enum ak_err
io_err(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return AK_ERR_NO_SPACE;
	case EACCES:
	case EPERM:
	case EROFS:
		return AK_ERR_DENIED;
	default:
		return AK_ERR_IO;
	}
}

/* Put tmp at path only if path does not exist. renameat2(RENAME_NOREPLACE) first: one step, nothing
 * left behind; link() where the filesystem lacks it (then *tmp_gone = 0: the caller drops tmp). */
static enum ak_err
place_exclusive(const char *tmp, const char *path, int *tmp_gone)
{
	*tmp_gone = 0;
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		*tmp_gone = 1;
		return AK_OK;
	}
	if (errno == EEXIST)
		return AK_ERR_STORE_EXISTS;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return io_err(errno);
#endif
	if (link(tmp, path) == 0)
		return AK_OK;
	if (errno == EEXIST)
		return AK_ERR_STORE_EXISTS;
	return io_err(errno);
}

enum ak_err
ak_file_write_atomic(const char *path, const uint8_t *data, size_t len, int exclusive)
{
	char tmp[AK_PATH_MAX];
	int fd = -1, have_tmp = 0, gone = 0, n;
	enum ak_err r = AK_ERR_IO;

	if (path == NULL || (data == NULL && len != 0))
		return AK_ERR_INVALID;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return AK_ERR_INVALID;
	/* Same directory as path, so the rename is atomic; mkostemp creates it 0600 with O_EXCL. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return io_err(errno);
	have_tmp = 1;
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		r = io_err(errno);
		goto out;
	}
	n = close(fd);
	fd = -1;
	if (n != 0) { /* NFS and friends report write errors at close */
		r = io_err(errno);
		goto out;
	}
	if (exclusive) {
		if ((r = place_exclusive(tmp, path, &gone)) != AK_OK)
			goto out;
		if (gone)
			have_tmp = 0;
	} else {
		if (rename(tmp, path) != 0) {
			r = io_err(errno);
			goto out;
		}
		have_tmp = 0;
	}
	/*
	 * From here the new content is in place: reporting failure now would be a lie the caller acts on
	 * (the agent would keep a store that no longer matches the file; passwd would say the old
	 * passphrase still works). What can still fail only weakens durability across a power loss, or
	 * leaves a stray temp name (after link): warn and report success.
	 */
	r = AK_OK;
	if (have_tmp && unlink(tmp) != 0)
		ak_warn("%s: written, but could not remove %s: %s", path, tmp, strerror(errno));
	have_tmp = 0;
	if (fsync_dir_of(path) != 0)
		ak_warn("%s: written, but syncing its directory failed (%s): the change may not survive "
		    "a power loss", path, strerror(errno));
out:
	if (fd != -1)
		close(fd);
	if (have_tmp)
		unlink(tmp);
	return r;
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

/* pass is the caller's (it wipes it). key is the caller's secure buffer: filled on success, wiped here
 * on failure. On success the lock is held and *lockfd is the caller's to close. */
enum ak_err
ak_store_load_locked(const char *path, const char *pass, size_t passlen, int *lockfd,
    struct ak_header *hdr, uint8_t *key, struct ak_store **out)
{
	struct ak_header h, first;
	uint8_t *img = NULL;
	size_t len = 0, hl;
	int fd = -1;
	enum ak_err r;

	if (path == NULL || lockfd == NULL || hdr == NULL || key == NULL || out == NULL)
		return AK_ERR_INVALID;
	*lockfd = -1;
	*out = NULL;
	/*
	 * Derive before taking the lock: Argon2id may take seconds, and every other writer (the agent's
	 * event loop among them) would wait that long. Then lock, re-read, and derive again only if the
	 * file was re-keyed in between; what we decrypt under the lock is what the next write replaces.
	 */
	if ((r = ak_file_read(path, &img, &len)) != AK_OK ||
	    (r = ak_header_parse(img, len, &first, &hl)) != AK_OK ||
	    (r = ak_kdf_derive(&first.kdf, pass, passlen, key)) != AK_OK)
		goto out;
	free(img);
	img = NULL;
	if ((r = ak_store_lock(path, LOAD_LOCK_TIMEOUT_MS, &fd)) != AK_OK ||
	    (r = ak_file_read(path, &img, &len)) != AK_OK ||
	    (r = ak_header_parse(img, len, &h, &hl)) != AK_OK)
		goto out;
	if (!same_kdf(&first.kdf, &h.kdf) && (r = ak_kdf_derive(&h.kdf, pass, passlen, key)) != AK_OK)
		goto out;
	if ((r = ak_store_open_image(img, len, key, &h, out)) != AK_OK)
		goto out;
	*hdr = h;
	*lockfd = fd;
	fd = -1;
out:
	if (r != AK_OK)
		sodium_memzero(key, AK_KEY_BYTES);
	if (fd != -1)
		close(fd);
	free(img); /* ciphertext: nothing to wipe */
	return r;
}

/* key is the caller's (it wipes it). */
enum ak_err
ak_store_save(const char *path, const struct ak_store *s, const struct ak_kdf *kdf, const uint8_t *key)
{
	uint8_t *img = NULL;
	size_t len = 0;
	enum ak_err r;

	if ((r = ak_store_seal_image(s, kdf, key, &img, &len)) != AK_OK)
		return r;
	r = ak_file_write_atomic(path, img, len, 0);
	free(img);
	return r;
}
