#!/usr/bin/env bash
# Reproduces the checked-in Javy plugin exec/plugin/jobmesh-plugin.wasm from the package registries only:
#   1. cargo build of this crate for wasm32-wasip1 (QuickJS C code through Debian's clang-19, see
#      .cargo/config.toml), with paths remapped so the bytes do not depend on where the repo or cargo home is;
#   2. wasm-opt -O3 (Debian's `binaryen` package);
#   3. wizer (`wasmtime-wizer` at the pinned wasmtime, run as `cargo run --example init_plugin`): runs
#      `initialize-runtime` once and snapshots the initialized QuickJS runtime.
# Usage: build.sh            rebuild and overwrite jobmesh-plugin.wasm and jobmesh-plugin.wasm.sha256
#        build.sh --check    rebuild into a temp dir and fail unless the sha256 equals the checked-in one
#        build.sh --optimized-only OUT.wasm   steps 1 and 2 only (used by tests/plugin_reproducible.rs)
# Needs: clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc binaryen, rustup target wasm32-wasip1
# (scripts/setup.d/20-exec.sh installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mode="${1:-build}"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
plugin_target="${JOBMESH_PLUGIN_TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}/jobmesh-javy-plugin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build_optimized() { # $1: output path of the optimized (not yet initialized) plugin
  (
    cd "$here"
    # Never let a caller's flags change the plugin's bytes.
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
    export CARGO_TARGET_DIR="$plugin_target"
    export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo"$'\x1f'"--remap-path-prefix=$here=/plugin"$'\x1f'"--remap-path-prefix=$plugin_target=/target"
    export CFLAGS_wasm32_wasip1="-nostdlibinc -isystem /usr/include/wasm32-wasi -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$plugin_target=/target"
    cargo build --release --locked --quiet --target wasm32-wasip1
  )
  wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$plugin_target/wasm32-wasip1/release/jobmesh_javy_plugin.wasm" -o "$1"
}

initialize() { # $1: optimized input, $2: initialized output
  (cd "$repo" && cargo run --quiet --locked -p jobmesh-exec --example init_plugin -- "$1" "$2")
}

case "$mode" in
  --optimized-only)
    build_optimized "${2:?usage: build.sh --optimized-only OUT.wasm}"
    ;;
  --check)
    build_optimized "$work/opt.wasm"
    initialize "$work/opt.wasm" "$work/plugin.wasm"
    want="$(cut -d' ' -f1 "$here/jobmesh-plugin.wasm.sha256")"
    got="$(sha256sum "$work/plugin.wasm" | cut -d' ' -f1)"
    if [ "$want" != "$got" ]; then
      echo "error: rebuilt plugin sha256 $got differs from checked-in $want" >&2
      exit 1
    fi
    echo "plugin reproduced: sha256 $got"
    ;;
  build)
    build_optimized "$work/opt.wasm"
    initialize "$work/opt.wasm" "$work/plugin.wasm"
    cp "$work/plugin.wasm" "$here/jobmesh-plugin.wasm"
    (cd "$here" && sha256sum jobmesh-plugin.wasm > jobmesh-plugin.wasm.sha256)
    cat "$here/jobmesh-plugin.wasm.sha256"
    ;;
  *)
    echo "usage: build.sh [--check | --optimized-only OUT.wasm]" >&2
    exit 2
    ;;
esac
