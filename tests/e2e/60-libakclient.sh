#!/bin/bash
# libakclient: `meson install --destdir` puts binaries, library, header, .pc, man pages, completions
# and units where expected; only akclient_* is exported; the example in docs/examples builds against
# the installed akclient.pc and takes a key from a live agent.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

: "${AK_BUILD_ROOT:?AK_BUILD_ROOT must name the meson build directory}"
: "${AK_SOURCE_ROOT:?AK_SOURCE_ROOT must name the source directory}"
command -v pkg-config >/dev/null || skip "pkg-config not installed"
command -v cc >/dev/null || skip "no C compiler"

D="$T/destdir"
trace "meson install --destdir"
expect_exit 0 meson install -C "$AK_BUILD_ROOT" --no-rebuild --quiet --destdir "$D"
prefix=$(meson introspect "$AK_BUILD_ROOT" --buildoptions |
	/usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
P="$D$prefix"
for f in bin/akagent bin/akctl include/ak/client.h share/man/man1/akctl.1 share/man/man1/akagent.1; do
	[ -f "$P/$f" ] || fail "$f not installed under $P"
done
[ -x "$P/libexec/akagent/akctl-net" ] || fail "akctl-net not installed in libexec/akagent"
[ -x "$P/libexec/akagent/akctl-shell" ] || fail "akctl-shell not installed in libexec/akagent"
pc=$(find "$D" -name akclient.pc) || true
[ -n "$pc" ] || fail "akclient.pc not installed"
lib=$(find "$D" -name 'libakclient.so.0' -type l) || true
[ -n "$lib" ] || fail "libakclient.so.0 (the soname link) not installed"
unit=$(find "$D" -path '*/systemd/user/akagent.socket') || true
[ -n "$unit" ] || fail "akagent.socket not installed"
[ -f "$(dirname "$unit")/akagent.service" ] || fail "akagent.service not installed beside the socket unit"
grep -q "ExecStart=$prefix/bin/akagent" "$(dirname "$unit")/akagent.service" ||
	fail "akagent.service does not run the installed akagent"
for comp in "bash-completion/completions/akctl" "zsh/site-functions/_akctl" \
	"fish/vendor_completions.d/akctl.fish"; do
	[ -n "$(find "$D" -path "*/$comp")" ] || fail "completion $comp not installed"
done

trace "only the public API is exported"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sed 's/@.*//' > "$T/syms"
[ -s "$T/syms" ] || fail "no exported symbols"
if grep -v '^akclient_' "$T/syms" >"$T/extra"; then
	fail "exported beyond akclient_*: $(head -5 "$T/extra" | tr '\n' ' ')"
fi
grep -qx akclient_get "$T/syms" || fail "akclient_get not exported"
readelf -d "$lib" | grep 'SONAME.*libakclient\.so\.0\]' >/dev/null || fail "soname is not libakclient.so.0"

trace "the example builds against the installed .pc"
libdir=$(dirname "$pc")/..
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$D"
flags=$(pkg-config --cflags --libs akclient) || fail "pkg-config --cflags --libs akclient failed"
case "$flags" in *"-I$D"*) ;; *) fail "pkg-config did not point into the destdir: $flags" ;; esac
# A sanitizer build's library needs its runtime first: build the example the same way.
san=
readelf -d "$lib" | grep 'libasan' >/dev/null && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086  # flags are words
expect_exit 0 cc -Wall -Wextra -Werror $san -o "$T/example" "$AK_SOURCE_ROOT/docs/examples/akclient-example.c" $flags
export LD_LIBRARY_PATH="$libdir"

trace "no agent: a clear error"
AKAGENT_SOCK="$T/none.sock" expect_exit 1 "$T/example" p
grep -q 'akclient_open: no agent is running' "$ERR" || fail "no-agent message: $(cat "$ERR")"

trace "live agent"
init_store
start_agent
expect_exit 1 "$T/example" p
grep -q 'agent is locked' "$ERR" || fail "locked: $(cat "$ERR")"
unlock
KEY=$(fake_key)
add_profile work "$KEY" --set MODEL_NAME=claude-x
expect_exit 0 "$T/example" work
assert_bytes "$OUT" "agent $AKAGENT_PID: unlocked, 1 profiles
profile work (anthropic, ANTHROPIC_API_KEY)
work: ${#KEY} bytes, starts ${KEY:0:7}
"
expect_exit 0 "$T/example" work MODEL_NAME
grep -qx 'work: 8 bytes, starts claude-' "$OUT" || fail "plain variable: $(cat "$OUT")"
expect_exit 1 "$T/example" work NOPE
grep -q 'no such variable' "$ERR" || fail "missing variable: $(cat "$ERR")"
expect_exit 5 "$T/example" other
grep -q 'no such profile' "$ERR" || fail "missing profile: $(cat "$ERR")"
assert_no_secret "$OUT" "$KEY" "example output"
trace ok
