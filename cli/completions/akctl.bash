# bash completion for akctl (and for ak, the function `akctl hook bash` defines).
# Profile names come from `akctl list --names`: names only, never a secret; nothing when locked.

_akctl_profiles() {
	command akctl list --names 2>/dev/null
}

_akctl() {
	local cur prev cmd words i
	local cmds="init unlock lock status passwd add rm list show get env use exec test import pull hook shell"
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-f | --passphrase-fd) i=$((i + 1)) ;;
		-*) ;;
		*)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done
	COMPREPLY=()
	case $prev in
	-f | --env-file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--kdf) words="insecure-test interactive moderate sensitive" ;;
	--shell) words="sh bash zsh fish csh tcsh powershell cmd dotenv json" ;;
	--provider) words="anthropic anthropic-admin openai generic" ;;
	--passphrase-fd | -t | --timeout | --var | --set | --description | --base-url | --region) return 0 ;;
	esac
	if [ -z "${words-}" ]; then
		if [ -z "$cmd" ]; then
			case $cur in
			-*) words="-f --passphrase-fd --help --version" ;;
			*) words=$cmds ;;
			esac
		else
			case $cur in
			-*)
				case $cmd in
				init | passwd) words="--kdf" ;;
				unlock) words="-t" ;;
				add) words="--force --provider --var --set --description --validate --no-validate" ;;
				list) words="--json --names" ;;
				env) words="--shell" ;;
				use) words="--shell --clear" ;;
				exec) words="--env-file" ;;
				test) words="--all --timeout --base-url" ;;
				import) words="--dry-run --replace --force --provider --var --region --timeout" ;;
				pull) words="--all --region --timeout" ;;
				esac
				words="$words --help"
				;;
			*)
				case $cmd in
				rm | show | get | env | use | exec | test | pull) words=$(_akctl_profiles) ;;
				hook) words="bash zsh fish" ;;
				esac
				;;
			esac
		fi
	fi
	mapfile -t COMPREPLY < <(compgen -W "${words-}" -- "$cur")
	return 0
}

complete -F _akctl akctl ak
