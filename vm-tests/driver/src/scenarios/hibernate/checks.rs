//! The host's reading of hibernate-resume's boots: that boot 1
//! hibernated, that boot 2 resumed before any rollback, the order of the
//! resume attempt and tabula in a normal boot, and the disk state after.

use super::{
    Boot, End, Flavour, Mount, Path, Result, bail, check_eq, ensure, is_timestamp_name, ls, sh,
};

/// Boot 1 ended by hibernating: its script got as far as `systemctl
/// hibernate` and no further, the kernel wrote its image and powered off.
pub(super) fn check_hibernated(b: &Boot) -> Result<()> {
    ensure!(
        b.has("hibernating"),
        "boot 1 never got to hibernate; {}",
        b.describe()
    );
    if let Some(rc) = b.get("hibernate-failed") {
        bail!(
            "boot 1: `systemctl hibernate` failed ({rc}); {}",
            b.describe()
        );
    }
    ensure!(
        !b.has("resumed") && b.get("script-exit").is_none(),
        "boot 1 went on after `systemctl hibernate` instead of powering off; {}",
        b.describe()
    );
    ensure!(
        matches!(b.end, End::Exited(_)),
        "boot 1 did not power off after hibernating; {}",
        b.describe()
    );
    ensure!(
        b.log.contains("PM: hibernation: Wrote") || b.log.contains("PM: Image saving done"),
        "boot 1: the kernel did not report writing its image; {}",
        b.describe()
    );
    Ok(())
}

/// The console lines of stage 1 that belong to tabula-rollback's run (its
/// own kmsg lines, the harness's marker around it, the systemd unit).
pub(super) fn rollback_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("tabula-rollback[")
                || l.contains("@@TABULA rollback-")
                || l.contains("tabula: roll back the root filesystem")
        })
        .collect()
}

/// Boot 2: the resume attempt was made and the kernel loaded the image,
/// and tabula-rollback never started.
pub(super) fn check_resumed_before_rollback(b: &Boot, flavour: Flavour) -> Result<()> {
    let attempt = match flavour {
        // The scripted stage 1's marker, printed right before its write to
        // /sys/power/resume; `resume-none` would follow if it had returned.
        Flavour::Scripted => {
            ensure!(
                !b.has("resume-none"),
                "boot 2: the resume attempt returned (no image found); {}",
                b.describe()
            );
            "@@TABULA resume-attempt device=/dev/vdb"
        }
        // systemd's status line for the resume unit made from resume=,
        // "Starting systemd-hibernate-resume@dev-vdb.service - Resume from
        // hibernation using device /dev/vdb...", ellipsized in its middle
        // to the console's width.
        Flavour::Systemd => "using device /dev/vdb...",
    };
    let Some(at) = b.log.find(attempt) else {
        bail!(
            "boot 2: no resume attempt in the console ({attempt:?}); {}",
            b.describe()
        );
    };
    let loaded = ["PM: Image loading done", "PM: hibernation: Read"]
        .iter()
        .filter_map(|s| b.log.find(s))
        .min();
    let Some(loaded) = loaded else {
        bail!(
            "boot 2: the kernel did not report loading the image; {}",
            b.describe()
        );
    };
    ensure!(
        at < loaded,
        "boot 2: the image was loaded before the resume attempt was logged; {}",
        b.describe()
    );
    let rb = rollback_lines(&b.log[..loaded]);
    ensure!(
        rb.is_empty(),
        "boot 2: tabula-rollback ran before the kernel resumed the image:\n{}\n{}",
        rb.join("\n"),
        b.describe()
    );
    // After the jump, the resumed system's own console output: no rollback
    // either (its kernel's ring buffer is boot 1's, never printed again).
    let rb = rollback_lines(&b.log[loaded..]);
    ensure!(
        rb.is_empty(),
        "boot 2: tabula-rollback lines after the resume:\n{}\n{}",
        rb.join("\n"),
        b.describe()
    );
    Ok(())
}

/// A normal boot (no image): the resume attempt came first and found
/// nothing, tabula's rollback after it and successful.
pub(super) fn check_normal_order(b: &Boot, flavour: Flavour, which: &str) -> Result<()> {
    match flavour {
        Flavour::Scripted => {
            let pos = |word: &str| b.marks.iter().position(|m| m.starts_with(word));
            let (Some(a), Some(n), Some(r)) = (
                pos("resume-attempt"),
                pos("resume-none"),
                pos("rollback-start"),
            ) else {
                bail!(
                    "{which}: stage 1 markers resume-attempt, resume-none, rollback-start not all there; {}",
                    b.describe()
                );
            };
            ensure!(
                a < n && n < r,
                "{which}: the resume attempt did not come before tabula-rollback; {}",
                b.describe()
            );
            check_eq(
                &format!("{which}: tabula-rollback exit status"),
                b.get("rollback-exit"),
                Some("0"),
                Some(b),
            )?;
        }
        Flavour::Systemd => {
            let (Some(Ok(a)), Some(Ok(t))) = (
                b.get("resume-finished-line").map(str::parse::<u32>),
                b.get("tabula-starting-line").map(str::parse::<u32>),
            ) else {
                bail!(
                    "{which}: the journal lacks the resume unit's Finished line or tabula-rollback.service's Starting line; {}",
                    b.describe()
                );
            };
            ensure!(
                a < t,
                "{which}: tabula-rollback.service started before the resume unit finished; {}",
                b.describe()
            );
            super::super::btrfs_rotation::check_unit_order(b)?;
        }
    }
    Ok(())
}

/// `btrfs check --readonly` of the image (unmounted): clean.
pub(super) fn fsck(img: &Path, when: &str) -> Result<()> {
    sh::run(
        "btrfs",
        &["check", "--readonly", &img.display().to_string()],
    )
    .map(drop)
    .map_err(|e| crate::Error(format!("btrfs check {when}: {e}")))
}

pub(super) fn check_top_level(m: &Mount) -> Result<()> {
    check_eq(
        "top level of the disk",
        ls(&m.dir)?,
        vec![
            "@old_roots".into(),
            "@persist".into(),
            "@root".into(),
            "@usr".into(),
        ],
        None::<&Boot>,
    )
}

/// The old roots: timestamp-named entries of `@old_roots`, each a subvolume
/// (from `btrfs subvolume list`), nothing else there.
pub(super) fn old_roots(m: &Mount) -> Result<Vec<String>> {
    let old = ls(&m.p("@old_roots"))?;
    ensure!(
        old.iter().all(|n| is_timestamp_name(n)),
        "@old_roots holds unexpected names: {old:?}"
    );
    let list = sh::run(
        "btrfs",
        &[
            "subvolume",
            "list",
            "-o",
            &m.p("@old_roots").display().to_string(),
        ],
    )?;
    let subvols: Vec<&str> = list
        .lines()
        .filter_map(|l| l.rsplit_once(" path ").map(|(_, p)| p))
        .filter(|p| p.matches('/').count() == 1)
        .collect();
    check_eq(
        "subvolumes directly under @old_roots (btrfs subvolume list)",
        subvols.len(),
        old.len(),
        None,
    )?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(log: &str) -> Boot {
        Boot {
            log: log.to_owned(),
            marks: log
                .lines()
                .filter_map(|l| {
                    Some(l[l.find(crate::qemu::MARK)? + crate::qemu::MARK.len()..].to_owned())
                })
                .collect(),
            end: End::Exited(Some(0)),
            secs: 1.0,
            log_path: "test.log".into(),
        }
    }

    /// Console lines of a real resumed boot of each flavour (shortened).
    const SCRIPTED: &str = "@@TABULA resume-attempt device=/dev/vdb devno=254:16 uptime_ms=3930\n\
        [    3.968087] PM: hibernation: resume from hibernation\n\
        [    9.805464] PM: Image loading done\n\
        @@TABULA resumed boot-id=e83049c8\n";
    const SYSTEMD: &str = "         Starting systemd-hibernate\u{2026}bernation using device /dev/vdb...\n\
        [   26.175589] PM: hibernation: resume from hibernation\n\
        [   38.156691] PM: Image loading done\n\
        @@TABULA resumed boot-id=e83049c8\n";

    #[test]
    fn a_resume_attempt_then_the_image_loaded_and_no_rollback_passes() {
        check_resumed_before_rollback(&boot(SCRIPTED), Flavour::Scripted).unwrap();
        check_resumed_before_rollback(&boot(SYSTEMD), Flavour::Systemd).unwrap();
    }

    #[test]
    fn a_rollback_before_the_image_was_loaded_fails_the_resumed_boot() {
        let scripted = SCRIPTED.replace(
            "[    3.968087]",
            "@@TABULA rollback-start uptime_ms=3940\n[    3.97] tabula-rollback[121]: done\n[    3.968087]",
        );
        let err = check_resumed_before_rollback(&boot(&scripted), Flavour::Scripted).unwrap_err();
        assert!(
            err.0
                .contains("tabula-rollback ran before the kernel resumed"),
            "{err}"
        );
        let systemd = SYSTEMD.replace(
            "[   26.175589]",
            "         Starting tabula-rollback.service - tabula: roll back the root filesystem...\n[   26.175589]",
        );
        let err = check_resumed_before_rollback(&boot(&systemd), Flavour::Systemd).unwrap_err();
        assert!(
            err.0
                .contains("tabula-rollback ran before the kernel resumed"),
            "{err}"
        );
    }

    #[test]
    fn a_resumed_boot_without_the_image_loaded_or_with_the_attempt_returning_fails() {
        let no_image = SCRIPTED.replace("PM: Image loading done", "PM: Image not found");
        assert!(check_resumed_before_rollback(&boot(&no_image), Flavour::Scripted).is_err());
        let returned = format!("{SCRIPTED}@@TABULA resume-none device=/dev/vdb\n");
        assert!(check_resumed_before_rollback(&boot(&returned), Flavour::Scripted).is_err());
        assert!(check_resumed_before_rollback(&boot(SCRIPTED), Flavour::Systemd).is_err());
    }
}
