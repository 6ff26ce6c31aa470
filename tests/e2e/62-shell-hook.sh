#!/bin/bash
# Shell integration in real shells: `akctl hook bash|zsh|fish` defines ak (ak use switches the shell
# without eval, other subcommands pass through), ak_prompt, and completion of commands, options and
# profile names (from `akctl list --names`); the completion files themselves load in each shell. The
# files are generated from akctl's command table: every command of `akctl --help` and every option of
# `akctl help COMMAND` is completed in bash, zsh and fish.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

: "${AK_BUILD_ROOT:?AK_BUILD_ROOT must name the build directory}"
COMP="$AK_BUILD_ROOT/cli/completions"	# the generated files, as installed
mkdir -p "$T/bin"
ln -s "$AKCTL" "$T/bin/akctl"
export PATH="$T/bin:$PATH"

init_store
start_agent
unlock
K1=$(fake_key)
K2=$(fake_key)
add_profile production "$K1"
add_profile staging "$K2" --set MODEL_NAME=small
export K1 K2

trace "list --names: names only, one a line"
expect_exit 0 akctl list --names
assert_bytes "$OUT" "production
staging
"
expect_exit 2 akctl list --names --json

trace "hook: usage"
expect_exit 2 akctl hook
expect_exit 2 akctl hook tcsh
expect_exit 0 akctl hook bash
assert_no_secret "$OUT" "$K1" "hook output"

trace "bash"
cat >"$T/t.bash" <<'SH'
set -u
eval "$(akctl hook bash)"
ak use production || exit 10
[ "$AKCTL_PROFILE" = production ] || exit 11
[ "$ANTHROPIC_API_KEY" = "$K1" ] || exit 12
[ "$(ak_prompt)" = "[production] " ] || exit 13
ak use staging || exit 14
[ "$ANTHROPIC_API_KEY" = "$K2" ] && [ "$MODEL_NAME" = small ] || exit 15
ak use nosuch 2>/dev/null
[ $? = 5 ] || exit 16
[ "$AKCTL_PROFILE" = staging ] || exit 17
ak use --clear || exit 18
[ -z "${ANTHROPIC_API_KEY+x}${AKCTL_PROFILE+x}${MODEL_NAME+x}" ] || exit 19
[ -z "$(ak_prompt)" ] || exit 20
[ "$(ak get staging MODEL_NAME)" = small ] || exit 21
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _akctl; printf '%s\n' "${COMPREPLY[*]}"; }
[ "$(comp akctl use)" = use ] || exit 30
[ "$(comp ak use pr)" = production ] || exit 31
[ "$(comp akctl get '')" = "production staging" ] || exit 32
[ "$(comp akctl add --pro)" = --provider ] || exit 33
[ "$(comp akctl env x --shell fi)" = fish ] || exit 34
[ "$(comp akctl -f /x sh)" = "show shell" ] || exit 35
[ "$(comp akctl --ver)" = --version ] || exit 36
[ "$(comp akctl list --n)" = --names ] || exit 37
complete -p ak | grep -q _akctl || exit 38
[ "$(comp akctl rena)" = rename ] || exit 39
[ "$(comp akctl cp pro)" = production ] || exit 40
[ "$(comp akctl scan --inst)" = --install-hook ] || exit 41
[ "$(comp akctl help sc)" = scan ] || exit 42
[ "$(comp akctl get x --rev)" = --reveal ] || exit 43
[ "$(comp akctl unlock --lifetime '')" = "" ] || exit 44
[ "$(comp akctl dir-env --shell zs)" = zsh ] || exit 45
[ "$(comp akctl init --kdf mod)" = moderate ] || exit 46
[ "$(comp akctl hook f)" = fish ] || exit 47
exit 0
SH
expect_exit 0 bash --norc --noprofile "$T/t.bash"

trace "bash: the installed completion file, loaded by bash-completion"
if [ -r /usr/share/bash-completion/bash_completion ]; then
	cat >"$T/t2.bash" <<SH
. /usr/share/bash-completion/bash_completion
. "$COMP/akctl"
COMP_WORDS=(akctl show st); COMP_CWORD=2; _akctl
[ "\${COMPREPLY[*]}" = staging ] || exit 40
SH
	expect_exit 0 bash --norc --noprofile "$T/t2.bash"
fi

trace "zsh"
if command -v zsh >/dev/null; then
	cat >"$T/t.zsh" <<'SH'
eval "$(akctl hook zsh)"
ak use production || exit 10
[[ $AKCTL_PROFILE == production && $ANTHROPIC_API_KEY == $K1 ]] || exit 11
[[ "$(ak_prompt)" == "[production] " ]] || exit 12
ak use nosuch 2>/dev/null
(( $? == 5 )) || exit 13
ak use --clear || exit 14
[[ -z ${ANTHROPIC_API_KEY+x}${AKCTL_PROFILE+x} ]] || exit 15
(( $+functions[_akctl] )) || exit 16
# With the completion system: the hook registers itself, and so does the site-functions file.
autoload -Uz compinit && compinit -u -D
eval "$(akctl hook zsh)"
[[ $_comps[ak] == _akctl && $_comps[akctl] == _akctl ]] || exit 17
unfunction _akctl
fpath=($COMP $fpath)
compinit -u -D
[[ $_comps[akctl] == _akctl ]] || exit 18
autoload +X _akctl || exit 19
exit 0
SH
	COMP="$COMP" expect_exit 0 zsh -f "$T/t.zsh"
fi

trace "fish"
if command -v fish >/dev/null; then
	cat >"$T/t.fish" <<'SH'
akctl hook fish | source
ak use production; or exit 10
test "$AKCTL_PROFILE" = production; and test "$ANTHROPIC_API_KEY" = "$K1"; or exit 11
test (ak_prompt) = "[production] "; or exit 12
ak use nosuch 2>/dev/null
test $status = 5; or exit 13
ak use --clear; or exit 14
set -q ANTHROPIC_API_KEY; and exit 15
set -q AKCTL_PROFILE; and exit 16
test (complete -C 'akctl use' | string split -f1 \t) = use; or exit 20
test (complete -C 'ak use pr' | string split -f1 \t) = production; or exit 21
test (complete -C 'akctl get ' | string split -f1 \t | string join ,) = production,staging; or exit 22
test (complete -C 'akctl add --prov' | string split -f1 \t) = --provider; or exit 23
exit 0
SH
	expect_exit 0 fish --no-config "$T/t.fish"
	cat >"$T/t2.fish" <<SH
set fish_complete_path $COMP \$fish_complete_path
function ak; end  # as the hook defines it: fish loads completions only for known commands
test (complete -C 'akctl unl' | string split -f1 \t) = unlock; or exit 30
test (complete -C 'ak show st' | string split -f1 \t) = staging; or exit 31
exit 0
SH
	expect_exit 0 fish --no-config "$T/t2.fish"
fi
trace "every command and option akctl knows is completed (bash, zsh, fish)"
# The commands of `akctl --help`: the indented lines between "commands:" and the blank line.
expect_exit 0 akctl --help
sed -n '/^commands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$OUT" >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 25 ] || fail "akctl --help lists only $(wc -l <"$T/cmds") commands"
grep -qx dir-env "$T/cmds" && grep -qx help "$T/cmds" || fail "the command list was not read: $(cat "$T/cmds")"
# Each command's own options, from `akctl help COMMAND` (usage and option lines), one "CMD OPT" a line.
: >"$T/opts"
while read -r c; do
	expect_exit 0 akctl help "$c"
	# Up to the global options, without "(and: ...)" asides and the -h alias of --help.
	sed -e '/^global options/,$d' -e 's/([^)]*)//g' -e 's/-h, --help/--help/' "$OUT" |
		grep -oE -- '(^|[ [|])--?[a-zA-Z][a-zA-Z-]*' | sed 's/^[ [|]//' | sort -u |
		while read -r o; do printf '%s %s\n' "$c" "$o"; done >>"$T/opts"
done <"$T/cmds"
grep -qx 'scan --install-hook' "$T/opts" && grep -qx 'unlock --lifetime' "$T/opts" ||
	fail "the option list was not read: $(head "$T/opts")"
cat >"$T/drift.bash" <<'SH'
. "$COMP/akctl"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _akctl; printf '%s\n' "${COMPREPLY[@]}"; }
bad=0
while read -r c; do
	comp akctl "$c" | grep -qx -- "$c" || { echo "bash: command $c not completed"; bad=1; }
done <"$T/cmds"
while read -r c o; do
	comp akctl "$c" "$o" | grep -qx -- "$o" || { echo "bash: $c $o not completed"; bad=1; }
done <"$T/opts"
exit $bad
SH
COMP="$COMP" T="$T" expect_exit 0 bash --norc --noprofile "$T/drift.bash"
# zsh: the _describe list names every command; each command's case lists its options.
while read -r c; do
	grep -q "^	'$c:" "$COMP/_akctl" || fail "zsh: command $c not in _akctl"
done <"$T/cmds"
while read -r c o; do
	grep -qE -- "^	$c\) opts=\((.* )?$o( |\))" "$COMP/_akctl" || fail "zsh: $c $o not in _akctl"
done <"$T/opts"
if command -v fish >/dev/null; then
	cat >"$T/drift.fish" <<'SH'
set fish_complete_path $COMP $fish_complete_path
set -l bad 0
for c in (cat $T/cmds)
	contains -- $c (complete -C "akctl $c" | string split -f1 \t); or begin; echo "fish: command $c"; set bad 1; end
end
for line in (cat $T/opts)
	set -l w (string split ' ' -- $line)
	contains -- $w[2] (complete -C "akctl $w[1] -" | string split -f1 \t); or begin; echo "fish: $line"; set bad 1; end
end
exit $bad
SH
	COMP="$COMP" T="$T" expect_exit 0 fish --no-config "$T/drift.fish"
fi
trace ok
