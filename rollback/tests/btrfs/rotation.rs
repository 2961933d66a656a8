//! What a rotation makes, on real filesystems: a fresh root (empty or from
//! `blank`), the previous root archived under its creation time or deleted,
//! old roots pruned by the keep policy with their nested subvolumes.

use crate::common::*;
use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn fresh_root_empty_then_rotated() {
    if tabula_testkit::skip_unless("fresh_root_empty_then_rotated", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);

    // A blank filesystem: the root is created, nothing else.
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("@root does not exist yet"));
    img.mount();
    assert!(img.is_subvol("@root"));
    assert!(img.ls("@root").is_empty());
    assert_eq!(img.ls(""), ["@root"]);
    img.write("@root/etc/junk", b"written during the boot");
    let name = otime_name(&img, "@root");
    img.umount();

    // Next boot: the used root is kept, a new empty one takes its place.
    let (code, _) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    img.mount();
    assert!(img.is_subvol("@root") && img.ls("@root").is_empty());
    assert_eq!(img.ls(""), ["@old_roots", "@root"]);
    assert_eq!(img.ls("@old_roots"), vec![name.clone()]);
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{name}/etc/junk"))).unwrap(),
        b"written during the boot"
    );
    assert_eq!(
        img.subvolumes(),
        [format!("@old_roots/{name}"), "@root".into()]
    );
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn fresh_root_from_blank() {
    if tabula_testkit::skip_unless("fresh_root_from_blank", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@blank-src");
    img.write("@blank-src/etc/marker", b"blank");
    img.snapshot("@blank-src", "@blank", true);
    img.subvol("@root");
    img.write("@root/etc/junk", b"junk");
    img.umount();

    // A blank that does not exist is refused before anything changes.
    let missing = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "blank": "@nope""#,
    );
    let before = img.full_listing();
    let (code, log) = rollback(&img, &missing, &[], "", now());
    assert_eq!(code, Exit::Failure);
    assert!(
        log.contains("the blank subvolume @nope does not exist"),
        "{log}"
    );
    assert_eq!(img.full_listing(), before);

    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "blank": "@blank""#,
    );
    let (code, _) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    img.mount();
    assert_eq!(img.ls("@root"), ["etc"]);
    assert_eq!(img.ls("@root/etc"), ["marker"]);
    // Writable, although the blank is a read-only snapshot.
    img.write("@root/etc/new", b"x");
    let old = img.ls("@old_roots");
    assert_eq!(old.len(), 1);
    assert!(img.exists(&format!("@old_roots/{}/etc/junk", old[0])));
    assert!(img.is_subvol("@blank") && img.ls("@blank/etc") == ["marker"]);
}

/// Forty old roots of varied ages, each with subvolumes nested three deep,
/// a plain directory and a pinned root among them, and `@persist` beside.
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn forty_old_roots_pruned_with_nested_subvolumes() {
    if tabula_testkit::skip_unless(
        "forty_old_roots_pruned_with_nested_subvolumes",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(512);
    img.mount();
    let persist = make_persist(&img);
    img.mkdir("@old_roots");
    let mut young = Vec::new();
    let mut expired = Vec::new();
    // Archived oldest first, as boots do; the live root comes last.
    for i in (0..40i64).rev() {
        let age = i * 2 + 1; // 1, 3, … 79 days
        let name = timestamp_name(t - age * DAY);
        let base = format!("@old_roots/{name}");
        img.subvol(&base);
        img.write(&format!("{base}/etc/hostname"), name.as_bytes());
        img.mkdir(&format!("{base}/var/lib/docker/btrfs/subvolumes"));
        let a = format!("{base}/var/lib/docker/btrfs/subvolumes/a");
        img.subvol(&a);
        img.subvol(&format!("{a}/b"));
        img.mkdir(&format!("{a}/b/deeper/dir"));
        img.subvol(&format!("{a}/b/deeper/dir/c"));
        img.write(&format!("{a}/b/deeper/dir/c/file"), b"three deep");
        if age <= 30 { &mut young } else { &mut expired }.push(name);
    }
    // An old, dated plain directory holding a subvolume: not an old root.
    let plain = timestamp_name(t - 400 * DAY);
    img.mkdir(&format!("@old_roots/{plain}/inside"));
    img.subvol(&format!("@old_roots/{plain}/inside/sub"));
    img.write(&format!("@old_roots/{plain}/inside/sub/f"), b"keep me");
    img.subvol("@root");
    img.subvol("@root/var-lib-machines");
    img.write(
        "@root/var-lib-machines/os-release",
        b"nested in the live root",
    );
    // Renamed by the user: pinned.
    img.subvol("@old_roots/before-upgrade");
    // A subvolume outside old_roots that must not be touched.
    img.subvol("@snapshots");
    img.snapshot("@old_roots/before-upgrade", "@snapshots/one", true);
    let root_name = otime_name(&img, "@root");
    let outside = img.tree("@snapshots");
    img.umount();

    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let (code, log) = boot_and_prune(&img, &cfg, t);
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("not an old root, left alone"), "{log}");
    assert!(log.contains("@old_roots/before-upgrade is pinned"), "{log}");
    // Leaves first: within each pruned root, c before b before a before the root.
    let pos = |s: &str| log.find(s).unwrap_or_else(|| panic!("{s} not in log"));
    for name in &expired {
        let a = format!("@old_roots/{name}/var/lib/docker/btrfs/subvolumes/a");
        let (pc, pb, pa, proot) = (
            pos(&format!("delete subvolume {a}/b/deeper/dir/c\n")),
            pos(&format!("delete subvolume {a}/b\n")),
            pos(&format!("delete subvolume {a}\n")),
            pos(&format!("delete subvolume @old_roots/{name}\n")),
        );
        assert!(pc < pb && pb < pa && pa < proot, "{name}: not leaves first");
    }

    img.mount();
    let mut want: Vec<String> = young.clone();
    want.extend([root_name.clone(), plain.clone(), "before-upgrade".into()]);
    want.sort();
    assert_eq!(img.ls("@old_roots"), want);
    // Every kept root still has its whole nested tree; nothing else is left
    // of the expired ones.
    let subvols = img.subvolumes();
    for name in &young {
        let a = format!("@old_roots/{name}/var/lib/docker/btrfs/subvolumes/a");
        for p in [
            format!("@old_roots/{name}"),
            a.clone(),
            format!("{a}/b"),
            format!("{a}/b/deeper/dir/c"),
        ] {
            assert!(subvols.contains(&p), "{p} is gone");
        }
    }
    for name in &expired {
        assert!(
            !subvols.iter().any(|s| s.contains(name.as_str())),
            "{name} left something behind"
        );
    }
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{plain}/inside/sub/f"))).unwrap(),
        b"keep me"
    );
    assert!(img.is_subvol(&format!("@old_roots/{root_name}/var-lib-machines")));
    assert_eq!(img.tree("@persist"), persist);
    assert_eq!(img.tree("@snapshots"), outside);
    // @persist, @root, the moved root and its nested one, the one in the
    // plain directory, the pinned one, @snapshots and its snapshot.
    assert_eq!(subvols.len(), 4 * young.len() + 8, "{subvols:#?}");
}

/// A root is never moved into an existing old root, whatever is there.
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn name_collisions() {
    if tabula_testkit::skip_unless("name_collisions", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::with_root();
    img.write("@root/which", b"the root");
    let name = otime_name(&img, "@root");
    img.mkdir("@old_roots");
    img.subvol(&format!("@old_roots/{name}"));
    img.write(&format!("@old_roots/{name}/which"), b"first");
    img.mkdir(&format!("@old_roots/{name}.1")); // an empty plain directory
    img.umount();

    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(
        log.contains(&format!("move @root.tabula-new to @old_roots/{name}.2")),
        "{log}"
    );
    img.mount();
    assert_eq!(
        img.ls("@old_roots"),
        [name.clone(), format!("{name}.1"), format!("{name}.2")]
    );
    assert_eq!(img.ls(&format!("@old_roots/{name}")), ["which"]);
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{name}/which"))).unwrap(),
        b"first"
    );
    assert!(img.ls(&format!("@old_roots/{name}.1")).is_empty());
    assert_eq!(
        std::fs::read(img.path(&format!("@old_roots/{name}.2/which"))).unwrap(),
        b"the root"
    );
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn old_roots_null_deletes_the_previous_root_and_its_nested_subvolumes() {
    if tabula_testkit::skip_unless(
        "old_roots_null_deletes_the_previous_root_and_its_nested_subvolumes",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    let persist = make_persist(&img);
    img.subvol("@root");
    img.subvol("@root/srv");
    img.subvol("@root/srv/inner");
    img.write("@root/srv/inner/x", b"x");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": null"#);
    let (code, log) = rollback(&img, &cfg, &[], "", now());
    assert_eq!(code, Exit::Ok);
    assert!(
        log.contains("delete subvolume @root.tabula-new/srv/inner\n"),
        "{log}"
    );
    img.mount();
    assert_eq!(img.subvolumes(), ["@persist", "@root"]);
    assert!(img.ls("@root").is_empty());
    assert_eq!(img.tree("@persist"), persist);
}

/// The seed's layout: `@old_roots` is a subvolume of its own (moves cross
/// subvolumes), and a root below a directory, with a blank beside it.
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn old_roots_subvolume_and_nested_paths() {
    if tabula_testkit::skip_unless("old_roots_subvolume_and_nested_paths", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    for s in ["@nix", "@log", "@containers", "@caddy", "@snapshots"] {
        img.subvol(s);
        img.write(&format!("{s}/data"), s.as_bytes());
    }
    let persist = make_persist(&img);
    img.subvol("@old_roots");
    img.mkdir("sys");
    img.subvol("sys/blank-src");
    img.write("sys/blank-src/etc/marker", b"blank");
    img.snapshot("sys/blank-src", "sys/@blank", true);
    // Archived before the live root was made.
    let old = timestamp_name(t - 45 * DAY);
    img.subvol(&format!("@old_roots/{old}"));
    img.subvol(&format!("@old_roots/{old}/nested"));
    img.subvol("sys/@root");
    img.write("sys/@root/etc/junk", b"junk");
    img.subvol("sys/@root/var-lib-containers");
    img.mkdir(&format!("@old_roots/{}", timestamp_name(t - 90 * DAY)));
    let others: Vec<_> = ["@nix", "@log", "@containers", "@caddy", "@snapshots"]
        .iter()
        .map(|s| img.tree(s))
        .collect();
    let name = otime_name(&img, "sys/@root");
    img.umount();

    let p = img.dir.path().join("seed.json");
    std::fs::write(
        &p,
        format!(
            r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{}", "mountOptions": ["compress=zstd:3", "noatime"], "subvolume": "sys/@root", "blank": "sys/@blank", "oldRoots": "@old_roots", "keep": {{"days": 30, "min": 1, "max": null}}}}], "persist": [], "overlays": []}}"#,
            img.device
        ),
    )
    .unwrap();
    let (code, log) = boot_and_prune(&img, &p, t);
    assert_eq!(code, Exit::Ok);
    assert!(log.contains("(btrfs, subvolid=5,compress=zstd:3)"), "{log}");
    img.mount();
    assert_eq!(img.ls("sys"), ["@blank", "@root", "blank-src"]);
    assert_eq!(img.ls("sys/@root/etc"), ["marker"]);
    let mut want = vec![name.clone(), timestamp_name(t - 90 * DAY)];
    want.sort();
    assert_eq!(img.ls("@old_roots"), want);
    assert!(img.is_subvol(&format!("@old_roots/{name}/var-lib-containers")));
    assert_eq!(img.tree("@persist"), persist);
    for (s, tree) in ["@nix", "@log", "@containers", "@caddy", "@snapshots"]
        .iter()
        .zip(&others)
    {
        assert_eq!(&img.tree(s), tree, "{s}");
    }
}
