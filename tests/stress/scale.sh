#!/bin/bash
# scale.sh BUILD_DIR [PROFILES] - a keystore of PROFILES (default 10,000) generated profiles (akmkstore,
# insecure-test KDF so the times below are the agent's and akctl's, not Argon2id's): unlock, list,
# list --json, get, env, add and rm through the agent, add on the file directly, and the agent's RSS and
# VmLck holding them. Then the same RSS/VmLck for a 200-profile store. Times are medians of several runs.
. "$(dirname "$0")/common.sh"
NP=${2:-10000}
REPS=5
# shellcheck source=../bench/med.sh
. "$(dirname "$0")/../bench/med.sh"
# mrow LABEL CMD...: a row with CMD's median (med runs in this shell, so the add/rm counter survives).
mrow() {
	local label=$1
	shift
	med "$@"
	row "$label" "$MED"
}
row() { printf '%-44s %10s ms\n' "$1" "$2"; }

t0=$(ns)
"$AKMKSTORE" "$STORE" "$NP" 3 <<<"$PASS" || die "akmkstore"
row "akmkstore: write $NP profiles" "$(( ($(ns) - t0) / 1000000 ))"
echo "keystore file: $(stat -c %s "$STORE") bytes"
start_agent -t 0 --idle 0
relock() { "$AKCTL" lock && "$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS"; }
"$AKCTL" lock >/dev/null
mrow "unlock ($NP profiles, incl. akctl start + lock)" relock
"$AKCTL" lock >/dev/null
mrow "lock" "$AKCTL" lock
unlock
mrow "status" "$AKCTL" status
mrow "list" "$AKCTL" list
mrow "list --json" "$AKCTL" list --json
REPS=21
MID=$(printf "p%05d" $((NP / 2))) LAST=$(printf "p%05d" $((NP - 1)))
mrow "get $MID" "$AKCTL" get "$MID"
mrow "env $LAST --shell sh" "$AKCTL" env "$LAST" --shell sh
mrow "exec p00001 -- true" "$AKCTL" exec p00001 -- true
REPS=5
printf 'sk-ant-api03-scale-new-secret-%s' "$RANDOM" > "$T/s"
i=0
addrm() { i=$((i + 1)); "$AKCTL" add "new$i" < "$T/s" && "$AKCTL" rm "new$i"; }
addone() { i=$((i + 1)); "$AKCTL" add "x$i" < "$T/s"; }
mrow "add via the agent (re-read, re-seal, write)" addone
rmone() { "$AKCTL" rm "x$i"; i=$((i - 1)); }
mrow "rm via the agent" rmone
read -r rss fds lck <<<"$(rss_fd "$AKAGENT_PID")"
"$AKCTL" lock >/dev/null
directadd() { i=$((i + 1)); AKAGENT_SOCK="$T/none" "$AKCTL" --passphrase-fd 3 add "d$i" < "$T/s" 3<<<"$PASS"; }
REPS=3
mrow "add directly on the file (KDF insecure-test)" directadd
echo "agent holding $NP profiles: RSS $rss KiB, VmLck $lck KiB, $fds fds"
read -r rss fds lck <<<"$(rss_fd "$AKAGENT_PID")"
echo "same agent after lock: RSS $rss KiB, VmLck $lck KiB"
kill -TERM "$AKAGENT_PID"

# 200 profiles
S2="$T/s200/keystore"
mkdir -m 700 "$T/s200"
"$AKMKSTORE" "$S2" 200 4 <<<"$PASS" || die "akmkstore 200"
ex=$("$AKAGENT" -s -a "$T/s200.sock" -f "$S2") || die "agent"
eval "$ex"
KILL_PIDS+=("$AKAGENT_PID")
read -r rss0 _ lck0 <<<"$(rss_fd "$AKAGENT_PID")"
"$AKCTL" -f "$S2" --passphrase-fd 3 unlock 3<<<"$PASS" >/dev/null 2>&1 || die "unlock 200"
"$AKCTL" -f "$S2" get p00100 >/dev/null || die "get 200"
read -r rss fds lck <<<"$(rss_fd "$AKAGENT_PID")"
echo "agent holding 200 profiles: RSS $rss KiB, VmLck $lck KiB (locked agent before unlock: RSS $rss0 KiB, VmLck $lck0 KiB)"
SSHRSS=
if command -v ssh-agent >/dev/null; then
	ssh-agent -D -a "$T/ssh.sock" >/dev/null 2>&1 &
	KILL_PIDS+=($!)
	sleep 0.3
	SSHRSS=$(awk '/^VmRSS/ {print $2}' /proc/$!/status)
	echo "ssh-agent (no keys), for comparison: RSS $SSHRSS KiB"
fi
