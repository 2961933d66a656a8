//! The two halves on real filesystems (loop devices; needs root): stage 1
//! swaps the root and prunes nothing, unless its safety valve opens;
//! `--prune-only` prunes by the keep policy and does nothing else.

use crate::common::{DAY, Image, btrfs_config, make_persist, now, rollback, serial, sh};
use tabula_rollback::keep::timestamp_name;
use tabula_rollback::{Exit, valve};
use tabula_testkit::BTRFS_ON_LOOP;

/// An image with `@persist`, `@root` and, in `@old_roots`, one old root per
/// age in `ages` (days; archived oldest first), each with two nested
/// subvolumes. Returns the image (unmounted) and the old roots' names.
fn image(size_mb: u64, ages: &[i64], t: i64) -> (Image, Vec<String>) {
    let mut img = Image::new(size_mb);
    img.mount();
    make_persist(&img);
    let names = img.old_roots(t, ages, &["n1", "n1/n2"]);
    img.subvol("@root");
    img.write("@root/etc/hostname", b"previous");
    img.umount();
    (img, names)
}

const POLICY: &str = r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1}"#;

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn stage_one_never_prunes_in_the_common_case() {
    if tabula_testkit::skip_unless("stage_one_never_prunes_in_the_common_case", BTRFS_ON_LOOP) {
        return;
    }
    let _g = serial();
    let t = now();
    // Three expired old roots, two young ones.
    let (mut img, names) = image(256, &[90, 60, 40, 5, 2], t);
    let cfg = btrfs_config(img.dir.path(), &img.device, POLICY);
    for boot in 0..3 {
        let (code, log) = rollback(&img, &cfg, &[], "", t + boot);
        assert_eq!(code, Exit::Ok, "{log}");
        assert!(!log.contains("delete subvolume"), "boot {boot}: {log}");
        assert!(log.contains("pruning left to the booted system"), "{log}");
        img.mount();
        let left = img.ls("@old_roots");
        // Every old root is still there, plus one per boot.
        assert_eq!(
            left.len(),
            names.len() + 1 + usize::try_from(boot).unwrap(),
            "{left:?}"
        );
        assert!(names.iter().all(|n| left.contains(n)), "{left:?}");
        for n in &names {
            assert!(img.is_subvol(&format!("@old_roots/{n}/n1/n2")), "{n}");
        }
        img.umount();
    }
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn prune_only_applies_the_keep_policy_and_nothing_else() {
    if tabula_testkit::skip_unless(
        "prune_only_applies_the_keep_policy_and_nothing_else",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let (mut img, names) = image(256, &[90, 60, 40, 5, 2], t);
    let cfg = btrfs_config(img.dir.path(), &img.device, POLICY);
    let (code, log) = rollback(&img, &cfg, &[], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    let archived: Vec<String> = img
        .ls("@old_roots")
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    assert_eq!(archived.len(), 1);
    let root = img.tree("@root");
    let persist = img.tree("@persist");
    let top = img.ls("");
    img.umount();

    let (code, log) = rollback(&img, &cfg, &["--prune-only"], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(log.contains("3 to prune"), "{log}");
    // Nested subvolumes first; the only actions are deletes.
    let other = log
        .lines()
        .find(|l| l.contains(" move ") || l.contains("create ") || l.contains("exchange "));
    assert_eq!(other, None, "prune-only did more than prune: {log}");
    img.mount();
    let mut want: Vec<String> = names[3..].to_vec();
    want.extend(archived.clone());
    want.sort();
    assert_eq!(img.ls("@old_roots"), want);
    for n in &names[..3] {
        assert!(
            !img.subvolumes().iter().any(|s| s.contains(n.as_str())),
            "{n} left something behind"
        );
    }
    assert_eq!(img.tree("@root"), root);
    assert_eq!(img.tree("@persist"), persist);
    assert_eq!(img.ls(""), top);
    img.umount();
    // Run again: nothing left to do.
    let (code, log) = rollback(&img, &cfg, &["--prune-only"], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(!log.contains("delete subvolume"), "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn the_root_archived_by_this_boot_survives_pruning_even_when_an_old_root_is_younger() {
    if tabula_testkit::skip_unless(
        "the_root_archived_by_this_boot_survives_pruning_even_when_an_old_root_is_younger",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let (mut img, _) = image(256, &[90], t);
    // A snapshot made by hand into the old roots after the root was
    // created (or received from a backup): by creation order it is the most
    // recent old root, though this boot archives the root after it.
    img.mount();
    let by_hand = timestamp_name(t - 3600);
    img.snapshot("@root", &format!("@old_roots/{by_hand}"), false);
    img.umount();
    // Forty days later: by its name, the root this boot archives is due.
    let later = t + 40 * DAY;
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 30, "min": 1}"#,
    );
    let (code, log) = rollback(&img, &cfg, &[], "", later);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    let archived: Vec<String> = img
        .ls("@old_roots")
        .into_iter()
        .filter(|n| *n != by_hand && !n.starts_with(&timestamp_name(t - 90 * DAY)))
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    img.umount();
    let (code, log) = rollback(&img, &cfg, &["--prune-only"], "", later);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    let left = img.ls("@old_roots");
    assert!(
        left.contains(&archived[0]),
        "the root this boot archived was pruned: {left:?}\n{log}"
    );
    assert!(img.exists(&format!("@old_roots/{}/etc/hostname", archived[0])));
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn prune_only_never_prunes_the_root_archived_by_the_current_boot() {
    if tabula_testkit::skip_unless(
        "prune_only_never_prunes_the_root_archived_by_the_current_boot",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let (mut img, _) = image(256, &[90, 60], t);
    // A policy that, alone, would let every old root go.
    let cfg = btrfs_config(
        img.dir.path(),
        &img.device,
        r#", "oldRoots": "@old_roots", "keep": {"days": 0, "min": 0, "max": 0}"#,
    );
    img.mount();
    let previous = sh(
        "btrfs",
        &["subvolume", "show", img.path("@root").to_str().unwrap()],
    );
    assert!(previous.contains("Creation time"));
    img.umount();
    // The clock is two years ahead: by its name, the archived root is old.
    let (code, log) = rollback(&img, &cfg, &[], "", t + 730 * DAY);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    let before = img.ls("@old_roots");
    img.umount();
    let (code, log) = rollback(&img, &cfg, &["--prune-only"], "", t + 730 * DAY);
    assert_eq!(code, Exit::Ok, "{log}");
    img.mount();
    let left = img.ls("@old_roots");
    assert_eq!(left.len(), 1, "{left:?}");
    // The one archived by the boot: the one not among the two made above.
    assert!(before.contains(&left[0]));
    assert!(
        !left[0].starts_with(&timestamp_name(t - 90 * DAY))
            && !left[0].starts_with(&timestamp_name(t - 60 * DAY)),
        "{left:?}"
    );
    assert!(img.exists(&format!("@old_roots/{}/etc/hostname", left[0])));
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn the_safety_valve_prunes_in_stage_one_when_old_roots_pass_the_cap() {
    if tabula_testkit::skip_unless(
        "the_safety_valve_prunes_in_stage_one_when_old_roots_pass_the_cap",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    // One short of the cap: stage 1 archives one more, which makes the
    // cap exactly, and prunes nothing.
    let ages: Vec<i64> = (1..i64::try_from(valve::MAX_OLD_ROOTS).unwrap())
        .map(|i| 200 - i)
        .collect();
    img.old_roots(t, &ages, &[]);
    img.subvol("@root");
    img.umount();
    let cfg = btrfs_config(img.dir.path(), &img.device, POLICY);
    let (code, log) = rollback(&img, &cfg, &[], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(!log.contains("delete subvolume"), "{log}");
    img.mount();
    assert_eq!(img.ls("@old_roots").len(), valve::MAX_OLD_ROOTS);
    img.umount();
    // One past the cap: the valve opens and the keep policy applies.
    let (code, log) = rollback(&img, &cfg, &[], "", t + 60);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(log.contains("safety valve"), "{log}");
    assert!(log.contains("more than the cap of 100"), "{log}");
    img.mount();
    // Ages 199 … 101 days are all past 30 days; the two archived by the
    // runs stay (min 1, and each run's own is never pruned by it).
    assert_eq!(img.ls("@old_roots").len(), 2, "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn the_safety_valve_prunes_in_stage_one_when_the_filesystem_is_short_of_space() {
    if tabula_testkit::skip_unless(
        "the_safety_valve_prunes_in_stage_one_when_the_filesystem_is_short_of_space",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let _g = serial();
    let t = now();
    let (mut img, names) = image(512, &[90, 60, 2], t);
    let cfg = btrfs_config(img.dir.path(), &img.device, POLICY);
    // Fill @persist until less than 10% is available.
    img.mount();
    let st = rustix::fs::statvfs(img.path("")).unwrap();
    let (avail, size) = (st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize);
    let fill = avail - size / 20;
    let f = std::fs::File::create(img.path("@persist/filler")).unwrap();
    // Real blocks, not a hole.
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, fill).unwrap();
    f.sync_all().unwrap();
    drop(f);
    img.sync();
    let st = rustix::fs::statvfs(img.path("")).unwrap();
    assert!(
        valve::low_space(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize),
        "could not fill the image: {} of {} available",
        st.f_bavail * st.f_frsize,
        st.f_blocks * st.f_frsize
    );
    img.umount();
    let (code, log) = rollback(&img, &cfg, &[], "", t);
    assert_eq!(code, Exit::Ok, "{log}");
    assert!(log.contains("safety valve: short of space"), "{log}");
    img.mount();
    let left = img.ls("@old_roots");
    assert!(
        !left.contains(&names[0]) && !left.contains(&names[1]),
        "{left:?}"
    );
    assert!(left.contains(&names[2]), "{left:?}");
    assert_eq!(left.len(), 2, "{left:?}");
}
