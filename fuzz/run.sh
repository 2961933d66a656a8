#!/usr/bin/env bash
# The long fuzz runs (a benchmark, not part of CI): every target for
# SECONDS seconds each (default 600) under cargo-fuzz (libFuzzer) on the
# nightly toolchain, starting from the checked-in seeds in fuzz/corpus/.
# Prints the executions of each target; exits non-zero if one found a
# failing input (saved under fuzz/libfuzzer/artifacts/<target>/, to be
# added to fuzz/corpus/<target>/ as a seed once understood).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs: rustup's nightly toolchain, `cargo install cargo-fuzz --locked`.
# FUZZ_SANITIZER (default none: the targets are safe Rust; "address" to
# add AddressSanitizer at about half the speed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config escape units)
sanitizer=${FUZZ_SANITIZER:-none}
cd "$here/.."

command -v cargo-fuzz >/dev/null || { echo "fuzz/run.sh: cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
cargo +nightly fuzz build --fuzz-dir "$here/libfuzzer" -s "$sanitizer" -O >&2

status=0
summary=()
for t in "${targets[@]}"; do
    work=$here/libfuzzer/runs/$t
    artifacts=$here/libfuzzer/artifacts/$t
    mkdir -p "$work" "$artifacts"
    log=$here/libfuzzer/runs/$t.log
    echo "fuzz/run.sh: $t for ${secs}s" >&2
    rc=0
    cargo +nightly fuzz run --fuzz-dir "$here/libfuzzer" -s "$sanitizer" -O "$t" \
        "$work" "$here/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || rc=$?
    execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
    rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log" | tail -n 1)
    if [[ $rc -ne 0 ]]; then
        status=1
        summary+=("$t: FAILED after ${execs:-?} executions (exit $rc); see $log and $artifacts")
    else
        summary+=("$t: ${execs:-?} executions in ${secs}s (${rate:-?}/s), no failure")
    fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
