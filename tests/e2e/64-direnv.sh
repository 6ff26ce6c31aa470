#!/bin/bash
# Per-directory profiles in real bash, zsh and fish sessions: the hook from `akctl hook SHELL` runs
# `akctl dir-env` at each prompt (bash: PROMPT_COMMAND, called here by hand since a script shows no
# prompt; zsh: chpwd, which fires on cd in a script too; fish: --on-variable PWD). An .akprofile is
# refused until allowed (one message per change, not one per prompt), switches on entering its
# directory or a subdirectory, gives way to a nearer file, is refused again once edited, never sets a
# variable on the import deny list, and leaving puts the environment back byte for byte - also after
# a `use` made inside. Unchanged state costs no agent round trip.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

mkdir -p "$T/bin"
ln -s "$AKCTL" "$T/bin/akctl"
export PATH="$T/bin:$PATH"

init_store
start_agent
unlock
K1=$(fake_key)
K2=$(fake_key)
add_profile production "$K1" --set MODEL_NAME=big
add_profile staging "$K2"
export K1 K2 PASS T

W="$T/w"
mkdir -p "$W/proj/sub/deep" "$W/proj/other" "$W/plain"
# A value with quotes, a newline and a dollar: it must arrive as it is.
printf '# work keys\nproduction\nREGION=eu '"'"'x'"'"' $HOME\nPATH=/evil\nLD_PRELOAD=/evil.so\nANTHROPIC_BASE_URL=http://evil\n' \
	>"$W/proj/.akprofile"
printf 'staging\n' >"$W/proj/other/.akprofile"
export W

trace "dir-env: outside any .akprofile it prints nothing and asks no agent"
cd "$W/plain" || fail cd
AKAGENT_SOCK=/nonexistent/sock expect_exit 0 akctl dir-env --shell bash
assert_bytes "$OUT" ""
assert_bytes "$ERR" ""
expect_exit 2 akctl dir-env --shell nosuch
expect_exit 2 akctl dir-env extra

trace "bash"
cat >"$T/t.bash" <<'SH'
set -u
eval "$(akctl hook bash)"
case ";$PROMPT_COMMAND;" in *";__ak_direnv;"*) ;; *) exit 9 ;; esac
export REGION=home
ak use staging || exit 10
snap() { env | grep -v -e '^PWD=' -e '^OLDPWD=' -e '^_=' | sort; }
msgs() { wc -l <"$T/msg" | tr -d ' '; }
: >"$T/msg"
snap >"$T/s0"
cd "$W/proj" && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = staging ] && [ "$ANTHROPIC_API_KEY" = "$K2" ] || exit 11
grep -q "proj/.akprofile is not allowed: review it, then run 'akctl allow" "$T/msg" || exit 12
[ "$(msgs)" = 1 ] || exit 13
__ak_direnv 2>>"$T/msg"; __ak_direnv 2>>"$T/msg"
[ "$(msgs)" = 1 ] || exit 14   # once per change, not at every prompt
akctl allow .akprofile >/dev/null 2>&1 || exit 15
__ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = production ] && [ "$ANTHROPIC_API_KEY" = "$K1" ] && [ "$MODEL_NAME" = big ] || exit 16
[ "$REGION" = "eu 'x' \$HOME" ] || exit 17
[ "$PATH" = "$(grep '^PATH=' "$T/s0" | cut -d= -f2-)" ] || exit 18
[ -z "${LD_PRELOAD+x}${ANTHROPIC_BASE_URL+x}" ] || exit 19
grep -q "PATH not set" "$T/msg" || { cat "$T/msg" >&2; exit 20; }
grep -q 'LD_PRELOAD not set' "$T/msg" && grep -q 'ANTHROPIC_BASE_URL not set' "$T/msg" || exit 21
n=$(msgs)
# Nothing changed: no output, and no agent is asked (a dead socket does not matter).
[ -z "$(AKAGENT_SOCK=/nonexistent/sock akctl dir-env --shell bash)" ] || exit 22
cd sub/deep && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = production ] && [ "$(msgs)" = "$n" ] || exit 23
[ -z "$(AKAGENT_SOCK=/nonexistent/sock akctl dir-env --shell bash)" ] || exit 24
# A nearer file wins; not allowed yet, so leaving proj's profile restores the outer state.
cd "$W/proj/other" && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = staging ] && [ "$ANTHROPIC_API_KEY" = "$K2" ] && [ "$REGION" = home ] || exit 25
[ -z "${MODEL_NAME+x}" ] || exit 26
akctl allow .akprofile >/dev/null 2>&1 && __ak_direnv 2>>"$T/msg" || exit 27
[ "$AKCTL_PROFILE" = staging ] && [ -n "${AKCTL_DIRENV_RESTORE-}" ] || exit 28
# Straight from one file to the other, then out: exactly the environment before.
cd "$W/proj" && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = production ] && [ "$REGION" = "eu 'x' \$HOME" ] || exit 29
cd "$W/plain" && __ak_direnv 2>>"$T/msg"
snap >"$T/s1"
cmp -s "$T/s0" "$T/s1" || { diff "$T/s0" "$T/s1" >&2; exit 30; }
# A use made inside is undone on leaving too.
cd "$W/proj" && __ak_direnv 2>>"$T/msg"
ak use staging && [ "$ANTHROPIC_API_KEY" = "$K2" ] || exit 31
cd "$W/plain" && __ak_direnv 2>>"$T/msg"
snap >"$T/s1"
cmp -s "$T/s0" "$T/s1" || { diff "$T/s0" "$T/s1" >&2; exit 32; }
# Edited: refused again (one message), until allowed again.
printf 'MODEL_NAME=huge\n' >>"$W/proj/.akprofile"
n=$(msgs)
cd "$W/proj/sub" && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = staging ] || exit 33
[ "$(msgs)" = $((n + 1)) ] && tail -n1 "$T/msg" | grep -q 'changed since it was allowed' || exit 34
__ak_direnv 2>>"$T/msg"
[ "$(msgs)" = $((n + 1)) ] || exit 35
akctl allow "$W/proj/.akprofile" >/dev/null 2>&1 && __ak_direnv 2>>"$T/msg" || exit 36
[ "$AKCTL_PROFILE" = production ] && [ "$MODEL_NAME" = big ] || exit 37   # the profile's own wins
# Denied while inside: back to the outer state.
akctl deny "$W/proj/.akprofile" >/dev/null 2>&1 && __ak_direnv 2>>"$T/msg" || exit 38
[ "$AKCTL_PROFILE" = staging ] || exit 39
akctl allow "$W/proj/.akprofile" >/dev/null 2>&1 && __ak_direnv 2>>"$T/msg" || exit 40
[ "$AKCTL_PROFILE" = production ] || exit 41
# A locked agent: said once, switched after unlock without another cd.
cd "$W/plain" && __ak_direnv 2>>"$T/msg"
akctl lock >/dev/null || exit 42
n=$(msgs)
cd "$W/proj" && __ak_direnv 2>>"$T/msg"; __ak_direnv 2>>"$T/msg"
[ "$(msgs)" = $((n + 1)) ] && tail -n1 "$T/msg" | grep -q 'locked' || exit 43
[ "$AKCTL_PROFILE" = staging ] || exit 44
akctl --passphrase-fd 3 unlock 3<<<"$PASS" >/dev/null 2>&1 || exit 45
__ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = production ] || exit 46
# The hook keeps $? for the prompt.
false; __ak_direnv; [ $? = 1 ] || exit 47
# A .akprofile that is a symlink is allowed by its target (the list holds real paths).
mkdir -p "$W/linked" && printf 'staging\n' >"$W/shared.akprofile" && ln -s ../shared.akprofile "$W/linked/.akprofile"
akctl allow "$W/linked/.akprofile" >/dev/null 2>&1 || exit 48
cd "$W/linked" && __ak_direnv 2>>"$T/msg"
[ "$AKCTL_PROFILE" = staging ] && [ "$ANTHROPIC_API_KEY" = "$K2" ] || exit 49
case "$AKCTL_DIRENV" in "on "*) ;; *) exit 50 ;; esac
exit 0
SH
expect_exit 0 bash --norc --noprofile "$T/t.bash"
akctl lock >/dev/null 2>&1
unlock
akctl deny "$W/proj/.akprofile" >/dev/null 2>&1
akctl deny "$W/proj/other/.akprofile" >/dev/null 2>&1
printf 'production\nREGION=eu\n' >"$W/proj/.akprofile"

trace "zsh (chpwd fires on cd)"
if command -v zsh >/dev/null; then
	cat >"$T/t.zsh" <<'SH'
eval "$(akctl hook zsh)"
export REGION=home ANTHROPIC_API_KEY=mine
snap() { env | grep -v -e '^PWD=' -e '^OLDPWD=' -e '^_=' | sort; }
msgs() { wc -l <"$T/zmsg" | tr -d ' '; }
: >"$T/zmsg"
snap >"$T/z0"
cd "$W/proj" 2>>"$T/zmsg"
[[ $ANTHROPIC_API_KEY == mine && $(msgs) == 1 ]] || exit 11
__ak_direnv 2>>"$T/zmsg"
[[ $(msgs) == 1 ]] || exit 12
akctl allow .akprofile >/dev/null 2>&1 || exit 13
__ak_direnv 2>>"$T/zmsg"   # precmd, as at the next prompt
[[ $AKCTL_PROFILE == production && $ANTHROPIC_API_KEY == $K1 && $REGION == eu ]] || exit 14
cd sub/deep 2>>"$T/zmsg"
[[ $AKCTL_PROFILE == production ]] || exit 15
cd "$W/plain" 2>>"$T/zmsg"
snap >"$T/z1"
cmp -s "$T/z0" "$T/z1" || { diff "$T/z0" "$T/z1" >&2; exit 16; }
print 'REGION=us' >>"$W/proj/.akprofile"
cd "$W/proj/sub" 2>>"$T/zmsg"
[[ $ANTHROPIC_API_KEY == mine && $(msgs) == 2 ]] || exit 17
grep -q 'changed since it was allowed' "$T/zmsg" || exit 18
akctl allow "$W/proj/.akprofile" >/dev/null 2>&1 && __ak_direnv 2>>"$T/zmsg" || exit 19
[[ $AKCTL_PROFILE == production && $REGION == us ]] || exit 20
cd / 2>>"$T/zmsg"
snap >"$T/z1"
cmp -s "$T/z0" "$T/z1" || { diff "$T/z0" "$T/z1" >&2; exit 21; }
exit 0
SH
	expect_exit 0 zsh -f "$T/t.zsh"
fi
akctl deny "$W/proj/.akprofile" >/dev/null 2>&1
printf 'production\nREGION=eu\n' >"$W/proj/.akprofile"

trace "fish (--on-variable PWD)"
if command -v fish >/dev/null; then
	cat >"$T/t.fish" <<'SH'
akctl hook fish | source
set -gx REGION home
ak use staging; or exit 10
function snap; env | grep -v -e '^PWD=' -e '^OLDPWD=' -e '^_=' -e '^SHLVL=' | sort; end
function msgs; wc -l <$T/fmsg | string trim; end
snap >$T/f0
cd $W/proj
test "$AKCTL_PROFILE" = staging; and test (msgs) = 1; or exit 11
__ak_direnv
test (msgs) = 1; or exit 12
akctl allow .akprofile >/dev/null 2>&1; or exit 13
__ak_direnv   # fish_prompt, as at the next prompt
test "$AKCTL_PROFILE" = production; and test "$ANTHROPIC_API_KEY" = "$K1"; and test "$REGION" = eu; or exit 14
cd sub/deep
test "$AKCTL_PROFILE" = production; or exit 15
cd $W/plain
snap >$T/f1
cmp -s $T/f0 $T/f1; or begin; diff $T/f0 $T/f1 >&2; exit 16; end
echo 'REGION=us' >>$W/proj/.akprofile
cd $W/proj/sub
test "$AKCTL_PROFILE" = staging; and test (msgs) = 2; or exit 17
grep -q 'changed since it was allowed' $T/fmsg; or exit 18
akctl allow $W/proj/.akprofile >/dev/null 2>&1; or exit 19
__ak_direnv
test "$AKCTL_PROFILE" = production; and test "$REGION" = us; or exit 20
cd /
snap >$T/f1
cmp -s $T/f0 $T/f1; or begin; diff $T/f0 $T/f1 >&2; exit 21; end
exit 0
SH
	: >"$T/fmsg"
	# fish's messages go to a file of their own, where the script counts them
	RC=0
	fish --no-config "$T/t.fish" 2>>"$T/fmsg" || RC=$?
	[ "$RC" = 0 ] || { cat "$T/fmsg" >&2; fail "fish script exited $RC"; }
fi
trace ok
