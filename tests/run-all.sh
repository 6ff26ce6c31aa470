#!/usr/bin/env bash
# Run every test: a -Dwerror=true build, then an ASan+UBSan build, each with `meson test`, then the
# libFuzzer targets (clang). As root with apt-get, first installs whatever build or test dependency is
# missing (Debian 12; node and npm too where there is no node), so as root a skipped test is a failure.
# Ends with one line "N passed, N failed, N skipped" summing the runs; exits non-zero if anything failed.
# Env: AKT_JOBS = how many tests run at once (default twice the cores, at least 4).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

BUILD_DEPS=(gcc libc6-dev libsodium-dev libcurl4-openssl-dev libcjson-dev libreadline-dev libmicrohttpd-dev libpwquality-dev meson ninja-build
	pkg-config scdoc clang libclang-rt-14-dev)
TEST_DEPS=(bash zsh fish tcsh dash procps util-linux python3 coreutils openssl curl python3-dotenv git tmux
	systemd bash-completion cracklib-runtime openssh-server openssh-client
	python3-botocore strace)

install_missing() {
	local missing=() p
	for p in "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	# Node and npm for tests/e2e/21-node-sdk.sh: Debian's, unless a node is already there (from
	# Debian or elsewhere; Debian's npm would want to replace another vendor's nodejs).
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || command -v node >/dev/null || missing+=(npm)
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "run-all: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q && apt-get install -y -q "${missing[@]}" </dev/null
	else
		echo "run-all: missing packages (install them as root): ${missing[*]}" >&2
	fi
}
if command -v dpkg >/dev/null; then
	install_missing
fi

# The official Anthropic Node SDK (pinned) for tests/e2e/21-node-sdk.sh, from npm's registry.
sh tests/fake/install-node-sdk.sh || echo "run-all: the Node SDK is not installed: 21-node-sdk will skip" >&2

# Every test's temporary directory goes under one directory of this run (short: socket paths are
# limited to 108 bytes), checked empty after each build's tests and removed at the end, however
# run-all ends. A test killed on its timeout removes its own; what is left is counted as a failure.
AKT_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/akagent-tests.XXXXXX") || exit 1
chmod 0711 "$AKT_TMPDIR"	# searchable, like /tmp: 06-other-uid runs a client as nobody in its dir
export AKT_TMPDIR
trap 'rm -rf "$AKT_TMPDIR"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Tests are independent (each has its own HOME, socket and keystore) and mostly wait on processes and
# sockets, so more run at once than there are cores.
JOBS=${AKT_JOBS:-$(($(nproc) * 2 > 4 ? $(nproc) * 2 : 4))}

PASSED=0
FAILED=0
SKIPPED=0
SKIPPED_NAMES=""

# count LOG: add meson test's summary counts to the totals.
count() {
	local ok fail unexp timeout skip
	ok=$(awk '/^Ok:/ {print $2}' "$1" | tail -1)
	fail=$(awk '/^Fail:/ {print $2}' "$1" | tail -1)
	unexp=$(awk '/^Unexpected Pass:/ {print $3}' "$1" | tail -1)
	timeout=$(awk '/^Timeout:/ {print $2}' "$1" | tail -1)
	skip=$(awk '/^Skipped:/ {print $2}' "$1" | tail -1)
	PASSED=$((PASSED + ${ok:-0}))
	FAILED=$((FAILED + ${fail:-0} + ${unexp:-0} + ${timeout:-0}))
	SKIPPED=$((SKIPPED + ${skip:-0}))
	SKIPPED_NAMES+=$(awk '$5 == "SKIP" {print " " $4}' "$1")
	if [ -z "$ok$fail" ]; then
		echo "run-all: no test summary in $1" >&2
		FAILED=$((FAILED + 1))
	fi
}

# run_build NAME MESON_OPTIONS...: configure (or reconfigure), build, test. A failed build counts as one
# failure. TEST_ARGS: more meson test options; SUITE: build and run only that suite's tests.
run_build() {
	local dir=$1 log rc left start targets
	shift
	log="$ROOT/$dir/run-all-test.log"
	echo "=== $dir: meson setup $*"
	if [ -d "$dir/meson-private" ]; then
		meson setup --reconfigure "$dir" "$@" || { FAILED=$((FAILED + 1)); return 1; }
	else
		rm -rf "$dir"
		meson setup "$dir" "$@" || { FAILED=$((FAILED + 1)); return 1; }
	fi
	echo "=== $dir: build${SUITE:+ (what suite $SUITE runs)}"
	if [ -n "${SUITE:-}" ]; then
		# only the executables of that suite's tests (ninja names them by their path in the build dir)
		targets=$(meson introspect "$dir" --tests | /usr/bin/python3 -c '
import json, os, sys
d = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if any(s == sys.argv[2] or s.endswith(":" + sys.argv[2]) for s in t["suite"]):
        print(os.path.relpath(os.path.realpath(t["cmd"][0]), d))' "$dir" "$SUITE") || targets=""
		[ -n "$targets" ] || { echo "run-all: $dir: no test in suite $SUITE" >&2; FAILED=$((FAILED + 1)); return 1; }
		# shellcheck disable=SC2086 # one target a word
		ninja -C "$dir" $targets || { FAILED=$((FAILED + 1)); return 1; }
	else
		ninja -C "$dir" || { FAILED=$((FAILED + 1)); return 1; }
	fi
	echo "=== $dir: test"
	start=$SECONDS
	# shellcheck disable=SC2086 # TEST_ARGS is a list of words
	meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$JOBS" ${SUITE:+--suite "$SUITE"} \
		${TEST_ARGS:-} 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	echo "=== $dir: tests took $((SECONDS - start)) s"
	count "$log"
	left=$(find "$AKT_TMPDIR" -mindepth 1 -maxdepth 1 2>/dev/null)
	if [ -n "$left" ]; then
		echo "run-all: $dir: tests left behind: $left" >&2
		rm -rf "${AKT_TMPDIR:?}"/*
		FAILED=$((FAILED + 1))
		rc=1
	fi
	return "$rc"
}

status=0
run_build build-test -Dwerror=true || status=1

# Sanitizer reports go to files: the agent daemonises and its stderr is /dev/null.
SANLOG="$ROOT/build-asan/sanitizer-logs"
rm -rf "$SANLOG"
mkdir -p "$SANLOG"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:log_path=$SANLOG/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$SANLOG/ubsan"
export LSAN_OPTIONS="log_path=$SANLOG/lsan"
# Sanitized code runs 3-5x slower: meson's timeouts and the tests' own (tests/lib.sh) are scaled.
export AKT_TIME_FACTOR=4
TEST_ARGS="--timeout-multiplier 4" run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dwerror=true || status=1
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS AKT_TIME_FACTOR
if [ -n "$(ls -A "$SANLOG" 2>/dev/null)" ]; then
	echo "=== sanitizer reports:"
	for f in "$SANLOG"/*; do
		echo "--- $f"
		head -c 20000 "$f"
	done
	FAILED=$((FAILED + 1))
	status=1
fi

# libFuzzer targets (clang): a short fixed number of runs each; tests/fuzz/run-long.sh runs them for longer.
# Sanitizer findings make libFuzzer exit non-zero, so meson counts them as failures.
if command -v clang >/dev/null; then
	CC=clang SUITE=fuzz run_build build-fuzz -Dfuzz=true -Db_lundef=false || status=1
else
	echo "run-all: clang missing: libFuzzer targets not built" >&2
	FAILED=$((FAILED + 1))
	status=1
fi

# As root every dependency is installed above, so nothing has a reason to skip.
if [ "$SKIPPED" -gt 0 ]; then
	echo "run-all: skipped:$SKIPPED_NAMES" >&2
	if [ "$(id -u)" = 0 ]; then
		echo "run-all: as root nothing may skip" >&2
		FAILED=$((FAILED + SKIPPED))
	fi
fi
[ "$FAILED" -gt 0 ] && status=1
if [ "$PASSED" -eq 0 ]; then
	echo "run-all: no test passed" >&2
	status=1
fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
exit "$status"
