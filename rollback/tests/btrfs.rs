//! The Btrfs rotation on real filesystems (loop devices; needs root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{DAY, Image, btrfs_config, make_persist, now, run_rollback, serial};
use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

/// Runs the program in this process; returns (exit status, log lines).
/// Every run leaves its mount point cleaned up: nothing is left in the run
/// directory but the record of what the boot archived (`this_boot`).
fn rollback(img: &Image, config: &Path, extra: &[&str], cmdline: &str, at: i64) -> (Exit, String) {
    let (code, text) = run_rollback(img, config, extra, cmdline, at);
    let left: Vec<_> = std::fs::read_dir(img.run_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "tabula-archived")
        .collect();
    assert!(
        left.is_empty(),
        "the mount point was not cleaned up: {left:?}"
    );
    (code, text)
}

/// A boot (stage 1), then, when it succeeded, the pruning unit
/// (`--prune-only`), as a machine that reaches the booted system runs them.
/// Returns the first failing status (or 0) and both logs.
fn boot_and_prune(img: &Image, config: &Path, at: i64) -> (Exit, String) {
    let (code, log) = rollback(img, config, &[], "", at);
    if code != Exit::Ok {
        return (code, log);
    }
    let (code, pruned) = rollback(img, config, &["--prune-only"], "", at);
    (code, format!("{log}{pruned}"))
}

fn otime_name(img: &Image, rel: &str) -> String {
    let out = common::sh(
        "btrfs",
        &["subvolume", "show", img.path(rel).to_str().unwrap()],
    );
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Creation time:"))
        .expect("creation time")
        .trim()
        .to_owned();
    let secs = common::sh("date", &["-u", "-d", &line, "+%s"]);
    timestamp_name(secs.trim().parse().unwrap())
}

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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
    img.mkdir("@old_roots");
    // Archived oldest first, as boots do; the live root comes last.
    for age in [90, 40, 2] {
        let base = format!("@old_roots/{}", timestamp_name(t - age * DAY));
        img.subvol(&base);
        img.subvol(&format!("{base}/n1"));
        img.subvol(&format!("{base}/n1/n2"));
    }
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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
        let p = dir.join("case.json");
        std::fs::write(
            &p,
            format!(
                r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{dev}", {entry}}}]}}"#
            ),
        )
        .unwrap();
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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
    img.mkdir("@old_roots");
    let names: Vec<String> = (1..=5).map(|d| timestamp_name(t - d * 100 * DAY)).collect();
    // Archived oldest first, as boots do, then the root of the last boot.
    for n in names.iter().rev() {
        img.subvol(&format!("@old_roots/{n}"));
    }
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

/// Run by hand on a booted system, the rollback would move the running root
/// away: a mounted root is refused (a dry run only warns).
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn mounted_root_is_refused() {
    if tabula_testkit::skip_unless("mounted_root_is_refused", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
    img.mkdir("@root/var/lib");
    let live = img.dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    // Part of the root is enough (a bind mount of /var/lib, say).
    common::sh(
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
    common::sh("umount", &[live.to_str().unwrap()]);
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
    img.mkdir("@old_roots");
    let older: Vec<String> = (1..=3).map(|d| timestamp_name(t - d * 100 * DAY)).collect();
    for n in older.iter().rev() {
        img.subvol(&format!("@old_roots/{n}"));
    }
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
    img.mkdir("@old_roots");
    let old = timestamp_name(t - 90 * DAY);
    img.subvol(&format!("@old_roots/{old}"));
    img.subvol(&format!("@old_roots/{old}/nested"));
    img.subvol("@old_roots/pinned");
    img.subvol("@root");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, r#", "oldRoots": "@old_roots""#);
    let set_default = |img: &mut Image, rel: &str| {
        img.mount();
        let path = img.path(rel);
        common::sh(
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
        let before = img.full_listing();
        let (code, log) = rollback(&img, &cfg, &[], "", t);
        assert_eq!(code, Exit::Failure, "{default}: {log}");
        assert!(log.contains(&says), "{default}: {log}");
        assert!(log.contains("btrfs subvolume set-default 5"), "{log}");
        assert!(log.contains("subvol=@root"), "{log}");
        assert_eq!(img.full_listing(), before, "{default}: something changed");
    }
    // A default the rotation never touches (a pinned old root) is no reason
    // to stop.
    set_default(&mut img, "@old_roots/pinned");
    let (code, log) = rollback(&img, &cfg, &[], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
}

/// A configuration with two Btrfs targets, `(device, subvolume, oldRoots)`.
fn two_targets(img: &Image, a: (&str, &str, &str), b: (&str, &str, &str)) -> std::path::PathBuf {
    let p = img.dir.path().join("two.json");
    let one = |(device, sub, old): (&str, &str, &str)| {
        format!(
            r#"{{"type": "btrfs", "device": "{device}", "subvolume": "{sub}", "oldRoots": "{old}", "waitSeconds": 2}}"#
        )
    };
    std::fs::write(
        &p,
        format!(r#"{{"version": 1, "rollback": [{}, {}]}}"#, one(a), one(b)),
    )
    .unwrap();
    p
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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
        let before = img.full_listing();
        let (code, log) = rollback(&img, &cfg, &[], "", now());
        assert_eq!(code, Exit::Failure, "{log}");
        assert!(log.contains("are the same filesystem"), "{log}");
        assert_eq!(img.full_listing(), before, "something changed: {log}");
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
fn a_device_that_appears_late_is_waited_for() {
    if tabula_testkit::skip_unless("a_device_that_appears_late_is_waited_for", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
        std::thread::sleep(std::time::Duration::from_millis(1000));
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

/// Mounts subvolume `rel` of the image at a new directory `at` (in the
/// image's scratch directory); returns that directory.
fn mount_subvol(img: &Image, rel: &str, at: &str) -> std::path::PathBuf {
    let dir = img.dir.path().join(at);
    std::fs::create_dir(&dir).unwrap();
    common::sh(
        "mount",
        &[
            "-o",
            &format!("subvol={rel}"),
            &img.device,
            dir.to_str().unwrap(),
        ],
    );
    dir
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
    let mut img = Image::new(256);
    img.mount();
    img.subvol("@root");
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
    common::sh("umount", &[at.to_str().unwrap()]);
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
    common::sh("umount", &[at.to_str().unwrap()]);
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
            common::sh("umount", &[at.to_str().unwrap()]);
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
        let p = img.dir.path().join("case.json");
        std::fs::write(
            &p,
            format!(
                r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{dev}", {entry}}}]}}"#
            ),
        )
        .unwrap();
        let (code, log) = rollback(&img, &p, &[], "", now());
        assert_eq!(code, Exit::Failure, "{entry}: {log}");
        for needle in needles {
            assert!(log.contains(needle), "{entry}: {needle:?} not in {log}");
        }
        assert!(!log.contains("not a directory"), "{entry}: {log}");
        assert_eq!(img.full_listing(), before, "{entry}: something changed");
    }
}

/// After a power cut, a subvolume at the reserved name is deleted as the
/// unused new root of state B only when all three checks agree; each one
/// alone keeps a previous root (state C) from being deleted.
#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn each_check_that_tells_a_new_root_from_a_previous_root_holds_on_its_own() {
    if tabula_testkit::skip_unless(
        "each_check_that_tells_a_new_root_from_a_previous_root_holds_on_its_own",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    type Arrange = fn(&Image);
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
