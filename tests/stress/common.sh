# tests/stress/common.sh - sourced by tests/stress/*.sh: a private world and the built binaries.
# usage in a script: . "$(dirname "$0")/common.sh" BUILD_DIR
# Sets AKAGENT AKCTL AKLOADGEN AKMKSTORE AKFAULTSHIM, T (temp dir, removed at exit unless KEEP_TMP=1),
# HOME/XDG_* inside T; start_agent ARGS (sets AKAGENT_SOCK/AKAGENT_PID, killed at exit by pid).
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the sourcing scripts
set -u
set -o pipefail
STRESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-${BUILD:-}}
[ -n "$BUILD" ] && [ -x "$BUILD/akagent" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
AKAGENT=${AKAGENT:-$BUILD/akagent}
AKCTL=${AKCTL:-$BUILD/akctl}
AKLOADGEN=$BUILD/tests/stress/akloadgen
AKMKSTORE=$BUILD/tests/stress/akmkstore
AKFAULTSHIM=$BUILD/tests/e2e/akfaultshim.so
# The helpers are not built by default; build them (quietly) if this build tree lacks them.
[ -x "$AKLOADGEN" ] && [ -x "$AKMKSTORE" ] && [ -f "$AKFAULTSHIM" ] ||
	ninja -C "$BUILD" tests/stress/akloadgen tests/stress/akmkstore tests/e2e/akfaultshim.so > /dev/null || { echo "$0: cannot build the helpers" >&2; exit 2; }
PY=/usr/bin/python3
NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/akstress.XXXXXX") || exit 1
chmod 700 "$T"
export HOME="$T/home" XDG_RUNTIME_DIR="$T/run" XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/config"
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME"
mkdir -m 0700 "$XDG_RUNTIME_DIR"
unset AKAGENT_SOCK AKAGENT_PID AKCTL_KEYSTORE AKCTL_PROFILE ANTHROPIC_API_KEY SSH_AUTH_SOCK SSH_AGENT_PID
export SHELL=/bin/bash LC_ALL=C.UTF-8 TMPDIR="$T" AKCTL_ASKPASS=/bin/false
STORE="$XDG_DATA_HOME/akagent/keystore"
PASS="stress-pass-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KILL_PIDS=()
_stress_cleanup() {
	local pid
	trap - EXIT
	for pid in "${KILL_PIDS[@]}"; do
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "${KILL_PIDS[@]}"; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then echo "$NAME: kept $T" >&2; else rm -rf "$T"; fi
}
trap _stress_cleanup EXIT
trap 'exit 130' INT TERM HUP
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
say() { echo "$NAME: $*" >&2; }
start_agent() {
	local ex
	ex=$("$AKAGENT" -s "$@") || die "akagent -s $* failed"
	eval "$ex"
	KILL_PIDS+=("$AKAGENT_PID")
}
unlock() { "$AKCTL" --passphrase-fd 3 unlock "$@" 3<<<"$PASS" >/dev/null 2>&1 || die "unlock failed"; }
# ms: milliseconds since the epoch
ms() { date +%s%3N; }
# rss_fd PID: "RSS_KiB FDS VmLck_KiB"
rss_fd() {
	local rss lck
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status")
	lck=$(awk '/^VmLck/ {print $2}' "/proc/$1/status")
	echo "$rss $(find /proc/"$1"/fd -mindepth 1 -maxdepth 1 | wc -l) $lck"
}
