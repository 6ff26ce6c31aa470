#!/bin/sh
# Install the official Anthropic Node SDK, exact version, where tests/e2e/21-node-sdk.sh looks for it.
# Run by tests/run-all.sh (and CI) before the tests; the test installs it itself if this was not run,
# and skips (77) when npm is missing or the registry is unreachable (tests/run-all.sh, as root, then
# counts it as a failure).
#   usage: install-node-sdk.sh [DIR]   (default $AKAGENT_NODE_SDK_DIR, else /tmp/akagent-node-sdk-<version>)
set -eu
VERSION=1.14.0	# pinned: 1.x sends Authorization: Bearer; runs on Debian 12's Node 18 and on Node 20
DIR=${1:-${AKAGENT_NODE_SDK_DIR:-/tmp/akagent-node-sdk-$VERSION}}
if [ -f "$DIR/node_modules/@anthropic-ai/sdk/package.json" ] &&
	grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/@anthropic-ai/sdk/package.json"; then
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-node-sdk: npm not found" >&2; exit 77; }
mkdir -p "$DIR"
# A private npm cache and no user config: nothing from the caller's ~/.npmrc, nothing left in $HOME.
npm install --prefix "$DIR" --no-audit --no-fund --no-save --no-package-lock --cache "$DIR/.npm-cache" \
	--userconfig /dev/null "@anthropic-ai/sdk@$VERSION" >"$DIR/install.log" 2>&1 || {
	echo "install-node-sdk: npm install @anthropic-ai/sdk@$VERSION failed (see $DIR/install.log)" >&2
	exit 77
}
