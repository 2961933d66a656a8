//! Running the `zfs` program: argument vectors, never a shell; read-only
//! queries also in a dry run, changes logged first and printed instead in a
//! dry run.

use std::process::Command;

use log::{info, warn};

use super::{Result, ZfsError};

pub(super) struct Zfs<'a> {
    pub(super) command: &'a str,
    pub(super) dry_run: bool,
}

impl Zfs<'_> {
    pub(super) fn show(args: &[&str]) -> String {
        let mut s = String::from("zfs");
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    pub(super) fn output(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new(self.command)
            .args(args)
            .env("ZFS_COLOR", "0")
            .output()
            .map_err(|error| ZfsError::Spawn {
                command: self.command.to_owned(),
                error,
            })
    }

    /// Runs a read-only command, also in dry-run mode; returns its stdout.
    pub(super) fn query(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            return Err(Self::failed(args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a command that changes the pool: logged first, printed instead
    /// in dry-run mode.
    pub(super) fn act(&self, args: &[&str]) -> Result<()> {
        let shown = Self::show(args);
        if self.dry_run {
            println!("dry-run: {shown}");
            info!("dry-run: would run {shown}");
            return Ok(());
        }
        info!("running {shown}");
        let out = self.output(args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Self::failed(args, &out))
        }
    }

    pub(super) fn failed(args: &[&str], out: &std::process::Output) -> ZfsError {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        warn!("{} failed: {}", Self::show(args), stderr.trim());
        ZfsError::Failed {
            argv: Self::show(args),
            status: out.status.to_string(),
            stderr,
        }
    }

    /// Whether a dataset or snapshot exists. Only "does not exist" counts as
    /// no; any other failure is an error, so doubt never reads as absence.
    pub(super) fn exists(&self, name: &str) -> Result<bool> {
        let kind = if name.contains('@') {
            "snapshot"
        } else {
            "filesystem,volume"
        };
        let args = ["list", "-H", "-o", "name", "-t", kind, name];
        let out = self.output(&args)?;
        if out.status.success() {
            return Ok(true);
        }
        if String::from_utf8_lossy(&out.stderr).contains("does not exist") {
            return Ok(false);
        }
        Err(Self::failed(&args, &out))
    }

    pub(super) fn get(&self, property: &str, name: &str) -> Result<String> {
        let out = self.query(&["get", "-H", "-p", "-o", "value", property, name])?;
        Ok(out.trim_end_matches('\n').to_owned())
    }

    /// Filesystems directly below `name` (not `name` itself), as full names.
    pub(super) fn children(&self, name: &str) -> Result<Vec<String>> {
        let out = self.query(&[
            "list",
            "-H",
            "-o",
            "name",
            "-t",
            "filesystem,volume",
            "-d",
            "1",
            name,
        ])?;
        Ok(out
            .lines()
            .filter(|l| *l != name && !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}
