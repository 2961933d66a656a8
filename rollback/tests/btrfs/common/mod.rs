//! What the integration tests share: real Btrfs filesystems on loop
//! devices ([`Image`], in `image.rs`), runs of the program, configurations.
//!
//! Each [`Image`] is a fresh sparse file formatted with `mkfs.btrfs` and
//! attached to a loop device; dropping it detaches everything. The tests
//! need root, loop devices and btrfs-progs: each is marked `#[ignore]` (a
//! build sandbox lists it as ignored) and starts with
//! `tabula_testkit::skip_unless(…, BTRFS_ON_LOOP)`, which says LOUDLY what is
//! missing, counts the skip, and fails under `CI=true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tabula_rollback::Exit;
use tabula_rollback::keep::timestamp_name;

mod image;

pub use image::Image;

pub const DAY: i64 = 86_400;

/// One test at a time touches the (process-global) logger.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use tabula_testkit::{run_ok, sh};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap())
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(PathBuf::from)
        .collect();
    v.sort();
    v.reverse();
    v
}

/// A configuration file for one Btrfs target: `@root` on `device`, plus the
/// keys in `extra` (each after a comma).
pub fn btrfs_config(dir: &Path, device: &str, extra: &str) -> PathBuf {
    one_target(
        dir,
        "config.json",
        device,
        &format!(r#""subvolume": "@root", "waitSeconds": 2{extra}"#),
    )
}

/// A configuration file `name` in `dir` with one Btrfs target on `device`
/// whose other keys are `keys` (JSON members, without braces).
pub fn one_target(dir: &Path, name: &str, device: &str, keys: &str) -> PathBuf {
    let p = dir.join(name);
    let text = format!(
        r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{device}", {keys}}}]}}"#
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Deterministic pseudo-random bytes, from the tests' one generator.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = tabula_testkit::Rng::new(seed);
    (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect()
}

/// Fills `@persist` with files of varied sizes; returns their hashes.
pub fn make_persist(img: &Image) -> BTreeMap<String, String> {
    img.subvol("@persist");
    for i in 0..20u64 {
        img.write(
            &format!("@persist/dir{}/file{i}", i % 4),
            &noise(i, (usize::try_from(i).unwrap() + 1) * 3001),
        );
    }
    img.tree("@persist")
}

/// Runs the program in this process against `img`, with `extra` arguments
/// after `--config CONFIG`, the kernel command line `cmdline` and the clock
/// at `at`; returns (exit status, log lines), and prints the log. Every run
/// leaves its mount point cleaned up: nothing is left in the run directory
/// but the record of what the boot archived (`this_boot`).
pub fn rollback(
    img: &Image,
    config: &Path,
    extra: &[&str],
    cmdline: &str,
    at: i64,
) -> (tabula_rollback::Exit, String) {
    let log = img.dir.path().join("kmsg.log");
    let cmd = img.dir.path().join("cmdline");
    std::fs::write(&log, "").unwrap();
    std::fs::write(&cmd, cmdline).unwrap();
    let env = tabula_rollback::Env {
        cmdline: cmd,
        kmsg: Some(log.clone()),
        run_dir: img.run_dir(),
        now: Some(at),
    };
    let mut args: Vec<std::ffi::OsString> = vec!["--config".into(), config.into()];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    let code = tabula_rollback::run(args, &env);
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("--- log (exit {code}):\n{text}---");
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

/// Runs the program where it must refuse: asserts exit status 1 and that
/// nothing on the disk changed; returns the log.
pub fn refused(img: &mut Image, config: &Path, extra: &[&str], at: i64) -> String {
    let before = img.full_listing();
    let (code, log) = rollback(img, config, extra, "", at);
    assert_eq!(code, Exit::Failure, "{log}");
    assert_eq!(img.full_listing(), before, "something changed: {log}");
    log
}

/// A boot (stage 1), then, when it succeeded, the pruning unit
/// (`--prune-only`), as a machine that reaches the booted system runs them.
/// Returns the first failing status (or 0) and both logs.
pub fn boot_and_prune(img: &Image, config: &Path, at: i64) -> (Exit, String) {
    let (code, log) = rollback(img, config, &[], "", at);
    if code != Exit::Ok {
        return (code, log);
    }
    let (code, pruned) = rollback(img, config, &["--prune-only"], "", at);
    (code, format!("{log}{pruned}"))
}

pub fn otime_name(img: &Image, rel: &str) -> String {
    let out = sh(
        "btrfs",
        &["subvolume", "show", img.path(rel).to_str().unwrap()],
    );
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Creation time:"))
        .expect("creation time")
        .trim()
        .to_owned();
    let secs = sh("date", &["-u", "-d", &line, "+%s"]);
    timestamp_name(secs.trim().parse().unwrap())
}

/// A configuration with two Btrfs targets, `(device, subvolume, oldRoots)`.
pub fn two_targets(img: &Image, a: (&str, &str, &str), b: (&str, &str, &str)) -> PathBuf {
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

/// Mounts subvolume `rel` of the image at a new directory `at` (in the
/// image's scratch directory); returns that directory.
pub fn mount_subvol(img: &Image, rel: &str, at: &str) -> PathBuf {
    let dir = img.dir.path().join(at);
    std::fs::create_dir(&dir).unwrap();
    sh(
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
