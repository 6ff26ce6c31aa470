# tests/lib.sh - sourced by every tests/e2e/NN-name.sh.
#
# Gives each test a private world: a fresh temporary HOME, XDG_RUNTIME_DIR (0700), XDG_DATA_HOME and
# XDG_CONFIG_HOME, so the default socket and keystore paths are the test's own and tests can run in
# parallel. A cleanup trap kills the agents this test started (by pid, never by name) and removes it all.
#
# Environment (meson passes these): AKAGENT, AKCTL = absolute paths of the built binaries.
# AKT_TMPDIR: where the test's directory goes (tests/run-all.sh gives each build its own and removes it
# afterwards); else $TMPDIR or /tmp. AKT_TIME_FACTOR: how much slower than a plain build this one runs
# (default 4 when akagent links the ASan runtime, else 1); `scaled` and `wait_until` use it.
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the sourcing tests

set -u
set -o pipefail

: "${AKAGENT:?AKAGENT must name the akagent binary}"
: "${AKCTL:?AKCTL must name the akctl binary}"

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)
PY=/usr/bin/python3	# Debian's python3; the first python3 on PATH may be another install

# AKT_ASAN_RT: the ASan runtime akagent loads (sanitizer builds), to preload ahead of any other
# LD_PRELOAD library. (Read whole, never piped into `grep -q`: with pipefail ldd's SIGPIPE would turn
# a match into a failure.)
AKT_ASAN_RT=$(ldd "$AKAGENT" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// && !n++ {print $3}')
if [ -z "${AKT_TIME_FACTOR:-}" ]; then
	AKT_TIME_FACTOR=1
	[ -n "$AKT_ASAN_RT" ] && AKT_TIME_FACTOR=4
fi
export AKT_TIME_FACTOR

_parent=${AKT_TMPDIR:-${TMPDIR:-/tmp}}
mkdir -p "$_parent" 2>/dev/null
T=$(mktemp -d "$_parent/akt.XXXXXX") || { echo "$TEST_NAME: mktemp failed" >&2; exit 1; }
unset _parent
# Helpers that start agents themselves (tests/faults/crashloop.py) write their pids here, one a line,
# so the cleanup kills those too.
export AKT_PIDFILE="$T/pids"
export HOME="$T/home" XDG_RUNTIME_DIR="$T/run" XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/config"
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME"
mkdir -m 0700 "$XDG_RUNTIME_DIR"

# Nothing from the caller's session leaks in: no agent, no keystore, no profile variables.
unset AKAGENT_SOCK AKAGENT_PID AKCTL_KEYSTORE AKCTL_PROFILE ANTHROPIC_API_KEY ANTHROPIC_MODEL \
	OPENAI_API_KEY MAX_TOKENS
export SHELL=/bin/bash LC_ALL=C.UTF-8 TMPDIR="$T"
# Never prompt on a terminal when a test forgets --passphrase-fd: an askpass that fails.
printf '#!/bin/sh\nexit 1\n' > "$T/askpass-fail"
chmod 0755 "$T/askpass-fail"
export AKCTL_ASKPASS="$T/askpass-fail"
# Standard input is never a terminal: `add` would otherwise wait for a typed secret.
exec </dev/null

AGENT_PIDS=()
OUT="$T/out"	# stdout of the last expect_exit / run
ERR="$T/err"	# stderr of the last expect_exit / run
RC=0

# Kill every agent this test started, by pid, and remove $T. On a normal exit TERM first (an agent
# removes its socket), then KILL what is still there after a second. When the test itself was killed
# (meson's timeout sends TERM to the process group, then KILL half a second later) KILL at once, so the
# directory is gone before that second signal. The agents daemonise into their own session, so the
# group signal never reaches them; an agent missed even so exits when its socket directory goes.
_SIGNALLED=0
# _starttime PID: the process's start time (field 22 of /proc/PID/stat), empty once it is gone.
_starttime() {
	local line rest
	read -r line 2>/dev/null < "/proc/$1/stat" || return 0
	rest=${line##*) }
	# shellcheck disable=SC2086 # split into the fields
	set -- $rest
	echo "${20}"
}
_cleanup() {
	local rc=$? pid i alive mnt
	trap - EXIT
	trap '' INT TERM HUP
	if [ -s "$T/pids" ]; then
		while read -r pid st; do
			# a pid recorded with its start time is ours only while that still matches (pids are reused)
			[ -z "$st" ] || [ "$(_starttime "$pid")" = "$st" ] && AGENT_PIDS+=("$pid")
		done < "$T/pids"
	fi
	if [ "$_SIGNALLED" = 1 ]; then
		for pid in "${AGENT_PIDS[@]}"; do
			[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
		done
	else
		for pid in "${AGENT_PIDS[@]}"; do
			[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
		done
		for i in $(seq 20); do
			alive=0
			for pid in "${AGENT_PIDS[@]}"; do
				[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
					[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && alive=1
			done
			[ "$alive" = 0 ] && break
			sleep 0.05
		done
		for pid in "${AGENT_PIDS[@]}"; do
			[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
		done
	fi
	# a file system a test mounted inside $T (30-faults' small tmpfs)
	if [ "$(id -u)" = 0 ]; then
		awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/self/mounts 2>/dev/null | sort -r |
			while read -r mnt; do umount -l "$mnt" 2>/dev/null; done
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "$TEST_NAME: kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap '_SIGNALLED=1; exit 130' INT
trap '_SIGNALLED=1; exit 143' TERM
trap '_SIGNALLED=1; exit 129' HUP

# fail MSG: the test fails here.
fail() {
	echo "FAIL: $TEST_NAME:${BASH_LINENO[0]}: $*" >&2
	if [ -s "$ERR" ]; then
		echo "--- stderr of the last command:" >&2
		head -c 4000 "$ERR" >&2
		echo >&2
	fi
	exit 1
}

# skip MSG: meson counts exit 77 as skipped.
skip() {
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

# trace MSG: a step marker in the test log.
trace() {
	echo "== $TEST_NAME [${SECONDS}s]: $*" >&2
}

# run CMD...: run it, stdout to $OUT, stderr to $ERR, exit status in $RC. Never fails itself.
run() {
	RC=0
	"$@" >"$OUT" 2>"$ERR" || RC=$?
	return 0
}

# expect_exit CODE CMD...: run CMD (as `run`) and fail unless it exits with CODE.
# CODE "nonzero" accepts any failure status (not a signal death).
expect_exit() {
	local want=$1
	shift
	run "$@"
	if [ "$want" = nonzero ]; then
		if [ "$RC" -eq 0 ] || [ "$RC" -ge 126 ]; then
			echo "FAIL: $TEST_NAME:${BASH_LINENO[0]}: '$*' exited $RC, wanted a failure status" >&2
			cat "$ERR" >&2
			exit 1
		fi
	elif [ "$RC" -ne "$want" ]; then
		echo "FAIL: $TEST_NAME:${BASH_LINENO[0]}: '$*' exited $RC, wanted $want" >&2
		echo "--- stdout:" >&2
		head -c 4000 "$OUT" >&2
		echo "--- stderr:" >&2
		head -c 4000 "$ERR" >&2
		exit 1
	fi
}

# assert_bytes FILE STRING: FILE holds exactly the bytes of STRING (no newline added).
assert_bytes() {
	# A file of this shell's own: parts of a test may assert at the same time.
	local exp="$T/expected.$BASHPID"
	printf '%s' "$2" > "$exp"
	if ! cmp -s "$exp" "$1"; then
		echo "FAIL: $TEST_NAME:${BASH_LINENO[0]}: $1 differs from the expected bytes" >&2
		echo "--- expected (od -c):" >&2
		od -c "$exp" | head -20 >&2
		echo "--- got (od -c):" >&2
		od -c "$1" | head -20 >&2
		exit 1
	fi
	rm -f "$exp"
}

# assert_eq GOT WANT MSG
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', wanted '$2'"
}

# assert_no_secret FILE SECRET MSG: SECRET does not occur in FILE.
assert_no_secret() {
	if grep -qF -- "$2" "$1"; then
		fail "${3:-output} contains a secret"
	fi
}

# test_ca: a throwaway CA ($T/ca.pem) and a certificate for 127.0.0.1 signed by it ($T/srv.pem,
# $T/srv.key) for the loopback TLS fakes; AKCTL_CA_BUNDLE points akctl's TLS at the CA.
test_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=akagent test CA" \
		-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "openssl: CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null || fail "openssl: CSR"
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$T/ext"
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
		-extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null || fail "openssl: sign"
	export AKCTL_CA_BUNDLE="$T/ca.pem"
}

# fake_key: a fresh Anthropic-shaped key (sk-ant-api03- + 93 base64url + AA), made up here.
fake_key() {
	local body
	body=$(head -c 72 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
	printf 'sk-ant-api03-%sAA' "${body:0:93}"
}

# fake_keys N FILE: N fake keys, one a line, into FILE.
fake_keys() {
	local i
	: > "$2"
	for i in $(seq "$1"); do
		fake_key >> "$2"
		echo >> "$2"
	done
}

# rand_word: 24 random lowercase hex characters.
rand_word() {
	head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# A fixed passphrase: the strength check (cracklib) calls about one random hex string in ten
# "too simplistic/systematic", and its warning line would make exact-stderr assertions flaky.
# This one, and the "new-"/"-new" forms tests derive from it, pass the check.
PASS="Akt.Pass-q8Zr2mW7xLv4"

# start_agent [ARGS...]: start an agent for this test (sh syntax), export AKAGENT_SOCK/AKAGENT_PID,
# and remember its pid for cleanup.
start_agent() {
	local exports
	exports=$("$AKAGENT" -s "$@" 2>"$ERR") || fail "akagent -s $* failed"
	eval "$exports"
	[ -n "${AKAGENT_PID:-}" ] || fail "akagent printed no AKAGENT_PID"
	[ -n "${AKAGENT_SOCK:-}" ] || fail "akagent printed no AKAGENT_SOCK"
	track_pid "$AKAGENT_PID"
	kill -0 "$AKAGENT_PID" 2>/dev/null || fail "agent pid $AKAGENT_PID is not running"
}

# track_pid PID: an agent started some other way, to be killed at cleanup. Kept in a file, so agents
# started in a subshell (a test's parallel parts) are killed too.
track_pid() {
	echo "$1 $(_starttime "$1")" >> "$AKT_PIDFILE"
}

# stop_agent: SIGTERM the current agent and wait for it to go.
stop_agent() {
	kill -TERM "$AKAGENT_PID" 2>/dev/null
	wait_gone "$AKAGENT_PID" 5 || fail "agent $AKAGENT_PID did not exit on SIGTERM"
	unset AKAGENT_SOCK AKAGENT_PID
}

# scaled SECONDS: SECONDS times AKT_TIME_FACTOR (for timeouts: never for how long a test waits when
# it could poll instead).
scaled() {
	awk -v s="$1" -v f="$AKT_TIME_FACTOR" 'BEGIN { printf "%g", s * f }'
}

# wait_until SECONDS CMD...: run CMD every 50 ms until it succeeds; nonzero if it has not within
# SECONDS (scaled).
wait_until() {
	local secs end
	secs=$(scaled "$1")
	shift
	end=$(($(date +%s%N) + ${secs%.*} * 1000000000 + 1000000000))
	until "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
	return 0
}

# two_keys_unlocked: a new keystore and an unlocked agent holding two fresh keys, KEY as profile
# production and KEY2 as dev.
two_keys_unlocked() {
	KEY=$(fake_key)
	KEY2=$(fake_key)
	init_store
	start_agent
	unlock
	add_profile production "$KEY"
	add_profile dev "$KEY2"
}

# no_value FILE...: neither KEY nor KEY2 (their distinctive part) appears in any FILE.
no_value() {
	local f
	for f in "$@"; do
		assert_no_secret "$f" "${KEY:13:40}" "$f"
		assert_no_secret "$f" "${KEY2:13:40}" "$f"
	done
}

# poll_until SECONDS CMD...: wait_until with CMD's output discarded.
poll_until() {
	local secs=$1
	shift
	wait_until "$secs" _quietly "$@"
}
_quietly() { "$@" >/dev/null 2>&1; }

# now_ms: milliseconds on the monotonic-enough wall clock (for lower bounds: "not before").
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# all_zombie PID: 0 when every thread of PID is a zombie (or gone). The state is the field after the
# parenthesised name, which may itself hold spaces.
all_zombie() {
	local t st
	for t in /proc/"$1"/task/*/stat; do
		[ -e "$t" ] || continue
		st=$(sed 's/.*) //' "$t" 2>/dev/null | cut -d' ' -f1)
		[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ] || return 1
	done
	return 0
}

# wait_gone PID SECONDS: wait until PID has exited (SECONDS scaled); nonzero if it is still there.
wait_gone() {
	local pid=$1 n
	n=$(awk -v s="$2" -v f="$AKT_TIME_FACTOR" 'BEGIN { printf "%d", s * f * 10 }')
	while [ "$n" -gt 0 ]; do
		kill -0 "$pid" 2>/dev/null || return 0
		# A zombie counts as gone once every thread of it is one: a process's first thread can be a
		# zombie while another (the agent's writer) is still exiting, its sockets not yet closed.
		all_zombie "$pid" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# init_store [ARGS...]: create the test keystore with the fast test KDF and $PASS.
init_store() {
	expect_exit 0 "$AKCTL" --passphrase-fd 3 init --kdf insecure-test "$@" 3<<<"$PASS"
}

# unlock [ARGS...]: unlock the agent with $PASS.
unlock() {
	expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock "$@" 3<<<"$PASS"
}

# add_profile NAME SECRET [ARGS...]: add through the agent (or directly with $PASS on fd 3).
add_profile() {
	local name=$1 secret=$2
	shift 2
	printf '%s' "$secret" > "$T/secret-in"
	expect_exit 0 "$AKCTL" --passphrase-fd 3 add "$name" "$@" <"$T/secret-in" 3<<<"$PASS"
	rm -f "$T/secret-in"
}

# add_profiles FILE: a profile p1, p2... for each key of FILE (one a line), in order.
add_profiles() {
	local i=0 k
	while read -r k; do
		i=$((i + 1))
		add_profile "p$i" "$k"
	done < "$1"
}

# am_root: true when running as uid 0.
am_root() {
	[ "$(id -u)" = 0 ]
}

trace "tmp $T"
