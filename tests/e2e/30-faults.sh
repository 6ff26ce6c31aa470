#!/bin/bash
# Fault injection on every write path: add and rm through the agent (the shim preloaded into the agent)
# and on the file directly, passwd, init, and import of a .env (through the agent, directly, with
# --replace: faults in the keystore writes and in the rewrite of the .env itself), and pull of a profile
# imported from a (fake) Vault whose value was rotated (through the agent: pull has no direct-file path).
# For each operation the shim fails
# the 1st, 2nd, ... matching call (open, mkstemp, write: ENOSPC / short / short-then-ENOSPC, fchmod, fsync,
# close, rename, link, unlink, flock, read) until the operation no longer reaches that call. Each case:
#   - failure reported: exit status 1..125, one "akctl: ..." line on stderr, the keystore file byte for
#     byte unchanged, no temp file left, the agent alive and still serving the old content from memory;
#   - success reported (a fault the code may absorb, e.g. a short write): the file opens to the new state.
# Then a full disk (a 64 KiB tmpfs, root only) and 50 kill -9 crash trials (tests/faults/crashloop.py).
# Prints "fault cases: N run, N survived". Env: FAULT_VERBOSE=1 prints every case.
#   usage: 30-faults.sh [PART...]   PART: agent (add, rm, import and pull through the faulty agent),
#   direct (add, rm, passwd, init on the file), import (import, --replace, the .env rewrite), crash (full
#   disk and kill -9 trials); default all. meson runs the four parts as four tests, at the same time.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SHIM=${AKFAULTSHIM:-$(dirname "$AKAGENT")/tests/e2e/akfaultshim.so}
# In the sanitizer build ASan's runtime must be the first library loaded: preload it ahead of the shim
# (the shim forwards each call to the next definition, so ASan still sees every call, and the shim sees
# the calls ASan's interceptors pass on).
PRELOAD=$SHIM
[ -n "$AKT_ASAN_RT" ] && PRELOAD="$AKT_ASAN_RT:$SHIM"
[ -f "$SHIM" ] || skip "fault shim not built ($SHIM)"
PARTS=" ${*:-agent direct import crash} "
# part NAME: this run includes part NAME.
part() {
	case $PARTS in
	*" $1 "*) return 0 ;;
	esac
	return 1
}
CRASHLOOP="$TESTS_DIR/faults/crashloop.py"
STORE="$XDG_DATA_HOME/akagent/keystore"
DIR=$(dirname "$STORE")
NEWPASS="new-$PASS"
KA=$(fake_key) KB=$(fake_key) KC=$(fake_key) KNEW=$(fake_key)
RUN=0 SURVIVED=0
ENVDIR="$T/envdir"
ENVF="$ENVDIR/app.env"
mkdir -m 0700 "$ENVDIR"
printf 'ANTHROPIC_API_KEY=%s\nOTHER=1\n' "$KNEW" > "$T/import.env.orig"
cp "$T/import.env.orig" "$ENVF"
declare -a BAD=()
# The store and agent listing a case starts from (the pull sweep swaps in its own).
REF_IMG="$T/ref.img" REF_LIST="$T/ref.list"

# ---------------------------------------------------------------------------------------------------
trace "setup: a keystore with three profiles, a faulty agent F (shim preloaded) and a clean verifier V"
init_store
add_profile alpha "$KA" --set ANTHROPIC_MODEL=m-a --description "first"
add_profile beta "$KB" --set X_ONE=1 --set X_TWO='two words'
add_profile gamma "$KC" --var OPENAI_API_KEY --provider openai
cp "$STORE" "$T/ref.img"

# no_uses FILE: drop list --json's use counts (the agent's usage log, not keystore state) from FILE.
no_uses() {
	sed -i -E 's/,"uses":[0-9]+(,"last_use":"[^"]*")?//g' "$1"
}

# A clean agent to open whatever is on disk: snapshot PASSPHRASE OUTFILE prints list --json + env json.
export AKAGENT_SOCK="$T/v.sock"
start_agent -a "$T/v.sock"
V_PID=$AKAGENT_PID
snapshot() {
	local pass=$1 out=$2 n
	AKAGENT_SOCK="$T/v.sock" "$AKCTL" lock >/dev/null 2>&1
	if ! AKAGENT_SOCK="$T/v.sock" "$AKCTL" --passphrase-fd 3 unlock 3<<<"$pass" >/dev/null 2>"$T/snap.err"; then
		echo "UNOPENABLE: $(cat "$T/snap.err")" > "$out"
		return 1
	fi
	AKAGENT_SOCK="$T/v.sock" "$AKCTL" list --json > "$out" 2>&1
	for n in $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d["profiles"] if isinstance(d,dict) else d; print(" ".join(r["name"] for r in d))' "$out"); do
		AKAGENT_SOCK="$T/v.sock" "$AKCTL" env "$n" --shell json >> "$out" 2>&1
	done
	AKAGENT_SOCK="$T/v.sock" "$AKCTL" lock >/dev/null 2>&1
	return 0
}
snapshot "$PASS" "$T/ref.snap" || fail "reference store does not open"
grep -qF "$KB" "$T/ref.snap" || fail "snapshot does not show the secrets (cannot compare contents)"

# F: the shim reads the fault from $T/arm each time that file appears, and counts only while it exists.
F_SOCK="$T/f.sock"
start_fault_agent() {
	local ex
	ex=$(LD_PRELOAD="$PRELOAD" AK_FAULT_ARM="$T/arm" AK_FAULT_PATH="$DIR" AK_FAULT_LOG="$T/fired" \
		"$AKAGENT" -s -a "$F_SOCK" 2>"$T/f-start.err") ||
		fail "faulty agent did not start: $(head -c 2000 "$T/f-start.err")"
	eval "$ex"
	F_PID=$AKAGENT_PID
	track_pid "$F_PID"
}
if part agent; then
	start_fault_agent
	AKAGENT_SOCK="$F_SOCK" unlock
	AKAGENT_SOCK="$F_SOCK" expect_exit 0 "$AKCTL" list --json
	no_uses "$OUT"
	cp "$OUT" "$T/ref.list"
fi

# ---------------------------------------------------------------------------------------------------
# expected_new KIND: write the state a successful KIND leaves, as a check on a snapshot (exit 0 = matches)
check_new() {
	local kind=$1 snap=$2
	case $kind in
	add-*|import*) grep -qF "$KNEW" "$snap" && grep -q '"newprof"' "$snap" && grep -qF "$KA" "$snap" ;;
	rm-*) ! grep -q '"beta"' "$snap" && ! grep -qF "$KB" "$snap" && grep -qF "$KA" "$snap" ;;
	pull-*) grep -q '"cloudp"' "$snap" && grep -qF "$KNEW" "$snap" && ! grep -qF "$KOLD" "$snap" &&
		grep -qF "$KA" "$snap" && grep -qF "$KB" "$snap" ;;
	passwd) cmp -s <(sed 's/"created":[0-9]*//' "$snap") <(sed 's/"created":[0-9]*//' "$T/ref.snap") ;;
	esac
}

# case KIND SPEC: run one write with one fault. Returns 1 when the fault was not reached (sweep ends).
fault_case() {
	local kind=$1 spec=$2 fired rc lines state target="$STORE" leftovers fpath=$DIR envstate=""
	cp "$REF_IMG" "$STORE"
	cp "$T/import.env.orig" "$ENVF"
	rm -f "$ENVDIR"/*.tmp* "$ENVDIR"/.*.tmp* 2>/dev/null
	rm -f "$T/fired" "$T/arm" "$DIR"/*.tmp.* "$DIR/init-ks" "$DIR"/init-ks.*
	case $kind in
	*-agent)
		# resync F with the restored file (a previous case may have changed it)
		AKAGENT_SOCK="$F_SOCK" "$AKCTL" lock >/dev/null 2>&1
		AKAGENT_SOCK="$F_SOCK" "$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS" >/dev/null 2>"$T/f-unlock.err" ||
			fail "F does not unlock the restored store (before $kind $spec): $(cat "$T/f-unlock.err")"
		printf '%s\n' "$spec" > "$T/arm"
		;;
	esac
	printf '%s' "$KNEW" > "$T/new-secret"
	case $kind in
	add-agent) AKAGENT_SOCK="$F_SOCK" run "$AKCTL" add newprof --set NV=1 < "$T/new-secret" ;;
	import-agent) AKAGENT_SOCK="$F_SOCK" run "$AKCTL" import "$ENVF" newprof ;;
	rm-agent) AKAGENT_SOCK="$F_SOCK" run "$AKCTL" rm beta ;;
	pull-agent) AKAGENT_SOCK="$F_SOCK" run "$AKCTL" pull cloudp ;;
	add-direct|rm-direct|passwd|init|import*)
		local -a cmd
		case $kind in
		add-direct) cmd=(--passphrase-fd 3 add newprof --set NV=1) ;;
		rm-direct) cmd=(--passphrase-fd 3 rm beta) ;;
		passwd) cmd=(--passphrase-fd 3 passwd) ;;
		init) cmd=(-f "$DIR/init-ks" --passphrase-fd 3 init --kdf insecure-test); target="$DIR/init-ks" ;;
		import) cmd=(--passphrase-fd 3 import "$ENVF" newprof) ;;
		import-replace) cmd=(--passphrase-fd 3 import "$ENVF" newprof --replace) ;;
		import-replace-envfile) cmd=(--passphrase-fd 3 import "$ENVF" newprof --replace); fpath=$ENVDIR ;;
		esac
		AKAGENT_SOCK="$T/nowhere.sock" LD_PRELOAD="$PRELOAD" AK_FAULT="$spec" AK_FAULT_PATH="$fpath" \
			AK_FAULT_LOG="$T/fired" run "$AKCTL" "${cmd[@]}" < "$T/new-secret" 3< <(
				printf '%s\n' "$PASS"
				[ "$kind" = passwd ] && printf '%s\n' "$NEWPASS"
			)
		;;
	esac
	rm -f "$T/arm"
	fired=0
	[ -s "$T/fired" ] && fired=1
	if [ "$fired" = 0 ]; then
		[ "$RC" = 0 ] || fail "$kind without a fault ($spec not reached) failed: $(cat "$ERR")"
		return 1
	fi
	RUN=$((RUN + 1))
	rc=$RC
	# one "akctl: ..." line (init's insecure-KDF warning aside)
	lines=$(grep -v 'warning: --kdf insecure-test' "$ERR" | grep -c .)
	leftovers=$(find "$DIR" "$ENVDIR" -maxdepth 1 -name '*.tmp*' | wc -l)
	case $kind in
	import-replace*)
		# the .env is either untouched or rewritten to hold no secret any more
		if cmp -s "$ENVF" "$T/import.env.orig"; then envstate=old
		elif ! grep -qF "$KNEW" "$ENVF" && [ -s "$ENVF" ]; then envstate=new
		else envstate=other; fi
		;;
	esac
	if [ "$kind" = init ]; then
		if [ -e "$target" ]; then state=new; else state=old; fi
	elif cmp -s "$REF_IMG" "$STORE"; then
		state=old
	else
		state=other
		if [ "$kind" = passwd ]; then
			snapshot "$NEWPASS" "$T/case.snap" && check_new passwd "$T/case.snap" && state=new
		else
			snapshot "$PASS" "$T/case.snap" && check_new "$kind" "$T/case.snap" && state=new
		fi
	fi
	local verdict=ok why=""
	if [ "$kind" = import-replace-envfile ] && [ "$rc" -ne 0 ]; then
		# a failure rewriting the .env after the profile was stored: the .env must be untouched; the
		# keystore may hold the new profile (nothing is lost either way), and the error must say so
		[ "$state" = other ] && { verdict=BAD; why="keystore neither old nor new"; }
		[ "$envstate" = old ] || { verdict=BAD; why="$why; the .env is $envstate"; }
		state="$state+env-$envstate"
		[ "$lines" -ge 1 ] && grep -q '^akctl: ' "$ERR" || { verdict=BAD; why="$why; no akctl: error line"; }
	elif [ "$rc" -ne 0 ]; then
		[ "$rc" -lt 126 ] || { verdict=BAD; why="died (status $rc)"; }
		[ "$state" = old ] || { verdict=BAD; why="$why; failed (exit $rc) but the keystore changed ($state)"; }
		[ -z "$envstate" ] || [ "$envstate" = old ] || { verdict=BAD; why="$why; failed but the .env is $envstate"; }
		[ "$lines" = 1 ] && grep -q '^akctl: ' "$ERR" || { verdict=BAD; why="$why; error is not one akctl: line"; }
	else
		[ "$state" = new ] || { verdict=BAD; why="$why; exit 0 but the keystore is $state"; }
		[ -z "$envstate" ] || [ "$envstate" = new ] || { verdict=BAD; why="$why; exit 0 but the .env is $envstate"; }
	fi
	[ "$leftovers" = 0 ] || { verdict=BAD; why="$why; $leftovers temp file(s) left"; }
	case $kind in
	*-agent)
		if ! kill -0 "$F_PID" 2>/dev/null; then
			verdict=BAD why="$why; the agent died"
			start_fault_agent
		else
			# what the agent serves from memory must match the file
			AKAGENT_SOCK="$F_SOCK" run "$AKCTL" list --json
			no_uses "$OUT"
			if [ "$state" = old ] && ! cmp -s "$OUT" "$REF_LIST"; then
				verdict=BAD why="$why; the agent's memory no longer matches the (unchanged) file"
			fi
			if [ "$state" != old ] && cmp -s "$OUT" "$REF_LIST"; then
				verdict=BAD why="$why; the file changed but the agent still serves the old store"
			fi
		fi
		;;
	esac
	if [ "$verdict" = ok ]; then
		SURVIVED=$((SURVIVED + 1))
	else
		BAD+=("$kind $spec: exit $rc, state $state:$why [$(head -c 200 "$ERR" | tr '\n' ' ')]")
	fi
	[ "${FAULT_VERBOSE:-0}" = 1 ] &&
		echo "  $kind $spec: exit $rc, $state, $verdict$why :: $(head -1 "$ERR")" >&2
	return 0
}

# sweep KIND: every op, every occurrence, until the op is not reached any more.
SPECS="open:EACCES mkstemp:ENOSPC write:ENOSPC write:short write:shortspc write:EIO fchmod:EPERM fsync:EIO
	close:EIO rename:EIO link:EPERM link:EIO unlink:EIO flock:EIO read:EIO"
sweep() {
	local kind=$1 s op what n before=$RUN
	for s in $SPECS; do
		op=${s%%:*} what=${s#*:}
		for n in 1 2 3 4 5 6 7 8; do
			fault_case "$kind" "$op:$n:$what" || break
		done
	done
	trace "$kind: $((RUN - before)) fault cases"
}

if part agent; then
	sweep add-agent
	sweep rm-agent
fi
if part direct; then
	for kind in add-direct rm-direct passwd init; do
		sweep "$kind"
	done
fi

# import / --replace: only if akctl import works on a .env file here.
cp "$T/ref.img" "$STORE"
AKAGENT_SOCK="$T/nowhere.sock" run "$AKCTL" --passphrase-fd 3 import "$ENVF" newprof 3<<<"$PASS"
[ "$RC" = 0 ] || fail "akctl import of a .env fails without a fault: $(head -1 "$ERR")"
part agent && sweep import-agent
if part import; then
	sweep import
	sweep import-replace
	sweep import-replace-envfile
fi
cp "$T/ref.img" "$STORE"

# pull: a profile imported from the fake Vault (tests/fake/cloud_server.py), then rotated there, so each
# `akctl pull cloudp` has a new value to store through F. The fake re-reads its state on every request.
if ! part agent; then
	:
elif "$PY" -c 'import botocore.auth' 2>/dev/null; then
	KOLD=$(fake_key)
	VTOK="hvs.$(rand_word)"
	printf '{"vault": {"token": "%s", "secrets": {"secret/team/anthropic": {"api_key": "%s"}}}}\n' \
		"$VTOK" "$KOLD" > "$T/cloud.json"
	"$PY" "$TESTS_DIR/fake/cloud_server.py" --state "$T/cloud.json" > "$T/cloud.port" 2> "$T/cloud.err" &
	CLOUD_PID=$!
	track_pid "$CLOUD_PID"
	for _ in $(seq 50); do
		[ -s "$T/cloud.port" ] && break
		sleep 0.1
	done
	[ -s "$T/cloud.port" ] || fail "the fake cloud server did not start: $(cat "$T/cloud.err")"
	unset VAULT_NAMESPACE
	VAULT_ADDR="http://127.0.0.1:$(head -n1 "$T/cloud.port")/vault" VAULT_TOKEN="$VTOK"
	export VAULT_ADDR VAULT_TOKEN
	# F may hold an older store than the file a previous case left: reopen the restored reference
	AKAGENT_SOCK="$F_SOCK" "$AKCTL" lock >/dev/null 2>&1
	AKAGENT_SOCK="$F_SOCK" expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock 3<<<"$PASS"
	AKAGENT_SOCK="$F_SOCK" expect_exit 0 "$AKCTL" import 'vault://secret/team/anthropic#api_key' cloudp
	AKAGENT_SOCK="$F_SOCK" expect_exit 0 "$AKCTL" get cloudp
	assert_bytes "$OUT" "$KOLD"
	cp "$STORE" "$T/ref-pull.img"
	AKAGENT_SOCK="$F_SOCK" expect_exit 0 "$AKCTL" list --json
	no_uses "$OUT"
	cp "$OUT" "$T/ref-pull.list"
	"$PY" - "$T/cloud.json" "$KNEW" <<'PYEOF' || fail "could not rotate the value in the fake"
import json, sys
S = json.load(open(sys.argv[1]))
S["vault"]["secrets"]["secret/team/anthropic"]["api_key"] = sys.argv[2]
json.dump(S, open(sys.argv[1], "w"))
PYEOF
	REF_IMG="$T/ref-pull.img" REF_LIST="$T/ref-pull.list"
	sweep pull-agent
	REF_IMG="$T/ref.img" REF_LIST="$T/ref.list"
	kill -0 "$CLOUD_PID" 2>/dev/null || fail "the fake cloud server died: $(cat "$T/cloud.err")"
	[ -s "$T/cloud.err" ] && fail "the fake cloud server printed errors: $(head -c 2000 "$T/cloud.err")"
	unset VAULT_ADDR VAULT_TOKEN
	cp "$T/ref.img" "$STORE"
else
	trace "pull: python3-botocore (needed by the fake cloud server) is not installed for $PY: not swept"
fi

# ---------------------------------------------------------------------------------------------------
part crash && trace "full disk: the keystore on a 64 KiB tmpfs"
disk_case() {
	local label=$1 rc
	RUN=$((RUN + 1))
	rc=$RC
	if [ "$rc" -ne 0 ] && [ "$rc" -lt 126 ] && cmp -s "$T/disk.ref" "$FSTORE" &&
		[ "$(grep -c . "$ERR")" = 1 ] && grep -q '^akctl: .*no space left on device' "$ERR" &&
		[ "$(find "$MNT" -maxdepth 2 -name '*.tmp.*' | wc -l)" = 0 ]; then
		SURVIVED=$((SURVIVED + 1))
		trace "  $label: exit $rc, unchanged: $(cat "$ERR")"
	else
		BAD+=("full disk $label: exit $rc [$(head -c 200 "$ERR" | tr '\n' ' ')]")
	fi
}
MNT="$T/mnt"
mkdir -p "$MNT"
if ! part crash; then
	:
elif am_root && mount -t tmpfs -o size=64k,mode=0700 akfaults "$MNT" 2>/dev/null; then
	FSTORE="$MNT/ak/keystore"
	mkdir -m 0700 "$MNT/ak"
	expect_exit 0 "$AKCTL" -f "$FSTORE" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS"
	for i in 1 2 3; do
		printf '%s' "$(fake_key)" > "$T/s"
		expect_exit 0 "$AKCTL" -f "$FSTORE" --passphrase-fd 3 add "d$i" --set "V=$(head -c 3000 /dev/urandom | base64 -w0)" \
			< "$T/s" 3<<<"$PASS"
	done
	# fill the disk
	dd if=/dev/zero of="$MNT/filler" bs=1k 2>/dev/null
	sync
	cp "$FSTORE" "$T/disk.ref"
	printf '%s' "$KNEW" > "$T/s"
	AKAGENT_SOCK="$T/nowhere.sock" run "$AKCTL" -f "$FSTORE" --passphrase-fd 3 add full1 < "$T/s" 3<<<"$PASS"
	disk_case "direct add"
	AKAGENT_SOCK="$T/nowhere.sock" run "$AKCTL" -f "$FSTORE" --passphrase-fd 3 rm d1 3<<<"$PASS"
	disk_case "direct rm"
	AKAGENT_SOCK="$T/nowhere.sock" run "$AKCTL" -f "$FSTORE" --passphrase-fd 3 passwd 3< <(printf '%s\n%s\n' "$PASS" "$NEWPASS")
	disk_case "passwd"
	# half a keystore's worth of room: the temp file is partly written, then ENOSPC
	rm -f "$MNT/filler"
	dd if=/dev/zero of="$MNT/filler" bs=1k count=$((64 - 8 - $(du -k "$FSTORE" | cut -f1) - $(du -k "$FSTORE" | cut -f1) / 2)) 2>/dev/null
	dd if=/dev/zero of="$MNT/filler2" bs=1k 2>/dev/null	# whatever is left, but keep ~half a store free
	rm -f "$MNT/filler2"
	dd if=/dev/zero of="$MNT/filler2" bs=1k count=$(( $(df -k --output=avail "$MNT" | tail -1) - $(du -k "$FSTORE" | cut -f1) / 2 )) 2>/dev/null
	cp "$FSTORE" "$T/disk.ref"
	AKAGENT_SOCK="$T/nowhere.sock" run "$AKCTL" -f "$FSTORE" --passphrase-fd 3 add full2 < "$T/s" 3<<<"$PASS"
	disk_case "direct add, half a store free"
	# through an agent serving that store
	ex=$("$AKAGENT" -s -a "$T/d.sock" -f "$FSTORE") || fail "agent on tmpfs store"
	eval "$ex"
	unset AKCTL_KEYSTORE	# exported with -f; the cases below name their store, later ones the default
	track_pid "$AKAGENT_PID"
	AKAGENT_SOCK="$T/d.sock" expect_exit 0 "$AKCTL" -f "$FSTORE" --passphrase-fd 3 unlock 3<<<"$PASS"
	AKAGENT_SOCK="$T/d.sock" run "$AKCTL" -f "$FSTORE" add full3 < "$T/s"
	disk_case "agent add"
	AKAGENT_SOCK="$T/d.sock" run "$AKCTL" -f "$FSTORE" rm d2
	disk_case "agent rm"
	AKAGENT_SOCK="$T/d.sock" expect_exit 0 "$AKCTL" -f "$FSTORE" get d2
	kill -0 "$AKAGENT_PID" || fail "agent died on a full disk"
	# room again: writes work
	rm -f "$MNT/filler" "$MNT/filler2"
	AKAGENT_SOCK="$T/d.sock" expect_exit 0 "$AKCTL" -f "$FSTORE" add full4 < "$T/s"
	AKAGENT_SOCK="$T/d.sock" expect_exit 0 "$AKCTL" -f "$FSTORE" get full4
	assert_bytes "$OUT" "$KNEW"
	kill -TERM "$AKAGENT_PID"
	wait_gone "$AKAGENT_PID" 5
	umount "$MNT" || umount -l "$MNT"
else
	trace "full disk: skipped (not root, or mount -t tmpfs not permitted here)"
fi

# ---------------------------------------------------------------------------------------------------
if part crash; then
	trace "crash consistency: ${CRASH_TRIALS:-50} writers (agent and direct, add and rm) killed with SIGKILL"
	cp "$T/ref.img" "$STORE"
	if "$PY" "$CRASHLOOP" --akagent "$AKAGENT" --akctl "$AKCTL" --store "$STORE" --trials "${CRASH_TRIALS:-50}" \
		--work "$T/crash" 3<<<"$PASS" > "$T/crash.out" 2>&1; then
		trace "crash: $(tail -1 "$T/crash.out")"
	else
		cat "$T/crash.out" >&2
		BAD+=("crash consistency: $(tail -1 "$T/crash.out")")
	fi
fi

# ---------------------------------------------------------------------------------------------------
echo "fault cases: $RUN run, $SURVIVED survived" >&2
kill -0 "$V_PID" || fail "the verifier agent died"
if [ ${#BAD[@]} -gt 0 ]; then
	printf '  NOT SURVIVED: %s\n' "${BAD[@]}" >&2
	fail "${#BAD[@]} fault case(s) not survived"
fi
trace ok
