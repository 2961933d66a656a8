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
# Every test that cannot run here appends a line to this file (see
# testkit/src/lib.rs); the summary counts them. With CI=true a skip fails.
TABULA_SKIP_LOG=$(mktemp -t tabula-skips.XXXXXX)
export TABULA_SKIP_LOG
trap 'rm -f "$TABULA_SKIP_LOG"' EXIT
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
# --include-ignored: the tests a build sandbox cannot run (root, loop
# devices, /dev/kmsg) are #[ignore]d for a plain `cargo test`, run here.
run "cargo test" cargo test --workspace --locked --features tabula-rollback/fault-injection -- --include-ignored
run "static release build" dev/build-static.sh
run "Nix check phase in a sandbox emulation" dev/sandbox-test.sh
[ -x nixos-module/tests/run.sh ] && run "nix offline checks" nixos-module/tests/run.sh
if [ "$vm" = 1 ] && [ -x vm-tests/run.sh ]; then
  run "QEMU boot scenarios" vm-tests/run.sh
fi

section "summary"
skips=$(grep -c . "$TABULA_SKIP_LOG" || true)
if [ "$skips" -gt 0 ]; then
  echo "SKIPPED: $skips tests could not run on this machine:"
  sed 's/^/  /' "$TABULA_SKIP_LOG"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed, $skips tests skipped"
