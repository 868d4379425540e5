#!/usr/bin/env bash
# Installs what only the tests need (a headless browser, the servers the
# integration tests start on 127.0.0.1), on top of scripts/setup.sh.
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Debian packages, one a line.
apt_pkgs=(
  chromium
  slurm-wlm
  munge
  man-db
  gdal-bin
  nginx
  curl
  python3-pip
  python3-gdal
  python3-numpy
)
need=()
for pkg in "${apt_pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-tests.sh: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# PyPI packages, one a line, installed for the system python (the tests
# run their binaries, e.g. `rustac serve`, from /usr/local/bin).
pip_pkgs=(
  rustac==0.9.18
)
need=()
for pkg in "${pip_pkgs[@]}"; do
  /usr/bin/python3 -m pip show -q "${pkg%%==*}" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-tests.sh: pip installing ${need[*]}"
  $SUDO /usr/bin/python3 -m pip install -q --break-system-packages "${need[@]}"
fi
echo "setup-tests.sh: test dependencies ready"
