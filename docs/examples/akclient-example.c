/* akclient-example.c - take a key from akagent into a buffer this program owns.
 *
 * Build against the installed library:
 *   cc -o akclient-example akclient-example.c $(pkg-config --cflags --libs akclient)
 * Run:  ./akclient-example PROFILE [VAR]
 *
 * It prints the agent's state, the profiles, and the length and first characters of the value: a real
 * program would hand the key to its HTTP client instead, then wipe it.
 */
#include <stdio.h>
#include <string.h>

#include <ak/client.h>

int
main(int argc, char **argv)
{
	struct akclient *c = NULL;
	struct akclient_status *st = NULL;
	struct akclient_list *l = NULL;
	char key[4096];
	size_t len = 0, i;
	int r, rc = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s PROFILE [VAR]\n", argv[0]);
		return 2;
	}
	/* NULL: $AKAGENT_SOCK, else the default socket. */
	if ((r = akclient_open(NULL, &c)) != AKCLIENT_OK) {
		fprintf(stderr, "akclient_open: %s\n", akclient_strerror(r));
		return 1;
	}
	if ((r = akclient_status(c, &st)) != AKCLIENT_OK) {
		fprintf(stderr, "akclient_status: %s (%s)\n", akclient_strerror(r), akclient_detail(c));
		goto out;
	}
	printf("agent %ld: %s, %u profiles\n", akclient_status_pid(st),
	    akclient_status_unlocked(st) ? "unlocked" : "locked", akclient_status_profiles(st));
	if ((r = akclient_list(c, &l)) != AKCLIENT_OK) {
		fprintf(stderr, "akclient_list: %s (%s)\n", akclient_strerror(r), akclient_detail(c));
		goto out;
	}
	for (i = 0; i < akclient_list_count(l); i++)
		printf("profile %s (%s, %s)\n", akclient_list_name(l, i), akclient_list_provider(l, i),
		    akclient_list_secret_var(l, i));
	r = akclient_get(c, argv[1], argc > 2 ? argv[2] : NULL, key, sizeof(key), &len);
	if (r != AKCLIENT_OK) {
		fprintf(stderr, "akclient_get: %s (%s)\n", akclient_strerror(r), akclient_detail(c));
		rc = r == AKCLIENT_ERR_NO_PROFILE ? 5 : 1;
		goto out;
	}
	printf("%s: %zu bytes, starts %.7s\n", argv[1], len, key);
	rc = 0;
out:
	/* The key was ours: wipe it (explicit_bzero is not optimised away). */
	explicit_bzero(key, sizeof(key));
	akclient_list_free(l);
	akclient_status_free(st);
	akclient_close(c);
	return rc;
}
