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
# The build prints its progress and any error. The lock file pins every
# dependency; only when it is out of date with Cargo.toml (cargo then says
# "--locked was passed") is the build run again without --locked.
echo "setup.sh: building dunewatch (the first build takes several minutes)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! cargo build --release --locked 2>&1 | tee "$log"; then
  if grep -q -- "--locked was passed" "$log"; then
    echo "setup.sh: Cargo.lock is out of date with Cargo.toml: building without --locked" >&2
    cargo build --release
  else
    echo "setup.sh: the build failed (its errors are above)" >&2
    exit 1
  fi
fi
echo "setup.sh: built target/release/dunewatch"
