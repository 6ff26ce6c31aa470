#!/bin/bash
# load.sh BUILD_DIR - 256 concurrent clients, 1,000,000 requests mixing GET/LIST/STATUS against an
# unlocked akagent holding 200 generated profiles; every reply is checked by akloadgen (value, names,
# redaction, counts). Then the same client against ssh-agent (one ed25519 key, REQUEST_IDENTITIES), in
# the same run. Samples the agent's RSS, descriptors and VmLck every second (they must stay flat).
# Tunables: LOAD_REQUESTS (1000000), LOAD_CLIENTS (256), LOAD_THREADS (2), LOAD_MIX (80:10:10),
# LOAD_PROFILES (200). Exit 0 only with zero errors and zero wrong answers.
. "$(dirname "$0")/common.sh"
N=${LOAD_REQUESTS:-1000000}
C=${LOAD_CLIENTS:-256}
J=${LOAD_THREADS:-2}
MIX=${LOAD_MIX:-80:10:10}
P=${LOAD_PROFILES:-200}
SEED=$RANDOM

"$AKMKSTORE" "$STORE" "$P" "$SEED" <<<"$PASS" || die "akmkstore failed"
start_agent
unlock
"$AKCTL" status >/dev/null || die "agent not unlocked"
say "agent $AKAGENT_PID, $P profiles, $C clients, $N requests, mix get:list:status $MIX"

sample() {
	while kill -0 "$1" 2>/dev/null; do
		echo "$(date +%s) $(rss_fd "$AKAGENT_PID")"
		sleep 1
	done
}
echo "start $(rss_fd "$AKAGENT_PID")" > "$T/samples"
"$AKLOADGEN" -s "$AKAGENT_SOCK" -t akagent -c "$C" -j "$J" -n "$N" -P "$P" -S "$SEED" -m "$MIX" -H \
	> "$T/ak.out" 2> "$T/ak.err" &
LG=$!
sample "$LG" >> "$T/samples" &
SP=$!
wait "$LG"
AKRC=$?
wait "$SP"
echo "end $(rss_fd "$AKAGENT_PID")" >> "$T/samples"
kill -0 "$AKAGENT_PID" || die "the agent died under load"
cat "$T/ak.err" >&2

# ssh-agent, same client, same machine, same run
SSHRC=skipped
if command -v ssh-agent >/dev/null && command -v ssh-keygen >/dev/null; then
	ssh-keygen -q -t ed25519 -N '' -C load -f "$T/id" || die "ssh-keygen"
	ssh-agent -D -a "$T/ssh.sock" >/dev/null 2>&1 &
	KILL_PIDS+=($!)
	SSHPID=$!
	for _ in $(seq 100); do [ -S "$T/ssh.sock" ] && break; sleep 0.05; done
	SSH_AUTH_SOCK=$T/ssh.sock ssh-add -q "$T/id" 2>/dev/null || die "ssh-add"
	echo "ssh-start $(rss_fd "$SSHPID")" >> "$T/samples"
	"$AKLOADGEN" -s "$T/ssh.sock" -t ssh -k 1 -c "$C" -j "$J" -n "$N" > "$T/ssh.out" 2> "$T/ssh.err"
	SSHRC=$?
	echo "ssh-end $(rss_fd "$SSHPID")" >> "$T/samples"
	cat "$T/ssh.err" >&2
fi

echo "== results (akloadgen; latency = request sent to reply read, per request)"
cat "$T/ak.out"
[ -s "$T/ssh.out" ] && cat "$T/ssh.out"
echo "== akagent RSS_KiB fds VmLck_KiB, sampled each second (first, min, max, last):"
awk '$1 ~ /^([0-9]+|start|end)$/ {print $2, $3, $4}' "$T/samples" | awk '
	NR == 1 {f = $0; r0 = r1 = $1; d0 = d1 = $2}
	{ if ($1 < r0) r0 = $1; if ($1 > r1) r1 = $1; if ($2 < d0) d0 = $2; if ($2 > d1) d1 = $2; l = $0 }
	END { printf "first [%s]  RSS min %s max %s KiB  fds min %s max %s  last [%s]  (%d samples)\n", f, r0, r1, d0, d1, l, NR }'
echo "   RSS KiB each second: $(awk '$1 ~ /^[0-9]+$/ {printf "%s ", $2}' "$T/samples")"
echo "   fds each second:     $(awk '$1 ~ /^[0-9]+$/ {printf "%s ", $3}' "$T/samples")"
grep ssh "$T/samples" | sed 's/^/ssh-agent RSS_KiB fds VmLck_KiB: /'
[ "$AKRC" = 0 ] || die "akagent run had errors or wrong answers (akloadgen exit $AKRC)"
[ "$SSHRC" = 0 ] || [ "$SSHRC" = skipped ] || die "ssh-agent run failed (exit $SSHRC)"
echo "load: ok"
