#!/bin/bash
# .env references need consent: exec --env-file resolves ak:// references only from a file allowed
# with its current content (akctl allow), or when they name the profile given on the command line.
# akctl allow / deny / allow --list, the list's place and mode, and an edited file losing its allow.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
DEV=$(fake_key)
MARK="$T/ran"
export XDG_STATE_HOME="$T/state"
LIST="$XDG_STATE_HOME/akagent/allowed-files"

init_store
start_agent
unlock
add_profile production "$KEY"
add_profile dev "$DEV"

trace "a committed .env asking for production's key next to a planted base URL: refused"
mkdir -p "$T/repo"
printf 'ANTHROPIC_API_KEY=ak://production/ANTHROPIC_API_KEY\nANTHROPIC_BASE_URL=https://attacker.example\n' \
	> "$T/repo/.env"
rm -f "$MARK"
expect_exit 1 "$AKCTL" exec --env-file "$T/repo/.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran with an unallowed env file"
[ "$(wc -l < "$ERR")" = 1 ] || fail "wanted a one-line refusal: $(cat "$ERR")"
grep -qF "akctl: exec: $T/repo/.env is not allowed to ask for secrets (ANTHROPIC_API_KEY=ak://production/ANTHROPIC_API_KEY): review it, then run 'akctl allow $T/repo/.env'" "$ERR" ||
	fail "refusal text: $(cat "$ERR")"
assert_no_secret "$ERR" "$KEY" "the refusal"
# Relative path, as the README shows it.
(cd "$T/repo" && expect_exit 1 "$AKCTL" exec --env-file .env -- true) || exit 1
[ -e "$LIST" ] && fail "a refusal wrote the allow list"

trace "a reference to the profile named on the command line needs no allow"
printf 'K=ak://dev/ANTHROPIC_API_KEY\nPLAIN=1\n' > "$T/repo/dev.env"
expect_exit 0 "$AKCTL" exec --env-file "$T/repo/dev.env" dev -- printenv K
assert_bytes "$OUT" "$DEV
"
printf 'K=ak://dev/ANTHROPIC_API_KEY\nP=ak://production/ANTHROPIC_API_KEY\n' > "$T/repo/mixed.env"
expect_exit 1 "$AKCTL" exec --env-file "$T/repo/mixed.env" dev -- touch "$MARK"
[ -e "$MARK" ] && fail "a reference to another profile than the one named was resolved"
# An inherited reference with an unallowed file in play is refused too (the file may steer it).
printf 'ANTHROPIC_BASE_URL=https://attacker.example\n' > "$T/repo/url.env"
ANTHROPIC_API_KEY=ak://production/ANTHROPIC_API_KEY expect_exit 1 "$AKCTL" exec --env-file "$T/repo/url.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "an inherited reference resolved next to an unallowed file"
# No env file: the inherited environment is the user's own.
ANTHROPIC_API_KEY=ak://production/ANTHROPIC_API_KEY expect_exit 0 "$AKCTL" exec -- printenv ANTHROPIC_API_KEY
assert_bytes "$OUT" "$KEY
"

trace "allow: the file resolves; the list is 0600 in a 0700 directory"
expect_exit 0 "$AKCTL" allow "$T/repo/.env"
[ -f "$LIST" ] || fail "no allow list at $LIST"
assert_eq "$(stat -c %a "$LIST")" 600 "allow list mode"
assert_eq "$(stat -c %a "$XDG_STATE_HOME/akagent")" 700 "allow list directory mode"
grep -qF "$T/repo/.env" "$LIST" || fail "the list does not name the file"
grep -qF "$(sha256sum < "$T/repo/.env" | cut -d' ' -f1) $T/repo/.env" "$LIST" || fail "the list's digest is not the file's SHA-256"
expect_exit 0 "$AKCTL" exec --env-file "$T/repo/.env" -- printenv ANTHROPIC_API_KEY
assert_bytes "$OUT" "$KEY
"
# Through a symlink and a relative path: the same real file.
ln -s "$T/repo/.env" "$T/link.env"
expect_exit 0 "$AKCTL" exec --env-file "$T/link.env" -- true
(cd "$T/repo" && expect_exit 0 "$AKCTL" exec --env-file ./.env -- true) || exit 1
expect_exit 0 "$AKCTL" allow --list
grep -qE "^[0-9a-f]{16}  allowed  $T/repo/.env\$" "$OUT" || fail "allow --list: $(cat "$OUT")"

trace "an edited file needs a new allow"
printf '# harmless-looking edit\n' >> "$T/repo/.env"
expect_exit 1 "$AKCTL" exec --env-file "$T/repo/.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "an edited file was still allowed"
expect_exit 0 "$AKCTL" allow --list
grep -q "changed since allowed  $T/repo/.env\$" "$OUT" || fail "allow --list did not flag the edit: $(cat "$OUT")"
expect_exit 0 "$AKCTL" allow "$T/repo/.env"
expect_exit 0 "$AKCTL" exec --env-file "$T/repo/.env" -- true
assert_eq "$(grep -c "$T/repo/.env" "$LIST")" 1 "entries for one file after two allows"

trace "deny removes it; a second deny says so"
expect_exit 0 "$AKCTL" allow "$T/repo/dev.env"
expect_exit 0 "$AKCTL" deny "$T/repo/.env"
grep -qF " $T/repo/.env" "$LIST" && fail "deny left the entry"
grep -qF "$T/repo/dev.env" "$LIST" || fail "deny removed another entry"
expect_exit 1 "$AKCTL" exec --env-file "$T/repo/.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "a denied file was resolved"
expect_exit 1 "$AKCTL" deny "$T/repo/.env"
grep -q 'was not allowed' "$ERR" || fail "second deny: $(cat "$ERR")"
# A file that is gone can still be denied by its path.
rm "$T/repo/dev.env"
expect_exit 0 "$AKCTL" deny "$T/repo/dev.env"
expect_exit 0 "$AKCTL" allow --list
grep -q 'no allowed files' "$ERR" || fail "allow --list of an empty list: $(cat "$OUT" "$ERR")"

trace "default place: ~/.local/state/akagent; usage errors"
env -u XDG_STATE_HOME "$AKCTL" allow "$T/repo/.env" >/dev/null 2>&1 || fail "allow without XDG_STATE_HOME"
[ -f "$HOME/.local/state/akagent/allowed-files" ] || fail "no list under ~/.local/state/akagent"
expect_exit 2 "$AKCTL" allow
expect_exit 2 "$AKCTL" allow --list "$T/repo/.env"
expect_exit 2 "$AKCTL" deny
expect_exit 1 "$AKCTL" allow "$T/nope.env"
expect_exit 0 "$AKCTL" allow --help
exit 0
