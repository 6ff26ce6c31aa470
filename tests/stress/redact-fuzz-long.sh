#!/bin/bash
# Long run of the redact split fuzz (not part of the suite): CASES (default 1,000,000) cases, a pause
# every PAUSE_EVERY (default 5000). usage: AKAGENT=... AKCTL=... tests/stress/redact-fuzz-long.sh
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
KEY=$(fake_key)
init_store
start_agent
unlock
add_profile production "$KEY"
"$PY" "$TESTS_DIR/e2e/redact_fuzz.py" "$AKCTL" "$KEY" production "${CASES:-1000000}" "${PAUSE_EVERY:-5000}" \
	"${SEED:-$RANDOM}" || fail "redact fuzz"
