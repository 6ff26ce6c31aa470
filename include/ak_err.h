/* ak_err.h - one error space for the library, the agent, the wire and akctl's exit codes. */
#ifndef AK_ERR_H
#define AK_ERR_H

/*
 * Values are stable: they travel on the wire (ERROR reply) and are documented in docs/protocol.md.
 * Append only; never renumber.
 */
enum ak_err {
	AK_OK = 0,
	AK_ERR_INTERNAL = 1,        /* a bug: should never happen */
	AK_ERR_NOMEM = 2,           /* allocation failed (secure arena or heap) */
	AK_ERR_SYSTEM = 3,          /* a system call failed; errno says more (never on the wire alone) */
	AK_ERR_INVALID = 4,         /* invalid argument / usage */
	AK_ERR_TRUNCATED = 5,       /* input ended before a field did */
	AK_ERR_TOO_LARGE = 6,       /* a message, file, string or value over its limit */
	AK_ERR_BAD_MESSAGE = 7,     /* malformed protocol message */
	AK_ERR_UNKNOWN_MESSAGE = 8, /* message type not known to this side */
	AK_ERR_BAD_FORMAT = 9,      /* malformed keystore file / header / document */
	AK_ERR_VERSION = 10,        /* keystore or protocol version not supported */
	AK_ERR_AUTH = 11,           /* wrong passphrase, or keystore tampered with */
	AK_ERR_NO_AGENT = 12,       /* no agent answers on the socket */
	AK_ERR_LOCKED = 13,         /* the agent is locked */
	AK_ERR_NO_PROFILE = 14,     /* no such profile */
	AK_ERR_PROFILE_EXISTS = 15, /* profile exists and --force was not given */
	AK_ERR_NO_STORE = 16,       /* keystore file does not exist */
	AK_ERR_STORE_EXISTS = 17,   /* init refuses to overwrite */
	AK_ERR_BAD_NAME = 18,       /* profile name outside [A-Za-z0-9._-]{1,64} */
	AK_ERR_BAD_VARNAME = 19,    /* variable name outside [A-Za-z_][A-Za-z0-9_]* */
	AK_ERR_DENIED = 20,         /* peer uid refused */
	AK_ERR_UNSAFE_PATH = 21,    /* directory/file ownership or mode is unsafe */
	AK_ERR_IO = 22,             /* read/write/fsync/rename failed */
	AK_ERR_STORE_CHANGED = 23,  /* the keystore was re-keyed or replaced under the agent */
	AK_ERR_NO_PASSPHRASE = 24,  /* no terminal, fd or askpass to read a passphrase from */
	AK_ERR_MISMATCH = 25,       /* the two passphrases typed did not match */
	AK_ERR_BUSY = 26,           /* try again later (rate limit, timeout) */
	AK_ERR_UNSUPPORTED = 27,    /* cannot be expressed (e.g. a newline in a cmd.exe value) */
	AK_ERR_EMPTY = 28,          /* an empty secret or passphrase */
	AK_ERR_NO_SPACE = 29,       /* the disk (or quota) is full */
	AK_ERR_UNTRUSTED_AGENT = 30, /* the socket's directory or the agent's process is another user's */
	AK_ERR_OTHER_STORE = 31,    /* the agent serves another keystore than the client's */
	AK_ERR_NOT_FOUND = 32,      /* a file (other than the keystore) does not exist */
	AK_ERR_WEAK_PASS = 33,      /* a new passphrase the strength check refused */
	AK_ERR_NO_VAR = 34,         /* the profile has no such variable */
	AK_ERR_LOOKS_SECRET = 35,   /* a plain value that looks like a provider key */
	AK_ERR_NO_PREVIOUS = 36,    /* no previous key kept (never rotated, finished, or grace over) */
	AK_ERR_SAME_SECRET = 37,    /* a rotation to the key that is already current */
	AK_ERR_SOURCE_CHANGED = 38, /* the profile's source changed while its value was being fetched */
	AK_ERR_NOT_CONFIRMED = 39,  /* confirm-on-use: the askpass said no, or none could run */
	AK_ERR_CONFIRM_TIMEOUT = 40, /* confirm-on-use: no answer in time */
	AK_ERR_EXPIRED = 41,        /* the profile's own lifetime since unlock ended: wiped from the agent */
	AK_ERR_AMBIGUOUS_KEY = 42,  /* several keys at the provider match one partial hint */
	AK_ERR_DEACT_PENDING = 43,  /* only the old key's deactivation at the provider is left to do */
};
/* The highest code: new codes are appended and this follows them. */
#define AK_ERR_LAST AK_ERR_DEACT_PENDING

/* A static, secret-free one-line description. Never NULL. */
const char *ak_strerror(enum ak_err e);

/* akctl's documented exit code for an error: 0 ok, 1 failure, 2 usage, 3 no agent (for this keystore),
 * 4 locked (or the profile's lifetime ended), 5 no such profile, 6 wrong passphrase/authentication,
 * 7 the agent found is not trusted, 8 a confirm-on-use request was denied or not answered in time. */
int ak_err_exit_code(enum ak_err e);

/* Map an int read from the wire to an enum; unknown values become AK_ERR_INTERNAL. */
enum ak_err ak_err_from_wire(unsigned long v);

#endif
