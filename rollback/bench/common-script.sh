#!/usr/bin/env bash
# The script users paste into boot.initrd.postDeviceCommands today (from the
# impermanence README, with this layout's names), for the benchmark only:
# mount, move the root to old_roots/<mtime>, delete old roots older than 30
# days (find -mtime +30) with their nested subvolumes, create a new root.
#
#   common-script.sh DEVICE MOUNTPOINT
set -u
DEVICE=$1
MNT=$2

mkdir -p "$MNT"
mount -o subvolid=5 "$DEVICE" "$MNT"
if [[ -e $MNT/@root ]]; then
    mkdir -p "$MNT/@old_roots"
    timestamp=$(date --date="@$(stat -c %Y "$MNT/@root")" "+%Y-%m-%-d_%H:%M:%S")
    mv "$MNT/@root" "$MNT/@old_roots/$timestamp"
fi

delete_subvolume_recursively() {
    IFS=$'\n'
    for i in $(btrfs subvolume list -o "$1" | cut -f 9- -d ' '); do
        delete_subvolume_recursively "$MNT/$i"
    done
    btrfs subvolume delete "$1"
}

for i in $(find "$MNT/@old_roots/" -maxdepth 1 -mtime +30); do
    delete_subvolume_recursively "$i"
done

btrfs subvolume create "$MNT/@root"
umount "$MNT"
