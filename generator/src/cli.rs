//! The command line: what the arguments ask for, nothing else.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::plan::Stage;

pub const USAGE: &str = "\
usage: tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
       tabula-generator prepare [--initrd]
       tabula-generator sources
       tabula-generator --check-config PATH

As a systemd generator (the first form), writes the mount units of the
persisted paths and overlays configured in /etc/tabula/config.json into
NORMAL_DIR. `prepare` is the prepare step, run by tabula-prepare.service
(tabula-prepare-initrd.service with --initrd): it creates what the mounts
need and sets owners and modes. `sources`, run by tabula-sources.service
before it, creates the persisted directories' own ZFS datasets and Btrfs
subvolumes and sets their properties. `--check-config PATH` checks the file
alone, prints one line per problem and changes nothing.

  --help         print this help and exit
  --version      print the version and exit

Exit status: 0 done, 1 runtime failure, 2 usage or config error (with
rejected entries, the others are still emitted).";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// As systemd runs a generator: write units into `normal` (the early and
    /// late directories are accepted and left empty).
    Generate {
        normal: PathBuf,
    },
    /// The prepare step.
    Prepare {
        stage: Stage,
    },
    /// Check a configuration file and nothing else.
    CheckConfig {
        path: PathBuf,
    },
    /// The sources step: datasets and subvolumes (`tabula-sources.service`).
    Sources,
    Help,
    Version,
}

/// A command line that asks for nothing this program does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// No argument at all.
    Nothing,
    /// Output directories, but not one or three absolute ones.
    Directories(Vec<PathBuf>),
    /// `prepare` with something other than `--initrd`.
    Prepare(Vec<OsString>),
    /// `--check-config` without exactly one path.
    CheckConfig(Vec<OsString>),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Nothing => {
                write!(
                    f,
                    "usage: tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR]; see --help"
                )
            }
            UsageError::Directories(dirs) => write!(
                f,
                "expected one or three absolute output directories, got {dirs:?}; usage: tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR] | tabula-generator prepare [--initrd]"
            ),
            UsageError::Prepare(args) => write!(
                f,
                "unexpected arguments {args:?} after prepare; usage: tabula-generator prepare [--initrd]"
            ),
            UsageError::CheckConfig(args) => write!(
                f,
                "--check-config takes one path, got {args:?}; usage: tabula-generator --check-config PATH"
            ),
        }
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let args: Vec<OsString> = args.into_iter().collect();
    let Some((first, rest)) = args.split_first() else {
        return Err(UsageError::Nothing);
    };
    // systemd passes absolute directories, so a word is never one of them.
    match first.to_str() {
        Some("--help" | "-h") => return Ok(Command::Help),
        Some("--version" | "-V") => return Ok(Command::Version),
        Some("prepare") => {
            return match rest {
                [] => Ok(Command::Prepare {
                    stage: Stage::System,
                }),
                [flag] if flag == "--initrd" => Ok(Command::Prepare {
                    stage: Stage::Initrd,
                }),
                _ => Err(UsageError::Prepare(rest.to_vec())),
            };
        }
        Some("sources") if rest.is_empty() => return Ok(Command::Sources),
        Some("--check-config") => {
            return match rest {
                [path] if !path.is_empty() => Ok(Command::CheckConfig { path: path.into() }),
                _ => Err(UsageError::CheckConfig(rest.to_vec())),
            };
        }
        _ => {}
    }
    let dirs: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
    if !(dirs.len() == 1 || dirs.len() == 3) || dirs.iter().any(|d| !d.is_absolute()) {
        return Err(UsageError::Directories(dirs));
    }
    Ok(Command::Generate {
        normal: dirs[0].clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Command, UsageError> {
        parse_args(list.iter().map(OsString::from))
    }

    #[test]
    fn each_form_of_the_command_line_is_understood() {
        let generate = Ok(Command::Generate {
            normal: "/run/systemd/generator".into(),
        });
        assert_eq!(parse(&["/run/systemd/generator"]), generate);
        assert_eq!(
            parse(&["/run/systemd/generator", "/run/e", "/run/l"]),
            generate
        );
        assert_eq!(
            parse(&["prepare"]),
            Ok(Command::Prepare {
                stage: Stage::System
            })
        );
        assert_eq!(
            parse(&["prepare", "--initrd"]),
            Ok(Command::Prepare {
                stage: Stage::Initrd
            })
        );
        assert_eq!(
            parse(&["--check-config", "rel.json"]),
            Ok(Command::CheckConfig {
                path: "rel.json".into()
            })
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
    }

    #[test]
    fn a_command_line_that_asks_for_nothing_we_do_is_a_usage_error() {
        assert_eq!(parse(&[]), Err(UsageError::Nothing));
        for dirs in [
            &["/a", "/b"][..],
            &["relative"],
            &["/a", "/b", "c"],
            &["/a"; 4],
        ] {
            assert!(
                matches!(parse(dirs), Err(UsageError::Directories(_))),
                "{dirs:?}"
            );
        }
        for args in [&["prepare", "--initrd", "x"][..], &["prepare", "--intird"]] {
            assert!(
                matches!(parse(args), Err(UsageError::Prepare(_))),
                "{args:?}"
            );
        }
        for args in [
            &["--check-config"][..],
            &["--check-config", ""],
            &["--check-config", "a", "b"],
        ] {
            assert!(
                matches!(parse(args), Err(UsageError::CheckConfig(_))),
                "{args:?}"
            );
        }
    }
}
