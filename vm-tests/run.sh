#!/usr/bin/env bash
# Run every QEMU boot scenario (or the named ones): installs and caches what
# is missing (setup.sh), builds the static tabula binaries and the driver,
# boots, and ends with a summary line "N passed, N failed[, N skipped]".
# Exit status is non-zero when any scenario failed. As root.
#
#   vm-tests/run.sh                      every scenario (both sets)
#   vm-tests/run.sh --set default        the default set (one proof per claim)
#   vm-tests/run.sh --set extended       the long, exhaustive scenarios
#   vm-tests/run.sh btrfs-rotation-systemd crash-injection
#   vm-tests/run.sh --list
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

if [[ ${1:-} == --list ]]; then
    exec cargo run -q --release --locked -p tabula-vm-tests --bin tabula-vm -- list
fi

t0=$SECONDS
"$here/setup.sh"
t_setup=$((SECONDS - t0))

t1=$SECONDS
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl
cargo build -q --release --locked --target x86_64-unknown-linux-musl \
    -p tabula-rollback -p tabula-generator -p tabula-cli
# crash-injection's fault-injection build, in its own target directory so
# that it never replaces the release binary the other scenarios boot.
cargo build -q --release --locked --target x86_64-unknown-linux-musl \
    --target-dir target/fault-injection -p tabula-rollback --features fault-injection
cargo build -q --release --locked -p tabula-vm-tests --bin tabula-vm
t_build=$((SECONDS - t1))

t2=$SECONDS
status=0
"$repo/target/release/tabula-vm" prepare
t_prepare=$((SECONDS - t2))
t3=$SECONDS
summary=$here/.cache/summary.txt
"$repo/target/release/tabula-vm" run "$@" | tee "$summary" || status=$?
t_run=$((SECONDS - t3))
echo "vm-tests timings: setup ${t_setup}s, build ${t_build}s, images/initrds ${t_prepare}s, scenarios ${t_run}s, total $((SECONDS - t0))s" >&2
[[ -f $here/.cache/timings.txt ]] && echo "vm-tests setup steps when first built: $(tr '\n' ' ' <"$here/.cache/timings.txt")" >&2
# The last line is the summary: "N passed, N failed[, N skipped]".
tail -n 1 "$summary"
exit "$status"
