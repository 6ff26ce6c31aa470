/* render.c - make every terminal-driving byte of a string visible (see ak_render.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ak_render.h"
#include "ak_util.h"

/* The next piece of s: either a run to copy as it is (*esc = "") or one escape written into esc.
 * Returns how many input bytes the piece covers (0 at the end). */
static size_t
piece(const uint8_t *s, char esc[12])
{
	uint32_t cp;
	size_t n;

	esc[0] = '\0';
	if (*s == 0)
		return 0;
	if (*s < 0x20 || *s == 0x7f) {
		if (*s == '\t')
			memcpy(esc, "\\t", 3);
		else if (*s == '\n')
			memcpy(esc, "\\n", 3);
		else if (*s == '\r')
			memcpy(esc, "\\r", 3);
		else
			snprintf(esc, 12, "\\x%02x", *s);
		return 1;
	}
	if (*s < 0x80)
		return 1;
	if ((n = ak_utf8_next(s, strnlen((const char *)s, 4), &cp)) == 0)
		goto bad;
	if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069))
		snprintf(esc, 12, "\\u%04x", (unsigned)cp);
	return n;
bad:
	snprintf(esc, 12, "\\x%02x", *s);
	return 1;
}

size_t
ak_render(const char *in, char *out, size_t outlen)
{
	const uint8_t *s = (const uint8_t *)(in != NULL ? in : "");
	size_t need = 0, used = 0, k, len;
	char esc[12];
	int full = 0;

	while ((k = piece(s, esc)) > 0) {
		len = esc[0] != '\0' ? strlen(esc) : k;
		if (!full && outlen > 0 && used + len < outlen) {
			memcpy(out + used, esc[0] != '\0' ? esc : (const char *)s, len);
			used += len;
		} else {
			full = 1; /* nothing after a piece that did not fit: never a gap in the middle */
		}
		need += len;
		s += k;
	}
	if (outlen > 0)
		out[used] = '\0';
	return need;
}

int
ak_render_fputs(const char *in, FILE *f)
{
	const uint8_t *s = (const uint8_t *)(in != NULL ? in : "");
	size_t k;
	char esc[12];

	while ((k = piece(s, esc)) > 0) {
		if (esc[0] != '\0') {
			if (fputs(esc, f) == EOF)
				return EOF;
		} else if (fwrite(s, 1, k, f) != k) {
			return EOF;
		}
		s += k;
	}
	return 0;
}

size_t
ak_render_width(const char *in)
{
	const uint8_t *s = (const uint8_t *)(in != NULL ? in : "");
	size_t k, w = 0;
	char esc[12];

	while ((k = piece(s, esc)) > 0) {
		w += esc[0] != '\0' ? strlen(esc) : 1;
		s += k;
	}
	return w;
}
