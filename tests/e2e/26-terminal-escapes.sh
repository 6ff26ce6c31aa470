#!/bin/bash
# Human-readable output never carries terminal escapes: show, list, status, import and error messages
# render C0 controls, DEL, ESC and C1 controls (raw bytes 0x80-0x9f and U+0080-U+009F) visibly, while
# get, env and exec still hand over the exact bytes.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# inert FILE WHAT: FILE holds no control byte but newline, no DEL, no C1 (raw or as UTF-8).
inert() {
	"$PY" - "$1" <<'PY' || fail "$2: a raw control byte reached the terminal"
import sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8", "surrogateescape")
bad = [hex(ord(ch)) for ch in text
       if (ord(ch) < 0x20 and ch != "\n") or ord(ch) == 0x7f or 0x80 <= ord(ch) <= 0x9f
       or 0xdc80 <= ord(ch) <= 0xdc9f]
if bad:
    print("control characters:", bad[:10], file=sys.stderr)
    sys.exit(1)
PY
}

OSC52=$(printf '\033]52;c;cHduZWQ=\007')
CLEAR=$(printf '\033[2J\033[H')
FAKE=$(printf 'x\rprofile:     fake\nvariables:   FAKE=1')
C1=$(printf 'a\302\233%s31mb\2332Jc\302\205d\177e' '')
ALL="$OSC52$CLEAR$FAKE$C1"
printf '%s' "$ALL" > "$T/all.want"

init_store
start_agent
unlock
add_profile evil "$(fake_key)" --set "OSC=$OSC52" --set "CLR=$CLEAR" --set "FAKE=$FAKE" --set "C1=$C1" \
	--description "$ALL" --provider "$(printf 'gen\033[31meric')" --var EVIL_KEY

trace "show, list, list --json render the values"
expect_exit 0 "$AKCTL" show evil
inert "$OUT" "show"
grep -qF 'OSC=\x1b]52;c;cHduZWQ=\x07' "$OUT" || fail "show: OSC 52 not rendered as \\x1b...\\x07"
grep -qF 'C1=a\u009b31mb\x9b2Jc\u0085d\x7fe' "$OUT" || fail "show: C1 controls not rendered"
grep -qF 'FAKE=x\rprofile:     fake\nvariables:   FAKE=1' "$OUT" || fail "show: CR/LF not rendered"
expect_exit 0 "$AKCTL" list
inert "$OUT" "list"
grep -qF 'gen\x1b[31meric' "$OUT" || fail "list: provider not rendered"
expect_exit 0 "$AKCTL" list --json
inert "$OUT" "list --json"
"$PY" - "$OUT" "$T/all.want" <<'PY' || fail "list --json: the description is not the stored text"
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8", errors="surrogateescape"))
# JSON cannot carry the stray byte 0x9b: it arrives as its Latin-1 reading, U+009B.
want = open(sys.argv[2], "rb").read().decode("utf-8", "surrogateescape").replace("\udc9b", "\x9b")
assert d[0]["description"] == want, (d[0]["description"], want)
PY

trace "the exact bytes still come from get and exec"
expect_exit 0 "$AKCTL" get evil C1
assert_bytes "$OUT" "$C1"
expect_exit 0 "$AKCTL" exec evil -- printenv FAKE
assert_bytes "$OUT" "$FAKE
"

trace "status: a keystore path and a socket path with escapes"
mkdir -p "$T/$CLEAR"
AKCTL_KEYSTORE="$T/$CLEAR/ks" expect_exit 3 "$AKCTL" status
inert "$OUT" "status (keystore path)"
grep -qF '\x1b[2J' "$OUT" || fail "status: path not rendered"
AKAGENT_SOCK="$T/$OSC52" expect_exit 3 "$AKCTL" status
inert "$OUT" "status (socket path)"

trace "import: values, names and file names in notes, dry runs and errors"
C1U=$(printf 'a\302\233%s31mb\302\205d\177e' '')	# a .env must be UTF-8: no stray 0x9b here
printf 'ANTHROPIC_API_KEY=%s\nOSC="%s"\nC1=%s\n' "$(fake_key)" "$OSC52" "$C1U" > "$T/$CLEAR.env"
expect_exit 0 "$AKCTL" import --dry-run "$T/$CLEAR.env" imp
inert "$OUT" "import --dry-run stdout"
inert "$ERR" "import --dry-run stderr"
grep -qF 'C1=a\u009b31mb' "$OUT" || fail "import --dry-run: value not rendered"
printf 'ANTHROPIC_API_KEY=%s\n\033]0;x\007=1\n' "$(fake_key)" > "$T/badname.env"
expect_exit 1 "$AKCTL" import "$T/badname.env" imp2
inert "$ERR" "import error (bad name)"
grep -qF "'\\x1b]0;x\\x07' is not a variable name" "$ERR" || fail "import: bad name not rendered"
expect_exit 1 "$AKCTL" import "$T/$OSC52.env" imp3
inert "$ERR" "import error (missing file)"

trace "error messages render arguments"
expect_exit 1 "$AKCTL" exec --env-file "$T/$OSC52" -- true
inert "$ERR" "exec error (file name)"
expect_exit 2 "$AKCTL" list "$CLEAR"
inert "$ERR" "usage error"
exit 0
