#!/usr/bin/env bash
# The JavaScript reference UnixFS importer/exporter and CAR library (npm, versions pinned by package-lock.json)
# for tests/tests/unixfs_interop.rs and scripts/bench-store.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/lib/setup.sh"
npm_ci_locked "$root/tests/interop/unixfs"
