#!/bin/bash
# Leak-scanner benchmark (not a test): a generated tree of SIZE MiB (default 256; the goal is stated for
# 1024) with keys planted in every variant, 64 stored keys, and in one run:
#   - akctl scan --no-patterns over the tree against `rg -F` given the same literal set (every variant of
#     the 64 keys as a full literal), goal >= 10x;
#   - akctl scan --git (the whole object store of a repository holding that tree, one
#     `git cat-file --batch` per CPU) against one `git cat-file --batch-all-objects --batch` to
#     /dev/null, goal >= 1x (on a 2-CPU machine the ratio moves with the load of the other CPU);
#   - every planted copy found (the count must match);
#   - the first comparison again on a page cache of 4 KiB pages (see below).
# The page cache: mapping a file costs per folio of the page cache, not per byte. A file written in one
# go sits in folios of up to 2 MiB (kernels from 6.16 on, ext4 among them); a file read back from disk
# may sit in 4 KiB pages, depending on how it was read, and this machine pages idle cache out by
# itself. Runs on a reused tree found it in whatever state the weeks before had left, and the ratio
# moved by half. So every run first writes each file of the tree anew, in one write, as the generator
# does (a fresh tree and a reused one are then the same), and reports how much of the tree the cache
# holds in large folios; then, as the worst case, drops the tree from the cache and reads it back in
# 1 MiB reads, which leaves it in 4 KiB pages here (as every file is on a kernel without large folios
# for its filesystem). The scan reads rather than maps where it finds 4 KiB pages.
# Each comparison runs the two commands alternately, SCAN_BENCH_RUNS times each (default 7): best wall
# time, median wall time and CPU time beside it. Needs ripgrep (Debian: apt-get install ripgrep), git
# and /usr/bin/time; installs nothing.
# usage: AKAGENT=build/akagent AKCTL=build/akctl tests/bench/scan-bench.sh [SIZE_MIB]
# A small SIZE_MIB (64, 128) makes a quick round while changing the scanner; 1024 takes minutes to
# generate.
# SCAN_BENCH_CACHE=DIR keeps the generated keys, tree and repository in DIR and reuses them on the next
# run of the same size (generating 1 GiB takes minutes); DIR holds fake keys only.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SIZE=${1:-256}
command -v rg >/dev/null || fail "ripgrep (rg) is needed: apt-get install ripgrep"
command -v git >/dev/null || fail "git is needed"
[ -x /usr/bin/time ] || fail "/usr/bin/time is needed (Debian: apt-get install time)"
NKEYS=64
AKABS=$(realpath "$AKCTL")	# the git scan runs inside the repository
init_store
start_agent
unlock
G=$T
if [ -n "${SCAN_BENCH_CACHE:-}" ]; then
	G=$SCAN_BENCH_CACHE/$SIZE
	mkdir -p "$G"
fi
if [ ! -s "$G/planted" ]; then
	rm -rf "$G/tree" "$G/repo"
	fake_keys "$NKEYS" "$G/keys"
fi
add_profiles "$G/keys"

if [ ! -s "$G/planted" ]; then
trace "generating $SIZE MiB with planted keys"
"$PY" - "$G/keys" "$G/tree" "$SIZE" "$G/literals" "$G/planted.tmp" <<'PY'
import base64, os, random, sys
keys = [l.strip().encode() for l in open(sys.argv[1])]
root, size = sys.argv[2], int(sys.argv[3]) << 20
rng = random.Random(7)
def variants(k):
    out = [("raw", k), ("hex", k.hex().encode()), ("HEX", k.hex().upper().encode()),
           ("pct", "".join("%%%02X" % c for c in k).encode()),
           ("json", "".join("\\u%04x" % c for c in k).encode()), ("utf16", k.decode().encode("utf-16-le"))]
    for a in range(3):
        out.append(("b64-%d" % a, base64.b64encode(b"xy"[:a] + k + b"\n")))
        out.append(("b64url-%d" % a, base64.urlsafe_b64encode(b"xy"[:a] + k + b"\n")))
    return out
# The literal set rg gets: every variant of every key, whole (what an exact scanner must look for).
with open(sys.argv[4], "wb") as f:
    for k in keys:
        for _, v in variants(k):
            f.write(v + b"\n")
words = [b"const", b"return", b"function", b"ANTHROPIC_API_KEY", b"import", b"self", b"{", b"}", b"=",
         b"if", b"else", b"for", b"token", b"model", b"claude", b"api", b"sk-", b"task-force"]
def filler(n):
    out, m = [], 0
    while m < n:
        r = rng.random()
        if r < 0.001:  # a public prefix now and then, as in code and logs that mention keys
            line = b"ANTHROPIC_API_KEY=sk-ant-api03-" + base64.urlsafe_b64encode(os.urandom(12))
        elif r < 0.3:
            line = base64.b64encode(os.urandom(rng.randrange(20, 90)))
        else:
            line = b" ".join(rng.choice(words) for _ in range(rng.randrange(3, 16)))
        out.append(line)
        m += len(line) + 1
    return b"\n".join(out) + b"\n"
planted, written, i = 0, 0, 0
chunk = 1 << 20
while written < size:
    d = os.path.join(root, "d%03d" % (i // 64))
    os.makedirs(d, exist_ok=True)
    data = filler(chunk)
    if i % 4 == 0:  # a key in one file of four, in a rotating variant
        k = keys[i % len(keys)]
        name, v = variants(k)[(i // 4) % 12]
        pos = rng.randrange(len(data))
        data = data[:pos] + b"\nleak " + v + b" end\n" + data[pos:]
        planted += 1
    open(os.path.join(d, "f%05d.txt" % i), "wb").write(data)
    written += len(data)
    i += 1
open(sys.argv[5], "w").write("%d\n" % planted)
PY
fi
PLANTED=$(cat "$G/planted.tmp" 2>/dev/null || cat "$G/planted")
BYTES=$(du -sb "$G/tree" | cut -f1)

# pair CMD_A... -- CMD_B...: run A and B alternately, RUNS times each after one untimed round, so
# both meet the same load on a shared machine and the same warm cache (measured apart, one could get an
# idle minute and the other a busy one, which moved the ratio by 2x). Sets wa/wb: the best wall seconds
# of each; ma/mb: the median wall seconds; ca/cb: the CPU seconds (user + sys) of each's median run by
# CPU, much steadier than wall time. A's stdout of its last run goes to $T/last.
RUNS=${SCAN_BENCH_RUNS:-7}
pair() {
	local a=() b=() i w s e t cpu ta="" tb="" cas="" cbs=""
	while [ "$1" != "--" ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	"${a[@]}" > /dev/null 2>&1
	"${b[@]}" > /dev/null 2>&1
	for i in $(seq "$RUNS"); do
		for w in a b; do
			s=$(date +%s.%N)
			if [ "$w" = a ]; then
				/usr/bin/time -f '%U %S' -o "$T/cpu" "${a[@]}" > "$T/last" 2>/dev/null
			else
				/usr/bin/time -f '%U %S' -o "$T/cpu" "${b[@]}" > /dev/null 2>&1
			fi
			e=$(date +%s.%N)
			t=$(echo "$e - $s" | bc -l)
			cpu=$(tail -1 "$T/cpu" | awk '{print $1 + $2}')
			if [ "$w" = a ]; then ta="$ta $t"; cas="$cas $cpu"; else tb="$tb $t"; cbs="$cbs $cpu"; fi
		done
	done
	wa=$(echo "$ta" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1)
	wb=$(echo "$tb" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1)
	ma=$(echo "$ta" | tr ' ' '\n' | sed '/^$/d' | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
	mb=$(echo "$tb" | tr ' ' '\n' | sed '/^$/d' | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
	ca=$(echo "$cas" | tr ' ' '\n' | sed '/^$/d' | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
	cb=$(echo "$cbs" | tr ' ' '\n' | sed '/^$/d' | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
}
mbs() { echo "scale=0; $BYTES / $1 / 1000000" | bc -l; }

# cache_state written|small: the tree as just written, or in 4 KiB pages (see the top); prints the
# share of its cached pages in large folios.
cache_state() {
	local v
	v=$("$PY" "$TESTS_DIR/pagecache.py" "$1" "$G/tree")
	case $v in *[!0-9]*) echo "$v" ;; *) echo "$v%" ;; esac
}
trace "files: akctl scan --no-patterns vs rg -F (same literal set: $(wc -l < "$G/literals") literals)"
large_w=$(cache_state written)
pair "$AKCTL" --no-prompt scan --no-patterns "$G/tree" -- rg -F -a -c --no-ignore --hidden -f "$G/literals" "$G/tree"
t_ak=$wa c_ak=$ca t_rg=$wb c_rg=$cb m_ak=$ma m_rg=$mb
found=$(grep -c ' (' "$T/last")
# False positives: any finding in the three files of four that hold no key (f00001, f00002, ...: the
# generator plants in every fourth), 768 MiB of the gigabyte. The count above holds them too.
falsepos=$(grep ' (' "$T/last" | sed -n 's|.*/f\([0-9]*\)\.txt:.*|\1|p' | awk '$1 % 4 != 0' | wc -l)
pair "$AKCTL" --no-prompt scan "$G/tree" -- rg -F -a -c --no-ignore --hidden -f "$G/literals" "$G/tree"
t_akp=$wa c_akp=$ca t_rg2=$wb c_rg2=$cb
trace "files again, the tree in 4 KiB pages"
large_s=$(cache_state small)
pair "$AKCTL" --no-prompt scan --no-patterns "$G/tree" -- rg -F -a -c --no-ignore --hidden -f "$G/literals" "$G/tree"
t_aks=$wa c_aks=$ca t_rg3=$wb c_rg3=$cb m_aks=$ma m_rg3=$mb
sfound=$(grep -c ' (' "$T/last")

trace "git: a repository holding the tree; akctl scan --git vs git cat-file --batch-all-objects --batch"
R="$G/repo"
if [ ! -d "$R/.git" ] || [ ! -s "$G/planted" ]; then
	rm -rf "$R"
	git init -q "$R"
	cp -r "$G/tree/." "$R/"
	git -C "$R" add -A
	git -C "$R" -c user.name=b -c user.email=b@b commit -qm tree
	git -C "$R" gc -q
fi
[ -s "$G/planted" ] || mv "$G/planted.tmp" "$G/planted"
cd "$R" || fail "cd $R"
pair "$AKABS" --no-prompt scan --git --no-patterns -- sh -c 'git cat-file --batch-all-objects --batch > /dev/null'
cd - > /dev/null || fail "cd back"
t_git=$wa c_git=$ca t_cat=$wb c_cat=$cb
gfound=$(grep -c ' (' "$T/last")
ODB=$(du -sb "$R/.git/objects" | cut -f1)

ratio() { echo "scale=1; $1 / $2" | bc -l; }
# A CPU ratio: /usr/bin/time counts in hundredths, so a zero (a tiny tree) counts as one.
cratio() { echo "scale=1; $1 / ($2 + ($2 == 0) * 0.01)" | bc -l; }
echo
echo "tree: $((BYTES / 1048576)) MiB, $NKEYS stored keys, $PLANTED planted copies; best wall of $RUNS runs" \
	"taken alternately with the yardstick, CPU (user+sys) of the median run"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "akctl scan --no-patterns" "$t_ak" "$(mbs "$t_ak")" "$c_ak"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "rg -F -f literals (all variants of $NKEYS keys)" "$t_rg" "$(mbs "$t_rg")" "$c_rg"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "akctl scan (with unknown-key patterns)" "$t_akp" "$(mbs "$t_akp")" "$c_akp"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "rg -F (again, beside the previous line)" "$t_rg2" "$(mbs "$t_rg2")" "$c_rg2"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "akctl scan --no-patterns, 4 KiB pages" "$t_aks" "$(mbs "$t_aks")" "$c_aks"
printf '%-52s %8s s %6s MB/s  CPU %5s s\n' "rg -F (again, beside the previous line)" "$t_rg3" "$(mbs "$t_rg3")" "$c_rg3"
printf '%-52s %8s s %13s CPU %5s s\n' "git cat-file --batch-all-objects --batch >/dev/null" "$t_cat" "" "$c_cat"
printf '%-52s %8s s %13s CPU %5s s   (object store %s MiB on disk)\n' "akctl scan --git --no-patterns" \
	"$t_git" "" "$c_git" "$((ODB / 1048576))"
echo
printf 'ratio scan/rg -F:            %6sx   goal >= 10x   (CPU time: %sx; median runs: %sx)\n' \
	"$(ratio "$t_rg" "$t_ak")" "$(cratio "$c_rg" "$c_ak")" "$(ratio "$m_rg" "$m_ak")"
printf '  (page cache: %s of the tree in large folios, as written)\n' "$large_w"
printf 'ratio scan/rg -F (patterns): %6sx                 (CPU time: %sx)\n' "$(ratio "$t_rg2" "$t_akp")" \
	"$(cratio "$c_rg2" "$c_akp")"
printf 'ratio scan/rg -F, 4 KiB pages: %4sx                 (CPU time: %sx; median runs: %sx; %s in large folios)\n' \
	"$(ratio "$t_rg3" "$t_aks")" "$(cratio "$c_rg3" "$c_aks")" "$(ratio "$m_rg3" "$m_aks")" "$large_s"
printf 'ratio scan --git/cat-file:   %6sx   goal >= 1x    (CPU time: %sx)\n' "$(ratio "$t_cat" "$t_git")" \
	"$(cratio "$c_cat" "$c_git")"
printf 'found in files: %d of %d planted (%d in the %d MiB of files without a key); in git: %d\n' \
	"$found" "$PLANTED" "$falsepos" $((BYTES * 3 / 4 / 1048576)) "$gfound"
[ "$found" -eq "$PLANTED" ] || fail "files: found $found of $PLANTED"
[ "$falsepos" -eq 0 ] || fail "files: $falsepos findings in files without a key"
[ "$sfound" -eq "$PLANTED" ] || fail "files (4 KiB pages): found $sfound of $PLANTED"
[ "$gfound" -eq "$PLANTED" ] || fail "git: found $gfound of $PLANTED"
exit 0
