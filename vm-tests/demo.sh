#!/usr/bin/env bash
# The demo, on a fresh Debian/Ubuntu machine, as root: installs and caches
# what it needs (vm-tests/setup.sh: QEMU, Debian's kernel, a Debian rootfs,
# ZFS modules), builds tabula, boots a Btrfs machine twice under QEMU and
# tells in plain words what was erased, what persisted and where the old
# root went; the machine answers too, with `tabula diff` and `tabula roots`.
#
#   sudo vm-tests/demo.sh              systemd initrd (default)
#   sudo vm-tests/demo.sh scripted     busybox scripted initrd
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
[[ $(id -u) == 0 ]] || { echo "demo.sh: run as root (it installs packages and loop-mounts images)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "demo.sh: cargo missing: install Rust with rustup first (https://rustup.rs)" >&2; exit 1; }

echo "==> setting up (first time ~1 min: packages, Debian kernel, Debian rootfs; then cached)" >&2
# The demo needs no ZFS; the full test run builds it.
"$here/setup.sh" --no-zfs
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl
echo "==> building tabula (static musl binaries) and the harness" >&2
cargo build -q --release --locked --target x86_64-unknown-linux-musl -p tabula-rollback -p tabula-generator -p tabula-cli
cargo build -q --release --locked -p tabula-vm-tests --bin tabula-vm
echo "==> booting" >&2
exec "$repo/target/release/tabula-vm" demo "${1:-systemd}"
