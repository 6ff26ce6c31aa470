#!/bin/bash
# akctl scan: planted keys (generated here) found in files, every variant, git objects (dangling commit,
# dropped stash, index), histories and AI transcripts; nothing on a clean tree; no value in any output;
# the pre-commit hook blocks and allows.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

command -v git >/dev/null || skip "git not installed"
two_keys_unlocked

trace "clean tree: exit 0, nothing printed"
mkdir -p "$T/clean/sub"
head -c 200000 /dev/urandom > "$T/clean/sub/bin"
printf 'ANTHROPIC_API_KEY=sk-ant-api03-placeholder\ntask-force\n' > "$T/clean/readme"
expect_exit 0 "$AKCTL" scan "$T/clean"
[ -s "$OUT" ] && fail "clean tree reported: $(cat "$OUT")"

trace "many large files: each worker maps them side by side and reuses its region when full"
# 140 files of 1 MiB (sparse: no disk, pages of zeros) are more than the two workers' 64 MiB regions
# hold, so each region is emptied and filled again; one file is larger than a region and is mapped on
# its own. A key in every tenth file, at a place of its own in each; the files between hold none.
B="$T/big"
mkdir -p "$B"
for i in $(seq 140); do truncate -s 1M "$B/f$(printf %03d "$i")"; done
for i in $(seq 5 10 140); do
	printf 'k=%s\n' "$KEY" | dd of="$B/f$(printf %03d "$i")" bs=1 seek=$((i * 7001)) conv=notrunc \
		status=none
done
truncate -s 65M "$B/huge"
printf '\nk=%s\n' "$KEY" | dd of="$B/huge" bs=1 seek=$((64 * 1048576 + 4093)) conv=notrunc status=none
expect_exit 1 "$AKCTL" scan --no-patterns "$B"
[ "$(grep -c "^$B/f[0-9]*:1: production ANTHROPIC_API_KEY (raw) fp:" "$OUT")" -eq 14 ] ||
	fail "keys in the batch-mapped files: $(cat "$OUT")"
grep -qx "$B/huge:2: production ANTHROPIC_API_KEY (raw) fp:[0-9a-f]\{12\}" "$OUT" ||
	fail "the key past the region's size not found: $(cat "$OUT")"
[ "$(wc -l < "$OUT")" -eq 15 ] || fail "more than the planted keys: $(cat "$OUT")"
grep -q "scanning:" "$ERR" && fail "a progress line on a pipe"
cp "$OUT" "$T/big.out"
# On a terminal, a progress line on stderr, drawn and then erased; findings the same. Not on a pipe.
expect_exit 1 "$PY" "$TESTS_DIR/pty_run.py" --stdout "$T/tty.out" -- "$AKCTL" scan --no-patterns "$B"
grep -q "scanning: [0-9]* files, [0-9]* MiB" "$OUT" || fail "no progress line on a terminal: $(od -c "$OUT" | head)"
# Erased before the summary: the last thing before it clears the line.
grep -q "$(printf '\r\033\\[K')akctl: scan: 15 stored key occurrences" "$OUT" ||
	fail "progress line not erased: $(od -c "$OUT" | tail -5)"
cmp -s "$T/tty.out" "$T/big.out" || fail "findings differ with a terminal: $(diff "$T/tty.out" "$T/big.out")"
# In walk order, the same as on one thread (one CPU: no workers), line for line.
if command -v taskset >/dev/null; then
	expect_exit 1 taskset -c 0 "$AKCTL" scan --no-patterns "$B"
	cmp -s "$OUT" "$T/big.out" || fail "not as on one thread: $(diff "$OUT" "$T/big.out")"
fi
rm -rf "$B"

trace "large files of many lines, mapped or read: a key across a read's end, line numbers exact"
# Each worker maps its first large file and reads its second (then whichever was faster): eight files
# of 1.3 MiB give both ways to both workers. Reading goes 256 KiB at a time and counts lines only
# when something is found, from the file; mapping counts them where they lie. Keys at known lines,
# one across the first 256 KiB boundary, one in the last bytes.
L="$T/lines"
mkdir -p "$L"
"$PY" - "$KEY" "$L" > "$T/lines.expect" <<'PY'
import sys
key, d = sys.argv[1], sys.argv[2]
for f in range(8):
    lines, size, want = [], 0, (1 + f, 15000 + 997 * f)
    n = 0
    while size < 1300000:
        n += 1
        line = "%06d the quick brown fox %s" % (n, "x" * (n % 50))
        if n in want:
            line += " k=" + key
        lines.append(line)
        size += len(line) + 1
    text = "\n".join(lines) + "\n"
    if f == 2:  # a key across the first read's end, on a line of its own
        cut = 262144 - 40
        text = text[:cut] + key + "\n" + text[cut:]
    if f == 6:  # the key is the last thing in the file
        text += "k=" + key
    at = text.find(key)
    while at >= 0:
        print("%s/f%d:%d" % (d, f, text.count("\n", 0, at) + 1))
        at = text.find(key, at + 1)
    open("%s/f%d" % (d, f), "w").write(text)
PY
sort -t: -k1,1 -k2n "$T/lines.expect" > "$T/lines.want"
expect_exit 1 "$AKCTL" scan --no-patterns "$L"
grep -v "production ANTHROPIC_API_KEY (raw) fp:" "$OUT" && fail "other findings: $(cat "$OUT")"
sed 's/: production .*//' "$OUT" | sort -t: -k1,1 -k2n > "$T/lines.got"
cmp -s "$T/lines.got" "$T/lines.want" || fail "lines: $(diff "$T/lines.got" "$T/lines.want")"
if command -v taskset >/dev/null; then
	cp "$OUT" "$T/lines.out"
	expect_exit 1 taskset -c 0 "$AKCTL" scan --no-patterns "$L"
	cmp -s "$OUT" "$T/lines.out" || fail "not as on one thread: $(diff "$OUT" "$T/lines.out")"
fi
rm -rf "$L"

trace "large files mapped where the page cache holds them in large folios, read where in 4 KiB pages"
# A mapped file's page faults show which: a fault maps a whole large folio, but only 16 small pages.
# 40 files of 1 MiB, a key in every eighth. Dropped from the cache and read back in 1 MiB reads, they
# sit in 4 KiB pages (the kernel reads a request that large ahead in small pages), and each worker
# maps its first file, then reads, mapping every 32nd to look again. Written anew in one write each,
# they sit in large folios where the filesystem has them (ext4 from 6.16, XFS), and every file is
# mapped. The share of the files' pages in large folios is read from /proc/kpageflags (root), and
# each expectation is checked where the cache is as it needs; with one CPU there are no workers and
# every file is read.
command -v strace >/dev/null || fail "strace is needed (Debian: apt-get install strace)"
IO="$T/io"
mkdir -p "$IO"
"$PY" - "$KEY" "$IO" <<'PY'
import sys
key, d = sys.argv[1], sys.argv[2]
for f in range(40):
    lines = ["%06d %s" % (n, "lorem ipsum dolor " * (n % 5)) for n in range(1, 22000)]
    if f % 8 == 3:
        lines[1000 * (f % 7) + 5] += " k=" + key
    text = "\n".join(lines) + "\n"
    open("%s/f%02d" % (d, f), "w").write(text[:1 << 20])
PY
# io_state written|small: the files in that state (tests/pagecache.py); prints the percentage of their
# cached pages in large folios, or "unknown" without root.
io_state() { "$PY" "$TESTS_DIR/pagecache.py" "$1" "$IO"; }
# io_scan NAME: the scan under strace; NAME.maps gets how many of the files were mapped.
io_scan() {
	# (LeakSanitizer cannot run under ptrace: off for this one run in sanitizer builds)
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -y -qq -o "$T/$1.strace" -e trace=mmap \
		"$AKCTL" scan --no-patterns "$IO" > "$T/$1.out" 2>/dev/null
	grep -c "^[0-9]* *mmap(.*, PROT_READ, MAP_PRIVATE|MAP_FIXED, [0-9]*<$IO/f" "$T/$1.strace" > "$T/$1.maps"
	sed 's/ fp:.*//' "$T/$1.out" | sort > "$T/$1.found"
}
for i in 3 11 19 27 35; do
	printf '%s/f%02d:%d: production ANTHROPIC_API_KEY (raw)\n' "$IO" "$i" $((1000 * (i % 7) + 6))
done | sort > "$T/io.want"
small=$(io_state small)
io_scan small
cmp -s "$T/small.found" "$T/io.want" || fail "4 KiB pages: $(diff "$T/small.found" "$T/io.want")"
maps=$(cat "$T/small.maps")
if [ "$(nproc)" -lt 2 ]; then
	trace "one CPU: no workers, every file read; mapped $maps of 40"
elif [ -n "$AKT_ASAN_RT" ]; then
	# Each first touch of ASan's shadow of a mapped page is a page fault of the worker too.
	trace "sanitizer build: the shadow memory's faults count too; mapped $maps of 40"
elif [ "$small" = unknown ] || [ "$small" -gt 10 ]; then
	trace "the files in 4 KiB pages: ${small}% in large folios; mapped $maps of 40"
else
	[ "$maps" -ge 1 ] && [ "$maps" -le 6 ] || fail "4 KiB pages: $maps of 40 files mapped, want 1 to 6"
fi
written=$(io_state written)
io_scan written
cmp -s "$T/written.found" "$T/io.want" || fail "large folios: $(diff "$T/written.found" "$T/io.want")"
maps=$(cat "$T/written.maps")
if [ "$(nproc)" -lt 2 ] || [ -n "$AKT_ASAN_RT" ]; then
	:
elif [ "$written" = unknown ] || [ "$written" -lt 90 ]; then
	trace "the files written anew: ${written}% in large folios (none on this filesystem); mapped $maps of 40"
else
	[ "$maps" -eq 40 ] || fail "large folios (${written}%): $maps of 40 files mapped, want all"
fi
rm -rf "$IO"

trace "every variant, in a file each"
# variants KEY DIR: a file for each variant of KEY (and each kind of wrap) in DIR.
variants() {
	mkdir -p "$2"
	"$PY" - "$1" "$2" <<'PY'
import base64, sys, urllib.parse
key, d = sys.argv[1], sys.argv[2]
kb = key.encode()
def w(name, data):
    open(f"{d}/{name}", "wb").write(b"line one\nprefix " + data + b" suffix\n")
w("raw", kb)
for a in range(3):
    blob = b"xy"[:a] + kb + b"\n"
    w(f"b64-{a}", base64.b64encode(blob))
    w(f"b64url-{a}", base64.urlsafe_b64encode(blob).rstrip(b"="))
w("hex", kb.hex().encode())
w("HEX", kb.hex().upper().encode())
w("pct", "".join("%%%02X" % c for c in kb).encode())
w("json", "".join("\\u%04x" % c for c in kb).encode())
w("utf16", key.encode("utf-16-le"))
w("wrap-nl", kb[:50] + b"\n" + kb[50:])
w("wrap-esc", kb[:70] + b"\\n" + kb[70:])
w("wrap-cont", kb[:30] + b"\\\n    " + kb[30:])
PY
}
V="$T/variants"
variants "$KEY" "$V"
expect_exit 1 "$AKCTL" scan --no-patterns "$V"
no_value "$OUT" "$ERR"
for f in raw b64-0 b64-1 b64-2 b64url-0 b64url-1 b64url-2 hex HEX pct json utf16 wrap-nl wrap-esc wrap-cont; do
	grep -q "^$V/$f:2: production ANTHROPIC_API_KEY (" "$OUT" || fail "variant $f not found"
done
assert_eq "$(wc -l < "$OUT")" 15 "one line per planted copy"
grep -q "/wrap-nl:2: production ANTHROPIC_API_KEY (raw, wrapped) fp:[0-9a-f]\{12\}$" "$OUT" ||
	fail "wrapped key not labelled"
expect_exit 1 "$AKCTL" scan --json --no-patterns "$V/hex"
"$PY" -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["variant"]=="hex" and o["line"]==2 and o["key"]=="production ANTHROPIC_API_KEY", o' "$OUT" ||
	fail "--json line"

trace "every variant in every kind of source: git objects, each history format, each transcript, Cursor"
# The fifteen copies above, all in one text, planted in a repository and in every history and
# transcript file of another HOME (zsh's metafied: bytes from 0x83 up, and NUL, escaped as zsh does).
# sources VARIANTS HOME: every file of VARIANTS, in one text, in every source under HOME.
sources() {
	"$PY" - "$1" "$2" <<'PY'
import os, sys
v, h = sys.argv[1], sys.argv[2]
names = ["raw", "b64-0", "b64-1", "b64-2", "b64url-0", "b64url-1", "b64url-2", "hex", "HEX", "pct", "json",
         "utf16", "wrap-nl", "wrap-esc", "wrap-cont"]
text = b"".join(open(os.path.join(v, n), "rb").read() for n in names)
def metafy(b):
    out = bytearray()
    for c in b:
        if c >= 0x83 or c == 0:
            out += bytes([0x83, c ^ 0x20])
        else:
            out.append(c)
    return bytes(out)
files = [".bash_history", ".zsh_history", ".local/share/fish/fish_history", ".python_history",
         ".node_repl_history", ".psql_history", ".claude/projects/p/s.jsonl", ".claude/history.jsonl",
         ".claude.json", ".claude/settings.local.json", ".codex/sessions/2026/01/rollout-1.jsonl",
         ".copilot/session-state/s/events.jsonl"]
for f in files:
    p = os.path.join(h, f)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(metafy(text) if f == ".zsh_history" else text)
os.makedirs(os.path.join(h, "repo"))
open(os.path.join(h, "repo", "all.txt"), "wb").write(text)
import sqlite3
c = os.path.join(h, ".config/Cursor/User/globalStorage")
os.makedirs(c)
db = sqlite3.connect(os.path.join(c, "state.vscdb"))
for t in ("ItemTable", "cursorDiskKV"):
    db.execute("CREATE TABLE %s (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)" % t)
db.execute("INSERT INTO cursorDiskKV VALUES ('all', ?)", (text,))
db.commit()
db.close()
PY
	(cd "$2/repo" && git init -q && git add all.txt && git -c user.name=t -c user.email=t@example.invalid \
		commit -qm all) || fail "variants repository"
}
H2="$T/h2"
sources "$V" "$H2"
HOME="$H2" XDG_CONFIG_HOME="$H2/.config" expect_exit 1 "$AKCTL" scan --history --agents --no-patterns
no_value "$OUT" "$ERR"
for f in .bash_history .zsh_history .local/share/fish/fish_history .python_history .node_repl_history \
	.psql_history .claude/projects/p/s.jsonl .claude/history.jsonl .claude.json .claude/settings.local.json \
	.codex/sessions/2026/01/rollout-1.jsonl .copilot/session-state/s/events.jsonl; do
	assert_eq "$(grep -c "^$H2/$f:[0-9]*: production ANTHROPIC_API_KEY (" "$OUT")" 15 "copies found in $f"
done
assert_eq "$(grep -c "^$H2/.config/Cursor/User/globalStorage/state.vscdb#cursorDiskKV/all:[0-9]*: production ANTHROPIC_API_KEY (" "$OUT")" \
	15 "copies found in Cursor's state.vscdb"
expect_exit 1 "$AKCTL" scan --git --no-patterns "$H2/repo"
# The working tree's file is scanned too; the object's copies are the ones named by object id. (A
# key without "+" or "/" has the same base64url as base64, reported as base64.)
assert_eq "$(grep -c "@[0-9a-f]\{40\}:[0-9]*: production ANTHROPIC_API_KEY (" "$OUT")" 15 "copies found in git objects"
for v in raw base64 hex percent json-escape utf16le; do
	grep -q "@[0-9a-f]\{40\}:[0-9]*: production ANTHROPIC_API_KEY ($v" "$OUT" || fail "git: variant $v not reported"
done

trace "the same corpus with a key that is not stored: nothing found, in any source"
# Every variant and wrap of another key of the same shape (same public prefix, same length), in every
# source as above: the same size of text, and no false positive.
variants "$(fake_key)" "$T/variants-other"
sources "$T/variants-other" "$T/h3"
HOME="$T/h3" XDG_CONFIG_HOME="$T/h3/.config" expect_exit 0 "$AKCTL" scan --history --agents --no-patterns \
	"$T/variants-other"
[ -s "$OUT" ] && fail "a key not stored reported: $(cat "$OUT")"
expect_exit 0 "$AKCTL" scan --git --no-patterns "$T/h3/repo"
[ -s "$OUT" ] && fail "a key not stored reported in git: $(cat "$OUT")"

trace "many files (scanned on several threads, large ones mapped): each copy once, at its line, in walk order"
M="$T/many"
"$PY" - "$KEY" "$M" <<'PY'
import os, sys
key, d = sys.argv[1].encode(), sys.argv[2]
for i in range(48):
    sub = os.path.join(d, "s%d" % (i % 3))
    os.makedirs(sub, exist_ok=True)
    # every third file holds the key on line i + 2; every fourth is large (400 KiB of text before it)
    lines = [b"filler %d" % i] * (1 + (40000 if i % 4 == 0 else 0) + i)
    if i % 3 == 0:
        lines.append(b"KEY=" + key)
    open(os.path.join(sub, "f%02d" % i), "wb").write(b"\n".join(lines) + b"\n")
PY
expect_exit 1 "$AKCTL" scan --no-patterns "$M"
no_value "$OUT"
find "$M" -type f | while read -r f; do
	n=${f##*/f}
	n=$((10#$n))
	if [ $((n % 3)) = 0 ]; then
		echo "$f:$((1 + (n % 4 == 0 ? 40000 : 0) + n + 1))"
	fi
done > "$T/many.want"
cut -d: -f1,2 "$OUT" > "$T/many.got"
cmp -s "$T/many.want" "$T/many.got" || fail "many files: $(diff "$T/many.want" "$T/many.got" | head -5)"
expect_exit 1 "$AKCTL" scan --no-patterns "$M"
cut -d: -f1,2 "$OUT" | cmp -s - "$T/many.got" || fail "many files: output differs between runs"

trace "unknown key-shaped strings, and --no-patterns"
mkdir -p "$T/unk"
printf 'OTHER=%s\n' "$(fake_key)" > "$T/unk/f"
expect_exit 1 "$AKCTL" scan "$T/unk"
grep -q ':1: unknown anthropic-api-key (raw) fp:' "$OUT" || fail "unknown key not reported"
expect_exit 0 "$AKCTL" scan --no-patterns "$T/unk"

trace "symlinks are not followed, .git skipped unless --git"
mkdir -p "$T/links/.git"
ln -s "$V" "$T/links/out"
printf '%s\n' "$KEY" > "$T/links/.git/x"
expect_exit 0 "$AKCTL" scan --no-patterns "$T/links"

trace "git: dangling commit, dropped stash, index"
R="$T/repo"
git init -q "$R"
cd "$R" || fail "cd"
git config user.email t@example.invalid
git config user.name t
echo hello > a.txt
git add a.txt
git commit -qm init
printf 'KEY=%s\n' "$KEY" > dangling.txt
git add dangling.txt
git commit -qm dangling
git reset -q --hard HEAD~1
git reflog expire --expire=now --all
printf 'X=%s\n' "$(printf '%s' "$KEY2" | base64 -w0)" >> a.txt
git stash -q
git stash drop -q
printf '%s\n' "$KEY2" > staged.txt
git add staged.txt
git rm -q --cached staged.txt
rm staged.txt
expect_exit 0 "$AKCTL" scan --no-patterns "$R"
expect_exit 1 "$AKCTL" scan --git --no-patterns "$R"
no_value "$OUT" "$ERR"
grep -q "@[0-9a-f]\{40\}:1: production ANTHROPIC_API_KEY (raw)" "$OUT" || fail "dangling commit's blob not found"
grep -q "@[0-9a-f]\{40\}:2: dev ANTHROPIC_API_KEY (base64)" "$OUT" || fail "dropped stash's blob not found"
grep -q "@[0-9a-f]\{40\}:1: dev ANTHROPIC_API_KEY (raw)" "$OUT" || fail "blob left by the index not found"
printf 'TOKEN=%s\n' "$KEY" > sub-committed.txt
git add sub-committed.txt
git commit -qm committed
expect_exit 1 "$AKCTL" scan --git --no-patterns "$R"
grep -q "^$R/sub-committed.txt@[0-9a-f]\{40\}:1: production ANTHROPIC_API_KEY (raw)" "$OUT" ||
	fail "a blob in HEAD not named by its path: $(cat "$OUT")"
git rm -q sub-committed.txt
git commit -qm removed
cd "$T" || fail "cd"

trace "git: many objects, one cat-file per CPU, findings in the object listing's order"
M="$T/objs"
git init -q "$M"
for i in $(seq 40); do
	# A key in every blob, and filler so the objects differ in size.
	{ head -c $((i * 3000)) /dev/urandom | base64 -w76; printf 'K%d=%s\n' "$i" "$KEY"; } > "$M/f$i"
done
git -C "$M" add -A
git -C "$M" -c user.name=t -c user.email=t@example.invalid commit -qm many
git -C "$M" gc -q
cd "$M" || fail "cd"
# No path: the object store alone, not the files too.
expect_exit 1 "$AKCTL" scan --git --no-patterns
no_value "$OUT" "$ERR"
cp "$OUT" "$T/objs.out"
[ "$(grep -c ' production ANTHROPIC_API_KEY (raw) fp:' "$T/objs.out")" = 40 ] ||
	fail "not every blob's key reported: $(cat "$T/objs.out")"
sed 's/.*@\([0-9a-f]\{40\}\):.*/\1/' "$T/objs.out" > "$T/objs.ids"
git -C "$M" cat-file --batch-all-objects --batch-check --unordered | awk '$2 == "blob" { print $1 }' \
	> "$T/objs.list"
cmp -s "$T/objs.ids" "$T/objs.list" || fail "findings not in the object listing's order"
if command -v taskset >/dev/null; then
	expect_exit 1 taskset -c 0 "$AKCTL" scan --git --no-patterns
	cmp -s "$OUT" "$T/objs.out" || fail "output on one CPU differs from the output on all"
fi

trace "git: a cat-file that stops early is an error, and no git is left running"
mkdir -p "$T/fakegit"
REALGIT=$(command -v git)
# Serves the first object asked for, then exits as if it had died.
cat > "$T/fakegit/git" <<EOF
#!/bin/sh
echo \$\$ >> "$T/fakegit/pids"
if [ "\$1 \$2" = "cat-file --batch" ] && [ \$# = 2 ]; then
	head -n 1 | "$REALGIT" cat-file --batch
	exit 0
fi
exec "$REALGIT" "\$@"
EOF
chmod +x "$T/fakegit/git"
PATH="$T/fakegit:$PATH" expect_exit 1 "$AKCTL" scan --git --no-patterns
grep -q "^akctl: scan: git cat-file --batch-all-objects in \\. failed" "$ERR" ||
	fail "no error for a failing git: $(cat "$ERR")"
no_value "$OUT" "$ERR"
[ -s "$T/fakegit/pids" ] || fail "the fake git was not run"
while read -r pid; do
	kill -0 "$pid" 2>/dev/null && fail "a git was left running"
done < "$T/fakegit/pids"

trace "git: Ctrl-C during a scan kills and reaps every cat-file"
rm -f "$T/fakegit/pids"
# Each cat-file --batch hangs, as on a huge object.
cat > "$T/fakegit/git" <<EOF
#!/bin/sh
if [ "\$1 \$2" = "cat-file --batch" ] && [ \$# = 2 ]; then
	echo \$\$ >> "$T/fakegit/pids"
	exec sleep 600
fi
exec "$REALGIT" "\$@"
EOF
NCAT=$(nproc)
[ "$NCAT" -gt 8 ] && NCAT=8
# SIGINT as from a terminal (a background job of this shell would ignore it).
PATH="$T/fakegit:$PATH" "$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$AKCTL" scan --git --no-patterns > "$OUT" 2> "$ERR" &
SCANPID=$!
catfiles() { [ "$(wc -l < "$T/fakegit/pids" 2>/dev/null)" = "$NCAT" ]; }
wait_until 20 catfiles || fail "$NCAT cat-file processes not started: $(cat "$T/fakegit/pids")"
kill -INT "$SCANPID"
RC=0
wait "$SCANPID" || RC=$?
assert_eq "$RC" 130 "exit status after SIGINT"
reaped() {
	local pid
	while read -r pid; do
		[ -e "/proc/$pid" ] && return 1
	done < "$T/fakegit/pids"
	return 0
}
if ! wait_until 10 reaped; then
	xargs kill < "$T/fakegit/pids"
	fail "a cat-file was left running or unreaped"
fi
cd "$T" || fail "cd"

trace "pre-commit hook blocks a stored key, allows a clean commit"
expect_exit 0 "$AKCTL" scan --install-hook "$R"
[ -x "$R/.git/hooks/pre-commit" ] || fail "hook not installed"
# It runs the akctl the user runs (the front), not the full CLI the front hands the command to.
grep -qxF "exec '$(realpath "$AKCTL")' scan --staged --no-patterns" "$R/.git/hooks/pre-commit" ||
	fail "hook does not run akctl: $(tail -1 "$R/.git/hooks/pre-commit")"
expect_exit nonzero "$AKCTL" scan --install-hook "$R"
cd "$R" || fail "cd"
git stash list | grep -q . && fail "stash not dropped"
echo clean > c.txt
git add c.txt
expect_exit 0 git commit -qm clean
printf 'k: %s\n' "$(printf '%s' "$KEY" | od -An -tx1 | tr -d ' \n')" > leak.txt
git add leak.txt
expect_exit 1 git commit -qm leak
cat "$OUT" "$ERR" | grep "^leak.txt:1: production ANTHROPIC_API_KEY (hex)" >/dev/null || fail "hook did not name the file"
no_value "$OUT" "$ERR"
git rm -q --cached leak.txt
cd "$T" || fail "cd"

trace "histories and transcripts"
H="$HOME"
mkdir -p "$H/.local/share/fish" "$H/.claude/projects/p1" "$H/.codex/sessions/2026/01" \
	"$H/.copilot/session-state/s1"
printf 'export ANTHROPIC_API_KEY=%s\n' "$KEY" > "$H/.bash_history"
# zsh metafies bytes from 0x83 on: "é" (c3 a9) is stored as c3 83 89.
printf ': 1700000000:0;echo \xc3\x83\x89 %s\n' "$KEY2" > "$H/.zsh_history"
printf -- '- cmd: export K=%s\n  when: 1\n' "$KEY" > "$H/.local/share/fish/fish_history"
printf 'k = "%s"\n' "$KEY" > "$H/.python_history"
printf 'process.env.K="%s"\n' "$KEY" > "$H/.node_repl_history"
printf "select '%s';\n" "$KEY" > "$H/.psql_history"
expect_exit 1 "$AKCTL" scan --history --no-patterns
for f in .bash_history .zsh_history .local/share/fish/fish_history .python_history .node_repl_history .psql_history; do
	grep -q "^$H/$f:1: " "$OUT" || fail "history $f not scanned"
done
printf '{"type":"user","message":{"content":"ANTHROPIC_API_KEY=%s\\nOTHER=1"}}\n' "$KEY" > "$H/.claude/projects/p1/s.jsonl"
printf '{"display":"%s"}\n' "$KEY2" > "$H/.claude/history.jsonl"
printf '{"env":{"K":"%s"}}\n' "$KEY" > "$H/.claude.json"
printf '{"env":{"K":"%s"}}\n' "$KEY" > "$H/.claude/settings.local.json"
printf '{"payload":"%s"}\n' "$KEY" > "$H/.codex/sessions/2026/01/rollout-1.jsonl"
printf '{"data":"%s"}\n' "$KEY2" > "$H/.copilot/session-state/s1/events.jsonl"
expect_exit 1 "$AKCTL" scan --agents --no-patterns
for f in .claude/projects/p1/s.jsonl .claude/history.jsonl .claude.json .claude/settings.local.json \
	.codex/sessions/2026/01/rollout-1.jsonl .copilot/session-state/s1/events.jsonl; do
	grep -q "^$H/$f:1: " "$OUT" || fail "transcript $f not scanned"
done
no_value "$OUT" "$ERR"

trace "Cursor's state.vscdb (SQLite): a key in a value is found, a corrupt file is one line and skipped"
C="$XDG_CONFIG_HOME/Cursor/User"
mkdir -p "$C/globalStorage" "$C/workspaceStorage/w1" "$C/workspaceStorage/w2"
"$PY" - "$KEY" "$KEY2" "$C" <<'PY'
import sqlite3, sys
key, key2, c = sys.argv[1], sys.argv[2], sys.argv[3]
for path, table, value in ((c + "/globalStorage/state.vscdb", "ItemTable", "{\"token\":\"%s\"}" % key),
                           (c + "/workspaceStorage/w1/state.vscdb", "cursorDiskKV", key2.encode())):
    db = sqlite3.connect(path)
    for t in ("ItemTable", "cursorDiskKV"):
        db.execute("CREATE TABLE %s (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)" % t)
    db.execute("INSERT INTO ItemTable VALUES ('clean', 'nothing here')")
    db.execute("INSERT INTO %s VALUES ('composerData:1', ?)" % table, (value,))
    db.commit()
    db.close()
PY
head -c 8192 /dev/urandom > "$C/workspaceStorage/w2/state.vscdb"
expect_exit 1 "$AKCTL" scan --agents --no-patterns
grep -q "^$C/globalStorage/state.vscdb#ItemTable/composerData:1:1: production ANTHROPIC_API_KEY (raw)" "$OUT" ||
	fail "Cursor ItemTable value not found: $(cat "$OUT")"
grep -q "^$C/workspaceStorage/w1/state.vscdb#cursorDiskKV/composerData:1:1: dev ANTHROPIC_API_KEY (raw)" "$OUT" ||
	fail "Cursor cursorDiskKV blob not found"
[ "$(grep -c "w2/state.vscdb" "$ERR")" = 1 ] || fail "corrupt state.vscdb not reported in one line: $(cat "$ERR")"
grep -q "w2/state.vscdb: cannot read as SQLite" "$ERR" || fail "corrupt state.vscdb message"
[ -e "$C/globalStorage/state.vscdb-journal" ] && fail "state.vscdb opened writable"
no_value "$OUT" "$ERR"

trace "locked agent: exit 4"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" scan "$V"
exit 0
