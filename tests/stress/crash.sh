#!/bin/bash
# crash.sh BUILD_DIR [TRIALS] - kill -9 keystore writers at random moments, TRIALS times (default 500):
# agent add/rm (the agent is killed mid-write) and direct-file add/rm (akctl is killed). Every surviving
# file must open to the old or the new state; prints the counts (old/new/other, per mode).
. "$(dirname "$0")/common.sh"
TRIALS=${2:-${CRASH_TRIALS:-500}}
"$AKCTL" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS" >/dev/null 2>&1 || die "init"
for i in 1 2 3; do
	printf 'sk-ant-api03-base%s' "$i$RANDOM" | AKAGENT_SOCK="$T/none" "$AKCTL" --passphrase-fd 3 add "base$i" \
		3<<<"$PASS" >/dev/null 2>&1 || die "add"
done
start=$(ms)
"$PY" "$STRESS_DIR/../faults/crashloop.py" --akagent "$AKAGENT" --akctl "$AKCTL" --store "$STORE" \
	--trials "$TRIALS" --work "$T/crash" 3<<<"$PASS"
rc=$?
say "$TRIALS trials in $(( ($(ms) - start) / 1000 )) s"
exit $rc
