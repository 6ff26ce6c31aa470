/* fuzz_cloud.c - the cloud secret managers' response handling (cli/net/cloud_enc.c), which parses what a
 * remote service (or anyone on the path before TLS verification fails) sends to akctl-net.
 *
 * Input: byte 0 = mode/size knobs, the rest = a response body. cloud_enc.c and the HTTP layer
 * (net_http.c, for its URL check) are compiled in; nothing here reaches the network.
 * Properties:
 *  - cloud_json_error / cloud_clean: the text shown is one line (no control bytes), fits outlen, and
 *    never carries any 12-character piece of the credentials passed as secrets (a whole secret becomes
 *    "[redacted]"; a cut one must not leak its first part either);
 *  - cloud_take_value: success gives exactly the body (or the JSON field), no NUL, 1..AK_VALUE_MAX
 *    bytes; the detail message never carries the value;
 *  - cloud_b64_decode agrees with libsodium's strict decoder; cloud_crc32c with a bitwise reference;
 *  - cloud_base_url accepts only http(s) URLs without blanks, controls, '?' or '#', and strips '/'s;
 *  - cloud_append_pct output decodes back to its input.
 */
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_store.h"
#include "cli.h"
#include "cloud.h"
#include "fuzz.h"

static const char *const secrets[] = {
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",        /* an AWS secret access key */
	"hvs.CAESIJlWcGx0ZW5hbnQtdG9rZW4tZXhhbXBsZQ", /* a Vault token */
	NULL,
	"ya29.a0AfH6SMBx-fuzz-bearer-token-0123456789",
};
#define NSECRETS (sizeof(secrets) / sizeof(secrets[0]))

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
	ak_smem_hook_cjson(); /* as akctl's main() does */
	return 0;
}

/* 1 if s holds a 12-byte window of a secret. */
static int
has_piece(const char *s, size_t n)
{
	size_t k, i, sl;

	for (k = 0; k < NSECRETS; k++) {
		if (secrets[k] == NULL)
			continue;
		sl = strlen(secrets[k]);
		for (i = 0; i + 12 <= sl; i++)
			if (memmem(s, n, secrets[k] + i, 12) != NULL)
				return 1;
	}
	return 0;
}

/* The contract covers whole secrets: only when the body holds no piece of one outside whole
 * occurrences can the output be required to hold none. */
static int
only_whole_secrets(const char *body)
{
	char *c = strdup(body), *p;
	size_t k, sl;
	int r;

	FUZZ_CHECK(c != NULL, "alloc");
	for (k = 0; k < NSECRETS; k++) {
		if (secrets[k] == NULL)
			continue;
		sl = strlen(secrets[k]);
		while ((p = strstr(c, secrets[k])) != NULL)
			memset(p, '#', sl);
	}
	r = !has_piece(c, strlen(c));
	free(c);
	return r;
}

/* No 12-byte window of any secret in s. */
static void
no_secret_piece(const char *s, const char *what)
{
	size_t k, i, sl, n = strlen(s);

	for (k = 0; k < NSECRETS; k++) {
		if (secrets[k] == NULL)
			continue;
		sl = strlen(secrets[k]);
		for (i = 0; i + 12 <= sl; i++)
			FUZZ_CHECK(memmem(s, n, secrets[k] + i, 12) == NULL, what);
	}
}

static void
one_line(const char *s, size_t outlen, const char *what)
{
	size_t i, n = strlen(s);

	FUZZ_CHECK(n < outlen, what);
	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, what);
}

static uint32_t
ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
	    c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t base = in_use(), outlen, n, vlen = 0;
	char *body, *out, detail[256], *value = NULL;
	uint8_t knob;
	enum ak_err r;
	int whole;

	if (size < 1)
		return 0;
	knob = data[0];
	n = size - 1;
	body = malloc(n + 1);
	FUZZ_CHECK(body != NULL, "alloc");
	memcpy(body, data + 1, n);
	body[n] = '\0';
	outlen = 1 + (size_t)(knob & 0x3f) * 8;
	out = malloc(outlen);
	FUZZ_CHECK(out != NULL, "alloc");

	/* Error texts: JSON shapes, then the raw body as cloud_clean sees it. */
	whole = only_whole_secrets(body);
	cloud_json_error(body, out, outlen, secrets, NSECRETS);
	one_line(out, outlen, "cloud_json_error output is one capped line");
	if (whole)
		no_secret_piece(out, "cloud_json_error shows no piece of a credential");
	cloud_clean(body, out, outlen, secrets, NSECRETS);
	one_line(out, outlen, "cloud_clean output is one capped line");
	if (whole)
		no_secret_piece(out, "cloud_clean shows no piece of a credential");

	/* The value, as a whole body or as a field of a JSON object. */
	r = cloud_take_value("fuzz", body, n, (knob & 0x40) ? "api_key" : NULL, &value, &vlen, detail,
	    sizeof(detail));
	if (r == AK_OK) {
		FUZZ_CHECK(value != NULL && vlen == strlen(value) && vlen >= 1 && vlen <= AK_VALUE_MAX,
		    "take_value length");
		if (!(knob & 0x40))
			FUZZ_CHECK(vlen == n && memcmp(value, body, n) == 0, "take_value is the body");
		ak_smem_free(value);
	} else {
		FUZZ_CHECK(value == NULL, "failed take_value gives nothing");
		if (n >= 12 && strlen(body) == n && !(knob & 0x40))
			FUZZ_CHECK(strstr(detail, body) == NULL, "take_value detail does not carry the value");
	}

	/* Base64 and CRC32C as Google's payload.data / dataCrc32c. */
	{
		char *dec = NULL;
		size_t dl = 0, rl = 0;
		const char *end = NULL;
		uint8_t *ref = malloc(n + 1);
		int ok;

		FUZZ_CHECK(ref != NULL, "alloc");
		ok = sodium_base642bin(ref, n + 1, body, strlen(body), NULL, &rl, &end,
		    sodium_base64_VARIANT_ORIGINAL) == 0 && end == body + strlen(body);
		FUZZ_CHECK((cloud_b64_decode(body, &dec, &dl) == 0) == ok, "b64 agrees with libsodium");
		if (ok)
			FUZZ_CHECK(dl == rl && memcmp(dec, ref, rl) == 0 && dec[dl] == '\0', "b64 bytes");
		ak_smem_free(dec);
		free(ref);
		FUZZ_CHECK(cloud_crc32c(data + 1, n) == ref_crc32c(data + 1, n), "crc32c");
	}

	/* Base URLs from the environment, and percent-encoding of path pieces. */
	{
		char url[CLOUD_URL_MAX];
		size_t i, ul;

		if (cloud_base_url(body, url, sizeof(url)) == 0) {
			ul = strlen(url);
			FUZZ_CHECK(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0,
			    "base url scheme");
			FUZZ_CHECK(ul > 0 && url[ul - 1] != '/', "base url has no trailing slash");
			for (i = 0; i < ul; i++)
				FUZZ_CHECK((unsigned char)url[i] > 0x20 && url[i] != 0x7f && url[i] != '?' &&
				    url[i] != '#', "base url bytes");
		}
		url[0] = '\0';
		if (cloud_append_pct(url, sizeof(url), body, n) == 0) {
			char *back = malloc(strlen(url) + 1);
			size_t o = 0;

			FUZZ_CHECK(back != NULL, "alloc");
			for (i = 0; url[i] != '\0'; i++) {
				if (url[i] == '%') {
					int h = hexval(url[i + 1]), l = h >= 0 ? hexval(url[i + 2]) : -1;

					FUZZ_CHECK(h >= 0 && l >= 0, "percent escape");
					back[o++] = (char)(h << 4 | l);
					i += 2;
				} else {
					FUZZ_CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					    "0123456789._~-", url[i]) != NULL, "unescaped byte is unreserved");
					back[o++] = url[i];
				}
			}
			FUZZ_CHECK(o == n && memcmp(back, body, n) == 0, "percent-encoding round-trips");
			free(back);
		}
	}
	free(out);
	free(body);
	FUZZ_CHECK(in_use() == base, "secure arena back to where it was (something leaked)");
	return 0;
}
