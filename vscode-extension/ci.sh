#!/usr/bin/env bash
# Builds the VS Code extension into dist/lmlang-<version>.vsix and runs the TextMate grammar tests.
# Non-interactive; needs Node >= 20 and npm. Usage: bash vscode-extension/ci.sh (from any directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
npm ci --no-progress --loglevel=error
npm run --silent test:grammar
rm -rf dist out
mkdir -p dist
npx --no-install vsce package --out dist/ </dev/null  # bundles first (the vscode:prepublish script)
ls dist/*.vsix
