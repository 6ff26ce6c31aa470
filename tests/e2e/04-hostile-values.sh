#!/bin/bash
# A value with ' " $ ` \ a newline, globs, a tab, '!' and UTF-8, as the secret and as a --set value,
# arrives byte for byte in bash, dash, zsh, fish and tcsh, through exec, get and json.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# Both values end in a non-newline byte (add strips one trailing newline from the secret).
SECRET=$(printf "a'b\"c\$d\`e\\\\f\ng !h%%i\tj ~k *l \$(id) é'\\\\'z")
PLAIN=$(printf "%s\n--\\\\\n\$HOME\"'\`'\"x" "$SECRET")
printf '%s' "$SECRET" > "$T/secret.want"
printf '%s\n' "$SECRET" > "$T/secret.wantnl"
printf '%s\n' "$PLAIN" > "$T/plain.wantnl"
grep -q "'" "$T/secret.want" && grep -q '"' "$T/secret.want" && grep -q '\$' "$T/secret.want" &&
	grep -q '`' "$T/secret.want" && grep -qF '\' "$T/secret.want" &&
	[ "$(wc -l < "$T/secret.want")" = 1 ] || fail "test bug: the hostile value lacks a character"

init_store
start_agent
unlock
expect_exit 0 "$AKCTL" add hostile --set "HOSTILE=$PLAIN" < "$T/secret.want"
export T AKCTL

trace "get and exec"
expect_exit 0 "$AKCTL" get hostile
cmp "$OUT" "$T/secret.want" || fail "get: bytes differ"
expect_exit 0 "$AKCTL" get hostile HOSTILE
assert_bytes "$OUT" "$PLAIN"
expect_exit 0 "$AKCTL" exec hostile -- printenv ANTHROPIC_API_KEY
cmp "$OUT" "$T/secret.wantnl" || fail "exec: secret bytes differ"
expect_exit 0 "$AKCTL" exec hostile -- printenv HOSTILE
cmp "$OUT" "$T/plain.wantnl" || fail "exec: plain value bytes differ"

trace "json"
expect_exit 0 "$AKCTL" env hostile --shell json
"$PY" - "$OUT" "$T/secret.want" <<'PY' || fail "json: values differ"
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
want = open(sys.argv[2], encoding="utf-8").read()
assert d["ANTHROPIC_API_KEY"] == want, repr(d["ANTHROPIC_API_KEY"])
assert d["HOSTILE"].startswith(want + "\n--\\\n$HOME"), repr(d["HOSTILE"])
PY

# check_shell NAME: the shell wrote NAME.secret and NAME.plain with printenv.
check_shell() {
	cmp "$T/$1.secret" "$T/secret.wantnl" || fail "$1: secret bytes differ"
	cmp "$T/$1.plain" "$T/plain.wantnl" || fail "$1: --set value bytes differ"
	[ -e "$T/pwned" ] && fail "$1: a value was executed"
	return 0
}

SHOUT='printenv ANTHROPIC_API_KEY > "$T/$S.secret"; printenv HOSTILE > "$T/$S.plain"'
# Values that would run a command if unquoted: $(id) is in SECRET; add one that leaves a mark.
expect_exit 0 "$AKCTL" add trap --var TRAP_KEY --set "X=\$(touch $T/pwned)\`touch $T/pwned\`" < <(printf 'k;touch %s/pwned' "$T")

for sh in bash dash zsh; do
	trace "$sh: eval \"\$(akctl env hostile)\""
	case $sh in
	bash) shell=/bin/bash ;;
	dash) shell=/bin/sh ;;
	zsh) shell=/usr/bin/zsh ;;
	esac
	expect_exit 0 env SHELL="$shell" S="$sh" "$sh" -c 'eval "$("$AKCTL" env hostile)" || exit 10
eval "$("$AKCTL" env trap)" || exit 11
'"$SHOUT"
	check_shell "$sh"
	# and with --shell given explicitly, from a shell whose SHELL says otherwise
	expect_exit 0 env SHELL=/usr/bin/fish S="$sh-x" "$sh" -c 'eval "$("$AKCTL" env hostile --shell '"$sh"')" || exit 10
'"$SHOUT"
	check_shell "$sh-x"
done

trace "fish: akctl env hostile --shell fish | source"
cat > "$T/h.fish" <<'SH'
$AKCTL env hostile --shell fish | source; or exit 10
$AKCTL env trap --shell fish | source; or exit 11
printenv ANTHROPIC_API_KEY > $T/fish.secret
printenv HOSTILE > $T/fish.plain
SH
expect_exit 0 env SHELL=/bin/bash fish --no-config "$T/h.fish"
check_shell fish

trace "fish sourcing sh-syntax output (a fish started from a bash login): nothing runs"
# fish reads \' and \\ as escapes even inside single quotes; each of these values would end its
# quote there if a backslash were written inside one.
FISHV=$(printf "\\\\'; touch %s/pwned; #" "$T")
expect_exit 0 "$AKCTL" add fishy --set "FISHV=$FISHV" --set "FISHW=a\\\\\\'b" < <(printf "\\'; touch %s/pwned; #" "$T")
cat > "$T/sh.fish" <<'SH'
$AKCTL env fishy --shell sh | source
$AKCTL env trap --shell sh | source
printenv ANTHROPIC_API_KEY > $T/fishsh.secret
printenv FISHV > $T/fishsh.v
printenv FISHW > $T/fishsh.w
SH
expect_exit 0 env SHELL=/bin/bash fish --no-config "$T/sh.fish"
[ -e "$T/pwned" ] && fail "fish ran a command from sh-syntax output"
assert_bytes "$T/fishsh.secret" "$(printf "\\'; touch %s/pwned; #" "$T")
"
assert_bytes "$T/fishsh.v" "$FISHV
"
assert_bytes "$T/fishsh.w" "a\\\\\\'b
"
# and bash still reads the same output exactly
expect_exit 0 bash -c 'eval "$("$AKCTL" env fishy --shell sh)" && printenv FISHV'
assert_bytes "$OUT" "$FISHV
"

trace "tcsh: eval \"\`akctl env hostile --shell tcsh\`\""
cat > "$T/h.tcsh" <<'SH'
eval "`$AKCTL env hostile --shell tcsh`"
eval "`$AKCTL env trap --shell tcsh`"
/usr/bin/printenv ANTHROPIC_API_KEY > $T/tcsh.secret
/usr/bin/printenv HOSTILE > $T/tcsh.plain
SH
expect_exit 0 env SHELL=/bin/bash tcsh -f "$T/h.tcsh"
check_shell tcsh

trace "csh syntax chosen from SHELL=tcsh"
cat > "$T/h2.tcsh" <<'SH'
eval "`$AKCTL env hostile`"
/usr/bin/printenv ANTHROPIC_API_KEY > $T/tcsh2.secret
/usr/bin/printenv HOSTILE > $T/tcsh2.plain
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/h2.tcsh"
check_shell tcsh2

trace "use: the same values through eval \"\$(akctl use hostile)\" in bash and tcsh"
expect_exit 0 env SHELL=/bin/bash S=use-bash bash -c 'eval "$("$AKCTL" use hostile)" || exit 10
'"$SHOUT"
check_shell use-bash
cat > "$T/h3.tcsh" <<'SH'
eval "`$AKCTL use hostile`"
/usr/bin/printenv ANTHROPIC_API_KEY > $T/use-tcsh.secret
/usr/bin/printenv HOSTILE > $T/use-tcsh.plain
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/h3.tcsh"
check_shell use-tcsh

trace "every byte 0x01-0xff except NUL and newline as a plain value, through bash and fish"
ALL=$("$PY" -c 'import sys; sys.stdout.buffer.write(bytes(b for b in range(1, 256) if b != 10))')
expect_exit 0 "$AKCTL" add allbytes --set "ALL=$ALL" < <(printf 'k')
printf '%s\n' "$ALL" > "$T/all.want"
expect_exit 0 env -u LC_ALL LANG=C bash -c 'eval "$("$AKCTL" env allbytes --shell bash)" && printenv ALL' 
cmp "$OUT" "$T/all.want" || fail "bash: all-bytes value differs"
expect_exit 0 "$AKCTL" exec allbytes -- printenv ALL
cmp "$OUT" "$T/all.want" || fail "exec: all-bytes value differs"
trace ok
