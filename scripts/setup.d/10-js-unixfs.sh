#!/usr/bin/env bash
# The JavaScript reference UnixFS importer/exporter and CAR library (npm, versions pinned by package-lock.json)
# for tests/tests/unixfs_interop.rs and scripts/bench-store.sh. Idempotent: skips `npm ci` while node_modules
# matches the lock file. Node 20 ships with this machine kind; Debian's nodejs is the fallback.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../.." && pwd)/tests/interop/unixfs"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq nodejs npm >/dev/null
fi

stamp="$dir/node_modules/.jobmesh-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$want" >"$stamp"
