//! hibernate-resume (both flavours): tabula never rolls back a root that the
//! kernel is about to resume.
//!
//! A second disk, `/dev/vdb`, is a swap device, and every boot carries
//! `resume=/dev/vdb` on the kernel command line, as NixOS sets it from
//! `boot.resumeDevice`.
//!
//! 1. Boot 1 (a normal boot, rotates as usual) writes a file on `/`, starts a
//!    process holding a file on `/` open for writing, and hibernates
//!    (`systemctl hibernate`): the kernel writes its image to the swap disk
//!    and powers off.
//! 2. Boot 2 resumes: stage 1 makes its resume attempt (scripted: the resume
//!    device's major:minor written to `/sys/power/resume`, where NixOS's
//!    stage-1-init.sh does it; systemd: `systemd-hibernate-resume@.service`,
//!    made from `resume=` by systemd's generator) and the kernel jumps back
//!    into the hibernated system before tabula-rollback ever starts. The
//!    script of boot 1 then carries on: same boot id, the process still there
//!    with the same PID and its file still open, the file on `/` still
//!    there; it writes on `/` again and shuts down cleanly. From the host:
//!    `btrfs check --readonly` clean, no old root archived by boot 2, `@root`
//!    holding both files.
//! 3. Boot 3, a normal boot after that clean shutdown: the resume attempt
//!    finds no image, tabula rolls back as usual, and the root archived holds
//!    what was written before and after the hibernation.
//!
//! The order that keeps the root safe is checked in every boot's log: in
//! boot 2 the console shows the resume attempt and the kernel loading the
//! image, and not a single line of tabula-rollback; in boots 1 and 3 (no
//! image) the resume attempt comes first and tabula's run after it. In the
//! systemd flavour a drop-in makes the resume unit take 3 s longer, so a
//! tabula unit not ordered after it would start first: the order seen in the
//! journal is the units' ordering, not a coincidence of timing.
//!
//! Were tabula ordered before the resume attempt, boot 2 would archive the
//! hibernated root and make a new one on disk, and the resumed kernel would
//! then go on with its in-memory view of the old trees and commit over what
//! stage 1 wrote. `hibernate-rollback-first` boots exactly that (scripted
//! flavour, the resume attempt moved after the rollback): stage 1 archives
//! the root, the kernel resumes, the resumed system still sees its old root;
//! on Debian 12's kernel and this small idle root, its next commit replaced
//! stage 1's and the rollback was silently lost (`btrfs check` clean), what
//! the disk holds being up to what the resumed kernel writes over.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, is_timestamp_name, ls};
use crate::image::Mount;
use crate::initrd::{Flavour, Item};
use crate::qemu::{Boot, End};
use crate::{Context, Env, Result, bail, ensure, sh};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod checks;

use checks::{
    check_hibernated, check_normal_order, check_resumed_before_rollback, check_top_level, fsck,
    old_roots,
};

/// The config of the scenario: the Btrfs rotation's (`@root` archived into
/// `@old_roots`, `/var/log` and others persisted).
const CONFIG: &str = super::btrfs_rotation::CONFIG;

/// The swap disk (vdb) is swap in stage 2 and the resume device.
const FSTAB: &str =
    "/dev/vda /persist btrfs subvol=@persist 0 0\n/dev/vdb none swap defaults 0 0\n";

/// The kernel parameter NixOS sets from `boot.resumeDevice`.
const RESUME: &str = "resume=/dev/vdb";

/// systemd flavour: the resume unit takes 3 s longer. A tabula unit that
/// were not ordered after it would start (its device is there at once) long
/// before it finished.
const SLOW_RESUME: &str = "[Service]\nExecStartPre=/bin/sleep 3\n";

/// Stage-2 report of a normal boot (boots 1 and 3): the order of the resume
/// unit and tabula's unit in the journal (systemd flavour; both `none` in
/// the scripted one, whose order is in its console markers).
const ORDER_REPORT: &str = r#"
order_report() {
  local j a b
  j=$(journalctl -b -o cat 2>/dev/null)
  a=$(grep -n -m1 'Finished.*Resume from hibernation using device' <<<"$j" | cut -d: -f1)
  b=$(grep -n -m1 'Starting.*tabula: roll back the root filesystem' <<<"$j" | cut -d: -f1)
  mark "resume-finished-line=${a:-none} tabula-starting-line=${b:-none}"
  a=$(grep -n -m1 'Finished.*tabula: roll back the root filesystem' <<<"$j" | cut -d: -f1)
  b=$(grep -n -m1 'Mounted.*sysroot' <<<"$j" | cut -d: -f1)
  mark "unit-finished-line=${a:-none} sysroot-mounted-line=${b:-none}"
  grep -E 'Resume from hibernation|tabula: roll back' <<<"$j" | sed 's/^/J: /' || true
}
"#;

/// Boot 1: write on `/`, hold a file on `/` open, hibernate; after the
/// resume (boot 2) the same script carries on and reports.
const BOOT1: &str = r#"
set -e
# Markers also through the kernel log: its console output is polled and
# comes back with the resumed kernel, whatever state the serial tty is in.
mark() { echo "@@TABULA $*" >/dev/kmsg; echo "@@TABULA $*"; }
order_report
wait_prune
echo before-hibernation >/tabula-hibernate-file
sleep infinity 3>>/tabula-held-open &
held=$!
sync
mark "held-pid=$held held-ino=$(stat -c %i /tabula-held-open) boot-id=$(cat /proc/sys/kernel/random/boot_id)"
mark "swap=$(swapon --noheadings --show=NAME | paste -sd, -) disk-modes=$(tr ' ' , </sys/power/disk)"
# The smallest image the kernel can make (page cache dropped): less to
# write and to read back under emulation.
echo 0 >/sys/power/image_size
mark "hibernating"
# Without logind (no D-Bus in this guest) systemctl starts hibernate.target
# itself, without waiting (as logind would). Wait for the kernel's own line
# after a restore: userspace is frozen in this loop while the image is made,
# and thawed in it after the resume. (systemd-hibernate.service cannot be
# asked: once finished and unneeded, systemd forgets its state.)
systemctl hibernate || { mark "hibernate-failed=$?"; exit 1; }
mark "hibernate-started"
i=0
until [ "$(dmesg | grep -c 'PM: hibernation: hibernation exit')" != 0 ]; do
  i=$((i + 1)); [ $i -gt 6000 ] && { mark "resume-wait=timeout"; exit 1; }
  sleep 0.1
done
# From here on: the resumed system (boot 2), if the image was loaded.
# systemd-sleep returns after the resume; PID 1 logs the unit's end.
i=0
until journalctl -b -o cat -u systemd-hibernate.service | grep -q 'Finished.*System Hibernate'; do
  i=$((i + 1)); [ $i -gt 600 ] && break
  sleep 0.1
done
mark "resumed boot-id=$(cat /proc/sys/kernel/random/boot_id) hibernate-finished=$(journalctl -b -o cat -u systemd-hibernate.service | grep -c 'Finished.*System Hibernate')"
mark "held-alive=$([ -d /proc/$held ] && echo yes || echo no) held-comm=$(cat /proc/$held/comm 2>/dev/null || echo none)"
mark "held-fd=$(readlink /proc/$held/fd/3 2>/dev/null || echo none) held-fd-ino=$(stat -L -c %i /proc/$held/fd/3 2>/dev/null || echo none)"
mark "root-file=$(cat /tabula-hibernate-file 2>/dev/null || echo absent)"
echo through-the-held-file >>"/proc/$held/fd/3"
echo after-resume >/tabula-after-resume
sync
mark "root-source=$(findmnt -no SOURCE /)"
dmesg | grep -E 'PM: (hibernation|Image|Loading|Read|Wrote|Restor|restor)' | sed 's/^/K: /' || true
kill "$held"
"#;

/// Boot 2's own script: only a fresh boot (no resume) runs it.
const BOOT2: &str = "mark \"fresh-boot\"\n";

/// Boot 3: a normal boot after the clean shutdown of the resumed system.
const BOOT3: &str = r#"
order_report
mark "root-file=$(cat /tabula-hibernate-file 2>/dev/null || echo absent) after-file=$(cat /tabula-after-resume 2>/dev/null || echo absent)"
wait_prune
"#;

/// Run the scenario in one flavour.
pub fn run(env: &Env, flavour: Flavour) -> Result<Outcome> {
    let ctx = Ctx::new(env, &format!("hibernate-resume-{}", flavour.name()))?;
    let (img, swap) = disks(&ctx)?;
    let spec = |script: &str, timeout_s: u64| spec(flavour, &swap, script, timeout_s);

    // Boot 1: a normal boot, then hibernation. Nothing of the disks may be
    // touched from the host until the image is resumed.
    let b1 = ctx.boot("hibernate", &img, &spec(BOOT1, 600))?;
    check_hibernated(&b1)?;
    check_normal_order(&b1, flavour, "boot 1")?;
    let held_pid = b1.get("held-pid").unwrap_or("none").to_owned();
    let held_ino = b1.get("held-ino").unwrap_or("none").to_owned();
    let boot_id = b1.get("boot-id").unwrap_or("none").to_owned();

    // Boot 2: the kernel resumes the image; boot 1's script carries on.
    let b2 = ctx.boot("resume", &img, &spec(BOOT2, 300))?;
    ensure!(
        !b2.has("fresh-boot") && b2.has("resumed"),
        "boot 2 did not resume the hibernated system (it booted afresh); {}",
        b2.describe()
    );
    b2.expect_script_ok()?;
    for (what, key, want) in [
        (
            "boot 2: boot id (the same kernel as boot 1)",
            "boot-id",
            boot_id.as_str(),
        ),
        (
            "boot 2: journal lines saying systemd-hibernate.service finished",
            "hibernate-finished",
            "1",
        ),
        (
            "boot 2: the process holding a file on / still runs",
            "held-alive",
            "yes",
        ),
        ("boot 2: its command", "held-comm", "sleep"),
        (
            "boot 2: the file it holds open",
            "held-fd",
            "/tabula-held-open",
        ),
        (
            "boot 2: the inode it holds open (the same as before)",
            "held-fd-ino",
            held_ino.as_str(),
        ),
        (
            "boot 2: the file written on / before hibernation",
            "root-file",
            "before-hibernation",
        ),
    ] {
        // The resumed script reports its boot id in the `resumed` marker,
        // after boot 1's own `boot-id`: take the last value.
        let got = b2.all(key).last().copied();
        check_eq(what, got, Some(want), Some(&b2))?;
    }
    ensure!(
        held_pid != "none",
        "boot 1 did not report the PID of the process holding a file on /; {}",
        b1.describe()
    );
    check_resumed_before_rollback(&b2, flavour)?;

    // From the host, after the resumed system shut down cleanly.
    fsck(&img, "after the resumed boot")?;
    {
        let m = Mount::btrfs(&img)?;
        check_top_level(&m)?;
        let old = old_roots(&m)?;
        check_eq(
            "old roots after the resumed boot (only the one boot 1 archived)",
            old.len(),
            1,
            None,
        )?;
        ensure!(
            !m.p(&format!("@old_roots/{}/tabula-hibernate-file", old[0]))
                .exists(),
            "the old root {} holds the file written before hibernation: the hibernated root was archived",
            old[0]
        );
        for (file, want) in [
            ("@root/tabula-hibernate-file", "before-hibernation\n"),
            ("@root/tabula-after-resume", "after-resume\n"),
            ("@root/tabula-held-open", "through-the-held-file\n"),
        ] {
            let p = m.p(file);
            let got = std::fs::read_to_string(&p).ctx(p.display())?;
            check_eq(file, got.as_str(), want, None)?;
        }
    }

    // Boot 3: normal boot after a clean shutdown: the rollback as usual.
    let b3 = ctx.boot("after", &img, &spec(BOOT3, 300))?;
    b3.expect_script_ok()?;
    check_normal_order(&b3, flavour, "boot 3")?;
    check_eq(
        "boot 3: the file written before hibernation",
        b3.get("root-file"),
        Some("absent"),
        Some(&b3),
    )?;
    check_eq(
        "boot 3: the file written after the resume",
        b3.get("after-file"),
        Some("absent"),
        Some(&b3),
    )?;
    b3.expect_stage1_deleted_nothing()?;
    b3.expect_pruned()?;
    fsck(&img, "after boot 3")?;
    let m = Mount::btrfs(&img)?;
    check_top_level(&m)?;
    let old = old_roots(&m)?;
    check_eq("old roots after boot 3", old.len(), 2, None)?;
    let holding: Vec<&String> = old
        .iter()
        .filter(|n| {
            let f = |name: &str| {
                std::fs::read_to_string(m.p(&format!("@old_roots/{n}/{name}"))).unwrap_or_default()
            };
            f("tabula-hibernate-file") == "before-hibernation\n"
                && f("tabula-after-resume") == "after-resume\n"
        })
        .collect();
    check_eq(
        "old roots holding what was written before the hibernation and after the resume",
        holding.len(),
        1,
        None,
    )?;
    ensure!(
        !m.p("@root/tabula-hibernate-file").exists(),
        "@root still holds the file written before hibernation after boot 3"
    );
    Ok(Outcome::Pass)
}

/// The scenario's disks: the Btrfs layout (`@root`, `@persist`,
/// `@old_roots`) and the swap disk.
fn disks(ctx: &Ctx<'_>) -> Result<(PathBuf, PathBuf)> {
    let img = ctx.btrfs_image("disk.img", |m| {
        crate::image::subvol(&m.p("@root"))?;
        crate::image::subvol(&m.p("@persist"))?;
        crate::image::subvol(&m.p("@old_roots"))?;
        Ok(())
    })?;
    Ok((img, swap_disk(&ctx.dir)?))
}

/// A boot of the scenario: tabula with [`CONFIG`], the swap disk, `resume=`.
fn spec(flavour: Flavour, swap: &Path, script: &str, timeout_s: u64) -> Spec {
    let mut s = Spec::new(
        flavour,
        Fs::Btrfs,
        CONFIG,
        &format!("{ORDER_REPORT}\n{script}"),
    );
    s.extra_disks.push(swap.to_path_buf());
    s.cmdline = RESUME.into();
    s.timeout = Duration::from_secs(timeout_s);
    s.root_files
        .push(("/etc/fstab".into(), Item::Text(FSTAB.into(), 0o644)));
    if flavour == Flavour::Systemd {
        s.initrd_files.push((
            "/etc/systemd/system/systemd-hibernate-resume@.service.d/tabula-test-slow.conf".into(),
            Item::Text(SLOW_RESUME.into(), 0o644),
        ));
    }
    s
}

/// The negative control (scripted flavour): the same hibernation, but boot 2
/// makes the resume attempt *after* tabula-rollback
/// (`tabula.harness.resumelate`), the order tabula must never run in.
/// Checked: stage 1 archives the hibernated root and makes a new one on disk
/// (its log says so, before the resume attempt), then the kernel resumes the
/// image and the resumed system goes on with its in-memory view of the old
/// root (the file of boot 1 still there for it). What the disk holds once
/// the resumed system has shut down is printed, not asserted: it is up to
/// what the resumed kernel writes over (observed with Debian 12's kernel on
/// this small, idle root: its next commit replaced stage 1's, the archived
/// and the new root vanished, `btrfs check` clean: the rollback silently
/// lost).
pub fn run_rollback_first(env: &Env) -> Result<Outcome> {
    let flavour = Flavour::Scripted;
    let ctx = Ctx::new(env, "hibernate-rollback-first")?;
    let (img, swap) = disks(&ctx)?;
    let b1 = ctx.boot("hibernate", &img, &spec(flavour, &swap, BOOT1, 600))?;
    check_hibernated(&b1)?;
    let mut late = spec(flavour, &swap, BOOT2, 300);
    late.cmdline.push_str(" tabula.harness.resumelate");
    let b2 = ctx.boot("rollback-then-resume", &img, &late)?;
    let pos = |word: &str| b2.marks.iter().position(|m| m.starts_with(word));
    let (Some(rb), Some(at)) = (pos("rollback-exit=0"), pos("resume-attempt")) else {
        bail!(
            "boot 2: tabula-rollback did not succeed before the resume attempt; {}",
            b2.describe()
        );
    };
    let archived = b2.log[..b2.log.find("@@TABULA resume-attempt").unwrap_or(0)]
        .lines()
        .any(|l| l.contains("tabula-rollback[") && l.contains("to @old_roots/"));
    ensure!(
        rb < at && archived,
        "boot 2: stage 1 did not archive the root before the resume attempt; {}",
        b2.describe()
    );
    ensure!(
        b2.has("resumed") && !b2.has("fresh-boot"),
        "boot 2: the kernel did not resume the image after the rollback; {}",
        b2.describe()
    );
    check_eq(
        "boot 2: the resumed system's view of / (its in-memory old root)",
        b2.all("root-file").last().copied(),
        Some("before-hibernation"),
        Some(&b2),
    )?;
    let check = sh::run(
        "btrfs",
        &["check", "--readonly", &img.display().to_string()],
    );
    let mut found = vec![format!(
        "btrfs check: {}",
        match &check {
            Ok(_) => "clean".to_owned(),
            Err(e) => e
                .to_string()
                .lines()
                .take(6)
                .collect::<Vec<_>>()
                .join(" / "),
        }
    )];
    match Mount::btrfs(&img) {
        Ok(m) => {
            let old = ls(&m.p("@old_roots")).unwrap_or_default();
            let holding = old
                .iter()
                .filter(|n| {
                    m.p(&format!("@old_roots/{n}/tabula-hibernate-file"))
                        .exists()
                })
                .count();
            let root: Vec<bool> = ["tabula-hibernate-file", "tabula-after-resume"]
                .iter()
                .map(|f| m.p(&format!("@root/{f}")).exists())
                .collect();
            found.push(format!(
                "old roots: {} ({} holding the file of boot 1; stage 1 of boot 2 had made one more); @root holds the file of boot 1: {}, the file written after the resume: {}",
                old.len(),
                holding,
                root[0],
                root[1]
            ));
        }
        Err(e) => found.push(format!("the filesystem does not mount: {e}")),
    }
    println!(
        "rollback before resume: stage 1 archived the hibernated root, the kernel resumed it; the disk after the resumed system shut down:\n  {}",
        found.join("\n  ")
    );
    Ok(Outcome::Pass)
}

/// A 2 GiB swap disk (the guest has 1 GiB of memory: room for any image).
fn swap_disk(dir: &Path) -> Result<PathBuf> {
    let swap = dir.join("swap.img");
    sh::run("truncate", &["-s", "2G", &swap.display().to_string()])?;
    sh::run(
        "mkswap",
        &["-L", "tabula-swap", &swap.display().to_string()],
    )?;
    Ok(swap)
}
