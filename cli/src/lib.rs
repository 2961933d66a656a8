//! `tabula`, the user-facing command: what the next boot erases on an
//! ephemeral root (`diff`) and which old roots exist (`roots`).
//! `docs/cli.md` is the manual; this is its implementation.
//!
//! [`run`] is the whole program; what it reads of the running system (the
//! root directory, the mount table, the clock, whether to colour) comes
//! from [`Env`], so that tests point it at a root they built.

#![warn(clippy::pedantic)]
// The pedantic lints that do not fit this crate, each for a reason:
#![allow(
    // Every error is an `Error` whose message names the path, the value and
    // what to do; an `# Errors` section on each function would repeat that.
    clippy::missing_errors_doc,
    // The library is the body of the `tabula` binary, which uses every
    // result; `#[must_use]` on each function would be noise.
    clippy::must_use_candidate
)]

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

pub mod args;
pub mod btrfs;
pub mod classify;
pub mod copy;
pub mod diff;
pub mod mounts;
pub mod output;
pub mod restore;
pub mod roots;
pub mod tmpfiles;
pub mod walk;
pub mod zfs;

pub use args::{Command, DiffArgs};

/// The exit status, shared by every tabula program: `Ok` (0), `Failure`
/// (1: a device, a mount, a command failed), `Usage` (2: bad arguments or
/// configuration).
pub use tabula_runtime::Exit;

/// What the program reads of the running system besides its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The mount table (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
    /// The clock (`TABULA_NOW`, seconds since the epoch; tests only).
    pub now: Option<i64>,
    /// Colour the human output: stdout is a terminal and `NO_COLOR` is
    /// unset or empty.
    pub color: bool,
}

impl Env {
    /// The environment of this process.
    pub fn from_process() -> Env {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").map(|v| v.to_string_lossy().into_owned());
        Env {
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            now: std::env::var("TABULA_NOW")
                .ok()
                .and_then(|s| s.parse().ok()),
            color: color_wanted(std::io::stdout().is_terminal(), no_color.as_deref()),
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set to something
/// (<https://no-color.org>).
pub fn color_wanted(terminal: bool, no_color: Option<&str>) -> bool {
    terminal && no_color.is_none_or(str::is_empty)
}

/// A failure, with the exit status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub exit: Exit,
    pub message: String,
}

impl Error {
    /// A runtime failure (exit 1).
    pub fn runtime(message: impl Into<String>) -> Error {
        Error {
            exit: Exit::Failure,
            message: message.into(),
        }
    }
    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs `tabula` with `args` (without the program name); returns the exit
/// status.
pub fn run(args: Vec<OsString>, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let result = args::parse(args).and_then(|cmd| dispatch(cmd, env, out));
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            let _ = writeln!(err, "tabula: {}", e.message);
            e.exit
        }
    }
}

fn dispatch(cmd: Command, env: &Env, out: &mut dyn Write) -> Result<()> {
    let written = match cmd {
        Command::Help => writeln!(out, "{}", args::USAGE),
        Command::Version => writeln!(out, "tabula {}", env!("CARGO_PKG_VERSION")),
        Command::Diff(d) => {
            let config = load(&d.common.config)?;
            let report = diff::diff(&config, &d.common.root, env)?;
            return output::print(&report, &d, env, out)
                .map_err(|e| Error::runtime(format!("cannot write the output: {e}")));
        }
        Command::Restore(c) => {
            let config = load(&c.common.config)?;
            let opts = copy_options(&c);
            return restore::restore(&config, &c.common.root, &c.path, &c.from, c.to, opts, out);
        }
        Command::Adopt(c) => {
            let config = load(&c.common.config)?;
            return restore::adopt(&config, &c.common.root, &c.path, copy_options(&c), out);
        }
        Command::Stray(s) => {
            let config = load(&s.common.config)?;
            let strays = restore::stray(&config, &s.common.root)?;
            return restore::print_stray(&strays, s.json, out)
                .map_err(|e| Error::runtime(format!("cannot write the output: {e}")));
        }
        Command::Roots(r) => {
            let config = load(&r.common.config)?;
            let roots = roots::list(&config, env)?;
            return roots::print(&roots, r.json, out)
                .map_err(|e| Error::runtime(format!("cannot write the output: {e}")));
        }
    };
    written.map_err(|e| Error::runtime(format!("cannot write the output: {e}")))
}

fn copy_options(c: &args::CopyArgs) -> copy::Options {
    use std::io::IsTerminal;
    copy::Options {
        dry_run: c.dry_run,
        force: c.force,
        one_filesystem: false,
        progress: std::io::stderr().is_terminal(),
    }
}

fn load(path: &std::path::Path) -> Result<tabula_config::Config> {
    tabula_config::load(path).map_err(|e| Error::usage(e.to_string()))
}
