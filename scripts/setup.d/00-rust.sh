#!/usr/bin/env bash
# The Rust components the checks need (present on this machine kind; installed if missing).
set -euo pipefail
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
