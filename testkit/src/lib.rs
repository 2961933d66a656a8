//! What tabula's tests share.
//!
//! # Skips are seen and counted
//!
//! A test that needs something of the machine (root, loop devices, a
//! program) asks [`skip_unless`] first. When everything is there it returns
//! `false` and the test runs. When something is missing:
//!
//! * with `CI=true` the test **fails**: our CI runs as root with every
//!   package installed, so nothing there has a reason to skip;
//! * otherwise the test returns early, says so on stderr, and appends one
//!   line to the file named by `TABULA_SKIP_LOG`; `dev/test.sh` sets it and
//!   prints the count and the lines in its summary.
//!
//! Tests that can never run in a build sandbox (the Nix check phase: no root,
//! no loop devices, no `/dev/kmsg`) are also marked
//! `#[ignore = "needs root: …"]`, so that a plain `cargo test` lists them as
//! ignored, with the reason; `dev/test.sh` runs them with `--include-ignored`.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]
// Test support panics by design: a test that cannot set up stops loudly.
#![allow(clippy::missing_panics_doc)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// Something a test needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0.
    Root,
    /// `/dev/loop-control`.
    LoopDevices,
    /// A program on `PATH`, with the Debian package that has it.
    Program {
        name: &'static str,
        package: &'static str,
    },
    /// A filesystem type the kernel knows (loaded with `modprobe` if needed).
    Filesystem(&'static str),
    /// `/dev/kmsg`, readable and writable.
    Kmsg,
}

impl Need {
    /// Why this need is not met here, or `None` when it is.
    #[must_use]
    pub fn missing(self) -> Option<String> {
        match self {
            Need::Root => (!rustix::process::geteuid().is_root())
                .then(|| "not running as root (run `sudo dev/test.sh`)".to_owned()),
            Need::LoopDevices => (!Path::new("/dev/loop-control").exists())
                .then(|| "no /dev/loop-control: loop devices are unavailable".to_owned()),
            Need::Program { name, package } => (!on_path(name))
                .then(|| format!("{name} is not installed (apt-get install {package})")),
            Need::Filesystem(fs) => {
                (!kernel_has(fs)).then(|| format!("the kernel has no {fs} (modprobe {fs} failed)"))
            }
            Need::Kmsg => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kmsg")
                .err()
                .map(|e| format!("cannot open /dev/kmsg: {e}")),
        }
    }
}

/// The needs of the suites that make real Btrfs filesystems on loop devices.
pub const BTRFS_ON_LOOP: &[Need] = &[
    Need::Root,
    Need::LoopDevices,
    Need::Program {
        name: "mkfs.btrfs",
        package: "btrfs-progs",
    },
    Need::Program {
        name: "btrfs",
        package: "btrfs-progs",
    },
    Need::Program {
        name: "losetup",
        package: "util-linux",
    },
    Need::Filesystem("btrfs"),
];

/// The first unmet need of `needs`, as a sentence.
#[must_use]
pub fn missing(needs: &[Need]) -> Option<String> {
    needs.iter().find_map(|n| n.missing())
}

/// Whether the test `test` must return now because `needs` are not met.
///
/// # Panics
///
/// When a need is missing and `CI=true`: a skip in CI is a failure.
#[must_use]
pub fn skip_unless(test: &str, needs: &[Need]) -> bool {
    let Some(why) = missing(needs) else {
        return false;
    };
    record_skip(test, &why);
    true
}

/// Records that `test` did not run because of `why` (see the module docs).
///
/// # Panics
///
/// When `CI=true`: a skip in CI is a failure.
pub fn record_skip(test: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run here: {why}; in CI (CI=true) a skipped test is a failure"
    );
    eprintln!("\n!!!!! SKIPPED {test}: {why} !!!!!\n");
    if let Some(log) = std::env::var_os("TABULA_SKIP_LOG") {
        let line = format!("{test}: {why}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "cannot record the skip in {}: {e}",
                Path::new(&log).display()
            );
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| rustix::fs::access(dir.join(program), rustix::fs::Access::EXEC_OK).is_ok())
    })
}

fn kernel_has(fs: &str) -> bool {
    let listed = |fs: &str| {
        std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|all| all.lines().any(|l| l.split_whitespace().last() == Some(fs)))
    };
    listed(fs)
        || (Command::new("modprobe")
            .arg(fs)
            .output()
            .is_ok_and(|o| o.status.success())
            && listed(fs))
}

/// A small deterministic random generator (xorshift64*): a failing case
/// reproduces from the seed the test prints.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift never leaves 0).
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// A seed from `TABULA_TEST_SEED`, or from the clock; printed either way.
    #[must_use]
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("TABULA_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
            });
        eprintln!("{test}: TABULA_TEST_SEED={seed}");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }

    /// One element of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Runs `program` with `args`; whether it ran and exited 0 (output dropped).
#[must_use]
pub fn run_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command that must succeed and returns its stdout; panics, naming
/// the command and its stderr, when it cannot run or fails.
#[allow(
    clippy::must_use_candidate,
    reason = "run for its effect as often as for its output"
)]
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_stays_below_its_bound() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn a_missing_program_is_named_with_its_package() {
        let why = Need::Program {
            name: "surely-not-a-program-tabula",
            package: "nothing",
        }
        .missing();
        assert_eq!(
            why.as_deref(),
            Some("surely-not-a-program-tabula is not installed (apt-get install nothing)")
        );
        assert_eq!(
            Need::Program {
                name: "sh",
                package: "dash"
            }
            .missing(),
            None
        );
    }
}
