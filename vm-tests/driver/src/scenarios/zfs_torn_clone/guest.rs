//! The guest's side of zfs-torn-clone: the configuration and the initrd
//! shell scripts that build each torn state on real ZFS and report what
//! the checks in the parent module compare (`@@TABULA key=value` marks).

pub(super) const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": null, "min": 1, "max": 3 } }
  ]
}"#;

/// Shell functions for every inspection/setup boot (busybox sh in stage 1).
pub(super) const FUNCS: &str = r#"
set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
mkdir -p /m /p
# Every dataset and snapshot with its GUID: name=guid,name=guid,...
guids() { mark "$1=$(zfs list -H -t all -o name,guid | tr '\t' '=' | tr '\n' ',')"; }
# has KEY DATASET FILE: whether FILE exists in DATASET (mounted read-only).
has() {
  if mount -t zfs -o ro "$2" /m 2>/dev/null; then
    if [ -e "/m/$3" ]; then mark "$1=yes"; else mark "$1=no"; fi
    umount /m
  else
    mark "$1=unmountable"
  fi
}
persist() {
  mount -t zfs -o ro rpool/safe/persist /p
  mark "persist=$(cd /p && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-32)"
  umount /p
}
oldroots() {
  local n out=""
  for n in $(zfs list -H -o name -d 1 rpool/local/old_roots | tail -n +2); do
    if mount -t zfs -o ro "$n" /m 2>/dev/null; then
      [ -e /m/tabula-written-on-root ] && out="$out${out:+,}$n"
      umount /m
    fi
  done
  mark "old-with-file=$out"
}
write_root() {
  mount -t zfs rpool/local/root /m
  echo "$1" >/m/tabula-written-on-root
  umount /m
}
# torn_clone SNAPSHOT: `zfs clone SNAPSHOT rpool/local/root.tabula-new`
# without tabula's mark or any property, and never mounted: what a power
# cut between the clone's creation and its properties leaves. (A plain
# `zfs clone` would mount it at its inherited mountpoint; a file in the
# way makes that mount fail, after the clone was created.)
torn_clone() {
  mkdir -p /rpool/local
  touch /rpool/local/root.tabula-new
  zfs clone "$1" rpool/local/root.tabula-new 2>/dev/null || true
  zfs list -H -o name rpool/local/root.tabula-new >/dev/null
  rm -f /rpool/local/root.tabula-new
}
written() {
  zpool sync rpool
  mark "$1=$(zfs get -H -p -o value written rpool/local/root.tabula-new)"
}
"#;

/// Case 1 set-up: persisted files, an old root, a file on the root, and
/// the torn clone; its `written` observed right after `zfs clone` and again
/// after an export and import (what the next boot sees).
pub(super) const SETUP_TORN: &str = r#"
mount -t zfs rpool/safe/persist /p
mkdir -p /p/etc/ssh /p/var/lib/app
for i in 1 2 3 4 5; do head -c $((i * 4099)) /dev/urandom >/p/var/lib/app/blob$i; done
echo key >/p/etc/ssh/ssh_host_ed25519_key
umount /p
zfs create -o mountpoint=legacy -o canmount=noauto rpool/local/old_roots/2020-01-01T00:00:00Z
mount -t zfs rpool/local/old_roots/2020-01-01T00:00:00Z /m
echo old >/m/old-root-file
umount /m
write_root one
torn_clone rpool/local/root@blank
written written-fresh
mark "temp-mark=$(zfs get -H -o value tabula:role rpool/local/root.tabula-new)"
mark "temp-origin=$(zfs get -H -o value origin rpool/local/root.tabula-new)"
mark "temp-mounted=$(zfs get -H -o value mounted rpool/local/root.tabula-new)"
zpool export rpool
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
written written-reimported
persist
guids setup
zpool export rpool
"#;

/// After case 1; then case 2's set-up: an unmarked clone of @blank holding
/// a file, and a file on the root.
pub(super) const INSPECT1_SETUP2: &str = r#"
guids state
has root-has-file rpool/local/root tabula-written-on-root
has old-kept rpool/local/old_roots/2020-01-01T00:00:00Z old-root-file
oldroots
persist
mark "origin=$(zfs get -H -o value origin rpool/local/root)"
write_root two
zfs clone -o mountpoint=legacy rpool/local/root@blank rpool/local/root.tabula-new
mount -t zfs rpool/local/root.tabula-new /m
umount /m
written written-mounted
mount -t zfs rpool/local/root.tabula-new /m
echo mine >/m/user-data
umount /m
written written-data
guids setup
zpool export rpool
"#;

/// After case 2; then case 3's set-up: the user's clone removed, an
/// unmarked clone of another snapshot with nothing written to it.
pub(super) const INSPECT2_SETUP3: &str = r#"
guids state
has root-has-file rpool/local/root tabula-written-on-root
has temp-has-data rpool/local/root.tabula-new user-data
persist
zfs destroy rpool/local/root.tabula-new
zfs snapshot rpool/local/root@other
torn_clone rpool/local/root@other
mark "other-mounted=$(zfs get -H -o value mounted rpool/local/root.tabula-new)"
written written-other
guids setup
zpool export rpool
"#;

/// After case 3; then, observed only (printed, not asserted): `written`
/// of fresh clones made as tabula makes them (`-o mountpoint=legacy`, never
/// mounted) of the empty `@blank` and of a populated snapshot.
pub(super) const INSPECT3: &str = r#"
guids state
has root-has-file rpool/local/root tabula-written-on-root
persist
zfs destroy rpool/local/root.tabula-new
zfs clone -o mountpoint=legacy rpool/local/root@other rpool/local/observe-other
zfs clone -o mountpoint=legacy rpool/local/root@blank rpool/local/observe-blank
zpool sync rpool
mark "observe-other=$(zfs get -H -p -o value written rpool/local/observe-other) observe-blank=$(zfs get -H -p -o value written rpool/local/observe-blank)"
zpool export rpool
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
mark "observe-other-reimported=$(zfs get -H -p -o value written rpool/local/observe-other) observe-blank-reimported=$(zfs get -H -p -o value written rpool/local/observe-blank)"
zfs destroy rpool/local/observe-other
zfs destroy rpool/local/observe-blank
zpool export rpool
"#;
