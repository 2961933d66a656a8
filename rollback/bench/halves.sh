#!/usr/bin/env bash
# Benchmark of the two halves: the stage-1 run (`tabula-rollback`: the root
# swapped, the previous root archived, nothing pruned) and the pruning run
# (`tabula-rollback --prune-only`, tabula-prune.service after boot), each
# timed on its own, against the common script (common-script.sh: swap and
# prune in one go, in the initrd) and against a bare mount + unmount, for 0,
# 10 and 40 old roots, with and without nested subvolumes (three deep in
# each old root). Prints figures; asserts only the outcome. Needs root,
# btrfs-progs.
#
#   rollback/bench/halves.sh [TRIALS]     (default 5)
#
# Each timed run starts from the same state, prepared untimed on a new 1 GiB
# loop image: @root with a few hundred files, N old roots aged 1 + i*80/N days
# (the older half past the 30-day policy), the filesystem unmounted and the
# page cache dropped, as at boot.
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-5}
[ "$(id -u)" = 0 ] || { echo "halves.sh: needs root (loop devices, mount)" >&2; exit 2; }

cargo build --release --locked --target x86_64-unknown-linux-musl -p tabula-rollback >&2
bin=$PWD/target/x86_64-unknown-linux-musl/release/tabula-rollback
script=$PWD/rollback/bench/common-script.sh

work=$(mktemp -d /tmp/tabula-halves.XXXXXX)
mnt=$work/mnt
dev=
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$dev" ] && losetup -d "$dev"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
fresh_image() { # a new 1 GiB filesystem on a loop device; rewrites config.json
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$dev" ] && losetup -d "$dev"
  dev=
  rm -f "$work/disk.img"
  truncate -s 1G "$work/disk.img"
  mkfs.btrfs -q -f "$work/disk.img" >/dev/null
  dev=$(losetup --find --show "$work/disk.img")
  cat > "$work/config.json" <<JSON
{"version": 1, "rollback": [{"type": "btrfs", "device": "$dev", "subvolume": "@root",
  "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1, "max": null}}]}
JSON
}

prepare() { # prepare N NESTED: the starting state on a fresh image, untimed, cache dropped
  local n=$1 nested=$2 now age name base i d f
  fresh_image
  mount -o subvolid=5 "$dev" "$mnt"
  btrfs -q subvolume create "$mnt/@tmpl"
  for d in $(seq 1 20); do
    mkdir -p "$mnt/@tmpl/usr/d$d"
    for f in $(seq 1 20); do echo "file $d $f" > "$mnt/@tmpl/usr/d$d/f$f"; done
  done
  mkdir "$mnt/@old_roots"
  now=$(date +%s)
  for ((i = n - 1; i >= 0; i--)); do
    age=$(( 1 + i * 80 / (n > 0 ? n : 1) ))
    name=$(date -u -d "@$(( now - age * 86400 - i ))" +%Y-%m-%dT%H:%M:%SZ)
    base=$mnt/@old_roots/$name
    btrfs -q subvolume snapshot "$mnt/@tmpl" "$base"
    if [ "$nested" = yes ]; then
      mkdir -p "$base/var/lib/docker"
      btrfs -q subvolume create "$base/var/lib/docker/a"
      btrfs -q subvolume create "$base/var/lib/docker/a/b"
      btrfs -q subvolume create "$base/var/lib/docker/a/b/c"
    fi
    touch -d "@$(( now - age * 86400 ))" "$base"
  done
  # The root last, as boots leave it: the most recently created.
  btrfs -q subvolume snapshot "$mnt/@tmpl" "$mnt/@root"
  sync
  umount "$mnt"
  sync
  echo 3 > /proc/sys/vm/drop_caches
}

count_old() { # the number of entries in @old_roots
  mount -o ro,subvolid=5 "$dev" "$mnt"
  find "$mnt/@old_roots" -mindepth 1 -maxdepth 1 | wc -l
  umount "$mnt"
}

timed() { # timed CMD...: prints milliseconds (one decimal)
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
minimum() { tr ' ' '\n' | grep . | sort -n | head -1; }
both() { echo "$(median <<<"$1") ($(minimum <<<"$1"))"; }

declare -A res
for t in $(seq 1 "$trials"); do
  for nested in no yes; do
    for n in 0 10 40; do
      prepare "$n" "$nested"
      s1=$(timed "$bin" --config "$work/config.json")
      after=$(count_old)
      [ "$after" = $(( n + 1 )) ] || { echo "stage 1 pruned: $after old roots, expected $((n + 1))" >&2; exit 1; }
      echo 3 > /proc/sys/vm/drop_caches
      p=$(timed "$bin" --prune-only --config "$work/config.json")
      pruned=$(count_old)
      prepare "$n" "$nested"
      sc=$(timed "$script" "$dev" "$work/script-mnt")
      prepare "$n" "$nested"
      fl=$(timed sh -c "mount -o ro,subvolid=5 $dev $mnt && umount $mnt")
      res[s1-$nested-$n]+="$s1 "; res[p-$nested-$n]+="$p "; res[sc-$nested-$n]+="$sc "; res[fl-$nested-$n]+="$fl "
      echo "trial $t/$trials nested=$nested old=$n: stage 1 $s1 ms, prune $p ms ($pruned left), script $sc ms, mount+unmount $fl ms" >&2
    done
  done
done

echo
echo "stage 1 (swap, no pruning) and the pruning run, each timed alone, against the common"
echo "script (swap + prune in the initrd) and a bare mount + unmount; 1 GiB loop image,"
echo "page cache dropped before each run; median (min) of $trials trials, ms. mount+umount"
echo "is mount(8) then umount(8), two programs; tabula mounts with one syscall."
printf '%-7s %-9s %16s %16s %16s %16s %14s\n' nested "old roots" "mount+umount" "stage 1" "prune run" "script" "stage1-floor"
for nested in no yes; do
  for n in 0 10 40; do
    fl=$(median <<<"${res[fl-$nested-$n]}"); s1=$(median <<<"${res[s1-$nested-$n]}")
    printf '%-7s %-9s %16s %16s %16s %16s %14s\n' "$nested" "$n" "$(both "${res[fl-$nested-$n]}")" \
      "$(both "${res[s1-$nested-$n]}")" "$(both "${res[p-$nested-$n]}")" "$(both "${res[sc-$nested-$n]}")" \
      "$(awk -v a="$s1" -v b="$fl" 'BEGIN { printf "%+.1f", a - b }')"
  done
done
echo "all runs (ms):"
for k in $(printf '%s\n' "${!res[@]}" | sort); do echo "  $k: ${res[$k]}"; done
