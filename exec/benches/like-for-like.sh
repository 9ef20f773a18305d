#!/usr/bin/env bash
# The execution benchmark with its native side (c) built from the plugin's own QuickJS-ng: the same upstream
# release with the same patches (exec/plugin/patches/), so (a)/(c) is the cost of the sandbox alone (wasm,
# cranelift, fuel) rather than sandbox plus patches. `cargo bench -p jobmesh-exec --bench exec` compares with
# upstream QuickJS-ng instead, the anchor the issue names.
# Usage: exec/benches/like-for-like.sh [extra cargo bench args, e.g. --profile dev]
# Needs what exec/plugin/build.sh needs for its first step (cargo, patch).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
source_dir="$(bash exec/plugin/build.sh --patched-source)"
# `--config patch…` makes cargo record the patched crate in Cargo.lock; put the lock file back afterwards.
saved_lock="$(mktemp)"
cp Cargo.lock "$saved_lock"
trap 'cp "$saved_lock" Cargo.lock; rm -f "$saved_lock"' EXIT
BENCH_NATIVE="the plugin's patched QuickJS-ng, like for like" \
  cargo bench -p jobmesh-exec --bench exec "$@" \
  --config "patch.crates-io.rquickjs-sys.path=\"$source_dir\""
