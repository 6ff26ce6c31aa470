#!/bin/bash
# Cloud secret managers against loopback fakes (tests/fake/cloud_server.py): import from AWS Secrets
# Manager (SigV4 verified by botocore on every request), Google Secret Manager (gcloud or metadata token,
# CRC32C), Azure Key Vault and Vault KV v2; every error case is one line, exact exit code, no secret;
# `akctl pull` picks up a value rotated in the fake.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

"$PY" -c 'import botocore.auth' 2>/dev/null || skip "python3-botocore is not installed for $PY"
FAKE="$TESTS_DIR/fake/cloud_server.py"
STATE="$T/state.json"
LOG="$T/fake.log"

AWS_VAL=$(fake_key)
AWS_JSON_VAL=$(fake_key)
AWS_ROT=$(fake_key)
GCP_V1=$(fake_key)
GCP_V2=$(fake_key)
GCP_V3=$(fake_key)
AZ_VAL=$(fake_key)
VAULT_VAL=$(fake_key)
VAULT_ROT=$(fake_key)
AWS_SK="sk$(rand_word)"
AWS_TMP_SK="tsk$(rand_word)"
AWS_TOK="FwoGZXIvYXdzE$(rand_word)$(rand_word)"
GCP_TOK="ya29.$(rand_word)"
AZ_TOK="eyJ0eXAi$(rand_word)"
VAULT_TOK="hvs.$(rand_word)"
# Every string that must never appear in akctl's output, nor in a requested URL.
SECRETS=("$AWS_VAL" "$AWS_JSON_VAL" "$AWS_ROT" "$GCP_V1" "$GCP_V2" "$GCP_V3" "$AZ_VAL" "$VAULT_VAL"
	"$VAULT_ROT" "$AWS_SK" "$AWS_TMP_SK" "$AWS_TOK" "$GCP_TOK" "$AZ_TOK" "$VAULT_TOK")

cat > "$STATE" <<EOF
{"aws": {"region": "eu-west-1",
         "credentials": {"AKIDTESTPERM01": {"secret": "$AWS_SK", "token": null},
                         "ASIATESTTEMP01": {"secret": "$AWS_TMP_SK", "token": "$AWS_TOK"}},
         "secrets": {"prod/anthropic": "$AWS_VAL",
                     "prod/config": "{\"api_key\": \"$AWS_JSON_VAL\", \"max_tokens\": 1024}"}},
 "gcp": {"token": "$GCP_TOK",
         "secrets": {"projects/my-proj/secrets/anthropic": {"1": "$GCP_V1", "2": "$GCP_V2"}}},
 "azure": {"token": "$AZ_TOK", "secrets": {"team-kv/anthropic": "$AZ_VAL"}},
 "vault": {"token": "$VAULT_TOK", "namespace": "team-a",
           "secrets": {"secret/team/anthropic": {"api_key": "$VAULT_VAL", "note": "x"},
                       "kv/single": {"value": "$VAULT_VAL"}}}}
EOF

# state PYTHON: edit the fake's state (S is the parsed JSON); the fake re-reads it on every request.
state() {
	"$PY" - "$STATE" "$1" <<'PYEOF' || fail "state edit failed: $1"
import json, sys
S = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(S, open(sys.argv[1], "w"))
PYEOF
}

# no_secret_out: none of the secrets or credentials in akctl's stdout or stderr.
no_secret_out() {
	local s
	for s in "${SECRETS[@]}"; do
		assert_no_secret "$OUT" "$s" "stdout"
		assert_no_secret "$ERR" "$s" "stderr"
	done
}

# fails CODE PATTERN CMD...: exits CODE, exactly one line on stderr matching PATTERN, nothing on
# stdout, no secret anywhere.
fails() {
	local code=$1 pat=$2
	shift 2
	expect_exit "$code" "$@"
	[ "$(wc -l < "$ERR")" -eq 1 ] || fail "'$*': wanted one line on stderr, got $(wc -l < "$ERR")"
	grep -qE -- "$pat" "$ERR" || fail "'$*': stderr does not match '$pat'"
	[ -s "$OUT" ] && fail "'$*': printed on stdout"
	no_secret_out
}

# log_reset: start the fake's log afresh (the whole of it is kept in fake.all for the final check).
log_reset() {
	cat "$LOG" >> "$T/fake.all"
	: > "$LOG"
}

trace "fake cloud server"
"$PY" "$FAKE" --state "$STATE" --log "$LOG" > "$T/port" 2> "$T/fake.err" &
FAKE_PID=$!
track_pid "$FAKE_PID"
for _ in $(seq 50); do
	[ -s "$T/port" ] && break
	sleep 0.1
done
PORT=$(head -n1 "$T/port")
[ -n "$PORT" ] || fail "the fake cloud server did not start: $(cat "$T/fake.err")"
BASE="http://127.0.0.1:$PORT"

# Fake gcloud/az first on PATH: a real one installed here must not be asked.
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 1\n' > "$T/bin/gcloud"
printf '#!/bin/sh\nexit 1\n' > "$T/bin/az"
chmod 0755 "$T/bin/gcloud" "$T/bin/az"
export PATH="$T/bin:$PATH"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION \
	AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AZURE_ACCESS_TOKEN \
	VAULT_NAMESPACE
export AWS_ENDPOINT_URL="$BASE/aws" AWS_REGION=eu-west-1 \
	AWS_ACCESS_KEY_ID=AKIDTESTPERM01 AWS_SECRET_ACCESS_KEY="$AWS_SK" \
	AKCTL_GCP_SM_ENDPOINT="$BASE/gcp" GCE_METADATA_HOST="127.0.0.1:$PORT" \
	AKCTL_AZURE_KV_ENDPOINT="$BASE/azure/{vault}" AZURE_ACCESS_TOKEN="$AZ_TOK" \
	VAULT_ADDR="$BASE/vault" VAULT_TOKEN="$VAULT_TOK" VAULT_NAMESPACE=team-a

init_store
start_agent
unlock

# imported NAME VALUE URI: the profile holds VALUE and remembers URI.
imported() {
	expect_exit 0 "$AKCTL" get "$1"
	assert_bytes "$OUT" "$2"
	expect_exit 0 "$AKCTL" show "$1"
	grep -qxF "source:      $3" "$OUT" || fail "show $1 does not record source $3"
}

trace "AWS Secrets Manager: long-term keys"
expect_exit 0 "$AKCTL" import aws-sm://prod/anthropic aws
no_secret_out
imported aws "$AWS_VAL" aws-sm://prod/anthropic
expect_exit 0 "$AKCTL" import 'aws-sm://prod/config#api_key' awsjson
imported awsjson "$AWS_JSON_VAL" 'aws-sm://prod/config#api_key'

trace "AWS: session token (X-Amz-Security-Token, signed)"
AWS_ACCESS_KEY_ID=ASIATESTTEMP01 AWS_SECRET_ACCESS_KEY="$AWS_TMP_SK" AWS_SESSION_TOKEN="$AWS_TOK" \
	expect_exit 0 "$AKCTL" import aws-sm://prod/anthropic awstmp
no_secret_out
imported awstmp "$AWS_VAL" aws-sm://prod/anthropic
grep -q '"X-Amz-Security-Token", "'"$AWS_TOK"'"' "$LOG" || fail "no X-Amz-Security-Token header was sent"
grep -q 'SignedHeaders=[a-z;-]*x-amz-security-token' "$LOG" || fail "the session token was not signed"

trace "AWS: ~/.aws/credentials profile and ~/.aws/config region"
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id = NOPE\naws_secret_access_key = nope\n\n[ci]\n# temp\naws_access_key_id = ASIATESTTEMP01\naws_secret_access_key = %s\naws_session_token = %s\n' \
	"$AWS_TMP_SK" "$AWS_TOK" > "$HOME/.aws/credentials"
printf '[profile ci]\nregion = eu-west-1\n' > "$HOME/.aws/config"
expect_exit 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION AWS_PROFILE=ci \
	"$AKCTL" import aws-sm://prod/anthropic awsfile
imported awsfile "$AWS_VAL" aws-sm://prod/anthropic
trace "AWS: --region"
expect_exit 0 env -u AWS_REGION "$AKCTL" import --region eu-west-1 --force aws-sm://prod/anthropic awsfile

trace "AWS errors"
fails 5 'ResourceNotFoundException' "$AKCTL" import aws-sm://prod/missing x
# A wrong secret key: the botocore-verifying fake rejects the signature; its message quotes the
# canonical request (session token included), which must not be shown.
AWS_SECRET_ACCESS_KEY="wrong$AWS_SK" fails 6 'InvalidSignatureException' "$AKCTL" import aws-sm://prod/anthropic x
AWS_ACCESS_KEY_ID=ASIATESTTEMP01 AWS_SECRET_ACCESS_KEY="x$AWS_TMP_SK" AWS_SESSION_TOKEN="$AWS_TOK" \
	fails 6 'InvalidSignatureException' "$AKCTL" import aws-sm://prod/anthropic x
grep -q 'Canonical String' "$ERR" && fail "the canonical request was shown"
AWS_ACCESS_KEY_ID=ASIATESTTEMP01 AWS_SECRET_ACCESS_KEY="$AWS_TMP_SK" AWS_SESSION_TOKEN="bad$AWS_TOK" \
	fails 6 'UnrecognizedClientException' "$AKCTL" import aws-sm://prod/anthropic x
fails 6 'no credentials' env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	AWS_SHARED_CREDENTIALS_FILE="$T/none" "$AKCTL" import aws-sm://prod/anthropic x
fails 2 'no region' env -u AWS_REGION AWS_CONFIG_FILE="$T/none" "$AKCTL" import aws-sm://prod/anthropic x
fails 1 "no field 'nope'" "$AKCTL" import 'aws-sm://prod/config#nope' x
fails 1 "'max_tokens' is not a string" "$AKCTL" import 'aws-sm://prod/config#max_tokens' x
fails 1 'not a JSON object' "$AKCTL" import 'aws-sm://prod/anthropic#api_key' x
fails 2 'bad secret id' "$AKCTL" import 'aws-sm://prod/a"b' x
state 'S["aws"]["mode"] = "deny"'
fails 6 'AccessDeniedException' "$AKCTL" import aws-sm://prod/anthropic x
state 'S["aws"]["mode"] = "500"'
fails 1 'HTTP 500' "$AKCTL" import aws-sm://prod/anthropic x
state 'S["aws"]["mode"] = "badjson"'
fails 1 'no SecretString' "$AKCTL" import aws-sm://prod/anthropic x
state 'S["aws"]["mode"] = "drop"'
fails 1 'connection failed|Empty reply' "$AKCTL" import aws-sm://prod/anthropic x
state 'S["aws"]["mode"] = None'
# A token never crosses a network in the clear: plain http only to this machine.
VAULT_ADDR="http://example.com" VAULT_TOKEN="$VAULT_TOK" fails 2 'plain http only to this machine' \
	"$AKCTL" import "vault://secret/app#key" httpvault
AWS_ENDPOINT_URL="http://127.0.0.1:1" fails 1 'AWS Secrets Manager: connection failed' \
	"$AKCTL" import aws-sm://prod/anthropic x

trace "Google Secret Manager: metadata server token (gcloud fails), latest and pinned versions"
expect_exit 0 "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic gcp
no_secret_out
imported gcp "$GCP_V2" gcp-sm://projects/my-proj/secrets/anthropic
expect_exit 0 "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic/versions/1 gcp1
imported gcp1 "$GCP_V1" gcp-sm://projects/my-proj/secrets/anthropic/versions/1
grep -q '"Metadata-Flavor", "Google"' "$LOG" || fail "metadata request without Metadata-Flavor"

trace "Google: token from gcloud auth print-access-token"
mkdir -p "$T/gbin"
# shellcheck disable=SC2016  # $1 $2 are the fake gcloud's own arguments
printf '#!/bin/sh\n[ "$1 $2" = "auth print-access-token" ] || exit 3\necho %s\n' "$GCP_TOK" > "$T/gbin/gcloud"
chmod 0755 "$T/gbin/gcloud"
log_reset
PATH="$T/gbin:$PATH" GCE_METADATA_HOST=127.0.0.1:1 \
	expect_exit 0 "$AKCTL" import --force gcp-sm://projects/my-proj/secrets/anthropic gcp
imported gcp "$GCP_V2" gcp-sm://projects/my-proj/secrets/anthropic
grep -q computeMetadata "$LOG" && fail "the metadata server was asked although gcloud answered"

trace "Google errors"
state 'S["gcp"]["mode"] = "badcrc"'
fails 1 'CRC32C mismatch' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic x
state 'S["gcp"]["mode"] = "nocrc"'
expect_exit 0 "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic gcpnocrc
state 'S["gcp"]["mode"] = "deny"'
fails 6 'HTTP 403: PERMISSION_DENIED' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic x
state 'S["gcp"]["mode"] = None'
fails 5 'HTTP 404: NOT_FOUND' "$AKCTL" import gcp-sm://projects/my-proj/secrets/missing x
fails 5 'HTTP 404' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic/versions/9 x
GCE_METADATA_HOST=127.0.0.1:1 fails 6 'no access token' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic x
state 'S["gcp"]["metadata_token"] = "ya29.other"'
fails 6 'HTTP 401: UNAUTHENTICATED' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic x
state 'del S["gcp"]["metadata_token"]'
fails 2 'expected gcp-sm://projects' "$AKCTL" import gcp-sm://projects/my-proj/secrets/anthropic/versions x
fails 2 'expected gcp-sm://projects' "$AKCTL" import gcp-sm://projects/p/secrets/s/versions/1/../../x x
fails 2 'bad project' "$AKCTL" import 'gcp-sm://projects/my-proj/secrets/a?alt=media' x
fails 2 'bad project' "$AKCTL" import 'gcp-sm://projects/my%2Fproj/secrets/a' x

trace "Azure Key Vault: AZURE_ACCESS_TOKEN, then az"
expect_exit 0 "$AKCTL" import azure-kv://team-kv/anthropic az
no_secret_out
imported az "$AZ_VAL" azure-kv://team-kv/anthropic
printf '#!/bin/sh\n[ "$*" = "account get-access-token --resource https://vault.azure.net --query accessToken -o tsv" ] || exit 3\necho %s\n' \
	"$AZ_TOK" > "$T/gbin/az"
chmod 0755 "$T/gbin/az"
PATH="$T/gbin:$PATH" expect_exit 0 env -u AZURE_ACCESS_TOKEN "$AKCTL" import --force azure-kv://team-kv/anthropic az
imported az "$AZ_VAL" azure-kv://team-kv/anthropic

trace "Azure errors"
fails 5 'SecretNotFound' "$AKCTL" import azure-kv://team-kv/missing x
AZURE_ACCESS_TOKEN="x$AZ_TOK" fails 6 'HTTP 401' "$AKCTL" import azure-kv://team-kv/anthropic x
fails 6 'no access token' env -u AZURE_ACCESS_TOKEN "$AKCTL" import azure-kv://team-kv/anthropic x
state 'S["azure"]["mode"] = "deny"'
fails 6 'HTTP 403: Forbidden' "$AKCTL" import azure-kv://team-kv/anthropic x
state 'S["azure"]["mode"] = "badjson"'
fails 1 'no value' "$AKCTL" import azure-kv://team-kv/anthropic x
state 'S["azure"]["mode"] = None'
fails 2 'bad vault' "$AKCTL" import azure-kv://team-kv/anthro_pic x
fails 2 'expected azure-kv' "$AKCTL" import azure-kv://team-kv/a/b/c x

trace "Vault KV v2: #field, namespace, the one-key rule"
expect_exit 0 "$AKCTL" import 'vault://secret/team/anthropic#api_key' vault
no_secret_out
imported vault "$VAULT_VAL" 'vault://secret/team/anthropic#api_key'
expect_exit 0 "$AKCTL" import vault://kv/single vault1
imported vault1 "$VAULT_VAL" vault://kv/single
grep -q '"X-Vault-Namespace", "team-a"' "$LOG" || fail "no X-Vault-Namespace header"

trace "Vault errors"
fails 1 'has 2 fields' "$AKCTL" import vault://secret/team/anthropic x
fails 1 "no field 'nope'" "$AKCTL" import 'vault://secret/team/anthropic#nope' x
fails 5 'HTTP 404: secret not found' "$AKCTL" import 'vault://secret/team/missing#k' x
VAULT_TOKEN="x$VAULT_TOK" fails 6 'HTTP 403: permission denied' "$AKCTL" import 'vault://secret/team/anthropic#api_key' x
fails 6 'no token' env -u VAULT_TOKEN "$AKCTL" import 'vault://secret/team/anthropic#api_key' x
state 'S["vault"]["mode"] = "deny"'
fails 6 'HTTP 403: 1 error occurred: \* permission denied' "$AKCTL" import 'vault://secret/team/anthropic#api_key' x
state 'S["vault"]["mode"] = "slow"'
fails 1 'Vault: timed out' "$AKCTL" import --timeout 1s 'vault://secret/team/anthropic#api_key' x
state 'S["vault"]["mode"] = None'
fails 2 "bad path" "$AKCTL" import 'vault://secret/../sys/raw#k' x
fails 2 "bad path" "$AKCTL" import 'vault://secret//x#k' x
fails 2 "expected vault://" "$AKCTL" import 'vault://secret#k' x
log_reset
fails 5 'not found' "$AKCTL" import 'vault://secret/a?list=true#k' x
grep -q '/vault/v1/secret/data/a%3Flist%3Dtrue"' "$LOG" || fail "a '?' in a Vault path was not percent-encoded"

trace "bad URIs"
fails 2 'space, control' "$AKCTL" import "vault://secret/a$(printf '\t')b#k" x
fails 2 "bad '#field'" "$AKCTL" import 'vault://secret/a#' x

trace "pull: rotate in the fake, pull picks it up"
expect_exit 0 "$AKCTL" pull aws
assert_bytes "$OUT" "aws: unchanged
"
state 'S["aws"]["secrets"]["prod/anthropic"] = "'"$AWS_ROT"'"'
state 'S["gcp"]["secrets"]["projects/my-proj/secrets/anthropic"]["3"] = "'"$GCP_V3"'"'
state 'S["vault"]["secrets"]["secret/team/anthropic"]["api_key"] = "'"$VAULT_ROT"'"'
expect_exit 0 "$AKCTL" pull aws gcp gcp1 vault
assert_bytes "$OUT" "aws: updated (rotated)
gcp: updated (rotated)
gcp1: unchanged
vault: updated (rotated)
"
no_secret_out
imported aws "$AWS_ROT" aws-sm://prod/anthropic
imported gcp "$GCP_V3" gcp-sm://projects/my-proj/secrets/anthropic
imported gcp1 "$GCP_V1" gcp-sm://projects/my-proj/secrets/anthropic/versions/1
imported vault "$VAULT_ROT" 'vault://secret/team/anthropic#api_key'

trace "pull --all: only cloud profiles, one line each"
add_profile local "$(fake_key)"
expect_exit 0 "$AKCTL" pull --all
grep -q '^local' "$OUT" && fail "pull --all touched a profile without a cloud source"
grep -qx 'aws: unchanged' "$OUT" || fail "pull --all did not pull aws"
grep -qx 'vault1: unchanged' "$OUT" || fail "pull --all did not pull vault1"
# awstmp and awsfile were imported with other credentials: the current ones still sign for the same
# secret, so they are plain updates.
grep -qx 'awstmp: updated (rotated)' "$OUT" || fail "pull --all did not rotate awstmp"
no_secret_out

trace "pull errors"
fails 1 'pull: local: not imported from a cloud source' "$AKCTL" pull local
fails 5 'no such profile' "$AKCTL" pull nosuch
expect_exit 2 "$AKCTL" pull
expect_exit 2 "$AKCTL" pull --all aws
state 'S["vault"]["mode"] = "deny"'
fails 6 'pull: vault: Vault: HTTP 403' "$AKCTL" pull vault
state 'S["vault"]["mode"] = None'
# One failure does not stop the others; the exit code is the first failure's.
state 'S["aws"]["secrets"]["prod/anthropic"] = "'"$AWS_VAL"'"'
AWS_SECRET_ACCESS_KEY="wrong$AWS_SK" expect_exit 6 "$AKCTL" pull aws vault
assert_bytes "$OUT" "vault: unchanged
"
[ "$(wc -l < "$ERR")" -eq 1 ] || fail "pull: one line per failed profile"
no_secret_out
expect_exit 0 "$AKCTL" get aws
assert_bytes "$OUT" "$AWS_ROT"
expect_exit 0 "$AKCTL" lock
fails 4 'locked' "$AKCTL" pull aws

trace "no credential or value ever went into a URL"
log_reset
"$PY" - "$T/fake.all" "${SECRETS[@]}" <<'PYEOF' || fail "a secret appeared in a requested path"
import json, sys
log, secrets = sys.argv[1], sys.argv[2:]
for line in open(log):
    path = json.loads(line)["path"]
    for s in secrets:
        if s in path:
            sys.exit(1)
PYEOF
kill -0 "$FAKE_PID" 2>/dev/null || fail "the fake cloud server died: $(cat "$T/fake.err")"
[ -s "$T/fake.err" ] && fail "the fake cloud server printed errors: $(head -c 2000 "$T/fake.err")"
trace "ok"
