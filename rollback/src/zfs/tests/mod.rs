//! ZFS rollback against `tests/fake-zfs`, a simulator that records every
//! argv: the exact command sequences of both modes, every refusal, and crash
//! recovery after a power cut at each step of a rotation. This module is
//! the fake pool every test shares; the tests are in the modules below.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tabula_config::{Keep, ZfsTarget};

use tabula_testkit::Need;

use super::{Ctx, ZfsError, run};
use crate::keep;

mod prune;
mod recovery;
mod refusals;
mod rotation;

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

/// A keep policy: `days`, `min`, `max` as the configuration has them.
const fn keep(days: Option<u32>, min: u32, max: Option<u32>) -> Keep {
    Keep { days, min, max }
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

/// The old roots in `rpool/local/old_roots`, by name.
fn old_roots(pool: &Pool) -> Vec<String> {
    pool.dump()
        .lines()
        .filter_map(|l| l.strip_prefix("rpool/local/old_roots/"))
        .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_owned()))
        .collect()
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

const EVERY_DAY_ONE: Keep = keep(Some(1), 1, Some(1));
