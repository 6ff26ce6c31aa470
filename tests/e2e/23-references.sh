#!/bin/bash
# Secret references: akctl exec --env-file FILE [PROFILE] -- CMD and akctl exec -- CMD resolve
# ak://PROFILE/VAR in the file and in the inherited environment through the agent; a reference that
# cannot be resolved stops everything before the command runs.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
KEY2=$(fake_key)
MARK="$T/ran"

init_store
start_agent
unlock

trace "import with --replace, then exec --env-file sees the original values byte for byte"
printf '%s\n' \
	'# app settings' \
	"export ANTHROPIC_API_KEY=\"$KEY\"" \
	'ANTHROPIC_MODEL=claude-sonnet-4-5' \
	'GREETING="hello\tworld # not a comment"' > "$T/app.env"
$PY -c 'import json,sys; from dotenv import dotenv_values; json.dump(dotenv_values(sys.argv[1], interpolate=False), open(sys.argv[2], "w"), sort_keys=True)' \
	"$T/app.env" "$T/want.json" || fail "python3-dotenv (Debian) is needed: apt install python3-dotenv"
expect_exit 0 "$AKCTL" import "$T/app.env" prod --replace
assert_no_secret "$T/app.env" "$KEY" "the rewritten .env"
grep -qx 'export ANTHROPIC_API_KEY=ak://prod/ANTHROPIC_API_KEY' "$T/app.env" || fail "no reference in the file"
grep -q "akctl allow" "$ERR" || fail "import --replace did not say to allow the file"
expect_exit 0 "$AKCTL" allow "$T/app.env"	# references resolve only from files the user allowed
expect_exit 0 "$AKCTL" exec --env-file "$T/app.env" -- $PY -c \
	'import json,os; print(json.dumps({k: os.environ[k] for k in ("ANTHROPIC_API_KEY","ANTHROPIC_MODEL","GREETING")}, sort_keys=True))'
$PY -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(a != b)' \
	"$T/want.json" "$OUT" || fail "exec --env-file environment differs from the original .env"
# The same with a profile named: the profile's values win over the file's.
add_profile staging "$KEY2" --set ANTHROPIC_MODEL=claude-haiku
expect_exit 0 "$AKCTL" exec --env-file "$T/app.env" staging -- printenv ANTHROPIC_API_KEY ANTHROPIC_MODEL GREETING AKCTL_PROFILE
assert_bytes "$OUT" "$(printf '%s\nclaude-haiku\nhello\tworld # not a comment\nstaging\n' "$KEY2")
"
expect_exit 0 "$AKCTL" exec --env-file "$T/app.env" staging printenv AKCTL_PROFILE	# "--" optional with PROFILE
assert_bytes "$OUT" "staging
"

trace "an inherited reference, no profile, no file"
ANTHROPIC_API_KEY=ak://prod/ANTHROPIC_API_KEY expect_exit 0 "$AKCTL" exec -- printenv ANTHROPIC_API_KEY
assert_bytes "$OUT" "$KEY
"
# A reference to a plain variable, and to another profile's secret, side by side.
MODEL=ak://prod/ANTHROPIC_MODEL OTHER=ak://staging/ANTHROPIC_API_KEY \
	expect_exit 0 "$AKCTL" exec -- printenv MODEL OTHER
assert_bytes "$OUT" "$(printf 'claude-sonnet-4-5\n%s\n' "$KEY2")
"
# The profile named on the command line is used as is; other inherited references are still resolved.
OTHER=ak://prod/ANTHROPIC_API_KEY expect_exit 0 "$AKCTL" exec staging -- printenv ANTHROPIC_API_KEY OTHER
assert_bytes "$OUT" "$(printf '%s\n%s\n' "$KEY2" "$KEY")
"
# Nothing to resolve: no agent needed.
printf 'PLAIN=1\n' > "$T/plain.env"
AKAGENT_SOCK="$T/nowhere.sock" expect_exit 0 "$AKCTL" exec --env-file "$T/plain.env" -- printenv PLAIN
assert_bytes "$OUT" "1
"

trace "unresolvable references fail without running the command"
rm -f "$MARK"
ANTHROPIC_API_KEY=ak://nosuch/ANTHROPIC_API_KEY expect_exit 5 "$AKCTL" exec -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran with an unresolved reference (missing profile)"
ANTHROPIC_API_KEY=ak://prod/NO_SUCH_VAR expect_exit 1 "$AKCTL" exec -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran with an unresolved reference (missing variable)"
grep -q 'prod has no variable NO_SUCH_VAR' "$ERR" || fail "missing variable not named"
X=ak://bad/na-me expect_exit 2 "$AKCTL" exec -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran with a malformed reference"
printf 'GOOD=ak://prod/ANTHROPIC_API_KEY\nBAD=ak://gone/KEY\n' > "$T/half.env"
expect_exit 0 "$AKCTL" allow "$T/half.env"
expect_exit 5 "$AKCTL" exec --env-file "$T/half.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran with a half-resolved environment"
assert_no_secret "$ERR" "$KEY" "exec error"
expect_exit 1 "$AKCTL" exec --env-file "$T/missing.env" -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran without its env file"
"$AKCTL" lock >/dev/null 2>&1
ANTHROPIC_API_KEY=ak://prod/ANTHROPIC_API_KEY expect_exit 4 "$AKCTL" exec -- touch "$MARK"
[ -e "$MARK" ] && fail "the command ran while the agent was locked"
unlock

trace "usage"
expect_exit 2 "$AKCTL" exec --env-file "$T/app.env"
expect_exit 2 "$AKCTL" exec --
expect_exit 0 "$AKCTL" exec --help
exit 0
