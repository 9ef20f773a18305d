#!/usr/bin/env bash
# The dashboard's browser test (tests/tests/dashboard_browser.rs): Debian's chromium, driven headless by
# playwright-core from npm (version pinned by tests/interop/browser/package-lock.json; no browser download).
# Idempotent and quiet; fast when already installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/lib/setup.sh"
apt_install chromium
# playwright-core drives Debian's chromium: no browser download of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm_ci_locked "$root/tests/interop/browser"
