#!/usr/bin/env bash
# Runs every jobmesh test on a fresh machine: installs what the tests need (scripts/setup.d/*.sh, from the
# package registries only), then checks formatting, lints and runs the whole test suite.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target dir outside the clone is kept between runs as a cache; a fresh machine simply builds into it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobmesh/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

step() { printf '\n==> %s\n' "$*"; }

for setup in scripts/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  step "setup: $setup"
  bash "$setup"
done

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The end-to-end tests run the `jobmesh` binary built exactly like this (tests/src/lib.rs). It is built here,
# once, so that a cold build never counts against a test's time limit; JOBMESH_BIN hands it to the tests, which
# otherwise each run a no-op `cargo build` first (≈ 1 s of CPU per test process).
step "cargo build -p jobmesh (the binary the end-to-end tests run)"
cargo build --locked -p jobmesh --bin jobmesh --profile dev
export JOBMESH_BIN="$CARGO_TARGET_DIR/debug/jobmesh"

step "cargo nextest (every crate, every test)"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --locked --doc
