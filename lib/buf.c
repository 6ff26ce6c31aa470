/* buf.c - bounds-checked byte buffer (after OpenSSH's sshbuf).
 *
 * Live data is data[off..end). Storage grows geometrically up to the cap; growing allocates a new block,
 * copies, and wipes + frees the old one (never realloc: it would leave an unwiped copy behind).
 * Consumed bytes are wiped, except those handed out by get_string_direct (the caller still reads them):
 * they are wiped when the buffer compacts, resets or is freed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_buf.h"
#include "ak_smem.h"

#define BUF_MIN_ALLOC 256

struct ak_buf {
	uint8_t *data;
	size_t size;            /* allocated bytes */
	size_t off;             /* read offset */
	size_t end;             /* write offset */
	size_t max;             /* cap on live bytes */
	int secure;
};

/* What an unallocated buffer points at: zero bytes are ever read or written through it. Not const, so
 * the writable accessors need no cast. */
static uint8_t empty[1];

static struct ak_buf *
buf_new(size_t max_size, int secure)
{
	struct ak_buf *b;

	if (secure && ak_smem_init() != 0)
		return NULL;
	/* The struct holds no secret, only pointers: plain heap is fine. */
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->max = max_size;
	b->secure = secure;
	return b;
}

struct ak_buf *
ak_buf_new(size_t max_size)
{
	return buf_new(max_size, 0);
}

struct ak_buf *
ak_buf_new_secure(size_t max_size)
{
	return buf_new(max_size, 1);
}

static void
storage_free(struct ak_buf *b, uint8_t *p, size_t size)
{
	if (p == NULL)
		return;
	if (b->secure) {
		ak_smem_free(p); /* wipes */
	} else {
		sodium_memzero(p, size);
		free(p);
	}
}

void
ak_buf_free(struct ak_buf *b)
{
	if (b == NULL)
		return;
	storage_free(b, b->data, b->size);
	sodium_memzero(b, sizeof(*b));
	free(b);
}

/* Every byte past end is always zero (new storage is zeroed, and whatever lowers end wipes what it
 * gives up), so wiping up to end wipes everything: a reset costs what the buffer last held, not its
 * capacity (a connection's output buffer keeps the room of its largest reply). */
void
ak_buf_reset(struct ak_buf *b)
{
	if (b->data != NULL)
		sodium_memzero(b->data, b->end);
	b->off = b->end = 0;
}

size_t
ak_buf_len(const struct ak_buf *b)
{
	return b->end - b->off;
}

const uint8_t *
ak_buf_ptr(const struct ak_buf *b)
{
	return b->data != NULL ? b->data + b->off : empty;
}

uint8_t *
ak_buf_data(struct ak_buf *b)
{
	return b->data != NULL ? b->data + b->off : empty;
}

size_t
ak_buf_max(const struct ak_buf *b)
{
	return b->max;
}

size_t
ak_buf_spare(const struct ak_buf *b)
{
	size_t room = b->size - b->end;

	return room < b->max - (b->end - b->off) ? room : b->max - (b->end - b->off);
}

/* Make room for len more bytes at the end without changing the live data. */
static enum ak_err
ensure(struct ak_buf *b, size_t len)
{
	size_t live = b->end - b->off, need, nsize;
	uint8_t *n;

	if (len > b->max || live > b->max - len)
		return AK_ERR_TOO_LARGE;
	if (len <= b->size - b->end)
		return AK_OK;
	need = live + len;
	if (need <= b->size) {
		/* Compact: slide live data to the front and wipe what it left behind. */
		memmove(b->data, b->data + b->off, live);
		sodium_memzero(b->data + live, b->end - live); /* past end it is zero already */
		b->off = 0;
		b->end = live;
		return AK_OK;
	}
	nsize = b->size < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->size;
	while (nsize < need && nsize <= SIZE_MAX / 2)
		nsize *= 2;
	if (nsize < need)
		nsize = need;
	if (nsize > b->max)
		nsize = b->max; /* need <= max was checked above */
	n = b->secure ? ak_smem_alloc(nsize) : calloc(1, nsize);
	if (n == NULL)
		return AK_ERR_NOMEM;
	if (live > 0)
		memcpy(n, b->data + b->off, live);
	storage_free(b, b->data, b->size);
	b->data = n;
	b->size = nsize;
	b->off = 0;
	b->end = live;
	return AK_OK;
}

enum ak_err
ak_buf_reserve(struct ak_buf *b, size_t len, uint8_t **out)
{
	enum ak_err r;

	if ((r = ensure(b, len)) != AK_OK)
		return r;
	*out = b->data != NULL ? b->data + b->end : empty;
	b->end += len;
	return AK_OK;
}

void
ak_buf_unreserve(struct ak_buf *b, size_t len)
{
	if (len > b->end - b->off)
		len = b->end - b->off;
	if (len > 0)
		sodium_memzero(b->data + b->end - len, len);
	b->end -= len;
}

enum ak_err
ak_buf_put(struct ak_buf *b, const void *data, size_t len)
{
	enum ak_err r;

	if ((r = ensure(b, len)) != AK_OK)
		return r;
	if (len > 0)
		memcpy(b->data + b->end, data, len);
	b->end += len;
	return AK_OK;
}

enum ak_err
ak_buf_put_u8(struct ak_buf *b, uint8_t v)
{
	return ak_buf_put(b, &v, 1);
}

enum ak_err
ak_buf_put_u32(struct ak_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	return ak_buf_put(b, x, sizeof(x));
}

enum ak_err
ak_buf_put_u64(struct ak_buf *b, uint64_t v)
{
	uint8_t x[8];
	int i;

	for (i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	return ak_buf_put(b, x, sizeof(x));
}

enum ak_err
ak_buf_put_string(struct ak_buf *b, const void *data, size_t len)
{
	enum ak_err r;

	if (len > UINT32_MAX || len > SIZE_MAX - 4)
		return AK_ERR_TOO_LARGE;
	/* Check room for the whole field first so a failure leaves the buffer unchanged. */
	if ((r = ensure(b, 4 + len)) != AK_OK)
		return r;
	(void)ak_buf_put_u32(b, (uint32_t)len);
	return ak_buf_put(b, data, len);
}

enum ak_err
ak_buf_put_cstring(struct ak_buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	return ak_buf_put_string(b, s, strlen(s));
}

/* Advance the read offset without wiping (the bytes may still be referenced by the caller). */
static void
advance(struct ak_buf *b, size_t len)
{
	b->off += len;
}

enum ak_err
ak_buf_consume(struct ak_buf *b, size_t len)
{
	if (len > b->end - b->off)
		return AK_ERR_TRUNCATED;
	if (len > 0)
		sodium_memzero(b->data + b->off, len);
	advance(b, len);
	return AK_OK;
}

enum ak_err
ak_buf_get(struct ak_buf *b, void *out, size_t len)
{
	if (len > b->end - b->off)
		return AK_ERR_TRUNCATED;
	if (len > 0)
		memcpy(out, b->data + b->off, len);
	return ak_buf_consume(b, len);
}

enum ak_err
ak_buf_get_u8(struct ak_buf *b, uint8_t *v)
{
	return ak_buf_get(b, v, 1);
}

enum ak_err
ak_buf_peek_u32(const struct ak_buf *b, uint32_t *v)
{
	const uint8_t *p;

	if (b->end - b->off < 4)
		return AK_ERR_TRUNCATED;
	p = b->data + b->off;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
	return AK_OK;
}

enum ak_err
ak_buf_get_u32(struct ak_buf *b, uint32_t *v)
{
	enum ak_err r;

	if ((r = ak_buf_peek_u32(b, v)) != AK_OK)
		return r;
	return ak_buf_consume(b, 4);
}

enum ak_err
ak_buf_get_u64(struct ak_buf *b, uint64_t *v)
{
	uint8_t x[8];
	uint64_t r = 0;
	int i;

	if (ak_buf_get(b, x, sizeof(x)) != AK_OK)
		return AK_ERR_TRUNCATED;
	for (i = 0; i < 8; i++)
		r = r << 8 | x[i];
	*v = r;
	return AK_OK;
}

/* Validate a string field at the front without consuming it. */
static enum ak_err
peek_string(const struct ak_buf *b, const uint8_t **p, size_t *len, size_t maxlen)
{
	uint32_t n;
	enum ak_err r;

	if ((r = ak_buf_peek_u32(b, &n)) != AK_OK)
		return r;
	if (n > maxlen)
		return AK_ERR_TOO_LARGE;
	if (n > b->end - b->off - 4)
		return AK_ERR_TRUNCATED;
	*p = b->data + b->off + 4;
	*len = n;
	return AK_OK;
}

enum ak_err
ak_buf_get_string_direct(struct ak_buf *b, const uint8_t **p, size_t *len, size_t maxlen)
{
	const uint8_t *q;
	size_t n;
	enum ak_err r;

	if ((r = peek_string(b, &q, &n, maxlen)) != AK_OK)
		return r;
	/* Wipe only the length: the caller reads the bytes in place. */
	sodium_memzero(b->data + b->off, 4);
	advance(b, 4 + n);
	*p = q;
	*len = n;
	return AK_OK;
}

enum ak_err
ak_buf_get_cstring(struct ak_buf *b, char **out, size_t maxlen, int secure)
{
	const uint8_t *q;
	size_t n;
	char *s;
	enum ak_err r;

	if ((r = peek_string(b, &q, &n, maxlen)) != AK_OK)
		return r;
	if (n > 0 && memchr(q, '\0', n) != NULL)
		return AK_ERR_BAD_MESSAGE;
	if (n == SIZE_MAX)
		return AK_ERR_TOO_LARGE;
	s = secure ? ak_smem_alloc(n + 1) : malloc(n + 1);
	if (s == NULL)
		return AK_ERR_NOMEM;
	if (n > 0)
		memcpy(s, q, n);
	s[n] = '\0';
	(void)ak_buf_consume(b, 4 + n);
	*out = s;
	return AK_OK;
}
