#!/bin/bash
# bench.sh - akagent benchmark (not a test). Everything measured in one run on one machine, each ratio
# printed beside its goal:
#   1. throughput matrix: requests/s and p50/p99 at 1, 16, 64, 256 clients for GET, LIST, STATUS and the
#      GET:LIST:STATUS 80:10:10 mix (100 profiles), against ssh-agent (REQUEST_IDENTITIES, one ed25519
#      key, the same client code) and a trivial poll() echo server (the ceiling);
#   2. writes never stall reads: GET p99 while a client (one connection) adds and removes a profile 20
#      times a second, against the idle GET p99; the same with akctl processes as the writer, for
#      information;
#   3. client process cost: tests/bench/bench-client.sh when it is there;
#   4. scale: unlock, list --json, get, add and rm through the agent, RSS and locked memory, from 10 to
#      100,000 profiles (generated keystores, insecure-test KDF so the KDF is not in the times);
#   5. memory of the 100-profile agent beside ssh-agent's.
#
# usage: bench.sh [--markdown FILE] BUILD_DIR
#        bench.sh [--markdown FILE] AKAGENT AKCTL AKBENCH AKBENCH_ECHO AKMKSTORE   (`ninja -C BUILD bench`)
#   --markdown FILE: also rewrite the tables between the bench markers of FILE (docs/performance.md).
# tunables: BENCH_SECS (per akbench run, default 1), BENCH_REPEAT (runs per point, best kept, default 2),
#           BENCH_CLIENTS (default "1 16 64 256"), BENCH_MIXES (default "get list status mix"),
#           BENCH_SCALE (profiles, default "10 1000 10000 100000"), BENCH_WRITE_SECS (default 3),
#           BENCH_RUNS (process loop of the fallback client part, default 300), BENCH_PARTS (the parts to
#           run, default "1 2 3 4 5"; e.g. BENCH_PARTS=4 BENCH_SCALE="10000 100000" for the scale part
#           alone; --markdown needs them all)
set -u

MD=
if [ "${1:-}" = --markdown ]; then
	MD=$2
	shift 2
fi
if [ $# -eq 1 ]; then
	AKAGENT=$1/akagent AKCTL=$1/akctl AKBENCH=$1/tests/bench/akbench AKECHO=$1/tests/bench/akbench-echo
	AKMKSTORE=$1/tests/stress/akmkstore
	[ -x "$AKMKSTORE" ] || ninja -C "$1" tests/stress/akmkstore >/dev/null
elif [ $# -eq 5 ]; then
	AKAGENT=$1 AKCTL=$2 AKBENCH=$3 AKECHO=$4 AKMKSTORE=$5
else
	echo "usage: $0 [--markdown FILE] BUILD_DIR | $0 [--markdown FILE] AKAGENT AKCTL AKBENCH AKBENCH_ECHO AKMKSTORE" >&2
	exit 2
fi
for p in "$AKAGENT" "$AKCTL" "$AKBENCH" "$AKECHO" "$AKMKSTORE"; do
	[ -x "$p" ] || { echo "bench: $p: not built" >&2; exit 1; }
done
for p in ssh-agent ssh-add ssh-keygen; do
	command -v $p >/dev/null || { echo "bench: $p not installed (Debian: openssh-client)" >&2; exit 1; }
done
[ -z "$MD" ] || [ -f "$MD" ] || { echo "bench: $MD: no such file" >&2; exit 2; }
SECS=${BENCH_SECS:-1}
REPEAT=${BENCH_REPEAT:-2}
CLIENTS=${BENCH_CLIENTS:-"1 16 64 256"}
MIXES=${BENCH_MIXES:-"get list status mix"}
SCALE=${BENCH_SCALE:-"10 1000 10000 100000"}
WSECS=${BENCH_WRITE_SECS:-3}
PARTS=${BENCH_PARTS:-"1 2 3 4 5"}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
[ -z "${MD:-}" ] || [ "$PARTS" = "1 2 3 4 5" ] || { echo "bench: --markdown needs every part" >&2; exit 2; }
NPROF=100
PASS="bench passphrase correct horse"
HERE=$(cd "$(dirname "$0")" && pwd)

T=$(mktemp -d /tmp/akbench.XXXXXX)
chmod 700 "$T"
SSH_PID= ECHO_PID= AK_PID= WRITER_PID=
cleanup() {
	# kill only what this script started, by pid
	[ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null
	[ -n "$AK_PID" ] && kill "$AK_PID" 2>/dev/null
	[ -n "$SSH_PID" ] && kill "$SSH_PID" 2>/dev/null
	[ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
# shellcheck source=med.sh
. "$(dirname "$0")/med.sh"

# a private world: nothing of the user's agents or keystores is touched
mkdir -p "$T/home" "$T/run" "$T/data/akagent"
chmod 700 "$T/home" "$T/run" "$T/data" "$T/data/akagent"
export HOME=$T/home XDG_RUNTIME_DIR=$T/run XDG_DATA_HOME=$T/data SHELL=/bin/sh AKCTL_ASKPASS=/bin/false
unset AKAGENT_SOCK AKAGENT_PID AKCTL_KEYSTORE AKCTL_PROFILE SSH_AUTH_SOCK SSH_AGENT_PID
STORE=$T/data/akagent/keystore

kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

# A fresh agent on a generated keystore of $1 profiles, unlocked; sets AK_PID, AKAGENT_SOCK.
start_agent() {
	[ -n "$AK_PID" ] && { kill "$AK_PID" 2>/dev/null; wait "$AK_PID" 2>/dev/null; }
	AK_PID=
	rm -f "$STORE"
	"$AKMKSTORE" "$STORE" "$1" <<<"$PASS" >/dev/null || die "akmkstore $1 failed"
	eval "$("$AKAGENT" -s -t 0 --idle 0)" >/dev/null || die "akagent did not start"
	AK_PID=${AKAGENT_PID:-}
	[ -n "$AK_PID" ] && [ -S "${AKAGENT_SOCK:-}" ] || die "akagent printed no AKAGENT_SOCK/AKAGENT_PID"
	"$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS" || die "akctl unlock failed"
}

# --- ssh-agent with one ed25519 key, the echo server, akagent with 100 profiles ----------------
ssh-keygen -q -t ed25519 -N '' -C bench -f "$T/id_ed25519" || die "ssh-keygen failed"
ssh-agent -D -a "$T/ssh.sock" >/dev/null 2>&1 &
SSH_PID=$!
wait_sock "$T/ssh.sock" || die "ssh-agent did not start"
SSH_AUTH_SOCK=$T/ssh.sock ssh-add -q "$T/id_ed25519" 2>/dev/null || die "ssh-add failed"
"$AKECHO" "$T/echo.sock" &
ECHO_PID=$!
wait_sock "$T/echo.sock" || die "akbench-echo did not start"
start_agent "$NPROF"
P=p00050
"$AKCTL" get "$P" >/dev/null || die "akctl get $P failed"

# --- 1. throughput matrix -------------------------------------------------------------------------
if part 1; then
# Targets are interleaved and each point is repeated REPEAT times, keeping the best req/s (with its own
# latencies): on a shared machine other load only ever makes a run slower.
echo "== 1. requests over the Unix socket ($NPROF profiles; best of $REPEAT x ${SECS}s; one request outstanding per client) =="
printf '%-16s %7s %12s %9s %9s %10s\n' target clients req/s p50_us p99_us requests
declare -A RPS P99 LINE
TARGETS=
for m in $MIXES; do TARGETS+="akagent-$m "; done
TARGETS+="ssh echo"
run_point() { # tgt clients sock -> updates RPS/P99/LINE
	local line
	line=$("$AKBENCH" -s "$3" -t "$1" -c "$2" -d "$SECS" -p "$P") || die "akbench $1 -c $2 failed"
	set -- $line
	if [ -z "${RPS[$1.$2]:-}" ] || [ "${3%.*}" -gt "${RPS[$1.$2]%.*}" ]; then
		RPS[$1.$2]=$3 P99[$1.$2]=$5 LINE[$1.$2]=$line
	fi
}
for c in $CLIENTS; do
	for ((r = 0; r < REPEAT; r++)); do
		for tgt in $TARGETS; do
			case $tgt in
			akagent-*) s=$AKAGENT_SOCK ;;
			ssh) s=$T/ssh.sock ;;
			echo) s=$T/echo.sock ;;
			esac
			run_point "$tgt" "$c" "$s"
		done
	done
	for tgt in $TARGETS; do
		echo "${LINE[$tgt.$c]}"
	done
done
echo
echo "goal: akagent >= 1.5x ssh-agent's req/s and p99 no worse, on every mix at 16, 64 and 256 clients"
printf '%-8s %7s %11s %10s %8s %12s %12s %6s %11s\n' mix clients akagent ssh-agent ratio p99_akagent p99_ssh p99ok echo_ceiling
for m in $MIXES; do
	for c in $CLIENTS; do
		awk -v m="$m" -v c="$c" -v a="${RPS[akagent-$m.$c]}" -v s="${RPS[ssh.$c]}" -v e="${RPS[echo.$c]}" \
		    -v ap="${P99[akagent-$m.$c]}" -v sp="${P99[ssh.$c]}" 'BEGIN {
			goal = (c >= 16) ? ((a / s >= 1.5) ? "ok" : "MISS") : "-"
			printf "%-8s %7d %11.0f %10.0f %5.2fx %-3s %10.0fus %10.0fus %6s %11.0f\n",
			    m, c, a, s, a / s, goal, ap, sp, (ap <= sp) ? "yes" : "no", e }'
	done
done
fi

# --- 2. writes never stall reads ------------------------------------------------------------------
if part 2; then
# One client adds and removes a profile 20 times a second (akbench -t akagent-write: one connection,
# each write a full keystore transaction with fsync in the agent) while 16 clients GET; against the same
# GET load idle. The same again with `akctl add`/`rm` processes as the writer, for information: on two
# CPUs the processes' own start-up (and the shell loop's forks) take CPU from the GET clients whatever
# the agent does, so the goal is judged on the one long-lived writer.
echo
echo "== 2. GET p99 while a client writes 20 times a second ($NPROF profiles, 16 clients, ${WSECS}s) =="
printf 'sk-ant-api03-%s' "$(printf '%093d' 7 | tr 0-9 A-J)AA" >"$T/secret"
writer_loop() {
	local i=0 t0 t1 left
	while :; do
		i=$((i + 1))
		t0=$(ns)
		if ((i % 2)); then
			"$AKCTL" add "w$i" <"$T/secret" >/dev/null 2>&1
		else
			"$AKCTL" rm "w$((i - 1))" >/dev/null 2>&1
		fi
		echo "$i" >"$T/writes"
		t1=$(ns)
		left=$((50000000 - (t1 - t0)))
		((left > 0)) && sleep "0.$(printf '%09d' "$left")"
	done
}
# busy_p99 KIND: the best GET p99 (and its req/s, writes) of REPEAT runs beside writer KIND (client or
# akctl); IDLE99 from runs without a writer, interleaved with them.
IDLE99= BUSY99= PBUSY99=
for ((r = 0; r < REPEAT; r++)); do
	set -- $("$AKBENCH" -s "$AKAGENT_SOCK" -t akagent-get -c 16 -d "$WSECS" -p "$P") || die "akbench idle failed"
	[ -z "$IDLE99" ] || awk -v a="$5" -v b="$IDLE99" 'BEGIN { exit !(a < b) }' && IDLE99=$5 IDLE_RPS=$3
	"$AKBENCH" -s "$AKAGENT_SOCK" -t akagent-write -r 20 -d "$(awk -v s="$WSECS" 'BEGIN { print s + 0.6 }')" \
		>"$T/wclient" &
	WRITER_PID=$!
	sleep 0.3
	set -- $("$AKBENCH" -s "$AKAGENT_SOCK" -t akagent-get -c 16 -d "$WSECS" -p "$P") || die "akbench busy failed"
	wait "$WRITER_PID" || die "akbench writer failed"
	WRITER_PID=
	NW=$(awk '{ print $6 }' "$T/wclient")
	[ -z "$BUSY99" ] || awk -v a="$5" -v b="$BUSY99" 'BEGIN { exit !(a < b) }' && BUSY99=$5 BUSY_RPS=$3 BUSY_NW=$NW
	echo 0 >"$T/writes"
	writer_loop &
	WRITER_PID=$!
	sleep 0.3
	set -- $("$AKBENCH" -s "$AKAGENT_SOCK" -t akagent-get -c 16 -d "$WSECS" -p "$P") || die "akbench busy failed"
	kill "$WRITER_PID" 2>/dev/null
	wait "$WRITER_PID" 2>/dev/null
	WRITER_PID=
	NW=$(cat "$T/writes")
	[ -z "$PBUSY99" ] || awk -v a="$5" -v b="$PBUSY99" 'BEGIN { exit !(a < b) }' && PBUSY99=$5 PBUSY_RPS=$3 PBUSY_NW=$NW
done
awk -v i="$IDLE99" -v b="$BUSY99" -v ir="$IDLE_RPS" -v br="$BUSY_RPS" -v n="$BUSY_NW" -v s="$WSECS" \
	-v pb="$PBUSY99" -v pr="$PBUSY_RPS" -v pn="$PBUSY_NW" 'BEGIN {
	printf "idle:    GET p99 %8.0f us, %6.0f req/s\n", i, ir
	printf "writing: GET p99 %8.0f us, %6.0f req/s (%d writes by one client in about %.1fs)\n", b, br, n, s + 0.3
	printf "         GET p99 %8.0f us, %6.0f req/s (%d writes by akctl processes, for information: %.2fx)\n", pb, pr, pn, pb / i
	printf "goal: busy p99 <= 2x idle p99: %.2fx %s\n", b / i, (b / i <= 2) ? "ok" : "MISS" }'
WSTALL=$(awk -v i="$IDLE99" -v b="$BUSY99" 'BEGIN { printf "%.2f", b / i }')
PSTALL=$(awk -v i="$IDLE99" -v b="$PBUSY99" 'BEGIN { printf "%.2f", b / i }')
fi

# --- 3. client process cost -----------------------------------------------------------------------
if part 3 && [ -f "$HERE/bench-client.sh" ]; then
	echo
	echo "== 3. client process cost (bench-client.sh) =="
	# It takes the build directory (akctl, akagent, akbench-spawn and akmkstore in their places).
	bash "$HERE/bench-client.sh" "$(dirname "$AKCTL")" ||
		echo "bench: bench-client.sh failed" >&2
fi

# --- 5. memory of the 100-profile agent (before the scale part replaces it) ------------------------
MEM_AK_RSS=$(kb "$AK_PID" VmRSS) MEM_AK_LCK=$(kb "$AK_PID" VmLck) MEM_SSH_RSS=$(kb "$SSH_PID" VmRSS)
MEM_ECHO_RSS=$(kb "$ECHO_PID" VmRSS)
"$AKCTL" lock >/dev/null
MEM_AK_RSS_L=$(kb "$AK_PID" VmRSS) MEM_AK_LCK_L=$(kb "$AK_PID" VmLck)

# --- 4. scale -------------------------------------------------------------------------------------
part 4 || SCALE=
# the secret of the adds (part 2 writes the same one)
printf 'sk-ant-api03-%s' "$(printf '%093d' 7 | tr 0-9 A-J)AA" >"$T/secret"
# Medians of REPS runs, in ms. unlock and get are akctl's whole run (process start included) beside
# /bin/true's; LIST is also timed at the agent alone (akbench, one client).
REPS=5
relock() { "$AKCTL" lock && "$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS"; }
lockonly() { "$AKCTL" lock; }
# rm takes generated profiles away and add puts them back, so the store never exceeds its size (100,000
# is the most a keystore holds).
rmone() { j=$((j + 1)); "$AKCTL" rm "$(printf 'p%05d' "$j")"; }
addone() { "$AKCTL" add "$(printf 'p%05d' "$j")" <"$T/secret"; j=$((j - 1)); }
echo
echo "== 4. scale (generated keystores, KDF insecure-test; medians, ms) =="
echo "goals at 10,000 profiles: unlock beyond the KDF < 50, list --json < 20, add/rm < 50, get < 1 beyond process start"
# akctl get beside /bin/true at each size: interleaved by akbench-spawn (fork, exec, wait; medians of
# rounds), so both see the same load; two medians taken minutes apart in this shell, each with a date(1)
# fork around it, moved by a millisecond from run to run. Without akbench-spawn, that is the fallback.
SPAWN=$(dirname "$AKBENCH")/akbench-spawn
get_beside_true() {
	local out
	if [ -x "$SPAWN" ]; then
		out=$("$SPAWN" -n 400 -r 10 -- /bin/true :: "$AKCTL" get "$1") || die "akbench-spawn failed"
		T_MS=$(awk '$1 == 0 { printf "%.2f", $2 / 1000 }' <<<"$out")
		G_MS=$(awk '$1 == 1 { printf "%.2f", $2 / 1000 }' <<<"$out")
	else
		REPS=21 med /bin/true
		T_MS=$MED
		REPS=21 med "$AKCTL" get "$1"
		G_MS=$MED
	fi
}
printf '%9s %9s %11s %10s %10s %9s %8s %8s %9s %9s %9s\n' profiles unlock unlock-lock list_agent list_json get get-true add rm RSS_KiB VmLck_KiB
declare -A SC
for n in $SCALE; do
	start_agent "$n"
	mid=$(printf 'p%05d' $((n / 2)))
	"$AKCTL" get "$mid" >/dev/null 2>&1 || mid=p00001
	# The unlock is the difference of two medians: more runs steady it (rm/add below take at most as
	# many profiles as the smallest store has, so they keep REPS).
	REPS=11 med relock
	u=$MED
	REPS=11 med lockonly
	l=$MED
	"$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS" >/dev/null
	set -- $("$AKBENCH" -s "$AKAGENT_SOCK" -t akagent-list -c 1 -d 0.5 -w 0) || die "akbench list failed"
	la=$(awk -v p="$4" 'BEGIN { printf "%.2f", p / 1000 }')
	med "$AKCTL" list --json
	lj=$MED
	get_beside_true "$mid"
	g=$G_MS t=$T_MS
	j=0
	med rmone
	rm_=$MED
	med addone
	a=$MED
	rss=$(kb "$AK_PID" VmRSS) lck=$(kb "$AK_PID" VmLck)
	SC[$n]="$u $l $la $lj $g $a $rm_ $rss $lck $t"
	awk -v n="$n" -v u="$u" -v l="$l" -v la="$la" -v lj="$lj" -v g="$g" -v t="$t" -v a="$a" \
	    -v r="$rm_" -v rss="$rss" -v lck="$lck" 'BEGIN {
		printf "%9d %9.2f %11.2f %10.2f %10.2f %9.2f %8.2f %8.2f %9.2f %9d %9d\n", n, u, u - l, la, lj, g, g - t, a, r, rss, lck }'
done
echo "(unlock = akctl lock + akctl unlock; unlock-lock = the unlock alone; list_agent = the agent's LIST p50 alone;"
echo " get-true = akctl get beyond /bin/true, the two interleaved at each size; add/rm = akctl add/rm through the agent,"
echo " fsync included)"
if [ -n "${SC[10000]:-}" ]; then
	set -- ${SC[10000]}
	awk -v u="$1" -v l="$2" -v lj="$4" -v g="$5" -v t="${10}" -v a="$6" -v r="$7" 'BEGIN {
		printf "goal at 10,000: unlock beyond the KDF %.1f ms (< 50) %s; list --json %.1f ms (< 20) %s;\n",
		    u - l, (u - l < 50) ? "ok" : "MISS", lj, (lj < 20) ? "ok" : "MISS"
		printf "                add %.1f ms, rm %.1f ms (< 50) %s; get %.2f ms beyond /bin/true (< 1) %s\n",
		    a, r, (a < 50 && r < 50) ? "ok" : "MISS", g - t, (g - t < 1) ? "ok" : "MISS" }'
fi

part 5 || exit 0
echo
echo "== 5. memory =="
printf 'akagent  (%d profiles, unlocked): VmRSS %s kB, VmLck %s kB\n' "$NPROF" "$MEM_AK_RSS" "$MEM_AK_LCK"
printf 'akagent after lock:               VmRSS %s kB, VmLck %s kB\n' "$MEM_AK_RSS_L" "$MEM_AK_LCK_L"
printf 'ssh-agent (1 ed25519 key):        VmRSS %s kB, VmLck 0 kB\n' "$MEM_SSH_RSS"
printf 'akbench-echo:                     VmRSS %s kB\n' "$MEM_ECHO_RSS"

# --- markdown -------------------------------------------------------------------------------------
[ -n "$MD" ] || exit 0
{
	echo "<!-- bench:begin (generated by tests/bench/bench.sh --markdown; do not edit by hand) -->"
	echo "Generated $(date -u +%Y-%m-%d) on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);"
	echo "best of $REPEAT runs of ${SECS}s per point."
	echo
	echo "### Requests per second (p99 in µs) at $NPROF profiles, beside ssh-agent and the echo ceiling"
	echo
	echo "| clients | GET | LIST | STATUS | mix 80:10:10 | ssh-agent | echo server | mix / ssh-agent |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for c in $CLIENTS; do
		row="| $c"
		for m in get list status mix; do
			if [ -n "${RPS[akagent-$m.$c]:-}" ]; then
				row+=$(awk -v a="${RPS[akagent-$m.$c]}" -v p="${P99[akagent-$m.$c]}" 'BEGIN { printf " | %.0f (%.0f)", a, p }')
			else
				row+=" | -"
			fi
		done
		row+=$(awk -v s="${RPS[ssh.$c]}" -v p="${P99[ssh.$c]}" -v e="${RPS[echo.$c]}" -v ep="${P99[echo.$c]}" \
		    -v a="${RPS[akagent-mix.$c]:-0}" 'BEGIN {
			printf " | %.0f (%.0f) | %.0f (%.0f) | %s |", s, p, e, ep, a ? sprintf("%.2fx", a / s) : "-" }')
		echo "$row"
	done
	echo
	echo "GET p99 while a client adds and removes profiles 20 times a second: ${WSTALL}x the idle GET p99 (goal ≤ 2x); with \`akctl add\`/\`rm\` processes as the writer: ${PSTALL}x (for information)."
	echo
	echo "### Scale (ms, medians; generated keystores, KDF insecure-test)"
	echo
	echo "| profiles | unlock | list (agent) | list --json | get | get beyond /bin/true | add | rm | agent RSS KiB | locked KiB |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for n in $SCALE; do
		set -- ${SC[$n]}
		awk -v n="$n" -v u="$1" -v l="$2" -v la="$3" -v lj="$4" -v g="$5" -v t="${10}" -v a="$6" -v r="$7" \
		    -v rss="$8" -v lck="$9" 'BEGIN {
			printf "| %d | %.1f | %.2f | %.1f | %.2f | %.2f | %.1f | %.1f | %d | %d |\n", n, u - l, la, lj, g, g - t, a, r, rss, lck }'
	done
	echo
	echo "ssh-agent for comparison: RSS $MEM_SSH_RSS KiB with one key, nothing locked; akagent with $NPROF profiles: RSS $MEM_AK_RSS KiB, $MEM_AK_LCK KiB locked ($MEM_AK_LCK_L KiB once locked)."
	echo "<!-- bench:end -->"
} >"$T/table.md"
awk -v tf="$T/table.md" '
	/^<!-- bench:begin/ { while ((getline l < tf) > 0) print l; skip = 1; next }
	/^<!-- bench:end -->/ { skip = 0; next }
	!skip { print }' "$MD" >"$T/md.new" && cat "$T/md.new" >"$MD"
echo "bench: tables written to $MD"
exit 0
