#!/usr/bin/env bash
# Reproduces the checked-in Javy plugin exec/plugin/jobmesh-plugin.wasm from the package registries only:
#   0. QuickJS with our patches: the upstream rquickjs-sys crate (downloaded and checksum-checked by cargo through
#      patches/upstream/) is copied to exec/plugin/target/patched/rquickjs-sys-0.12.2 and patches/*.patch are
#      applied to the copy;
#   1. cargo build of this crate for wasm32-wasip1 against that copy ([patch.crates-io] on the command line; QuickJS
#      C code through Debian's clang-19, see .cargo/config.toml), with paths remapped so the bytes do not depend on
#      where the repo, cargo home or target dir is;
#   2. wasm-opt -O3 (Debian's `binaryen` package);
#   3. wizer (`wasmtime-wizer` at the pinned wasmtime, run as `cargo run --example init_plugin`): runs
#      `initialize-runtime` once and snapshots the initialized QuickJS runtime.
# Usage: build.sh            rebuild and overwrite jobmesh-plugin.wasm and jobmesh-plugin.wasm.sha256
#        build.sh --check    rebuild into a temp dir and fail unless the sha256 equals the checked-in one
#        build.sh --optimized-only OUT.wasm   steps 1 and 2 only (used by tests/plugin_reproducible.rs)
#        build.sh --patched-source   step 0 only; prints the patched rquickjs-sys directory (used by
#                                    exec/benches/like-for-like.sh to build native QuickJS from the same source)
# Needs: clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc binaryen patch, rustup target wasm32-wasip1
# (scripts/setup.d/20-exec.sh installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mode="${1:-build}"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
plugin_target="${JOBMESH_PLUGIN_TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}/jobmesh-javy-plugin}"
# Inside this crate's directory whatever the target dir: cargo hashes a path dependency's absolute path into its
# crate metadata (and so into the plugin's bytes) unless it is under the workspace root.
patched="$here/target/patched/rquickjs-sys-0.12.2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Step 0: the patched rquickjs-sys at "$patched". Replaced only when its contents change, so that a rebuild does
# not recompile QuickJS (cargo tracks a path dependency by file times), and under a lock, since builds in other
# target dirs share it.
patch_quickjs() {
  local upstream meta fresh="$work/rquickjs-sys-0.12.2"
  meta="$(cargo metadata --locked --quiet --format-version 1 --manifest-path "$here/patches/upstream/Cargo.toml")"
  upstream="$(grep -o '"manifest_path":"[^"]*/rquickjs-sys-0\.12\.2/Cargo\.toml"' <<<"$meta" | head -n1)"
  upstream="${upstream#'"manifest_path":"'}"
  upstream="${upstream%/Cargo.toml\"}"
  [ -f "$upstream/quickjs/quickjs.c" ] || { echo "error: rquickjs-sys 0.12.2 not found (got '$upstream')" >&2; exit 1; }
  cp -R "$upstream" "$fresh"
  for p in "$here"/patches/*.patch; do
    patch --quiet --forward --no-backup-if-mismatch -p1 -d "$fresh" <"$p"
  done
  mkdir -p "$(dirname "$patched")"
  (
    flock 9
    if ! diff -r -q "$fresh" "$patched" >/dev/null 2>&1; then
      rm -rf "$patched"
      mv "$fresh" "$patched"
    fi
  ) 9>"$patched.lock"
}

build_optimized() { # $1: output path of the optimized (not yet initialized) plugin
  patch_quickjs
  (
    cd "$here"
    # Never let a caller's flags change the plugin's bytes.
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
    export CARGO_TARGET_DIR="$plugin_target"
    export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo"$'\x1f'"--remap-path-prefix=$here=/plugin"$'\x1f'"--remap-path-prefix=$plugin_target=/target"
    export CFLAGS_wasm32_wasip1="-nostdlibinc -isystem /usr/include/wasm32-wasi -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$plugin_target=/target"
    cargo build --release --locked --quiet --target wasm32-wasip1 \
      --config "patch.crates-io.rquickjs-sys.path=\"$patched\""
  )
  wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$plugin_target/wasm32-wasip1/release/jobmesh_javy_plugin.wasm" -o "$1"
}

initialize() { # $1: optimized input, $2: initialized output
  (cd "$repo" && cargo run --quiet --locked -p jobmesh-exec --example init_plugin -- "$1" "$2")
}

case "$mode" in
  --patched-source)
    patch_quickjs
    echo "$patched"
    ;;
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
    echo "usage: build.sh [--check | --optimized-only OUT.wasm | --patched-source]" >&2
    exit 2
    ;;
esac
