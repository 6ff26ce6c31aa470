/* gen_corpus.c - writes the seed corpora under tests/fuzz/corpus/<target>/ (checked in).
 *
 * usage: fuzz-gen-corpus DIR     (ninja -C BUILD tests/fuzz/fuzz-gen-corpus; run it on tests/fuzz/corpus)
 * Seeds are valid encodings produced by the library's own encoders, plus a few hand-written cases;
 * the UNLOCK key in the dispatch seeds is the fixed fuzz key (fuzz_common.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ak_buf.h"
#include "ak_edit.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "fuzz.h"

static const char *root;
static uint8_t key[AK_KEY_BYTES];

static void
die(const char *what)
{
	fprintf(stderr, "fuzz-gen-corpus: %s\n", what);
	exit(1);
}

static void
emit(const char *target, const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("mkdir");
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die(path);
}

static void
emit_s(const char *target, const char *name, const char *s)
{
	emit(target, name, s, strlen(s));
}

/* Append the finished frame in m to acc. */
static void
cat(struct ak_buf *acc, struct ak_buf *m)
{
	if (ak_proto_finish(m, AK_PROTO_MAX_REPLY) != AK_OK ||
	    ak_buf_put(acc, ak_buf_ptr(m), ak_buf_len(m)) != AK_OK)
		die("frame");
}

static struct ak_buf *
B(void)
{
	struct ak_buf *b = ak_buf_new_secure(1u << 20);

	if (b == NULL)
		die("alloc");
	return b;
}

static void
req_simple(struct ak_buf *acc, uint8_t type)
{
	struct ak_buf *m = B();

	ak_proto_begin(m, type);
	cat(acc, m);
	ak_buf_free(m);
}

static void
req_name(struct ak_buf *acc, uint8_t type, const char *name)
{
	struct ak_buf *m = B();

	ak_proto_begin(m, type);
	ak_buf_put_cstring(m, name);
	cat(acc, m);
	ak_buf_free(m);
}

/* An EDIT of profile: set a plain and a secret variable, a description, then rename or copy to dst. */
static void
req_edit(struct ak_buf *acc, const char *profile, uint8_t last, const char *dst)
{
	struct ak_buf *m = B();
	struct ak_edit *e = ak_edit_new(profile);

	if (e == NULL || ak_edit_add(e, AK_EDIT_SET_VAR, "MODEL", "m") != AK_OK ||
	    ak_edit_add(e, AK_EDIT_SET_SECRET, "DB_PASSWORD", "pw") != AK_OK ||
	    ak_edit_add(e, AK_EDIT_DESCRIPTION, "d", NULL) != AK_OK ||
	    (dst != NULL && ak_edit_add(e, last, dst, NULL) != AK_OK))
		die("edit");
	ak_proto_begin(m, AK_MSG_EDIT);
	ak_proto_put_edit(m, e);
	cat(acc, m);
	ak_edit_free(e);
	ak_buf_free(m);
}

/* A rotation of profile's main secret with a grace, then GET_PREVIOUS, a rollback and a finish. */
static void
req_rotate(struct ak_buf *acc, const char *profile)
{
	static const uint8_t kinds[] = { AK_EDIT_ROLLBACK, AK_EDIT_FINISH };
	struct ak_buf *m = B();
	struct ak_edit *e = ak_edit_new(profile);
	size_t i;

	if (e == NULL || ak_edit_add(e, AK_EDIT_ROTATE, "", "rotated-key") != AK_OK ||
	    ak_edit_add(e, AK_EDIT_GRACE, "", "60") != AK_OK ||
	    ak_edit_add(e, AK_EDIT_ROTATE_EVERY, "86400", NULL) != AK_OK)
		die("rotate");
	ak_proto_begin(m, AK_MSG_EDIT);
	ak_proto_put_edit(m, e);
	cat(acc, m);
	ak_edit_free(e);
	ak_proto_begin(m, AK_MSG_GET_PREVIOUS);
	ak_buf_put_cstring(m, profile);
	cat(acc, m);
	for (i = 0; i < sizeof(kinds); i++) {
		if ((e = ak_edit_new(profile)) == NULL || ak_edit_add(e, kinds[i], "", NULL) != AK_OK)
			die("rotate");
		ak_proto_begin(m, AK_MSG_EDIT);
		ak_proto_put_edit(m, e);
		cat(acc, m);
		ak_edit_free(e);
	}
	ak_buf_free(m);
}

static void
req_unlock(struct ak_buf *acc, const uint8_t *k, size_t klen, uint32_t lifetime)
{
	struct ak_buf *m = B();

	ak_proto_begin(m, AK_MSG_UNLOCK);
	ak_buf_put_string(m, k, klen);
	ak_buf_put_u32(m, lifetime);
	cat(acc, m);
	ak_buf_free(m);
}

static void
req_add(struct ak_buf *acc, const struct ak_profile *p, uint8_t flags)
{
	struct ak_buf *m = B();

	ak_proto_begin(m, AK_MSG_ADD);
	ak_buf_put_u8(m, flags);
	if (ak_proto_put_profile(m, p) != AK_OK)
		die("put_profile");
	cat(acc, m);
	ak_buf_free(m);
}

/* flags, timing, then the stream */
static void
emit_dispatch(const char *name, uint8_t flags, uint8_t timing, struct ak_buf *acc)
{
	struct ak_buf *o = B();

	ak_buf_put_u8(o, flags);
	ak_buf_put_u8(o, timing);
	ak_buf_put(o, ak_buf_ptr(acc), ak_buf_len(acc));
	emit("dispatch", name, ak_buf_ptr(o), ak_buf_len(o));
	ak_buf_free(o);
	ak_buf_reset(acc);
}

static void
gen_proto(const struct ak_store *s)
{
	struct ak_buf *acc = B(), *m = B();
	struct ak_status st;
	char name[64];
	size_t i;

	for (i = 0; i < s->n; i++) {
		ak_proto_begin(m, AK_MSG_PROFILE_REPLY);
		ak_proto_put_profile(m, s->p[i]);
		cat(acc, m);
		snprintf(name, sizeof(name), "profile-%zu", i);
		emit("proto", name, ak_buf_ptr(acc), ak_buf_len(acc));
		ak_buf_reset(acc);
	}
	memset(&st, 0, sizeof(st));
	st.proto_version = 1;
	st.unlocked = 1;
	st.weak_kdf = 1;
	st.pid = 4242;
	st.store_path = "/home/u/.local/share/akagent/keystore";
	st.nprofiles = 3;
	st.lifetime_left = 28800;
	st.idle_timeout = 3600;
	ak_proto_begin(m, AK_MSG_STATUS_REPLY);
	ak_proto_put_status(m, &st);
	cat(acc, m);
	emit("proto", "status", ak_buf_ptr(acc), ak_buf_len(acc));
	ak_buf_reset(acc);

	ak_proto_begin(m, AK_MSG_LIST_REPLY);
	ak_buf_put_u32(m, (uint32_t)s->n);
	for (i = 0; i < s->n; i++)
		ak_proto_put_list_entry(m, s->p[i]);
	cat(acc, m);
	emit("proto", "list", ak_buf_ptr(acc), ak_buf_len(acc));
	ak_buf_reset(acc);

	ak_proto_put_list_packed(m, s->p, s->n);
	cat(acc, m);
	emit("proto", "list-packed", ak_buf_ptr(acc), ak_buf_len(acc));
	ak_buf_reset(acc);

	ak_proto_begin(m, AK_MSG_ERROR);
	ak_proto_put_error(m, AK_ERR_LOCKED, "agent is locked");
	cat(acc, m);
	ak_proto_begin(m, AK_MSG_OK);
	cat(acc, m);
	ak_proto_begin(m, AK_MSG_ERROR);
	ak_proto_put_error(m, AK_ERR_NO_PROFILE, NULL);
	cat(acc, m);
	emit("proto", "error-ok-error", ak_buf_ptr(acc), ak_buf_len(acc));
	ak_buf_reset(acc);

	req_add(acc, s->p[0], AK_ADD_FORCE);
	req_name(acc, AK_MSG_GET, "work");
	req_name(acc, AK_MSG_REMOVE, "x.y_z-1");
	req_edit(acc, "work", AK_EDIT_RENAME, "work2");
	req_unlock(acc, key, sizeof(key), 3600);
	req_simple(acc, AK_MSG_LIST);
	emit("proto", "requests", ak_buf_ptr(acc), ak_buf_len(acc));
	ak_buf_free(acc);
	ak_buf_free(m);
}

static void
gen_dispatch(const struct ak_store *s)
{
	struct ak_buf *acc = B();
	struct ak_profile *np = ak_profile_dup(s->p[1]);
	uint8_t wrong[AK_KEY_BYTES];

	req_simple(acc, AK_MSG_STATUS);
	emit_dispatch("status-locked", 0, 0, acc);

	req_simple(acc, AK_MSG_LIST);
	req_simple(acc, AK_MSG_LIST_PACKED);
	req_name(acc, AK_MSG_GET, "work");
	req_name(acc, AK_MSG_GET, "missing");
	req_name(acc, AK_MSG_GET, "../etc");
	req_simple(acc, AK_MSG_STATUS);
	emit_dispatch("unlocked-reads", 1, 0, acc);

	req_unlock(acc, key, sizeof(key), 0);
	req_simple(acc, AK_MSG_LIST);
	req_name(acc, AK_MSG_GET, "personal");
	req_simple(acc, AK_MSG_LOCK);
	req_simple(acc, AK_MSG_LIST);
	req_name(acc, AK_MSG_GET, "personal");
	emit_dispatch("unlock-lock", 0, 0, acc);

	if (np == NULL || ak_profile_set_field(&np->name, "new-one") != AK_OK ||
	    ak_profile_set_var(np, "EXTRA_VAR", "v") != AK_OK)
		die("profile");
	req_add(acc, np, 0);
	req_simple(acc, AK_MSG_LIST);
	req_add(acc, np, 0);
	req_add(acc, s->p[0], AK_ADD_FORCE);
	req_name(acc, AK_MSG_REMOVE, "work");
	req_name(acc, AK_MSG_GET, "work");
	req_name(acc, AK_MSG_REMOVE, "work");
	req_name(acc, AK_MSG_GET, "new-one");
	emit_dispatch("writes", 1, 0, acc);

	req_edit(acc, "personal", 0, NULL);
	req_rotate(acc, "personal");
	req_name(acc, AK_MSG_GET, "personal");
	req_edit(acc, "personal", AK_EDIT_COPY, "personal2");
	req_edit(acc, "personal", AK_EDIT_RENAME, "personal2");
	req_edit(acc, "personal", AK_EDIT_RENAME, "renamed");
	req_simple(acc, AK_MSG_LIST);
	req_edit(acc, "missing", 0, NULL);
	emit_dispatch("edits", 1, 0, acc);

	memset(wrong, 0x5a, sizeof(wrong));
	req_unlock(acc, wrong, sizeof(wrong), 0);
	req_unlock(acc, key, sizeof(key), AK_LIFETIME_NONE);
	req_simple(acc, AK_MSG_STATUS);
	req_unlock(acc, NULL, 0, 60);
	req_simple(acc, AK_MSG_STATUS);
	emit_dispatch("wrong-then-right", 0, 0, acc);

	req_simple(acc, AK_MSG_STATUS);
	req_name(acc, AK_MSG_GET, "work");
	req_simple(acc, AK_MSG_STATUS);
	req_name(acc, AK_MSG_GET, "work");
	req_simple(acc, AK_MSG_LIST);
	/* lifetime 1 s, idle 60 s, clock +1 s per request */
	emit_dispatch("expiry", 1, 0x1 | 0x2 << 2 | 0x1 << 4, acc);

	req_unlock(acc, NULL, 0, 0);
	req_simple(acc, 0x42);
	req_simple(acc, AK_MSG_SHUTDOWN);
	req_simple(acc, AK_MSG_STATUS);
	emit_dispatch("refresh-unknown-shutdown", 1, 0, acc);

	ak_profile_free(np);
	ak_buf_free(acc);
}

static void
gen_keystore(const struct ak_store *s, const struct ak_kdf *kdf)
{
	uint8_t *img = NULL, *o;
	size_t len = 0, pl = 0;
	char *pt = NULL;
	struct ak_store *e = ak_store_new();

	if (ak_store_seal_image(s, kdf, key, &img, &len) != AK_OK || (o = malloc(len + 1)) == NULL)
		die("seal");
	o[0] = 0;
	memcpy(o + 1, img, len);
	emit("keystore", "image-sample", o, len + 1);
	free(o);
	free(img);
	if (ak_store_seal_image(e, kdf, key, &img, &len) != AK_OK || (o = malloc(len + 1)) == NULL)
		die("seal");
	o[0] = 0;
	memcpy(o + 1, img, len);
	emit("keystore", "image-empty", o, len + 1);
	free(o);
	free(img);
	if (ak_store_serialize(s, &pt, &pl) != AK_OK || (o = malloc(pl + 1)) == NULL)
		die("serialize");
	o[0] = 1;
	memcpy(o + 1, pt, pl);
	emit("keystore", "plain-sample", o, pl + 1);
	o[0] = 2;
	emit("keystore", "sealed-sample", o, pl + 1);
	free(o);
	ak_smem_free(pt);
	emit_s("keystore", "plain-empty", "\x01{\"version\":1,\"profiles\":[]}");
	emit_s("keystore", "plain-version2", "\x01{\"version\":2,\"profiles\":[]}");
	{
		static const char hdr[] =
		    "\x00{\"format\":\"akagent-keystore\",\"version\":1,\"kdf\":{\"alg\":\"argon2id13\","
		    "\"preset\":\"moderate\",\"opslimit\":3,\"memlimit\":268435456,\"salt\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAA==\"},\"cipher\":\"xchacha20poly1305-ietf\",\"nonce\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}\n";

		static const char hdr2[] =
		    "\x00{\"format\":\"akagent-keystore\",\"version\":2,\"kdf\":{\"alg\":\"argon2id13\","
		    "\"preset\":\"sensitive\",\"opslimit\":4,\"memlimit\":1073741824,\"salt\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAA==\"},\"cipher\":\"xchacha20poly1305-ietf\",\"commitment\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"nonce\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}\n";

		emit("keystore", "header-only", hdr, sizeof(hdr) - 1);
		emit("keystore", "header-v2-sensitive", hdr2, sizeof(hdr2) - 1);
	}
	ak_store_free(e);
}

static void
gen_text(void)
{
	static const char *const dotenv[] = {
		"ANTHROPIC_API_KEY=sk-ant-api03-abc\nOPENAI_API_KEY='sk-proj-x'\n",
		"# comment\nexport A=\"double \\\"quoted\\\" \\n value\"\nB='single \\' quoted'\nC=plain # trailing\n",
		"MULTI=\"line one\nline two\"\r\nEMPTY=\nBARE\n  SPACED  =  value  \n",
		"A=1\nA=2\nbad line here\n=novalue\nB=${A}\n",
		"K='unterminated\nL=ok\n\xc3\xa9=x\nM=\xe2\x80\x98quote\xe2\x80\x99\n",
	};
	static const char *const names[] = {
		"work", "x.y_z-1", "..", "ANTHROPIC_API_KEY", "_x9", "1h30m", "2d", "90", "0", "365d",
		"sk-ant-api03-Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6-_xy9QAA",
		"sk-proj-4fJ8kLm2Qw9zXc7Vb6Nn5Hh3Gg1Dd0Ss", "abc-def-0123456789abcdef", "short",
	};
	static const char *const values[] = {
		"simple", "it's", "a\nb", "!bang!", "\xe2\x80\x98q\xe2\x80\x99", "%PATH%^&|<>()\"", "\x01\x7f\t",
		"\xc3\xa9t\xc3\xa9", "back\\slash\\", "$(id)`id`${HOME}", "", "\xff\xfe",
	};
	char name[32];
	size_t i, sh;

	for (i = 0; i < sizeof(dotenv) / sizeof(dotenv[0]); i++) {
		snprintf(name, sizeof(name), "env-%zu", i);
		emit_s("dotenv", name, dotenv[i]);
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(name, sizeof(name), "s-%zu", i);
		emit_s("names", name, names[i]);
	}
	for (sh = 0; sh < 7; sh++) {
		for (i = 0; i < sizeof(values) / sizeof(values[0]); i += (sh == 0 ? 1 : 2)) {
			char buf[128];
			size_t n = strlen(values[i]);

			buf[0] = (char)sh;
			buf[1] = (char)(i % 4);
			memcpy(buf + 2, values[i], n);
			snprintf(name, sizeof(name), "sh%zu-%zu", sh, i);
			emit("shell", name, buf, n + 2);
		}
	}
}

int
main(int argc, char **argv)
{
	struct ak_kdf kdf;
	struct ak_store *s;

	if (argc != 2)
		die("usage: fuzz-gen-corpus DIR");
	root = argv[1];
	if (ak_smem_init() != 0)
		die("smem");
	ak_smem_hook_cjson();
	if (fuzz_fixed_key(&kdf, key) != 0 || (s = fuzz_sample_store()) == NULL)
		die("fixture");
	gen_proto(s);
	gen_dispatch(s);
	gen_keystore(s, &kdf);
	gen_text();
	ak_store_free(s);
	return 0;
}
