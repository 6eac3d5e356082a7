#!/usr/bin/env bash
# Installs what webslo's demo and tests need on Debian 12 (bookworm): Chromium (its SwiftShader
# Vulkan driver gives WebGPU in the browser), Mesa 25 from bookworm-backports (lavapipe: WebGPU in
# Node through Dawn; bookworm's own Mesa 22 exposes no adapter), then the npm dependencies.
# Each step is skipped when already done, so running it twice is cheap. Uses sudo when not root.
#
# WARNING: this adds bookworm-backports to apt's sources and upgrades Mesa's Vulkan drivers from it.
#
# Usage: bash scripts/setup-debian.sh            (system packages + npm ci)
#        WEBSLO_SKIP_NPM=1 bash scripts/setup-debian.sh   (system packages only)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

need_node_major=20
need_node_minor=19
if ! command -v node >/dev/null 2>&1; then
  say "Node.js is missing. Install Node >= ${need_node_major}.${need_node_minor}, e.g. 'apt-get install nodejs' from NodeSource, or nvm: 'nvm install 22'."
  exit 1
fi
node_ver=$(node -p 'process.versions.node')
node_major=${node_ver%%.*}; rest=${node_ver#*.}; node_minor=${rest%%.*}
if [ "$node_major" -lt "$need_node_major" ] || { [ "$node_major" -eq "$need_node_major" ] && [ "$node_minor" -lt "$need_node_minor" ]; }; then
  say "Node.js $node_ver is too old: webslo needs >= ${need_node_major}.${need_node_minor} (nvm install 22, or NodeSource's node_22.x)."
  exit 1
fi

is_debian12=0
if [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then is_debian12=1; fi

installed() { dpkg -s "$1" >/dev/null 2>&1; }

mesa_is_backports() {
  # Mesa >= 23 exposes lavapipe with the features Dawn needs; bookworm ships 22.3.
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 23
}

if [ "$is_debian12" -eq 1 ]; then
  apt_updated=0
  apt_update() { if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -q; apt_updated=1; fi; }
  export DEBIAN_FRONTEND=noninteractive

  if ! installed chromium; then
    say "installing Debian's chromium"
    apt_update
    $SUDO apt-get install -y -q chromium
  else
    say "chromium present"
  fi

  if ! mesa_is_backports; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      if [ -z "$uri" ]; then uri=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true); fi
      if [ -z "$uri" ]; then say "cannot find a Debian mirror in apt's sources"; exit 1; fi
      say "adding bookworm-backports from $uri"
      echo "deb $uri bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
      apt_updated=0
    fi
    say "installing Mesa (lavapipe) from bookworm-backports"
    apt_update
    $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
  else
    say "mesa-vulkan-drivers from backports present"
  fi
else
  say "not Debian 12: install by hand a Chromium >= 120 at /usr/lib/chromium/chromium (or set"
  say "WEBSLO_CHROMIUM to its path) and Mesa >= 23 with the lavapipe Vulkan driver (or a real GPU's"
  say "Vulkan driver) for the Node GPU tests. Continuing with npm only."
fi

if [ "${WEBSLO_SKIP_NPM:-0}" != "1" ]; then
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    say "node_modules up to date"
  else
    say "npm ci"
    npm ci --no-audit --no-fund
  fi
fi
say "done"
