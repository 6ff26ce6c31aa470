#!/usr/bin/env bash
# run-long.sh - build the libFuzzer targets with clang and run each for a while; print a table.
#
# usage: tests/fuzz/run-long.sh [-t SECONDS_PER_TARGET] [-j PARALLEL] [-b BUILD_DIR] [TARGET...]
#   defaults: 60 s, 2 at a time, /tmp/build-fuzz-long, every target.
# New corpus entries go to BUILD_DIR/tests/fuzz/long-corpus-<t>/ (the checked-in seeds are only read),
# findings to BUILD_DIR/tests/fuzz/findings-<t>/ (crash-*, leak-*, timeout-*, oom-*). libFuzzer stops at
# the first finding; the run is restarted until its time is used, so one bug does not end the session.
# Copy a finding to tests/fuzz/regressions/<t>/ once fixed: the replay tests run it from then on.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=60
JOBS=2
BUILD=/tmp/build-fuzz-long
ALL=(proto dispatch keystore dotenv names shell cloud)

while getopts "t:j:b:h" o; do
	case $o in
	t) SECS=$OPTARG ;;
	j) JOBS=$OPTARG ;;
	b) BUILD=$OPTARG ;;
	*) sed -n '2,9p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

command -v clang >/dev/null || { echo "run-long: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
if [ ! -d "$BUILD/meson-private" ]; then
	CC=clang meson setup "$BUILD" "$ROOT" -Dfuzz=true -Db_lundef=false >/dev/null || exit 1
fi
for t in "${TARGETS[@]}"; do
	ninja -C "$BUILD" "tests/fuzz/fuzz_$t" >/dev/null || { echo "run-long: build of fuzz_$t failed" >&2; exit 1; }
done

OUT=$BUILD/tests/fuzz

# run_one T: fuzz target T for SECS seconds in total; writes OUT/long-<t>.stats "execs crashes corpus secs"
run_one() {
	local t=$1 work="$OUT/long-corpus-$t" art="$OUT/findings-$t" log="$OUT/long-$t.log"
	local start now left execs=0 n dirs
	mkdir -p "$work" "$art"
	: >"$log"
	dirs=("$work" "$HERE/corpus/$t")
	[ -d "$HERE/regressions/$t" ] && dirs+=("$HERE/regressions/$t")
	start=$(date +%s)
	while :; do
		now=$(date +%s)
		left=$((SECS - (now - start)))
		[ "$left" -le 0 ] && break
		"$OUT/fuzz_$t" -max_total_time="$left" -print_final_stats=1 -artifact_prefix="$art/" \
			-max_len=8192 -timeout=20 -rss_limit_mb=2048 "${dirs[@]}" >>"$log" 2>&1
		n=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
		# Every restart prints its own final stats: sum them once at the end instead.
		[ -n "$n" ] || break
	done
	execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
	echo "$execs $(find "$art" -type f | wc -l) $(find "$work" -type f | wc -l) $SECS" >"$OUT/long-$t.stats"
}

pids=()
for t in "${TARGETS[@]}"; do
	run_one "$t" &
	pids+=($!)
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
done
wait

total=0
found=0
printf '%-10s %12s %10s %12s %8s\n' target execs exec/s corpus findings
for t in "${TARGETS[@]}"; do
	read -r execs crashes corpus secs <"$OUT/long-$t.stats"
	seeds=$(find "$HERE/corpus/$t" -type f | wc -l)
	printf '%-10s %12s %10s %12s %8s\n' "$t" "$execs" $((execs / (secs > 0 ? secs : 1))) \
		"$((corpus + seeds))" "$crashes"
	total=$((total + execs))
	found=$((found + crashes))
done
echo "total executions: $total; findings: $found (see $OUT/findings-<target>/, logs $OUT/long-<t>.log)"
[ "$found" -eq 0 ]
