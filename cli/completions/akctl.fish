# fish completion for akctl (ak, the function `akctl hook fish` defines, wraps it).
# Profile names come from `akctl list --names`: names only, never a secret; nothing when locked.
function __akctl_profiles
    command akctl list --names 2>/dev/null
end

function __akctl_no_command
    set -l cmds init unlock lock status passwd add rm list show get env use exec test import pull hook shell
    not __fish_seen_subcommand_from $cmds
end

complete -c akctl -f
complete -c akctl -n __akctl_no_command -s f -r -F -d 'keystore file'
complete -c akctl -n __akctl_no_command -l passphrase-fd -x -d 'read the passphrase from this descriptor'
complete -c akctl -n __akctl_no_command -l help -d 'show help'
complete -c akctl -n __akctl_no_command -l version -d 'show the version'
complete -c akctl -n __akctl_no_command -a init -d 'create a new, empty keystore'
complete -c akctl -n __akctl_no_command -a unlock -d 'unlock the agent'
complete -c akctl -n __akctl_no_command -a lock -d 'lock the agent'
complete -c akctl -n __akctl_no_command -a status -d 'show the agent and keystore state'
complete -c akctl -n __akctl_no_command -a passwd -d 'change the keystore passphrase'
complete -c akctl -n __akctl_no_command -a add -d 'add a profile'
complete -c akctl -n __akctl_no_command -a rm -d 'remove a profile'
complete -c akctl -n __akctl_no_command -a list -d 'list profiles'
complete -c akctl -n __akctl_no_command -a show -d 'show a profile (secret redacted)'
complete -c akctl -n __akctl_no_command -a get -d 'print a secret or a variable'
complete -c akctl -n __akctl_no_command -a env -d 'print export lines'
complete -c akctl -n __akctl_no_command -a use -d 'switch this shell to a profile'
complete -c akctl -n __akctl_no_command -a exec -d 'run a command with a profile'
complete -c akctl -n __akctl_no_command -a test -d 'check keys against the provider'
complete -c akctl -n __akctl_no_command -a import -d 'import keys'
complete -c akctl -n __akctl_no_command -a pull -d 're-fetch cloud-imported profiles'
complete -c akctl -n __akctl_no_command -a hook -d 'print shell integration code'
complete -c akctl -n __akctl_no_command -a shell -d 'interactive console'

complete -c akctl -n '__fish_seen_subcommand_from rm show get env use exec test pull' -a '(__akctl_profiles)' -d profile
complete -c akctl -n '__fish_seen_subcommand_from hook' -a 'bash zsh fish'
complete -c akctl -n '__fish_seen_subcommand_from init passwd' -l kdf -x -a 'insecure-test interactive moderate sensitive'
complete -c akctl -n '__fish_seen_subcommand_from unlock' -s t -x -d 'lock after this long'
complete -c akctl -n '__fish_seen_subcommand_from add import' -l force
complete -c akctl -n '__fish_seen_subcommand_from add import' -l provider -x -a 'anthropic anthropic-admin openai generic'
complete -c akctl -n '__fish_seen_subcommand_from add import' -l var -x
complete -c akctl -n '__fish_seen_subcommand_from add' -l set -x -d 'NAME=VALUE'
complete -c akctl -n '__fish_seen_subcommand_from add' -l description -x
complete -c akctl -n '__fish_seen_subcommand_from add' -l validate
complete -c akctl -n '__fish_seen_subcommand_from add' -l no-validate
complete -c akctl -n '__fish_seen_subcommand_from list' -l json
complete -c akctl -n '__fish_seen_subcommand_from list' -l names
complete -c akctl -n '__fish_seen_subcommand_from env use' -l shell -x -a 'sh bash zsh fish csh tcsh powershell cmd dotenv json'
complete -c akctl -n '__fish_seen_subcommand_from use' -l clear
complete -c akctl -n '__fish_seen_subcommand_from exec' -l env-file -r -F
complete -c akctl -n '__fish_seen_subcommand_from test pull' -l all
complete -c akctl -n '__fish_seen_subcommand_from test import pull' -l timeout -x
complete -c akctl -n '__fish_seen_subcommand_from test' -l base-url -x
complete -c akctl -n '__fish_seen_subcommand_from import pull' -l region -x
complete -c akctl -n '__fish_seen_subcommand_from import' -l dry-run
complete -c akctl -n '__fish_seen_subcommand_from import' -l replace
