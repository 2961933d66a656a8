#!/usr/bin/env bash
# Runs every test of tabula: formatting, lints, the Rust tests (as root: they
# make real Btrfs filesystems on loop devices), the offline Nix checks and
# every QEMU boot scenario. Installs what it needs first (Debian/Ubuntu).
#
#   sudo dev/test.sh            everything
#   sudo dev/test.sh --no-vm    everything but the QEMU boots
set -euo pipefail
cd "$(dirname "$0")/.."

vm=1
for arg in "$@"; do
  case "$arg" in
    --no-vm) vm=0 ;;
    *) echo "usage: dev/test.sh [--no-vm]" >&2; exit 2 ;;
  esac
done

section() { printf '\n==> %s\n' "$*"; }
failed=()
run() { # run NAME CMD...: run one suite, remember a failure, go on
  local name=$1; shift
  section "$name"
  local start=$SECONDS
  if "$@"; then echo "--- $name: ok ($((SECONDS - start)) s)"
  else echo "--- $name: FAILED ($((SECONDS - start)) s)"; failed+=("$name"); fi
}

section "host setup"
dev/setup-host.sh

run "rustfmt" cargo fmt --all --check
run "clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
run "cargo test" cargo test --workspace --locked --features tabula-rollback/fault-injection
run "static release build" dev/build-static.sh
[ -x nixos-module/tests/run.sh ] && run "nix offline checks" nixos-module/tests/run.sh
if [ "$vm" = 1 ] && [ -x vm-tests/run.sh ]; then
  run "QEMU boot scenarios" vm-tests/run.sh
fi

section "summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
