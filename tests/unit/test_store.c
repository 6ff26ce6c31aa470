/* test_store.c - keystore model, document, file format, atomic writes and crash safety.
 * Uses the insecure-test KDF preset throughout so that the whole test stays fast. */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <cjson/cJSON.h>

#include "ak_file.h"
#include "ak_smem.h"
#include "ak_edit.h"
#include "ak_rotate.h"
#include "ak_store.h"
#include "ak_util.h"
#include "t.h"

static char tmpdir[] = "/tmp/ak-test-store-XXXXXX";
static const char pass[] = "correct horse battery staple";

static struct ak_profile *
mkprofile(const char *name, const char *secret, const char *desc)
{
	struct ak_profile *p = ak_profile_new();

	if (p == NULL)
		abort();
	if (ak_profile_set_field(&p->name, name) != AK_OK ||
	    ak_profile_set_field(&p->provider, "anthropic") != AK_OK ||
	    ak_profile_set_field(&p->secret_var, "ANTHROPIC_API_KEY") != AK_OK ||
	    ak_profile_set_field(&p->secret, secret) != AK_OK ||
	    ak_profile_set_field(&p->description, desc) != AK_OK)
		abort();
	p->created = 1700000000;
	p->rotated = 1700000100;
	return p;
}

static struct ak_store *
mkstore(void)
{
	struct ak_store *s = ak_store_new();
	struct ak_profile *p;

	CHECK(s != NULL);
	p = mkprofile("production", "sk-ant-api03-AAAAprod", "main key");
	CHECK_EQ(ak_profile_set_var(p, "ANTHROPIC_MODEL", "claude-sonnet-4-5-20250929"), AK_OK);
	CHECK_EQ(ak_profile_set_var(p, "MAX_TOKENS", "1024"), AK_OK);
	CHECK_EQ(ak_store_put(s, p, 0), AK_OK);
	CHECK_EQ(ak_store_put(s, mkprofile("staging", "sk-ant-api03-BBBBstag", ""), 0), AK_OK);
	CHECK_EQ(ak_store_put(s, mkprofile("project-a", "sk-ant-api03-CCCCproj", "a"), 0), AK_OK);
	/* put stamped them with the current time: pin them again, the documents below spell them out. */
	for (size_t i = 0; i < s->n; i++) {
		s->p[i]->created = 1700000000;
		s->p[i]->rotated = 1700000100;
	}
	return s;
}

static int
profiles_equal(const struct ak_profile *a, const struct ak_profile *b)
{
	size_t i;

	if (strcmp(a->name, b->name) || strcmp(a->provider, b->provider) ||
	    strcmp(a->secret_var, b->secret_var) || strcmp(a->secret, b->secret) ||
	    strcmp(a->description, b->description) || strcmp(a->source, b->source) ||
	    a->created != b->created || a->rotated != b->rotated || a->nvars != b->nvars)
		return 0;
	for (i = 0; i < a->nvars; i++)
		if (strcmp(a->vars[i].name, b->vars[i].name) || strcmp(a->vars[i].value, b->vars[i].value))
			return 0;
	return 1;
}

static int
stores_equal(const struct ak_store *a, const struct ak_store *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (!profiles_equal(a->p[i], b->p[i]))
			return 0;
	return 1;
}

static void
test_kdf(void)
{
	struct ak_kdf k;
	enum ak_kdf_preset p;
	uint8_t k1[AK_KEY_BYTES], k2[AK_KEY_BYTES];

	CHECK_EQ(ak_kdf_preset_parse("insecure-test", &p), AK_OK);
	CHECK_EQ(p, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_preset_parse("sensitive", &p), AK_OK);
	CHECK_EQ(p, AK_KDF_SENSITIVE);
	CHECK(ak_kdf_preset_parse("fast", &p) != AK_OK);
	CHECK_STR(ak_kdf_preset_name(AK_KDF_MODERATE), "moderate");
	CHECK_STR(ak_kdf_preset_name(AK_KDF_INTERACTIVE), "interactive");
	ak_kdf_new(&k, AK_KDF_MODERATE);
	CHECK_EQ(k.opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
	CHECK_EQ(k.memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
	CHECK(!ak_kdf_is_weak(&k));
	ak_kdf_new(&k, AK_KDF_INSECURE_TEST);
	CHECK_EQ(k.opslimit, 1);
	CHECK_EQ(k.memlimit, 8192);
	CHECK(ak_kdf_is_weak(&k));
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), k1), AK_OK);
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), k2), AK_OK);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);
	CHECK_EQ(ak_kdf_derive(&k, "other", 5, k2), AK_OK);
	CHECK(memcmp(k1, k2, sizeof(k1)) != 0);
	k.opslimit = 0;
	CHECK(ak_kdf_derive(&k, pass, strlen(pass), k2) != AK_OK);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
}

static void
test_model(void)
{
	int64_t now0 = ak_now_s();
	struct ak_store *s = mkstore();
	struct ak_profile *p, *d;

	CHECK_EQ(s->n, 3);
	CHECK_STR(s->p[0]->name, "production");
	CHECK_STR(s->p[1]->name, "project-a");
	CHECK_STR(s->p[2]->name, "staging");
	CHECK(ak_store_find(s, "staging") != NULL);
	CHECK(ak_store_find(s, "nope") == NULL);
	/* put stamps a new profile's times (whatever it came with), and on a replacement keeps `created`
	 * and moves `rotated` only when the secret changed. */
	ak_store_remove(s, "staging");
	CHECK_EQ(ak_store_put(s, mkprofile("staging", "sk-ant-api03-BBBBstag", ""), 0), AK_OK);
	CHECK(ak_store_find(s, "staging")->created >= now0 && ak_store_find(s, "staging")->created <=
	    ak_now_s());
	CHECK_EQ(ak_store_find(s, "staging")->rotated, ak_store_find(s, "staging")->created);
	ak_store_find(s, "staging")->created = 1700000000;
	ak_store_find(s, "staging")->rotated = 1700000100;
	p = mkprofile("staging", "sk-ant-api03-BBBBstag", "same secret");
	p->created = 5;
	p->rotated = 6;
	CHECK_EQ(ak_store_put(s, p, 0), AK_ERR_PROFILE_EXISTS);
	CHECK_EQ(ak_store_put(s, p, 1), AK_OK);
	CHECK_EQ(ak_store_find(s, "staging")->created, 1700000000); /* kept */
	CHECK_EQ(ak_store_find(s, "staging")->rotated, 1700000100); /* same secret: kept */
	p = mkprofile("staging", "new", "");
	p->created = 5;
	CHECK_EQ(ak_store_put(s, p, 1), AK_OK);
	CHECK_EQ(ak_store_find(s, "staging")->created, 1700000000); /* kept */
	CHECK(ak_store_find(s, "staging")->rotated >= now0); /* new secret: now */
	CHECK_STR(ak_store_find(s, "staging")->secret, "new");
	CHECK_EQ(ak_store_remove(s, "project-a"), AK_OK);
	CHECK_EQ(ak_store_remove(s, "project-a"), AK_ERR_NO_PROFILE);
	CHECK_EQ(s->n, 2);
	CHECK_STR(s->p[1]->name, "staging");

	d = ak_profile_dup(ak_store_find(s, "production"));
	CHECK(d != NULL && profiles_equal(d, ak_store_find(s, "production")));
	CHECK_EQ(ak_profile_set_var(d, "MAX_TOKENS", "2048"), AK_OK); /* replace */
	CHECK_EQ(d->nvars, 2);
	CHECK_STR(d->vars[1].value, "2048");
	CHECK_EQ(ak_profile_set_var(d, "1X", "v"), AK_ERR_BAD_VARNAME);
	CHECK_EQ(ak_profile_validate(d), AK_OK);
	CHECK_EQ(ak_profile_set_var(d, "ANTHROPIC_API_KEY", "v"), AK_OK);
	CHECK(ak_profile_validate(d) != AK_OK); /* secret_var is also a plain var */
	ak_profile_free(d);

	d = mkprofile("x", "", "");
	CHECK_EQ(ak_profile_validate(d), AK_ERR_EMPTY);
	CHECK_EQ(ak_store_put(s, d, 0), AK_ERR_EMPTY);
	ak_profile_free(d);
	d = mkprofile("bad name", "s", "");
	CHECK_EQ(ak_store_put(s, d, 0), AK_ERR_BAD_NAME);
	ak_profile_free(d);
	ak_profile_free(NULL);
	ak_store_free(NULL);
	ak_store_free(s);
}

static void
test_roundtrip(void)
{
	struct ak_store *s = mkstore(), *o = NULL;
	struct ak_kdf kdf;
	struct ak_header h;
	uint8_t key[AK_KEY_BYTES], *img = NULL;
	size_t len = 0, dlen1, dlen2;
	char *d1, *d2;

	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_derive(&kdf, pass, strlen(pass), key), AK_OK);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, &h, &o), AK_OK);
	CHECK(o != NULL && stores_equal(s, o));
	CHECK_EQ(h.version, 2);
	CHECK_EQ(h.kdf.preset, AK_KDF_INSECURE_TEST);
	CHECK_EQ(h.kdf.opslimit, 1);
	CHECK_EQ(h.kdf.memlimit, 8192);
	CHECK(memcmp(h.kdf.salt, kdf.salt, AK_SALT_BYTES) == 0);
	/* Serialization is deterministic and follows the documented shape. */
	CHECK_EQ(ak_store_serialize(s, &d1, &dlen1), AK_OK);
	CHECK_EQ(ak_store_serialize(o, &d2, &dlen2), AK_OK);
	CHECK(dlen1 == dlen2 && memcmp(d1, d2, dlen1) == 0);
	CHECK(strncmp(d1, "{\"version\":3,\"profiles\":[{\"name\":\"production\",\"provider\":\"anthropic\","
	    "\"secret_var\":\"ANTHROPIC_API_KEY\",\"secret\":\"sk-ant-api03-AAAAprod\",\"description\":"
	    "\"main key\",\"source\":\"\",\"created\":1700000000,\"rotated\":1700000100,\"vars\":[{\"name\":"
	    "\"ANTHROPIC_MODEL\",\"value\":\"claude-sonnet-4-5-20250929\"},", 250) == 0);
	ak_smem_free(d1);
	ak_smem_free(d2);
	/* The header is one compact line. */
	CHECK(memcmp(img, "{\"format\":\"akagent-keystore\",\"version\":2,\"kdf\":{\"alg\":\"argon2id13\","
	    "\"preset\":\"insecure-test\",\"opslimit\":1,\"memlimit\":8192,\"salt\":\"", 120) == 0);
	ak_store_free(o);
	o = NULL;
	/* Two seals use two nonces. */
	{
		uint8_t *img2 = NULL;
		size_t len2 = 0;
		CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img2, &len2), AK_OK);
		CHECK(len2 == len && memcmp(img, img2, len) != 0);
		free(img2);
	}
	/* Wrong key. */
	key[0] ^= 1;
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
	CHECK(o == NULL);
	CHECK_EQ(ak_kdf_derive(&kdf, "wrong", 5, key), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
	/* An empty store round-trips too. */
	ak_store_free(s);
	s = ak_store_new();
	free(img);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	CHECK(o != NULL && o->n == 0);
	ak_store_free(o);
	ak_store_free(s);
	free(img);
	sodium_memzero(key, sizeof(key));
}

static void
test_bitflips(void)
{
	struct ak_store *s = ak_store_new(), *o;
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], *img = NULL;
	size_t len = 0, i, bad = 0;
	int b;

	CHECK_EQ(ak_store_put(s, mkprofile("p", "k", ""), 0), AK_OK);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			img[i] ^= (uint8_t)(1u << b);
			o = NULL;
			if (ak_store_open_image(img, len, key, NULL, &o) == AK_OK || o != NULL)
				bad++;
			ak_store_free(o);
			img[i] ^= (uint8_t)(1u << b);
		}
	}
	CHECK_EQ(bad, 0);
	/* Every truncation too. */
	for (i = 0; i < len; i++) {
		o = NULL;
		if (ak_store_open_image(img, i, key, NULL, &o) == AK_OK)
			bad++;
	}
	CHECK_EQ(bad, 0);
	o = NULL;
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	ak_store_free(o);
	printf("bit flips: %zu bytes x 8 bits checked\n", len);
	ak_store_free(s);
	free(img);
}

/* Replace the first occurrence of from by to in the image's header; returns a new image. */
static uint8_t *
edit(const uint8_t *img, size_t len, const char *from, const char *to, size_t *nlen)
{
	const uint8_t *at = memmem(img, len, from, strlen(from));
	uint8_t *n;
	size_t off;

	if (at == NULL)
		abort();
	off = (size_t)(at - img);
	*nlen = len - strlen(from) + strlen(to);
	n = malloc(*nlen);
	memcpy(n, img, off);
	memcpy(n + off, to, strlen(to));
	memcpy(n + off + strlen(to), at + strlen(from), len - off - strlen(from));
	return n;
}

static void
test_header_tamper(void)
{
	static const struct {
		const char *from, *to;
		enum ak_err want;
	} cases[] = {
		{ "\"insecure-test\"", "\"interactive\"", AK_ERR_AUTH },
		{ "\"opslimit\":1", "\"opslimit\":2", AK_ERR_AUTH },
		{ "\"memlimit\":8192", "\"memlimit\":8193", AK_ERR_AUTH },
		{ "{\"format\"", "{ \"format\"", AK_ERR_AUTH },
		{ "}\n", "} \n", AK_ERR_AUTH },
		{ "\"version\":2", "\"version\":3", AK_ERR_VERSION },
		/* A version-1 header has no commitment; a version-2 header must have one. */
		{ "\"version\":2", "\"version\":1", AK_ERR_BAD_FORMAT },
		{ "\"commitment\"", "\"commitmenu\"", AK_ERR_BAD_FORMAT },
		{ "\"commitment\":\"", "\"commitment\":\"AAAA", AK_ERR_BAD_FORMAT },
		{ "\"commitment\":\"", "\"x\":\"", AK_ERR_BAD_FORMAT },
		{ "akagent-keystore", "akagent-keystorf", AK_ERR_BAD_FORMAT },
		{ "argon2id13", "argon2i13", AK_ERR_BAD_FORMAT },
		{ "xchacha20poly1305-ietf", "chacha20poly1305-ietf", AK_ERR_BAD_FORMAT },
		{ "\"opslimit\":1", "\"opslimit\":33", AK_ERR_BAD_FORMAT },
		/* Nothing above the sensitive preset (4 passes, 1 GiB): refused before any derivation. */
		{ "\"opslimit\":1", "\"opslimit\":4", AK_ERR_AUTH },
		{ "\"opslimit\":1", "\"opslimit\":5", AK_ERR_BAD_FORMAT },
		{ "\"opslimit\":1", "\"opslimit\":32", AK_ERR_BAD_FORMAT },
		{ "\"memlimit\":8192", "\"memlimit\":1073741824", AK_ERR_AUTH },
		{ "\"memlimit\":8192", "\"memlimit\":1073742848", AK_ERR_BAD_FORMAT },
		{ "\"memlimit\":8192", "\"memlimit\":4294967296", AK_ERR_BAD_FORMAT },
		{ "\"opslimit\":1", "\"opslimit\":0", AK_ERR_BAD_FORMAT },
		{ "\"opslimit\":1", "\"opslimit\":1.5", AK_ERR_BAD_FORMAT },
		{ "\"opslimit\":1", "\"opslimit\":\"1\"", AK_ERR_BAD_FORMAT },
		{ "\"memlimit\":8192", "\"memlimit\":4096", AK_ERR_BAD_FORMAT },
		{ "\"memlimit\":8192", "\"memlimit\":4294967297", AK_ERR_BAD_FORMAT },
		{ "\"insecure-test\"", "\"fast\"", AK_ERR_BAD_FORMAT },
		{ "\"salt\":\"", "\"salt\":\"AAAA", AK_ERR_BAD_FORMAT },
		{ "\"nonce\":\"", "\"nonce\":\"AAAA", AK_ERR_BAD_FORMAT },
		{ "\"cipher\"", "\"extra\":1,\"cipher\"", AK_ERR_BAD_FORMAT },
		{ "\"version\":2", "\"version\":2,\"version\":2", AK_ERR_BAD_FORMAT },
		{ "}\n", "}x\n", AK_ERR_BAD_FORMAT },
		{ "}\n", "}}", AK_ERR_BAD_FORMAT },
	};
	struct ak_store *s = ak_store_new(), *o = NULL;
	struct ak_kdf kdf;
	struct ak_header h;
	uint8_t key[AK_KEY_BYTES], *img = NULL, *n;
	size_t len = 0, nlen, i, hl;
	char *salt;

	CHECK_EQ(ak_store_put(s, mkprofile("p", "k", ""), 0), AK_OK);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_header_parse(img, len, &h, &hl), AK_OK);
	CHECK_EQ(img[hl - 1], '\n');
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum ak_err r;
		n = edit(img, len, cases[i].from, cases[i].to, &nlen);
		r = ak_store_open_image(n, nlen, key, NULL, &o);
		if (r != cases[i].want)
			fprintf(stderr, "header case %zu (%s -> %s): got %d\n", i, cases[i].from, cases[i].to, r);
		CHECK_EQ(r, cases[i].want);
		CHECK(o == NULL);
		free(n);
	}
	/* A salt character changed (keeping the base64 canonical: the first character). */
	salt = (char *)memmem(img, len, "\"salt\":\"", 8) + 8;
	*salt = *salt == 'A' ? 'B' : 'A';
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
	/* No newline at all within the header limit. */
	memset(img, ' ', len);
	CHECK_EQ(ak_header_parse(img, len, &h, &hl), AK_ERR_BAD_FORMAT);
	ak_store_free(s);
	free(img);
}

/* Encrypt an arbitrary plaintext with the right key under a valid header. */
static uint8_t *
seal_raw(const char *doc, size_t dlen, const struct ak_kdf *kdf, const uint8_t *key, size_t *outlen)
{
	uint8_t *out = NULL;

	if (ak_store_seal_bytes((const uint8_t *)doc, dlen, kdf, key, &out, outlen) != AK_OK)
		abort();
	return out;
}

/* A version-1 file, built the way version 1 was written: header without a commitment, the plaintext
 * encrypted under the store key itself. */
static uint8_t *
seal_v1(const char *doc, size_t dlen, const struct ak_kdf *kdf, const uint8_t *key, size_t *outlen)
{
	char hdr[1024], salt64[64], nonce64[64];
	uint8_t nonce[AK_NONCE_BYTES], *out;
	unsigned long long clen;
	int hl;

	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2base64(salt64, sizeof(salt64), kdf->salt, AK_SALT_BYTES, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(nonce64, sizeof(nonce64), nonce, sizeof(nonce), sodium_base64_VARIANT_ORIGINAL);
	hl = snprintf(hdr, sizeof(hdr), "{\"format\":\"akagent-keystore\",\"version\":1,\"kdf\":{\"alg\":"
	    "\"argon2id13\",\"preset\":\"%s\",\"opslimit\":%llu,\"memlimit\":%llu,\"salt\":\"%s\"},"
	    "\"cipher\":\"xchacha20poly1305-ietf\",\"nonce\":\"%s\"}\n", ak_kdf_preset_name(kdf->preset),
	    (unsigned long long)kdf->opslimit, (unsigned long long)kdf->memlimit, salt64, nonce64);
	out = malloc((size_t)hl + dlen + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	if (out == NULL)
		abort();
	memcpy(out, hdr, (size_t)hl);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + hl, &clen, (const unsigned char *)doc, dlen,
	    out, (unsigned long long)hl, NULL, nonce, key);
	*outlen = (size_t)hl + (size_t)clen;
	return out;
}

#define P_HEAD "{\"version\":1,\"profiles\":["
#define P_FIELDS(name, sv, sec, desc, cr, vars) \
	"{\"name\":" name ",\"provider\":\"anthropic\",\"secret_var\":" sv ",\"secret\":" sec \
	",\"description\":" desc ",\"source\":\"\",\"created\":" cr ",\"rotated\":2,\"vars\":" vars "}"
#define P_OK P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[{\"name\":\"X\",\"value\":\"1\"}]")
#define DOC(body) P_HEAD body "]}"

static void
test_malformed(void)
{
	static const char *const bad[] = {
		"", " ", "[]", "{}", "null", "{\"version\":1}", "{\"profiles\":[]}",
		"{\"version\":\"1\",\"profiles\":[]}", "{\"version\":1,\"profiles\":{}}",
		"{\"version\":1,\"profiles\":[],\"x\":1}", "{\"version\":1,\"version\":1,\"profiles\":[]}",
		"{\"version\":1,\"profiles\":[]} x", "{\"version\":1,\"profiles\":[]}{}",
		"{\"version\":1,\"profiles\":[", DOC("1"), DOC("null"), DOC("{}"), DOC(P_OK "," P_OK),
		DOC(P_FIELDS("1", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"bad name\"", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"\"", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"..\"", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a/b\"", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "\"K\"",
		    "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\\u0000b\"", "\"K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"1K\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K-\"", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "null", "\"s\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\\u0000x\"", "\"\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"x\\u0000\"", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "1", "1", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1.5", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "\"1\"", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1e300", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "true", "[]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "{}")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[1]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[{\"name\":\"X\"}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[{\"name\":\"X\",\"value\":1}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1",
		    "[{\"name\":\"X\",\"value\":\"1\",\"x\":\"\"}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[{\"name\":\"A-B\",\"value\":\"1\"}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[{\"name\":\"K\",\"value\":\"1\"}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1",
		    "[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"X\",\"value\":\"2\"}]")),
		DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1",
		    "[{\"name\":\"X\",\"value\":\"a\\u0000\"}]")),
		DOC("{\"name\":\"a\",\"provider\":\"anthropic\",\"secret_var\":\"K\",\"secret\":\"s\","
		    "\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":2}"),
		DOC("{\"name\":\"a\",\"name\":\"b\",\"provider\":\"anthropic\",\"secret_var\":\"K\",\"secret\":\"s\","
		    "\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":2,\"vars\":[]}"),
		DOC("{\"name\":\"a\",\"provider\":\"anthropic\",\"secret_var\":\"K\",\"secret\":\"s\","
		    "\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":2,\"vars\":[],\"x\":0}"),
	};
	struct ak_store *o = NULL;
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], *img;
	size_t i, len;
	char *big;
	int k;

	/* The baseline parses, and so does a literal backslash followed by "u0000". */
	CHECK_EQ(ak_store_parse(DOC(P_OK), strlen(DOC(P_OK)), &o), AK_OK);
	CHECK(o != NULL && o->n == 1 && o->p[0]->nvars == 1);
	ak_store_free(o);
	o = NULL;
	{
		const char *d = DOC(P_FIELDS("\"a\"", "\"K\"", "\"s\\\\u0000\"", "\"\\\\u0000\"", "1", "[]"));
		CHECK_EQ(ak_store_parse(d, strlen(d), &o), AK_OK);
		CHECK(o != NULL && strcmp(o->p[0]->secret, "s\\u0000") == 0);
		ak_store_free(o);
		o = NULL;
	}
	/* Not sorted on input is fine: it comes out sorted. */
	{
		const char *d = DOC(P_FIELDS("\"b\"", "\"K\"", "\"s\"", "\"\"", "1", "[]") ","
		    P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"\"", "1", "[]"));
		CHECK_EQ(ak_store_parse(d, strlen(d), &o), AK_OK);
		CHECK(o != NULL && o->n == 2 && strcmp(o->p[0]->name, "a") == 0 && ak_store_find(o, "b"));
		ak_store_free(o);
		o = NULL;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum ak_err r = ak_store_parse(bad[i], strlen(bad[i]), &o);
		if (r != AK_ERR_BAD_FORMAT)
			fprintf(stderr, "malformed case %zu: got %d: %s\n", i, r, bad[i]);
		CHECK_EQ(r, AK_ERR_BAD_FORMAT);
		CHECK(o == NULL);
	}
	CHECK_EQ(ak_store_parse("{\"version\":4,\"profiles\":[]}", 27, &o), AK_ERR_VERSION);
	/* A raw NUL byte inside the document. */
	CHECK_EQ(ak_store_parse("{\"version\":1,\"profiles\":[]}\0", 28, &o), AK_ERR_BAD_FORMAT);
	/* Oversize values and too many variables. */
	big = malloc(200000);
	len = (size_t)snprintf(big, 200000, P_HEAD P_FIELDS("\"a\"", "\"K\"", "\"%0*d\"", "\"\"", "1", "[]") "]}",
	    AK_VALUE_MAX + 1, 7);
	CHECK_EQ(ak_store_parse(big, len, &o), AK_ERR_BAD_FORMAT);
	len = (size_t)snprintf(big, 200000, P_HEAD P_FIELDS("\"a\"", "\"K\"", "\"%0*d\"", "\"\"", "1", "[]") "]}",
	    AK_VALUE_MAX, 7);
	CHECK_EQ(ak_store_parse(big, len, &o), AK_OK);
	ak_store_free(o);
	o = NULL;
	len = (size_t)snprintf(big, 200000, P_HEAD P_FIELDS("\"a\"", "\"K\"", "\"s\"", "\"%0*d\"", "1", "[]") "]}",
	    AK_TEXT_MAX + 1, 7);
	CHECK_EQ(ak_store_parse(big, len, &o), AK_ERR_BAD_FORMAT);
	for (k = AK_VARS_MAX; k <= AK_VARS_MAX + 1; k++) {
		int j;
		len = (size_t)snprintf(big, 200000, P_HEAD "{\"name\":\"a\",\"provider\":\"\",\"secret_var\":\"K\","
		    "\"secret\":\"s\",\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":2,\"vars\":[");
		for (j = 0; j < k; j++)
			len += (size_t)snprintf(big + len, 200000 - len, "%s{\"name\":\"V%d\",\"value\":\"\"}",
			    j ? "," : "", j);
		len += (size_t)snprintf(big + len, 200000 - len, "]}]}");
		CHECK_EQ(ak_store_parse(big, len, &o), k == AK_VARS_MAX ? AK_OK : AK_ERR_BAD_FORMAT);
		ak_store_free(o);
		o = NULL;
	}
	free(big);

	/* The same through the file format: valid AEAD, bad plaintext. Opening says AUTH, exactly as for a
	 * wrong key, in both format versions: no oracle for "decrypted, then failed to parse". */
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		img = seal_raw(bad[i], strlen(bad[i]), &kdf, key, &len);
		CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
		CHECK(o == NULL);
		free(img);
		img = seal_v1(bad[i], strlen(bad[i]), &kdf, key, &len);
		CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
		CHECK(o == NULL);
		free(img);
	}
	img = seal_raw(DOC(P_OK), strlen(DOC(P_OK)), &kdf, key, &len);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	ak_store_free(o);
	o = NULL;
	free(img);
	img = seal_v1(DOC(P_OK), strlen(DOC(P_OK)), &kdf, key, &len);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	ak_store_free(o);
	free(img);
}

static void
test_all_bytes(void)
{
	static const char namechars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	struct ak_store *s = ak_store_new(), *o = NULL;
	struct ak_profile *p;
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], *img = NULL;
	char all[256], name[80];
	size_t len = 0;
	int c;

	for (c = 1; c < 256; c++)
		all[c - 1] = (char)c;
	all[255] = '\0';
	/* Every allowed name character, split over two names (max 64). */
	p = mkprofile("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._", all, all);
	CHECK_EQ(ak_profile_set_field(&p->source, all), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->provider, all), AK_OK);
	CHECK_EQ(ak_profile_set_var(p, "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", all),
	    AK_OK);
	CHECK_EQ(ak_store_put(s, p, 0), AK_OK);
	CHECK_EQ(ak_store_put(s, mkprofile("-.-", all, ""), 0), AK_OK);
	/* Every other byte is refused in a name. */
	for (c = 1; c < 256; c++) {
		if (strchr(namechars, c) != NULL)
			continue;
		snprintf(name, sizeof(name), "a%cb", c);
		p = mkprofile(name, "s", "");
		if (ak_store_put(s, p, 0) != AK_ERR_BAD_NAME) {
			fprintf(stderr, "byte 0x%02x accepted in a name\n", c);
			CHECK(0);
		}
		ak_profile_free(p);
	}
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	CHECK(o != NULL && stores_equal(s, o));
	if (o != NULL && o->n == 2) {
		p = ak_store_find(o, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._");
		CHECK(p != NULL && memcmp(p->secret, all, 256) == 0 && memcmp(p->vars[0].value, all, 256) == 0);
	}
	ak_store_free(o);
	ak_store_free(s);
	free(img);
}

/* cJSON's printer as the oracle for the store's own JSON writer: the document built as a tree the way
 * it was written before, printed unformatted. */
static void
oracle_rot(cJSON *o, const struct ak_rot *r)
{
	cJSON *prev;

	if (r->prev == NULL && r->hint == NULL)
		return;
	prev = cJSON_AddObjectToObject(o, "previous");
	if (r->prev != NULL)
		cJSON_AddStringToObject(prev, "value", r->prev);
	cJSON_AddNumberToObject(prev, "rotated", (double)r->at);
	cJSON_AddNumberToObject(prev, "until", (double)r->until);
	if (r->hint != NULL)
		cJSON_AddStringToObject(prev, "deactivate", r->hint);
}

static char *
oracle_print(const struct ak_store *s)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o, *vars, *v;
	char *out;
	size_t i, j;

	cJSON_AddNumberToObject(root, "version", AK_DOC_VERSION);
	arr = cJSON_AddArrayToObject(root, "profiles");
	for (i = 0; i < s->n; i++) {
		const struct ak_profile *p = s->p[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "provider", p->provider);
		cJSON_AddStringToObject(o, "secret_var", p->secret_var);
		cJSON_AddStringToObject(o, "secret", p->secret);
		cJSON_AddStringToObject(o, "description", p->description);
		cJSON_AddStringToObject(o, "source", p->source);
		cJSON_AddNumberToObject(o, "created", (double)p->created);
		cJSON_AddNumberToObject(o, "rotated", (double)p->rotated);
		vars = cJSON_AddArrayToObject(o, "vars");
		for (j = 0; j < p->nvars; j++) {
			v = cJSON_CreateObject();
			cJSON_AddStringToObject(v, "name", p->vars[j].name);
			cJSON_AddStringToObject(v, "value", p->vars[j].value);
			if (p->vars[j].secret)
				cJSON_AddTrueToObject(v, "secret");
			oracle_rot(v, &p->vars[j].rot);
			cJSON_AddItemToArray(vars, v);
		}
		oracle_rot(o, &p->rot);
		if (p->rotate_every != 0)
			cJSON_AddNumberToObject(o, "rotate_every", (double)p->rotate_every);
		if (p->confirm)
			cJSON_AddTrueToObject(o, "confirm");
		if (p->lifetime != 0)
			cJSON_AddNumberToObject(o, "lifetime", (double)p->lifetime);
		cJSON_AddItemToArray(arr, o);
	}
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

/* The document as the store writes it is byte for byte what cJSON printed, for every byte a value may
 * hold (escapes, UTF-8, DEL), every optional field, negative and large times; and it parses back to
 * the same store. */
static void
test_writer_oracle(void)
{
	struct ak_store *s = mkstore(), *o = NULL;
	struct ak_profile *p;
	char all[256], *mine = NULL, *ref;
	size_t len = 0;
	int c;

	for (c = 1; c < 256; c++)
		all[c - 1] = (char)c;
	all[255] = '\0';
	p = ak_store_find(s, "production");
	CHECK_EQ(ak_profile_set_field(&p->secret, all), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->description, all + 31), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->source, "\"\\/\b\f\n\r\t\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->provider, all + 120), AK_OK);
	CHECK_EQ(ak_profile_put_var(p, "SECRET_TOKEN", all, 1), AK_OK);
	CHECK_EQ(ak_profile_set_var(p, "EMPTY", ""), AK_OK);
	p->vars[2].rot.prev = ak_smem_strdup(all + 1);
	p->vars[2].rot.at = 1700000200;
	p->vars[2].rot.until = 1700086600;
	p->rot.prev = ak_smem_strdup(all);
	p->rot.hint = ak_smem_strdup("sk-ant-api03-R2D...ig\"\\AA");
	p->rot.at = 1700000300;
	p->rot.until = 1800000000;
	p->rotate_every = 7776000;
	p->confirm = 1;
	p->lifetime = 3600;
	p = ak_store_find(s, "staging");
	p->created = -1;
	p->rotated = 4102444800; /* past INT_MAX: cJSON prints it as a double */
	p->rot.hint = ak_smem_strdup("sk-ant-admin01-A...zzAA");
	p->rot.at = -86400;
	p->rot.until = 0;
	p = ak_store_find(s, "project-a");
	p->created = 999999999999999; /* the largest whole number %1.15g prints without an exponent */
	p->rotated = -999999999999999;
	CHECK_EQ(ak_store_serialize(s, &mine, &len), AK_OK);
	CHECK((ref = oracle_print(s)) != NULL);
	CHECK(mine != NULL && ref != NULL && strlen(ref) == len && memcmp(mine, ref, len) == 0);
	if (mine != NULL && ref != NULL && (strlen(ref) != len || memcmp(mine, ref, len) != 0))
		fprintf(stderr, "writer:\n%s\ncJSON:\n%s\n", mine, ref);
	CHECK_EQ(ak_store_parse(mine, len, &o), AK_OK);
	CHECK(o != NULL && stores_equal(s, o));
	if (o != NULL) {
		p = ak_store_find(o, "production");
		CHECK(p != NULL && p->nvars == 4 && p->vars[2].secret && p->confirm && p->lifetime == 3600);
		CHECK(p != NULL && p->rot.hint != NULL && strcmp(p->rot.prev, all) == 0);
		CHECK_STR(p != NULL ? p->vars[2].rot.prev : NULL, all + 1);
		CHECK_EQ(ak_store_find(o, "staging")->rot.at, -86400);
	}
	ak_smem_free(mine);
	cJSON_free(ref);
	ak_store_free(o);
	ak_store_free(s);
}

static int
count_tmp(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static int
rm_tmp(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[4200];
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".tmp.") != NULL) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
			n++;
		}
	}
	closedir(d);
	return n;
}

static int
same_file(const char *path, const uint8_t *data, size_t len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int same;

	if (ak_store_read(path, &buf, &n) != AK_OK)
		return 0;
	same = n == len && memcmp(buf, data, len) == 0;
	free(buf);
	return same;
}

/* An apply callback that records what it saw. */
struct probe {
	const char *path;
	const struct ak_store *want;
	const char *remove;
	int ran, same, locked;
};

static enum ak_err
probe_apply(struct ak_store *s, void *arg)
{
	struct probe *pr = arg;
	int fd = -1;

	pr->ran++;
	pr->same = stores_equal(s, pr->want);
	pr->locked = ak_store_lock(pr->path, 0, &fd) == AK_ERR_BUSY;
	if (fd != -1)
		close(fd);
	return ak_store_remove(s, pr->remove);
}

static void
test_disk(void)
{
	char path[4096], sub[4096];
	struct ak_store *s = mkstore(), *o = NULL;
	struct ak_kdf kdf;
	struct ak_header h;
	struct stat st;
	struct ak_store_txn t;
	struct probe pr;
	uint8_t key[AK_KEY_BYTES], *img = NULL, *img2 = NULL;
	size_t len = 0, len2 = 0;
	int lfd = -1, lfd2 = -1;

	snprintf(path, sizeof(path), "%s/a/b/keystore", tmpdir);
	CHECK_EQ(ak_store_read(path, &img, &len), AK_ERR_NO_STORE);
	CHECK_EQ(ak_store_prepare_dir(path), AK_OK);
	snprintf(sub, sizeof(sub), "%s/a/b", tmpdir);
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	CHECK_EQ(ak_store_prepare_dir(path), AK_OK); /* idempotent */

	/* init: exclusive write of a sealed store. */
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_derive(&kdf, pass, strlen(pass), key), AK_OK);
	CHECK_EQ(ak_store_lock(path, 1000, &lfd), AK_OK);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_file_write_atomic(path, img, len, 1), AK_OK);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(same_file(path, img, len));
	/* A second init refuses and leaves the file alone. */
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img2, &len2), AK_OK);
	CHECK_EQ(ak_file_write_atomic(path, img2, len2, 1), AK_ERR_STORE_EXISTS);
	CHECK(same_file(path, img, len));
	CHECK_EQ(count_tmp(), 0);
	/* The lock excludes a second writer, and times out. */
	CHECK_EQ(ak_store_lock(path, 50, &lfd2), AK_ERR_BUSY);
	CHECK_EQ(lfd2, -1);
	close(lfd);
	lfd = -1;

	free(img2);
	img2 = NULL;
	/* The update transaction with a passphrase: wrong one, right one. */
	memset(&pr, 0, sizeof(pr));
	pr.path = path;
	pr.want = s;
	pr.remove = "staging";
	CHECK_EQ(ak_store_update_pass(path, "nope", 4, probe_apply, &pr), AK_ERR_AUTH);
	CHECK_EQ(pr.ran, 0);
	CHECK(same_file(path, img, len));
	CHECK_EQ(ak_store_update_pass(path, pass, strlen(pass), probe_apply, &pr), AK_OK);
	CHECK_EQ(pr.ran, 1);
	CHECK_EQ(pr.same, 1);   /* apply saw the store as written */
	CHECK_EQ(pr.locked, 1); /* and ran under the lock */
	CHECK_EQ(ak_store_lock(path, 0, &lfd2), AK_OK); /* released after */
	close(lfd2);
	lfd2 = -1;
	/* The change is on disk, under the same key (the key derived from the passphrase). */
	CHECK_EQ(ak_store_read(path, &img2, &len2), AK_OK);
	CHECK_EQ(ak_store_open_image(img2, len2, key, &h, &o), AK_OK);
	CHECK(o != NULL && o->n == 2 && ak_store_find(o, "staging") == NULL);
	CHECK_EQ(h.version, 2);
	free(img2);
	img2 = NULL;
	ak_store_free(o);
	o = NULL;
	/* An apply that fails aborts: nothing written. */
	CHECK_EQ(ak_store_read(path, &img2, &len2), AK_OK);
	CHECK_EQ(ak_store_update(path, key, probe_apply, &pr), AK_ERR_NO_PROFILE); /* already gone */
	CHECK(same_file(path, img2, len2));
	free(img2);
	img2 = NULL;
	/* A writer holding the lock makes the transaction wait, then give up. */
	CHECK_EQ(ak_store_lock(path, 0, &lfd), AK_OK);
	memset(&t, 0, sizeof(t));
	t.path = path;
	t.lock_timeout_ms = 50;
	t.key = key;
	CHECK_EQ(ak_store_txn_run(&t), AK_ERR_BUSY);
	close(lfd);
	lfd = -1;
	CHECK_EQ(count_tmp(), 0);
	{
		char nope[4200];
		snprintf(nope, sizeof(nope), "%s/none/keystore", tmpdir);
		CHECK_EQ(ak_store_update_pass(nope, pass, strlen(pass), probe_apply, &pr), AK_ERR_NO_STORE);
		snprintf(nope, sizeof(nope), "%s/a/b/other", tmpdir);
		CHECK_EQ(ak_store_update_pass(nope, pass, strlen(pass), probe_apply, &pr), AK_ERR_NO_STORE);
	}
	/* Reading a directory is an error, not a crash. */
	free(img2);
	CHECK_EQ(ak_store_read(sub, &img2, &len2), AK_ERR_IO);
	CHECK(img2 == NULL);
	ak_store_free(s);
	free(img);
	free(img2);
	sodium_memzero(key, sizeof(key));
}

static void
test_failed_writes(void)
{
	char path[4096], dirpath[4096], nodir[4096];
	uint8_t *img = NULL, *big;
	size_t len = 0;
	struct rlimit old, lim;
	struct ak_store *s = mkstore();
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES];

	snprintf(path, sizeof(path), "%s/fw", tmpdir);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_save(path, s, &kdf, key), AK_OK);
	CHECK_EQ(ak_store_read(path, &img, &len), AK_OK);

	/* A write that fails midway (file size limit: short write, then EFBIG). */
	big = calloc(1, 1 << 20);
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 4096;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	CHECK_EQ(ak_file_write_atomic(path, big, 1 << 20, 0), AK_ERR_IO);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(same_file(path, img, len));
	CHECK_EQ(count_tmp(), 0);

	/* The temp file cannot be created: its directory does not exist. */
	snprintf(nodir, sizeof(nodir), "%s/missing/fw", tmpdir);
	CHECK_EQ(ak_file_write_atomic(nodir, big, 100, 0), AK_ERR_IO);
	CHECK_EQ(ak_store_save(nodir, s, &kdf, key), AK_ERR_IO);

	/* The rename fails: the target is a directory. */
	snprintf(dirpath, sizeof(dirpath), "%s/isdir", tmpdir);
	CHECK(mkdir(dirpath, 0700) == 0);
	CHECK_EQ(ak_file_write_atomic(dirpath, big, 100, 0), AK_ERR_IO);
	CHECK_EQ(count_tmp(), 0);
	CHECK(same_file(path, img, len));
	free(big);
	free(img);
	ak_store_free(s);
}

/* A writer killed at random moments always leaves a keystore holding generation N or N+1. */
static void
test_crash(void)
{
	char path[4096];
	struct ak_store *s = ak_store_new(), *o;
	struct ak_profile *p;
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], *img;
	size_t len;
	long *shared, done, attempt, gen;
	int i, lfd, ok = 0, midwrite = 0;
	pid_t pid;
	char num[32];

	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	if (shared == MAP_FAILED)
		return;
	snprintf(path, sizeof(path), "%s/crash", tmpdir);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_put(s, mkprofile("counter", "sk", "0"), 0), AK_OK);
	CHECK_EQ(ak_store_put(s, mkprofile("other", "sk2", "x"), 0), AK_OK);
	CHECK_EQ(ak_store_save(path, s, &kdf, key), AK_OK);
	__atomic_store_n(&shared[0], 0, __ATOMIC_SEQ_CST); /* attempt */
	__atomic_store_n(&shared[1], 0, __ATOMIC_SEQ_CST); /* done */
	for (i = 0; i < 50; i++) {
		if ((pid = fork()) == 0) {
			gen = __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST);
			p = ak_store_find(s, "counter");
			for (;;) {
				gen++;
				snprintf(num, sizeof(num), "%ld", gen);
				if (ak_profile_set_field(&p->description, num) != AK_OK)
					_exit(2);
				__atomic_store_n(&shared[0], gen, __ATOMIC_SEQ_CST);
				if (ak_store_lock(path, -1, &lfd) != AK_OK ||
				    ak_store_save(path, s, &kdf, key) != AK_OK)
					_exit(3);
				__atomic_store_n(&shared[1], gen, __ATOMIC_SEQ_CST);
				close(lfd);
			}
		}
		CHECK(pid > 0);
		if (pid < 0)
			break;
		{
			struct timespec ts = { 0, (long)randombytes_uniform(20000) * 1000 + 100000 };
			nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		{
			int st;
			CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		}
		attempt = __atomic_load_n(&shared[0], __ATOMIC_SEQ_CST);
		done = __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST);
		/* The dead writer's lock is gone with it. */
		CHECK_EQ(ak_store_lock(path, 1000, &lfd), AK_OK);
		close(lfd);
		img = NULL;
		o = NULL;
		CHECK_EQ(ak_store_read(path, &img, &len), AK_OK);
		CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
		if (o != NULL && (p = ak_store_find(o, "counter")) != NULL) {
			gen = strtol(p->description, NULL, 10);
			if (gen != done && gen != attempt)
				fprintf(stderr, "crash %d: file holds %ld, done %ld, attempt %ld\n", i, gen, done,
				    attempt);
			CHECK(gen == done || gen == attempt);
			CHECK(ak_store_find(o, "other") != NULL);
			/* Continue from what the file holds. */
			__atomic_store_n(&shared[1], gen, __ATOMIC_SEQ_CST);
			ok++;
		}
		ak_store_free(o);
		free(img);
		/* A writer killed between mkstemp and rename leaves its temp file: count those kills. */
		midwrite += rm_tmp() > 0;
	}
	printf("crash test: %d kills (%d mid-write), final generation %ld\n", ok, midwrite,
	    __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST));
	CHECK_EQ(ok, 50);
	CHECK(__atomic_load_n(&shared[1], __ATOMIC_SEQ_CST) > 0);
	munmap(shared, 4096);
	ak_store_free(s);
}

static void
cleanup(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Version 2 as docs/keystore-format.md describes it, rebuilt here from the description alone: the
 * library opens it; and a commitment that does not match is refused before decryption (the
 * ciphertext below would decrypt: it is sealed under the right encryption key for that very header). */
static uint8_t *
seal_v2_doc(const char *doc, const struct ak_kdf *kdf, const uint8_t *key, const uint8_t *commit_override,
    size_t *outlen)
{
	static const char label[] = "akagent-keystore key commitment v2";
	char hdr[1024], salt64[64], nonce64[64], commit64[64];
	uint8_t nonce[AK_NONCE_BYTES], ck[32], ek[32], commit[32], *out;
	unsigned long long clen;
	size_t dlen = strlen(doc);
	int hl;

	crypto_kdf_derive_from_key(ck, sizeof(ck), 1, "akstore2", key);
	crypto_kdf_derive_from_key(ek, sizeof(ek), 2, "akstore2", key);
	crypto_generichash(commit, sizeof(commit), (const unsigned char *)label, sizeof(label) - 1, ck,
	    sizeof(ck));
	if (commit_override != NULL)
		memcpy(commit, commit_override, sizeof(commit));
	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2base64(salt64, sizeof(salt64), kdf->salt, AK_SALT_BYTES, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(nonce64, sizeof(nonce64), nonce, sizeof(nonce), sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(commit64, sizeof(commit64), commit, sizeof(commit),
	    sodium_base64_VARIANT_ORIGINAL);
	hl = snprintf(hdr, sizeof(hdr), "{\"format\":\"akagent-keystore\",\"version\":2,\"kdf\":{\"alg\":"
	    "\"argon2id13\",\"preset\":\"%s\",\"opslimit\":%llu,\"memlimit\":%llu,\"salt\":\"%s\"},"
	    "\"cipher\":\"xchacha20poly1305-ietf\",\"commitment\":\"%s\",\"nonce\":\"%s\"}\n",
	    ak_kdf_preset_name(kdf->preset), (unsigned long long)kdf->opslimit,
	    (unsigned long long)kdf->memlimit, salt64, commit64, nonce64);
	if ((out = malloc((size_t)hl + dlen + crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL)
		abort();
	memcpy(out, hdr, (size_t)hl);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + hl, &clen, (const unsigned char *)doc, dlen,
	    out, (unsigned long long)hl, NULL, nonce, ek);
	*outlen = (size_t)hl + (size_t)clen;
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(ek, sizeof(ek));
	return out;
}

static void
test_commitment(void)
{
	struct ak_store *o = NULL;
	struct ak_kdf kdf;
	struct ak_header h;
	uint8_t key[AK_KEY_BYTES], key2[AK_KEY_BYTES], bogus[32], *img;
	size_t len = 0, hl;

	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	img = seal_v2_doc(DOC(P_OK), &kdf, key, NULL, &len);
	CHECK_EQ(ak_store_open_image(img, len, key, &h, &o), AK_OK);
	CHECK(o != NULL && o->n == 1);
	CHECK_EQ(h.version, 2);
	ak_store_free(o);
	o = NULL;
	free(img);
	/* What the library seals carries the same commitment the description gives. */
	{
		struct ak_header h2;
		uint8_t *mine = NULL;
		size_t mlen = 0;

		img = seal_v2_doc(DOC(P_OK), &kdf, key, NULL, &len);
		CHECK_EQ(ak_header_parse(img, len, &h, &hl), AK_OK);
		CHECK_EQ(ak_store_seal_bytes((const uint8_t *)"x", 1, &kdf, key, &mine, &mlen), AK_OK);
		CHECK_EQ(ak_header_parse(mine, mlen, &h2, &hl), AK_OK);
		CHECK(memcmp(h.commitment, h2.commitment, AK_COMMIT_BYTES) == 0);
		free(mine);
		free(img);
	}
	/* A wrong commitment over a ciphertext that would decrypt: AUTH, before decryption. */
	randombytes_buf(bogus, sizeof(bogus));
	img = seal_v2_doc(DOC(P_OK), &kdf, key, bogus, &len);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
	CHECK(o == NULL);
	free(img);
	/* Another key's commitment (the ciphertext itself under the right key): AUTH. */
	randombytes_buf(key2, sizeof(key2));
	{
		uint8_t ck[32], other[32];
		static const char label[] = "akagent-keystore key commitment v2";

		crypto_kdf_derive_from_key(ck, sizeof(ck), 1, "akstore2", key2);
		crypto_generichash(other, sizeof(other), (const unsigned char *)label, sizeof(label) - 1, ck,
		    sizeof(ck));
		img = seal_v2_doc(DOC(P_OK), &kdf, key, other, &len);
		CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_ERR_AUTH);
		CHECK_EQ(ak_store_open_image(img, len, key2, NULL, &o), AK_ERR_AUTH);
		free(img);
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(key2, sizeof(key2));
}

/* A version-1 store opens, and its next write (any transaction) makes it version 2 under the same key. */
static void
test_v1_upgrade(void)
{
	char path[4096];
	struct ak_store *o = NULL;
	struct ak_kdf kdf;
	struct ak_header h;
	uint8_t key[AK_KEY_BYTES], *img, *img2 = NULL;
	size_t len = 0, len2 = 0;

	snprintf(path, sizeof(path), "%s/v1store", tmpdir);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_derive(&kdf, pass, strlen(pass), key), AK_OK);
	img = seal_v1(DOC(P_OK), strlen(DOC(P_OK)), &kdf, key, &len);
	CHECK_EQ(ak_file_write_atomic(path, img, len, 1), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, &h, &o), AK_OK);
	CHECK_EQ(h.version, 1);
	ak_store_free(o);
	o = NULL;
	/* A re-key-free, change-free transaction still rewrites the file. */
	CHECK_EQ(ak_store_update(path, key, NULL, NULL), AK_OK);
	CHECK_EQ(ak_store_read(path, &img2, &len2), AK_OK);
	CHECK(memcmp(img2, "{\"format\":\"akagent-keystore\",\"version\":2,", 41) == 0);
	CHECK_EQ(ak_store_open_image(img2, len2, key, &h, &o), AK_OK);
	CHECK_EQ(h.version, 2);
	CHECK(o != NULL && o->n == 1 && ak_store_find(o, "a") != NULL);
	CHECK(memcmp(h.kdf.salt, kdf.salt, AK_SALT_BYTES) == 0); /* same KDF: same passphrase */
	ak_store_free(o);
	free(img);
	free(img2);
	unlink(path);
	sodium_memzero(key, sizeof(key));
}

/* Forged KDF parameters are refused before any memory is asked for. */
static void
test_kdf_bounds(void)
{
	struct ak_kdf k;
	uint8_t key[AK_KEY_BYTES];

	ak_kdf_new(&k, AK_KDF_SENSITIVE);
	CHECK(ak_kdf_in_range(&k));
	k.opslimit = 32;
	k.memlimit = (uint64_t)4 << 30;
	CHECK(!ak_kdf_in_range(&k));
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), key), AK_ERR_INVALID);
	k.opslimit = AK_KDF_OPS_MAX + 1;
	k.memlimit = AK_KDF_MEM_MIN;
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), key), AK_ERR_INVALID);
	k.opslimit = AK_KDF_OPS_MIN;
	k.memlimit = (uint64_t)AK_KDF_MEM_MAX + 1024;
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), key), AK_ERR_INVALID);
	k.memlimit = AK_KDF_MEM_MIN - 1;
	CHECK_EQ(ak_kdf_derive(&k, pass, strlen(pass), key), AK_ERR_INVALID);
	/* Every preset akctl can create is in range. */
	for (int p = AK_KDF_INSECURE_TEST; p <= AK_KDF_SENSITIVE; p++) {
		ak_kdf_new(&k, (enum ak_kdf_preset)p);
		CHECK(ak_kdf_in_range(&k));
	}
}

/* Temp files a killed writer left: counted, removed by the next write, nothing else touched. */
static void
test_stale_temps(void)
{
	static const char *const stale[] = { ".tmp.AbC123", ".tmp.zzzzzz" };
	static const char *const other[] = { ".tmp.AbC12", ".tmp.AbC1234", ".tmp.AbC-23", ".tmpx", ".lock" };
	char path[4096], p[4200];
	struct ak_store *s = mkstore();
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], *img = NULL, *img2 = NULL;
	size_t len = 0, len2 = 0, n = 99, i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/st/keystore", tmpdir);
	CHECK_EQ(ak_store_prepare_dir(path), AK_OK);
	CHECK_EQ(ak_file_stale_temps(path, 0, &n), AK_OK);
	CHECK_EQ(n, 0);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	randombytes_buf(key, sizeof(key));
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_file_write_atomic(path, img, len, 1), AK_OK);
	/* An older generation, as a killed writer leaves it: a whole sealed store. */
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", path, stale[i]);
		CHECK_EQ(ak_file_write_atomic(p, img, len, 1), AK_OK);
	}
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s%s", path, other[i]);
		CHECK((f = fopen(p, "w")) != NULL);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s.tmp.dir123", path);
	CHECK(mkdir(p, 0700) == 0);
	CHECK_EQ(ak_file_stale_temps(path, 0, &n), AK_OK);
	CHECK_EQ(n, 2);
	CHECK_EQ(ak_file_stale_temps(path, 0, &n), AK_OK); /* counting removes nothing */
	CHECK_EQ(n, 2);
	/* A failed transaction (wrong key) removes nothing either. */
	key[0] ^= 1;
	CHECK_EQ(ak_store_update(path, key, NULL, NULL), AK_ERR_AUTH);
	key[0] ^= 1;
	CHECK_EQ(ak_file_stale_temps(path, 0, &n), AK_OK);
	CHECK_EQ(n, 2);
	CHECK_EQ(ak_store_update(path, key, NULL, NULL), AK_OK);
	CHECK_EQ(ak_file_stale_temps(path, 0, &n), AK_OK);
	CHECK_EQ(n, 0);
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", path, stale[i]);
		CHECK(access(p, F_OK) != 0);
	}
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s%s", path, other[i]);
		CHECK(access(p, F_OK) == 0);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s.tmp.dir123", path);
	CHECK(rmdir(p) == 0);
	CHECK_EQ(ak_store_read(path, &img2, &len2), AK_OK);
	free(img2);
	unlink(path);
	free(img);
	ak_store_free(s);
}

/* The one loader: secure or not, and its distinct errors. */
static void
test_load(void)
{
	char path[4096], *buf = NULL;
	size_t len = 0;
	int fds[2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/load", tmpdir);
	CHECK((f = fopen(path, "w")) != NULL);
	fputs("hello", f);
	fclose(f);
	CHECK_EQ(ak_file_load(path, 5, 0, &buf, &len), AK_OK);
	CHECK(len == 5 && strcmp(buf, "hello") == 0);
	free(buf);
	CHECK_EQ(ak_file_load(path, 5, AK_FILE_SECURE | AK_FILE_REGULAR, &buf, &len), AK_OK);
	CHECK(len == 5 && strcmp(buf, "hello") == 0);
	ak_smem_free(buf);
	CHECK_EQ(ak_file_load(path, 4, AK_FILE_SECURE, &buf, &len), AK_ERR_TOO_LARGE);
	CHECK(buf == NULL && len == 0);
	CHECK_EQ(ak_file_load(tmpdir, 100, AK_FILE_SECURE, &buf, &len), AK_ERR_IO);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	CHECK_EQ(ak_file_load(path, 100, AK_FILE_SECURE, &buf, &len), AK_ERR_NOT_FOUND);
	snprintf(path, sizeof(path), "%s/missing/x", tmpdir);
	CHECK_EQ(ak_file_load(path, 100, 0, &buf, &len), AK_ERR_NOT_FOUND);
	{
		uint8_t *img = NULL;

		CHECK_EQ(ak_store_read(path, &img, &len), AK_ERR_NO_STORE);
		CHECK(img == NULL);
	}
	/* No permission (root reads anyway: only checked as another uid). */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/load", tmpdir);
		CHECK(chmod(path, 0) == 0);
		CHECK_EQ(ak_file_load(path, 100, AK_FILE_SECURE, &buf, &len), AK_ERR_DENIED);
	}
	snprintf(path, sizeof(path), "%s/load", tmpdir);
	unlink(path);
	/* A pipe: read to its end, and one byte past max tells it is too large. */
	CHECK(pipe(fds) == 0);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	CHECK(write(fds[1], "abcdef", 6) == 6);
	close(fds[1]);
	CHECK_EQ(ak_file_load(path, 5, AK_FILE_SECURE, &buf, &len), AK_ERR_TOO_LARGE);
	close(fds[0]);
	CHECK(pipe(fds) == 0);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	CHECK(write(fds[1], "abc", 3) == 3);
	close(fds[1]);
	CHECK_EQ(ak_file_load(path, 5, AK_FILE_REGULAR, &buf, &len), AK_ERR_IO);
	CHECK_EQ(ak_file_load(path, 5, AK_FILE_SECURE, &buf, &len), AK_OK);
	CHECK(len == 3 && strcmp(buf, "abc") == 0);
	ak_smem_free(buf);
	close(fds[0]);
}

/* Secret variables in the document, version-1 documents, and edits that keep every other field. */
static void
test_secret_vars_and_edits(void)
{
	struct ak_store *s = mkstore(), *o = NULL;
	struct ak_profile *p, *q;
	struct ak_edit *e;
	char *d = NULL;
	size_t dlen;
	static const char v1[] = "{\"version\":1,\"profiles\":[{\"name\":\"a\",\"provider\":\"x\","
	    "\"secret_var\":\"K\",\"secret\":\"s\",\"description\":\"\",\"source\":\"\",\"created\":1,"
	    "\"rotated\":2,\"vars\":[{\"name\":\"V\",\"value\":\"w\"}]}]}";
	static const char badflag[] = "{\"version\":2,\"profiles\":[{\"name\":\"a\",\"provider\":\"x\","
	    "\"secret_var\":\"K\",\"secret\":\"s\",\"description\":\"\",\"source\":\"\",\"created\":1,"
	    "\"rotated\":2,\"vars\":[{\"name\":\"V\",\"value\":\"w\",\"secret\":\"yes\"}]}]}";

	/* A version-1 document reads as one without secret variables; a flag must be a boolean. */
	CHECK_EQ(ak_store_parse(v1, sizeof(v1) - 1, &o), AK_OK);
	CHECK(o != NULL && o->n == 1 && o->p[0]->nvars == 1 && o->p[0]->vars[0].secret == 0);
	ak_store_free(o);
	o = NULL;
	CHECK_EQ(ak_store_parse(badflag, sizeof(badflag) - 1, &o), AK_ERR_BAD_FORMAT);

	p = ak_store_find(s, "production");
	CHECK_EQ(ak_profile_put_var(p, "DB_PASSWORD", "pw-1", 1), AK_OK);
	CHECK_EQ(ak_store_serialize(s, &d, &dlen), AK_OK);
	CHECK(strstr(d, "{\"name\":\"DB_PASSWORD\",\"value\":\"pw-1\",\"secret\":true}") != NULL);
	CHECK(strstr(d, "{\"name\":\"MAX_TOKENS\",\"value\":\"1024\"}") != NULL);
	CHECK_EQ(ak_store_parse(d, dlen, &o), AK_OK);
	CHECK(o != NULL && profiles_equal(ak_store_find(o, "production"), p));
	CHECK(ak_store_find(o, "production")->vars[2].secret == 1);
	ak_store_free(o);
	ak_smem_free(d);

	/* set: every field not named stays, times included. */
	e = ak_edit_new("production");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_SET_VAR, "MAX_TOKENS", "2048"), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_UNSET, "ANTHROPIC_MODEL", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_DESCRIPTION, "changed", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_OK);
	ak_edit_free(e);
	q = ak_store_find(s, "production");
	CHECK(q->created == 1700000000 && q->rotated == 1700000100);
	CHECK_STR(q->secret, "sk-ant-api03-AAAAprod");
	CHECK_STR(q->description, "changed");
	CHECK(q->nvars == 2 && strcmp(q->vars[0].name, "MAX_TOKENS") == 0 && q->vars[1].secret == 1);
	CHECK_STR(q->vars[0].value, "2048");
	/* All or nothing: an unknown variable, or the main secret, leaves the profile unchanged. */
	e = ak_edit_new("production");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_DESCRIPTION, "never", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_UNSET, "NOPE", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_ERR_NO_VAR);
	ak_edit_free(e);
	e = ak_edit_new("production");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_UNSET, "ANTHROPIC_API_KEY", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_ERR_INVALID);
	ak_edit_free(e);
	CHECK_STR(ak_store_find(s, "production")->description, "changed");
	/* rename keeps both times; cp keeps rotated; neither onto a name in use. */
	e = ak_edit_new("production");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_RENAME, "staging", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_ERR_PROFILE_EXISTS);
	ak_edit_free(e);
	e = ak_edit_new("production");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_RENAME, "prod", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_OK);
	ak_edit_free(e);
	CHECK(ak_store_find(s, "production") == NULL);
	q = ak_store_find(s, "prod");
	CHECK(q != NULL && q->created == 1700000000 && q->rotated == 1700000100 && q->nvars == 2);
	e = ak_edit_new("prod");
	CHECK_EQ(ak_edit_add(e, AK_EDIT_COPY, "prod-copy", NULL), AK_OK);
	CHECK_EQ(ak_edit_apply(s, e), AK_OK);
	ak_edit_free(e);
	q = ak_store_find(s, "prod-copy");
	CHECK(q != NULL && q->rotated == 1700000100 && q->created > 1700000000 && q->nvars == 2);
	CHECK(ak_store_find(s, "prod") != NULL && s->n == 4);
	for (size_t i = 1; i < s->n; i++)
		CHECK(strcmp(s->p[i - 1]->name, s->p[i]->name) < 0);
	ak_store_free(s);
}

static enum ak_err
put_apply(struct ak_store *s, void *arg)
{
	return ak_store_put(s, mkprofile(arg, "sk-ant-api03-DDDDnew", ""), 0);
}

/* The writer's snapshot: the same profiles held twice, and a change to either store's profile made in
 * a copy of its own, so the other never sees it. */
static void
test_share(void)
{
	struct ak_store *s = mkstore(), *sh;
	struct ak_profile *orig, *mine, *p;

	CHECK((sh = ak_store_share(s)) != NULL);
	CHECK_EQ(sh->n, s->n);
	for (size_t i = 0; i < s->n; i++) {
		CHECK(sh->p[i] == s->p[i]);
		CHECK_EQ(s->p[i]->refs, 1);
	}
	CHECK(stores_equal(sh, s));
	/* Owned in the snapshot: a copy replaces it there, the original keeps one holder. */
	orig = ak_store_find(s, "staging");
	CHECK((mine = ak_store_own(sh, "staging")) != NULL);
	CHECK(mine != orig);
	CHECK_EQ(orig->refs, 0);
	CHECK_EQ(mine->refs, 0);
	CHECK(profiles_equal(mine, orig));
	CHECK_EQ(ak_profile_set_field(&mine->description, "changed"), AK_OK);
	CHECK_STR(orig->description, "");
	/* Now the original's own: taken in place. */
	CHECK(ak_store_own(s, "staging") == orig);
	CHECK(ak_store_own(s, "absent") == NULL);
	/* Removing or replacing a shared profile in one store leaves the other's intact. */
	CHECK_EQ(ak_store_remove(sh, "production"), AK_OK);
	CHECK((p = ak_store_find(s, "production")) != NULL);
	CHECK_EQ(p->refs, 0);
	CHECK_STR(p->secret, "sk-ant-api03-AAAAprod");
	CHECK_EQ(ak_store_put(sh, mkprofile("project-a", "sk-ant-api03-EEEEnew", ""), 1), AK_OK);
	CHECK_STR(ak_store_find(s, "project-a")->secret, "sk-ant-api03-CCCCproj");
	CHECK_STR(ak_store_find(sh, "project-a")->secret, "sk-ant-api03-EEEEnew");
	ak_store_free(sh);
	CHECK_EQ(s->n, 3);

	/* A previous key past its grace: expired in the snapshot's copy only. */
	p = ak_store_find(s, "staging");
	CHECK((p->rot.prev = ak_smem_strdup("sk-ant-api03-OLDOLDold")) != NULL);
	p->rot.at = 1700000000;
	p->rot.until = 1700000050;
	CHECK((sh = ak_store_share(s)) != NULL);
	CHECK_EQ(ak_store_expire(sh, 1800000000), 1);
	CHECK(ak_store_find(sh, "staging")->rot.prev == NULL);
	CHECK_STR(ak_store_find(s, "staging")->rot.prev, "sk-ant-api03-OLDOLDold");
	CHECK(ak_store_find(sh, "production") == ak_store_find(s, "production"));
	/* Freed in either order: the last holder frees (the sanitizer build sees any use after free). */
	ak_store_free(s);
	CHECK_STR(ak_store_find(sh, "production")->secret, "sk-ant-api03-AAAAprod");
	CHECK_EQ(ak_store_find(sh, "production")->refs, 0);
	ak_store_free(sh);
}

/* A file's identity: a fresh seal of the same store (a new nonce), any byte of the header or the tag,
 * or another length is another file; the ciphertext between them is vouched for by the tag. */
static void
test_image_identity(void)
{
	struct ak_store *s = mkstore();
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], h[AK_FILE_HASH_BYTES], h2[AK_FILE_HASH_BYTES];
	uint8_t *img = NULL, *img2 = NULL, *nl;
	size_t len = 0, len2 = 0, hlen, i;

	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_derive(&kdf, pass, strlen(pass), key), AK_OK);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img2, &len2), AK_OK);
	ak_store_image_hash(img, len, h);
	ak_store_image_hash(img2, len2, h2);
	CHECK(len == len2 && memcmp(h, h2, sizeof(h)) != 0);
	ak_store_image_hash(img, len, h2);
	CHECK(memcmp(h, h2, sizeof(h)) == 0);
	CHECK((nl = memchr(img, '\n', len)) != NULL);
	hlen = (size_t)(nl + 1 - img);
	for (i = 0; i < len; i++) {
		if (i >= hlen && i < len - 16)
			continue;
		img[i] ^= 0x01;
		ak_store_image_hash(img, len, h2);
		CHECK(memcmp(h, h2, sizeof(h)) != 0);
		img[i] ^= 0x01;
	}
	ak_store_image_hash(img, len - 1, h2);
	CHECK(memcmp(h, h2, sizeof(h)) != 0);
	/* Not a keystore (no header line): hashed whole, every byte counts. */
	memset(img2, 'x', len2);
	ak_store_image_hash(img2, len2, h);
	img2[len2 / 2] = 'y';
	ak_store_image_hash(img2, len2, h2);
	CHECK(memcmp(h, h2, sizeof(h)) != 0);
	sodium_memzero(key, sizeof(key));
	free(img);
	free(img2);
	ak_store_free(s);
}

/* A write from a copy of the store when the file is the one the copy came from. */
static void
test_txn_base(void)
{
	char path[4096];
	struct ak_store *s = mkstore(), *base = NULL, *w = NULL, *o = NULL;
	struct ak_store_txn t;
	struct ak_kdf kdf;
	uint8_t key[AK_KEY_BYTES], bad[AK_KEY_BYTES], h[AK_FILE_HASH_BYTES], hw[AK_FILE_HASH_BYTES];
	uint8_t *img = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/base/keystore", tmpdir);
	CHECK_EQ(ak_store_prepare_dir(path), AK_OK);
	ak_kdf_new(&kdf, AK_KDF_INSECURE_TEST);
	CHECK_EQ(ak_kdf_derive(&kdf, pass, strlen(pass), key), AK_OK);
	CHECK_EQ(ak_store_seal_image(s, &kdf, key, &img, &len), AK_OK);
	CHECK_EQ(ak_file_write_atomic(path, img, len, 1), AK_OK);
	ak_store_image_hash(img, len, h);
	free(img);
	img = NULL;
	/* The copy differs from the file in one description, so the result shows which one was used. */
	CHECK((base = ak_store_dup(s)) != NULL);
	CHECK(stores_equal(base, s));
	CHECK_EQ(ak_profile_set_field(&ak_store_find(base, "staging")->description, "copy"), AK_OK);

	memset(&t, 0, sizeof(t));
	t.path = path;
	t.lock_timeout_ms = 1000;
	t.apply = put_apply;
	t.base = &base;
	t.base_hash = h;
	/* Another key: refused before anything is used, the copy left alone. */
	memcpy(bad, key, sizeof(bad));
	bad[0] ^= 1;
	t.key = bad;
	t.arg = "one";
	CHECK_EQ(ak_store_txn_run(&t), AK_ERR_AUTH);
	CHECK(base != NULL);
	/* Another hash (the file changed since): the file is opened, the copy left alone. */
	t.key = key;
	h[0] ^= 1;
	t.written = &w;
	t.hash_out = hw;
	CHECK_EQ(ak_store_txn_run(&t), AK_OK);
	CHECK(base != NULL);
	CHECK(w != NULL && w->n == 4 && ak_store_find(w, "one") != NULL);
	CHECK_STR(ak_store_find(w, "staging")->description, "");
	/* hash_out is the file's as written; with it the copy is taken. */
	CHECK_EQ(ak_store_read(path, &img, &len), AK_OK);
	ak_store_image_hash(img, len, h);
	CHECK(memcmp(h, hw, sizeof(h)) == 0);
	free(img);
	img = NULL;
	ak_store_free(base);
	base = w;
	w = NULL;
	CHECK_EQ(ak_profile_set_field(&ak_store_find(base, "staging")->description, "copy"), AK_OK);
	t.arg = "two";
	CHECK_EQ(ak_store_txn_run(&t), AK_OK);
	CHECK(base == NULL);
	CHECK(w != NULL && w->n == 5 && ak_store_find(w, "one") != NULL && ak_store_find(w, "two") != NULL);
	CHECK_STR(ak_store_find(w, "staging")->description, "copy");
	/* What is on disk is what was handed back, under the same key. */
	CHECK_EQ(ak_store_read(path, &img, &len), AK_OK);
	CHECK_EQ(ak_store_open_image(img, len, key, NULL, &o), AK_OK);
	CHECK(o != NULL && stores_equal(o, w));
	/* Half a pair is refused. */
	t.base_hash = NULL;
	CHECK_EQ(ak_store_txn_run(&t), AK_ERR_INVALID);
	free(img);
	ak_store_free(o);
	ak_store_free(w);
	ak_store_free(base);
	ak_store_free(s);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(bad, sizeof(bad));
}

/* The in-place parse gives what the copying one gives, and wants its NUL. */
static void
test_parse_terminated(void)
{
	struct ak_store *s = mkstore(), *a = NULL, *b = NULL;
	char *doc = NULL;
	size_t len = 0;

	CHECK_EQ(ak_store_serialize(s, &doc, &len), AK_OK);
	CHECK_EQ(ak_store_parse(doc, len, &a), AK_OK);
	CHECK_EQ(ak_store_parse_terminated(doc, len, &b), AK_OK);
	CHECK(a != NULL && b != NULL && stores_equal(a, b) && stores_equal(a, s));
	ak_store_free(b);
	b = NULL;
	/* Not terminated where it says: refused, never read past. */
	CHECK_EQ(ak_store_parse_terminated(doc, len - 1, &b), AK_ERR_INVALID);
	CHECK(b == NULL);
	/* A NUL inside is the same bad format as for the copying parse. */
	doc[len / 2] = '\0';
	CHECK_EQ(ak_store_parse_terminated(doc, len, &b), AK_ERR_BAD_FORMAT);
	CHECK(b == NULL);
	ak_smem_free(doc);
	ak_store_free(a);
	ak_store_free(s);
}

int
main(void)
{
	if (ak_smem_init() != 0) {
		fprintf(stderr, "ak_smem_init failed\n");
		return 1;
	}
	ak_smem_hook_cjson();
	umask(077);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_kdf();
	test_model();
	test_roundtrip();
	test_bitflips();
	test_header_tamper();
	test_malformed();
	test_all_bytes();
	test_writer_oracle();
	test_disk();
	test_failed_writes();
	test_crash();
	test_commitment();
	test_v1_upgrade();
	test_kdf_bounds();
	test_stale_temps();
	test_load();
	test_secret_vars_and_edits();
	test_share();
	test_image_identity();
	test_txn_base();
	test_parse_terminated();
	cleanup();
	T_DONE();
}
