#!/bin/bash
# akctl exposure: a stored key in a running process's environment (akctl exec ... sleep), in tmux's
# global environment and in shell history is found, by place, variable and profile; a clean set-up
# reports nothing (exit 0); no secret in any output. Not parallel: it reads every process of this uid.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

two_keys_unlocked

trace "clean: exit 0, nothing printed"
expect_exit 0 "$AKCTL" --no-prompt exposure
[ -s "$OUT" ] && fail "clean set-up reported: $(cat "$OUT")"
no_value "$OUT" "$ERR"

trace "a running process holding the key (akctl exec production -- sleep)"
"$AKCTL" exec production -- sleep 300 &
SLEEP=$!
track_pid "$SLEEP"
for _ in $(seq 100); do
	[ "$(cat "/proc/$SLEEP/comm" 2>/dev/null)" = sleep ] && break
	sleep 0.1
done
[ "$(cat "/proc/$SLEEP/comm" 2>/dev/null)" = sleep ] || fail "sleep did not start"
expect_exit 1 "$AKCTL" --no-prompt exposure
no_value "$OUT" "$ERR"
grep -q "^process $SLEEP (sleep): ANTHROPIC_API_KEY: production ANTHROPIC_API_KEY (raw) fp:" "$OUT" ||
	fail "process not found: $(cat "$OUT")"
grep -q 'dev ANTHROPIC_API_KEY' "$OUT" && fail "the other key reported: $(cat "$OUT")"
expect_exit 1 "$AKCTL" --no-prompt exposure --json
no_value "$OUT" "$ERR"
"$PY" - "$OUT" "$SLEEP" <<'PY' || fail "json: $(cat "$OUT")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [r for r in rows if r.get("pid") == int(sys.argv[2])]
assert len(r) == 1, rows
r = r[0]
assert r["source"] == "process" and r["command"] == "sleep" and r["variable"] == "ANTHROPIC_API_KEY"
assert r["profiles"] == "production" and r["variant"] == "raw" and len(r["fingerprint"]) == 12
PY
kill "$SLEEP"
wait_gone "$SLEEP" 10 || fail "sleep did not exit"
wait "$SLEEP" 2>/dev/null
expect_exit 0 "$AKCTL" --no-prompt exposure

if command -v tmux >/dev/null; then
	trace "tmux's global environment (a private server)"
	export TMUX_TMPDIR="$T/tmux"
	mkdir -m 0700 "$TMUX_TMPDIR"
	unset TMUX
	tmux -f /dev/null new-session -d -s ak 'sleep 300' || fail "tmux new-session"
	TPID=$(tmux display-message -p '#{pid}')
	track_pid "$TPID"
	# set-environment takes the value as an argument: a made-up key in tmux's argv, test only.
	printf '%s' "$KEY2" > "$T/k2"
	tmux set-environment -g LEAKED_TOKEN "$(cat "$T/k2")"
	rm -f "$T/k2"
	expect_exit 1 "$AKCTL" --no-prompt exposure --no-history --no-agents
	no_value "$OUT" "$ERR"
	grep -q '^tmux global environment: LEAKED_TOKEN: dev ANTHROPIC_API_KEY (raw)' "$OUT" ||
		fail "tmux not found: $(cat "$OUT")"
	tmux kill-server
	wait_gone "$TPID" 10 || fail "tmux server did not exit"
	expect_exit 0 "$AKCTL" --no-prompt exposure
fi

trace "shell history and an AI transcript; --no-history/--no-agents skip them"
printf 'export ANTHROPIC_API_KEY=%s\n' "$KEY" > "$HOME/.bash_history"
mkdir -p "$HOME/.claude/projects/p"
printf '{"content":"ANTHROPIC_API_KEY=%s"}\n' "$KEY2" > "$HOME/.claude/projects/p/s.jsonl"
expect_exit 1 "$AKCTL" --no-prompt exposure
no_value "$OUT" "$ERR"
grep -q "^$HOME/.bash_history:1: production ANTHROPIC_API_KEY (raw)" "$OUT" || fail "history: $(cat "$OUT")"
grep -q "^$HOME/.claude/projects/p/s.jsonl:1: dev ANTHROPIC_API_KEY (raw)" "$OUT" ||
	fail "transcript: $(cat "$OUT")"
expect_exit 0 "$AKCTL" --no-prompt exposure --no-history --no-agents

trace "usage"
expect_exit 2 "$AKCTL" exposure extra
expect_exit 2 "$AKCTL" exposure --bogus
exit 0
