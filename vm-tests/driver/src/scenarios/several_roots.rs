//! several-roots-btrfs / several-roots-zfs: one config with two rollback
//! targets, rolled back in one boot, each independently of the other's
//! failure.
//!
//! Btrfs: the root (`@root` on /dev/vda, old roots in `@old_roots`) and a
//! second Btrfs filesystem on another disk (`@home` on /dev/vdb, old roots
//! in `@old_homes`). Before every boot the host writes a marker file into
//! both, then checks from the host what the boot did with them:
//!
//! 1. scripted, both there: both rotated, each old root holds its marker;
//! 2. scripted, the root's `blank` missing: the root left exactly as it was
//!    (marker there, old roots unchanged), the second disk still rotated,
//!    tabula-rollback exits 1 with `1 of 2 targets failed`, the machine boots;
//! 3. systemd initrd, both there: both rotated (the unit waits for both
//!    device units);
//! 4. systemd initrd, the second disk detached: the root still rotated,
//!    exit 1 with `1 of 2 targets failed`, the unit ran (not "Dependency
//!    failed": the device units are wanted, not required), the machine boots;
//! 5. scripted, the second disk detached: the same (the binary waits its
//!    `waitSeconds` for the disk, then fails only that target).
//!
//! ZFS: `rpool/local/root@blank` and `rpool/local/home@blank` (the storage
//! seed's `rpool/local/*` layout), each rolled back to its own snapshot.
//! Stage 2 writes a marker into both in every boot:
//!
//! 1. scripted, both snapshots there: both rolled back;
//! 2. scripted, the root's snapshot missing: the root keeps its marker, home
//!    rolled back, exit 1 with `1 of 2 targets failed`;
//! 3. systemd initrd, home's snapshot missing: the root rolled back, home
//!    keeps its marker, the unit exited 1 with the same line.
//!
//! Over 400 lines on purpose: the Btrfs and the ZFS half are one claim (each
//! target on its own) and share the reading of stage 1's log
//! (`expect_one_of_two_failed`, `expect_all_done`).

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq, is_timestamp_name, ls};
use crate::image::{Mount, subvol};
use crate::initrd::{Flavour, Item};
use crate::qemu::Boot;
use crate::{Context, Env, Result, bail, ensure, sh};
use std::path::Path;
use std::time::Duration;

/// The Btrfs config: the root, then the second disk; `blank` for the root
/// when given (a missing one breaks the first target).
fn btrfs_config(root_blank: Option<&str>) -> String {
    let blank = root_blank
        .map(|b| format!(r#""blank": "{b}", "#))
        .unwrap_or_default();
    format!(
        r#"{{
  "version": 1,
  "rollback": [
    {{ "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", {blank}
      "oldRoots": "@old_roots", "keep": {{ "days": 30, "min": 1, "max": null }} }},
    {{ "type": "btrfs", "device": "/dev/vdb", "subvolume": "@home", "waitSeconds": 5,
      "oldRoots": "@old_homes", "keep": {{ "days": 30, "min": 1, "max": null }} }}
  ]
}}"#
    )
}

/// The ZFS config: root and home, each to its own snapshot.
fn zfs_config(root_snapshot: &str, home_snapshot: &str) -> String {
    format!(
        r#"{{
  "version": 1,
  "rollback": [
    {{ "type": "zfs", "dataset": "rpool/local/root", "snapshot": "{root_snapshot}", "oldRoots": null }},
    {{ "type": "zfs", "dataset": "rpool/local/home", "snapshot": "{home_snapshot}", "oldRoots": null }}
  ]
}}"#
    )
}

/// Stage 2: how stage 1's unit ended (systemd initrd; the journal keeps the
/// initrd's lines), then wait for the pruning unit.
const UNIT_REPORT: &str = r#"
j=$(journalctl -b -o cat 2>/dev/null)
mark "unit-exit1=$(grep -c 'tabula-rollback.service: Main process exited, code=exited, status=1/FAILURE' <<<"$j") unit-depfailed=$(grep -cE 'Dependency failed for .*(tabula-rollback|roll back the root)' <<<"$j")"
grep -E 'tabula|vdb' <<<"$j" | sed 's/^/J: /'
"#;

/// The stage-1 rollback's own console lines: those of the first
/// `tabula-rollback[pid]` (the pruning unit of stage 2 logs under another
/// pid).
fn stage1_lines(b: &Boot) -> Vec<&str> {
    let Some(pid) = b.log.lines().find_map(|l| {
        let rest = &l[l.find("tabula-rollback[")? + "tabula-rollback[".len()..];
        Some(&rest[..rest.find(']')?])
    }) else {
        return Vec::new();
    };
    let tag = format!("tabula-rollback[{pid}]:");
    b.log.lines().filter(|l| l.contains(&tag)).collect()
}

/// tabula-rollback exited 1 after `1 of 2 targets failed`, the failing
/// target's line names `needle`, and the machine booted.
fn expect_one_of_two_failed(what: &str, b: &Boot, flavour: Flavour, needle: &str) -> Result<()> {
    b.expect_script_ok()?;
    let lines = stage1_lines(b);
    ensure!(
        lines.iter().any(|l| l.contains("1 of 2 targets failed")),
        "{what}: stage 1 did not log `1 of 2 targets failed`; its lines:\n{}\n{}",
        lines.join("\n"),
        b.describe()
    );
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("rollback[") && l.contains("stopped") && l.contains(needle)),
        "{what}: no stage-1 line names {needle:?} as the failing target; its lines:\n{}\n{}",
        lines.join("\n"),
        b.describe()
    );
    match flavour {
        Flavour::Scripted => check_eq(
            &format!("{what}: tabula-rollback exit status"),
            b.get("rollback-exit"),
            Some("1"),
            Some(b),
        ),
        Flavour::Systemd => {
            check_eq(
                &format!("{what}: tabula-rollback.service failed by a dependency"),
                b.get("unit-depfailed"),
                Some("0"),
                Some(b),
            )?;
            check_eq(
                &format!("{what}: tabula-rollback.service ran and exited 1"),
                b.get("unit-exit1"),
                Some("1"),
                Some(b),
            )
        }
    }
}

/// Both targets done, exit 0.
fn expect_all_done(what: &str, b: &Boot, flavour: Flavour) -> Result<()> {
    b.expect_script_ok()?;
    let lines = stage1_lines(b);
    ensure!(
        lines.iter().any(|l| l.contains("rollback[1]:")),
        "{what}: stage 1 never reached the second target; its lines:\n{}\n{}",
        lines.join("\n"),
        b.describe()
    );
    ensure!(
        !lines.iter().any(|l| l.contains("targets failed")),
        "{what}: a target failed:\n{}\n{}",
        lines.join("\n"),
        b.describe()
    );
    match flavour {
        Flavour::Scripted => check_eq(
            &format!("{what}: tabula-rollback exit status"),
            b.get("rollback-exit"),
            Some("0"),
            Some(b),
        ),
        Flavour::Systemd => check_eq(
            &format!("{what}: tabula-rollback.service did not fail"),
            (b.get("unit-exit1"), b.get("unit-depfailed")),
            (Some("0"), Some("0")),
            Some(b),
        ),
    }
}

/// One Btrfs target as the host sees it: the marker in the root (if any)
/// and every old root with its marker.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    marker: Option<String>,
    old: Vec<(String, Option<String>)>,
}

const MARKER: &str = "tabula-marker";

fn read_marker(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(MARKER)).ok()
}

fn target(img: &Path, sub: &str, old: &str) -> Result<Target> {
    let m = Mount::btrfs(img)?;
    let names = ls(&m.p(old))?;
    ensure!(
        names.iter().all(|n| is_timestamp_name(n)),
        "{}: {old} holds unexpected names: {names:?}",
        img.display()
    );
    Ok(Target {
        marker: read_marker(&m.p(sub)),
        old: names
            .into_iter()
            .map(|n| {
                let v = read_marker(&m.p(&format!("{old}/{n}")));
                (n, v)
            })
            .collect(),
    })
}

/// Write `value` into the marker file of `sub` (host side).
fn mark_target(img: &Path, sub: &str, value: &str) -> Result<()> {
    let m = Mount::btrfs(img)?;
    let f = m.p(&format!("{sub}/{MARKER}"));
    std::fs::write(&f, value).ctx(f.display())?;
    Ok(())
}

/// `before` was rotated: the root holds no marker, one more old root, and
/// the new one holds the marker the root had.
fn expect_rotated(what: &str, before: &Target, after: &Target) -> Result<()> {
    ensure!(
        after.marker.is_none(),
        "{what}: the root still holds its marker {:?}: not rolled back",
        after.marker
    );
    check_eq(
        &format!("{what}: number of old roots"),
        after.old.len(),
        before.old.len() + 1,
        None,
    )?;
    let new: Vec<_> = after
        .old
        .iter()
        .filter(|o| !before.old.contains(o))
        .collect();
    check_eq(
        &format!("{what}: the new old root holds the root's marker"),
        new.first().and_then(|(_, m)| m.clone()),
        before.marker.clone(),
        None,
    )
}

/// The host-side checksums of a whole image file (left exactly as it was).
fn file_sum(img: &Path) -> Result<String> {
    sh::bash(r#"sha256sum <"$1""#, &[img])
}

/// One boot of the Btrfs half: its config, flavour and whether the second
/// disk is attached.
struct Case<'a> {
    label: &'a str,
    flavour: Flavour,
    config: &'a str,
    second_disk: bool,
}

/// Run the Btrfs scenario.
pub fn run_btrfs(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "several-roots-btrfs")?;
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))
    })?;
    let home = ctx.dir.join("home.img");
    sh::run("truncate", &["-s", "256M", &home.display().to_string()])?;
    sh::run(
        "mkfs.btrfs",
        &["-q", "-L", "home", &home.display().to_string()],
    )?;
    {
        let m = Mount::btrfs(&home)?;
        subvol(&m.p("@home"))?;
        subvol(&m.p("@old_homes"))?;
    }
    let script = format!("mark booted=yes\n{UNIT_REPORT}\nwait_prune\n");
    let good = btrfs_config(None);
    let no_blank = btrfs_config(Some("@no-such-blank"));
    let cases = [
        Case {
            label: "both",
            flavour: Flavour::Scripted,
            config: &good,
            second_disk: true,
        },
        Case {
            label: "root-blank-missing",
            flavour: Flavour::Scripted,
            config: &no_blank,
            second_disk: true,
        },
        Case {
            label: "both",
            flavour: Flavour::Systemd,
            config: &good,
            second_disk: true,
        },
        Case {
            label: "second-disk-missing",
            flavour: Flavour::Systemd,
            config: &good,
            second_disk: false,
        },
        Case {
            label: "second-disk-missing",
            flavour: Flavour::Scripted,
            config: &good,
            second_disk: false,
        },
    ];
    for (n, c) in cases.iter().enumerate() {
        let what = format!("boot {} ({}, {})", n + 1, c.flavour.name(), c.label);
        mark_target(&img, "@root", &format!("root-{}", n + 1))?;
        mark_target(&home, "@home", &format!("home-{}", n + 1))?;
        let root_before = target(&img, "@root", "@old_roots")?;
        let home_before = target(&home, "@home", "@old_homes")?;
        let home_sum = file_sum(&home)?;
        let mut spec = Spec::new(c.flavour, Fs::Btrfs, c.config, &script);
        if c.second_disk {
            spec.extra_disks.push(home.clone());
        }
        // A missing disk's device job times out (90 s by default; the
        // drop-in shortens it as `x-systemd.device-timeout=` would, since
        // this systemd, 252, ignores systemd.default_device_timeout_sec=);
        // the unit starts then, as it only wants the device.
        spec.initrd_files.push((
            "/etc/systemd/system/dev-vdb.device.d/timeout.conf".into(),
            Item::Text("[Unit]\nJobRunningTimeoutSec=15\n".into(), 0o644),
        ));
        spec.timeout = Duration::from_secs(300);
        let b = ctx.boot(c.label, &img, &spec)?;
        let root_after = target(&img, "@root", "@old_roots")?;
        let home_after = target(&home, "@home", "@old_homes")?;
        match (c.config == no_blank, c.second_disk) {
            (false, true) => {
                expect_all_done(&what, &b, c.flavour)?;
                expect_rotated(&format!("{what}: @root"), &root_before, &root_after)?;
                expect_rotated(&format!("{what}: @home"), &home_before, &home_after)?;
            }
            (true, true) => {
                expect_one_of_two_failed(&what, &b, c.flavour, "@no-such-blank")?;
                check_eq(
                    &format!("{what}: @root (the failing target) left as it was"),
                    &root_after,
                    &root_before,
                    Some(&b),
                )?;
                expect_rotated(&format!("{what}: @home"), &home_before, &home_after)?;
            }
            (false, false) => {
                expect_one_of_two_failed(&what, &b, c.flavour, "/dev/vdb")?;
                expect_rotated(&format!("{what}: @root"), &root_before, &root_after)?;
                check_eq(
                    &format!("{what}: the second disk (not attached) unchanged"),
                    file_sum(&home)?,
                    home_sum,
                    Some(&b),
                )?;
            }
            (true, false) => bail!("{what}: no such case"),
        }
    }
    Ok(Outcome::Pass)
}

/// ZFS stage 2: mount home, report both markers, write new ones.
const ZFS_SCRIPT: &str = r#"
mkdir -p /mnt/home
mount -t zfs rpool/local/home /mnt/home
mark "root-marker=$(cat /tabula-marker 2>/dev/null || echo absent) home-marker=$(cat /mnt/home/tabula-marker 2>/dev/null || echo absent)"
mark "snapshots=$(zfs list -H -t snapshot -o name | paste -sd,)"
echo "$1" >/tabula-marker
echo "$1" >/mnt/home/tabula-marker
umount /mnt/home
sync
"#;

/// Run the ZFS scenario.
pub fn run_zfs(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "several-roots-zfs")?;
    let img = ctx.zfs_image("disk.img")?;
    // The storage seed's home dataset next to the root, with its own @blank,
    // and a marker in both (from an initrd shell).
    let mut setup = Spec::new(
        Flavour::Scripted,
        Fs::Zfs,
        &zfs_config("blank", "blank"),
        r"set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
zfs create -o mountpoint=legacy rpool/local/home
zfs snapshot rpool/local/home@blank
mkdir -p /m
for ds in root home; do
  mount -t zfs rpool/local/$ds /m
  echo set-up >/m/tabula-marker
  umount /m
done
zfs list -t all -o name
zpool export rpool
",
    );
    setup.mode = Mode::InitrdScript;
    setup.timeout = Duration::from_secs(180);
    let b = ctx.boot("setup", &img, &setup)?;
    check_eq(
        "set-up: initrd script",
        b.get("script-exit"),
        Some("0"),
        Some(&b),
    )?;
    let snapshots = "rpool/local/home@blank,rpool/local/root@blank";
    for (n, (flavour, label, root_snap, home_snap, root_marker, home_marker)) in [
        (
            Flavour::Scripted,
            "both",
            "blank",
            "blank",
            "absent",
            "absent",
        ),
        (
            Flavour::Scripted,
            "root-snapshot-missing",
            "no-such-snapshot",
            "blank",
            "boot-1",
            "absent",
        ),
        (
            Flavour::Systemd,
            "home-snapshot-missing",
            "blank",
            "no-such-snapshot",
            "absent",
            "boot-2",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("boot {} ({}, {label})", n + 1, flavour.name());
        let script = format!(
            "set -e\nset -- boot-{}\n{ZFS_SCRIPT}\n{UNIT_REPORT}\n",
            n + 1
        );
        let b = ctx.boot(
            label,
            &img,
            &Spec::new(flavour, Fs::Zfs, &zfs_config(root_snap, home_snap), &script),
        )?;
        if root_snap == home_snap {
            expect_all_done(&what, &b, flavour)?;
        } else {
            expect_one_of_two_failed(&what, &b, flavour, "no-such-snapshot")?;
        }
        check_eq(
            &format!("{what}: the root's marker (absent: rolled back)"),
            b.get("root-marker"),
            Some(root_marker),
            Some(&b),
        )?;
        check_eq(
            &format!("{what}: home's marker (absent: rolled back)"),
            b.get("home-marker"),
            Some(home_marker),
            Some(&b),
        )?;
        check_eq(
            &format!("{what}: snapshots"),
            b.get("snapshots"),
            Some(snapshots),
            Some(&b),
        )?;
    }
    Ok(Outcome::Pass)
}
