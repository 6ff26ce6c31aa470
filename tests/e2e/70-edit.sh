#!/bin/bash
# Profiles with several secrets, and edits that keep everything they were not asked to change:
# add --secret, import's secret classification, list/show redaction, set, rename, cp, through the
# agent and directly on the file.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
KEY2=$(fake_key)
PW="pw-$(rand_word)"
TOK="tok-$(rand_word)"
NEWSEC="new-$(rand_word)"
DBPW="db-$(rand_word)"
SHOWN="$T/shown"	# everything list/show printed: must hold no secret
: >"$SHOWN"
PY=/usr/bin/python3

# show_json NAME: akctl show NAME --json into $T/NAME.json
show_json() {
	expect_exit 0 "$AKCTL" show "$1" --json
	cp "$OUT" "$T/$1.json"
	cat "$OUT" >>"$SHOWN"
}

# same_except A.json B.json KEY...: the two objects are equal once KEYs are dropped from both.
same_except() {
	"$PY" - "$@" <<'PY' || fail "profiles differ beyond the fields changed: $*"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k in sys.argv[3:]:
    a.pop(k, None); b.pop(k, None)
if a != b:
    print("A:", a, "\nB:", b, file=sys.stderr)
    sys.exit(1)
PY
}

init_store
start_agent
unlock

trace "add --secret: several secrets from a pipe, one line each, the main secret first"
printf '%s\n%s\n%s\n' "$KEY" "$PW" "$TOK" >"$T/in"
expect_exit 0 "$AKCTL" add prod --no-validate --set MODEL=opus --secret DB_PASSWORD \
	--secret OTHER_TOKEN --description "main" <"$T/in"
expect_exit 0 "$AKCTL" get prod
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" get prod DB_PASSWORD
assert_bytes "$OUT" "$PW"
expect_exit 0 "$AKCTL" get prod OTHER_TOKEN
assert_bytes "$OUT" "$TOK"
expect_exit 0 "$AKCTL" env prod --shell sh
assert_eq "$(sh -c '. "$1"; printf %s "$DB_PASSWORD"' sh "$OUT")" "$PW" "env: the second secret"
assert_eq "$(sh -c '. "$1"; printf %s "$OTHER_TOKEN"' sh "$OUT")" "$TOK" "env: the third secret"
expect_exit 0 "$AKCTL" exec prod -- sh -c 'printf %s "$DB_PASSWORD"'
assert_bytes "$OUT" "$PW"

trace "wrong number of lines: nothing stored"
printf '%s\n%s\n' "$KEY2" "$PW" >"$T/in"
expect_exit 1 "$AKCTL" add short --no-validate --secret A_TOKEN --secret B_TOKEN <"$T/in"
grep -q "one line per secret" "$ERR" || fail "no hint about the stdin format"
printf '%s\n%s\n%s\n%s\n' "$KEY2" a b c >"$T/in"
expect_exit 1 "$AKCTL" add short --no-validate --secret A_TOKEN --secret B_TOKEN <"$T/in"
printf '%s\n\n%s\n' "$KEY2" b >"$T/in"
expect_exit 1 "$AKCTL" add short --no-validate --secret A_TOKEN --secret B_TOKEN <"$T/in"
expect_exit 5 "$AKCTL" show short
expect_exit 2 "$AKCTL" add short --no-validate --secret ANTHROPIC_API_KEY </dev/null
expect_exit 2 "$AKCTL" add short --no-validate --secret X_TOKEN --set X_TOKEN=1 </dev/null

trace "--set refuses a key-shaped value or a URL with a password"
printf '%s' "$KEY2" >"$T/in"
expect_exit 1 "$AKCTL" add other --no-validate --set "BACKUP=$KEY2" <"$T/in"
grep -q -- "--secret" "$ERR" || fail "the refusal does not point at --secret"
assert_no_secret "$ERR" "$KEY2" "the refusal"
expect_exit 1 "$AKCTL" set prod --set "DATABASE_URL=postgres://u:$DBPW@db/x"
assert_no_secret "$ERR" "$DBPW" "the refusal"
expect_exit 5 "$AKCTL" show other

trace "list and show redact every secret, and mark which variables are secret"
expect_exit 0 "$AKCTL" list
cat "$OUT" >>"$SHOWN"
grep -q "ANTHROPIC_API_KEY,MODEL,DB_PASSWORD\*,OTHER_TOKEN\*" "$OUT" || fail "list does not mark secrets"
expect_exit 0 "$AKCTL" list --json
cat "$OUT" >>"$SHOWN"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))[0]; assert e["vars"]==["MODEL"] and e["secrets"]==["DB_PASSWORD","OTHER_TOKEN"], e' "$OUT" ||
	fail "list --json: vars/secrets"
expect_exit 0 "$AKCTL" show prod
cat "$OUT" >>"$SHOWN"
grep -q "DB_PASSWORD=" "$OUT" || fail "show does not list the secret variable"
show_json prod
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert set(o["secrets"])=={"DB_PASSWORD","OTHER_TOKEN"} and o["vars"]=={"MODEL":"opus"}, o' "$T/prod.json" ||
	fail "show --json: vars/secrets"
cp "$T/prod.json" "$T/before.json"

trace "set changes what it names and nothing else"
expect_exit 0 "$AKCTL" set prod --set MODEL=sonnet
show_json prod
same_except "$T/before.json" "$T/prod.json" vars
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["vars"]=={"MODEL":"sonnet"}' "$T/prod.json" ||
	fail "set --set did not change MODEL"
expect_exit 0 "$AKCTL" set prod --description "changed" --provider anthropic
show_json prod
same_except "$T/before.json" "$T/prod.json" vars description
expect_exit 0 "$AKCTL" get prod
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" set prod --unset OTHER_TOKEN
expect_exit 1 "$AKCTL" get prod OTHER_TOKEN
expect_exit 0 "$AKCTL" get prod DB_PASSWORD
assert_bytes "$OUT" "$PW"
printf '%s' "$NEWSEC" >"$T/in"
expect_exit 0 "$AKCTL" set prod --secret NEW_SECRET <"$T/in"
expect_exit 0 "$AKCTL" get prod NEW_SECRET
assert_bytes "$OUT" "$NEWSEC"
show_json prod
same_except "$T/before.json" "$T/prod.json" vars description secrets
expect_exit 1 "$AKCTL" set prod --unset NOPE
grep -q "no such variable" "$ERR" || fail "unset of a missing variable: no reason given"
expect_exit 2 "$AKCTL" set prod --unset ANTHROPIC_API_KEY
expect_exit 2 "$AKCTL" set prod --set ANTHROPIC_API_KEY=x
expect_exit 5 "$AKCTL" set missing --set A=b
expect_exit 2 "$AKCTL" set prod
expect_exit 2 "$AKCTL" set prod --set 9BAD=x
show_json prod
same_except "$T/before.json" "$T/prod.json" vars description secrets
cp "$T/prod.json" "$T/before.json"

trace "rename keeps everything, times included; cp keeps all but name and creation time"
expect_exit 0 "$AKCTL" rename prod production
expect_exit 5 "$AKCTL" show prod
show_json production
same_except "$T/before.json" "$T/production.json" name
expect_exit 0 "$AKCTL" cp production copy
show_json copy
same_except "$T/before.json" "$T/copy.json" name created
expect_exit 0 "$AKCTL" get copy DB_PASSWORD
assert_bytes "$OUT" "$PW"
expect_exit 1 "$AKCTL" rename production copy
grep -q "exists" "$ERR" || fail "rename onto an existing profile: no 'exists'"
expect_exit 5 "$AKCTL" cp nothing here
expect_exit 2 "$AKCTL" rename production
expect_exit 2 "$AKCTL" rename production ../x

trace "without an unlocked agent the same edits go to the file with the passphrase"
expect_exit 0 "$AKCTL" lock
expect_exit 0 "$AKCTL" --passphrase-fd 3 set production --set MODEL=haiku 3<<<"$PASS"
expect_exit 0 "$AKCTL" --passphrase-fd 3 rename copy copy2 3<<<"$PASS"
expect_exit 6 "$AKCTL" --passphrase-fd 3 set production --set MODEL=x 3<<<"wrong-$PASS"
unlock
show_json production
same_except "$T/before.json" "$T/production.json" name vars
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["vars"]=={"MODEL":"haiku"}' "$T/production.json" ||
	fail "direct set did not change MODEL"
show_json copy2
expect_exit 5 "$AKCTL" show copy

trace "import: secrets by name and by value are stored as secrets"
cat >"$T/app.env" <<ENV
ANTHROPIC_API_KEY=$KEY2
DATABASE_URL=postgres://app:$DBPW@db.example:5432/app
SMTP_PASSWORD=$PW
MAX_TOKENS=1024
ENV
expect_exit 0 "$AKCTL" import "$T/app.env" imported --dry-run
cat "$OUT" >>"$SHOWN"
expect_exit 0 "$AKCTL" import "$T/app.env" imported
cat "$ERR" >>"$SHOWN"
expect_exit 0 "$AKCTL" list --json
cat "$OUT" >>"$SHOWN"
"$PY" -c 'import json,sys; e=[x for x in json.load(open(sys.argv[1])) if x["name"]=="imported"][0]; assert e["vars"]==["MAX_TOKENS"] and e["secrets"]==["DATABASE_URL","SMTP_PASSWORD"], e' "$OUT" ||
	fail "import did not classify the secrets"
show_json imported
expect_exit 0 "$AKCTL" get imported DATABASE_URL
assert_bytes "$OUT" "postgres://app:$DBPW@db.example:5432/app"

trace "nothing list, show, import or an error printed holds a secret"
for s in "$KEY" "$KEY2" "$PW" "$TOK" "$NEWSEC" "$DBPW"; do
	assert_no_secret "$SHOWN" "$s" "list/show/import output"
done
exit 0
