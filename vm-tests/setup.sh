#!/usr/bin/env bash
# Install and cache everything the QEMU boot harness needs, from Debian's
# archive only, under vm-tests/.cache (gitignored). Idempotent: each step
# leaves a stamp and is skipped when its stamp and outputs exist; delete a
# stamp (or the whole cache) to rebuild that part. Each step is timed; the
# figures are appended to .cache/timings.txt and printed at the end.
#
# Steps:
#   apt      host packages (qemu-system-x86 with the bookworm qemu-utils,
#            busybox-static, btrfs-progs, mmdebstrap, kmod, zstd, cpio, fdisk,
#            cryptsetup-bin: LUKS images and the scripted initrd's cryptsetup)
#   kernel   Debian 12's current kernel image (ABI from apt), unpacked + depmod
#   rootfs   a minimal Debian 12 rootfs with systemd (mmdebstrap, plain tar)
#   zfs      contrib enabled, linux-headers + zfs-dkms built against that
#            kernel + zfsutils-linux; the modules copied into the kernel tree
#
# Usage: vm-tests/setup.sh [--no-zfs]   (--no-zfs is for local iteration only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${TABULA_VM_CACHE:-$here/.cache}
stamps=$cache/stamps
mkdir -p "$stamps"
export DEBIAN_FRONTEND=noninteractive

with_zfs=1
[[ ${1:-} == --no-zfs ]] && with_zfs=0

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (installs packages, loop-mounts images)"

# step NAME FUNCTION: run FUNCTION unless the stamp exists; time it.
step() {
    local name=$1 fn=$2
    if [[ -e $stamps/$name ]]; then
        log "$name: cached ($(cat "$stamps/$name"))"
        return 0
    fi
    log "$name: building"
    local t0=$SECONDS
    "$fn"
    local dt=$((SECONDS - t0))
    echo "built in ${dt}s on $(date -u +%FT%TZ)" >"$stamps/$name"
    echo "$name ${dt}s" >>"$cache/timings.txt"
    log "$name: done in ${dt}s"
}

kernel_abi() {
    # linux-image-amd64 depends on linux-image-<abi>-amd64: take <abi> from apt.
    apt-cache depends linux-image-amd64 |
        sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*\)-amd64$/\1/p' | head -n1
}

enable_contrib() {
    local f=/etc/apt/sources.list.d/tabula-contrib.sources
    if ! grep -rqs 'contrib' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "enabling Debian contrib (zfs-dkms, zfsutils-linux) in $f"
        cat >"$f" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        return 0
    fi
    return 1
}

do_apt() {
    enable_contrib || true
    apt-get update -qq
    # qemu-utils may be installed from backports at a newer version than
    # qemu-system-x86 accepts: pin the bookworm one (see DEVELOPERS notes).
    local qv
    local qemu=(qemu-system-x86 qemu-utils)
    qv=$(apt-cache madison qemu-utils | awk -F' [|] ' '$3 ~ / bookworm\/main / {print $2; exit}')
    if [[ -n $qv ]]; then
        qemu=(qemu-system-x86 "qemu-utils=$qv")
    else
        log "no bookworm qemu-utils in apt (not Debian 12?): installing the distribution's qemu"
    fi
    apt-get install -y -qq --no-install-recommends --allow-downgrades \
        "${qemu[@]}" busybox-static btrfs-progs mmdebstrap \
        kmod zstd cpio fdisk e2fsprogs systemd cryptsetup-bin >/dev/null
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"
}

do_kernel() {
    local abi kver dir tmp
    abi=$(kernel_abi)
    [[ -n $abi ]] || die "could not find the kernel ABI from 'apt-cache depends linux-image-amd64'"
    kver=$abi-amd64
    dir=$cache/kernel/$kver
    tmp=$(mktemp -d)
    chmod 0755 "$tmp" # apt's _apt user downloads into it
    (cd "$tmp" && apt-get download -qq "linux-image-$kver")
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg-deb -x "$tmp"/linux-image-"$kver"_*.deb "$dir"
    rm -rf "$tmp"
    # bookworm ships modules in /lib/modules; normalise on that.
    if [[ ! -d $dir/lib/modules/$kver && -d $dir/usr/lib/modules/$kver ]]; then
        mkdir -p "$dir/lib/modules" && mv "$dir/usr/lib/modules/$kver" "$dir/lib/modules/"
    fi
    depmod -b "$dir" "$kver"
    [[ -f $dir/boot/vmlinuz-$kver ]] || die "no vmlinuz in linux-image-$kver"
    echo "$kver" >"$cache/kernel/version"
}

do_rootfs() {
    # mmdebstrap picks the output format from the extension: keep ".tar".
    rm -rf "$cache/rootfs.tmp.tar" "$cache/rootfs.tar"
    mmdebstrap --quiet --mode=root --variant=minbase \
        --include=systemd,systemd-sysv,udev,kmod \
        bookworm "$cache/rootfs.tmp.tar" http://deb.debian.org/debian
    mv "$cache/rootfs.tmp.tar" "$cache/rootfs.tar"
}

do_zfs() {
    local kver dir v
    kver=$(cat "$cache/kernel/version")
    dir=$cache/kernel/$kver
    if enable_contrib; then apt-get update -qq; fi
    apt-get install -y -qq --no-install-recommends "linux-headers-$kver" dkms >/dev/null
    # zfs-dkms' postinst builds for every kernel whose headers are installed
    # (the ~200 s part); if it is already installed, build for ours explicitly.
    apt-get install -y -qq --no-install-recommends zfs-dkms zfsutils-linux >/dev/null
    v=$(dpkg-query -W -f='${Version}' zfs-dkms | sed 's/-.*//')
    if ! ls /lib/modules/"$kver"/updates/dkms/zfs.ko* >/dev/null 2>&1; then
        dkms install "zfs/$v" -k "$kver"
    fi
    mkdir -p "$dir/lib/modules/$kver/updates/dkms"
    cp /lib/modules/"$kver"/updates/dkms/*.ko* "$dir/lib/modules/$kver/updates/dkms/"
    depmod -b "$dir" "$kver"
    command -v zpool >/dev/null || die "zpool missing after installing zfsutils-linux"
}

# A cache from before a package was added to the list: install again.
command -v cryptsetup >/dev/null || rm -f "$stamps/apt"
step apt do_apt
# A new kernel ABI in the archive invalidates the cached kernel (and ZFS).
abi=$(kernel_abi)
if [[ -e $stamps/kernel && "$(cat "$cache/kernel/version" 2>/dev/null)" != "$abi-amd64" ]]; then
    log "kernel ABI changed to $abi: rebuilding kernel and zfs"
    rm -f "$stamps/kernel" "$stamps/zfs"
fi
step kernel do_kernel
[[ -f $cache/rootfs.tar ]] || rm -f "$stamps/rootfs"
step rootfs do_rootfs
if ((with_zfs)); then
    kver=$(cat "$cache/kernel/version")
    [[ -f $cache/kernel/$kver/lib/modules/$kver/updates/dkms/zfs.ko ]] || rm -f "$stamps/zfs"
    step zfs do_zfs
else
    log "zfs: SKIPPED (--no-zfs): ZFS scenarios will be skipped"
fi
log "ready: kernel $(cat "$cache/kernel/version"), cache $cache"
