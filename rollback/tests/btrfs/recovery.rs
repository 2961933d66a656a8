//! Interrupted runs: the states a power cut leaves, made by hand, are
//! recognised and finished (the fault-injection tests reach them by
//! aborting the real program).

use crate::common::*;
use tabula_rollback::Exit;
use tabula_testkit::BTRFS_ON_LOOP;

/// The states an interrupted run can leave, made by hand (the fault
/// injection tests reach them by aborting the real program).
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn interrupted_runs_are_finished() {
    if tabula_testkit::skip_unless("interrupted_runs_are_finished", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let cfg_extra = r#", "oldRoots": "@old_roots""#;

    // State B: the fresh root was made, not swapped in. It is discarded.
    let mut img = Image::with_root();
    img.write("@root/which", b"previous");
    let prev = otime_name(&img, "@root");
    img.sync(); // a later transaction, as after a boot
    img.subvol("@root.tabula-new");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, cfg_extra);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(
        log.contains("unused new root of an interrupted run"),
        "{log}"
    );
    img.mount();
    assert_eq!(img.ls(""), ["@old_roots", "@root"]);
    assert_eq!(img.ls("@old_roots"), vec![prev.clone()]);
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{prev}/which"))).unwrap(),
        b"previous"
    );
    img.umount();
    drop(img);

    // State C: swapped, the previous root still at the reserved name. It is
    // kept, and the rotation then runs as usual.
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root.tabula-new");
    img.write("@root.tabula-new/which", b"previous");
    let prev = otime_name(&img, "@root.tabula-new");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    img.sync();
    img.subvol("@root");
    img.write("@root/which", b"fresh, used for one boot");
    let fresh = otime_name(&img, "@root");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, cfg_extra);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("previous root of an interrupted run"), "{log}");
    img.mount();
    assert_eq!(img.ls(""), ["@old_roots", "@root"]);
    assert_eq!(img.ls("@old_roots"), [prev.clone(), fresh.clone()]);
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{prev}/which"))).unwrap(),
        b"previous"
    );
    assert!(img.ls("@root").is_empty());
    img.umount();
    drop(img);

    // Something was written to the reserved name, even after @root was
    // made (a hand-made mix-up): whatever it is, it is kept, never deleted.
    let mut img = Image::with_root();
    img.sync();
    img.subvol("@root.tabula-new");
    img.write("@root.tabula-new/precious", b"keep");
    let precious = otime_name(&img, "@root.tabula-new");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, cfg_extra);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("previous root of an interrupted run"), "{log}");
    img.mount();
    let kept = img
        .ls("@old_roots")
        .into_iter()
        .filter(|n| n.starts_with(&precious))
        .filter(|n| img.exists(&format!("@old_roots/{n}/precious")))
        .count();
    assert_eq!(kept, 1, "{:?}", img.ls("@old_roots"));
}

/// After a power cut, a subvolume at the reserved name is deleted as the
/// unused new root of state B only when all three checks agree; each one
/// alone keeps a previous root (state C) from being deleted.
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn each_check_that_tells_a_new_root_from_a_previous_root_holds_on_its_own() {
    type Arrange = fn(&Image);
    if tabula_testkit::skip_unless(
        "each_check_that_tells_a_new_root_from_a_previous_root_holds_on_its_own",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let cases: [(&str, Arrange); 3] = [
        (
            // Made after the root, empty, but written to since (a file
            // made and removed): its generation moved on.
            "a new root that was written",
            |img| {
                img.subvol("@root");
                img.sync();
                img.subvol("@root.tabula-new");
                img.sync();
                img.write("@root.tabula-new/f", b"x");
                img.sync();
                std::fs::remove_file(img.path("@root.tabula-new/f")).unwrap();
                img.sync();
            },
        ),
        (
            // Never written and empty, but made before the root: a previous
            // root that the boot never wrote to.
            "a previous root never written",
            |img| {
                img.subvol("@root.tabula-new");
                img.sync();
                img.subvol("@root");
                img.sync();
            },
        ),
        (
            // Made after the root and never written since, but holding what
            // a new root does not (no blank is configured).
            "a snapshot holding files",
            |img| {
                img.subvol("@root");
                img.sync();
                img.subvol("@src");
                img.write("@src/f", b"x");
                img.sync();
                img.snapshot("@src", "@root.tabula-new", false);
                img.sync();
            },
        ),
    ];
    for (what, arrange) in cases {
        let mut img = Image::new(256);
        img.mount();
        arrange(&img);
        img.umount();
        let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
        let (code, log) = rollback(&img, &cfg, &[], "", now());
        assert_eq!(code, Exit::Ok, "{what}: {log}");
        assert!(
            log.contains("previous root of an interrupted run"),
            "{what}: {log}"
        );
        img.mount();
        // Kept: both it and the root it stood beside are old roots now.
        assert_eq!(img.ls("@old_roots").len(), 2, "{what}: {log}");
        img.umount();
    }
}
