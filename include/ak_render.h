/* ak_render.h - text for a person's terminal: every byte that could drive the terminal made visible.
 *
 * Human-readable output (show, list, status, test, import, every error and note) passes stored and
 * received text through here, so a value holding OSC 52 (clipboard write), a screen clear, a carriage
 * return that paints a fake line, or an 8-bit CSI prints as inert text. Raw bytes reach the terminal
 * only from the commands whose job is the value itself (get, env, use, exec).
 *
 * Rendering (every other byte is copied as it is, backslash included):
 *   C0 controls and DEL      \t \n \r, others \xNN            (ESC -> \x1b)
 *   bytes not in valid UTF-8 \xNN                             (a lone 0x9b: \x9b)
 *   U+0080..U+009F           \u00NN                           (C1 controls, encoded in UTF-8)
 *   U+2028 U+2029, bidi controls U+202A..U+202E U+2066..U+2069, U+200E U+200F  \uNNNN
 *                                                             (line breaks and reordering that fake text)
 * Nothing here keeps a copy; the caller owns both buffers.
 */
#ifndef AK_RENDER_H
#define AK_RENDER_H

#include <stddef.h>
#include <stdio.h>

/* Render in (NUL-terminated; NULL renders as "") into out: at most outlen - 1 bytes and a NUL, never
 * cutting an escape or a UTF-8 sequence in half. Returns the length the whole rendering needs (like
 * snprintf), so a return >= outlen means it was truncated. outlen 0 writes nothing. */
size_t ak_render(const char *in, char *out, size_t outlen);
/* Render in onto f. Returns 0, or EOF on a write error. */
int ak_render_fputs(const char *in, FILE *f);
/* Columns the rendered text takes (one per code point; escapes count their characters). */
size_t ak_render_width(const char *in);

#endif
