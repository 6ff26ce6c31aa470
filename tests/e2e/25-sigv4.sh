#!/bin/bash
# AWS SigV4, byte for byte against botocore (Debian's python3-botocore, tests/fake/sigv4_oracle.py).
#
# akctl-net does not sign: libcurl does (CURLOPT_AWS_SIGV4). What is compared:
#  1. the oracle itself against AWS's published test-suite answers;
#  2. libcurl's signer at FIXED timestamps: the curl tool (the same libcurl akctl-net links) honours a
#     given X-Amz-Date, so the exact GetSecretValue request akctl-net makes is signed at a pinned time
#     and its Authorization compared byte for byte with botocore's for the same request and time,
#     with and without a session token, in several regions;
#  3. akctl-net's own requests (libcurl uses the current time and cannot be pinned): the fake verifies
#     each with botocore at the X-Amz-Date received, and here the logged Authorization is compared
#     with botocore's for the request akctl-net is supposed to send (method, path, the three headers,
#     the exact body) at that same timestamp — so a wrong header set or body is caught too.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

"$PY" -c 'import botocore.auth' 2>/dev/null || skip "python3-botocore is not installed for $PY"
ORACLE="$TESTS_DIR/fake/sigv4_oracle.py"
FAKE="$TESTS_DIR/fake/cloud_server.py"
STATE="$T/state.json"
LOG="$T/fake.log"

trace "oracle: botocore against the AWS SigV4 test suite"
expect_exit 0 "$PY" "$ORACLE" selftest

SK1="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SK2="tmp/$(rand_word)+=x"
TOK2="IQoJb3JpZ2luX2VjE$(rand_word)/$(rand_word)+=="
VAL=$(fake_key)
ARN="arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/prod+key=1@x.y-AbCdEf"
cat > "$STATE" <<EOF
{"aws": {"region": "us-east-1", "allow_skew": true,
         "credentials": {"AKIDEXAMPLE": {"secret": "$SK1", "token": null},
                         "ASIAEXAMPLE": {"secret": "$SK2", "token": "$TOK2"}},
         "secrets": {"prod/anthropic": "$VAL", "$ARN": "$VAL"}}}
EOF
state() {
	"$PY" - "$STATE" "$1" <<'PYEOF' || fail "state edit failed: $1"
import json, sys
S = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(S, open(sys.argv[1], "w"))
PYEOF
}

"$PY" "$FAKE" --state "$STATE" --log "$LOG" > "$T/port" 2> "$T/fake.err" &
track_pid $!
for _ in $(seq 50); do
	[ -s "$T/port" ] && break
	sleep 0.1
done
PORT=$(head -n1 "$T/port")
[ -n "$PORT" ] || fail "the fake cloud server did not start: $(cat "$T/fake.err")"
URL="http://127.0.0.1:$PORT/aws/"

# last_header NAME: the value of header NAME in the fake's last logged request.
last_header() {
	"$PY" - "$LOG" "$1" <<'PYEOF'
import json, sys
entry = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(next(v for k, v in entry["headers"] if k.lower() == sys.argv[2].lower()))
PYEOF
}

# oracle AKID SECRET TOKEN|"" REGION DATE SECRET-ID: botocore's Authorization for the GetSecretValue
# request akctl-net sends (credentials through files, not argv).
oracle() {
	printf '%s' "$2" > "$T/sk"
	printf '%s' "$3" > "$T/tok"
	printf '{"SecretId":"%s"}' "$6" > "$T/body"
	local tokarg=()
	[ -n "$3" ] && tokarg=(--token-file "$T/tok")
	"$PY" "$ORACLE" sign --method POST --url "$URL" --region "$4" --service secretsmanager \
		--akid "$1" --secret-file "$T/sk" "${tokarg[@]}" --date "$5" \
		--header "Host: 127.0.0.1:$PORT" \
		--header "X-Amz-Target: secretsmanager.GetSecretValue" \
		--header "Content-Type: application/x-amz-json-1.1" \
		--body-file "$T/body" || fail "the oracle failed"
}

trace "libcurl's signer at fixed timestamps vs botocore"
if command -v curl >/dev/null; then
	n=0
	while read -r akid sk tok region date sid; do
		[ "$tok" = - ] && tok=""
		state "S['aws']['region'] = '$region'"
		printf '{"SecretId":"%s"}' "$sid" > "$T/body"
		{
			printf 'user = "%s:%s"\n' "$akid" "$sk"
			[ -n "$tok" ] && printf 'header = "X-Amz-Security-Token: %s"\n' "$tok"
		} > "$T/curlrc"
		expect_exit 0 curl -sS -K "$T/curlrc" --aws-sigv4 "aws:amz:$region:secretsmanager" \
			-H "X-Amz-Date: $date" -H "X-Amz-Target: secretsmanager.GetSecretValue" \
			-H "Content-Type: application/x-amz-json-1.1" --data-binary @"$T/body" "$URL"
		grep -qF "\"SecretString\": \"$VAL\"" "$OUT" || fail "the verifying fake refused curl's request: $(cat "$OUT")"
		got=$(last_header Authorization)
		want=$(oracle "$akid" "$sk" "$tok" "$region" "$date" "$sid")
		assert_eq "$got" "$want" "Authorization at $date ($akid, $region)"
		n=$((n + 1))
	done <<EOF
AKIDEXAMPLE $SK1 - us-east-1 20150830T123600Z prod/anthropic
AKIDEXAMPLE $SK1 - eu-west-1 20260101T000000Z prod/anthropic
ASIAEXAMPLE $SK2 $TOK2 us-east-1 20260101T000000Z prod/anthropic
ASIAEXAMPLE $SK2 $TOK2 ap-southeast-2 20291231T235959Z $ARN
AKIDEXAMPLE $SK1 - eu-west-1 20260615T120000Z $ARN
EOF
	assert_eq "$n" 5 "fixed cases run"
	state "S['aws']['region'] = 'us-east-1'; S['aws']['allow_skew'] = False"
	trace "the fake refuses a stale timestamp and a wrong key"
	printf 'user = "AKIDEXAMPLE:%s"\n' "$SK1" > "$T/curlrc"
	expect_exit 0 curl -sS -K "$T/curlrc" --aws-sigv4 "aws:amz:us-east-1:secretsmanager" \
		-H "X-Amz-Date: 20150830T123600Z" -H "X-Amz-Target: secretsmanager.GetSecretValue" \
		-H "Content-Type: application/x-amz-json-1.1" --data-binary @"$T/body" "$URL"
	grep -q 'Signature expired' "$OUT" || fail "the fake accepted a stale X-Amz-Date"
	printf 'user = "AKIDEXAMPLE:x%s"\n' "$SK1" > "$T/curlrc"
	expect_exit 0 curl -sS -K "$T/curlrc" --aws-sigv4 "aws:amz:us-east-1:secretsmanager" \
		-H "X-Amz-Target: secretsmanager.GetSecretValue" \
		-H "Content-Type: application/x-amz-json-1.1" --data-binary @"$T/body" "$URL"
	grep -q 'InvalidSignatureException' "$OUT" || fail "the fake accepted a wrong signature"
else
	trace "(no curl tool: fixed-timestamp libcurl cases skipped)"
	state "S['aws']['allow_skew'] = False"
fi

trace "akctl-net's own requests, verified by the fake and compared with botocore at their timestamp"
init_store
start_agent
unlock
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION AWS_ENDPOINT_URL_SECRETS_MANAGER
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT/aws" AWS_REGION=us-east-1
i=0
while read -r akid sk tok sid; do
	[ "$tok" = - ] && tok=""
	i=$((i + 1))
	if [ -n "$tok" ]; then
		AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$sk AWS_SESSION_TOKEN=$tok \
			expect_exit 0 "$AKCTL" import "aws-sm://$sid" "p$i"
	else
		AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$sk expect_exit 0 "$AKCTL" import "aws-sm://$sid" "p$i"
	fi
	expect_exit 0 "$AKCTL" get "p$i"
	assert_bytes "$OUT" "$VAL"
	got=$(last_header Authorization)
	date=$(last_header X-Amz-Date)
	want=$(oracle "$akid" "$sk" "$tok" us-east-1 "$date" "$sid")
	assert_eq "$got" "$want" "akctl-net's Authorization ($akid, $sid)"
	"$PY" - "$LOG" "$sid" <<'PYEOF' || fail "akctl-net's body is not the exact GetSecretValue body"
import json, sys
entry = json.loads(open(sys.argv[1]).read().splitlines()[-1])
sys.exit(entry["body"] != json.dumps({"SecretId": sys.argv[2]}, separators=(",", ":")))
PYEOF
done <<EOF
AKIDEXAMPLE $SK1 - prod/anthropic
ASIAEXAMPLE $SK2 $TOK2 prod/anthropic
ASIAEXAMPLE $SK2 $TOK2 $ARN
EOF

trace "a wrong secret key or token is refused by the verifying fake"
AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY="x$SK1" expect_exit 6 "$AKCTL" import aws-sm://prod/anthropic bad
grep -q InvalidSignatureException "$ERR" || fail "no InvalidSignatureException"
AWS_ACCESS_KEY_ID=ASIAEXAMPLE AWS_SECRET_ACCESS_KEY="$SK2" expect_exit 6 "$AKCTL" import aws-sm://prod/anthropic bad
grep -q UnrecognizedClientException "$ERR" || fail "a missing session token was accepted"
for s in "$SK1" "$SK2" "$TOK2" "$VAL"; do
	assert_no_secret "$OUT" "$s" stdout
	assert_no_secret "$ERR" "$s" stderr
done
[ -s "$T/fake.err" ] && fail "the fake printed errors: $(head -c 2000 "$T/fake.err")"
trace "ok"
