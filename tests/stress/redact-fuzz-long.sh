#!/bin/bash
# Long run of the redact split fuzz (not part of the suite): CASES (default 1,000,000) cases, a pause
# every PAUSE_EVERY (default 5000), driven by the C driver akredactfuzz (tests/stress/redact_fuzz.c;
# about 45 s per million cases here). usage: AKAGENT=... AKCTL=... [AKREDACTFUZZ=...]
# tests/stress/redact-fuzz-long.sh
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
FUZZ=${AKREDACTFUZZ:-$(dirname "$AKCTL")/tests/stress/akredactfuzz}
[ -x "$FUZZ" ] || fail "akredactfuzz not built (ninja -C BUILD tests/stress/akredactfuzz; looked for $FUZZ; set AKREDACTFUZZ)"
KEY=$(fake_key)
init_store
start_agent
unlock
add_profile production "$KEY"
printf '%s' "$KEY" > "$T/key"
"$FUZZ" "$AKCTL" "$T/key" production "${CASES:-1000000}" "${PAUSE_EVERY:-5000}" "${SEED:-$RANDOM}" ||
	fail "redact fuzz"
