//! How a run is started and what it does around the rotation: a dry run,
//! the kernel command line, a device that appears late, several targets.

use crate::common::*;
use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn dry_run_changes_nothing() {
    if tabula_testkit::skip_unless("dry_run_changes_nothing", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    make_persist(&img);
    // The live root comes last.
    img.old_roots(t, &[90, 40, 2], &["n1", "n1/n2"]);
    img.subvol("@root");
    img.subvol("@root/nested");
    img.mkdir("@old_roots/plain");
    img.write("@root.tabula-new-lookalike", b"not ours");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);

    let before = img.full_listing();
    for (args, prune_args, cmdline) in [
        (&["--dry-run"][..], &["--prune-only", "--dry-run"][..], ""),
        (
            &[][..],
            &["--prune-only"][..],
            "quiet tabula.rollback=dry-run",
        ),
    ] {
        let (code, log) = rollback(&img, &cfg, args, cmdline, t);
        assert_eq!(code, Exit::Ok);
        let actions: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split_once("dry-run: ").map(|(_, a)| a))
            .collect();
        let old40 = format!("@old_roots/{}", timestamp_name(t - 40 * DAY));
        assert!(
            actions.contains(&"create empty subvolume @root.tabula-new"),
            "{actions:?}"
        );
        assert!(actions.contains(&"exchange @root and @root.tabula-new"));
        // Stage 1 prunes nothing: create, exchange, move.
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(img.full_listing(), before, "the dry run changed the disk");
        let (code, log) = rollback(&img, &cfg, prune_args, cmdline, t);
        assert_eq!(code, Exit::Ok);
        let actions: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split_once("dry-run: ").map(|(_, a)| a))
            .collect();
        assert!(actions.contains(&format!("delete subvolume {old40}/n1/n2").as_str()));
        assert!(actions.contains(&format!("delete subvolume {old40}").as_str()));
        assert_eq!(actions.len(), 2 * 3, "{actions:?}");
        assert_eq!(img.full_listing(), before, "the dry run changed the disk");
    }
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn kernel_command_line_skips() {
    if tabula_testkit::skip_unless("kernel_command_line_skips", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let before = img.full_listing();
    let (code, log) = rollback(&img, &cfg, &[], "ro tabula.rollback=0 quiet", now());
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("rollback skipped"));
    let (code, log) = rollback(&img, &cfg, &[], "tabula.rollback=maybe", now());
    assert_eq!(code, Exit::Usage);
    assert!(log.contains("\"maybe\""));
    assert_eq!(img.full_listing(), before);
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_device_that_appears_late_is_waited_for() {
    if tabula_testkit::skip_unless("a_device_that_appears_late_is_waited_for", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.umount();
    let late = img.dir.path().join("late");
    let cfg = btrfs_config(
        img.dir.path(),
        late.to_str().unwrap(),
        r#", "oldRoots": "@old_roots""#,
    );
    // waitSeconds is 2: the device appears after 1 s.
    let device = img.device.clone();
    let appear = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        std::os::unix::fs::symlink(device, late).unwrap();
    });
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    appear.join().unwrap();
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(log.contains("waiting up to 2 s"), "{log}");
    assert!(log.contains("appeared"), "{log}");
    img.mount();
    assert_eq!(img.ls("@old_roots").len(), 1);
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn one_failing_target_does_not_stop_the_others() {
    if tabula_testkit::skip_unless("one_failing_target_does_not_stop_the_others", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut first = Image::new(256);
    first.mount();
    first.subvol("@root");
    first.write("@root/boot-1", b"first");
    first.umount();
    let mut second = Image::new(256);
    second.mount();
    second.subvol("@home");
    second.write("@home/boot-1", b"second");
    second.umount();
    let missing = first.dir.path().join("no-such-disk");
    let blank_missing = format!(
        r#"{{"type": "btrfs", "device": "{}", "subvolume": "@root", "blank": "@blank", "oldRoots": "@old", "waitSeconds": 1}}"#,
        first.device
    );
    let disk_missing = format!(
        r#"{{"type": "btrfs", "device": "{}", "subvolume": "@root", "oldRoots": "@old", "waitSeconds": 1}}"#,
        missing.display()
    );
    let good = format!(
        r#"{{"type": "btrfs", "device": "{}", "subvolume": "@home", "oldRoots": "@old", "waitSeconds": 1}}"#,
        second.device
    );
    // The broken target first, so that a run stopping at it would never
    // reach the good one.
    for (round, broken) in [blank_missing, disk_missing].into_iter().enumerate() {
        let cfg = first.dir.path().join("two.json");
        std::fs::write(
            &cfg,
            format!(r#"{{"version": 1, "rollback": [{broken}, {good}]}}"#),
        )
        .unwrap();
        let before = first.full_listing();
        let (code, log) = rollback(&first, &cfg, &[], "", now());
        assert_eq!(code, Exit::Failure, "{log}");
        assert!(log.contains("rollback[0]:"), "{log}");
        assert!(log.contains("1 of 2 targets failed"), "{log}");
        assert_eq!(
            first.full_listing(),
            before,
            "the failing target changed: {log}"
        );
        second.mount();
        assert!(
            second.ls("@home").is_empty(),
            "the good target was not rolled back: {log}"
        );
        assert_eq!(second.ls("@old").len(), round + 1, "{log}");
        second.write("@home/boot-1", b"second");
        second.sync();
        second.umount();
        // The next round archives under a later name.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
}
