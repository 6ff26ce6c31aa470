/* gen.h - the generated profiles shared by akmkstore (writes them) and akloadgen (checks them).
 * Profile i of seed S: name "p%05u", secret gen_secret(S, i) (Anthropic-shaped, made up here), one plain
 * variable ANTHROPIC_MODEL = "model-%u". Test data only. */
#ifndef AK_STRESS_GEN_H
#define AK_STRESS_GEN_H

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define GEN_SECRET_LEN (13 + 93 + 2)

static inline void
gen_name(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "p%05u", i);
}

/* "sk-ant-api03-" + 93 base64url characters from BLAKE2b(seed, i) + "AA"; buf >= GEN_SECRET_LEN + 1. */
static inline void
gen_secret(unsigned seed, unsigned i, char *buf)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char in[8], h[64];
	size_t k;

	memcpy(in, &seed, 4);
	memcpy(in + 4, &i, 4);
	crypto_generichash(h, sizeof(h), in, sizeof(in), NULL, 0);
	memcpy(buf, "sk-ant-api03-", 13);
	for (k = 0; k < 93; k++)
		buf[13 + k] = b64[(h[k % 64] + k / 64 * 7) & 63];
	buf[106] = 'A';
	buf[107] = 'A';
	buf[108] = '\0';
}

#endif
