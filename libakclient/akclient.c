/* akclient.c - libakclient, the public face of the library's protocol client (lib/client.c).
 *
 * Nothing here speaks the protocol itself: every request goes through ak_client_*, the client akctl
 * uses, so the trust checks (socket directory, SO_PEERCRED) and the framing are the same code. This
 * file maps types and errors to the public ABI (ak/client.h) and copies values out of the secure
 * arena into the caller's buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak/client.h"
#include "ak_client.h"
#include "ak_smem.h"
#include "ak_store.h"

struct akclient {
	struct ak_client *cl;
	char detail[AK_CLIENT_DETAIL_MAX];
};

struct akclient_status {
	struct ak_status st;
};

struct akclient_list {
	struct ak_list_entry *e;
	uint32_t n;
};

const char *
akclient_version(void)
{
	return AK_VERSION;
}

const char *
akclient_strerror(int code)
{
	switch (code) {
	case AKCLIENT_OK:
		return "success";
	case AKCLIENT_ERR_NO_AGENT:
		return "no agent is running";
	case AKCLIENT_ERR_UNTRUSTED:
		return "the agent found belongs to another user";
	case AKCLIENT_ERR_LOCKED:
		return "the agent is locked";
	case AKCLIENT_ERR_NO_PROFILE:
		return "no such profile";
	case AKCLIENT_ERR_NO_VAR:
		return "no such variable in the profile";
	case AKCLIENT_ERR_TOO_SMALL:
		return "buffer too small for the value";
	case AKCLIENT_ERR_INVALID:
		return "invalid argument";
	case AKCLIENT_ERR_FAILED:
		return "request failed";
	}
	return "unknown error";
}

/* The public code for an internal error; the internal message goes to detail. */
static int
map_err(struct akclient *c, enum ak_err r)
{
	switch (r) {
	case AK_OK:
		return AKCLIENT_OK;
	case AK_ERR_NO_AGENT:
		return AKCLIENT_ERR_NO_AGENT;
	case AK_ERR_UNTRUSTED_AGENT:
		return AKCLIENT_ERR_UNTRUSTED;
	case AK_ERR_LOCKED:
		return AKCLIENT_ERR_LOCKED;
	case AK_ERR_NO_PROFILE:
		return AKCLIENT_ERR_NO_PROFILE;
	case AK_ERR_BAD_NAME:
	case AK_ERR_BAD_VARNAME:
	case AK_ERR_INVALID:
		return AKCLIENT_ERR_INVALID;
	default:
		break;
	}
	if (c != NULL && c->detail[0] == '\0')
		snprintf(c->detail, sizeof(c->detail), "%s", ak_strerror(r));
	return AKCLIENT_ERR_FAILED;
}

/* Remember the request's detail (the agent's message, or what failed on the socket). */
static int
fail(struct akclient *c, enum ak_err r)
{
	const char *d = ak_client_detail(c->cl);

	if (d[0] != '\0')
		snprintf(c->detail, sizeof(c->detail), "%s: %s", ak_strerror(r), d);
	else
		snprintf(c->detail, sizeof(c->detail), "%s", ak_strerror(r));
	return map_err(c, r);
}

int
akclient_open(const char *socket_path, struct akclient **out)
{
	struct akclient *c;
	enum ak_err r;
	int code;

	if (out == NULL)
		return AKCLIENT_ERR_INVALID;
	*out = NULL;
	/* Idempotent: the arena holds the request and reply buffers and the decoded profile. */
	if (ak_smem_init() != 0)
		return AKCLIENT_ERR_FAILED;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return AKCLIENT_ERR_FAILED;
	r = ak_client_connect(socket_path, 0, &c->cl, c->detail, sizeof(c->detail));
	if (r != AK_OK) {
		code = map_err(c, r);
		free(c);
		return code;
	}
	*out = c;
	return AKCLIENT_OK;
}

void
akclient_close(struct akclient *c)
{
	if (c == NULL)
		return;
	ak_client_close(c->cl);
	free(c);
}

const char *
akclient_detail(const struct akclient *c)
{
	return c != NULL ? c->detail : "";
}

int
akclient_get(struct akclient *c, const char *profile, const char *var, char *buf, size_t buflen,
    size_t *len)
{
	struct ak_profile *p = NULL;
	const char *v = NULL;
	size_t i, n;
	enum ak_err r;
	int code;

	if (len != NULL)
		*len = 0;
	if (c == NULL || profile == NULL || profile[0] == '\0' || buf == NULL || buflen == 0)
		return AKCLIENT_ERR_INVALID;
	c->detail[0] = '\0';
	if ((r = ak_client_get(c->cl, profile, &p)) != AK_OK) {
		code = fail(c, r);
		goto out;
	}
	if (var == NULL || strcmp(var, p->secret_var) == 0) {
		v = p->secret;
	} else {
		for (i = 0; i < p->nvars; i++)
			if (strcmp(p->vars[i].name, var) == 0)
				v = p->vars[i].value;
	}
	if (v == NULL) {
		snprintf(c->detail, sizeof(c->detail), "profile '%s' has no variable '%s'", profile, var);
		code = AKCLIENT_ERR_NO_VAR;
		goto out;
	}
	n = strlen(v);
	if (len != NULL)
		*len = n;
	if (n >= buflen) {
		sodium_memzero(buf, buflen);
		code = AKCLIENT_ERR_TOO_SMALL;
		goto out;
	}
	memcpy(buf, v, n + 1);
	code = AKCLIENT_OK;
out:
	ak_profile_free(p); /* wipes the secret */
	return code;
}

/* The start of a request that returns a new object: the arguments checked (have_out: the caller's out
 * pointer is not NULL; the caller has cleared *out), the detail cleared, the object allocated zeroed
 * into *obj. AKCLIENT_OK, or the code to return. */
static int
request_begin(struct akclient *c, int have_out, size_t size, void **obj)
{
	*obj = NULL;
	if (!have_out || c == NULL)
		return AKCLIENT_ERR_INVALID;
	c->detail[0] = '\0';
	if ((*obj = calloc(1, size)) == NULL)
		return AKCLIENT_ERR_FAILED;
	return AKCLIENT_OK;
}

int
akclient_status(struct akclient *c, struct akclient_status **out)
{
	struct akclient_status *s;
	void *v;
	enum ak_err r;
	int code;

	if (out != NULL)
		*out = NULL;
	if ((code = request_begin(c, out != NULL, sizeof(*s), &v)) != AKCLIENT_OK)
		return code;
	s = v;
	if ((r = ak_client_status(c->cl, &s->st)) != AK_OK) {
		ak_status_clear(&s->st);
		free(s);
		return fail(c, r);
	}
	*out = s;
	return AKCLIENT_OK;
}

void
akclient_status_free(struct akclient_status *st)
{
	if (st == NULL)
		return;
	ak_status_clear(&st->st);
	free(st);
}

int
akclient_status_unlocked(const struct akclient_status *st)
{
	return st != NULL && st->st.unlocked ? 1 : 0;
}

unsigned
akclient_status_profiles(const struct akclient_status *st)
{
	return st != NULL ? st->st.nprofiles : 0;
}

long
akclient_status_pid(const struct akclient_status *st)
{
	return st != NULL ? (long)st->st.pid : 0;
}

long
akclient_status_lifetime_left(const struct akclient_status *st)
{
	if (st == NULL || !st->st.unlocked || st->st.lifetime_left == 0xffffffffu)
		return -1;
	return (long)st->st.lifetime_left;
}

const char *
akclient_status_keystore(const struct akclient_status *st)
{
	return st != NULL && st->st.store_path != NULL ? st->st.store_path : "";
}

int
akclient_list(struct akclient *c, struct akclient_list **out)
{
	struct akclient_list *l;
	void *v;
	enum ak_err r;
	int code;

	if (out != NULL)
		*out = NULL;
	if ((code = request_begin(c, out != NULL, sizeof(*l), &v)) != AKCLIENT_OK)
		return code;
	l = v;
	if ((r = ak_client_list(c->cl, &l->e, &l->n)) != AK_OK) {
		free(l);
		return fail(c, r);
	}
	*out = l;
	return AKCLIENT_OK;
}

void
akclient_list_free(struct akclient_list *l)
{
	if (l == NULL)
		return;
	ak_client_list_free(l->e, l->n);
	free(l);
}

size_t
akclient_list_count(const struct akclient_list *l)
{
	return l != NULL ? l->n : 0;
}

const char *
akclient_list_name(const struct akclient_list *l, size_t i)
{
	return l != NULL && i < l->n ? l->e[i].name : NULL;
}

const char *
akclient_list_provider(const struct akclient_list *l, size_t i)
{
	return l != NULL && i < l->n ? l->e[i].provider : NULL;
}

const char *
akclient_list_secret_var(const struct akclient_list *l, size_t i)
{
	return l != NULL && i < l->n ? l->e[i].secret_var : NULL;
}
