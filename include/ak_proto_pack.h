/* ak_proto_pack.h - the packed LIST reply (LIST_PACKED -> LIST_PACKED_REPLY, docs/protocol.md 2.6).
 *
 * The same rows as LIST_REPLY in about a fifth of the bytes: integers as varints, the text that repeats
 * from row to row (providers, variable names, descriptions, the redacted form's vendor prefix) sent
 * once in a table that rows name by index, and the rarely set fields behind one flag. A LIST reply is
 * the agent's largest frequent answer: its bytes are what the kernel copies twice per request.
 *
 * No secret travels (the redacted form only, as in LIST). The encoder's output names profiles: give
 * it a secure buffer. The decoder is written for hostile input like every decoder in proto.c, and
 * works on a byte range that may end early (AK_ERR_TRUNCATED, nothing consumed), so a client can
 * decode rows as they arrive through a buffer of bounded size.
 */
#ifndef AK_PROTO_PACK_H
#define AK_PROTO_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"
#include "ak_proto.h"
#include "ak_store.h"

/* The whole LIST_PACKED_REPLY frame for p[0..n) into b (reset first; finished: length patched).
 * AK_ERR_NOMEM, AK_ERR_TOO_LARGE, AK_ERR_INVALID (a field the format cannot carry: a negative policy,
 * a time beyond 2^53). */
enum ak_err ak_proto_put_list_packed(struct ak_buf *b, struct ak_profile *const *p, size_t n);

/* Decoder state: the row count and the text table, whose strings live in the caller's pool (the
 * rows point at them: keep the pool until the last row is used; it holds redacted prefixes, so its
 * owner wipes it). */
struct ak_list_unpack {
	uint32_t n;          /* rows announced */
	uint32_t ntext;
	char **text;         /* ntext strings, carved from the pool */
	uint8_t *text_var;   /* per string: 0 not checked yet, 1 a valid variable name, 2 not one */
	uint32_t done;       /* rows decoded so far */
};

/* Pool bytes the head of a payload of wire bytes needs at most, and a row of wire bytes. */
size_t ak_proto_unpack_head_pool(size_t wire);
size_t ak_proto_unpack_row_pool(size_t wire);
#define AK_PROTO_PACKED_ROW_MAX 16384 /* a row's wire bytes never exceed this (caps of its fields) */

/* The payload's head (after the type byte): row count, text table. p/len: the bytes at hand; *used
 * what the head took. AK_ERR_TRUNCATED when more bytes are needed (nothing taken from the pool that
 * matters: the caller may reset its used count), else AK_ERR_BAD_MESSAGE, AK_ERR_TOO_LARGE, AK_ERR_NOMEM
 * (pool too small). */
enum ak_err ak_proto_unpack_head(struct ak_list_unpack *u, const uint8_t *p, size_t len,
    struct ak_proto_pool *pool, size_t *used);
/* The next row into *e (overwritten; its strings in the pool or the text table: never pass it to
 * ak_list_entry_clear). AK_ERR_TRUNCATED when the row is not all there (the pool's used count is put
 * back), and the errors of the head. */
enum ak_err ak_proto_unpack_row(struct ak_list_unpack *u, const uint8_t *p, size_t len,
    struct ak_list_entry *e, struct ak_proto_pool *pool, size_t *used);

#endif
