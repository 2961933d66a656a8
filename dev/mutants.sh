#!/usr/bin/env bash
# Mutation testing with cargo-mutants: plants small bugs (a `<` for a `<=`,
# a function returning a default, a deleted `!`) one at a time and runs the
# tests; a "missed" mutant is a change no test notices. Not part of
# dev/test.sh: a run takes tens of minutes. Equivalent mutants (that cannot
# change behaviour) are excluded in .cargo/mutants.toml, each with a reason.
#
#   dev/mutants.sh                       the pure-logic files (below)
#   dev/mutants.sh -p tabula-config      one crate
#   dev/mutants.sh -f rollback/src/keep.rs -f generator/src/escape.rs
#   dev/mutants.sh --iterate             only what the last run missed
#
# Arguments go to `cargo mutants` as they are. MUTANTS_JOBS (default 1)
# builds that many mutants at once. Needs `cargo install cargo-mutants --locked`.
# Prints tested / caught / missed / timeout / unviable / excluded at the end;
# the lists are in target/mutants/mutants.out/. Exit status: 0 when nothing
# was missed, otherwise cargo-mutants' own (2 missed, 3 timeout, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "dev/mutants.sh: cargo-mutants is missing; run: cargo install cargo-mutants --locked" >&2
  exit 2
fi

if [ $# -eq 0 ]; then
  # The pure logic: the configuration contract, the keep policy, the
  # recognition of the state a crash left behind (Btrfs: btrfs/state.rs;
  # ZFS: the State type and its transitions in zfs/rotation.rs), unit-name
  # escaping and unit writing.
  set -- \
    -f 'config/src/**/*.rs' \
    -f rollback/src/keep.rs \
    -f rollback/src/btrfs/state.rs \
    -f rollback/src/zfs/rotation.rs \
    -f generator/src/escape.rs \
    -f 'generator/src/units/*.rs'
fi

out=target/mutants
mkdir -p "$out"
status=0
cargo mutants --jobs "${MUTANTS_JOBS:-1}" --output "$out" "$@" || status=$?

# Excluded: the mutants .cargo/mutants.toml's exclude_re leaves out.
listed=$(cargo mutants --list "$@" 2>/dev/null | wc -l)
all=$(cargo mutants --list --no-config "$@" 2>/dev/null | wc -l)
count() { if [ -f "$out/mutants.out/$1.txt" ]; then wc -l <"$out/mutants.out/$1.txt"; else echo 0; fi; }
caught=$(count caught)
missed=$(count missed)
timeout=$(count timeout)
unviable=$(count unviable)
echo
echo "mutants: tested $((caught + missed + timeout + unviable)), caught $caught, missed $missed, timeout $timeout, unviable $unviable, excluded $((all - listed))"
if [ "$missed" -gt 0 ]; then
  echo "missed:"
  sed 's/^/  /' "$out/mutants.out/missed.txt"
fi
exit "$status"
