/* fuzz_keystore.c - the keystore file: header parser, decryption path, plaintext document parser.
 *
 * Input: byte 0 picks the mode (mod 3), the rest is
 *  0: a whole file image: ak_header_parse, then ak_store_open_image with the fixed key (a mutated
 *     image must fail with AUTH or a format error, never crash);
 *  1: a decrypted plaintext document for ak_store_parse (one profile at a time), which must agree with
 *     ak_store_parse_whole (one cJSON tree of the whole document) on the verdict and the store;
 *  2: the same plaintext, sealed under the fixed key (what someone holding the key, or a buggy
 *     writer, could produce: ak_store_seal_bytes) and opened through ak_store_open_image.
 * Properties: a parsed header has every field in range and its length ends at the newline; open_image
 * agrees with parse on the decrypted bytes (the same store; AUTH wherever parse fails, so there is no
 * telling a bad plaintext from a wrong key); a parsed store is sorted with
 * unique valid names, and serialize -> parse -> serialize is a fixed point; sealing a parsed store and
 * opening it gives it back; the secure arena returns to its starting level.
 */
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "fuzz.h"

static uint8_t key[AK_KEY_BYTES];
static struct ak_kdf kdf;

static size_t
in_use(void)
{
	struct ak_smem_stats s;

	ak_smem_stats(&s);
	return s.in_use;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (ak_smem_init() != 0)
		abort();
	ak_smem_hook_cjson();
	if (fuzz_fixed_key(&kdf, key) != 0)
		abort();
	return 0;
}

static char *
ser(const struct ak_store *s, size_t *len)
{
	char *t = NULL;

	FUZZ_CHECK(ak_store_serialize(s, &t, len) == AK_OK, "a parsed store serializes");
	return t;
}

static void
check_store(const struct ak_store *s)
{
	struct ak_store *s2 = NULL, *s3 = NULL;
	char *a, *b, *c;
	size_t al, bl, cl, i;
	uint8_t *img = NULL;
	size_t imglen = 0;
	struct ak_header h;

	FUZZ_CHECK(s->n <= AK_PROFILES_MAX, "profile count");
	for (i = 0; i < s->n; i++) {
		FUZZ_CHECK(ak_profile_validate(s->p[i]) == AK_OK, "parsed profile validates");
		if (i > 0)
			FUZZ_CHECK(strcmp(s->p[i - 1]->name, s->p[i]->name) < 0, "sorted, unique names");
		FUZZ_CHECK(ak_store_find(s, s->p[i]->name) == s->p[i], "find");
	}
	a = ser(s, &al);
	FUZZ_CHECK(ak_store_parse(a, al, &s2) == AK_OK, "serialized store parses");
	b = ser(s2, &bl);
	FUZZ_CHECK(al == bl && memcmp(a, b, al) == 0, "serialize/parse is a fixed point");
	/* Seal and open: the whole file path round-trips. */
	FUZZ_CHECK(ak_store_seal_image(s, &kdf, key, &img, &imglen) == AK_OK, "seal");
	FUZZ_CHECK(ak_store_open_image(img, imglen, key, &h, &s3) == AK_OK, "sealed store opens");
	c = ser(s3, &cl);
	FUZZ_CHECK(al == cl && memcmp(a, c, al) == 0, "seal/open round trip");
	FUZZ_CHECK(h.kdf.opslimit == kdf.opslimit && h.kdf.memlimit == kdf.memlimit &&
	    memcmp(h.kdf.salt, kdf.salt, AK_SALT_BYTES) == 0, "header keeps the kdf");
	free(img);
	ak_smem_free(a);
	ak_smem_free(b);
	ak_smem_free(c);
	ak_store_free(s2);
	ak_store_free(s3);
}

static void
mode_image(const uint8_t *d, size_t n)
{
	struct ak_header h;
	struct ak_store *s = (struct ak_store *)1;
	size_t hl = 0;
	enum ak_err r;

	r = ak_header_parse(d, n, &h, &hl);
	if (r == AK_OK) {
		FUZZ_CHECK(hl >= 2 && hl <= n && hl <= 4096 && d[hl - 1] == '\n', "header length");
		FUZZ_CHECK(memchr(d, '\n', hl - 1) == NULL, "header is one line");
		FUZZ_CHECK(h.version == 1 || h.version == 2, "header version");
		FUZZ_CHECK(h.kdf.opslimit >= AK_KDF_OPS_MIN && h.kdf.opslimit <= AK_KDF_OPS_MAX,
		    "opslimit range (never above the sensitive preset)");
		FUZZ_CHECK(h.kdf.memlimit >= AK_KDF_MEM_MIN && h.kdf.memlimit <= AK_KDF_MEM_MAX,
		    "memlimit range (never above the sensitive preset)");
		FUZZ_CHECK(ak_kdf_preset_name(h.kdf.preset) != NULL, "preset");
	} else {
		FUZZ_CHECK(r == AK_ERR_BAD_FORMAT || r == AK_ERR_VERSION, "header error code");
	}
	r = ak_store_open_image(d, n, key, NULL, &s);
	if (r == AK_OK) {
		check_store(s);
		ak_store_free(s);
	} else {
		FUZZ_CHECK(s == NULL, "failed open leaves *out NULL");
		FUZZ_CHECK(r == AK_ERR_AUTH || r == AK_ERR_BAD_FORMAT || r == AK_ERR_VERSION ||
		    r == AK_ERR_NOMEM, "open error code");
	}
}

static void
mode_parse(const uint8_t *d, size_t n)
{
	struct ak_store *s = (struct ak_store *)1, *w = (struct ak_store *)1;
	enum ak_err r, rw;
	char *a, *b;
	size_t al, bl;

	r = ak_store_parse((const char *)d, n, &s);
	/* The reader that parses one profile at a time answers as one cJSON tree of the whole would. */
	rw = ak_store_parse_whole((const char *)d, n, &w);
	FUZZ_CHECK(r == rw, "the profile-at-a-time reader and the whole-tree one give the same verdict");
	if (r != AK_OK) {
		FUZZ_CHECK(s == NULL, "failed parse leaves *out NULL");
		FUZZ_CHECK(r == AK_ERR_BAD_FORMAT || r == AK_ERR_VERSION, "parse error code");
		ak_store_free(w == (struct ak_store *)1 ? NULL : w);
		return;
	}
	if (rw == AK_OK) {
		a = ser(s, &al);
		b = ser(w, &bl);
		FUZZ_CHECK(al == bl && memcmp(a, b, al) == 0, "both readers read the same store");
		ak_smem_free(a);
		ak_smem_free(b);
		ak_store_free(w);
	}
	check_store(s);
	ak_store_free(s);
}

static void
mode_sealed(const uint8_t *d, size_t n)
{
	uint8_t *img = NULL;
	size_t imglen = 0;
	struct ak_store *a = NULL, *b = NULL;
	enum ak_err ra, rb;
	char *sa, *sb;
	size_t la, lb;

	FUZZ_CHECK(ak_store_seal_bytes(d, n, &kdf, key, &img, &imglen) == AK_OK, "seal bytes");
	ra = ak_store_open_image(img, imglen, key, NULL, &a);
	rb = ak_store_parse((const char *)d, n, &b);
	FUZZ_CHECK((ra == AK_OK) == (rb == AK_OK), "open_image and parse agree on the plaintext");
	FUZZ_CHECK(rb == AK_OK || rb == AK_ERR_NOMEM || ra == AK_ERR_AUTH,
	    "a plaintext that does not parse opens as AUTH, like a wrong key");
	if (ra == AK_OK) {
		sa = ser(a, &la);
		sb = ser(b, &lb);
		FUZZ_CHECK(la == lb && memcmp(sa, sb, la) == 0, "same store either way");
		ak_smem_free(sa);
		ak_smem_free(sb);
	}
	ak_store_free(a);
	ak_store_free(b);
	free(img);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t base = in_use();

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		mode_image(data + 1, size - 1);
		break;
	case 1:
		mode_parse(data + 1, size - 1);
		break;
	case 2:
		mode_sealed(data + 1, size - 1);
		break;
	}
	FUZZ_CHECK(in_use() == base, "secure arena back to where it was (something leaked)");
	return 0;
}
