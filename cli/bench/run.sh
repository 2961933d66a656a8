#!/bin/sh
# Benchmark: `tabula diff` against the community `find-new` script, on one
# Btrfs image, and `tabula diff` with and without a million persisted files.
#
#   sudo cli/bench/run.sh
#
# Needs root, btrfs-progs, util-linux. Sizes from the environment:
#   TEMPLATE_FILES  files in the blank template          (default 100000)
#   EPHEMERAL_FILES files written on the root after boot (default 10000)
#   PERSISTED_FILES files under a persisted bind mount   (default 1000000)
#   TABULA          the tabula binary (default: target/release/tabula, built)
# Every timing is the best of 5 runs, caches warm. The runs with and without
# the persisted files alternate (the storage bound at /var/log is swapped
# between two directories), so load on the machine hits both alike.
set -eu

TEMPLATE_FILES=${TEMPLATE_FILES:-100000}
EPHEMERAL_FILES=${EPHEMERAL_FILES:-10000}
PERSISTED_FILES=${PERSISTED_FILES:-1000000}
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${TABULA:-}" ]; then
    (cd "$here" && cargo build --quiet --release --locked -p tabula-cli)
    TABULA=$here/target/release/tabula
fi

work=$(mktemp -d /tmp/tabula-bench.XXXXXX)
dev=
cleanup() {
    for m in "$work/root/var/log" "$work/root/var/log" "$work/root" "$work/top"; do
        umount -l "$m" 2>/dev/null || true
    done
    [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# N files in directories of 1000 under $1.
make_files() {
    dir=$1 n=$2 d=0
    while [ "$n" -gt 0 ]; do
        k=$(( n < 1000 ? n : 1000 ))
        mkdir -p "$dir/d$d"
        (cd "$dir/d$d" && seq 1 "$k" | sed 's/^/f/' | xargs touch)
        n=$(( n - k )); d=$(( d + 1 ))
    done
}

# ms CMD...: the wall time of one run, in milliseconds.
ms() {
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}
min() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }
best_of() {
    best=
    for _ in 1 2 3 4 5; do best=$(min "$best" "$(ms "$@")"); done
    echo "$best"
}

truncate -s 8G "$work/disk.img"
mkfs.btrfs -q -f "$work/disk.img"
dev=$(losetup --find --show "$work/disk.img")
mkdir -p "$work/top" "$work/root"
mount -o subvolid=5 "$dev" "$work/top"
btrfs -q subvolume create "$work/top/@blank"
mkdir -p "$work/top/@blank/usr/share/template" "$work/top/@blank/var/log"
make_files "$work/top/@blank/usr/share/template" "$TEMPLATE_FILES"
btrfs -q subvolume snapshot "$work/top/@blank" "$work/top/@root"
btrfs property set -ts "$work/top/@blank" ro true
mkdir -p "$work/top/persist-empty/var/log" "$work/top/persist-full/var/log"
make_files "$work/top/persist-full/var/log" "$PERSISTED_FILES"
mount -o subvol=@root "$dev" "$work/root"
mkdir -p "$work/root/var/lib/app"
make_files "$work/root/var/lib/app" "$EPHEMERAL_FILES"
for i in $(seq 1 100); do echo "data $i" > "$work/root/var/lib/app/d0/f$i"; done
sync

cat > "$work/config.json" <<JSON
{"version": 1,
 "rollback": [{"type": "btrfs", "device": "$dev", "subvolume": "@root", "blank": "@blank", "oldRoots": null}],
 "persist": [{"storage": "/persist", "directories": ["/var/log"]}]}
JSON

tabula_cmd="$TABULA --config $work/config.json --root $work/root diff --json"
community() {
    gen=$(btrfs subvolume find-new "$work/top/@blank" 9999999 | awk '{print $NF}')
    btrfs subvolume find-new "$work/top/@root" "$gen"
}
community_cmd='btrfs subvolume find-new ROOT $(btrfs subvolume find-new BLANK 9999999 | cut -d" " -f4)'

t_comm=$(best_of community)
n_comm=$(community | grep -vc '^transid marker')

t_tabula= t_tabula_p=
for _ in 1 2 3 4 5; do
    mount --bind "$work/top/persist-empty/var/log" "$work/root/var/log"
    t_tabula=$(min "$t_tabula" "$(ms $tabula_cmd)")
    n_tabula=$($tabula_cmd | grep -c '"path"')
    umount "$work/root/var/log"
    mount --bind "$work/top/persist-full/var/log" "$work/root/var/log"
    t_tabula_p=$(min "$t_tabula_p" "$(ms $tabula_cmd)")
    n_tabula_p=$($tabula_cmd | grep -c '"path"')
    umount "$work/root/var/log"
done

echo
echo "Btrfs, template of $TEMPLATE_FILES files, $EPHEMERAL_FILES files written after boot (100 with data), on $(uname -r):"
printf '  %-52s %8s ms  %7s paths\n' "tabula diff --json" "$t_tabula" "$n_tabula"
printf '  %-52s %8s ms  %7s paths\n' "find-new against the blank's generation" "$t_comm" "$n_comm"
printf '  %-52s %8s ms  %7s paths\n' "tabula diff --json, $PERSISTED_FILES files persisted" "$t_tabula_p" "$n_tabula_p"
echo
echo "find-new lists files whose data changed (one line per extent), so it"
echo "misses empty files, directories, symlinks, renames and metadata changes."
echo "Commands:"
echo "  $tabula_cmd"
echo "  $community_cmd"
echo "Reproduce: sudo TEMPLATE_FILES=$TEMPLATE_FILES EPHEMERAL_FILES=$EPHEMERAL_FILES PERSISTED_FILES=$PERSISTED_FILES cli/bench/run.sh"
echo "ZFS (zfs diff against @blank) is not measured here: it needs a pool."
