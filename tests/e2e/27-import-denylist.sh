#!/bin/bash
# A cloned repository's .env cannot plant variables: akctl import skips shell start-up, loader and
# endpoint variables (listing their names) unless --allow-var names them, from every source; exec
# --env-file never takes akagent's own variables from the file; akctl test sends a key only to
# --base-url, the profile's own base URL or the provider's default, never to one from its environment.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ANTHROPIC_BASE_URL OPENAI_BASE_URL
KEY=$(fake_key)
MARK="$T/pwned"

init_store
start_agent
unlock

trace "import of a hostile .env: the key and plain variables in, the planted ones out"
cat > "$T/repo.env" <<EOF
ANTHROPIC_API_KEY=$KEY
ANTHROPIC_MODEL=claude-sonnet-4-5
PROMPT_COMMAND="touch $MARK"
BASH_ENV=$T/evil.sh
LD_PRELOAD=$T/evil.so
PATH=$T/evilbin
ANTHROPIC_BASE_URL=http://127.0.0.1:9/steal
http_proxy=http://127.0.0.1:9
NODE_OPTIONS=--require=$T/evil.js
GIT_SSH_COMMAND="touch $MARK"
AKAGENT_SOCK=$T/evil.sock
AKCTL_KEYSTORE=$T/evil.keystore
GREETING=hello
EOF
expect_exit 0 "$AKCTL" import "$T/repo.env" repo
for v in PROMPT_COMMAND BASH_ENV LD_PRELOAD PATH ANTHROPIC_BASE_URL http_proxy NODE_OPTIONS GIT_SSH_COMMAND \
	AKAGENT_SOCK AKCTL_KEYSTORE; do
	grep -q "skipped 10 variables.*$v" "$ERR" || fail "import did not list $v as skipped"
done
grep -q 'allow-var' "$ERR" || fail "import did not say how to keep one"
grep -qF "$T/evil" "$ERR" && fail "import showed a skipped value"
expect_exit 0 "$AKCTL" show repo
grep -q 'ANTHROPIC_MODEL=claude-sonnet-4-5' "$OUT" || fail "a plain variable was not imported"
grep -q 'GREETING=hello' "$OUT" || fail "a plain variable was not imported"
grep -qE 'PROMPT_COMMAND|BASH_ENV|LD_PRELOAD|PATH=|BASE_URL|proxy|NODE_OPTIONS|GIT_SSH|AKAGENT|AKCTL_KEY' "$OUT" &&
	fail "a planted variable was stored: $(cat "$OUT")"
expect_exit 0 bash -c 'eval "$("$AKCTL" use repo)"; true'
[ -e "$MARK" ] && fail "use ran a planted command"

trace "--allow-var keeps exactly the variables named"
expect_exit 0 "$AKCTL" import --force --allow-var ANTHROPIC_BASE_URL --allow-var http_proxy "$T/repo.env" repo
grep -q 'skipped 8 variables' "$ERR" || fail "wrong skip count with --allow-var: $(cat "$ERR")"
expect_exit 0 "$AKCTL" get repo ANTHROPIC_BASE_URL
assert_bytes "$OUT" "http://127.0.0.1:9/steal"
expect_exit 0 "$AKCTL" get repo http_proxy
expect_exit 1 "$AKCTL" get repo PROMPT_COMMAND
expect_exit 2 "$AKCTL" import --force --allow-var 'BAD NAME' "$T/repo.env" repo

trace "JSON, env: and --var sources: a planted secret variable is refused"
printf '{"api_key": "%s"}\n' "$KEY" > "$T/c.json"
expect_exit 1 "$AKCTL" import --var LD_PRELOAD "$T/c.json" j
grep -q 'LD_PRELOAD is a code loader variable: not stored' "$ERR" || fail "JSON: no refusal"
expect_exit 5 "$AKCTL" get j
expect_exit 0 "$AKCTL" import --var LD_PRELOAD --allow-var LD_PRELOAD "$T/c.json" j
expect_exit 1 env PROMPT_COMMAND="$KEY" "$AKCTL" import env:PROMPT_COMMAND e
grep -q 'PROMPT_COMMAND is a shell start-up variable' "$ERR" || fail "env:: no refusal"
expect_exit 1 env "MY_KEY=$KEY" "$AKCTL" import --var AKCTL_ASKPASS env:MY_KEY e
expect_exit 0 env "MY_KEY=$KEY" "$AKCTL" import env:MY_KEY e

trace "exec --env-file never takes AKAGENT_SOCK or AKCTL_* from the file"
"$PY" - "$T/evil.sock" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
while True:
    c, _ = s.accept()
    open(sys.argv[1] + ".hit", "w").write("x")
    c.close()
PY
track_pid $!
for _ in $(seq 50); do [ -S "$T/evil.sock" ] && break; sleep 0.1; done
printf 'AKAGENT_SOCK=%s\nAKCTL_KEYSTORE=%s\nAKCTL_PROFILE=evil\nK=ak://repo/ANTHROPIC_API_KEY\n' \
	"$T/evil.sock" "$T/evil.keystore" > "$T/sock.env"
expect_exit 0 "$AKCTL" allow "$T/sock.env"
expect_exit 0 "$AKCTL" exec --env-file "$T/sock.env" -- sh -c 'printf "%s|%s|%s|%s" "$K" "${AKAGENT_SOCK-}" "${AKCTL_KEYSTORE-unset}" "${AKCTL_PROFILE-unset}"'
assert_bytes "$OUT" "$KEY|$AKAGENT_SOCK|unset|unset"
grep -q 'AKAGENT_SOCK ignored' "$ERR" || fail "exec did not say it ignored AKAGENT_SOCK"
[ -e "$T/evil.sock.hit" ] && fail "exec connected to the socket named in the file"

trace "akctl test: no base URL from the environment; the host is named when not the default"
"$PY" "$TESTS_DIR/fake/provider_server.py" --log "$T/req.log" --port-file "$T/prov.port" >/dev/null \
	2>"$T/prov.err" &
track_pid $!
for _ in $(seq 100); do [ -s "$T/prov.port" ] && break; sleep 0.05; done
HTTP="http://127.0.0.1:$(cat "$T/prov.port")"
add_profile victim "$(fake_key)" --no-validate
add_profile local "$(fake_key)" --no-validate --set "ANTHROPIC_BASE_URL=$HTTP"
# The environment's base URL (an exported variable of another profile) is not where keys go. Without
# network the default host fails (14); with it, a fake key is rejected (10). Either way not the fake.
ANTHROPIC_BASE_URL="$HTTP" expect_exit nonzero "$AKCTL" test victim --timeout 3
[ -s "$T/req.log" ] && fail "a request went to the URL in akctl's environment"
grep -q '\[sent to' "$OUT" && fail "the default host was named: $(cat "$OUT")"
# The profile's own base URL is used, and named.
expect_exit 0 "$AKCTL" test local
assert_bytes "$OUT" "$(printf 'local: valid (anthropic, 200, request-id %s) [sent to 127.0.0.1:%s]' \
	"$(grep -o 'req_fake[0-9]*' "$OUT")" "$(cat "$T/prov.port")")
"
# --base-url wins over the profile's.
expect_exit 14 "$AKCTL" test --base-url http://127.0.0.1:1 local
grep -q '\[sent to 127.0.0.1:1\]' "$OUT" || fail "--base-url host not named: $(cat "$OUT")"
exit 0
