# med.sh - sourced by the bench and stress scripts (which define die, T and REPS).
ns() { date +%s%N; }
# wait_sock PATH: 0 once PATH is a socket (up to 5 s).
wait_sock() {
	local i
	for i in $(seq 1 500); do
		[ -S "$1" ] && return 0
		sleep 0.01
	done
	return 1
}
# med CMD...: runs CMD REPS times in this shell (so CMD may keep state) and sets MED to the median (ms).
med() {
	local i t0 t1 ts=()
	for i in $(seq "$REPS"); do
		t0=$(ns)
		"$@" >/dev/null 2>"$T/err" || die "'$*' failed: $(cat "$T/err")"
		t1=$(ns)
		ts+=($((t1 - t0)))
	done
	MED=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1e6}')
}
