#!/usr/bin/env bash
# The Rust components the checks need (present on this machine kind; installed if missing).
set -euo pipefail
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
# .config/nextest.toml needs 0.9.91 or newer (test priorities).
nextest_version="$(cargo nextest --version 2>/dev/null | head -n1 | awk '{print $2}')"
if [ -z "$nextest_version" ] || [ "$(printf '%s\n' 0.9.91 "$nextest_version" | sort -V | head -n1)" != 0.9.91 ]; then
  cargo install --locked cargo-nextest
fi
