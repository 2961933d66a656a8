//! The command line and the kernel command line.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
usage: tabula-rollback [--config PATH] [--dry-run] [--prune-only]
       tabula-rollback --check-config PATH

Rolls the root filesystem back, as configured in PATH (default
/etc/tabula/config.json). Meant to run in the initrd, before the root is
mounted. Old roots are pruned later, by --prune-only (tabula-prune.service),
unless the filesystem is short of space or holds too many of them.

  --config PATH  read the configuration from PATH
  --dry-run      print each action, one per line, and change nothing
  --prune-only   prune the old roots by the keep policy and do nothing else
                 (no rotation); meant for the booted system
  --check-config PATH
                 check everything the file alone decides, print one line
                 per problem on stderr, exit 0 (valid) or 2; touches
                 nothing else (no device, no kernel log)
  --help         print this help and exit
  --version      print the version and exit

Kernel command line: tabula.rollback=0 skips the rollback,
tabula.rollback=dry-run makes it a dry run.
Exit status: 0 done (or skipped), 1 runtime failure, 2 usage or config error.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        config: PathBuf,
        dry_run: bool,
        /// `--prune-only`: prune the old roots, rotate nothing.
        prune_only: bool,
    },
    /// `--check-config PATH`: validate the file offline.
    CheckConfig {
        config: PathBuf,
    },
    Help,
    Version,
}

/// A usage error (exit 2), shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// An argument that is no option of this program (shown quoted).
    Unexpected(OsString),
    /// `option` came last, without its value.
    MissingValue { option: &'static str },
    /// `option` was given twice.
    Twice { option: &'static str },
    /// `--config` with an empty path.
    EmptyConfig,
    /// `--check-config` with another option.
    CheckConfigAlone,
    /// `tabula.rollback=` on the kernel command line with a value it does
    /// not know.
    KernelValue { value: String },
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::Unexpected(arg) => match arg.to_str() {
                Some(text) => write!(f, "unexpected argument {text:?}; see --help"),
                None => write!(f, "unexpected argument {arg:?}; see --help"),
            },
            UsageError::MissingValue { option } => {
                write!(f, "{option} needs a value: {option} PATH")
            }
            UsageError::Twice { option } => {
                write!(f, "{option} given twice; expected it at most once")
            }
            UsageError::EmptyConfig => f.write_str("--config needs a non-empty PATH"),
            UsageError::CheckConfigAlone => f.write_str(
                "--check-config PATH takes no other option; run the check and the rollback separately",
            ),
            UsageError::KernelValue { value } => write!(
                f,
                "kernel parameter tabula.rollback={value:?} is not understood; expected tabula.rollback=0 (skip), =1 or =dry-run"
            ),
        }
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut config: Option<PathBuf> = None;
    let mut dry_run = false;
    let mut prune_only = false;
    let mut check: Option<PathBuf> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(UsageError::Unexpected(arg));
        };
        let value = match text {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--dry-run" => {
                dry_run = true;
                continue;
            }
            "--prune-only" => {
                prune_only = true;
                continue;
            }
            "--check-config" => {
                let Some(v) = args.next().filter(|v| !v.is_empty()) else {
                    return Err(UsageError::MissingValue {
                        option: "--check-config",
                    });
                };
                if check.replace(PathBuf::from(v)).is_some() {
                    return Err(UsageError::Twice {
                        option: "--check-config",
                    });
                }
                continue;
            }
            "--config" => match args.next() {
                Some(v) => v,
                None => return Err(UsageError::MissingValue { option: "--config" }),
            },
            _ => match text.strip_prefix("--config=") {
                Some(v) => OsString::from(v),
                None => return Err(UsageError::Unexpected(arg)),
            },
        };
        if config.is_some() {
            return Err(UsageError::Twice { option: "--config" });
        }
        if value.is_empty() {
            return Err(UsageError::EmptyConfig);
        }
        config = Some(PathBuf::from(value));
    }
    if let Some(path) = check {
        if dry_run || prune_only || config.is_some() {
            return Err(UsageError::CheckConfigAlone);
        }
        return Ok(Command::CheckConfig { config: path });
    }
    Ok(Command::Run {
        config: config.unwrap_or_else(|| PathBuf::from(tabula_config::DEFAULT_PATH)),
        dry_run,
        prune_only,
    })
}

/// `--check-config PATH`: everything the file alone decides, one line per
/// problem on `err`. Reads the file and nothing else (no device, no kernel
/// log). Returns the exit status: [`crate::Exit::Ok`] valid, [`crate::Exit::Usage`] not.
pub fn check_config(path: &Path, err: &mut impl Write) -> crate::Exit {
    let problems = tabula_config::check_file(path);
    for p in &problems {
        let _ = writeln!(err, "tabula-rollback: {p}");
    }
    if problems.is_empty() {
        crate::Exit::Ok
    } else {
        crate::Exit::Usage
    }
}

/// What the kernel command line says about tabula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Nothing, or `tabula.rollback=1`.
    Normal,
    /// `tabula.rollback=0`: do nothing this boot.
    Skip,
    /// `tabula.rollback=dry-run`.
    DryRun,
}

/// The kernel's own splitting of its command line: words separated by
/// spaces, where double quotes group (and are removed).
fn kernel_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Reads `tabula.rollback=` from a kernel command line (the last one wins,
/// as for the kernel's own parameters). `Err` names a value it does not know.
pub fn parse_cmdline(cmdline: &str) -> Result<Kernel, UsageError> {
    let mut result = Kernel::Normal;
    for word in kernel_words(cmdline) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.as_str(), None),
        };
        if key != "tabula.rollback" {
            continue;
        }
        result = match value {
            None | Some("1" | "yes" | "true" | "on") => Kernel::Normal,
            Some("0" | "no" | "false" | "off") => Kernel::Skip,
            Some("dry-run") => Kernel::DryRun,
            Some(other) => {
                return Err(UsageError::KernelValue {
                    value: other.to_owned(),
                });
            }
        };
    }
    Ok(result)
}

#[cfg(test)]
mod tests;
