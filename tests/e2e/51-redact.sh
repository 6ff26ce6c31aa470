#!/bin/bash
# akctl redact and exec --redact: every variant split at every byte boundary with pauses, invalid UTF-8
# through unchanged, stdout and stderr both filtered, and a terminal kept for the command.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
init_store
start_agent
unlock
add_profile production "$KEY"

trace "redact: a line, invalid UTF-8, a public prefix alone"
printf 'a %s b\n\xff\xfe sk-ant-api03- x\n' "$KEY" > "$T/in"
expect_exit 0 "$AKCTL" redact < "$T/in"
printf 'a [ak:production] b\n\xff\xfe sk-ant-api03- x\n' > "$T/want"
cmp -s "$OUT" "$T/want" || fail "redact output: $(od -c "$OUT" | head)"

trace "split fuzz: every variant at every boundary (with pauses)"
expect_exit 0 "$PY" "$TESTS_DIR/e2e/redact_fuzz.py" "$AKCTL" "$KEY" production 9000 300 "$RANDOM"
grep -q '^ok: 9000 cases' "$OUT" || fail "fuzz: $(cat "$OUT" "$ERR")"

trace "exec --redact without a terminal: stdout and stderr, interleaved, exit status kept"
expect_exit 3 "$AKCTL" exec --redact production -- sh -c \
	'k=$ANTHROPIC_API_KEY; printf "o1 %.20s" "$k"; printf "e1 %.30s" "$k" >&2; sleep 0.1;
	 printf "%s o2\n" "${k#????????????????????}"; printf "%s e2\n" "${k#??????????????????????????????}" >&2;
	 exit 3'
printf 'o1 [ak:production] o2\n' > "$T/want"
cmp -s "$OUT" "$T/want" || fail "stdout: $(cat "$OUT")"
printf 'e1 [ak:production] e2\n' > "$T/want"
cmp -s "$ERR" "$T/want" || fail "stderr: $(cat "$ERR")"

trace "exec --redact on a terminal: the command has a tty of the right size"
cat > "$T/ptyrun.py" <<'PY'
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "exec", "--redact", "production", "--", "sh", "-c",
             'tty; stty size; printf "%s\\n" "$ANTHROPIC_API_KEY"'])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 101, 0, 0))
out = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(st))
PY
expect_exit 0 "$PY" "$T/ptyrun.py" "$AKCTL"
tr -d '\r' < "$OUT" > "$T/pty.out"
grep -q '^/dev/pts/[0-9]*$' "$T/pty.out" || fail "no tty in the child: $(cat "$T/pty.out")"
grep -q '^37 101$' "$T/pty.out" || fail "window size not passed: $(cat "$T/pty.out")"
grep -qx "\[ak:production\]" "$T/pty.out" || fail "key not redacted on the pty: $(cat "$T/pty.out")"
assert_no_secret "$T/pty.out" "${KEY:13:40}"

trace "exec --redact on a terminal: a resize, Ctrl-C and raw mode reach the command"
# The command prints "ready" once it is set up; then the terminal is resized, or bytes are typed.
PTY=("$PY" "$TESTS_DIR/pty_run.py" --timeout 60)
# A resize: akctl passes the new size on, and the command gets SIGWINCH.
expect_exit 0 "${PTY[@]}" --expect ready --resize 50x132 -- "$AKCTL" exec --redact production -- sh -c \
	'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done'
tr -d '\r' < "$OUT" | grep -qx '50 132' || fail "resize not passed on: $(cat "$OUT")"
# Ctrl-C typed: the command's terminal turns it into SIGINT for the command, not for akctl.
expect_exit 7 "${PTY[@]}" --expect ready --send-raw '\x03' -- "$AKCTL" exec --redact production -- sh -c \
	'trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 0.05; done'
tr -d '\r' < "$OUT" | grep -q 'got-int$' || fail "Ctrl-C did not reach the command: $(cat "$OUT")"
# Raw mode (as an editor sets it): every byte typed arrives as it is, Ctrl-C included.
expect_exit 0 "${PTY[@]}" --expect ready --send-raw 'x\x03y' -- "$AKCTL" exec --redact production -- sh -c \
	'stty raw -echo; echo ready; v=$(head -c 3 | od -An -c | tr -s " "); stty sane; echo "got:$v"'
tr -d '\r' < "$OUT" | grep -qx 'got: x 003 y' || fail "raw mode bytes: $(cat "$OUT")"
exit 0
