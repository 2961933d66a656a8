//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::{Error, Result};

pub const USAGE: &str = "\
usage: tabula [--config PATH] [--root DIR] COMMAND [OPTIONS]

Commands:
  diff [--json] [--nix] [--all] [--expand] [PATH...]
         what the next boot erases on the ephemeral root (only under PATHs
         when given); --all adds what NixOS regenerates at every boot;
         --expand lists the inside of new directories; --json for scripts;
         --nix prints a tabula.persist snippet for the PATHs (or the lost
         paths)
  roots [--json]
         the old roots, when each was archived, and what the keep policy
         does with each at the next boot
  restore PATH --from ROOT [--to storage|place] [--dry-run] [--force]
         copy PATH from an old root (read-only) into its storage (default)
         or back in place, with owner, mode, times and extended attributes
  adopt PATH [--dry-run] [--force]
         copy PATH from the ephemeral root into the storage, ready for the
         entry to add
  stray [--json]
         what the storages hold that no entry declares
  help, --help      this help
  version, --version

  --config PATH  the configuration (default /etc/tabula/config.json)
  --root DIR     the running system's root directory (default /)

Exit status: 0 done, 1 runtime failure, 2 usage or configuration error.
Manual: docs/cli.md.";

/// Options every command takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub config: PathBuf,
    pub root: PathBuf,
}

/// `tabula diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one field per independent command-line flag"
)]
pub struct DiffArgs {
    pub common: Common,
    pub json: bool,
    pub nix: bool,
    pub all: bool,
    pub expand: bool,
    /// Absolute paths on the running system to restrict the answer to.
    pub paths: Vec<Vec<u8>>,
}

/// `tabula roots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootsArgs {
    pub common: Common,
    pub json: bool,
}

/// `tabula restore` and `tabula adopt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    pub common: Common,
    pub path: Vec<u8>,
    /// `restore` only: the old root.
    pub from: String,
    pub to: crate::restore::To,
    pub dry_run: bool,
    pub force: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Diff(DiffArgs),
    Roots(RootsArgs),
    Restore(CopyArgs),
    Adopt(CopyArgs),
    Stray(RootsArgs),
    Help,
    Version,
}

/// Parses the arguments after the program name.
#[allow(
    clippy::too_many_lines,
    reason = "the whole grammar in one place: one pass over the arguments, then one match on the command"
)]
pub fn parse(args: Vec<OsString>) -> Result<Command> {
    use std::os::unix::ffi::OsStringExt;
    let mut common = Common {
        config: PathBuf::from(tabula_config::DEFAULT_PATH),
        root: PathBuf::from("/"),
    };
    let mut command: Option<String> = None;
    let (mut json, mut nix, mut all, mut expand) = (false, false, false, false);
    let (mut dry_run, mut force) = (false, false);
    let mut from: Option<String> = None;
    let mut to: Option<String> = None;
    let mut paths = Vec::new();
    let mut seen_config = false;
    let mut seen_root = false;
    let mut args = args.into_iter();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        let text = arg.to_str().map(str::to_owned);
        if only_paths || !text.as_deref().is_some_and(|t| t.starts_with('-')) {
            if command.is_none() {
                command = Some(text.ok_or_else(|| {
                    Error::usage(format!("unknown command {arg:?}; see tabula --help"))
                })?);
            } else {
                let bytes = arg.into_vec();
                if bytes.first() != Some(&b'/') {
                    return Err(Error::usage(format!(
                        "{:?} is not an absolute path; give paths as they are on the running system, such as /var/lib/foo",
                        String::from_utf8_lossy(&bytes)
                    )));
                }
                paths.push(bytes);
            }
            continue;
        }
        let text = text.unwrap_or_default();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(OsString::from(v))),
            _ => (text.clone(), None),
        };
        let mut value = |what: &str| -> Result<PathBuf> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::usage(format!("{name} needs a value: {name} {what}")))?;
            Ok(PathBuf::from(v))
        };
        match name.as_str() {
            "--" => only_paths = true,
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--config" if !seen_config => {
                common.config = value("PATH")?;
                seen_config = true;
            }
            "--root" if !seen_root => {
                common.root = value("DIR")?;
                seen_root = true;
            }
            "--config" | "--root" => {
                return Err(Error::usage(format!(
                    "{name} given twice; expected it at most once"
                )));
            }
            "--from" | "--to" => {
                let v = value(if name == "--from" {
                    "ROOT"
                } else {
                    "storage|place"
                })?;
                let v = v
                    .to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::usage(format!("{name} needs a UTF-8 value")))?;
                let slot = if name == "--from" { &mut from } else { &mut to };
                if slot.replace(v).is_some() {
                    return Err(Error::usage(format!(
                        "{name} given twice; expected it at most once"
                    )));
                }
            }
            "--dry-run" => dry_run = true,
            "--force" => force = true,
            "--json" => json = true,
            "--nix" => nix = true,
            "--all" => all = true,
            "--expand" => expand = true,
            _ => {
                return Err(Error::usage(format!(
                    "unknown option {text:?}; see tabula --help"
                )));
            }
        }
    }
    let flags_for = |cmd: &str, allowed: &[(&str, bool)]| -> Result<()> {
        for (flag, set) in [
            ("--json", json),
            ("--nix", nix),
            ("--all", all),
            ("--expand", expand),
        ] {
            if set && !allowed.iter().any(|(f, _)| *f == flag) {
                return Err(Error::usage(format!(
                    "{flag} does not apply to `tabula {cmd}`; see tabula --help"
                )));
            }
        }
        Ok(())
    };
    match command.as_deref() {
        None | Some("help") => Ok(Command::Help),
        Some("version") => Ok(Command::Version),
        Some(cmd)
            if (dry_run || force || from.is_some() || to.is_some())
                && !matches!(cmd, "restore" | "adopt") =>
        {
            Err(Error::usage(format!(
                "--dry-run, --force, --from and --to apply to tabula restore and adopt, not {cmd}"
            )))
        }
        Some("diff") => {
            if json && nix {
                return Err(Error::usage(
                    "--json and --nix are two different outputs; give one of them",
                ));
            }
            Ok(Command::Diff(DiffArgs {
                common,
                json,
                nix,
                all,
                expand,
                paths,
            }))
        }
        Some("roots") => {
            flags_for("roots", &[("--json", true)])?;
            if !paths.is_empty() {
                return Err(Error::usage("tabula roots takes no paths"));
            }
            Ok(Command::Roots(RootsArgs { common, json }))
        }
        Some(cmd @ ("restore" | "adopt")) => {
            flags_for(cmd, &[])?;
            let [path] = <[Vec<u8>; 1]>::try_from(paths).map_err(|_| {
                Error::usage(format!("tabula {cmd} takes one PATH, such as /var/lib/foo"))
            })?;
            let from = match (cmd, from) {
                ("restore", Some(f)) => f,
                ("restore", None) => {
                    return Err(Error::usage(
                        "tabula restore needs --from ROOT: an old root as `tabula roots` lists it",
                    ));
                }
                (_, Some(_)) => return Err(Error::usage("--from applies to tabula restore only")),
                (_, None) => String::new(),
            };
            let to = match (cmd, to.as_deref()) {
                (_, None | Some("storage")) => crate::restore::To::Storage,
                ("restore", Some("place")) => crate::restore::To::Place,
                (_, Some(other)) => {
                    return Err(Error::usage(format!(
                        "--to {other:?}: expected `storage` or `place` (tabula restore only)"
                    )));
                }
            };
            let args = CopyArgs {
                common,
                path,
                from,
                to,
                dry_run,
                force,
            };
            Ok(if cmd == "restore" {
                Command::Restore(args)
            } else {
                Command::Adopt(args)
            })
        }
        Some("stray") => {
            flags_for("stray", &[("--json", true)])?;
            if !paths.is_empty() {
                return Err(Error::usage("tabula stray takes no paths"));
            }
            Ok(Command::Stray(RootsArgs { common, json }))
        }
        Some(other) => Err(Error::usage(format!(
            "unknown command {other:?}; expected diff, roots, restore, adopt or stray (see tabula --help)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let Ok(Command::Diff(d)) =
            parse_str(&["--config", "/c.json", "diff", "--json", "--root=/r", "/var"])
        else {
            panic!("not a diff");
        };
        assert_eq!(d.common.config, PathBuf::from("/c.json"));
        assert_eq!(d.common.root, PathBuf::from("/r"));
        assert!(d.json && !d.nix);
        assert_eq!(d.paths, vec![b"/var".to_vec()]);
        assert_eq!(parse_str(&[]), Ok(Command::Help));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (args, says) in [
            (&["diff", "var"][..], "not an absolute path"),
            (&["diff", "--bogus"], "unknown option"),
            (&["frobnicate"], "unknown command"),
            (&["roots", "--nix"], "does not apply"),
            (&["diff", "--json", "--nix"], "give one of them"),
            (&["restore", "/var/lib/x"], "needs --from"),
            (&["restore", "/a", "/b", "--from", "r"], "takes one PATH"),
            (&["adopt", "/a", "--from", "r"], "restore only"),
            (
                &["restore", "/a", "--from", "r", "--to", "elsewhere"],
                "expected `storage` or `place`",
            ),
            (&["diff", "--dry-run"], "apply to tabula restore"),
            (&["--config"], "needs a value"),
            (&["--config", "/a", "--config", "/b", "diff"], "given twice"),
        ] {
            let e = parse_str(args).expect_err("must fail");
            assert_eq!(e.exit, crate::Exit::Usage);
            assert!(e.message.contains(says), "{args:?}: {}", e.message);
        }
    }
}
