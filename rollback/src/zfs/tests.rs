//! ZFS rollback against `tests/fake-zfs`, a simulator that records every
//! argv: the exact command sequences of both modes, every refusal, and crash
//! recovery after a power cut at each step of a rotation. One file, longer
//! than the others: every test shares the fake pool set up at its top.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tabula_config::{Keep, ZfsTarget};

use tabula_testkit::Need;

use super::{Ctx, ZfsError, run};
use crate::keep;

const NOW: i64 = 1_795_219_200; // 2026-11-21T00:00:00Z
const DAY: i64 = 86_400;

struct Pool {
    dir: PathBuf,
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the fake needs: python3 on `PATH` (found there, never through
/// `/usr/bin/env`, which a build sandbox lacks).
const FAKE_ZFS: &[Need] = &[Need::Program {
    name: "python3",
    package: "python3",
}];

/// The absolute path of the python3 on `PATH`.
fn python3() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("python3 is not on PATH"))
}

/// Held for writing while a fake is written, for reading while one runs: a
/// program being written cannot be started (ETXTBSY), and a process forked
/// by another test thread at that moment would hold the file open for
/// writing until its `exec`.
static FORKS: RwLock<()> = RwLock::new(());

/// `tests/fake-zfs` with the absolute path of python3 as its first line, so
/// that it runs without `/usr/bin/env`; it keeps its state next to itself.
fn install_fake(dir: &Path) -> PathBuf {
    let _writing = FORKS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let source = format!("{}/tests/fake-zfs", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    let fake = dir.join("zfs");
    std::fs::write(&fake, format!("#!{}\n{body}", python3().display()))
        .unwrap_or_else(|e| panic!("{}: {e}", fake.display()));
    set_executable(&fake);
    fake
}

impl Pool {
    /// A pool `rpool` with `rpool/local/root` (mountpoint=legacy, one file
    /// written) and its `@blank`, created at `root_created`.
    fn new(root_created: i64) -> Pool {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tabula-fake-zfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let state = format!(
            r#"{{"clock": {root_created}, "mutations": 0,
              "datasets": {{
                "rpool": {{"creation": 1000, "origin": null, "props": {{}}}},
                "rpool/local": {{"creation": 1000, "origin": null, "props": {{"canmount": "off"}}}},
                "rpool/local/root": {{"creation": {root_created}, "origin": null,
                   "props": {{"mountpoint": "legacy", "com.sun:auto-snapshot": "false", "encryption": "aes-256-gcm"}}}},
                "rpool/safe": {{"creation": 1000, "origin": null, "props": {{}}}}
              }},
              "snapshots": {{"rpool/local/root@blank": {{"creation": {root_created}}}}}}}"#
        );
        std::fs::write(dir.join("state.json"), state).unwrap_or_else(|e| panic!("{e}"));
        install_fake(&dir);
        Pool { dir }
    }

    fn zfs(&self, args: &[&str]) -> String {
        let _running = FORKS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new(self.fake())
            .args(args)
            .env_remove("FAKE_ZFS_CRASH_AFTER")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.fake().display()));
        assert!(
            out.status.success(),
            "fake-zfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dump(&self) -> String {
        self.zfs(&["dump"])
    }

    /// Runs tabula's ZFS rollback with the fake on PATH-free absolute path.
    fn run(
        &self,
        target: &ZfsTarget,
        now: i64,
        dry_run: bool,
        crash_after: Option<u32>,
    ) -> Result<(), ZfsError> {
        self.run_mode(target, now, dry_run, crash_after, crate::Mode::Boot)
    }

    /// A boot (stage 1), then the pruning unit (`--prune-only`), as a
    /// machine that reaches the booted system runs them.
    fn boot_and_prune(&self, target: &ZfsTarget, now: i64) -> Result<(), ZfsError> {
        self.run(target, now, false, None)?;
        self.run_mode(target, now, false, None, crate::Mode::PruneOnly)
    }

    fn run_mode(
        &self,
        target: &ZfsTarget,
        now: i64,
        dry_run: bool,
        crash_after: Option<u32>,
        mode: crate::Mode,
    ) -> Result<(), ZfsError> {
        let _ = std::fs::remove_file(self.log());
        let crash = self.dir.join("crash-after");
        match crash_after {
            Some(n) => std::fs::write(&crash, n.to_string()).unwrap_or_else(|e| panic!("{e}")),
            None => {
                let _ = std::fs::remove_file(&crash);
            }
        }
        let _running = FORKS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let target = ZfsTarget {
            zfs_command: self.fake().display().to_string(),
            ..target.clone()
        };
        run(
            &target,
            &Ctx {
                now,
                dry_run,
                // The pool's own directory stands in for /run (what stage 1
                // records for the pruning half, see crate::this_boot).
                run_dir: self.dir.clone(),
                mode,
            },
        )
    }

    fn fake(&self) -> PathBuf {
        self.dir.join("zfs")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("argv.log")
    }

    /// Every command the last run issued, one per line, argv joined by spaces.
    fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| l.replace('\t', " "))
            .collect()
    }

    /// The commands of the last run that change the pool.
    fn mutations(&self) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| !c.starts_with("list ") && !c.starts_with("get "))
            .collect()
    }

    /// Sets the simulated clock: the next dataset or snapshot is created at `t + 60`.
    fn set_clock(&self, t: i64) {
        self.zfs(&["set-clock", &t.to_string()]);
    }
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn target(old_roots: Option<&str>, keep: Keep) -> ZfsTarget {
    ZfsTarget {
        dataset: "rpool/local/root".into(),
        snapshot: "blank".into(),
        old_roots: old_roots.map(str::to_owned),
        keep,
        zfs_command: String::new(),
    }
}

#[test]
fn rollback_mode_runs_exactly_rollback_r() {
    if tabula_testkit::skip_unless("rollback_mode_runs_exactly_rollback_r", FAKE_ZFS) {
        return;
    }
    let pool = Pool::new(NOW - DAY);
    pool.zfs(&["snapshot", "rpool/local/root@later"]);
    pool.run(&target(None, Keep::default()), NOW, false, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        pool.commands(),
        [
            "list -H -o name -t snapshot rpool/local/root@blank",
            "rollback -r rpool/local/root@blank",
        ]
    );
    let dump = pool.dump();
    assert!(dump.contains("rpool/local/root origin=- props=com.sun:auto-snapshot=false,encryption=aes-256-gcm,mountpoint=legacy rolled_back=1"), "{dump}");
    assert!(!dump.contains("@later"), "{dump}");
}

#[test]
fn a_missing_snapshot_is_refused_and_nothing_changes() {
    if tabula_testkit::skip_unless(
        "a_missing_snapshot_is_refused_and_nothing_changes",
        FAKE_ZFS,
    ) {
        return;
    }
    for old_roots in [None, Some("rpool/local/old_roots")] {
        let pool = Pool::new(NOW - DAY);
        pool.zfs(&["destroy", "rpool/local/root@blank"]);
        let before = pool.dump();
        let err = pool
            .run(&target(old_roots, Keep::default()), NOW, false, None)
            .err();
        assert!(
            matches!(&err, Some(ZfsError::SnapshotMissing { snapshot }) if snapshot == "rpool/local/root@blank"),
            "{err:?}"
        );
        assert_eq!(pool.mutations(), Vec::<String>::new());
        assert_eq!(pool.dump(), before);
    }
}

#[test]
fn keep_previous_runs_the_documented_sequence() {
    if tabula_testkit::skip_unless("keep_previous_runs_the_documented_sequence", FAKE_ZFS) {
        return;
    }
    let created = NOW - DAY;
    let pool = Pool::new(created);
    let name = keep::timestamp_name(created);
    pool.run(
        &target(Some("rpool/local/old_roots"), Keep::default()),
        NOW,
        false,
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let old = format!("rpool/local/old_roots/{name}");
    assert_eq!(
        pool.mutations(),
        [
            "create -o canmount=off -o mountpoint=none rpool/local/old_roots".to_owned(),
            "clone -o tabula:role=new-root -o com.sun:auto-snapshot=false -o mountpoint=legacy rpool/local/root@blank rpool/local/root.tabula-new".to_owned(),
            format!("rename rpool/local/root {old}"),
            "rename rpool/local/root.tabula-new rpool/local/root".to_owned(),
            format!("set canmount=noauto {old}"),
            "promote rpool/local/root".to_owned(),
            "inherit tabula:role rpool/local/root".to_owned(),
        ]
    );
    let dump = pool.dump();
    assert!(dump.contains(&format!("{old} origin=rpool/local/root@blank props=canmount=noauto,com.sun:auto-snapshot=false,encryption=aes-256-gcm,mountpoint=legacy")), "{dump}");
    assert!(dump.contains("rpool/local/root origin=- props=com.sun:auto-snapshot=false,mountpoint=legacy rolled_back=0"), "{dump}");
    assert!(dump.contains("rpool/local/root@blank"), "{dump}");
}

/// The state after a finished rotation: the root owns its snapshot, is not a
/// clone, carries no mark, no temporary dataset is left, and the old roots
/// are `want` (in order).
fn assert_settled(pool: &Pool, want: &[String]) {
    let dump = pool.dump();
    assert!(
        dump.contains(
            "rpool/local/root origin=- props=com.sun:auto-snapshot=false,mountpoint=legacy "
        ),
        "{dump}"
    );
    assert!(
        dump.lines().any(|l| l == "rpool/local/root@blank"),
        "{dump}"
    );
    assert!(!dump.contains("tabula-new"), "{dump}");
    assert!(!dump.contains("tabula:role"), "{dump}");
    let old: Vec<String> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("rpool/local/old_roots/"))
        .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_owned()))
        .collect();
    assert_eq!(old, want, "{dump}");
}

#[test]
fn rotations_accumulate_and_are_pruned() {
    if tabula_testkit::skip_unless("rotations_accumulate_and_are_pruned", FAKE_ZFS) {
        return;
    }
    // Ten boots, a day apart; keep 30 days but at most 4.
    let pool = Pool::new(NOW - 20 * DAY);
    let keep_policy = Keep {
        days: Some(30),
        min: 1,
        max: Some(4),
    };
    for boot in 1..=10 {
        // Each boot's rotation creates the next root at `booted`.
        let booted = NOW - 20 * DAY + boot * DAY;
        pool.set_clock(booted - 60);
        pool.boot_and_prune(&target(Some("rpool/local/old_roots"), keep_policy), booted)
            .unwrap_or_else(|e| panic!("boot {boot}: {e}"));
    }
    let dump = pool.dump();
    let olds: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("rpool/local/old_roots/"))
        .collect();
    let want: Vec<String> = (6..=9)
        .map(|b| keep::timestamp_name(NOW - 20 * DAY + b * DAY))
        .collect();
    let got: Vec<&str> = olds
        .iter()
        .filter_map(|l| l.split(' ').next())
        .filter_map(|n| n.rsplit('/').next())
        .collect();
    assert_eq!(got, want, "{dump}");
    let last = pool.mutations();
    assert!(
        last.iter()
            .any(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{last:?}"
    );
    assert!(!last.iter().any(|c| c.starts_with("create")), "{last:?}");
}

#[test]
fn a_power_cut_at_every_step_is_recovered() {
    if tabula_testkit::skip_unless("a_power_cut_at_every_step_is_recovered", FAKE_ZFS) {
        return;
    }
    let created = NOW - 3 * DAY;
    let name = keep::timestamp_name(created);
    let old_roots = Some("rpool/local/old_roots");
    // Seven pool changes make a first rotation (see the sequence test).
    for cut in 0..7 {
        let pool = Pool::new(created);
        let err = pool.run(&target(old_roots, Keep::default()), NOW, false, Some(cut));
        assert!(
            err.is_err(),
            "cut after {cut} changes, yet the run succeeded"
        );
        pool.run(&target(old_roots, Keep::default()), NOW, false, None)
            .unwrap_or_else(|e| {
                panic!("run after a cut after {cut} changes: {e}\n{}", pool.dump())
            });
        assert_settled(&pool, std::slice::from_ref(&name));
        // And the run after that is an ordinary rotation.
        pool.set_clock(NOW - DAY);
        pool.run(&target(old_roots, Keep::default()), NOW, false, None)
            .unwrap_or_else(|e| panic!("second rotation after cut {cut}: {e}\n{}", pool.dump()));
        let dump = pool.dump();
        assert_eq!(
            dump.lines()
                .filter(|l| l.starts_with("rpool/local/old_roots/"))
                .count(),
            2,
            "{dump}"
        );
    }
}

#[test]
fn refusals_change_nothing() {
    type Setup = fn(&Pool);
    type Refusal = fn(&ZfsError) -> bool;
    if tabula_testkit::skip_unless("refusals_change_nothing", FAKE_ZFS) {
        return;
    }
    let keep_previous = target(Some("rpool/local/old_roots"), Keep::default());
    let cases: &[(&str, Setup, Refusal)] = &[
        (
            "foreign temp",
            |p| {
                p.zfs(&["create", "rpool/local/root.tabula-new"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: None }
                    if dataset == "rpool/local/root.tabula-new")
            },
        ),
        (
            "child dataset",
            |p| {
                p.zfs(&["create", "rpool/local/root/var"]);
            },
            |e| {
                matches!(e, ZfsError::ChildDatasets { root, children }
                    if root == "rpool/local/root" && children == &["rpool/local/root/var"])
            },
        ),
        (
            "no root",
            |p| {
                p.zfs(&["destroy", "-r", "rpool/local/root"]);
            },
            |e| {
                matches!(e, ZfsError::RootMissing { root, temp }
                    if root == "rpool/local/root" && temp == "rpool/local/root.tabula-new")
            },
        ),
        (
            "unmarked clone of @blank, written to",
            |p| {
                p.zfs(&[
                    "clone",
                    "rpool/local/root@blank",
                    "rpool/local/root.tabula-new",
                ]);
                p.zfs(&["write", "rpool/local/root.tabula-new", "precious"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: Some(snapshot) }
                    if dataset == "rpool/local/root.tabula-new" && snapshot == "rpool/local/root@blank")
            },
        ),
        (
            "unmarked clone of another snapshot",
            |p| {
                p.zfs(&["snapshot", "rpool/safe@mine"]);
                p.zfs(&["clone", "rpool/safe@mine", "rpool/local/root.tabula-new"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: None }
                    if dataset == "rpool/local/root.tabula-new")
            },
        ),
    ];
    for (what, setup, refusal) in cases {
        let pool = Pool::new(NOW - DAY);
        setup(&pool);
        let before = pool.dump();
        let err = pool.run(&keep_previous, NOW, false, None).err();
        assert!(err.as_ref().is_some_and(refusal), "{what}: {err:?}");
        assert_eq!(pool.mutations(), Vec::<String>::new(), "{what}");
        assert_eq!(pool.dump(), before, "{what}");
    }
}

#[test]
fn a_clone_torn_by_a_power_cut_is_recovered() {
    if tabula_testkit::skip_unless("a_clone_torn_by_a_power_cut_is_recovered", FAKE_ZFS) {
        return;
    }
    // `zfs clone -o` creates the clone, then sets its properties: a power
    // cut between the two leaves an unmarked, empty clone of @blank.
    let pool = Pool::new(NOW - DAY);
    pool.zfs(&[
        "clone",
        "rpool/local/root@blank",
        "rpool/local/root.tabula-new",
    ]);
    pool.run(
        &target(Some("rpool/local/old_roots"), Keep::default()),
        NOW,
        false,
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.mutations()[0], "destroy rpool/local/root.tabula-new");
    assert_settled(&pool, &[keep::timestamp_name(NOW - DAY)]);
}

#[test]
fn a_missing_zfs_program_is_named() {
    let t = ZfsTarget {
        zfs_command: "/nonexistent/zfs".into(),
        ..target(None, Keep::default())
    };
    let err = run(
        &t,
        &Ctx {
            now: NOW,
            dry_run: false,
            run_dir: std::env::temp_dir(),
            mode: crate::Mode::Boot,
        },
    )
    .err();
    assert!(
        matches!(&err, Some(ZfsError::Spawn { command, .. }) if command == "/nonexistent/zfs"),
        "{err:?}"
    );
}

#[test]
fn dry_run_changes_nothing() {
    if tabula_testkit::skip_unless("dry_run_changes_nothing", FAKE_ZFS) {
        return;
    }
    for old_roots in [None, Some("rpool/local/old_roots")] {
        let pool = Pool::new(NOW - DAY);
        let before = pool.dump();
        pool.run(&target(old_roots, Keep::default()), NOW, true, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pool.mutations(), Vec::<String>::new());
        assert_eq!(pool.dump(), before);
    }
}

#[test]
fn a_prune_blocked_by_a_dependent_clone_stops_with_the_reason() {
    if tabula_testkit::skip_unless(
        "a_prune_blocked_by_a_dependent_clone_stops_with_the_reason",
        FAKE_ZFS,
    ) {
        return;
    }
    let pool = Pool::new(NOW - 90 * DAY);
    let t = target(
        Some("rpool/local/old_roots"),
        Keep {
            days: Some(30),
            min: 0,
            max: None,
        },
    );
    pool.run(&t, NOW - 89 * DAY, false, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let old = format!(
        "rpool/local/old_roots/{}",
        keep::timestamp_name(NOW - 90 * DAY)
    );
    pool.zfs(&["snapshot", &format!("{old}@mine")]);
    pool.zfs(&["clone", &format!("{old}@mine"), "rpool/safe/rescued"]);
    pool.set_clock(NOW - DAY);
    let err = pool.boot_and_prune(&t, NOW).err();
    assert!(
        matches!(&err, Some(ZfsError::Failed { argv, stderr, .. })
            if *argv == format!("zfs destroy -r {old}") && stderr.contains("dependent clones")),
        "{err:?}"
    );
    assert!(pool.dump().contains("rpool/safe/rescued"));
}

/// The old roots in `rpool/local/old_roots`, by name.
fn old_roots(pool: &Pool) -> Vec<String> {
    pool.dump()
        .lines()
        .filter_map(|l| l.strip_prefix("rpool/local/old_roots/"))
        .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_owned()))
        .collect()
}

#[test]
fn a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever() {
    if tabula_testkit::skip_unless(
        "a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever",
        FAKE_ZFS,
    ) {
        return;
    }
    // A boot whose clock was a year ahead created the root that the next
    // boot archived: its name lies in the future, but it was archived first.
    let future = NOW + 365 * DAY;
    let pool = Pool::new(future);
    let policy = Keep {
        days: Some(30),
        min: 1,
        max: Some(1),
    };
    let old = Some("rpool/local/old_roots");
    pool.set_clock(NOW - 2 * DAY);
    pool.run(&target(old, policy), NOW - 2 * DAY, false, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old_roots(&pool), [keep::timestamp_name(future)]);
    // The next boots, with a good clock: each keeps the root it archived
    // (the most recent), and the future-stamped one goes.
    for boot in [NOW - DAY, NOW] {
        pool.set_clock(boot);
        pool.boot_and_prune(&target(old, policy), boot)
            .unwrap_or_else(|e| panic!("{e}"));
        let left = old_roots(&pool);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_ne!(left[0], keep::timestamp_name(future), "{left:?}");
    }
}

#[test]
fn the_root_archived_by_a_run_is_never_pruned_by_it() {
    if tabula_testkit::skip_unless("the_root_archived_by_a_run_is_never_pruned_by_it", FAKE_ZFS) {
        return;
    }
    // The root was stamped by a clock 400 days behind; keep 30 days, min 0.
    let pool = Pool::new(NOW - 400 * DAY);
    let policy = Keep {
        days: Some(30),
        min: 0,
        max: None,
    };
    pool.run(
        &target(Some("rpool/local/old_roots"), policy),
        NOW,
        false,
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        old_roots(&pool),
        [keep::timestamp_name(NOW - 400 * DAY)],
        "{}",
        pool.dump()
    );
}

/// Boots a pool `n` times, a day apart, without the pruning unit.
fn boots_without_pruning(pool: &Pool, t: &ZfsTarget, first: i64, n: i64) {
    for boot in 1..=n {
        let booted = first + boot * DAY;
        pool.set_clock(booted - 60);
        pool.run(t, booted, false, None)
            .unwrap_or_else(|e| panic!("boot {boot}: {e}"));
        assert!(
            !pool.mutations().iter().any(|c| c.starts_with("destroy")),
            "boot {boot} destroyed something: {:?}",
            pool.mutations()
        );
    }
}

const EVERY_DAY_ONE: Keep = Keep {
    days: Some(1),
    min: 1,
    max: Some(1),
};

#[test]
fn stage_one_never_prunes_in_the_common_case() {
    if tabula_testkit::skip_unless("stage_one_never_prunes_in_the_common_case", FAKE_ZFS) {
        return;
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 6);
    assert_eq!(old_roots(&pool).len(), 6);
}

#[test]
fn prune_only_applies_the_keep_policy_and_nothing_else() {
    if tabula_testkit::skip_unless(
        "prune_only_applies_the_keep_policy_and_nothing_else",
        FAKE_ZFS,
    ) {
        return;
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(
        Some("rpool/local/old_roots"),
        Keep {
            days: Some(30),
            min: 1,
            max: Some(2),
        },
    );
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 5);
    let before = old_roots(&pool);
    assert_eq!(before.len(), 5);
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)
        .unwrap_or_else(|e| panic!("{e}"));
    // The two most recently archived stay; the only changes are destroys
    // of the others.
    assert_eq!(old_roots(&pool), before[3..].to_vec());
    let muts = pool.mutations();
    assert_eq!(muts.len(), 3, "{muts:?}");
    assert!(
        muts.iter()
            .all(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{muts:?}"
    );
    // A second prune finds nothing to do.
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.mutations(), Vec::<String>::new());
}

#[test]
fn prune_only_never_prunes_the_root_archived_by_the_current_boot() {
    if tabula_testkit::skip_unless(
        "prune_only_never_prunes_the_root_archived_by_the_current_boot",
        FAKE_ZFS,
    ) {
        return;
    }
    // min 0, max 0 would let every old root go; the newest stays anyway.
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(
        Some("rpool/local/old_roots"),
        Keep {
            days: Some(0),
            min: 0,
            max: Some(0),
        },
    );
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 3);
    let newest = old_roots(&pool).pop();
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old_roots(&pool).pop(), newest);
    assert_eq!(old_roots(&pool).len(), 1);
}

#[test]
fn the_safety_valve_prunes_in_stage_one_when_the_pool_is_short_of_space() {
    if tabula_testkit::skip_unless(
        "the_safety_valve_prunes_in_stage_one_when_the_pool_is_short_of_space",
        FAKE_ZFS,
    ) {
        return;
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 3);
    // 50 MiB available of 1 GiB: below the 10% threshold.
    pool.zfs(&["set", "available=52428800", "rpool"]);
    pool.zfs(&["set", "used=1021313024", "rpool"]);
    pool.set_clock(NOW - 60);
    pool.run(&t, NOW, false, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        pool.mutations()
            .iter()
            .any(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{:?}",
        pool.mutations()
    );
    assert_eq!(old_roots(&pool).len(), 1);
}

#[test]
fn a_power_cut_during_the_pruning_run_is_recovered() {
    if tabula_testkit::skip_unless("a_power_cut_during_the_pruning_run_is_recovered", FAKE_ZFS) {
        return;
    }
    // Four boots leave four old roots; the pruning run destroys three, and
    // is cut before each of its destroys in turn.
    for cut in 0..3 {
        let pool = Pool::new(NOW - 20 * DAY);
        let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
        boots_without_pruning(&pool, &t, NOW - 20 * DAY, 4);
        let err = pool.run_mode(&t, NOW, false, Some(cut), crate::Mode::PruneOnly);
        assert!(
            err.is_err(),
            "cut after {cut} changes, yet the prune succeeded"
        );
        // Whatever the cut left, the newest old root is there.
        let left = old_roots(&pool);
        assert_eq!(
            left.last(),
            Some(&keep::timestamp_name(NOW - 20 * DAY + 3 * DAY)),
            "cut {cut}: {left:?}"
        );
        // The next boot and its pruning run settle it.
        pool.set_clock(NOW - 60);
        pool.boot_and_prune(&t, NOW)
            .unwrap_or_else(|e| panic!("after cut {cut}: {e}\n{}", pool.dump()));
        assert_eq!(old_roots(&pool).len(), 1, "cut {cut}: {}", pool.dump());
        assert!(pool.dump().contains("rpool/local/root "), "{}", pool.dump());
    }
}

#[test]
fn a_written_clone_at_the_reserved_name_is_refused_saying_how_to_tell_a_torn_one() {
    let err = ZfsError::NotMadeByTabula {
        dataset: "rpool/local/root.tabula-new".into(),
        clone_of: Some("rpool/local/root@blank".into()),
    };
    assert_eq!(
        err.to_string(),
        "rpool/local/root.tabula-new exists but was not made by tabula (tabula:role is not new-root); \
         nothing was changed. It is a clone of rpool/local/root@blank, as a power cut during `zfs clone` \
         leaves one, but something was written to it: compare it with \
         `zfs diff rpool/local/root@blank rpool/local/root.tabula-new` and, if nothing of yours is in it, \
         `zfs destroy rpool/local/root.tabula-new`"
    );
    let err = ZfsError::NotMadeByTabula {
        dataset: "rpool/local/root.tabula-new".into(),
        clone_of: None,
    };
    assert!(
        err.to_string()
            .ends_with("nothing was changed. Rename or destroy it yourself"),
        "{err}"
    );
}
