/* ak_varclass.h - which environment variables may come from a file someone else wrote.
 *
 * One table (lib/varclass.c) of variable names that make a shell or an interpreter run code, or that
 * steer where credentials go. `akctl import` stores none of them unless named with --allow-var (a
 * cloned repository's .env must not plant PROMPT_COMMAND, LD_PRELOAD or ANTHROPIC_BASE_URL), and
 * `akctl exec --env-file` never takes akagent's own variables from a file. Names compare without
 * regard to case (http_proxy and HTTP_PROXY, zsh's path and PATH). docs/akctl.1.scd lists the table.
 */
#ifndef AK_VARCLASS_H
#define AK_VARCLASS_H

enum ak_varclass {
	AK_VAR_PLAIN = 0,  /* nothing known against it */
	AK_VAR_SHELL,      /* shell start-up and parsing: PROMPT_COMMAND, BASH_ENV, PS1, IFS, PATH... */
	AK_VAR_LOADER,     /* loads or runs code in a program: LD_PRELOAD, NODE_OPTIONS, PYTHONPATH... */
	AK_VAR_ENDPOINT,   /* where requests and credentials go: *_BASE_URL, *_PROXY, CA bundles... */
	AK_VAR_AKAGENT,    /* akagent's own: AKCTL_*, AKAGENT_* (keystore, socket, askpass, checks) */
};

/* The class of name (AK_VAR_PLAIN if none or NULL). */
enum ak_varclass ak_varclass_of(const char *name);
/* A few words for a class, for messages: "shell start-up", "code loader", "credential endpoint",
 * "akagent's own"; "" for AK_VAR_PLAIN. */
const char *ak_varclass_name(enum ak_varclass c);

/* Secrets among an imported file's variables ------------------------------------------------------- */
/* 1 when value itself is secret: it has the shape of a provider key (ak_scan_patterns: sk-ant-api03-,
 * sk-proj-, ghp_, AKIA...) or is a URL carrying a password (scheme://user:password@host...). */
int ak_varclass_value_secret(const char *value);
/* 1 when a variable should be stored as a secret: a provider's key variable (ANTHROPIC_API_KEY...), a
 * name ending in _KEY _TOKEN _SECRET _PASSWORD _PASS _PWD _CREDENTIALS or _CREDENTIAL (ignoring case;
 * or one of those words alone, TOKEN), or a value ak_varclass_value_secret finds secret (value may be
 * NULL). */
int ak_varclass_is_secret(const char *name, const char *value);

#endif
