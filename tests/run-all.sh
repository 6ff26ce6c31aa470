#!/usr/bin/env bash
# Run every test: a -Dwerror=true build, then an ASan+UBSan build, each with `meson test`.
# As root with apt-get, first installs whatever build or test dependency is missing (Debian 12).
# Ends with one line "N passed, N failed, N skipped" summing both runs; exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

BUILD_DEPS=(gcc libc6-dev libsodium-dev libcurl4-openssl-dev libcjson-dev libreadline-dev libmicrohttpd-dev libpwquality-dev meson ninja-build
	pkg-config scdoc clang libclang-rt-14-dev)
TEST_DEPS=(bash zsh fish tcsh dash procps util-linux python3 coreutils openssl curl python3-dotenv openssh-server openssh-client
	python3-botocore)

install_missing() {
	local missing=() p
	for p in "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
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

# The official Anthropic Node SDK (pinned) for tests/e2e/21-node-sdk.sh; that test skips without npm.
sh tests/fake/install-node-sdk.sh || echo "run-all: Node SDK not installed: 21-node-sdk will skip"

PASSED=0
FAILED=0
SKIPPED=0

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
	if [ -z "$ok$fail" ]; then
		echo "run-all: no test summary in $1" >&2
		FAILED=$((FAILED + 1))
	fi
}

# run_build NAME MESON_OPTIONS...: configure (or reconfigure), build, test. A failed build counts as one
# failure.
run_build() {
	local dir=$1 log rc
	shift
	log="$ROOT/$dir/run-all-test.log"
	echo "=== $dir: meson setup $*"
	if [ -d "$dir/meson-private" ]; then
		meson setup --reconfigure "$dir" "$@" || { FAILED=$((FAILED + 1)); return 1; }
	else
		rm -rf "$dir"
		meson setup "$dir" "$@" || { FAILED=$((FAILED + 1)); return 1; }
	fi
	echo "=== $dir: build"
	ninja -C "$dir" || { FAILED=$((FAILED + 1)); return 1; }
	echo "=== $dir: test"
	# shellcheck disable=SC2086 # TEST_ARGS is a list of words
	meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)" ${TEST_ARGS:-} 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	count "$log"
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
run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true || status=1
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
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
	CC=clang TEST_ARGS="--suite fuzz" run_build build-fuzz -Dfuzz=true -Db_lundef=false || status=1
else
	echo "run-all: clang missing: libFuzzer targets not built" >&2
	FAILED=$((FAILED + 1))
	status=1
fi

[ "$FAILED" -gt 0 ] && status=1
if [ "$PASSED" -eq 0 ]; then
	echo "run-all: no test passed" >&2
	status=1
fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
exit "$status"
