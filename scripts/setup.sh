#!/usr/bin/env bash
# Installs what a fresh Debian (bookworm) machine lacks to build dunewatch, then builds it.
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libgdal-dev libdeflate-dev libzstd-dev gdal-bin pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: cargo not found: install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
cargo build --release --locked 2>/dev/null || cargo build --release
echo "setup.sh: built target/release/dunewatch"
