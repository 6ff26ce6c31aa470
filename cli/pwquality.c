/* pwquality.c - score a new passphrase with libpwquality, loaded only when one is scored.
 *
 * libpwquality pulls in libcrack2 and its dictionaries; akctl's get/env/use/exec must start without
 * them, so the library is opened with dlopen() by init and passwd alone (the header gives the types,
 * nothing is linked). The library sees the passphrase (cracklib copies it while checking, in memory
 * we cannot wipe); akctl exits right after init or passwd, so those copies die with the process.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pwquality.h>
#include <sodium.h>

#include "cli.h"

#define PWQ_SONAME "libpwquality.so.1"

/* cracklib's dictionary is another package (Debian: cracklib-runtime, only recommended by libcrack2).
 * Without it every check fails with "error loading dictionary": check the rest, and say so. */
static void
dict_or_skip(void *lib, pwquality_settings_t *pwq)
{
	__typeof__(&pwquality_get_str_value) f_get;
	__typeof__(&pwquality_set_int_value) f_set;
	const char *(*f_dflt)(void);
	const char *dict = NULL;
	char path[4096];

	*(void **)&f_get = dlsym(lib, "pwquality_get_str_value");
	*(void **)&f_set = dlsym(lib, "pwquality_set_int_value");
	*(void **)&f_dflt = dlsym(lib, "GetDefaultCracklibDict"); /* libcrack2, loaded with the library */
	if (f_get == NULL || f_set == NULL)
		return;
	if (f_get(pwq, PWQ_SETTING_DICT_PATH, &dict) != 0 || dict == NULL || dict[0] == '\0')
		dict = f_dflt != NULL ? f_dflt() : NULL;
	if (dict != NULL && (size_t)snprintf(path, sizeof(path), "%s.pwd", dict) < sizeof(path) &&
	    access(path, R_OK) == 0)
		return;
	(void)f_set(pwq, PWQ_SETTING_DICT_CHECK, 0);
	cli_note("warning: no cracklib dictionary (Debian: cracklib-runtime): the passphrase is checked "
	    "without it");
}

enum cli_pwq
cli_pwq_score(const char *pass, char *reason, size_t reasonlen)
{
	__typeof__(&pwquality_default_settings) f_default;
	__typeof__(&pwquality_read_config) f_config;
	__typeof__(&pwquality_check) f_check;
	__typeof__(&pwquality_strerror) f_strerror;
	__typeof__(&pwquality_free_settings) f_free;
	pwquality_settings_t *pwq = NULL;
	void *lib, *aux = NULL;
	const char *msg;
	char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
	int score;
	enum cli_pwq res;

	reason[0] = '\0';
	if ((lib = dlopen(PWQ_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(reason, reasonlen, "%s could not be loaded", PWQ_SONAME);
		return CLI_PWQ_UNAVAILABLE;
	}
	/* POSIX: a function pointer read through dlsym's void * (the cast is the documented idiom). */
	*(void **)&f_default = dlsym(lib, "pwquality_default_settings");
	*(void **)&f_config = dlsym(lib, "pwquality_read_config");
	*(void **)&f_check = dlsym(lib, "pwquality_check");
	*(void **)&f_strerror = dlsym(lib, "pwquality_strerror");
	*(void **)&f_free = dlsym(lib, "pwquality_free_settings");
	if (f_default == NULL || f_config == NULL || f_check == NULL || f_strerror == NULL ||
	    f_free == NULL || (pwq = f_default()) == NULL) {
		snprintf(reason, reasonlen, "%s is not usable", PWQ_SONAME);
		res = CLI_PWQ_UNAVAILABLE;
		goto out;
	}
	/* The system's policy (/etc/security/pwquality.conf), as passwd(1) would apply it; a broken
	 * file leaves the defaults, which is still a check. */
	if (f_config(pwq, NULL, &aux) != 0)
		(void)f_strerror(buf, sizeof(buf), PWQ_ERROR_CFGFILE_MALFORMED, aux);
	aux = NULL;
	dict_or_skip(lib, pwq);
	score = f_check(pwq, pass, NULL, NULL, &aux);
	if (score >= 0) {
		res = CLI_PWQ_OK;
		goto out;
	}
	msg = f_strerror(buf, sizeof(buf), score, aux);
	/* The library's own words (localised); every printer here renders them for a terminal. */
	snprintf(reason, reasonlen, "%s", msg != NULL ? msg : "rejected");
	res = score == PWQ_ERROR_MEM_ALLOC ? CLI_PWQ_UNAVAILABLE : CLI_PWQ_WEAK;
out:
	if (pwq != NULL)
		f_free(pwq);
	/* Some reasons quote the passphrase's words (a dictionary word it is based on): wipe the copy. */
	sodium_memzero(buf, sizeof(buf));
	dlclose(lib);
	return res;
}
