#!/bin/bash
# proxy-bench.sh BUILD [REQUESTS]: akctl-proxy's added latency and throughput (a benchmark, not a test).
# One nginx serves a fixed Anthropic-shaped JSON answer over TLS (test CA made here) as the upstream;
# the same load (tests/bench/httpload.c, keep-alive POSTs) runs directly against it, through
# akctl-proxy, and through a second nginx doing proxy_pass (keepalive upstream) in front of it, at 1,
# 16 and 256 clients. Prints one line per run: p50/p99 latency, time to first byte, requests/s.
set -euo pipefail
B=$(cd "${1:?usage: proxy-bench.sh BUILD [REQUESTS]}" && pwd)
N=${2:-20000}
T=$(mktemp -d "${TMPDIR:-/tmp}/akpb.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT
export HOME="$T/home" XDG_RUNTIME_DIR="$T/run" XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/cfg"
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$T/ng1" "$T/ng2" && mkdir -m 0700 "$XDG_RUNTIME_DIR"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
	-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
export BENCH_CA="$T/ca.pem" AKCTL_CA_BUNDLE="$T/ca.pem"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPP=$(port) NGP=$(port)
ANSWER='{"id":"msg_b","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":5}}'
common="daemon off; master_process off; worker_processes 1; error_log $T/err.log; pid PIDFILE;
events { worker_connections 4096; }"
cat > "$T/ng1/nginx.conf" <<NG
${common/PIDFILE/$T/ng1/pid}
http { access_log off; client_body_temp_path $T/ng1;
  server { listen 127.0.0.1:$UPP ssl; ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '$ANSWER'; } } }
NG
cat > "$T/ng2/nginx.conf" <<NG
${common/PIDFILE/$T/ng2/pid}
http { access_log off; client_body_temp_path $T/ng2; proxy_temp_path $T/ng2;
  upstream up { server 127.0.0.1:$UPP; keepalive 512; }
  server { listen 127.0.0.1:$NGP; keepalive_requests 1000000;
    location / { proxy_pass https://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_trusted_certificate $T/ca.pem; proxy_ssl_verify on; proxy_ssl_name 127.0.0.1;
      proxy_ssl_session_reuse on; proxy_buffering off; } } }
NG
nginx -p "$T/ng1" -c "$T/ng1/nginx.conf" & PIDS+=($!)
nginx -p "$T/ng2" -c "$T/ng2/nginx.conf" & PIDS+=($!)

echo pw > "$T/pw"
"$B/akctl" --passphrase-fd 3 init --kdf insecure-test 3<"$T/pw" >/dev/null 2>&1
eval "$("$B/akagent" -s)"; PIDS+=("$AKAGENT_PID")
"$B/akctl" --passphrase-fd 3 unlock 3<"$T/pw" >/dev/null 2>&1
KEY="sk-ant-api03-$(head -c 80 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' | head -c 93)AA"
printf %s "$KEY" | "$B/akctl" add bench --no-validate --set "ANTHROPIC_BASE_URL=https://127.0.0.1:$UPP" >/dev/null 2>&1
eval "$("$B/akctl" proxy bench 2>"$T/proxy.err" &)"; PIDS+=("$AKCTL_PROXY_PID")
sleep 1

for c in 1 16 256; do
	n=$N; [ "$c" = 1 ] && n=$((N / 4))
	printf 'c=%-4s direct      ' "$c"; "$B/tests/bench/httpload" "https://127.0.0.1:$UPP/v1/messages" "$c" "$n" "x-api-key: $KEY"
	printf 'c=%-4s akctl-proxy ' "$c"; "$B/tests/bench/httpload" "$ANTHROPIC_BASE_URL/v1/messages" "$c" "$n" "x-api-key: $ANTHROPIC_API_KEY"
	printf 'c=%-4s nginx       ' "$c"; "$B/tests/bench/httpload" "http://127.0.0.1:$NGP/v1/messages" "$c" "$n" "x-api-key: $KEY"
done
echo "akctl-proxy RSS after the runs: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$AKCTL_PROXY_PID/status"), HWM $(awk '/VmHWM/ {print $2 " kB"}' "/proc/$AKCTL_PROXY_PID/status")"
