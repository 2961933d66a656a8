//! zfs-keep-previous: with `oldRoots` set, the previous root is not
//! destroyed but renamed to `<oldRoots>/<timestamp>`, `@blank` is cloned
//! back and promoted, and the new root mounts as before. Stage 1 destroys
//! nothing; the pruning unit runs once the guest is up (and, with
//! `days 30, min 1`, keeps both old roots).

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::initrd::Flavour;
use crate::scenarios::btrfs_rotation::REPORT;
use crate::scenarios::zfs_rollback::{WRITE, ZFS_REPORT};
use crate::{Env, Result, ensure};

/// The keep-previous machine: old roots kept under `rpool/local/old_roots`
/// (30 days, at least one), `/var/log`, `/var/lib/tabula-test` and
/// `/etc/tabula-test.conf` persisted on `rpool/safe/persist`. cli-zfs and
/// zfs-encrypted boot the same machine.
pub const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": 30, "min": 1, "max": null } }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

/// Which old roots hold the file written in boot 1 (mounted read-only).
const OLD_FILES: &str = r#"
oldfiles() {
  local n found=""
  mkdir -p /run/old
  for n in $(zfs list -H -o name -d 1 rpool/local/old_roots | tail -n +2); do
    if mount -t zfs -o ro "$n" /run/old 2>/dev/null; then
      [ -e /run/old/tabula-written-on-root ] && found="$found${found:+,}${n##*/}"
      umount /run/old
    else
      found="$found${found:+,}unmountable:${n##*/}"
    fi
  done
  mark "old-with-file=$found"
}
"#;

/// Run the scenario (scripted flavour).
pub fn run(env: &Env) -> Result<Outcome> {
    let flavour = Flavour::Scripted;
    let ctx = Ctx::new(env, "zfs-keep-previous")?;
    let img = ctx.zfs_image("disk.img")?;
    let b1 = ctx.boot(
        "write",
        &img,
        &Spec::new(
            flavour,
            Fs::Zfs,
            CONFIG,
            &format!("{REPORT}{ZFS_REPORT}\nzreport\n{WRITE}\nwait_prune\n"),
        ),
    )?;
    b1.expect_script_ok()?;
    b1.expect_stage1_deleted_nothing()?;
    b1.expect_pruned()?;
    check_eq(
        "boot 1: tabula-rollback exit status",
        b1.get("rollback-exit"),
        Some("0"),
        Some(&b1),
    )?;
    let b2 = ctx.boot(
        "check",
        &img,
        &Spec::new(
            flavour,
            Fs::Zfs,
            CONFIG,
            &format!("{REPORT}{ZFS_REPORT}{OLD_FILES}\nwait_prune\nreport\nzreport\noldfiles\n"),
        ),
    )?;
    b2.expect_script_ok()?;
    b2.expect_stage1_deleted_nothing()?;
    b2.expect_pruned()?;
    check_report(
        &b2,
        &[
            ("boot 2: tabula-rollback exit status", "rollback-exit", "0"),
            (
                "boot 2: file written to / before the reboot",
                "root-file",
                "absent",
            ),
            ("boot 2: persisted data", "data", "kept"),
            (
                "boot 2: root dataset mountpoint,canmount",
                "root-props",
                "legacy,on",
            ),
        ],
    )?;
    let old: Vec<&str> = b2
        .get("old-roots")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    check_eq(
        "boot 2: number of old roots after two boots",
        old.len(),
        2,
        Some(&b2),
    )?;
    ensure!(
        old.iter().all(|n| is_timestamp_name(n)),
        "old root names are not timestamps: {old:?}"
    );
    let with: Vec<&str> = b2
        .get("old-with-file")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    check_eq(
        "boot 2: old roots holding the file written in boot 1",
        with.len(),
        1,
        Some(&b2),
    )?;
    ensure!(
        b2.get("snapshots")
            .is_some_and(|s| s.split(',').any(|x| x == "rpool/local/root@blank")),
        "rpool/local/root@blank is gone after the rotation: {:?}; {}",
        b2.get("snapshots"),
        b2.describe()
    );
    Ok(Outcome::Pass)
}
