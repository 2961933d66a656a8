//! Crash safety: the real binary, built with the `fault-injection` feature,
//! is aborted right after each step of the rotation (stage 1) and of the
//! pruning run (`--prune-only`, written `prune:<step>` below) in turn, and
//! after chains of steps (a crash during the recovery from a crash); then a
//! normal run and a pruning run must complete, and the invariants must hold: exactly one root, the
//! old roots as the policy says, the previous root kept exactly once and
//! intact, `@persist` unchanged. An abort leaves the disk as a power cut
//! between the same two steps would (see `src/btrfs/state.rs`).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use crate::common::{DAY, Image, make_persist, mounts_under, now, sh};
use tabula_rollback::keep::timestamp_name;
use tabula_testkit::BTRFS_ON_LOOP;

const ORIGINAL: &[u8] = b"the original root";

struct Fixture {
    img: Image,
    persist: BTreeMap<String, String>,
    young: Vec<String>,
    expired: Vec<String>,
    plain: String,
    keep_old: bool,
    blank: bool,
    now: i64,
}

fn fixture(keep_old: bool, blank: bool) -> Fixture {
    let t = now();
    let mut img = Image::new(256);
    img.mount();
    let persist = make_persist(&img);
    if blank {
        img.subvol("@blank-src");
        img.write("@blank-src/etc/marker", b"blank");
        img.snapshot("@blank-src", "@blank", true);
        common_delete(&img, "@blank-src");
    }
    img.mkdir("@old_roots");
    let mut young = Vec::new();
    let mut expired = Vec::new();
    // Archived oldest first, as boots do; the live root comes last.
    for age in [60, 50, 40, 10, 5, 1] {
        let name = timestamp_name(t - age * DAY);
        let base = format!("@old_roots/{name}");
        img.subvol(&base);
        img.write(&format!("{base}/which"), name.as_bytes());
        img.subvol(&format!("{base}/a"));
        img.mkdir(&format!("{base}/a/dir"));
        img.subvol(&format!("{base}/a/dir/b"));
        img.subvol(&format!("{base}/a/dir/b/c"));
        if age <= 30 { &mut young } else { &mut expired }.push(name);
    }
    let plain = timestamp_name(t - 500 * DAY);
    img.mkdir(&format!("@old_roots/{plain}"));
    img.subvol(&format!("@old_roots/{plain}/sub"));
    img.subvol("@old_roots/pinned");
    img.subvol("@root");
    img.write("@root/which", ORIGINAL);
    img.subvol("@root/nested");
    img.subvol("@root/nested/deeper");
    img.write("@root/nested/deeper/f", b"deep");
    img.sync();
    img.umount();
    Fixture {
        img,
        persist,
        young,
        expired,
        plain,
        keep_old,
        blank,
        now: t,
    }
}

fn common_delete(img: &Image, rel: &str) {
    sh(
        "btrfs",
        &["-q", "subvolume", "delete", img.path(rel).to_str().unwrap()],
    );
}

/// One run: stage 1, or with `prune_only` the pruning unit's.
fn run(f: &Fixture, fault: Option<&str>, prune_only: bool) -> Output {
    let dir = f.img.dir.path();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{}", "subvolume": "@root", "oldRoots": {}, "blank": {}, "keep": {{"days": 30, "min": 1}}}}]}}"#,
            f.img.device,
            if f.keep_old { "\"@old_roots\"" } else { "null" },
            if f.blank { "\"@blank\"" } else { "null" },
        ),
    )
    .unwrap();
    std::fs::write(dir.join("cmdline"), "quiet").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabula-rollback"));
    if prune_only {
        cmd.arg("--prune-only");
    }
    cmd.arg("--config")
        .arg(&config)
        .env("TABULA_NOW", f.now.to_string())
        .env("TABULA_CMDLINE", dir.join("cmdline"))
        .env("TABULA_KMSG", dir.join("kmsg.log"))
        .env("TABULA_RUN_DIR", f.img.run_dir())
        .env_remove("TABULA_FAULT_AFTER");
    if let Some(fault) = fault {
        cmd.env("TABULA_FAULT_AFTER", fault);
    }
    cmd.output().unwrap()
}

fn log(f: &Fixture) -> String {
    std::fs::read_to_string(f.img.dir.path().join("kmsg.log")).unwrap_or_default()
}

/// Whatever happened, the root exists and is a subvolume.
fn check_root_exists(f: &mut Fixture, when: &str) {
    f.img.mount_ro();
    assert!(f.img.is_subvol("@root"), "{when}: no @root\n{}", log(f));
    f.img.umount();
}

fn check_invariants(f: &mut Fixture, when: &str, aborted: usize) {
    let ctx = format!("{when}\n{}", log(f));
    let img = &mut f.img;
    img.mount_ro();
    let mut top = vec!["@old_roots", "@persist", "@root"];
    if f.blank {
        top.insert(0, "@blank");
    }
    assert_eq!(img.ls(""), top, "{ctx}");
    assert!(img.is_subvol("@root"), "{ctx}");
    let want_root: Vec<&str> = if f.blank { vec!["etc"] } else { vec![] };
    assert_eq!(img.ls("@root"), want_root, "{ctx}");
    assert_eq!(img.tree("@persist"), f.persist, "{ctx}");
    let subvols = img.subvolumes();
    for name in &f.young {
        for p in ["", "/a", "/a/dir/b", "/a/dir/b/c"] {
            let p = format!("@old_roots/{name}{p}");
            assert!(subvols.contains(&p), "{p} is gone: {ctx}");
        }
    }
    for name in &f.expired {
        let left = subvols.iter().filter(|s| s.contains(name.as_str())).count();
        // Without oldRoots nothing is pruned: @old_roots is not named.
        let want = if f.keep_old { 0 } else { 4 };
        assert_eq!(left, want, "{name}: {ctx}");
    }
    assert!(
        subvols.contains(&format!("@old_roots/{}/sub", f.plain)),
        "{ctx}"
    );
    assert!(subvols.contains(&"@old_roots/pinned".to_owned()), "{ctx}");

    // The previous root: kept exactly once and whole, or (oldRoots
    // null) gone; anything else new in @old_roots is a fresh root from
    // the aborted run, with nothing of the original in it.
    let mut originals = Vec::new();
    let mut fresh = Vec::new();
    for name in img.ls("@old_roots") {
        if f.young.contains(&name)
            || f.expired.contains(&name)
            || name == f.plain
            || name == "pinned"
        {
            continue;
        }
        let which = std::fs::read(img.path(&format!("@old_roots/{name}/which")));
        if which.as_deref().ok() == Some(ORIGINAL) {
            originals.push(name);
        } else {
            fresh.push(name);
        }
    }
    if f.keep_old {
        assert_eq!(
            originals.len(),
            1,
            "the original root: {originals:?}: {ctx}"
        );
        let o = &originals[0];
        assert_eq!(
            std::fs::read(img.path(&format!("@old_roots/{o}/nested/deeper/f"))).unwrap(),
            b"deep",
            "{ctx}"
        );
        // Each aborted run that got past the exchange made one.
        assert!(fresh.len() <= aborted, "{fresh:?}: {ctx}");
    } else {
        assert!(originals.is_empty() && fresh.is_empty(), "{ctx}");
        assert!(
            !subvols.iter().any(|s| s.ends_with("nested/deeper")),
            "the previous root's nested subvolumes are left: {ctx}"
        );
    }
    let expected = 1
        + usize::from(f.blank)
        + 4 * f.young.len()
        + 2 // the plain directory's subvolume, pinned
        + 1 // @persist
        + if f.keep_old {
            3 + fresh.len()
        } else {
            4 * f.expired.len()
        };
    assert_eq!(subvols.len(), expected, "{subvols:#?}: {ctx}");
    img.umount();
}

/// Aborts after each fault of `chain` in turn (`prune:<step>`: in a
/// pruning run), then runs stage 1 and the pruning run normally.
fn scenario(keep_old: bool, blank: bool, chain: &[&str]) {
    let mut f = fixture(keep_old, blank);
    let what = format!("keep_old={keep_old} blank={blank} chain={chain:?}");
    for fault in chain {
        let (prune_only, step) = match fault.strip_prefix("prune:") {
            Some(step) => (true, step),
            None => (false, *fault),
        };
        let out = run(&f, Some(step), prune_only);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{what}: the run did not stop at {fault} ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            log(&f)
        );
        for m in mounts_under(&f.img.run_dir()) {
            sh("umount", &[m.to_str().unwrap()]);
        }
        check_root_exists(&mut f, &format!("{what}: after the abort at {fault}"));
    }
    for prune_only in [false, true] {
        let out = run(&f, None, prune_only);
        assert!(
            out.status.success(),
            "{what}: the recovery run (prune_only={prune_only}) failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            log(&f)
        );
    }
    check_invariants(&mut f, &what, chain.len());
}

/// Stage 1 prunes nothing here (the safety valve stays shut), so the
/// pruning steps are the pruning run's.
const SINGLE: &[&str] = &[
    "mounted",
    "created",
    "exchanged",
    "archived",
    "prune:mounted",
    "prune:nested-destroyed:1",
    "prune:nested-destroyed:2",
    "prune:nested-destroyed:3",
    "prune:nested-destroyed:5",
    "prune:pruned:1",
    "prune:pruned:2",
    "prune:pruned:3",
];

const CHAINS: &[&[&str]] = &[
    &["created", "leftover-removed"],
    &["exchanged", "leftover-archived"],
    // A pruning run on a system booted after a stage 1 that stopped.
    &["exchanged", "prune:nested-destroyed:1"],
    &["created", "prune:pruned:1", "leftover-removed"],
    &["exchanged", "leftover-archived", "archived"],
    &["created", "leftover-removed", "exchanged"],
    // A pruning run stopped twice, then a stage 1 stopped.
    &["prune:nested-destroyed:2", "prune:pruned:1", "exchanged"],
];

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn abort_after_each_step_keeping_old_roots() {
    if tabula_testkit::skip_unless("abort_after_each_step_keeping_old_roots", BTRFS_ON_LOOP) {
        return;
    }
    for fault in SINGLE {
        scenario(true, false, &[fault]);
    }
    for chain in CHAINS {
        scenario(true, false, chain);
    }
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn abort_after_each_step_with_blank_and_no_old_roots() {
    if tabula_testkit::skip_unless(
        "abort_after_each_step_with_blank_and_no_old_roots",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    for fault in [
        "mounted",
        "created",
        "exchanged",
        "nested-destroyed:1",
        "nested-destroyed:2",
        "archived",
    ] {
        scenario(false, true, &[fault]);
    }
    // Without oldRoots a pruning run mounts and stops there.
    scenario(false, true, &["prune:mounted"]);
    for chain in CHAINS
        .iter()
        .filter(|c| !c.iter().any(|f| f.starts_with("prune:")))
    {
        scenario(false, true, chain);
    }
}

/// Every step a Btrfs rotation can stop at is exercised above (the ZFS
/// steps, `zfs-*`, are exercised by the ZFS fault tests).
#[test]
fn every_step_is_tested() {
    for step in tabula_rollback::fault::STEPS
        .iter()
        .filter(|s| !s.starts_with("zfs-"))
    {
        let used = SINGLE
            .iter()
            .chain(CHAINS.iter().flat_map(|c| c.iter()))
            .any(|f| f.trim_start_matches("prune:").split(':').next() == Some(step));
        assert!(used, "no test aborts after {step}");
    }
}
