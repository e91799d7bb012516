#!/usr/bin/env bash
# Installs every third-party test peer, pinned, by package name (see peers/README.md):
#   Debian: libhessian-java (Caucho Hessian, with a JDK), etcd-server (etcd 3.4), nodejs/npm,
#           python3-venv, wrk, curl and openssl if absent
#   npm:    peers/node/package-lock.json  (npm ci)
#   PyPI:   peers/python/requirements.txt (into peers/python/.venv)
# Re-running is cheap: each step is skipped when what it installs is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-peers: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
[ -f /usr/share/java/hessian.jar ] || apt_packages+=(libhessian-java)
command -v javac >/dev/null || apt_packages+=(default-jdk-headless)
command -v etcd >/dev/null || apt_packages+=(etcd-server)
command -v node >/dev/null || apt_packages+=(nodejs)
command -v npm >/dev/null || apt_packages+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
# wrk drives the hot-reload test; curl and openssl the TLS test (certificates made at run time).
command -v wrk >/dev/null || apt_packages+=(wrk)
command -v curl >/dev/null || apt_packages+=(curl)
command -v openssl >/dev/null || apt_packages+=(openssl)
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "apt-get install ${apt_packages[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# A marker holding the hash of the lock file tells whether the install is current.
current() { [ -f "$2" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$(cat "$2")" ]; }
mark() { sha256sum "$1" | cut -d' ' -f1 > "$2"; }

if ! current peers/node/package-lock.json peers/node/node_modules/.installed; then
  log "npm ci in peers/node"
  (cd peers/node && npm ci --no-audit --no-fund --loglevel=error) >&2
  mark peers/node/package-lock.json peers/node/node_modules/.installed
fi

venv=peers/python/.venv
if ! current peers/python/requirements.txt "$venv/.installed"; then
  log "pip install -r peers/python/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r peers/python/requirements.txt
  mark peers/python/requirements.txt "$venv/.installed"
fi
log "all peers installed"
