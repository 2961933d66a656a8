#!/usr/bin/env bash
# Installs the host packages and Rust targets the tests need (idempotent).
set -euo pipefail
need=()
for pkg in btrfs-progs systemd nix-bin util-linux kmod file python3 bubblewrap attr; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl
