//! `tabula-rollback`: rolls the root filesystem back in stage 1 (the
//! initrd), before the root is mounted. `docs/rollback.md` is the manual;
//! this is its implementation.
//!
//! [`run`] is the whole program with everything it reads from the outside
//! world injectable (the configuration path comes from the arguments, the
//! rest from [`Env`]), so that tests run it against a temporary root.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]
// The error types name every failure; an `# Errors` section on each function
// returning one would repeat them.
#![allow(clippy::missing_errors_doc)]

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use tabula_config::RollbackTarget;

pub mod btrfs;
pub mod cli;
pub mod fault;
use tabula_btrfs::ioctl;
pub mod keep;
mod keep_report;
pub mod this_boot;
pub mod zfs;

/// The exit status: [`Exit::Ok`] done, or skipped by the kernel command
/// line; [`Exit::Failure`] a runtime failure (the initrd boots whatever root
/// exists); [`Exit::Usage`] a usage or configuration error, found before any
/// device is touched.
pub use tabula_runtime::Exit;

/// Why one target's run stopped: its backend's error, shown as that
/// backend's sentence.
#[derive(Debug)]
pub enum Error {
    Btrfs(btrfs::Error),
    Zfs(zfs::ZfsError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Btrfs(e) => e.fmt(f),
            Error::Zfs(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Btrfs(e) => Some(e),
            Error::Zfs(e) => Some(e),
        }
    }
}

impl From<btrfs::Error> for Error {
    fn from(e: btrfs::Error) -> Error {
        Error::Btrfs(e)
    }
}

impl From<zfs::ZfsError> for Error {
    fn from(e: zfs::ZfsError) -> Error {
        Error::Zfs(e)
    }
}

/// What a run of either backend needs besides its target.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The current time, Unix seconds (the keep policy only).
    pub now: i64,
    /// Print the actions instead of taking them.
    pub dry_run: bool,
    /// Where private mount points are made (`/run`; Btrfs only).
    pub run_dir: PathBuf,
    /// Which half of the work this run does.
    pub mode: Mode,
}

/// The two halves of the work (`docs/rollback.md`, "Two halves").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stage 1 (the initrd): the rotation only, a fresh root in place and
    /// the previous root archived; old roots are pruned only when the
    /// safety valve opens ([`valve`]).
    Boot,
    /// `--prune-only` (the booted system): the old roots are pruned by the
    /// keep policy, nothing else; the most recently archived one (the
    /// previous root of the current boot) is never pruned.
    PruneOnly,
}

/// When stage 1 prunes after all: the filesystem is short of space, or it
/// holds too many old roots. Both are constants, not configuration: they are
/// a guard against a machine that never reaches the booted system (where
/// `tabula-prune.service` prunes), not a policy; the keep policy is
/// `keep`, and it applies unchanged whichever half prunes.
pub mod valve {
    /// Stage 1 prunes when more dated old roots than this are found (the
    /// pinned ones, whose names are not timestamps, are never pruned and
    /// not counted). Far above what any keep policy leaves after a prune
    /// (`keep.min` defaults to 1, `keep.max` is what one sets it to): only
    /// a machine whose pruning unit has not run for 100 boots reaches it.
    pub const MAX_OLD_ROOTS: usize = 100;
    /// Stage 1 prunes when the space a new file could get is below this
    /// percentage of the filesystem's size…
    pub const LOW_SPACE_PERCENT: u64 = 10;
    /// … or below this many bytes, whichever is smaller (so that a 4 TB
    /// disk with 100 GB free is not "short").
    pub const LOW_SPACE_BYTES: u64 = 8 << 30;

    /// Whether `available` bytes out of `size` is short of space.
    #[must_use]
    pub fn low_space(available: u64, size: u64) -> bool {
        let threshold = (size / 100)
            .saturating_mul(LOW_SPACE_PERCENT)
            .min(LOW_SPACE_BYTES);
        available < threshold
    }

    /// Why stage 1 must prune, or `None` (the common case). `dated` is the
    /// number of dated old roots; `space` is (available, size) in bytes
    /// when known.
    #[must_use]
    pub fn reason(dated: usize, space: Option<(u64, u64)>) -> Option<String> {
        if dated > MAX_OLD_ROOTS {
            return Some(format!(
                "{dated} old roots, more than the cap of {MAX_OLD_ROOTS}"
            ));
        }
        match space {
            Some((available, size)) if low_space(available, size) => Some(format!(
                "short of space: {} MiB available of {} MiB (the valve opens below {LOW_SPACE_PERCENT}% or {} MiB, whichever is smaller)",
                available >> 20,
                size >> 20,
                LOW_SPACE_BYTES >> 20
            )),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_valve_stays_shut_in_the_common_case() {
            assert_eq!(reason(0, Some((900 << 20, 1 << 30))), None);
            assert_eq!(reason(MAX_OLD_ROOTS, Some((900 << 20, 1 << 30))), None);
            assert_eq!(reason(40, None), None);
            // 4 TB with 100 GB free: above 8 GiB, not short.
            assert_eq!(reason(3, Some((100 << 30, 4 << 40))), None);
        }

        #[test]
        fn the_valve_opens_past_the_cap_or_short_of_space() {
            assert!(reason(MAX_OLD_ROOTS + 1, None).is_some());
            // 1 GiB, 50 MiB free: below 10%.
            assert!(reason(0, Some((50 << 20, 1 << 30))).is_some());
            // 4 TB, 4 GiB free: below 8 GiB.
            assert!(reason(0, Some((4 << 30, 4 << 40))).is_some());
            assert!(!low_space(0, 0));
        }
    }
}

/// What the program reads from the world besides its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The kernel command line (`/proc/cmdline`).
    pub cmdline: PathBuf,
    /// The kernel log (`/dev/kmsg`); `None` logs to stderr.
    pub kmsg: Option<PathBuf>,
    /// Where the private mount points are made (`/run`).
    pub run_dir: PathBuf,
    /// The clock override (`TABULA_NOW`, seconds since the epoch; tests only).
    pub now: Option<i64>,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            cmdline: PathBuf::from("/proc/cmdline"),
            kmsg: Some(PathBuf::from("/dev/kmsg")),
            run_dir: PathBuf::from("/run"),
            now: None,
        }
    }
}

impl Env {
    /// The environment of this process: the defaults, and `TABULA_NOW`.
    /// Builds with the `fault-injection` feature (tests only) also read
    /// `TABULA_CMDLINE`, `TABULA_KMSG` (empty: stderr) and `TABULA_RUN_DIR`.
    pub fn from_process() -> Result<Env, String> {
        let mut env = Env::default();
        if let Some(now) = std::env::var_os("TABULA_NOW") {
            let parsed = now.to_str().and_then(|s| s.parse::<i64>().ok());
            env.now = Some(parsed.ok_or_else(|| {
                format!(
                    "TABULA_NOW={now:?} is not a number of seconds since 1970; it is a test hook, unset it"
                )
            })?);
        }
        #[cfg(feature = "fault-injection")]
        {
            if let Some(p) = std::env::var_os("TABULA_CMDLINE") {
                env.cmdline = p.into();
            }
            if let Some(p) = std::env::var_os("TABULA_KMSG") {
                env.kmsg = (!p.is_empty()).then(|| p.into());
            }
            if let Some(p) = std::env::var_os("TABULA_RUN_DIR") {
                env.run_dir = p.into();
            }
        }
        Ok(env)
    }
}

/// The whole program: `args` are the arguments after the program name.
/// Returns the exit status.
pub fn run(args: impl IntoIterator<Item = OsString>, env: &Env) -> Exit {
    let (config_path, dry_run_arg, prune_only) = match cli::parse_args(args) {
        Ok(cli::Command::Run {
            config,
            dry_run,
            prune_only,
        }) => (config, dry_run, prune_only),
        Ok(cli::Command::CheckConfig { config }) => {
            return cli::check_config(&config, &mut std::io::stderr());
        }
        Ok(cli::Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{}", cli::USAGE);
            return Exit::Ok;
        }
        Ok(cli::Command::Version) => {
            let _ = writeln!(
                std::io::stdout(),
                "tabula-rollback {}",
                env!("CARGO_PKG_VERSION")
            );
            return Exit::Ok;
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "tabula-rollback: {message}");
            return Exit::Usage;
        }
    };
    tabula_runtime::log::init(
        "tabula-rollback",
        env.kmsg.clone().map_or(
            tabula_runtime::log::Target::Stderr,
            tabula_runtime::log::Target::Kmsg,
        ),
    );

    let kernel = match std::fs::read_to_string(&env.cmdline) {
        Ok(text) => cli::parse_cmdline(&text),
        Err(e) => {
            log::warn!(
                "cannot read {}: {e}; assuming no tabula.rollback= parameter",
                env.cmdline.display()
            );
            Ok(cli::Kernel::Normal)
        }
    };
    let dry_run = match kernel {
        Ok(cli::Kernel::Skip) => {
            if prune_only {
                log::info!("tabula.rollback=0 on the kernel command line: pruning skipped too");
            } else {
                log::info!("tabula.rollback=0 on the kernel command line: rollback skipped");
            }
            return Exit::Ok;
        }
        Ok(cli::Kernel::DryRun) => true,
        Ok(cli::Kernel::Normal) => dry_run_arg,
        Err(message) => {
            log::error!("{message}; nothing done");
            return Exit::Usage;
        }
    };

    let config = match tabula_config::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            log::error!("{e}; nothing done");
            return Exit::Usage;
        }
    };
    let now = env.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    if config.rollback.is_empty() {
        log::info!("{}: no rollback configured", config_path.display());
        return Exit::Ok;
    }
    if dry_run {
        log::info!("dry run: printing the actions, changing nothing");
    }
    let ctx = Ctx {
        now,
        dry_run,
        run_dir: env.run_dir.clone(),
        mode: if prune_only {
            Mode::PruneOnly
        } else {
            Mode::Boot
        },
    };
    run_targets(&config.rollback, &ctx)
}

/// Runs every target in turn; a failing one is left as it is and the
/// others still run. Exit 1 when any failed.
fn run_targets(targets: &[RollbackTarget], ctx: &Ctx) -> Exit {
    let prune_only = ctx.mode == Mode::PruneOnly;
    let mut unavailable = match btrfs::check_distinct(targets) {
        Ok(unavailable) => unavailable,
        Err(e) => {
            log::error!("{e}; stopped, nothing was rolled back");
            return Exit::Failure;
        }
    };
    // Each target is its own filesystem (check_distinct above): one that
    // fails is left as it is, and the others still run, so a missing
    // snapshot on one pool or a missing disk never leaves another root
    // un-rolled-back.
    let mut failed = 0_usize;
    for (i, target) in targets.iter().enumerate() {
        let result: Result<(), Error> = match target {
            RollbackTarget::Btrfs(b) => {
                log::info!("rollback[{i}]: Btrfs {} on {}", b.subvolume, b.device);
                match unavailable.remove(&i) {
                    Some(e) => Err(e.into()),
                    None => btrfs::run(b, ctx).map_err(Error::from),
                }
            }
            RollbackTarget::Zfs(z) => {
                log::info!("rollback[{i}]: ZFS {}@{}", z.dataset, z.snapshot);
                zfs::run(z, ctx).map_err(Error::from)
            }
        };
        if let Err(message) = result {
            failed += 1;
            if prune_only {
                log::error!(
                    "rollback[{i}]: {message}; stopped pruning this target, its old roots left are kept"
                );
            } else {
                log::error!(
                    "rollback[{i}]: {message}; stopped, this target's root is left as it is now"
                );
            }
        }
    }
    if failed > 0 {
        let total = targets.len();
        log::error!(
            "{failed} of {total} targets failed (see the lines above); the others were done"
        );
        return Exit::Failure;
    }
    log::info!("done");
    Exit::Ok
}
