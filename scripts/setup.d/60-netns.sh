#!/usr/bin/env bash
# The NAT testbed (tests/netns/nat-testbed.sh, run by tests/tests/mesh_nat.rs) needs `ip` (iproute2) and
# `nft` (nftables) and `jq` from Debian. Idempotent and quiet; fast when already installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/lib/setup.sh"
apt_install iproute2 nftables jq
