#!/usr/bin/env bash
# exec/: what rebuilding the Javy plugin needs (exec/tests/plugin_reproducible.rs rebuilds it and compares its
# sha256 with the checked-in one): Debian's clang-19 for QuickJS's C code, WASI headers and libc, binaryen's
# wasm-opt, and Rust's wasm32-wasip1 target. Quiet and fast when already installed.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
apt_install clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc binaryen patch
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
