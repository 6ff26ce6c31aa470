#!/bin/bash
# scale.sh BUILD_DIR [PROFILES] - a keystore of PROFILES (default 10,000) generated profiles (akmkstore,
# insecure-test KDF so the times below are the agent's and akctl's, not Argon2id's): unlock, list,
# list --json, get, env, add and rm through the agent, add on the file directly, and the agent's RSS and
# VmLck holding them. Then the same RSS/VmLck for a 200-profile store. Times are medians of several runs.
. "$(dirname "$0")/common.sh"
NP=${2:-10000}
ns() { date +%s%N; }
# med CMD...: median wall time of REPS runs (ms, 2 decimals); the command must succeed
REPS=5
med() {
	local i t0 t1 ts=()
	for i in $(seq "$REPS"); do
		t0=$(ns)
		"$@" >/dev/null 2>"$T/err" || die "'$*' failed: $(cat "$T/err")"
		t1=$(ns)
		ts+=($((t1 - t0)))
	done
	printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1e6}'
}
row() { printf '%-44s %10s ms\n' "$1" "$2"; }

t0=$(ns)
"$AKMKSTORE" "$STORE" "$NP" 3 <<<"$PASS" || die "akmkstore"
row "akmkstore: write $NP profiles" "$(( ($(ns) - t0) / 1000000 ))"
echo "keystore file: $(stat -c %s "$STORE") bytes"
start_agent -t 0 --idle 0
relock() { "$AKCTL" lock && "$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS"; }
"$AKCTL" lock >/dev/null
row "unlock ($NP profiles, incl. akctl start + lock)" "$(med relock)"
"$AKCTL" lock >/dev/null
row "lock" "$(med "$AKCTL" lock)"
unlock
row "status" "$(med "$AKCTL" status)"
row "list" "$(med "$AKCTL" list)"
row "list --json" "$(med "$AKCTL" list --json)"
REPS=21
MID=$(printf "p%05d" $((NP / 2))) LAST=$(printf "p%05d" $((NP - 1)))
row "get $MID" "$(med "$AKCTL" get "$MID")"
row "env $LAST --shell sh" "$(med "$AKCTL" env "$LAST" --shell sh)"
row "exec p00001 -- true" "$(med "$AKCTL" exec p00001 -- true)"
REPS=5
printf 'sk-ant-api03-scale-new-secret-%s' "$RANDOM" > "$T/s"
i=0
addrm() { i=$((i + 1)); "$AKCTL" add "new$i" < "$T/s" && "$AKCTL" rm "new$i"; }
addone() { i=$((i + 1)); "$AKCTL" add "x$i" < "$T/s"; }
row "add via the agent (re-read, re-seal, write)" "$(med addone)"
rmone() { "$AKCTL" rm "x$i"; i=$((i - 1)); }
row "rm via the agent" "$(med rmone)"
read -r rss fds lck <<<"$(rss_fd "$AKAGENT_PID")"
"$AKCTL" lock >/dev/null
directadd() { i=$((i + 1)); AKAGENT_SOCK="$T/none" "$AKCTL" --passphrase-fd 3 add "d$i" < "$T/s" 3<<<"$PASS"; }
REPS=3
row "add directly on the file (KDF insecure-test)" "$(med directadd)"
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
