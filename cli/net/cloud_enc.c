/* cloud_enc.c - the encodings every cloud provider shares: error text (one line, every credential sent
 * scrubbed, since some services echo request parts back), URL pieces, the secret's value out of a body
 * or a JSON field, base64 and CRC32C. No network here: the fuzz target runs these on hostile bodies. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "cloud.h"

enum ak_err
cloud_err(enum ak_err e, char *detail, size_t detaillen, const char *fmt, ...)
{
	va_list ap;

	if (detaillen == 0)
		return e;
	va_start(ap, fmt);
	vsnprintf(detail, detaillen, fmt, ap);
	va_end(ap);
	return e;
}

int
cloud_token_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int
cloud_append(char *out, size_t outlen, const char *s)
{
	size_t a = strlen(out), b = strlen(s);

	if (a + b + 1 > outlen)
		return -1;
	memcpy(out + a, s, b + 1);
	return 0;
}

int
cloud_append_pct(char *out, size_t outlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t a = strlen(out), i;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '.' || ch == '_' || ch == '~' || ch == '-') {
			if (a + 2 > outlen)
				return -1;
			out[a++] = (char)ch;
		} else {
			if (a + 4 > outlen)
				return -1;
			out[a++] = '%';
			out[a++] = hex[ch >> 4];
			out[a++] = hex[ch & 15];
		}
	}
	out[a] = '\0';
	return 0;
}

int
cloud_base_url(const char *in, char *out, size_t outlen)
{
	size_t n, i;

	if (strncmp(in, "https://", 8) != 0 && !(strncmp(in, "http://", 7) == 0 && net_is_loopback_http(in)))
		return -1; /* tokens travel in headers: plain http only to this machine */
	n = strlen(in);
	for (i = 0; i < n; i++)
		if ((unsigned char)in[i] <= 0x20 || (unsigned char)in[i] >= 0x7f || in[i] == '?' ||
		    in[i] == '#')
			return -1;
	while (n > 0 && in[n - 1] == '/')
		n--;
	if (n + 1 > outlen || n <= 8)
		return -1;
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

void
cloud_clean(const char *in, char *out, size_t outlen, const char *const *secrets, size_t nsecrets)
{
	static const char red[] = "[redacted]";
	size_t o = 0, i, k, sl;
	int hit;

	if (outlen == 0)
		return;
	for (i = 0; in != NULL && in[i] != '\0';) {
		/* A blank line ends the message: what follows is detail some services append (AWS quotes
		 * the canonical request there). Single line breaks and tabs (Vault's lists) become spaces. */
		if (in[i] == '\n' || in[i] == '\r' || in[i] == '\t') {
			if (in[i] == '\n' && (in[i + 1] == '\n' || (in[i + 1] == '\r' && in[i + 2] == '\n')))
				break;
			if (o > 0 && out[o - 1] != ' ') {
				if (o + 2 > outlen)
					goto full;
				out[o++] = ' ';
			}
			i++;
			continue;
		}
		hit = 0;
		for (k = 0; k < nsecrets; k++) {
			if (secrets[k] == NULL || (sl = strlen(secrets[k])) < 4)
				continue;
			if (strncmp(in + i, secrets[k], sl) == 0) {
				if (o + sizeof(red) > outlen)
					goto full;
				memcpy(out + o, red, sizeof(red) - 1);
				o += sizeof(red) - 1;
				i += sl;
				hit = 1;
				break;
			}
		}
		if (hit)
			continue;
		if (o + 2 > outlen)
			goto full;
		out[o++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
		i++;
	}
	/* Trailing blanks (a message ending in ". " before its newline) look odd in one line. */
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return;
full:
	/* Cut, and say so; never cut in the middle of a redaction marker. */
	if (outlen > 4) {
		o = o < outlen - 4 ? o : outlen - 4;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}

void
cloud_json_error(const char *body, char *out, size_t outlen, const char *const *secrets,
    size_t nsecrets)
{
	cJSON *j, *e, *m, *t;
	char raw[512];
	const char *type = NULL, *msg = NULL, *hash;

	out[0] = '\0';
	if (body == NULL || (j = cJSON_Parse(body)) == NULL)
		return;
	if (cJSON_IsObject(j)) {
		/* AWS JSON 1.1: {"__type": "[ns#]Name", "message"|"Message": ...} */
		if (cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(j, "__type"))) {
			type = t->valuestring;
			if ((hash = strrchr(type, '#')) != NULL)
				type = hash + 1;
		}
		if (cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(j, "message")) ||
		    cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(j, "Message")))
			msg = m->valuestring;
		/* Google {"error":{"code":404,"message":..,"status":"NOT_FOUND"}}, Azure
		 * {"error":{"code":"SecretNotFound","message":..}}. */
		if (cJSON_IsObject(e = cJSON_GetObjectItemCaseSensitive(j, "error"))) {
			if (cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(e, "status")) ||
			    cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(e, "code")))
				type = t->valuestring;
			if (cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(e, "message")))
				msg = m->valuestring;
		}
		/* Vault {"errors": ["permission denied"]} */
		if (cJSON_IsArray(e = cJSON_GetObjectItemCaseSensitive(j, "errors")) &&
		    cJSON_IsString(m = cJSON_GetArrayItem(e, 0)))
			msg = m->valuestring;
	}
	if (type != NULL && msg != NULL)
		snprintf(raw, sizeof(raw), "%s: %s", type, msg);
	else
		snprintf(raw, sizeof(raw), "%s", type != NULL ? type : msg != NULL ? msg : "");
	cloud_clean(raw, out, outlen, secrets, nsecrets);
	sodium_memzero(raw, sizeof(raw));
	cJSON_Delete(j);
}

enum ak_err
cloud_take_value(const char *who, const char *s, size_t n, const char *field, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	cJSON *j = NULL;
	enum ak_err r;

	*value = NULL;
	*value_len = 0;
	if (memchr(s, '\0', n) != NULL) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
		    "%s: the secret is binary (contains a NUL byte)", who);
		goto out;
	}
	if (field != NULL) {
		/* The secret itself is a JSON object of several values: pick one. */
		j = cJSON_ParseWithLength(s, n);
		if (!cJSON_IsObject(j)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: '#%s' given but the secret is not a JSON object", who, field);
			goto out;
		}
		r = cloud_take_member(who, j, field, value, value_len, detail, detaillen);
		goto out;
	}
	if (n == 0) {
		r = cloud_err(AK_ERR_EMPTY, detail, detaillen, "%s: the secret is empty", who);
		goto out;
	}
	if (n > AK_VALUE_MAX) {
		r = cloud_err(AK_ERR_TOO_LARGE, detail, detaillen, "%s: the secret is over %d bytes", who,
		    AK_VALUE_MAX);
		goto out;
	}
	if ((*value = ak_smem_strndup(s, n)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", who);
		goto out;
	}
	*value_len = n;
	r = AK_OK;
out:
	cJSON_Delete(j); /* arena-hooked: wipes the parsed secret */
	return r;
}

enum ak_err
cloud_take_member(const char *who, const cJSON *obj, const char *name, char **value, size_t *value_len,
    char *detail, size_t detaillen)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

	*value = NULL;
	*value_len = 0;
	if (f == NULL)
		return cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: the secret has no field '%s'", who,
		    name);
	if (!cJSON_IsString(f))
		return cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: field '%s' is not a string", who,
		    name);
	return cloud_take_value(who, f->valuestring, strlen(f->valuestring), NULL, value, value_len, detail,
	    detaillen);
}

int
cloud_b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in), cap = n / 4 * 3 + 3, got = 0;
	const char *end = NULL;
	char *b;

	*out = NULL;
	*outlen = 0;
	if ((b = ak_smem_alloc(cap + 1)) == NULL)
		return -1;
	if (sodium_base642bin((unsigned char *)b, cap, in, n, NULL, &got, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != in + n) {
		ak_smem_free(b);
		return -1;
	}
	b[got] = '\0';
	*out = b;
	*outlen = got;
	return 0;
}

uint32_t
cloud_crc32c(const void *buf, size_t len)
{
	static uint32_t table[256];
	static int ready;
	const unsigned char *p = buf;
	uint32_t c;
	size_t i;
	int k;

	if (!ready) {
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	c = 0xFFFFFFFFu;
	for (i = 0; i < len; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

size_t
cloud_split(const char *rest, const char **seg, size_t *len, size_t max, int *more)
{
	const char *p, *slash = NULL;
	size_t n = 0;

	for (p = rest; n < max; p = slash + 1) {
		slash = strchr(p, '/');
		seg[n] = p;
		len[n] = slash != NULL ? (size_t)(slash - p) : strlen(p);
		n++;
		if (slash == NULL)
			break;
	}
	*more = slash != NULL;
	return n;
}
