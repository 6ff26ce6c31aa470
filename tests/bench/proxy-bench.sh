#!/bin/bash
# proxy-bench.sh BUILD [REQUESTS] [ROUNDS]: akctl-proxy's added latency and throughput (a benchmark,
# not a test). One nginx serves a fixed Anthropic-shaped JSON answer over TLS (test CA made here) as
# the upstream; the same load (tests/bench/httpload.c, keep-alive POSTs) runs directly against it,
# through akctl-proxy, and through a second nginx doing proxy_pass (keepalive upstream) in front of
# it, at 1, 16 and 256 clients, the three interleaved ROUNDS times after one warm-up run each
# (medians are compared, so a busy machine hurts all three alike). Both relays keep their upstream
# connections open for good (nginx's upstream keepalive_requests raised to match libcurl, which never
# retires a connection) and speak TLS 1.2 to the upstream, the only version this nginx offers. Then
# 1,000 concurrent server-sent-event streams are held open through the proxy (a libmicrohttpd
# upstream in C, tests/bench/sse_fake.c, fast enough not to dominate) to measure its RSS and the time
# to the first streamed byte. Every ratio is printed beside its goal. PB_H2=1 lets the upstream offer
# HTTP/2 (the proxy multiplexes onto it; nginx's proxy_pass speaks HTTP/1.1 upstream whatever is
# offered). The proxy runs PB_WORKERS event loops (default: one per CPU) and the nginx doing
# proxy_pass as many worker processes, as the bench prints; the upstream nginx has one. With more
# than one, a second proxy with one loop (proxy-1loop; the proxy's own default on two CPUs) runs in
# the same rounds, so what the extra loops bring is measured under the same load.
set -euo pipefail
B=$(cd "${1:?usage: proxy-bench.sh BUILD [REQUESTS] [ROUNDS]}" && pwd)
N=${2:-20000}
ROUNDS=${3:-3}
STREAMS=1000
W=${PB_WORKERS:-$(nproc)}
ulimit -n "$(ulimit -Hn)" # a thousand streams: two descriptors each, in the proxy and in the load
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
common="daemon off; error_log $T/err.log; pid PIDFILE;
events { worker_connections 4096; }"
cat > "$T/ng1/nginx.conf" <<NG
master_process off; worker_processes 1;
${common/PIDFILE/$T/ng1/pid}
http { access_log off; client_body_temp_path $T/ng1;
  server { listen 127.0.0.1:$UPP ssl${PB_H2:+ http2}; ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '$ANSWER'; } } }
NG
cat > "$T/ng2/nginx.conf" <<NG
master_process on; worker_processes $W;
${common/PIDFILE/$T/ng2/pid}
http { access_log off; client_body_temp_path $T/ng2; proxy_temp_path $T/ng2;
  upstream up { server 127.0.0.1:$UPP; keepalive 512; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$NGP; keepalive_requests 1000000;
    location / { proxy_pass https://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_trusted_certificate $T/ca.pem; proxy_ssl_verify on; proxy_ssl_name 127.0.0.1;
      proxy_ssl_session_reuse on; proxy_buffering off; } } }
NG
# The streaming upstream (tests/bench/sse_fake.c, plain http: loopback only): each request gets an
# SSE answer, the first event at once, then four more 0.5 s apart.
"$B/tests/bench/sse_fake" "$T/sse.port" 5 500 & PIDS+=($!)
nginx -p "$T/ng1" -c "$T/ng1/nginx.conf" & PIDS+=($!)
nginx -p "$T/ng2" -c "$T/ng2/nginx.conf" & PIDS+=($!)

echo pw > "$T/pw"
"$B/akctl" --passphrase-fd 3 init --kdf insecure-test 3<"$T/pw" >/dev/null 2>&1
eval "$("$B/akagent" -s)"; PIDS+=("$AKAGENT_PID")
"$B/akctl" --passphrase-fd 3 unlock 3<"$T/pw" >/dev/null 2>&1
KEY="sk-ant-api03-$(head -c 80 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' | head -c 93)AA"
printf %s "$KEY" | "$B/akctl" add bench --no-validate --set "ANTHROPIC_BASE_URL=https://127.0.0.1:$UPP" >/dev/null 2>&1
eval "$("$B/akctl" proxy bench --workers "$W" 2>"$T/proxy.err" &)"; PIDS+=("$AKCTL_PROXY_PID")
PX_BASE=$ANTHROPIC_BASE_URL PX_TOKEN=$ANTHROPIC_API_KEY PX_PID=$AKCTL_PROXY_PID
WHO="direct akctl-proxy nginx"
if [ "$W" -gt 1 ]; then
	eval "$("$B/akctl" proxy bench --workers 1 2>"$T/proxy1.err" &)"; PIDS+=("$AKCTL_PROXY_PID")
	P1_BASE=$ANTHROPIC_BASE_URL P1_TOKEN=$ANTHROPIC_API_KEY P1_PID=$AKCTL_PROXY_PID
	WHO="direct akctl-proxy proxy-1loop nginx"
fi
while [ ! -s "$T/sse.port" ]; do sleep 0.1; done
SSE=http://127.0.0.1:$(cat "$T/sse.port")
printf %s "$KEY" | "$B/akctl" add sse --no-validate --set "ANTHROPIC_BASE_URL=$SSE" >/dev/null 2>&1
eval "$("$B/akctl" proxy sse --workers "$W" 2>"$T/proxy-sse.err" &)"; PIDS+=("$AKCTL_PROXY_PID")
SSE_BASE=$ANTHROPIC_BASE_URL SSE_TOKEN=$ANTHROPIC_API_KEY SSE_PID=$AKCTL_PROXY_PID
sleep 1

# field LINE NAME: the value of NAME=… in an httpload line
field() { sed -n "s/.*[ ^]$2=\([0-9]*\).*/\1/p" <<<" $1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# cpu PID: user+system clock ticks the process (all its threads) and its children (nginx's worker
# processes) have used so far
cpu() {
	local t=0 p
	for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
while [ ! -s "$T/ng2/pid" ]; do sleep 0.1; done
HZ=$(getconf CLK_TCK) NG2_PID=$(cat "$T/ng2/pid")
echo "akctl-proxy: --workers $W; nginx doing proxy_pass: worker_processes $W; upstream nginx: 1 worker; $(nproc) CPUs"
verdict() { awk -v v="$1" -v g="$2" -v le="$3" 'BEGIN { ok = le ? v <= g : v >= g; print (ok ? "ok" : "MISSED") }'; }

target() {
	case $1 in
	direct) url="https://127.0.0.1:$UPP/v1/messages" h="x-api-key: $KEY" ;;
	akctl-proxy) url="$PX_BASE/v1/messages" h="x-api-key: $PX_TOKEN" ;;
	proxy-1loop) url="$P1_BASE/v1/messages" h="x-api-key: $P1_TOKEN" ;;
	nginx) url="http://127.0.0.1:$NGP/v1/messages" h="x-api-key: $KEY" ;;
	esac
}
for c in 1 16 256; do
	n=$N; [ "$c" = 1 ] && n=$((N / 4))
	: > "$T/res.$c"
	# Warm-up, not counted: every relay opens (and keeps) its upstream connections, with their TLS
	# handshakes, before the measured rounds.
	for who in $WHO; do
		target "$who"
		"$B/tests/bench/httpload" "$url" "$c" "$((c * 8))" "$h" >/dev/null
	done
	for r in $(seq "$ROUNDS"); do
		for who in $WHO; do
			target "$who"
			# The relay's own CPU time per request (the proxy, or the nginx doing proxy_pass): on a
			# shared machine the steadiest measure of what each costs.
			pid=; [ "$who" = akctl-proxy ] && pid=$PX_PID; [ "$who" = nginx ] && pid=$NG2_PID
			[ "$who" = proxy-1loop ] && pid=$P1_PID
			c0=0; [ -n "$pid" ] && c0=$(cpu "$pid")
			line=$("$B/tests/bench/httpload" "$url" "$c" "$n" "$h")
			cu=0; [ -n "$pid" ] && cu=$((($(cpu "$pid") - c0) * 1000000 / HZ / n))
			line="$line cpu_us_per_req=$cu"
			printf 'c=%-4s round %s %-11s %s\n' "$c" "$r" "$who" "$line"
			echo "$who $(field "$line" rps) $(field "$line" p50_us) $(field "$line" p99_us) $(field "$line" ttfb_p50_us) $cu" >> "$T/res.$c"
		done
	done
done
echo
echo "medians over $ROUNDS rounds (rps, p50 µs, p99 µs, time to first byte p50 µs, relay CPU µs per request), and the goals:"
for c in 1 16 256; do
	for who in $WHO; do
		for k in 2 3 4 5 6; do
			eval "m_${who//-/_}_$k=$(awk -v w="$who" -v k="$k" '$1 == w {print $k}' "$T/res.$c" | median)"
		done
		eval "printf 'c=%-4s %-11s rps=%s p50_us=%s p99_us=%s ttfb_p50_us=%s cpu_us_per_req=%s\n' $c $who \$m_${who//-/_}_2 \$m_${who//-/_}_3 \$m_${who//-/_}_4 \$m_${who//-/_}_5 \$m_${who//-/_}_6"
	done
	add50=$((m_akctl_proxy_3 - m_direct_3)) add99=$((m_akctl_proxy_4 - m_direct_4))
	ng50=$((m_nginx_3 - m_direct_3)) ng99=$((m_nginx_4 - m_direct_4))
	rr=$(awk -v a="$m_akctl_proxy_2" -v b="$m_nginx_2" 'BEGIN {printf "%.2f", a / b}')
	lr=$(awk -v a="$m_akctl_proxy_3" -v b="$m_nginx_3" 'BEGIN {printf "%.2f", a / b}')
	if [ "$c" = 1 ]; then
		echo "  c=1: added p50 ${add50} µs (goal <= 200: $(verdict "$add50" 200 1); nginx adds ${ng50} µs)," \
			"added p99 ${add99} µs (goal <= 500: $(verdict "$add99" 500 1); nginx adds ${ng99} µs)"
	fi
	cr=$(awk -v a="$m_akctl_proxy_6" -v b="$m_nginx_6" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
	if [ "$W" -gt 1 ]; then
		echo "  c=$c: rps proxy ($W loops) / proxy (1 loop) $(awk -v a="$m_akctl_proxy_2" -v b="$m_proxy_1loop_2" \
			'BEGIN {printf "%.2f", a / b}'), CPU per request $m_akctl_proxy_6 / $m_proxy_1loop_6 µs"
	fi
	echo "  c=$c: rps proxy/nginx $rr (goal >= 1.00: $(verdict "$rr" 1 0)), p50 proxy/nginx $lr (goal <= 1.00: $(verdict "$lr" 1 1))," \
		"CPU per request proxy/nginx $cr"
done

echo
echo "$STREAMS concurrent streams held open through akctl-proxy (each 5 events over 2 s):"
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$SSE_PID/status")
"$B/tests/bench/httpload" "$SSE/v1/messages" "$STREAMS" "$STREAMS" "x-api-key: $KEY" > "$T/sse.direct"
sc0=$(cpu "$SSE_PID")
"$B/tests/bench/httpload" "$SSE_BASE/v1/messages" "$STREAMS" "$STREAMS" "x-api-key: $SSE_TOKEN" > "$T/sse.proxy" &
LP=$!
peak=0
while kill -0 "$LP" 2>/dev/null; do
	r=$(awk '/VmRSS/ {print $2}' "/proc/$SSE_PID/status")
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 0.2
done
wait "$LP" || echo "  (some streams failed: $(cat "$T/sse.proxy"))"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SSE_PID/status")
echo "  direct:      $(cat "$T/sse.direct")"
echo "  akctl-proxy: $(cat "$T/sse.proxy")"
d_tt=$(field "$(cat "$T/sse.direct")" ttfb_p50_us) p_tt=$(field "$(cat "$T/sse.proxy")" ttfb_p50_us)
echo "  time to first streamed byte p50: direct ${d_tt} µs, through the proxy ${p_tt} µs (+$((p_tt - d_tt)) µs);" \
	"the proxy's CPU for all $STREAMS streams: $((($(cpu "$SSE_PID") - sc0) * 1000 / HZ)) ms"
echo "  proxy RSS: ${rss0} kB idle, peak sampled ${peak} kB, VmHWM ${hwm} kB" \
	"(goal <= 51200 kB: $(verdict "$hwm" 51200 1))"
echo "akctl-proxy (JSON runs) CPU per thread (ticks): $(for t in /proc/"$PX_PID"/task/*; do awk '{printf "%s ", $14 + $15}' "$t/stat"; done)"
echo "akctl-proxy (JSON runs) RSS after the runs: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$PX_PID/status"), HWM $(awk '/VmHWM/ {print $2 " kB"}' "/proc/$PX_PID/status")"
