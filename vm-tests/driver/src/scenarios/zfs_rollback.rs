//! zfs-rollback (both flavours): `rpool/local/root` is rolled back to
//! `@blank` at every boot after the pool import; persisted data on
//! `rpool/safe/persist` survives with owners and modes; the root dataset
//! keeps the properties that make it mount as before.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report};
use crate::initrd::Flavour;
use crate::scenarios::btrfs_rotation::REPORT;
use crate::{Env, Result};

/// Roll back to @blank, discard the previous root.
pub const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank", "oldRoots": null }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

/// What boot 1 writes (to / and to persisted paths).
pub const WRITE: &str = "set -e\nreport\necho erased >/tabula-written-on-root\n\
    echo kept >/var/lib/tabula-test/data\nchown nobody:nogroup /var/lib/tabula-test/data\n\
    chmod 0640 /var/lib/tabula-test/data\necho secret >/etc/tabula-test.conf\nsync\n";

/// ZFS state as markers.
pub const ZFS_REPORT: &str = r#"
zreport() {
  mark "root-props=$(zfs get -H -o value mountpoint,canmount rpool/local/root | paste -sd,)"
  mark "snapshots=$(zfs list -H -t snapshot -o name | paste -sd,)"
  mark "old-roots=$(zfs list -H -o name -d 1 rpool/local/old_roots | tail -n +2 | sed 's#.*/##' | paste -sd,)"
  mark "root-origin=$(zfs get -H -o value origin rpool/local/root)"
}
"#;

/// Run in one flavour.
pub fn run(env: &Env, flavour: Flavour) -> Result<Outcome> {
    let ctx = Ctx::new(env, &format!("zfs-rollback-{}", flavour.name()))?;
    let img = ctx.zfs_image("disk.img")?;
    let b1 = ctx.boot(
        "write",
        &img,
        &Spec::new(
            flavour,
            Fs::Zfs,
            CONFIG,
            &format!("{REPORT}{ZFS_REPORT}\nzreport\n{WRITE}"),
        ),
    )?;
    b1.expect_script_ok()?;
    check_eq(
        "boot 1: persisted directory mounted",
        b1.get("persist-mounted"),
        Some("yes"),
        Some(&b1),
    )?;
    let b2 = ctx.boot(
        "check",
        &img,
        &Spec::new(
            flavour,
            Fs::Zfs,
            CONFIG,
            &format!("{REPORT}{ZFS_REPORT}\nreport\nzreport\n"),
        ),
    )?;
    b2.expect_script_ok()?;
    check_report(&b2, super::ERASED_AND_PERSISTED)?;
    check_report(
        &b2,
        &[
            (
                "boot 2: root dataset mountpoint,canmount",
                "root-props",
                "legacy,on",
            ),
            ("boot 2: snapshots", "snapshots", "rpool/local/root@blank"),
            (
                "boot 2: old roots (oldRoots: null discards them)",
                "old-roots",
                "",
            ),
        ],
    )?;
    for b in [&b1, &b2] {
        if flavour == Flavour::Scripted {
            check_eq(
                "stage 1: tabula-rollback exit status",
                b.get("rollback-exit"),
                Some("0"),
                Some(b),
            )?;
        } else {
            crate::scenarios::btrfs_rotation::check_unit_order(b)?;
        }
    }
    Ok(Outcome::Pass)
}
