/* shell.h - akctl-shell, the interactive console (`akctl shell`, or akctl alone on a terminal).
 *
 * A separate program so that akctl itself never loads libreadline: env/get/use/exec start with libc,
 * libsodium and cJSON only. Each line runs as `akctl ARGS` in a child, so every command behaves, reads
 * secrets (echo off, akctl's own reader) and exits exactly as on the command line. The console never
 * holds a secret: it asks the agent only for STATUS and LIST (names, redacted keys).
 */
#ifndef AK_SHELL_CONSOLE_H
#define AK_SHELL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "ak_proto.h"

/* secret_line.c ---------------------------------------------------------------------------------- */
/* 1 when a line must never be recorded in history (nor run): one of its words (or the VALUE of a
 * NAME=VALUE word) has a known key prefix, looks like a long random token, or matches the redacted
 * form (prefix...last characters) of a stored secret in e[0..n). */
int shell_line_has_secret(const char *line, const struct ak_list_entry *e, uint32_t n);

#endif
