#!/bin/bash
# Plain http never goes through a proxy: with http_proxy, HTTP_PROXY and ALL_PROXY pointing at a
# listening fake proxy, akctl test of a loopback http check URL and the GCE metadata token fetch reach
# their servers directly, and the proxy receives nothing (it would have seen the key in the clear).
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset https_proxy HTTPS_PROXY no_proxy NO_PROXY ANTHROPIC_BASE_URL AKCTL_CA_BUNDLE

# wait_port FILE: wait for a server to write its port.
wait_port() {
	local i
	for i in $(seq 100); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	fail "no port in $1"
}

trace "a fake proxy: logs every connection and what it was sent, answers 502"
"$PY" - "$T/proxy.port" "$T/proxy.log" <<'PY' 2>"$T/proxy.err" &
import socket, sys, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % srv.getsockname()[1])
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def serve(c):
    c.settimeout(5)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    with open(sys.argv[2], "ab") as f:
        f.write(b"CONNECTION\n" + data + b"\n")
    try:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
track_pid $!
wait_port "$T/proxy.port"
PROXY="http://127.0.0.1:$(cat "$T/proxy.port")"
: > "$T/proxy.log"

"$PY" "$TESTS_DIR/fake/provider_server.py" --log "$T/req.log" --port-file "$T/prov.port" >/dev/null \
	2>"$T/prov.err" &
track_pid $!
wait_port "$T/prov.port"
HTTP="http://127.0.0.1:$(cat "$T/prov.port")"

# Sanity: the fake proxy works, so a proxied request would have been seen.
curl -s -o /dev/null --max-time 5 -x "$PROXY" "http://192.0.2.1/probe" || true
grep -q 'GET http://192.0.2.1/probe' "$T/proxy.log" || fail "sanity: the fake proxy logged nothing"
: > "$T/proxy.log"

init_store
start_agent
unlock
KEY=$(fake_key)
add_profile p "$KEY" --no-validate --set "ANTHROPIC_BASE_URL=$HTTP"
export http_proxy="$PROXY" HTTP_PROXY="$PROXY" ALL_PROXY="$PROXY" all_proxy="$PROXY"

trace "akctl test over loopback http: straight to the provider, nothing to the proxy"
expect_exit 0 "$AKCTL" test p
grep -q '^p: valid (anthropic, 200, ' "$OUT" || fail "not valid: $(cat "$OUT")"
expect_exit 0 "$AKCTL" test --base-url "$HTTP" p
grep -qF "H x-api-key: $KEY" "$T/req.log" || fail "the provider did not get the key"
printf '%s' "$(fake_key)" > "$T/in"
expect_exit 0 "$AKCTL" add v --validate --set "ANTHROPIC_BASE_URL=$HTTP" < "$T/in"
[ -s "$T/proxy.log" ] && fail "the proxy received: $(head -c 300 "$T/proxy.log")"

trace "GCE metadata token over http: never through the proxy"
STATE="$T/state.json"
GCP_TOK="ya29.$(rand_word)"
GVAL=$(fake_key)
printf '{"gcp": {"token": "%s", "secrets": {"projects/p/secrets/s": {"1": "%s"}}}}\n' "$GCP_TOK" "$GVAL" \
	> "$STATE"
"$PY" "$TESTS_DIR/fake/cloud_server.py" --state "$STATE" --log "$T/cloud.log" > "$T/cloud.port" \
	2>"$T/cloud.err" &
track_pid $!
wait_port "$T/cloud.port"
CPORT=$(head -n1 "$T/cloud.port")
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 1\n' > "$T/bin/gcloud"	# no gcloud token: the metadata server is asked
chmod 0755 "$T/bin/gcloud"
PATH="$T/bin:$PATH" AKCTL_GCP_SM_ENDPOINT="http://127.0.0.1:$CPORT/gcp" GCE_METADATA_HOST="127.0.0.1:$CPORT" \
	expect_exit 0 "$AKCTL" import gcp-sm://projects/p/secrets/s g
grep -q computeMetadata "$T/cloud.log" || fail "the metadata server was not asked"
expect_exit 0 "$AKCTL" get g
assert_bytes "$OUT" "$GVAL"
[ -s "$T/proxy.log" ] && fail "the proxy received: $(head -c 300 "$T/proxy.log")"

trace "https still honours the proxy variables"
HTTPS_PROXY="$PROXY" https_proxy="$PROXY" expect_exit 14 "$AKCTL" test --base-url https://api.example.test p
grep -q 'CONNECT api.example.test:443' "$T/proxy.log" || fail "https did not go through the proxy"
exit 0
