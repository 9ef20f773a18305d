#!/usr/bin/env bash
# Settlement tools for contracts/ tests: the pinned Solidity compiler (npm `solc`, compiles the contracts and
# checks the checked-in artifacts) and anvil (npm `@foundry-rs/anvil-linux-amd64`, a local chain started on
# 127.0.0.1 by the tests). Installed from the npm registry into contracts/node_modules (git-ignored), exactly
# as pinned by contracts/package-lock.json. Idempotent and quiet; instant when already installed.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$(dirname "$0")/../../contracts"

SOLC_VERSION=0.8.30
ANVIL_VERSION=1.7.1

installed() {
  [ -x node_modules/.bin/anvil ] || return 1
  node -e "process.exit(require('./node_modules/solc/package.json').version === '$SOLC_VERSION' ? 0 : 1)" \
    2>/dev/null || return 1
  node_modules/.bin/anvil --version 2>/dev/null | grep -q "Version: $ANVIL_VERSION" || return 1
}

if installed; then
  exit 0
fi
ensure_node
npm ci --no-audit --no-fund --loglevel=error
installed || { echo "30-chain.sh: solc $SOLC_VERSION / anvil $ANVIL_VERSION not installed correctly" >&2; exit 1; }
echo "30-chain.sh: solc $SOLC_VERSION and anvil $ANVIL_VERSION installed in contracts/node_modules"
