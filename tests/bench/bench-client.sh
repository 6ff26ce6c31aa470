#!/bin/bash
# bench-client.sh - what akctl costs as a process, every ratio measured in one run beside its goal:
#   1. akctl get / env (and status) start to finish against /bin/true, one process at a time;
#   2. 16 and 64 akctl get processes at once against as many ssh-add -L (ssh-agent, one ed25519 key);
#   3. akctl get on stores of 10,000 and 100,000 profiles: its cost beyond a bare process start, and
#      beside a get on the 100-profile store.
# Processes are run by akbench-spawn (fork, exec, wait; commands interleaved in rounds, medians), with
# stdin, stdout and stderr on /dev/null: the path of a script or a shell hook, which never prompts.
#
# usage: bench-client.sh BUILD_DIR
# tunables: BENCH_RUNS (processes per command in parts 1 and 3, default 2000), BENCH_PAR_RUNS (part 2,
#           default 1280), BENCH_ROUNDS (default 10), BENCH_PAR (default "16 64"), BENCH_SCALE (default
#           "10000 100000"; empty skips part 3)
set -u

[ $# -eq 1 ] && [ -x "$1/akctl" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
AKAGENT=$BUILD/akagent AKCTL=$BUILD/akctl SPAWN=$BUILD/tests/bench/akbench-spawn
AKMKSTORE=$BUILD/tests/stress/akmkstore
for p in "$AKAGENT" "$AKCTL" "$SPAWN"; do
	[ -x "$p" ] || { echo "bench-client: $p: not built" >&2; exit 1; }
done
for p in ssh-agent ssh-add ssh-keygen; do
	command -v $p >/dev/null || { echo "bench-client: $p not installed (Debian: openssh-client)" >&2; exit 1; }
done
RUNS=${BENCH_RUNS:-2000}
PAR_RUNS=${BENCH_PAR_RUNS:-1280}
ROUNDS=${BENCH_ROUNDS:-10}
PARS=${BENCH_PAR:-"16 64"}
SCALE=${BENCH_SCALE-"10000 100000"}
NPROF=100
PASS="bench passphrase"
TRUE=/bin/true
SSHADD=$(command -v ssh-add)
ENV=$(command -v env)

T=$(mktemp -d /tmp/akbench-client.XXXXXX) || exit 1
chmod 700 "$T"
PIDS=()
cleanup() {
	local pid
	# kill only what this script started, by pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-client: $*" >&2; exit 1; }

# a private world: nothing of the user's agents or keystores is touched
mkdir -p "$T/home" "$T/run" "$T/data"
chmod 700 "$T/home" "$T/run" "$T/data"
export HOME=$T/home XDG_RUNTIME_DIR=$T/run XDG_DATA_HOME=$T/data SHELL=/bin/sh
unset AKAGENT_SOCK AKAGENT_PID AKCTL_KEYSTORE AKCTL_ASKPASS AKCTL_PROFILE SSH_AUTH_SOCK SSH_AGENT_PID

# shellcheck source=med.sh
. "$(dirname "$0")/med.sh"

# spawn ARGS...: akbench-spawn's lines ("INDEX MEDIAN_US CPU_US"), or die
spawn() {
	"$SPAWN" "$@" || die "akbench-spawn $* failed"
}
us() { awk -v i="$2" '$1 == i { print $2 }' <<<"$1"; }
cpu() { awk -v i="$2" '$1 == i { print $3 }' <<<"$1"; }
# ratio NAME A B GOAL prints "NAME: A/Bx (goal GOAL)"
ratio() { awk -v n="$1" -v a="$2" -v b="$3" -v g="$4" 'BEGIN { printf "%s: %.2fx (goal %s)\n", n, a / b, g }'; }

# --- ssh-agent with one ed25519 key -------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C bench -f "$T/id_ed25519" || die "ssh-keygen failed"
ssh-agent -D -a "$T/ssh.sock" >/dev/null 2>&1 &
PIDS+=($!)
wait_sock "$T/ssh.sock" || die "ssh-agent did not start"
export SSH_AUTH_SOCK=$T/ssh.sock
ssh-add -q "$T/id_ed25519" 2>/dev/null || die "ssh-add failed"

# --- akagent, keystore with NPROF profiles, unlocked --------------------------------------------
eval "$("$AKAGENT" -s -t 0 --idle 0)" >/dev/null || die "akagent did not start"
[ -n "${AKAGENT_PID:-}" ] && [ -S "${AKAGENT_SOCK:-}" ] || die "akagent printed no AKAGENT_SOCK/AKAGENT_PID"
PIDS+=("$AKAGENT_PID")
"$AKCTL" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS" 2>/dev/null || die "akctl init failed"
"$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS" || die "akctl unlock failed"
for i in $(seq -w 0 $((NPROF - 1))); do
	# a realistic Anthropic-shaped key (108 chars) plus two plain variables
	key=sk-ant-api03-$(printf '%093d' "$((10#$i))" | tr 0-9 A-J)AA
	printf %s "$key" | "$AKCTL" add "p0$i" --set ANTHROPIC_MODEL=claude-sonnet-4-5-20250929 \
		--set MAX_TOKENS=1024 >/dev/null 2>"$T/add.err" || { cat "$T/add.err" >&2; die "akctl add p0$i failed"; }
done
P=p050
"$AKCTL" get "$P" </dev/null >/dev/null || die "akctl get $P failed"
"$AKCTL" env "$P" </dev/null >/dev/null || die "akctl env $P failed"
ssh-add -L >/dev/null || die "ssh-add -L failed"

# --- 1. one process at a time -------------------------------------------------------------------
echo "== akctl start to finish, one process at a time ($RUNS runs each in $ROUNDS rounds, medians) =="
out=$(spawn -n "$RUNS" -r "$ROUNDS" -j 1 -- "$TRUE" :: "$AKCTL" get "$P" :: "$AKCTL" env "$P" \
	:: "$AKCTL" status :: "$SSHADD" -L) || exit 1
printf '%-22s %9s %9s %7s\n' command us cpu_us ratio
i=0
for n in "/bin/true" "akctl get $P" "akctl env $P" "akctl status" "ssh-add -L"; do
	awk -v n="$n" -v t="$(us "$out" $i)" -v c="$(cpu "$out" $i)" -v b="$(us "$out" 0)" \
		'BEGIN { printf "%-22s %9.0f %9.0f %6.2fx\n", n, t, c, t / b }'
	i=$((i + 1))
done
ratio "akctl get / true" "$(us "$out" 1)" "$(us "$out" 0)" "<= 1.15x"
ratio "akctl env / true" "$(us "$out" 2)" "$(us "$out" 0)" "<= 1.15x"

# --- 2. many at once ----------------------------------------------------------------------------
echo
echo "== processes in parallel ($PAR_RUNS runs each in $ROUNDS rounds; us = wall time / processes) =="
for j in $PARS; do
	out=$(spawn -n "$PAR_RUNS" -r "$ROUNDS" -j "$j" -- "$AKCTL" get "$P" :: "$SSHADD" -L) || exit 1
	printf '%3d at once: akctl get %6.0f us, ssh-add -L %6.0f us\n' "$j" "$(us "$out" 0)" "$(us "$out" 1)"
	ratio "$j parallel get / ssh-add -L" "$(us "$out" 0)" "$(us "$out" 1)" "<= 0.45x"
done

# --- 3. large stores ----------------------------------------------------------------------------
if [ -n "$SCALE" ]; then
	if [ ! -x "$AKMKSTORE" ]; then
		ninja -C "$BUILD" akmkstore >/dev/null || die "cannot build akmkstore"
	fi
	echo
	echo "== akctl get on large stores (one more agent each; $RUNS runs each in $ROUNDS rounds) =="
	for np in $SCALE; do
		d=$T/s$np
		mkdir -m 700 "$d"
		"$AKMKSTORE" "$d/keystore" "$np" 7 <<<"$PASS" || die "akmkstore $np failed"
		ex=$("$AKAGENT" -s -a "$d/agent.sock" -f "$d/keystore" -t 0 --idle 0) || die "akagent ($np) did not start"
		pid=$(sed -n 's/^AKAGENT_PID=\([0-9]*\).*/\1/p' <<<"$ex")
		[ -n "$pid" ] || die "akagent ($np) printed no pid"
		PIDS+=("$pid")
		AKAGENT_SOCK=$d/agent.sock "$AKCTL" -f "$d/keystore" --passphrase-fd 3 unlock 3<<<"$PASS" </dev/null >"$T/unlock.err" 2>&1 ||
			{ cat "$T/unlock.err" >&2; die "unlock of the $np-profile store failed"; }
		BP=$(printf 'p%05d' $((np / 2)))
		AKAGENT_SOCK=$d/agent.sock "$AKCTL" get "$BP" </dev/null >/dev/null || die "get $BP ($np) failed"
		# Each akctl gets its own AKAGENT_SOCK through env(1), and one true runs through env(1) too:
		# the difference is akctl's cost beyond a bare process start.
		out=$(spawn -n "$RUNS" -r "$ROUNDS" -j 1 -- "$ENV" "$TRUE" \
			:: "$ENV" AKAGENT_SOCK="$d/agent.sock" "$AKCTL" get "$BP" \
			:: "$ENV" AKAGENT_SOCK="$AKAGENT_SOCK" "$AKCTL" get "$P") || exit 1
		awk -v np="$np" -v n0="$NPROF" -v t="$(us "$out" 0)" -v g="$(us "$out" 1)" -v s="$(us "$out" 2)" 'BEGIN {
			printf "%d profiles: get - true: %.2f ms (goal < 1 ms)\n", np, (g - t) / 1000
			printf "%d profiles: get - get at %d profiles: %+.2f ms\n", np, n0, (g - s) / 1000 }'
		kill "$pid" 2>/dev/null
		rm -f "$d/keystore"
	done
fi
exit 0
