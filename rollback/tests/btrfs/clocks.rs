//! Bad clocks decide nothing: old roots are ranked by the filesystem's
//! creation order, and the root a boot archives is never pruned by it.

use crate::common::*;
use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn clock_at_1970_prunes_nothing_and_2099_keeps_min() {
    if tabula_testkit::skip_unless(
        "clock_at_1970_prunes_nothing_and_2099_keeps_min",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    // Then the root of the last boot.
    let names = img.old_roots(t, &[500, 400, 300, 200, 100], &[]);
    img.subvol("@root");
    let root_name = otime_name(&img, "@root");
    img.umount();
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 2}"#,
    );
    let (code, log) = boot_and_prune(&img, &cfg, 0);
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("before 2020"), "{log}");
    img.mount();
    assert_eq!(img.ls("@old_roots").len(), 6);
    img.umount();
    // In 2099 everything is old; the newest two stay.
    let (code, _) = boot_and_prune(&img, &cfg, 4_070_908_800);
    assert_eq!(code, Exit::Ok);
    img.mount();
    let left = img.ls("@old_roots");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&root_name), "{left:?}");
    assert!(names.iter().all(|n| !left.contains(n)), "{left:?}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever() {
    if tabula_testkit::skip_unless(
        "a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    // Archived by a boot whose clock was a year ahead: the first old root,
    // named after the future.
    img.mkdir("@old_roots");
    let future = timestamp_name(t + 365 * DAY);
    img.subvol(&format!("@old_roots/{future}"));
    img.sync();
    img.subvol("@root");
    img.write("@root/etc/written", b"this boot");
    img.umount();
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1, "max": 1}"#,
    );
    for boot in 0..3 {
        img.mount();
        let previous = otime_name(&img, "@root");
        img.write("@root/etc/written", format!("boot {boot}").as_bytes());
        img.umount();
        let (code, log) = boot_and_prune(&img, &cfg, now());
        assert_eq!(code, Exit::Ok, "{log}");
        img.mount();
        // The root archived now is the one kept, whatever the names say.
        let left = img.ls("@old_roots");
        assert_eq!(left.len(), 1, "boot {boot}: {left:?}\n{log}");
        assert!(left[0].starts_with(&previous), "boot {boot}: {left:?}");
        assert_eq!(
            std::fs::read(img.path(&format!("@old_roots/{}/etc/written", left[0]))).unwrap(),
            format!("boot {boot}").as_bytes()
        );
        if boot == 0 {
            assert!(log.contains("treated as made now"), "{log}");
        }
        img.umount();
    }
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn the_root_archived_by_a_run_is_never_pruned_by_it() {
    if tabula_testkit::skip_unless(
        "the_root_archived_by_a_run_is_never_pruned_by_it",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    img.old_roots(t, &[300, 200, 100], &[]);
    img.subvol("@root");
    let previous = otime_name(&img, "@root");
    img.umount();
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 0}"#,
    );
    // This boot's clock is two years ahead: by its name, the root it
    // archives is two years old.
    let (code, log) = boot_and_prune(&img, &cfg, t + 730 * DAY);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    assert_eq!(img.ls("@old_roots"), [previous], "{log}");
    img.umount();
    // A later boot with a clock set back to 2021 (an initrd stamped with
    // its build date): nothing it archives or finds is older than 0 days.
    let (code, log) = boot_and_prune(&img, &cfg, 1_609_459_200);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    assert_eq!(img.ls("@old_roots").len(), 2, "{log}");
}
