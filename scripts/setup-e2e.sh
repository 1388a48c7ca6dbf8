#!/usr/bin/env bash
# setup-e2e.sh installs the npm packages of the end-to-end tests (e2e/node:
# the real @segment/analytics-node SDK, pinned in package-lock.json).
# Idempotent: it does nothing, quickly, when node_modules already matches
# the lock file; the Go tests in e2e/ call it before using the SDK.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/e2e/node"
cd "$dir"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "setup-e2e: node and npm are needed for e2e/node (the Segment SDK test)" >&2
	exit 3
fi

# The stamp records which package.json + lock file node_modules was
# installed from; a change to either makes the install stale.
if [ -f package-lock.json ]; then
	want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
else
	want="$(sha256sum package.json | cut -d' ' -f1)"
fi
stamp="node_modules/.portrait-e2e-stamp"
if [ -d node_modules ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
else
	npm install --no-audit --no-fund --loglevel=error
	want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
fi
echo "$want" >"$stamp"
echo "setup-e2e: installed e2e/node packages" >&2
