//! What a run refuses, before any change: what tabula did not make, the
//! default subvolume, one filesystem named twice, what is mounted, a
//! symbolic link where a directory should be.

use crate::common::*;
use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn refusals_change_nothing() {
    if tabula_testkit::skip_unless("refusals_change_nothing", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    img.mkdir("@root/etc"); // a plain directory, not a subvolume
    img.subvol("@other");
    img.mkdir("@other.tabula-new");
    img.subvol("@third");
    img.umount();
    let before = img.full_listing();
    let dir = img.dir.path();
    let dev = img.device.clone();

    let cases: [(String, Exit, &str); 6] = [
        (
            r#""subvolume": "@root", "oldRoots": "@old_roots""#.into(),
            Exit::Failure,
            "@root is a plain directory, not a subvolume",
        ),
        (
            r#""subvolume": "@other", "oldRoots": "@old_roots""#.into(),
            Exit::Failure,
            "@other.tabula-new is a plain directory",
        ),
        (
            r#""subvolume": "@third", "oldRoots": "@old_roots", "blank": "@root""#.into(),
            Exit::Failure,
            "the blank @root is a plain directory",
        ),
        (
            r#""subvolume": "@third", "oldRoots": "@third/old""#.into(),
            Exit::Usage,
            "rollback[0].oldRoots",
        ),
        (
            r#""subvolume": "@third", "oldRoots": "../x""#.into(),
            Exit::Usage,
            "rollback[0].oldRoots",
        ),
        (
            r#""subvolume": "@third", "oldRoots": null, "mountOptions": ["bogus_option"]"#.into(),
            Exit::Failure,
            "cannot mount",
        ),
    ];
    for (entry, want, needle) in cases {
        let p = one_target(dir, "case.json", &dev, &entry);
        let (code, log) = rollback(&img, &p, &[], "", now());
        assert_eq!(code, want, "{entry}: {log}");
        assert!(log.contains(needle), "{entry}: {needle:?} not in {log}");
    }
    // A device that never appears: a bounded wait, then a clear error.
    let p = btrfs_config(
        dir,
        "/dev/disk/by-label/tabula-missing",
        r#", "oldRoots": null"#,
    );
    let start = std::time::Instant::now();
    let (code, log) = rollback(&img, &p, &[], "", now());
    assert_eq!(code, Exit::Failure);
    assert!(log.contains("did not appear within 2 s"), "{log}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(img.full_listing(), before);
}

/// Run by hand on a booted system, the rollback would move the running root
/// away: a mounted root is refused (a dry run only warns).
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn mounted_root_is_refused() {
    if tabula_testkit::skip_unless("mounted_root_is_refused", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.mkdir("@root/var/lib");
    let live = img.dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    // Part of the root is enough (a bind mount of /var/lib, say).
    sh(
        "mount",
        &[
            "--bind",
            img.path("@root/var/lib").to_str().unwrap(),
            live.to_str().unwrap(),
        ],
    );
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    let (dry_code, dry_log) = rollback(&img, &cfg, &["--dry-run"], "", now());
    sh("umount", &[live.to_str().unwrap()]);
    assert_eq!(code, Exit::Failure);
    assert!(
        log.contains(&format!("@root is mounted at {}", live.display())),
        "{log}"
    );
    assert_eq!(dry_code, Exit::Ok);
    assert!(dry_log.contains("a real run refuses"), "{dry_log}");
    img.mount();
    assert_eq!(img.ls(""), ["@root"]);
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn the_default_subvolume_is_never_rotated_away() {
    if tabula_testkit::skip_unless("the_default_subvolume_is_never_rotated_away", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    let old = img.old_roots(t, &[90], &["nested"]).remove(0);
    img.subvol("@old_roots/pinned");
    img.subvol("@root");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let set_default = |img: &mut Image, rel: &str| {
        img.mount();
        let path = img.path(rel);
        sh(
            "btrfs",
            &["subvolume", "set-default", path.to_str().unwrap()],
        );
        img.umount();
    };
    for (default, says) in [
        ("@root", "@root is the default subvolume".to_owned()),
        (
            &format!("@old_roots/{old}/nested"),
            format!("lies inside @old_roots/{old}"),
        ),
    ] {
        set_default(&mut img, default);
        let log = refused(&mut img, &cfg, &[], t);
        assert!(log.contains(&says), "{default}: {log}");
        assert!(log.contains("btrfs subvolume set-default 5"), "{log}");
        assert!(log.contains("subvol=@root"), "{log}");
    }
    // A default the rotation never touches (a pinned old root) is no reason
    // to stop.
    set_default(&mut img, "@old_roots/pinned");
    let (code, log) = rollback(&img, &cfg, &[], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn one_filesystem_named_by_two_device_paths_is_refused() {
    if tabula_testkit::skip_unless(
        "one_filesystem_named_by_two_device_paths_is_refused",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.subvol("@other");
    img.umount();
    // A link, as /dev/disk/by-label/… is, and a second device node.
    let link = img.dir.path().join("by-label-nixos");
    std::os::unix::fs::symlink(&img.device, &link).unwrap();
    let node = img.dir.path().join("node");
    let rdev = rustix::fs::stat(img.device.as_str()).unwrap().st_rdev;
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &node,
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rdev,
    )
    .unwrap();
    let (link, node) = (link.to_str().unwrap(), node.to_str().unwrap());
    for cfg in [
        // The same root twice.
        two_targets(
            &img,
            (&img.device, "@root", "@old"),
            (link, "@root", "@old2"),
        ),
        two_targets(
            &img,
            (node, "@root", "@old"),
            (&img.device, "@root", "@old2"),
        ),
        // Two roots sharing their old roots.
        two_targets(
            &img,
            (&img.device, "@root", "@old"),
            (link, "@other", "@old"),
        ),
    ] {
        let log = refused(&mut img, &cfg, &[], now());
        assert!(log.contains("are the same filesystem"), "{log}");
    }
    // Separate roots with separate old roots on one filesystem are fine.
    let cfg = two_targets(
        &img,
        (&img.device, "@root", "@old"),
        (link, "@other", "@old2"),
    );
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    assert_eq!(img.ls("@old").len(), 1);
    assert_eq!(img.ls("@old2").len(), 1);
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_root_whose_nested_subvolume_is_mounted_is_not_rotated() {
    if tabula_testkit::skip_unless(
        "a_root_whose_nested_subvolume_is_mounted_is_not_rotated",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.mkdir("@root/var/lib");
    img.subvol("@root/var/lib/machines");
    img.subvol("@root/var/lib/machines/deeper");
    img.umount();
    let at = mount_subvol(&img, "@root/var/lib/machines/deeper", "machines");
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let before = img.full_listing();
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    let (dry_code, dry_log) = rollback(&img, &cfg, &["--dry-run"], "", now());
    let after = img.full_listing();
    sh("umount", &[at.to_str().unwrap()]);
    assert_eq!(code, Exit::Failure, "{log}");
    assert!(
        log.contains(&format!("@root is mounted at {}", at.display())),
        "{log}"
    );
    assert!(log.contains("inside it"), "{log}");
    assert_eq!(after, before, "something changed");
    assert_eq!(dry_code, Exit::Ok, "{dry_log}");
    assert!(dry_log.contains("a real run refuses"), "{dry_log}");
    // Unmounted, the same root rotates.
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok, "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_mounted_old_root_is_never_pruned() {
    if tabula_testkit::skip_unless("a_mounted_old_root_is_never_pruned", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    img.mkdir("@old_roots");
    let due = timestamp_name(t - 90 * DAY);
    let young = timestamp_name(t - 2 * DAY);
    img.subvol(&format!("@old_roots/{due}"));
    img.subvol(&format!("@old_roots/{due}/nested"));
    img.write(&format!("@old_roots/{due}/nested/f"), b"in use");
    img.subvol(&format!("@old_roots/{young}"));
    img.subvol("@root");
    img.umount();
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1}"#,
    );
    // An old root kept by the policy may be mounted: nothing is refused.
    let at = mount_subvol(&img, &format!("@old_roots/{young}"), "young");
    let (code, log) = rollback(&img, &cfg, &["--dry-run"], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(!log.contains("is mounted at"), "{log}");
    sh("umount", &[at.to_str().unwrap()]);
    // One due for pruning, mounted at /recover (or something inside it):
    // the run stops before any change.
    for rel in [
        format!("@old_roots/{due}"),
        format!("@old_roots/{due}/nested"),
    ] {
        // Both halves refuse: the pruning unit, and stage 1 (which
        // plans the prune its valve may make).
        for args in [&["--prune-only"][..], &[][..]] {
            let at = mount_subvol(&img, &rel, "recover");
            let before = img.full_listing();
            let (code, log) = rollback(&img, &cfg, args, "", t);
            let after = img.full_listing();
            sh("umount", &[at.to_str().unwrap()]);
            std::fs::remove_dir(&at).unwrap();
            assert_eq!(code, Exit::Failure, "{rel} {args:?}: {log}");
            assert!(
                log.contains(&format!("@old_roots/{due} is mounted at {}", at.display())),
                "{rel} {args:?}: {log}"
            );
            assert_eq!(after, before, "{rel} {args:?}: something changed");
        }
    }
    let (code, log) = boot_and_prune(&img, &cfg, t);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    assert!(!img.exists(&format!("@old_roots/{due}")), "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_symbolic_link_is_reported_as_one_naming_its_field() {
    if tabula_testkit::skip_unless(
        "a_symbolic_link_is_reported_as_one_naming_its_field",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    img.mkdir("real/old");
    img.subvol("real/@root");
    img.subvol("real/@blank");
    img.subvol("@root");
    for (link, to) in [
        ("@old_roots", "real/old"),
        ("@blank", "real/@blank"),
        ("sys", "real"),
        ("@linked-root", "real/@root"),
    ] {
        std::os::unix::fs::symlink(to, img.path(link)).unwrap();
    }
    img.umount();
    let before = img.full_listing();
    let dev = img.device.clone();
    for (entry, needles) in [
        (
            r#""subvolume": "@root", "oldRoots": "@old_roots""#,
            &["`oldRoots` (@old_roots): @old_roots is a symbolic link"][..],
        ),
        (
            r#""subvolume": "@root", "oldRoots": "@old_roots/deeper""#,
            &[
                "`oldRoots` (@old_roots/deeper): @old_roots, on the way to @old_roots/deeper, is a symbolic link",
            ],
        ),
        (
            r#""subvolume": "@root", "oldRoots": null, "blank": "@blank""#,
            &["`blank` (@blank): @blank is a symbolic link"],
        ),
        (
            r#""subvolume": "sys/@root", "oldRoots": null"#,
            &["`subvolume` (sys): sys is a symbolic link"],
        ),
        (
            r#""subvolume": "@linked-root", "oldRoots": null"#,
            &[
                "@linked-root is a symbolic link, not a subvolume",
                "`subvolume`",
            ],
        ),
    ] {
        let p = one_target(img.dir.path(), "case.json", &dev, entry);
        let (code, log) = rollback(&img, &p, &[], "", now());
        assert_eq!(code, Exit::Failure, "{entry}: {log}");
        for needle in needles {
            assert!(log.contains(needle), "{entry}: {needle:?} not in {log}");
        }
        assert!(!log.contains("not a directory"), "{entry}: {log}");
        assert_eq!(img.full_listing(), before, "{entry}: something changed");
    }
}
