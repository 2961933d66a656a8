//! failure-policy: a missing `blank`, a missing device (Btrfs, both
//! flavours) and a missing snapshot (ZFS): tabula-rollback fails, says why,
//! the boot continues on the existing root, and nothing is deleted.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, ls};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::scenarios::zfs_rollback::ZFS_REPORT;
use crate::{Env, Result, ensure, sh};

const GOOD: &str = r#"{ "version": 1, "rollback": [ { "type": "btrfs", "device": "/dev/vda",
  "subvolume": "@root", "oldRoots": "@old_roots" } ] }"#;
const NO_BLANK: &str = r#"{ "version": 1, "rollback": [ { "type": "btrfs", "device": "/dev/vda",
  "subvolume": "@root", "blank": "@no-such-blank", "oldRoots": "@old_roots" } ] }"#;
const NO_DEVICE: &str = r#"{ "version": 1, "rollback": [ { "type": "btrfs", "device": "/dev/vdz",
  "waitSeconds": 3, "subvolume": "@root", "oldRoots": "@old_roots" } ] }"#;
const NO_SNAPSHOT: &str = r#"{ "version": 1, "rollback": [ { "type": "zfs",
  "dataset": "rpool/local/root", "snapshot": "no-such-snapshot", "oldRoots": null } ] }"#;

const WRITE: &str = "set -e\necho survived >/tabula-written-on-root\nsync\n";
const CHECK: &str = r#"
mark "root-file=$(cat /tabula-written-on-root 2>/dev/null || echo absent)"
mark "unit-failed=$(journalctl -b -o cat | grep -cE '(Failed to start|Dependency failed for) (tabula-rollback.service|tabula: roll back)')"
journalctl -b -o cat | grep -E 'tabula|vdz' | sed 's/^/J: /'
"#;

fn listing(img: &std::path::Path) -> Result<String> {
    let m = Mount::btrfs(img)?;
    let subvols = sh::run(
        "btrfs",
        &["subvolume", "list", &m.dir.display().to_string()],
    )?;
    let subvols: Vec<&str> = subvols
        .lines()
        .filter_map(|l| l.rsplit(" path ").next())
        .collect();
    Ok(format!(
        "{:?} {:?} {:?}",
        subvols,
        ls(&m.dir)?,
        ls(&m.p("@old_roots"))?
    ))
}

fn expect_failed_and_continued(what: &str, b: &Boot, flavour: Flavour, needle: &str) -> Result<()> {
    b.expect_script_ok()?;
    check_eq(
        &format!("{what}: the boot continued on the existing root"),
        b.get("root-file"),
        Some("survived"),
        Some(b),
    )?;
    if flavour == Flavour::Scripted {
        check_eq(
            &format!("{what}: tabula-rollback exit status"),
            b.get("rollback-exit"),
            Some("1"),
            Some(b),
        )?;
    } else {
        ensure!(
            b.get("unit-failed").is_some_and(|n| n != "0"),
            "{what}: the journal shows no failure of tabula-rollback.service; {}",
            b.describe()
        );
    }
    ensure!(
        b.log
            .lines()
            .any(|l| (l.contains("tabula-rollback") || l.starts_with("J: ")) && l.contains(needle)),
        "{what}: no log line names {needle:?}; {}",
        b.describe()
    );
    Ok(())
}

/// The Btrfs cases.
pub fn run_btrfs(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "failure-policy-btrfs")?;
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))
    })?;
    let b = ctx.boot(
        "write",
        &img,
        &Spec::new(Flavour::Scripted, Fs::Btrfs, GOOD, WRITE),
    )?;
    b.expect_script_ok()?;
    let before = listing(&img)?;
    for (flavour, config, what, needle) in [
        (
            Flavour::Scripted,
            NO_BLANK,
            "missing blank (scripted)",
            "@no-such-blank",
        ),
        (
            Flavour::Systemd,
            NO_BLANK,
            "missing blank (systemd initrd)",
            "@no-such-blank",
        ),
        (
            Flavour::Scripted,
            NO_DEVICE,
            "missing device (scripted)",
            "/dev/vdz",
        ),
        (
            Flavour::Systemd,
            NO_DEVICE,
            "missing device (systemd initrd)",
            "vdz",
        ),
    ] {
        let mut spec = Spec::new(flavour, Fs::Btrfs, config, CHECK);
        // The systemd initrd waits for the device unit (default 90 s).
        spec.cmdline = "systemd.default_device_timeout_sec=10".into();
        let b = ctx.boot(&what.replace([' ', '(', ')'], ""), &img, &spec)?;
        expect_failed_and_continued(what, &b, flavour, needle)?;
        check_eq(
            &format!("{what}: subvolumes and old roots"),
            listing(&img)?,
            before.clone(),
            Some(&b),
        )?;
    }
    Ok(Outcome::Pass)
}

/// The ZFS case.
pub fn run_zfs(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "failure-policy-zfs")?;
    let img = ctx.zfs_image("disk.img")?;
    let report = format!(
        "{ZFS_REPORT}\nzreport\nmark \"datasets=$(zfs list -H -t all -o name | paste -sd,)\"\n"
    );
    let b1 = ctx.boot(
        "write",
        &img,
        &Spec::new(
            Flavour::Scripted,
            Fs::Zfs,
            NO_SNAPSHOT,
            &format!("{report}{WRITE}"),
        ),
    )?;
    b1.expect_script_ok()?;
    let b2 = ctx.boot(
        "check",
        &img,
        &Spec::new(
            Flavour::Scripted,
            Fs::Zfs,
            NO_SNAPSHOT,
            &format!("{report}{CHECK}\n"),
        ),
    )?;
    expect_failed_and_continued(
        "missing snapshot",
        &b2,
        Flavour::Scripted,
        "no-such-snapshot",
    )?;
    check_eq(
        "missing snapshot: datasets and snapshots",
        b2.get("datasets"),
        b1.get("datasets"),
        Some(&b2),
    )?;
    ensure!(
        b2.get("datasets")
            .is_some_and(|d| d.contains("rpool/local/root@blank")),
        "@blank is gone; {}",
        b2.describe()
    );
    Ok(Outcome::Pass)
}
