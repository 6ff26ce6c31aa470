#!/bin/bash
# Redaction benchmark (not a test), 64 stored keys:
#   - throughput: SIZE MiB (default 256) of generated text with keys planted in every variant,
#     `dd | akctl redact | dd` (1 MiB blocks, to /dev/null), goal >= 1 GB/s; `dd | cat | dd` beside
#     it, the same pipes with nothing to match, run alternately with it; every planted key must come
#     out replaced;
#   - added latency: a line written into `akctl redact` every millisecond (ordinary text, and text
#     ending in a bare public prefix, which is never held back), the time until it comes out, against
#     the same through `cat`: p50 and p99, goal p99 added <= 1 ms.
# usage: AKAGENT=build/akagent AKCTL=build/akctl tests/bench/redact-bench.sh [SIZE_MIB]
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SIZE=${1:-256}
RUNS=${REDACT_BENCH_RUNS:-5}
NKEYS=64
init_store
start_agent
unlock
fake_keys "$NKEYS" "$T/keys"
add_profiles "$T/keys"

trace "generating $SIZE MiB with planted keys"
"$PY" - "$T/keys" "$T/text" "$SIZE" "$T/planted" <<'PY'
import base64, os, random, sys
keys = [l.strip().encode() for l in open(sys.argv[1])]
size = int(sys.argv[3]) << 20
rng = random.Random(11)
def variants(k):
    out = [k, k.hex().encode(), "".join("%%%02X" % c for c in k).encode(),
           "".join("\\u%04x" % c for c in k).encode(), k.decode().encode("utf-16-le")]
    for a in range(3):
        out.append(base64.b64encode(b"xy"[:a] + k + b"\n"))
    return out
words = [b"const", b"return", b"function", b"ANTHROPIC_API_KEY", b"import", b"self", b"{", b"}", b"=",
         b"if", b"else", b"for", b"token", b"model", b"claude", b"api", b"task-force", b"log:"]
planted = 0
with open(sys.argv[2], "wb") as f:
    written = 0
    while written < size:
        out, m = [], 0
        while m < (1 << 20):
            if rng.random() < 0.3:
                line = base64.b64encode(os.urandom(rng.randrange(20, 90)))
            else:
                line = b" ".join(rng.choice(words) for _ in range(rng.randrange(3, 16)))
            out.append(line)
            m += len(line) + 1
        vs = variants(keys[planted % len(keys)])
        out.insert(rng.randrange(len(out)), b"leak " + vs[planted % len(vs)] + b" end")
        planted += 1
        data = b"\n".join(out) + b"\n"
        f.write(data)
        written += len(data)
open(sys.argv[4], "w").write("%d\n" % planted)
PY
BYTES=$(stat -c %s "$T/text")
PLANTED=$(cat "$T/planted")
cat "$T/text" > /dev/null

# Alternately, RUNS times each: the best wall time of each.
best_ak="" best_cat=""
for r in $(seq "$RUNS"); do
	for w in ak cat; do
		if [ "$w" = ak ]; then f=("$AKCTL" --no-prompt redact); else f=(cat); fi
		s=$(date +%s%N)
		dd if="$T/text" bs=1M status=none | "${f[@]}" | dd of=/dev/null bs=1M status=none
		e=$(date +%s%N)
		t=$(( (e - s) / 1000 ))
		if [ "$w" = ak ]; then
			[ -z "$best_ak" ] || [ "$t" -lt "$best_ak" ] && best_ak=$t
		else
			[ -z "$best_cat" ] || [ "$t" -lt "$best_cat" ] && best_cat=$t
		fi
	done
done
# What came out, once more untimed: every planted key replaced.
replaced=$("$AKCTL" --no-prompt redact < "$T/text" | grep -o '\[ak:p[0-9]*\]' | wc -l)

trace "added latency: a line a millisecond through redact and through cat"
"$PY" - "$AKCTL" <<'PY' > "$T/lat"
import os, select, subprocess, sys, time
def run(cmd, lines, n=1000):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out = p.stdout.fileno()
    lat = []
    for i in range(n):
        line = lines[i % len(lines)]
        t0 = time.perf_counter()
        os.write(p.stdin.fileno(), line)
        got = b""
        while len(got) < len(line):
            if not select.select([out], [], [], 10)[0]:
                sys.exit("%s held %r back" % (cmd[-1], line))
            got += os.read(out, 65536)
        lat.append(time.perf_counter() - t0)
        if got != line:
            sys.exit("line changed: %r" % got)
        time.sleep(0.001)
    p.stdin.close()
    p.wait()
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[len(lat) * 99 // 100] * 1e6
plain = [b"const token = model(self) if else for %d\n" % i for i in range(50)]
prefix = [b"export ANTHROPIC_API_KEY=sk-ant-api03-", b"see sk-ant-api03-"]
for name, lines in (("plain", plain), ("prefix", prefix)):
    a50, a99 = run([sys.argv[1], "--no-prompt", "redact"], lines)
    c50, c99 = run(["cat"], lines)
    print(name, "%.0f %.0f %.0f %.0f" % (a50, a99, c50, c99))
PY

gbs() { echo "scale=2; $BYTES / $1 / 1000" | bc -l; }
echo
echo "text: $((BYTES / 1048576)) MiB, $NKEYS stored keys, $PLANTED planted copies (every variant); best wall of" \
	"$RUNS runs, alternately"
printf '%-44s %8.3f s  %5s GB/s   goal >= 1 GB/s\n' "dd | akctl redact | dd" \
	"$(echo "$best_ak / 1000000" | bc -l)" "$(gbs "$best_ak")"
printf '%-44s %8.3f s  %5s GB/s\n' "dd | cat | dd (the pipes alone)" \
	"$(echo "$best_cat / 1000000" | bc -l)" "$(gbs "$best_cat")"
printf 'replaced: %d of %d planted\n' "$replaced" "$PLANTED"
echo
echo "latency of a line written every millisecond (us): redact p50 p99, cat p50 p99, p99 added (goal <= 1000)"
while read -r name a50 a99 c50 c99; do
	printf '%-8s %6s %6s   %6s %6s   %6s\n' "$name" "$a50" "$a99" "$c50" "$c99" "$((a99 - c99))"
done < "$T/lat"
[ "$replaced" -eq "$PLANTED" ] || fail "replaced $replaced of $PLANTED planted keys"
exit 0
