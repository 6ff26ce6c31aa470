# admin_common.sh - sourced (after ../lib.sh) by the admin API tests: no proxy variables, the key
# scan's collection file, the helpers they share, and a test CA with a certificate for 127.0.0.1 that
# the fake admin API and akctl-net (AKCTL_CA_BUNDLE) use.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY \
	ANTHROPIC_BASE_URL OPENAI_BASE_URL
command -v openssl >/dev/null || skip "openssl is not installed"
SHOWN="$T/shown"	# everything akctl printed: must hold no key
: >"$SHOWN"

# t CODE ARGS...: akctl ARGS must exit CODE; what it printed is kept for the final scan.
t() {
	local want=$1
	shift
	expect_exit "$want" "$AKCTL" "$@"
	cat "$ERR" >>"$SHOWN"
	[ "$1" = get ] || cat "$OUT" >>"$SHOWN"
}

# hint KEY: Anthropic's partial_key_hint of KEY.
hint() { printf '%s...%s' "${1:0:16}" "${1: -4}"; }
admin_key() {
	local body
	body=$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
	printf 'sk-ant-admin01-%sAA' "${body:0:93}"
}

trace "a test CA, a certificate for 127.0.0.1, the fake admin API"
test_ca
