/* ak_buf.h - a small bounds-checked byte buffer for every wire and file encoding (after OpenSSH's sshbuf).
 *
 * A buffer has a hard size cap fixed at creation; every put checks it, every get checks what is left.
 * Integers are big-endian. A "string" is a uint32 length followed by that many bytes.
 * Buffers created with ak_buf_new_secure() live in the secure arena (ak_smem: mlocked, guarded) and are
 * wiped on free; plain buffers are wiped on free too (cheap, and safe when a caller forgets).
 */
#ifndef AK_BUF_H
#define AK_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

struct ak_buf;

/* A new empty buffer that may grow up to max_size bytes. NULL on allocation failure. */
struct ak_buf *ak_buf_new(size_t max_size);
/* Same, with storage in the secure arena (use for anything that may hold a secret). */
struct ak_buf *ak_buf_new_secure(size_t max_size);
/* Wipes the storage and frees it. NULL is a no-op. */
void ak_buf_free(struct ak_buf *b);
/* Wipes and empties the buffer, keeping its cap. */
void ak_buf_reset(struct ak_buf *b);

/* Bytes not yet consumed, and a pointer to them (valid until the next put/consume/free). */
size_t ak_buf_len(const struct ak_buf *b);
const uint8_t *ak_buf_ptr(const struct ak_buf *b);
/* The same bytes, writable in place (e.g. a length field patched once the payload is known). */
uint8_t *ak_buf_data(struct ak_buf *b);
size_t ak_buf_max(const struct ak_buf *b);

/* Reserve len writable bytes at the end (e.g. for read()); returns AK_ERR_TOO_LARGE past the cap.
 * *out points at them; they count as data immediately: call ak_buf_unreserve() for what was not filled. */
enum ak_err ak_buf_reserve(struct ak_buf *b, size_t len, uint8_t **out);
/* Bytes that can be reserved without growing the storage (after a reset: all of it): a reader asks
 * for at least this much, so a reply that fits what the buffer held before is taken in one read. */
size_t ak_buf_spare(const struct ak_buf *b);
/* Drop len bytes from the end (the unfilled part of a reservation). */
void ak_buf_unreserve(struct ak_buf *b, size_t len);

/* Writers: AK_ERR_TOO_LARGE when the cap would be exceeded (buffer unchanged), AK_ERR_NOMEM. */
enum ak_err ak_buf_put(struct ak_buf *b, const void *data, size_t len);
enum ak_err ak_buf_put_u8(struct ak_buf *b, uint8_t v);
enum ak_err ak_buf_put_u32(struct ak_buf *b, uint32_t v);
enum ak_err ak_buf_put_u64(struct ak_buf *b, uint64_t v);
/* uint32 length + bytes. */
enum ak_err ak_buf_put_string(struct ak_buf *b, const void *data, size_t len);
/* Same for a NUL-terminated string (NULL is sent as the empty string). */
enum ak_err ak_buf_put_cstring(struct ak_buf *b, const char *s);

/* Readers consume from the front: AK_ERR_TRUNCATED when not enough data is left (nothing consumed). */
enum ak_err ak_buf_get(struct ak_buf *b, void *out, size_t len);
enum ak_err ak_buf_get_u8(struct ak_buf *b, uint8_t *v);
enum ak_err ak_buf_get_u32(struct ak_buf *b, uint32_t *v);
enum ak_err ak_buf_get_u64(struct ak_buf *b, uint64_t *v);
/* Discard len bytes from the front (wiping them). */
enum ak_err ak_buf_consume(struct ak_buf *b, size_t len);
/* A string field, returned as a pointer into the buffer (not NUL-terminated; valid until the buffer
 * changes). AK_ERR_TOO_LARGE if its length exceeds maxlen. */
enum ak_err ak_buf_get_string_direct(struct ak_buf *b, const uint8_t **p, size_t *len, size_t maxlen);
/* A string field copied into a new NUL-terminated allocation: from the secure arena when secure != 0
 * (free with ak_smem_free), else malloc (free with free()). AK_ERR_BAD_MESSAGE if it contains a NUL
 * byte, AK_ERR_TOO_LARGE if longer than maxlen. The caller owns and wipes the result. */
enum ak_err ak_buf_get_cstring(struct ak_buf *b, char **out, size_t maxlen, int secure);

/* Peek a big-endian uint32 at the front without consuming. */
enum ak_err ak_buf_peek_u32(const struct ak_buf *b, uint32_t *v);

#endif
