/* fuzz_proto.c - the wire decoders, as akctl (replies) and akagent (requests) run them.
 *
 * Input: a byte stream read as consecutive frames (ak_proto_frame with the reply limit). Each frame's
 * payload goes to the decoder its type names; unknown types pick one by (type & 7), so every decoder
 * sees every shape. Properties:
 *  - the framer never accepts a frame that is not all there, and asks for more than it has;
 *  - a decoder that fails leaves nothing allocated (ASan/LSan; the arena's in_use is back to where
 *    it was) and its output zeroed;
 *  - a decoded profile or status re-encodes to exactly the bytes it was decoded from (canonical);
 *  - decoded names, variable names and codes obey the same rules the encoders apply.
 */
#include <string.h>

#include "ak_buf.h"
#include "ak_edit.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "fuzz.h"

static size_t
arena_in_use(void)
{
	struct ak_smem_stats st;

	ak_smem_stats(&st);
	return st.in_use;
}

/* Bytes the decoder consumed from the copy it started with, as a buffer to compare against. */
static void
check_reencode(const uint8_t *orig, size_t used, const struct ak_buf *enc, const char *what)
{
	FUZZ_CHECK(ak_buf_len(enc) == used, what);
	FUZZ_CHECK(memcmp(ak_buf_ptr(enc), orig, used) == 0, what);
}

static void
do_profile(struct ak_buf *b, const uint8_t *orig, size_t olen)
{
	struct ak_profile *p = (struct ak_profile *)1;
	struct ak_buf *enc;
	enum ak_err r;
	size_t i;

	r = ak_proto_get_profile(b, &p);
	if (r != AK_OK) {
		FUZZ_CHECK(p == NULL, "failed profile decode leaves *out NULL");
		return;
	}
	FUZZ_CHECK(p != NULL, "profile decoded");
	FUZZ_CHECK(ak_profile_validate(p) == AK_OK, "decoded profile validates");
	FUZZ_CHECK(ak_name_check(p->name) == AK_OK, "decoded profile name");
	FUZZ_CHECK(p->secret[0] != '\0', "decoded secret not empty");
	for (i = 0; i < p->nvars; i++)
		FUZZ_CHECK(ak_varname_check(p->vars[i].name) == AK_OK, "decoded var name");
	enc = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	FUZZ_CHECK(enc != NULL, "alloc");
	FUZZ_CHECK(ak_proto_put_profile(enc, p) == AK_OK, "decoded profile re-encodes");
	check_reencode(orig, olen - ak_buf_len(b), enc, "profile encoding is canonical");
	ak_buf_free(enc);
	ak_profile_free(p);
}

static void
do_status(struct ak_buf *b, const uint8_t *orig, size_t olen)
{
	struct ak_status st;
	struct ak_buf *enc;

	if (ak_proto_get_status(b, &st) != AK_OK) {
		FUZZ_CHECK(st.store_path == NULL, "failed status decode zeroes");
		return;
	}
	FUZZ_CHECK(st.unlocked <= 1 && st.weak_kdf <= 1, "status flags");
	FUZZ_CHECK(st.store_path != NULL, "status path");
	enc = ak_buf_new(AK_PROTO_MAX_REPLY);
	FUZZ_CHECK(enc != NULL, "alloc");
	FUZZ_CHECK(ak_proto_put_status(enc, &st) == AK_OK, "status re-encodes");
	check_reencode(orig, olen - ak_buf_len(b), enc, "status encoding is canonical");
	ak_buf_free(enc);
	ak_status_clear(&st);
}

static void
do_list(struct ak_buf *b)
{
	struct ak_list_entry e;
	uint32_t n, i, k;

	if (ak_buf_get_u32(b, &n) != AK_OK)
		return;
	/* As the client does it: one row at a time, stop at the first bad one. */
	for (i = 0; i < n; i++) {
		if (ak_proto_get_list_entry(b, &e) != AK_OK) {
			FUZZ_CHECK(e.name == NULL && e.vars == NULL, "failed row decode zeroes");
			return;
		}
		FUZZ_CHECK(ak_name_check(e.name) == AK_OK, "row name");
		FUZZ_CHECK(ak_varname_check(e.secret_var) == AK_OK, "row secret_var");
		FUZZ_CHECK(e.nvars <= AK_VARS_MAX, "row nvars");
		FUZZ_CHECK(e.provider && e.redacted && e.description, "row strings");
		for (k = 0; k < e.nvars; k++)
			FUZZ_CHECK(ak_varname_check(e.vars[k]) == AK_OK, "row var name");
		ak_list_entry_clear(&e);
	}
}

/* LIST_PACKED_REPLY, as the streaming client takes it: the head, then one row at a time from byte
 * ranges that may end early (each call takes a whole head or row, or nothing). */
static void
do_list_packed(struct ak_buf *b)
{
	struct ak_proto_pool pool = { NULL, 0, 0 };
	struct ak_list_unpack u;
	struct ak_list_entry e;
	const uint8_t *p = ak_buf_ptr(b);
	size_t len = ak_buf_len(b), used, before;
	uint32_t k;
	enum ak_err r;

	pool.size = ak_proto_unpack_head_pool(len) + ak_proto_unpack_row_pool(AK_PROTO_PACKED_ROW_MAX);
	if ((pool.p = malloc(pool.size)) == NULL)
		return;
	/* A cut a third of the way in must say TRUNCATED or fail, never read past it. */
	if (ak_proto_unpack_head(&u, p, len / 3, &pool, &used) == AK_OK)
		FUZZ_CHECK(used <= len / 3, "packed head within its bytes");
	pool.used = 0;
	if (ak_proto_unpack_head(&u, p, len, &pool, &used) != AK_OK)
		goto out;
	FUZZ_CHECK(used <= len && u.n <= AK_PROFILES_MAX, "packed head");
	p += used;
	len -= used;
	while (u.done < u.n) {
		before = pool.used;
		r = ak_proto_unpack_row(&u, p, len / 2, &e, &pool, &used);
		if (r != AK_OK)
			FUZZ_CHECK(pool.used == before && e.name == NULL, "failed packed row takes nothing");
		else
			FUZZ_CHECK(used <= len / 2, "packed row within its bytes");
		if (r != AK_OK && (r = ak_proto_unpack_row(&u, p, len, &e, &pool, &used)) != AK_OK)
			break;
		FUZZ_CHECK(used <= len, "packed row within its bytes");
		FUZZ_CHECK(ak_name_check(e.name) == AK_OK, "packed row name");
		FUZZ_CHECK(ak_varname_check(e.secret_var) == AK_OK, "packed row secret_var");
		FUZZ_CHECK(e.nvars <= AK_VARS_MAX && e.provider && e.redacted && e.description &&
		    strlen(e.redacted) < 128, "packed row strings");
		for (k = 0; k < e.nvars; k++)
			FUZZ_CHECK(ak_varname_check(e.vars[k]) == AK_OK, "packed row var name");
		p += used;
		len -= used;
		/* rows are handed over one at a time: the row's pool goes back to its head's end */
		pool.used = before;
	}
out:
	free(pool.p);
}

static void
do_error(struct ak_buf *b)
{
	enum ak_err e;
	char *detail = (char *)1;

	if (ak_proto_get_error(b, &e, &detail) != AK_OK) {
		FUZZ_CHECK(detail == NULL, "failed error decode");
		return;
	}
	FUZZ_CHECK(e != AK_OK, "an ERROR never reads as success");
	FUZZ_CHECK(ak_strerror(e) != NULL, "strerror");
	FUZZ_CHECK(detail == NULL || (detail[0] != '\0' && strlen(detail) <= 1024), "detail");
	(void)ak_err_exit_code(e);
	free(detail);
}

static void
do_log(struct ak_buf *b)
{
	struct ak_use_entry e;
	uint32_t n, i;

	if (ak_buf_get_u32(b, &n) != AK_OK)
		return;
	for (i = 0; i < n; i++) {
		if (ak_proto_get_use_entry(b, &e) != AK_OK) {
			FUZZ_CHECK(e.profile == NULL && e.exe == NULL, "failed use entry decode zeroes");
			return;
		}
		FUZZ_CHECK(e.profile[0] == '\0' || ak_name_check(e.profile) == AK_OK, "use entry name");
		FUZZ_CHECK(e.err <= AK_ERR_LAST && strlen(e.exe) <= AK_USE_EXE_MAX, "use entry fields");
		ak_use_entry_clear(&e);
	}
}

static void
do_log_req(struct ak_buf *b)
{
	char *profile = (char *)1;
	int64_t since = 1;

	if (ak_proto_get_log_req(b, &profile, &since) != AK_OK) {
		FUZZ_CHECK(profile == NULL && since == 0, "failed LOG request decode zeroes");
		return;
	}
	FUZZ_CHECK(since >= 0 && (profile == NULL || ak_name_check(profile) == AK_OK), "LOG request");
	free(profile);
}

static void
do_request_name(struct ak_buf *b)
{
	char *name = NULL;

	if (ak_buf_get_cstring(b, &name, AK_TEXT_MAX, 1) != AK_OK) {
		FUZZ_CHECK(name == NULL, "failed cstring");
		return;
	}
	FUZZ_CHECK(strlen(name) <= AK_TEXT_MAX, "cstring cap");
	(void)ak_name_check(name);
	ak_smem_free(name);
}

static void
do_unlock(struct ak_buf *b)
{
	const uint8_t *p;
	size_t len;
	uint32_t lt;

	if (ak_buf_get_string_direct(b, &p, &len, AK_KEY_BYTES) != AK_OK)
		return;
	FUZZ_CHECK(len <= AK_KEY_BYTES, "key cap");
	(void)ak_buf_get_u32(b, &lt);
}

/* EDIT: a decoded edit re-encodes to the bytes it came from, and every action obeys ak_edit_add. */
static void
do_edit(struct ak_buf *b, const uint8_t *orig, size_t olen)
{
	struct ak_edit *e = (struct ak_edit *)1;
	struct ak_buf *enc;
	size_t used;

	if (ak_proto_get_edit(b, &e) != AK_OK) {
		FUZZ_CHECK(e == NULL, "failed edit decode leaves *out NULL");
		return;
	}
	FUZZ_CHECK(e->n >= 1 && e->n <= AK_EDIT_MAX, "edit count");
	FUZZ_CHECK(ak_name_check(e->profile) == AK_OK, "edit profile name");
	used = olen - ak_buf_len(b);
	if ((enc = ak_buf_new_secure(olen + 16)) != NULL) {
		FUZZ_CHECK(ak_proto_put_edit(enc, e) == AK_OK, "edit re-encodes");
		check_reencode(orig, used, enc, "edit canonical");
		ak_buf_free(enc);
	}
	ak_edit_free(e);
}

static void
decode(uint8_t type, struct ak_buf *b, const uint8_t *orig, size_t olen)
{
	uint8_t flags;

	switch (type) {
	case AK_MSG_PROFILE_REPLY:
		do_profile(b, orig, olen);
		return;
	case AK_MSG_STATUS_REPLY:
		do_status(b, orig, olen);
		return;
	case AK_MSG_LIST_REPLY:
		do_list(b);
		return;
	case AK_MSG_LIST_PACKED_REPLY:
		do_list_packed(b);
		return;
	case AK_MSG_ERROR:
		do_error(b);
		return;
	case AK_MSG_LOG_REPLY:
		do_log(b);
		return;
	case AK_MSG_LOG:
		do_log_req(b);
		return;
	case AK_MSG_LOG_USAGE: {
		struct ak_use_entry ue;

		/* A decoded report is well formed: a valid name, a printable client. */
		if (ak_proto_get_usage_report(b, &ue) == AK_OK) {
			FUZZ_CHECK(ak_name_check(ue.profile) == AK_OK, "LOG_USAGE name");
			FUZZ_CHECK(strlen(ue.client) <= AK_USE_CLIENT_MAX, "LOG_USAGE client");
		}
		ak_use_entry_clear(&ue);
		return;
	}
	case AK_MSG_ADD:
		if (ak_buf_get_u8(b, &flags) == AK_OK)
			do_profile(b, orig + 1, olen - 1);
		return;
	case AK_MSG_GET:
	case AK_MSG_GET_PREVIOUS:
	case AK_MSG_REMOVE:
		do_request_name(b);
		return;
	case AK_MSG_UNLOCK:
		do_unlock(b);
		return;
	case AK_MSG_EDIT:
		do_edit(b, orig, olen);
		return;
	case AK_MSG_OK:
	case AK_MSG_STATUS:
	case AK_MSG_LOCK:
	case AK_MSG_LIST:
	case AK_MSG_LIST_PACKED:
	case AK_MSG_SHUTDOWN:
		return;
	default:
		decode((uint8_t[]){ AK_MSG_PROFILE_REPLY, AK_MSG_STATUS_REPLY, AK_MSG_LIST_REPLY,
		    AK_MSG_ERROR, AK_MSG_ADD, AK_MSG_EDIT, AK_MSG_UNLOCK, AK_MSG_OK }[type & 7], b, orig,
		    olen);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ak_buf *in, *msg;
	size_t base = arena_in_use();

	if (ak_smem_init() != 0)
		abort();
	in = ak_buf_new(size + 1);
	FUZZ_CHECK(in != NULL && ak_buf_put(in, data, size) == AK_OK, "input");
	for (;;) {
		size_t flen = 0, need = 0, len = ak_buf_len(in);
		uint8_t *copy;
		uint8_t type;
		enum ak_err r;

		r = ak_proto_frame(in, AK_PROTO_MAX_REPLY, &flen, &need);
		if (r == AK_ERR_TRUNCATED) {
			FUZZ_CHECK(need > len, "TRUNCATED asks for more than there is");
			break;
		}
		if (r != AK_OK) {
			FUZZ_CHECK(r == AK_ERR_BAD_MESSAGE || r == AK_ERR_TOO_LARGE, "framing error code");
			FUZZ_CHECK(len >= 4, "framing decided with a length field");
			break;
		}
		FUZZ_CHECK(flen >= 5 && flen <= len && flen - 4 <= AK_PROTO_MAX_REPLY, "frame inside input");
		type = ak_buf_ptr(in)[4];
		/* The decoders wipe what they consume: keep a copy for the re-encoding checks. */
		copy = malloc(flen - 5 + 1);
		FUZZ_CHECK(copy != NULL, "alloc");
		memcpy(copy, ak_buf_ptr(in) + 5, flen - 5);
		msg = ak_buf_new_secure(flen);
		FUZZ_CHECK(msg != NULL && ak_buf_put(msg, copy, flen - 5) == AK_OK, "payload");
		FUZZ_CHECK(ak_buf_consume(in, flen) == AK_OK, "consume");
		decode(type, msg, copy, flen - 5);
		ak_buf_free(msg);
		free(copy);
	}
	ak_buf_free(in);
	FUZZ_CHECK(arena_in_use() == base, "secure arena back to where it was (a decoder leaked)");
	return 0;
}
