//! zfs-torn-clone: the state a power cut inside `zfs clone -o
//! tabula:role=new-root ...` leaves, built on real ZFS, and what the next
//! boot does with it.
//!
//! The rollback recognises "an unmarked clone of `<root>@<snapshot>` with
//! nothing written to it" as a torn first step and destroys it; that rests
//! on real ZFS reporting `written=0` for a fresh clone, which this scenario
//! observes (the values are printed). Three cases, one disk, each set up
//! from an initrd shell (busybox), then one rotation boot:
//!
//! 1. `zfs clone <root>@blank <root>.tabula-new` without the mark: the
//!    rollback destroys that clone and rotates; exactly one root (promoted,
//!    empty), the previous root kept under oldRoots with its file, the old
//!    root that was there before untouched, every other dataset and snapshot
//!    still there (same GUIDs), `rpool/safe/persist` unchanged.
//! 2. an unmarked clone of `@blank` that holds data: refused, exit 1, every
//!    dataset and snapshot exactly as before (names and GUIDs), its data
//!    still there, the root not rolled back.
//! 3. an unmarked clone with nothing written to it but of another snapshot:
//!    refused the same way.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::{Env, Result, bail, ensure};
use std::collections::BTreeMap;
use std::time::Duration;

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": null, "min": 1, "max": 3 } }
  ]
}"#;

const ROOT: &str = "rpool/local/root";
const TEMP: &str = "rpool/local/root.tabula-new";
/// An old root that exists before the first case (a plain dataset with a
/// file, named like an old root).
const OLD: &str = "rpool/local/old_roots/2020-01-01T00:00:00Z";

/// Shell functions for every inspection/setup boot (busybox sh in stage 1).
const FUNCS: &str = r#"
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
const SETUP_TORN: &str = r#"
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
const INSPECT1_SETUP2: &str = r#"
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
const INSPECT2_SETUP3: &str = r#"
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
const INSPECT3: &str = r#"
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

type Guids = BTreeMap<String, String>;

fn guids(b: &Boot, key: &str) -> Result<Guids> {
    let Some(v) = b.get(key) else {
        bail!("no {key} report; {}", b.describe());
    };
    let m: Guids = v
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(n, g)| (n.to_owned(), g.to_owned()))
        .collect();
    ensure!(
        m.contains_key(ROOT),
        "{key}: no {ROOT} in {m:?}; {}",
        b.describe()
    );
    Ok(m)
}

fn script_boot(ctx: &Ctx, img: &std::path::Path, label: &str, script: &str) -> Result<Boot> {
    let mut spec = Spec::new(
        Flavour::Scripted,
        Fs::Zfs,
        CONFIG,
        &format!("{FUNCS}{script}"),
    );
    spec.mode = Mode::InitrdScript;
    spec.timeout = Duration::from_secs(180);
    let b = ctx.boot(label, img, &spec)?;
    check_eq(
        &format!("{label}: initrd script"),
        b.get("script-exit"),
        Some("0"),
        Some(&b),
    )?;
    Ok(b)
}

fn rotate_boot(ctx: &Ctx, img: &std::path::Path, label: &str) -> Result<Boot> {
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, "");
    spec.mode = Mode::RotateOnly;
    spec.timeout = Duration::from_secs(180);
    ctx.boot(label, img, &spec)
}

/// A refused case: exit 1 with the refusal in the log, then every dataset
/// and snapshot exactly as the set-up left it.
fn check_refused(case: &str, r: &Boot, before: &Guids, after: &Boot) -> Result<()> {
    check_eq(
        &format!("{case}: tabula-rollback exit status"),
        r.get("rollback-exit"),
        Some("1"),
        Some(r),
    )?;
    ensure!(
        r.log.contains("was not made by tabula"),
        "{case}: no refusal naming the unmarked {TEMP} in the log; {}",
        r.describe()
    );
    check_eq(
        &format!("{case}: datasets and snapshots (name=guid) after the refusal"),
        &guids(after, "state")?,
        before,
        Some(after),
    )?;
    check_eq(
        &format!("{case}: the root was not rolled back"),
        after.get("root-has-file"),
        Some("yes"),
        Some(after),
    )
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "zfs-torn-clone")?;
    let img = ctx.zfs_image("disk.img")?;

    // Case 1: the torn clone.
    let s1 = script_boot(&ctx, &img, "setup-torn", SETUP_TORN)?;
    let fresh = s1.get("written-fresh").unwrap_or("?").to_owned();
    let reimported = s1.get("written-reimported").unwrap_or("?").to_owned();
    eprintln!(
        "zfs-torn-clone: observed on real ZFS: `written` of a fresh unmarked clone of {ROOT}@blank = {fresh} \
         (after zpool sync), {reimported} (after export and import)"
    );
    check_eq(
        "case 1: the clone carries no tabula:role (a torn `zfs clone -o`)",
        s1.get("temp-mark"),
        Some("-"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: the clone's origin",
        s1.get("temp-origin"),
        Some("rpool/local/root@blank"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: the clone was never mounted",
        s1.get("temp-mounted"),
        Some("no"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: `written` of a fresh clone, as the next boot sees it",
        reimported.as_str(),
        "0",
        Some(&s1),
    )?;
    let before = guids(&s1, "setup")?;
    let persist = s1.get("persist").unwrap_or_default().to_owned();
    ensure!(
        persist.len() == 32,
        "no persist checksum; {}",
        s1.describe()
    );

    let r1 = rotate_boot(&ctx, &img, "rotate-torn")?;
    check_eq(
        "case 1: tabula-rollback exit status",
        r1.get("rollback-exit"),
        Some("0"),
        Some(&r1),
    )?;
    ensure!(
        r1.log
            .contains("is an unmarked clone of rpool/local/root@blank with nothing written to it"),
        "case 1: the rollback did not say it recognised the torn clone; {}",
        r1.describe()
    );
    let i1 = script_boot(&ctx, &img, "inspect-torn-setup-data", INSPECT1_SETUP2)?;
    let after = guids(&i1, "state")?;
    ensure!(
        !after.contains_key(TEMP),
        "case 1: {TEMP} is still there: {after:?}"
    );
    // Everything that existed keeps its GUID, except the clone (destroyed);
    // the previous root's GUID is now an old root's.
    let clone_guid = &before[TEMP];
    for (name, guid) in before.iter().filter(|(n, _)| *n != TEMP) {
        ensure!(
            after.values().any(|g| g == guid),
            "case 1: {name} (guid {guid}) was destroyed; after: {after:?}"
        );
    }
    ensure!(
        !after.values().any(|g| g == clone_guid),
        "case 1: the torn clone (guid {clone_guid}) is still there: {after:?}"
    );
    ensure!(
        after.contains_key("rpool/local/root@blank"),
        "case 1: rpool/local/root@blank missing: {after:?}"
    );
    check_eq(
        "case 1: the old root that was there before",
        after.get(OLD),
        before.get(OLD),
        Some(&i1),
    )?;
    let old: Vec<&String> = after
        .keys()
        .filter(|n| n.starts_with("rpool/local/old_roots/") && !n.contains('@'))
        .collect();
    check_eq("case 1: number of old roots", old.len(), 2, Some(&i1))?;
    let archived = old
        .iter()
        .find(|n| n.as_str() != OLD)
        .map(|n| n.as_str())
        .unwrap_or_default();
    ensure!(
        is_timestamp_name(archived.rsplit('/').next().unwrap_or_default()),
        "case 1: the archived root has no timestamp name: {archived}"
    );
    check_eq(
        "case 1: the archived root is the previous root (same guid)",
        after.get(archived),
        before.get(ROOT),
        Some(&i1),
    )?;
    check_report(
        &i1,
        &[
            ("case 1: the new root holds nothing", "root-has-file", "no"),
            ("case 1: the old root's file", "old-kept", "yes"),
            ("case 1: new root promoted (no origin)", "origin", "-"),
        ],
    )?;
    check_eq(
        "case 1: old roots holding the previous root's file",
        i1.get("old-with-file"),
        Some(archived),
        Some(&i1),
    )?;
    check_eq(
        "case 1: rpool/safe/persist",
        i1.get("persist"),
        Some(persist.as_str()),
        Some(&i1),
    )?;
    eprintln!(
        "zfs-torn-clone: case 1 (unmarked clone, written=0): destroyed, root rotated to {archived}, \
         {OLD} and every other dataset kept, persist unchanged"
    );

    // Case 2: an unmarked clone of @blank holding data.
    eprintln!(
        "zfs-torn-clone: observed: `written` of an unmarked clone mounted and unmounted without writing = {}, \
         after writing one file = {}",
        i1.get("written-mounted").unwrap_or("?"),
        i1.get("written-data").unwrap_or("?"),
    );
    ensure!(
        i1.get("written-data").is_some_and(|w| w != "0"),
        "case 2: the clone holding a file reports written=0: the recognition would destroy user data; {}",
        i1.describe()
    );
    let before2 = guids(&i1, "setup")?;
    let r2 = rotate_boot(&ctx, &img, "rotate-data")?;
    let i2 = script_boot(&ctx, &img, "inspect-data-setup-other", INSPECT2_SETUP3)?;
    check_refused("case 2 (unmarked clone holding data)", &r2, &before2, &i2)?;
    check_eq(
        "case 2: the clone's data",
        i2.get("temp-has-data"),
        Some("yes"),
        Some(&i2),
    )?;
    check_eq(
        "case 2: rpool/safe/persist",
        i2.get("persist"),
        Some(persist.as_str()),
        Some(&i2),
    )?;
    eprintln!("zfs-torn-clone: case 2 (unmarked clone holding data): refused, nothing changed");

    // Case 3: an unmarked clone of another snapshot, nothing written.
    eprintln!(
        "zfs-torn-clone: observed: `written` of a fresh unmarked clone of {ROOT}@other (a populated snapshot; mounted: {}) = {}",
        i2.get("other-mounted").unwrap_or("?"),
        i2.get("written-other").unwrap_or("?")
    );
    let before3 = guids(&i2, "setup")?;
    let r3 = rotate_boot(&ctx, &img, "rotate-other")?;
    let i3 = script_boot(&ctx, &img, "inspect-other", INSPECT3)?;
    check_refused(
        "case 3 (unmarked clone of another snapshot)",
        &r3,
        &before3,
        &i3,
    )?;
    check_eq(
        "case 3: rpool/safe/persist",
        i3.get("persist"),
        Some(persist.as_str()),
        Some(&i3),
    )?;
    eprintln!(
        "zfs-torn-clone: case 3 (unmarked clone of another snapshot): refused, nothing changed"
    );
    eprintln!(
        "zfs-torn-clone: observed: `written` of fresh never-mounted clones (-o mountpoint=legacy): of the populated @other = {} ({} after export and import), of the empty @blank = {} ({})",
        i3.get("observe-other").unwrap_or("?"),
        i3.get("observe-other-reimported").unwrap_or("?"),
        i3.get("observe-blank").unwrap_or("?"),
        i3.get("observe-blank-reimported").unwrap_or("?"),
    );
    Ok(Outcome::Pass)
}
