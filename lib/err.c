/* err.c - error strings and exit codes. The switch has no default: the compiler finds a missing string. */
#include "ak_err.h"

const char *
ak_strerror(enum ak_err e)
{
	switch (e) {
	case AK_OK: return "success";
	case AK_ERR_INTERNAL: return "internal error";
	case AK_ERR_NOMEM: return "out of memory";
	case AK_ERR_SYSTEM: return "system error";
	case AK_ERR_INVALID: return "invalid argument";
	case AK_ERR_TRUNCATED: return "input truncated";
	case AK_ERR_TOO_LARGE: return "input too large";
	case AK_ERR_BAD_MESSAGE: return "malformed message";
	case AK_ERR_UNKNOWN_MESSAGE: return "unknown message type";
	case AK_ERR_BAD_FORMAT: return "malformed keystore";
	case AK_ERR_VERSION: return "unsupported version";
	case AK_ERR_AUTH: return "wrong passphrase or keystore tampered with";
	case AK_ERR_NO_AGENT: return "no agent reachable";
	case AK_ERR_LOCKED: return "agent is locked";
	case AK_ERR_NO_PROFILE: return "no such profile";
	case AK_ERR_PROFILE_EXISTS: return "profile already exists";
	case AK_ERR_NO_STORE: return "keystore does not exist";
	case AK_ERR_STORE_EXISTS: return "keystore already exists";
	case AK_ERR_BAD_NAME: return "invalid profile name (allowed: A-Z a-z 0-9 . _ -, 1 to 64 characters)";
	case AK_ERR_BAD_VARNAME: return "invalid variable name (allowed: [A-Za-z_][A-Za-z0-9_]*)";
	case AK_ERR_DENIED: return "permission denied";
	case AK_ERR_UNSAFE_PATH: return "unsafe ownership or permissions";
	case AK_ERR_IO: return "input/output error";
	case AK_ERR_STORE_CHANGED: return "keystore changed underneath the agent";
	case AK_ERR_NO_PASSPHRASE: return "no terminal or passphrase source available";
	case AK_ERR_MISMATCH: return "passphrases do not match";
	case AK_ERR_BUSY: return "busy, try again later";
	case AK_ERR_UNSUPPORTED: return "value cannot be represented";
	case AK_ERR_EMPTY: return "empty value";
	case AK_ERR_NO_SPACE: return "no space left on device";
	case AK_ERR_UNTRUSTED_AGENT: return "refusing an agent that is not ours";
	case AK_ERR_OTHER_STORE: return "the agent serves another keystore";
	case AK_ERR_NOT_FOUND: return "no such file";
	case AK_ERR_WEAK_PASS: return "passphrase too weak";
	case AK_ERR_NO_VAR: return "no such variable in the profile";
	case AK_ERR_LOOKS_SECRET: return "the value looks like a key: store it with --secret";
	case AK_ERR_NO_PREVIOUS: return "no previous key (never rotated, finished, or its grace is over)";
	case AK_ERR_SAME_SECRET: return "the new key is the current one";
	case AK_ERR_SOURCE_CHANGED: return "the profile changed while fetching; not updated";
	case AK_ERR_NOT_CONFIRMED: return "use of the secret denied at the confirmation prompt";
	case AK_ERR_CONFIRM_TIMEOUT: return "no answer at the confirmation prompt in time";
	case AK_ERR_EXPIRED: return "the profile's lifetime ended: run 'akctl unlock' again";
	case AK_ERR_AMBIGUOUS_KEY: return "several keys at the provider match this key's hint";
	case AK_ERR_DEACT_PENDING: return "the old key's deactivation at the provider is pending";
	}
	return "unknown error";
}

int
ak_err_exit_code(enum ak_err e)
{
	switch (e) {
	case AK_OK: return 0;
	case AK_ERR_INVALID:
	case AK_ERR_BAD_NAME:
	case AK_ERR_BAD_VARNAME: return 2;
	case AK_ERR_NO_AGENT:
	case AK_ERR_OTHER_STORE: return 3;
	case AK_ERR_LOCKED:
	case AK_ERR_EXPIRED: return 4;
	case AK_ERR_NO_PROFILE: return 5;
	case AK_ERR_AUTH:
	case AK_ERR_MISMATCH: return 6;
	case AK_ERR_UNTRUSTED_AGENT: return 7;
	case AK_ERR_NOT_CONFIRMED:
	case AK_ERR_CONFIRM_TIMEOUT: return 8;
	default: return 1;
	}
}

enum ak_err
ak_err_from_wire(unsigned long v)
{
	if (v <= (unsigned long)AK_ERR_LAST)
		return (enum ak_err)v;
	return AK_ERR_INTERNAL;
}
