#!/bin/bash
# valgrind.sh BUILD_DIR [TEST...] - the end-to-end tests (default: every tests/e2e/[0-9]*.sh) with
# akagent and akctl run under valgrind memcheck (--leak-check=full, definite leaks are errors,
# --error-exitcode=99). The agent daemonises: valgrind follows the fork itself (one log per process,
# %p); exec'd commands (akctl exec, akagent CMD) are not traced. Prints each test's result, then the
# number of processes checked, memcheck errors and definitely-lost bytes summed over every log; exit 0
# only when no log reports an error or a definite leak.
# VALGRIND_TIMEOUT (per test, default 900 s).
. "$(dirname "$0")/common.sh"
shift
command -v valgrind >/dev/null || die "valgrind not installed"
E2E="$STRESS_DIR/../e2e"
if [ $# -gt 0 ]; then TESTS=("$@"); else TESTS=("$E2E"/[0-9]*.sh); fi
VG="$T/vg"
mkdir -p "$VG" "$T/bin"
for p in akagent akctl; do
	cat > "$T/bin/$p" <<EOS
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
	--show-leak-kinds=definite --num-callers=30 --log-file=$VG/$p.%p.log "$BUILD/$p" "\$@"
EOS
	chmod 755 "$T/bin/$p"
done
export AKFAULTSHIM AKMKSTORE TMPDIR_KEEP=/tmp
# valgrind runs the binaries ~40x slower: the tests scale their timeouts by this (tests/lib.sh)
export AKT_TIME_FACTOR=${AKT_TIME_FACTOR:-20}
pass=0 failn=0 skipn=0
for t in "${TESTS[@]}"; do
	name=$(basename "$t" .sh)
	start=$(ms)
	rc=0
	AKAGENT="$T/bin/akagent" AKCTL="$T/bin/akctl" AKCTL_NET="${AKCTL_NET:-$BUILD/akctl-net}" \
		timeout "${VALGRIND_TIMEOUT:-900}" bash "$t" > "$T/$name.log" 2>&1 || rc=$?
	case $rc in
	0) res=ok; pass=$((pass + 1)) ;;
	77) res=skipped; skipn=$((skipn + 1)) ;;
	*) res="FAIL ($rc): $(grep -m1 '^FAIL' "$T/$name.log")"; failn=$((failn + 1))
	   cp "$T/$name.log" "${TMPDIR_KEEP:-/tmp}/valgrind-$name.log" 2>/dev/null ;;
	esac
	printf '%-22s %6.1f s  %s\n' "$name" "$(echo "($(ms) - $start) / 1000" | bc -l)" "$res"
done
# summary over every process's log
nlogs=$(find "$VG" -name '*.log' | wc -l)
errs=0 leaked=0 bad=()
for f in "$VG"/*.log; do
	[ -s "$f" ] || continue
	e=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
	# with -q a clean process logs nothing; a leak shows as "N bytes in M blocks are definitely lost"
	l=$(sed -n 's/^==[0-9]*== \([0-9,]*\) bytes in .* definitely lost.*/\1/p' "$f" | tr -d , |
		awk '{s += $1} END {if (NR) print s}')
	# -q prints nothing for a clean process; anything else in the log is a finding
	if [ -n "$e$l" ] || grep -q 'Invalid\|uninitialised\|definitely lost\|Mismatched' "$f"; then
		errs=$((errs + ${e:-1}))
		leaked=$((leaked + ${l:-0}))
		bad+=("$f")
	fi
done
echo "== valgrind: ${#TESTS[@]} tests ($pass ok, $failn failed, $skipn skipped); $nlogs processes checked;" \
	"$errs errors, $leaked bytes definitely lost in ${#bad[@]} process logs"
if [ ${#bad[@]} -gt 0 ]; then
	mkdir -p /tmp/valgrind-findings
	for f in "${bad[@]}"; do
		cp "$f" /tmp/valgrind-findings/
		echo "--- $(basename "$f")"
		head -60 "$f"
	done
	echo "(logs copied to /tmp/valgrind-findings)"
	exit 1
fi
[ "$failn" = 0 ] || exit 1
