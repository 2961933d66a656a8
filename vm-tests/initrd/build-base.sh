#!/usr/bin/env bash
# Build the cached, scenario-independent part of an initramfs.
#   build-base.sh scripted|systemd CACHE OUT.cpio.gz
# The per-boot part (tabula-rollback, config, rendered units) is a second
# cpio archive that the driver appends; the kernel unpacks both in order.
#   scripted: busybox-static /init (initrd/scripted-init), modules, zfs tools
#   systemd:  systemd as PID 1, assembled from the cached Debian rootfs's own
#             systemd (a trimmed copy of it + /etc/initrd-release), modules,
#             zfs tools; tabula-rollback.service is added per boot.
set -euo pipefail
flavour=$1 cache=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
kver=$(cat "$cache/kernel/version")
kdir=$cache/kernel/$kver
stage=$(mktemp -d "${TMPDIR:-/tmp}/tabula-initrd.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# copy_bin FILE...: copy programs and the libraries ldd names (loader included).
copy_bin() {
    local f lib
    for f in "$@"; do
        mkdir -p "$stage$(dirname "$f")"
        cp -L "$f" "$stage$f"
        for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
            [[ -e $stage$lib ]] && continue
            mkdir -p "$stage$(dirname "$lib")"
            cp -L "$lib" "$stage$lib"
        done
    done
}

case $flavour in
scripted)
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,newroot,usr/lib/tabula-harness}
    cp /bin/busybox "$stage/bin/busybox"
    for a in $(/bin/busybox --list); do
        [[ $a == busybox ]] && continue # a link to itself breaks /init (ELOOP)
        ln -s busybox "$stage/bin/$a"
    done
    install -m 0755 "$here/scripted-init" "$stage/init"
    ;;
systemd)
    tar -xf "$cache/rootfs.tar" -C "$stage" --exclude=./dev/*
    rm -rf "$stage"/usr/share/{doc,man,info,locale,i18n,zoneinfo,perl*,common-licenses,bash-completion,lintian} \
        "$stage"/usr/lib/x86_64-linux-gnu/{perl*,gconv} "$stage"/usr/bin/perl* \
        "$stage"/var/lib/{apt,dpkg} "$stage"/var/cache/* "$stage"/usr/lib/x86_64-linux-gnu/systemd/boot \
        "$stage"/etc/fstab "$stage"/etc/machine-id
    : >"$stage/etc/machine-id"
    # systemd recognises an initrd by /etc/initrd-release.
    sed 's/^PRETTY_NAME=.*/PRETTY_NAME="tabula harness initrd (Debian systemd)"/' \
        "$stage/usr/lib/os-release" >"$stage/etc/initrd-release"
    ln -sfn /usr/lib/systemd/systemd "$stage/init"
    ln -sfn /usr/lib/systemd/system/initrd.target "$stage/etc/systemd/system/default.target"
    # No getty or emergency shell prompts on the serial console in tests.
    for u in getty@.service serial-getty@.service emergency.service rescue.service; do
        ln -sfn /dev/null "$stage/etc/systemd/system/$u"
    done
    # As NixOS's initrd udev rules do (nixos/modules/services/hardware/udev.nix):
    # keep the udev database entries of device-mapper devices (a LUKS container
    # opened here) across initrd-udevadm-cleanup-db.service, so that stage 2's
    # coldplug knows they were activated properly and their units become active.
    mkdir -p "$stage/etc/udev/rules.d"
    echo 'SUBSYSTEM=="block", KERNEL=="dm-[0-9]*", ACTION=="add|change", OPTIONS+="db_persist"' \
        >"$stage/etc/udev/rules.d/99-tabula-harness-dm-persist.rules"
    mkdir -p "$stage/etc/modules-load.d"
    printf '%s\n' virtio_pci virtio_blk crc32c_generic btrfs overlay qemu_fw_cfg >"$stage/etc/modules-load.d/tabula-harness.conf"
    # The harness activation runs after sysroot.mount and sysroot-usr.mount.
    mkdir -p "$stage/usr/lib/tabula-harness"
    cat >"$stage/etc/systemd/system/tabula-harness-activate.service" <<'UNIT'
[Unit]
Description=tabula harness: populate the erased root's skeleton from /usr
DefaultDependencies=no
Requires=sysroot.mount sysroot-usr.mount
After=sysroot.mount sysroot-usr.mount
Before=initrd-root-fs.target initrd-parse-etc.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/tabula-harness/activate /sysroot
StandardOutput=journal+console
UNIT
    mkdir -p "$stage/etc/systemd/system/initrd.target.wants"
    ln -sfn ../tabula-harness-activate.service "$stage/etc/systemd/system/initrd.target.wants/"
    ;;
*) echo "unknown flavour $flavour" >&2; exit 2 ;;
esac

# Modules: virtio disk, btrfs (+ its soft dependency crc32c), overlayfs,
# fw_cfg (the harness's script channel), dm-crypt with what LUKS2's default
# aes-xts-plain64 and cryptsetup's kernel crypto API use (loaded only by
# boots with an /etc/crypttab), and zfs when it was built.
mkdir -p "$stage/etc/tabula-harness"
mods=(virtio_pci virtio_blk crc32c_generic crc32c-intel btrfs overlay qemu_fw_cfg
    dm_mod dm_crypt xts aesni_intel algif_skcipher)
have_zfs=0
if [[ -f $kdir/lib/modules/$kver/updates/dkms/zfs.ko ]]; then
    mods+=(zfs); have_zfs=1
fi
mkdir -p "$stage/etc/tabula-harness"
: >"$stage/etc/tabula-harness/modules"
for m in "${mods[@]}"; do
    modprobe -d "$kdir" -S "$kver" --show-depends "$m" | while read -r kind path _; do
        [[ $kind == insmod ]] || continue
        rel=${path#"$kdir/lib/modules/"}
        grep -qxF "$rel" "$stage/etc/tabula-harness/modules" && continue
        mkdir -p "$stage/lib/modules/$(dirname "$rel")"
        cp "$path" "$stage/lib/modules/$rel"
        echo "$rel" >>"$stage/etc/tabula-harness/modules"
    done
done
cp "$kdir/lib/modules/$kver/modules.order" "$kdir/lib/modules/$kver/modules.builtin"* "$stage/lib/modules/$kver/"
depmod -b "$stage" "$kver"
# zfs is loaded only by ZFS boots: the per-boot archive adds
# /etc/modules-load.d/tabula-zfs.conf (systemd) or sets tabula.pool (scripted).

install -m 0755 "$here/../guest/activate" "$stage/usr/lib/tabula-harness/activate"

# After `zpool import -N POOL` (scripted /init, and the systemd flavour's
# zfs-import-POOL.service): load the key of every encrypted dataset whose key
# is unavailable and whose keylocation is neither prompt nor none, as
# NixOS's import unit does (nixos/modules/tasks/filesystems/zfs.nix); a
# dataset whose key cannot be loaded is named, and the others still load.
cat >"$stage/usr/lib/tabula-harness/zfs-load-keys" <<'SH'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
tab=$(printf '\t')
zfs list -rHo name,keylocation,keystatus -t volume,filesystem "$1" |
    while IFS=$tab read -r ds kl ks; do
        [ "$ks" = unavailable ] || continue
        case $kl in
            none | prompt) ;;
            *) zfs load-key "$ds" || echo "zfs-load-keys: could not load the key of $ds (keylocation=$kl)" >&2 ;;
        esac
    done
SH
chmod 0755 "$stage/usr/lib/tabula-harness/zfs-load-keys"

# btrfs-progs in the scripted initrd: only for the boot-time benchmark's
# baseline (the common shell script) and mkfs.btrfs for the LUKS2 image made
# in a VM; tabula-rollback itself needs none.
# cryptsetup: the scripted /init opens the LUKS containers of /etc/crypttab
# with it (the systemd flavour has the rootfs's systemd-cryptsetup).
if [[ $flavour == scripted ]]; then
    copy_bin "$(command -v btrfs)" "$(command -v mkfs.btrfs)"
    command -v cryptsetup >/dev/null || { echo "cryptsetup missing on the host: run vm-tests/setup.sh" >&2; exit 1; }
    copy_bin "$(command -v cryptsetup)"
    [[ -e $stage/lib64/ld-linux-x86-64.so.2 ]] || { mkdir -p "$stage/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"; }
fi

if ((have_zfs)); then
    copy_bin "$(command -v zpool)" "$(command -v zfs)" /sbin/mount.zfs
    if [[ $flavour == scripted ]]; then
        # ldd names /lib/x86_64-linux-gnu/...: make sure the loader path exists.
        [[ -e $stage/lib64/ld-linux-x86-64.so.2 ]] || { mkdir -p "$stage/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"; }
    fi
fi

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "initrd $flavour: $(du -h "$out" | cut -f1) (zfs: $have_zfs)" >&2
