/* audit.c - the opt-in audit log (akagent --audit-log PATH): one JSON line per usage-log entry.
 *
 * Profile names are secret in this design, so the file never holds one: each line carries a keyed
 * BLAKE2b hash of the name under a subkey of the keystore key (derived at unlock, wiped at lock), which
 * only a holder of the key can map back (AUDIT_MAP, `akctl log --audit`). No secret is ever written.
 * The file is created 0600 and refused when it is a symlink, not ours, or open to group or others. At
 * AGENT_AUDIT_ROTATE_BYTES it becomes PATH.1 (replacing an older one) and a new PATH starts. Lines are
 * plain appends without fsync: the loop must not wait on the disk for a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_smem.h"
#include "ak_store.h"

#define AUDIT_KDF_CTX "akaudit1" /* crypto_kdf context: 8 bytes */
#define AUDIT_KDF_ID 1

static char *path;        /* absolute: the agent changes directory when it daemonises */
static int fd = -1;
static uint64_t log_size;
static uint8_t *hkey;     /* AK_KEY_BYTES in the arena while unlocked */

static int
open_checked(int quiet)
{
	struct stat sb;
	int f;

	f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (f < 0) {
		if (!quiet)
			fprintf(stderr, "akagent: --audit-log %s: %s\n", path,
			    errno == ELOOP ? "is a symbolic link: refused" : strerror(errno));
		return -1;
	}
	if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != getuid() ||
	    (sb.st_mode & 077) != 0) {
		if (!quiet)
			fprintf(stderr, "akagent: --audit-log %s: refused: not a regular file of ours with "
			    "mode 0600 (it is %04o)\n", path, (unsigned)(sb.st_mode & 07777));
		close(f);
		return -1;
	}
	log_size = (uint64_t)sb.st_size;
	return f;
}

int
agent_audit_open(const char *p)
{
	char cwd[PATH_MAX];
	size_t n;

	if (p == NULL || p[0] == '\0') {
		fprintf(stderr, "akagent: --audit-log: empty path\n");
		return -1;
	}
	if (p[0] == '/')
		path = strdup(p);
	else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "akagent: --audit-log: %s\n", strerror(errno));
			return -1;
		}
		n = strlen(cwd) + strlen(p) + 2;
		if ((path = malloc(n)) != NULL)
			snprintf(path, n, "%s/%s", cwd, p);
	}
	if (path == NULL) {
		fprintf(stderr, "akagent: out of memory\n");
		return -1;
	}
	if ((fd = open_checked(0)) < 0) {
		free(path);
		path = NULL;
		return -1;
	}
	return 0;
}

void
agent_audit_close(void)
{
	if (fd >= 0)
		close(fd);
	fd = -1;
	free(path);
	path = NULL;
	agent_audit_forget();
}

void
agent_audit_set_key(const uint8_t *store_key)
{
	agent_audit_forget();
	if ((hkey = ak_smem_alloc(AK_KEY_BYTES)) == NULL)
		return;
	if (crypto_kdf_derive_from_key(hkey, AK_KEY_BYTES, AUDIT_KDF_ID, AUDIT_KDF_CTX, store_key) != 0)
		agent_audit_forget();
}

void
agent_audit_forget(void)
{
	ak_smem_free(hkey); /* wipes */
	hkey = NULL;
}

int
agent_audit_hash(const char *profile, char *hex)
{
	uint8_t h[AGENT_AUDIT_HASH_BYTES];

	if (hkey == NULL)
		return -1;
	crypto_generichash(h, sizeof(h), (const unsigned char *)profile, strlen(profile), hkey,
	    AK_KEY_BYTES);
	sodium_bin2hex(hex, AGENT_AUDIT_HASH_HEX, h, sizeof(h));
	return 0;
}

static const char *
outcome(uint32_t err)
{
	switch (err) {
	case AK_OK: return "ok";
	case AK_ERR_NOT_CONFIRMED: return "denied";
	case AK_ERR_CONFIRM_TIMEOUT: return "timeout";
	case AK_ERR_EXPIRED: return "expired";
	default: return "error";
	}
}

/* The executable's path as a JSON string body: quotes, backslashes and controls escaped. */
static void
json_text(char *out, size_t outlen, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 7 < outlen; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static void
rotate(void)
{
	char old[PATH_MAX];
	int f;

	if (snprintf(old, sizeof(old), "%s.1", path) >= (int)sizeof(old))
		return;
	if (rename(path, old) != 0) {
		ak_warn("audit log: cannot rotate: %s", strerror(errno));
		return;
	}
	if ((f = open_checked(1)) < 0) {
		ak_warn("audit log: cannot open a new file after rotating; no longer logging");
		close(fd);
		fd = -1;
		return;
	}
	close(fd);
	fd = f;
}

void
agent_audit_write(const struct ak_use_entry *e)
{
	char hex[AGENT_AUDIT_HASH_HEX] = "", exe[AK_USE_EXE_MAX * 6 + 1], line[sizeof(exe) + 256], ts[32];
	struct tm tm;
	time_t t;
	ssize_t w;
	int n;

	if (fd < 0)
		return;
	if (e->profile[0] != '\0' && agent_audit_hash(e->profile, hex) != 0)
		return;
	t = (time_t)e->time;
	if (gmtime_r(&t, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		ts[0] = '\0';
	json_text(exe, sizeof(exe), e->exe);
	n = snprintf(line, sizeof(line),
	    "{\"time\":\"%s\",\"unix\":%lld,\"op\":\"%s\",\"profile\":\"%s\",\"pid\":%lu,\"uid\":%lu,"
	    "\"exe\":\"%s\",\"outcome\":\"%s\",\"code\":%lu}\n",
	    ts, (long long)e->time, ak_use_op_name(e->op), hex, (unsigned long)e->pid, (unsigned long)e->uid, exe,
	    outcome(e->err), (unsigned long)e->err);
	sodium_memzero(hex, sizeof(hex));
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	if (log_size + (uint64_t)n > AGENT_AUDIT_ROTATE_BYTES && log_size > 0)
		rotate();
	if (fd < 0)
		return;
	/* One small append; a short write is only logged, never retried in the loop. */
	if ((w = write(fd, line, (size_t)n)) != n)
		ak_warn("audit log: write failed (%s)", w < 0 ? strerror(errno) : "short write");
	if (w > 0)
		log_size += (uint64_t)w;
}

enum ak_err
agent_audit_map_reply(struct ak_buf *out, const struct ak_store *s)
{
	char hex[AGENT_AUDIT_HASH_HEX];
	enum ak_err r;
	size_t i;

	if ((r = ak_proto_begin(out, AK_MSG_AUDIT_MAP_REPLY)) != AK_OK ||
	    (r = ak_buf_put_u32(out, (uint32_t)s->n)) != AK_OK)
		return r;
	for (i = 0; i < s->n; i++) {
		if (agent_audit_hash(s->p[i]->name, hex) != 0)
			return AK_ERR_LOCKED;
		if ((r = ak_buf_put_cstring(out, s->p[i]->name)) != AK_OK ||
		    (r = ak_buf_put_cstring(out, hex)) != AK_OK)
			return r;
	}
	return ak_proto_finish(out, AK_PROTO_MAX_REPLY);
}
