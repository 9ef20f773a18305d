# Helpers shared by scripts/setup.d/*.sh (sourced, not run). Every helper is idempotent and quiet, and fast when
# what it installs is already there.

# apt_install PKG...: installs the Debian packages that are missing (with sudo when not root).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_node: node and npm on the PATH (this machine kind ships Node 20; Debian's nodejs is the fallback).
ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  apt_install nodejs npm
}

# npm_ci_locked DIR: `npm ci` in DIR unless its node_modules already matches package-lock.json (a stamp of the
# lock file's sha256 is kept in node_modules).
npm_ci_locked() {
  local dir="$1" stamp want
  ensure_node
  stamp="$dir/node_modules/.jobmesh-lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
}
