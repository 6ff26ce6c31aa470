/* add_guide.c - `akctl add` alone at a terminal: a few questions instead of options.
 *
 * It asks the profile name, the provider (the known ones offered), the secret's variable (the
 * provider's by default) and plain variables (NAME=VALUE lines until an empty one), then runs add with
 * the answers as its options, so the secret is read by add's own no-echo reader and the live check is
 * add's. None of the questions is about the secret: answers are read from the terminal in canonical
 * mode, one line per read(2), so nothing typed ahead is buffered here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_provider.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"

#define GUIDE_LINE 1024
#define GUIDE_TRIES 3

/* Print prompt on stderr and read one line from the terminal into buf (newline removed).
 * 0, or -1 at end of input or on an error. */
static int
ask(const char *prompt, char *buf, size_t buflen)
{
	ssize_t n;

	fputs(prompt, stderr);
	fflush(stderr);
	do
		n = read(STDIN_FILENO, buf, buflen - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		fputc('\n', stderr);
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* Ask until check(answer) is 0 (GUIDE_TRIES times); an empty answer takes def when def is not NULL.
 * check prints why an answer is refused. 0 with the answer in buf, or -1. */
static int
ask_valid(const char *prompt, const char *def, int (*check)(const char *), char *buf, size_t buflen)
{
	int i;

	for (i = 0; i < GUIDE_TRIES; i++) {
		if (ask(prompt, buf, buflen) != 0)
			return -1;
		if (buf[0] == '\0' && def != NULL)
			snprintf(buf, buflen, "%s", def);
		if (check(buf) == 0)
			return 0;
	}
	return -1;
}

static int
check_name(const char *s)
{
	if (ak_name_check(s) == AK_OK)
		return 0;
	fprintf(stderr, "  a profile name: letters, digits, '.', '_', '-' (at most %d)\n", AK_NAME_MAX);
	return -1;
}

static int
check_provider(const char *s)
{
	if (ak_provider_find(s) != NULL)
		return 0;
	fprintf(stderr, "  not a known provider\n");
	return -1;
}

static int
check_var(const char *s)
{
	if (ak_varname_check(s) == AK_OK)
		return 0;
	fprintf(stderr, "  a variable name: letters, digits and '_', not starting with a digit\n");
	return -1;
}

enum ak_err
cli_add_guided(struct cli *c)
{
	const struct ak_provider *pv, *all;
	char name[GUIDE_LINE], prov[GUIDE_LINE], var[GUIDE_LINE], line[GUIDE_LINE], prompt[512];
	char *sets[AK_VARS_MAX], *eq;
	const char *argv[8 + 2 * AK_VARS_MAX];
	size_t n, i, nsets = 0;
	int argc = 0, w;
	enum ak_err rc = AK_ERR_TRUNCATED; /* cancelled: the input ended */

	fprintf(stderr, "New profile (Ctrl-D to cancel; the secret is asked last, without echo).\n");
	if (ask_valid("Profile name: ", NULL, check_name, name, sizeof(name)) != 0)
		goto cancel;
	all = ak_provider_all(&n);
	w = snprintf(prompt, sizeof(prompt), "Provider (");
	for (i = 0; i < n && w > 0 && (size_t)w < sizeof(prompt); i++)
		w += snprintf(prompt + w, sizeof(prompt) - (size_t)w, "%s%s", i ? ", " : "", all[i].name);
	if (w > 0 && (size_t)w < sizeof(prompt))
		snprintf(prompt + w, sizeof(prompt) - (size_t)w, ") [anthropic]: ");
	if (ask_valid(prompt, "anthropic", check_provider, prov, sizeof(prov)) != 0)
		goto cancel;
	pv = ak_provider_find(prov);
	if (pv->secret_var[0] != '\0')
		snprintf(prompt, sizeof(prompt), "Variable for the secret [%s]: ", pv->secret_var);
	else
		snprintf(prompt, sizeof(prompt), "Variable for the secret: ");
	if (ask_valid(prompt, pv->secret_var[0] != '\0' ? pv->secret_var : NULL, check_var, var, sizeof(var)) != 0)
		goto cancel;
	for (;;) {
		if (ask("Plain variable NAME=VALUE (empty line: done): ", line, sizeof(line)) != 0)
			goto cancel;
		if (line[0] == '\0')
			break;
		if ((eq = strchr(line, '=')) == NULL) {
			fprintf(stderr, "  NAME=VALUE, or an empty line to finish\n");
			continue;
		}
		*eq = '\0';
		if (check_var(line) != 0)
			continue;
		if (strcmp(line, var) == 0) {
			fprintf(stderr, "  %s is the secret's variable\n", line);
			continue;
		}
		if (ak_varclass_of(line) != AK_VAR_PLAIN && ak_varclass_of(line) != AK_VAR_ENDPOINT) {
			fprintf(stderr, "  %s is not a plain variable (%s)\n", line,
			    ak_varclass_name(ak_varclass_of(line)));
			continue;
		}
		*eq = '=';
		if (nsets == AK_VARS_MAX) {
			fprintf(stderr, "  at most %d variables\n", AK_VARS_MAX);
			break;
		}
		if ((sets[nsets] = strdup(line)) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "add");
			goto out;
		}
		nsets++;
	}
	argv[argc++] = "add";
	argv[argc++] = name;
	argv[argc++] = "--provider";
	argv[argc++] = prov;
	argv[argc++] = "--var";
	argv[argc++] = var;
	for (i = 0; i < nsets; i++) {
		argv[argc++] = "--set";
		argv[argc++] = sets[i];
	}
	argv[argc] = NULL;
	optind = 0; /* getopt again, for add's own options */
	rc = cmd_add(c, argc, (char **)argv);
	goto out;
cancel:
	cli_note("add: cancelled");
out:
	for (i = 0; i < nsets; i++)
		free(sets[i]);
	return rc;
}
