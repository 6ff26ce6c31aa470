/* restore.c - the record `akctl use` leaves in the shell (ak_restore.h has the format). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_restore.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"

#define RESTORE_VERSION 1
#define BIN_MAX (AK_RESTORE_ENC_MAX / 4 * 3 + 3)

static char *
dup_n(int secure, const char *s, size_t n)
{
	char *p = secure ? ak_smem_alloc(n + 1) : malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void
free_str(int secure, char *s)
{
	if (s == NULL)
		return;
	if (secure) {
		ak_smem_free(s); /* wipes */
		return;
	}
	sodium_memzero(s, strlen(s));
	free(s);
}

struct ak_restore *
ak_restore_new(int secure)
{
	struct ak_restore *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->secure = secure;
	return r;
}

void
ak_restore_free(struct ak_restore *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++) {
		free_str(r->secure, r->e[i].name);
		free_str(r->secure, r->e[i].old);
	}
	free(r);
}

const struct ak_restore_entry *
ak_restore_find(const struct ak_restore *r, const char *name)
{
	size_t i;

	for (i = 0; r != NULL && i < r->n; i++)
		if (strcmp(r->e[i].name, name) == 0)
			return &r->e[i];
	return NULL;
}

static enum ak_err
add_n(struct ak_restore *r, const char *name, size_t nlen, const char *old, size_t olen)
{
	struct ak_restore_entry *e;

	if (r->n == AK_RESTORE_MAX)
		return AK_ERR_TOO_LARGE;
	e = &r->e[r->n];
	if ((e->name = dup_n(r->secure, name, nlen)) == NULL)
		return AK_ERR_NOMEM;
	e->old = NULL;
	if (old != NULL && (e->old = dup_n(r->secure, old, olen)) == NULL) {
		free_str(r->secure, e->name);
		return AK_ERR_NOMEM;
	}
	r->n++;
	return AK_OK;
}

enum ak_err
ak_restore_add(struct ak_restore *r, const char *name, const char *old)
{
	if (ak_restore_find(r, name) != NULL)
		return AK_OK;
	return add_n(r, name, strlen(name), old, old != NULL ? strlen(old) : 0);
}

enum ak_err
ak_restore_decode(const char *enc, int secure, struct ak_restore **out)
{
	struct ak_restore *r = NULL;
	struct ak_buf *b = NULL;
	uint8_t *bin = NULL;
	const uint8_t *name, *old;
	size_t binlen = 0, nlen, olen, enclen = strlen(enc), i;
	uint32_t n;
	uint8_t ver, had;
	enum ak_err e;

	*out = NULL;
	if (enclen > AK_RESTORE_ENC_MAX)
		return AK_ERR_BAD_FORMAT;
	if ((r = ak_restore_new(secure)) == NULL ||
	    (b = secure ? ak_buf_new_secure(BIN_MAX) : ak_buf_new(BIN_MAX)) == NULL ||
	    (e = ak_buf_reserve(b, BIN_MAX, &bin)) != AK_OK) {
		e = AK_ERR_NOMEM;
		goto out;
	}
	if (sodium_base642bin(bin, BIN_MAX, enc, enclen, NULL, &binlen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
		e = AK_ERR_BAD_FORMAT;
		goto out;
	}
	ak_buf_unreserve(b, BIN_MAX - binlen);
	if (ak_buf_get_u8(b, &ver) != AK_OK || ver != RESTORE_VERSION || ak_buf_get_u32(b, &n) != AK_OK ||
	    n > AK_RESTORE_MAX) {
		e = AK_ERR_BAD_FORMAT;
		goto out;
	}
	for (i = 0; i < n; i++) {
		char nm[AK_VARNAME_MAX + 1];

		if (ak_buf_get_string_direct(b, &name, &nlen, AK_VARNAME_MAX) != AK_OK ||
		    ak_buf_get_u8(b, &had) != AK_OK || had > 1 ||
		    ak_buf_get_string_direct(b, &old, &olen, AK_VALUE_MAX) != AK_OK ||
		    memchr(old, '\0', olen) != NULL) {
			e = AK_ERR_BAD_FORMAT;
			goto out;
		}
		memcpy(nm, name, nlen);
		nm[nlen] = '\0';
		/* Names go back into shell lines: only variable names are accepted. */
		if (ak_varname_check(nm) != AK_OK) {
			e = AK_ERR_BAD_FORMAT;
			goto out;
		}
		if ((e = add_n(r, nm, nlen, had ? (const char *)old : NULL, olen)) != AK_OK)
			goto out;
	}
	if (ak_buf_len(b) != 0) {
		e = AK_ERR_BAD_FORMAT;
		goto out;
	}
	*out = r;
	r = NULL;
	e = AK_OK;
out:
	ak_buf_free(b); /* wipes: it held the previous values */
	ak_restore_free(r);
	return e;
}

enum ak_err
ak_restore_encode(const struct ak_restore *r, struct ak_buf *out)
{
	struct ak_buf *b = NULL;
	uint8_t *dst;
	size_t i, enclen;
	enum ak_err e;

	if ((b = r->secure ? ak_buf_new_secure(BIN_MAX) : ak_buf_new(BIN_MAX)) == NULL)
		return AK_ERR_NOMEM;
	if ((e = ak_buf_put_u8(b, RESTORE_VERSION)) != AK_OK || (e = ak_buf_put_u32(b, (uint32_t)r->n)) != AK_OK)
		goto out;
	for (i = 0; i < r->n; i++) {
		const char *old = r->e[i].old;

		if ((e = ak_buf_put_cstring(b, r->e[i].name)) != AK_OK ||
		    (e = ak_buf_put_u8(b, old != NULL)) != AK_OK ||
		    (e = ak_buf_put_cstring(b, old != NULL ? old : "")) != AK_OK)
			goto out;
	}
	enclen = sodium_base64_encoded_len(ak_buf_len(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (enclen - 1 > AK_RESTORE_ENC_MAX) {
		e = AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((e = ak_buf_reserve(out, enclen, &dst)) != AK_OK)
		goto out;
	sodium_bin2base64((char *)dst, enclen, ak_buf_ptr(b), ak_buf_len(b),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ak_buf_unreserve(out, 1); /* the NUL */
	e = AK_OK;
out:
	ak_buf_free(b); /* wipes */
	return e;
}

enum ak_err
ak_restore_lines(struct ak_buf *out, enum ak_shell sh, const struct ak_restore *r,
    int (*keep)(const char *name, void *arg), void *arg)
{
	size_t i;
	enum ak_err e;

	for (i = 0; r != NULL && i < r->n; i++) {
		if (keep != NULL && keep(r->e[i].name, arg))
			continue;
		e = r->e[i].old != NULL ? ak_shell_export(out, sh, r->e[i].name, r->e[i].old) :
		    ak_shell_unset(out, sh, r->e[i].name);
		if (e != AK_OK)
			return e;
	}
	return AK_OK;
}
