# Sourced by the benchmarks (halves.sh, run.sh), from the repository's top
# directory: builds the static tabula-rollback and makes a scratch directory
# that is cleaned up on exit, loop device and mount included.
#
#   bench_start NAME   sets bin, script, work (/tmp/tabula-NAME.XXXXXX),
#                      mnt ($work/mnt, made) and dev (empty until the
#                      caller attaches a loop device to it)

bench_start() {
  cargo build --release --locked --target x86_64-unknown-linux-musl -p tabula-rollback >&2
  bin=$PWD/target/x86_64-unknown-linux-musl/release/tabula-rollback
  script=$PWD/rollback/bench/common-script.sh
  work=$(mktemp -d "/tmp/tabula-$1.XXXXXX")
  mnt=$work/mnt
  dev=
  trap bench_cleanup EXIT
  mkdir -p "$mnt"
}

bench_cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$dev" ] && losetup -d "$dev"
  rm -rf "$work"
}
