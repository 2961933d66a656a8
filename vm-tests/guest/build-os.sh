#!/usr/bin/env bash
# Build the guest operating system tree that goes into the /usr subvolume or
# dataset (the harness's equivalent of /nix): the Debian rootfs's /usr, plus
# the rest of the rootfs as a skeleton that stage 1 copies onto every fresh
# root (see guest/activate), plus the harness's stage-2 test service.
#   build-os.sh CACHE OUT_DIR
set -euo pipefail
cache=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tabula-os.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"
tar -xf "$cache/rootfs.tar" -C "$root" --exclude=./dev/*
rm -rf "$root"/usr/share/{doc,man,info,locale} "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*

skel=$root/usr/share/tabula-harness/skeleton
mkdir -p "$skel"
for e in "$root"/* "$root"/.[!.]*; do
    [[ -e $e || -L $e ]] || continue
    case ${e##*/} in usr) ;; *) mv "$e" "$skel/" ;; esac
done
# What stage 1 and systemd expect: an empty machine-id (transient until
# committed), no fstab entries but the per-scenario ones, a hostname.
: >"$skel/etc/machine-id"
echo tabula-vm >"$skel/etc/hostname"
: >"$skel/etc/fstab"
sys=$skel/etc/systemd/system
for u in getty@.service serial-getty@.service getty.target systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sfn /dev/null "$sys/$u"
done
ln -sfn /lib/systemd/system/multi-user.target "$sys/default.target"
cat >"$sys/tabula-harness.service" <<'UNIT'
[Unit]
Description=tabula harness: run the test script from fw_cfg, then power off
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/lib/tabula-harness/stage2
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$sys/multi-user.target.wants"
ln -sfn ../tabula-harness.service "$sys/multi-user.target.wants/tabula-harness.service"

mkdir -p "$root/usr/lib/tabula-harness"
cat >"$root/usr/lib/tabula-harness/stage2" <<'SH'
#!/bin/bash
# Stage 2 of a harness boot: run the scenario's script (fw_cfg), print its
# markers on the serial console, power off (QEMU runs with -no-reboot).
read -r up _ </proc/uptime
echo "@@TABULA stage2-start uptime_s=$up"
f=/sys/firmware/qemu_fw_cfg/by_name/opt/tabula/script/raw
rc=99
if [[ -r $f ]]; then
    cp "$f" /run/tabula-script.sh
    bash /run/tabula-script.sh
    rc=$?
fi
echo "@@TABULA script-exit=$rc"
if [[ $rc != 0 ]]; then
    echo "--- diagnostics (script failed): failed units, tabula journal lines, mounts"
    systemctl --no-pager --failed
    for u in $(systemctl --no-legend --plain --failed | cut -d" " -f1); do journalctl -b --no-pager -o cat -u "$u" | tail -15; done
    journalctl -b --no-pager -o short-monotonic | grep -iE 'tabula|persist|generator' | tail -60
    if systemctl -q is-failed tabula-prepare.service; then echo "--- re-running tabula-generator prepare:"; /etc/systemd/system-generators/tabula-generator prepare; echo "prepare exit=$?"; fi
    findmnt -rno TARGET,SOURCE,FSTYPE
    ls -la /etc/systemd/system-generators /run/systemd/generator 2>&1 | head -40
fi
systemctl poweroff --no-block
SH
chmod 0755 "$root/usr/lib/tabula-harness/stage2"

# ZFS userland (for /persist on a dataset and for inspecting the pool).
if command -v zpool >/dev/null && [[ -x /sbin/mount.zfs ]]; then
    for f in "$(command -v zpool)" "$(command -v zfs)" /sbin/mount.zfs; do
        cp -L "$f" "$root/usr/sbin/"
        for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
            b=${lib##*/}
            [[ -e $root/usr/lib/x86_64-linux-gnu/$b || $b == ld-linux* ]] && continue
            cp -L "$lib" "$root/usr/lib/x86_64-linux-gnu/"
        done
    done
fi

rm -rf "$out.tmp"
mv "$root/usr" "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
du -sh "$out" >&2
