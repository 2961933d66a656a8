#!/usr/bin/env bash
# Benchmark, in two parts. First (halves.sh): the stage-1 run and the
# pruning run (--prune-only) each timed alone, against the common script and
# a bare mount + unmount, for 0, 10 and 40 old roots, with and without
# nested subvolumes. Then: tabula-rollback (stage 1 + the pruning run)
# against the common bash + btrfs-progs + find script (common-script.sh),
# side by side on the same loop image, and tabula-rollback with a root of
# 10k files against a root of 1M files. Prints figures. Needs root,
# btrfs-progs, python3.
#
#   rollback/bench/run.sh [TRIALS]        (default 7)
#   BENCH_BIG_FILES=20000 rollback/bench/run.sh 1    (a quick smoke run)
#   BENCH_ONLY_HALVES=1 rollback/bench/run.sh 5      (the first part only)
#
# Each trial starts from the same state, prepared untimed: @root (a
# snapshot of a template with N files), 40 old roots aged 1, 3, … 79 days
# (25 of them older than 30 days), each a snapshot of the 10k-file template
# with subvolumes nested three deep inside, the filesystem unmounted, the
# page cache dropped (as at boot) or kept (warm). The timed part is, for
# tabula, the stage-1 run (mount, create the new root, swap, archive the
# previous root, unmount) plus the pruning run (mount, prune, unmount), each
# timed; for the script, its one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-7}
big=${BENCH_BIG_FILES:-1000000}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (loop devices, mount)" >&2; exit 2; }

"$(dirname "$0")/halves.sh" "$trials"
[ "${BENCH_ONLY_HALVES:-0}" = 1 ] && exit 0

cargo build --release --locked --target x86_64-unknown-linux-musl -p tabula-rollback >&2
bin=$PWD/target/x86_64-unknown-linux-musl/release/tabula-rollback
script=$PWD/rollback/bench/common-script.sh

work=$(mktemp -d /tmp/tabula-bench.XXXXXX)
mnt=$work/mnt
dev=
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$dev" ] && losetup -d "$dev"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$work/run"
truncate -s 8G "$work/disk.img"
mkfs.btrfs -q -f "$work/disk.img"
dev=$(losetup --find --show "$work/disk.img")
echo "image: $work/disk.img on $dev; binary: $bin ($(stat -c %s "$bin") bytes)" >&2

mount -o subvolid=5 "$dev" "$mnt"
make_files() { # make_files DIR COUNT: COUNT files of 100 bytes in dirs of 1000
  python3 - "$1" "$2" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
data = b"x" * 100
for i in range(count):
    d = os.path.join(root, "usr", "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(data)
PY
}
for n in 10000 "$big"; do
  btrfs -q subvolume create "$mnt/@tmpl-$n"
  t0=$(date +%s)
  make_files "$mnt/@tmpl-$n" "$n"
  echo "template with $n files made in $(( $(date +%s) - t0 )) s" >&2
done
sync
umount "$mnt"

cat > "$work/config.json" <<JSON
{"version": 1, "rollback": [{"type": "btrfs", "device": "$dev", "subvolume": "@root",
  "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1, "max": null}}]}
JSON

prepare() { # prepare FILES CACHE: the starting state, untimed; CACHE=cold drops the page cache
  local files=$1 cache=$2 now age name base
  mount -o subvolid=5 "$dev" "$mnt"
  if [ -e "$mnt/@old_roots" ]; then
    # Leftovers of the previous trial, nested subvolumes first.
    btrfs subvolume list "$mnt" | awk '{ $1=$2=$3=$4=$5=$6=$7=$8=""; sub(/^ +/, ""); print }' \
      | grep -E '^@old_roots/|^@root$' | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2- \
      | while read -r p; do btrfs -q subvolume delete "$mnt/$p"; done
    rmdir "$mnt/@old_roots"
  fi
  [ -e "$mnt/@root" ] && btrfs -q subvolume delete "$mnt/@root"
  btrfs subvolume sync "$mnt" >/dev/null
  mkdir "$mnt/@old_roots"
  now=$(date +%s)
  for i in $(seq 0 39); do
    age=$(( i * 2 + 1 ))
    name=$(date -u -d "@$(( now - age * 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
    base=$mnt/@old_roots/$name
    btrfs -q subvolume snapshot "$mnt/@tmpl-10000" "$base"
    mkdir -p "$base/var/lib/docker/btrfs/subvolumes"
    btrfs -q subvolume create "$base/var/lib/docker/btrfs/subvolumes/a"
    btrfs -q subvolume create "$base/var/lib/docker/btrfs/subvolumes/a/b"
    btrfs -q subvolume create "$base/var/lib/docker/btrfs/subvolumes/a/b/c"
    echo data > "$base/var/lib/docker/btrfs/subvolumes/a/b/c/file"
    touch -d "@$(( now - age * 86400 ))" "$base"
  done
  # The root last, as boots leave it: the most recently created.
  btrfs -q subvolume snapshot "$mnt/@tmpl-$files" "$mnt/@root"
  sync
  umount "$mnt"
  sync
  if [ "$cache" = cold ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

check() { # check: the outcome both tools must reach
  mount -o ro,subvolid=5 "$dev" "$mnt"
  local old subs
  old=$(find "$mnt/@old_roots" -mindepth 1 -maxdepth 1 | wc -l)
  subs=$(btrfs subvolume list "$mnt" | grep -c ' path @old_roots/' || true)
  umount "$mnt"
  # 15 young roots (4 subvolumes each) + the previous root
  [ "$old" = 16 ] && [ "$subs" = 61 ] || { echo "unexpected outcome: $old old roots, $subs subvolumes" >&2; exit 1; }
}

ms() { echo $(( ($2 - $1) / 1000000 )); }
timed() { # timed CMD...: prints milliseconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  t1=$(date +%s%N)
  ms "$t0" "$t1"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
minimum() { sort -n | head -1; }
stat_of() { tr ' ' '\n' <<<"$2" | grep . | "$1"; }

declare -A res
for t in $(seq 1 "$trials"); do
  for cache in cold warm; do
    for files in 10000 "$big"; do
      prepare "$files" "$cache"
      r1=$(timed "$bin" --config "$work/config.json")
      r2=$(timed "$bin" --prune-only --config "$work/config.json"); check
      r=$((r1 + r2))
      res[tabula-$cache-$files]+="$r "
      res[stage1-$cache-$files]+="$r1 "
      res[prune-$cache-$files]+="$r2 "
      prepare "$files" "$cache"
      s=$(timed "$script" "$dev" "$work/script-mnt"); check
      res[script-$cache-$files]+="$s "
      echo "trial $t/$trials, $cache cache, root of $files files: tabula $r ms (stage 1 $r1, prune $r2), script $s ms" >&2
    done
    # What any tool pays: mounting the filesystem and unmounting it.
    prepare 10000 "$cache"
    res[floor-$cache]+="$(timed sh -c "mount -o ro,subvolid=5 $dev $mnt && umount $mnt") "
  done
done

echo
echo "rotate + prune 40 old roots (25 expired, nested 3 deep) + create: tabula's two runs"
echo "(stage 1, then --prune-only) summed, the script's one run, from the same state on one loop image, $trials trials each;"
echo "times in ms, median (min). cold: page cache dropped before each run, as at boot."
printf '%-6s %-14s %16s %16s %16s\n' "cache" "root" "tabula" "script" "script/tabula"
for cache in cold warm; do
  for files in 10000 "$big"; do
    ta=$(stat_of median "${res[tabula-$cache-$files]}"); tm=$(stat_of minimum "${res[tabula-$cache-$files]}")
    sa=$(stat_of median "${res[script-$cache-$files]}"); sm=$(stat_of minimum "${res[script-$cache-$files]}")
    printf '%-6s %-14s %16s %16s %16s\n' "$cache" "$files files" "$ta ($tm)" "$sa ($sm)" \
      "$(awk -v a="$ta" -v b="$sa" -v c="$tm" -v d="$sm" 'BEGIN { printf "%.1fx (%.1fx)", b / a, d / c }')"
  done
  echo "       tabula stage 1 alone: 10000 files $(stat_of median "${res[stage1-$cache-10000]}") ms, $big files $(stat_of median "${res[stage1-$cache-$big]}") ms; the pruning run: $(stat_of median "${res[prune-$cache-10000]}") ms"
  echo "       mount + unmount alone, no change: $(stat_of median "${res[floor-$cache]}") ($(stat_of minimum "${res[floor-$cache]}")) ms"
done
for cache in cold warm; do
  a=$(stat_of median "${res[tabula-$cache-10000]}"); b=$(stat_of median "${res[tabula-$cache-$big]}")
  c=$(stat_of minimum "${res[tabula-$cache-10000]}"); d=$(stat_of minimum "${res[tabula-$cache-$big]}")
  echo "tabula, $cache cache, root of $big files vs 10000 files: $(awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN { printf "%.2fx (min: %.2fx)", b / a, d / c }')"
done
echo "all runs (ms):"
for k in $(printf '%s\n' "${!res[@]}" | sort); do echo "  $k: ${res[$k]}"; done
echo "static binary: $(stat -c %s "$bin") bytes ($(( $(stat -c %s "$bin") / 1024 )) KiB)"
