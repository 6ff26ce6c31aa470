# fish completion for ak (the function `akctl hook fish` defines): akctl's, which fish does not load
# for a wrapped command by itself.
functions -q __akctl_profiles; or source (status dirname)/akctl.fish
complete -c ak -w akctl
