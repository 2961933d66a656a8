//! ZFS rollback, by running the `zfs` program with argument vectors (never a
//! shell), after the pool has been imported.
//!
//! Two modes, chosen by `oldRoots`:
//!
//! * `null`: `zfs rollback -r <dataset>@<snapshot>`. The current state of the
//!   root, and every snapshot of it newer than `@<snapshot>`, is discarded.
//!
//! * a dataset: the previous root is kept as `<oldRoots>/<timestamp>`, a fresh
//!   root is cloned from `@<snapshot>`, and `<oldRoots>` is pruned by the keep
//!   policy. The rotation is a state machine whose every intermediate state is
//!   recognised and finished by the next run, so a power cut at any instant
//!   loses nothing:
//!
//!   ```text
//!   S0  root R (with R@snap), nothing else           → clone R@snap → T, marked tabula:role=new-root
//!   S1  R, T (clone of R@snap, marked)               → rename R → O/<name>
//!   S2  O/<name> (with @snap), T; no R               → rename T → R
//!   S3  R (marked, a clone of O/<name>@snap)         → set canmount=noauto on O/<name>;
//!                                                      promote R; clear the mark
//!   S4  R (unmarked, owns @snap), O/<name> its clone → prune O
//!   ```
//!
//!   On start: no R but a marked T is S2 (finish from there); R and a marked
//!   T is S1 before the rename, so T, an untouched clone of the blank
//!   snapshot, is destroyed and the rotation starts over; a marked R is S3.
//!   `zfs clone -o` sets the mark in a transaction after the one that
//!   creates the clone, so R and an *unmarked* T whose origin is R@snap and
//!   to which nothing was written (`written=0`) is a torn S1: destroyed too.
//!   T is `<dataset>.tabula-new`; an unmarked dataset of that name is never
//!   touched: the run stops instead.

use std::fmt;
use std::io;
use std::process::Command;

use log::{info, warn};
use tabula_config::ZfsTarget;

use crate::keep;

/// What a run needs besides the target.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// The current time, Unix seconds (pruning only).
    pub now: i64,
    /// Print the destructive commands instead of running them.
    pub dry_run: bool,
}

/// Why a ZFS rollback stopped. Nothing after the failed step was done.
#[derive(Debug)]
pub enum ZfsError {
    /// The `zfs` program could not be started.
    Spawn { command: String, error: io::Error },
    /// `zfs` ran and failed.
    Failed {
        argv: String,
        status: String,
        stderr: String,
    },
    /// `zfs` printed something this module does not understand.
    Unexpected {
        argv: String,
        output: String,
        expected: &'static str,
    },
    /// The state on disk is not one that may be changed safely.
    Refused(String),
}

impl fmt::Display for ZfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZfsError::Spawn { command, error } => write!(
                f,
                "cannot run {command:?}: {error}; is ZFS in the initrd? set zfsCommand to the zfs program's absolute path"
            ),
            ZfsError::Failed {
                argv,
                status,
                stderr,
            } => {
                write!(f, "`{argv}` failed ({status}): {}", stderr.trim())
            }
            ZfsError::Unexpected {
                argv,
                output,
                expected,
            } => {
                write!(f, "`{argv}` printed {output:?}; expected {expected}")
            }
            ZfsError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ZfsError {}

type Result<T> = std::result::Result<T, ZfsError>;

/// The user property that marks a dataset tabula is in the middle of placing.
const MARK: &str = "tabula:role";
const MARK_VALUE: &str = "new-root";

/// Locally set properties a clone cannot take, or that must not be copied.
const NOT_COPIED: &[&str] = &[
    "encryption",
    "keyformat",
    "keylocation",
    "pbkdf2iters",
    "pbkdf2salt",
    "volsize",
    "volblocksize",
    MARK,
];

struct Zfs<'a> {
    command: &'a str,
    dry_run: bool,
}

impl Zfs<'_> {
    fn show(&self, args: &[&str]) -> String {
        let mut s = String::from("zfs");
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    fn output(&self, args: &[&str]) -> Result<std::process::Output> {
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
    fn query(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            return Err(self.failed(args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a command that changes the pool: logged first, printed instead
    /// in dry-run mode.
    fn act(&self, args: &[&str]) -> Result<()> {
        let shown = self.show(args);
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
            Err(self.failed(args, &out))
        }
    }

    fn failed(&self, args: &[&str], out: &std::process::Output) -> ZfsError {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        warn!("{} failed: {}", self.show(args), stderr.trim());
        ZfsError::Failed {
            argv: self.show(args),
            status: out.status.to_string(),
            stderr,
        }
    }

    /// Whether a dataset or snapshot exists. Only "does not exist" counts as
    /// no; any other failure is an error, so doubt never reads as absence.
    fn exists(&self, name: &str) -> Result<bool> {
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
        Err(self.failed(&args, &out))
    }

    fn get(&self, property: &str, name: &str) -> Result<String> {
        let out = self.query(&["get", "-H", "-p", "-o", "value", property, name])?;
        Ok(out.trim_end_matches('\n').to_owned())
    }

    /// Filesystems directly below `name` (not `name` itself), as full names.
    fn children(&self, name: &str) -> Result<Vec<String>> {
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

/// Rolls one ZFS root back, as the target says.
pub fn run(target: &ZfsTarget, ctx: &Ctx) -> Result<()> {
    let zfs = Zfs {
        command: &target.zfs_command,
        dry_run: ctx.dry_run,
    };
    match &target.old_roots {
        None => rollback(&zfs, target),
        Some(old_roots) => Rotation {
            zfs: &zfs,
            target,
            old_roots,
            ctx,
        }
        .run(),
    }
}

fn missing_snapshot(snapshot: &str) -> ZfsError {
    ZfsError::Refused(format!(
        "the snapshot {snapshot} does not exist, so there is nothing to roll back to; nothing was changed. \
         Create it once, while the dataset is empty: `zfs snapshot {snapshot}`"
    ))
}

fn rollback(zfs: &Zfs<'_>, target: &ZfsTarget) -> Result<()> {
    let snapshot = format!("{}@{}", target.dataset, target.snapshot);
    if !zfs.exists(&snapshot)? {
        return Err(missing_snapshot(&snapshot));
    }
    zfs.act(&["rollback", "-r", &snapshot])?;
    info!("{} rolled back to @{}", target.dataset, target.snapshot);
    Ok(())
}

struct Rotation<'a> {
    zfs: &'a Zfs<'a>,
    target: &'a ZfsTarget,
    old_roots: &'a str,
    ctx: &'a Ctx,
}

impl Rotation<'_> {
    fn root(&self) -> &str {
        &self.target.dataset
    }

    fn temp(&self) -> String {
        format!("{}{}", self.target.dataset, tabula_config::NEW_ROOT_SUFFIX)
    }

    fn snapshot(&self) -> String {
        format!("{}@{}", self.target.dataset, self.target.snapshot)
    }

    fn is_marked(&self, name: &str) -> Result<bool> {
        Ok(self.zfs.get(MARK, name)? == MARK_VALUE)
    }

    /// Whether `name` is what a power cut during S0 → S1 can leave: `zfs
    /// clone -o` creates the clone and sets its properties in separate
    /// transactions, so the clone may exist without the mark. Such a clone
    /// of the blank snapshot with nothing written to it holds nothing that
    /// the snapshot does not: destroying it loses nothing. Anything else is
    /// not tabula's to touch.
    fn is_torn_clone(&self, name: &str) -> Result<bool> {
        Ok(self.zfs.get("origin", name)? == self.snapshot()
            && self.zfs.get("written", name)? == "0")
    }

    fn run(&self) -> Result<()> {
        let (root, temp) = (self.root(), self.temp());
        let root_exists = self.zfs.exists(root)?;
        let temp_exists = self.zfs.exists(&temp)?;
        if temp_exists && !self.is_marked(&temp)? {
            if !(root_exists && self.is_torn_clone(&temp)?) {
                return Err(ZfsError::Refused(format!(
                    "{temp} exists but was not made by tabula ({MARK} is not {MARK_VALUE}); nothing was changed. \
                     Rename or destroy it yourself"
                )));
            }
            info!(
                "{temp} is an unmarked clone of {} with nothing written to it, left by a power cut during `zfs clone`; destroying it",
                self.snapshot()
            );
            self.zfs.act(&["destroy", &temp])?;
            return self.rotate().and_then(|fresh| self.prune(fresh));
        }
        let fresh = match (root_exists, temp_exists) {
            (false, false) => {
                return Err(ZfsError::Refused(format!(
                    "the root dataset {root} does not exist and no unfinished rotation ({temp}) was found; \
                     nothing was changed. Check `dataset` in the configuration"
                )));
            }
            (false, true) => {
                info!(
                    "a previous run stopped after moving {root} away; putting the new root {temp} in place"
                );
                self.zfs.act(&["rename", &temp, root])?;
                self.finish(None)?;
                None
            }
            (true, _) if self.is_marked(root)? => {
                info!("a previous run stopped before finishing the new root {root}; finishing it");
                if temp_exists {
                    return Err(ZfsError::Refused(format!(
                        "both {root} and {temp} are marked as new roots; nothing was changed. \
                         Destroy the one you do not want"
                    )));
                }
                self.finish(None)?;
                None
            }
            (true, true) => {
                info!(
                    "{temp} is left over from a run stopped before it moved the root; destroying it"
                );
                self.zfs.act(&["destroy", &temp])?;
                self.rotate()?
            }
            (true, false) => self.rotate()?,
        };
        self.prune(fresh)
    }

    /// S0 → S3, then [`Self::finish`]. Returns the new old root's name.
    fn rotate(&self) -> Result<Option<String>> {
        let (root, temp, snapshot) = (self.root(), self.temp(), self.snapshot());
        if !self.zfs.exists(&snapshot)? {
            return Err(missing_snapshot(&snapshot));
        }
        let nested = self.zfs.children(root)?;
        if !nested.is_empty() {
            return Err(ZfsError::Refused(format!(
                "{root} has child datasets ({}), which a rotation would move into oldRoots with it; \
                 nothing was changed. Move them out of the root dataset, or set oldRoots to null",
                nested.join(", ")
            )));
        }
        if !self.zfs.exists(self.old_roots)? {
            info!("creating {} for old roots", self.old_roots);
            self.zfs.act(&[
                "create",
                "-o",
                "canmount=off",
                "-o",
                "mountpoint=none",
                self.old_roots,
            ])?;
        }
        let existing = self.existing_old_roots()?;
        let created = self.zfs.get("creation", root)?;
        let created: i64 = created.parse().map_err(|_| ZfsError::Unexpected {
            argv: self
                .zfs
                .show(&["get", "-H", "-p", "-o", "value", "creation", root]),
            output: created.clone(),
            expected: "the creation time in Unix seconds",
        })?;
        let name = keep::unique_name(&keep::timestamp_name(created), |n| {
            existing.iter().any(|e| e == n)
        });
        let destination = format!("{}/{name}", self.old_roots);

        let mut args: Vec<String> =
            vec!["clone".into(), "-o".into(), format!("{MARK}={MARK_VALUE}")];
        for (property, value) in self.local_properties()? {
            args.push("-o".into());
            args.push(format!("{property}={value}"));
        }
        args.push(snapshot.clone());
        args.push(temp.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.zfs.act(&args)?; // S1
        self.zfs.act(&["rename", root, &destination])?; // S2
        self.zfs.act(&["rename", &temp, root])?; // S3
        self.finish(Some(&destination))?;
        Ok(Some(name))
    }

    /// S3 → S4: keep the old root from mounting over the new one, promote the
    /// new root, clear the mark. `previous` is the old root when known; after
    /// a crash it is read from the new root's origin (none once promoted).
    /// Every step is idempotent.
    fn finish(&self, previous: Option<&str>) -> Result<()> {
        let root = self.root();
        let previous = match previous {
            Some(p) => Some(p.to_owned()),
            None => {
                let origin = self.zfs.get("origin", root)?;
                origin
                    .split_once('@')
                    .map(|(dataset, _)| dataset.to_owned())
            }
        };
        if let Some(previous) = &previous {
            if tabula_config::names::is_within(previous, self.old_roots) {
                self.zfs.act(&["set", "canmount=noauto", previous])?;
            }
            self.zfs.act(&["promote", root])?;
        }
        self.zfs.act(&["inherit", MARK, root])?;
        info!(
            "{root} is a fresh clone of @{}{}",
            self.target.snapshot,
            previous
                .as_deref()
                .map(|p| format!("; the previous root is {p}"))
                .unwrap_or_default()
        );
        Ok(())
    }

    fn existing_old_roots(&self) -> Result<Vec<String>> {
        if self.ctx.dry_run && !self.zfs.exists(self.old_roots)? {
            return Ok(Vec::new());
        }
        let prefix = format!("{}/", self.old_roots);
        Ok(self
            .zfs
            .children(self.old_roots)?
            .into_iter()
            .filter_map(|c| c.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// `zfs get` of the root's locally set properties, to give them to the clone.
    fn local_properties(&self) -> Result<Vec<(String, String)>> {
        let out = self.zfs.query(&[
            "get",
            "-H",
            "-p",
            "-o",
            "property,value",
            "-s",
            "local",
            "all",
            self.root(),
        ])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(p, _)| !NOT_COPIED.contains(p))
            .map(|(p, v)| (p.to_owned(), v.to_owned()))
            .collect())
    }

    fn prune(&self, fresh: Option<String>) -> Result<()> {
        let mut names = self.existing_old_roots()?;
        if let Some(fresh) = fresh.filter(|_| self.ctx.dry_run) {
            names.push(fresh);
        }
        let plan = keep::plan(&names, self.ctx.now, &self.target.keep);
        if self.ctx.now < keep::TRUSTED_CLOCK_FROM {
            warn!(
                "the clock says {}, which is not believed; pruning nothing",
                keep::timestamp_name(self.ctx.now)
            );
        }
        for pinned in &plan.pinned {
            info!(
                "{}/{pinned} is pinned (its name is not a timestamp); never pruned",
                self.old_roots
            );
        }
        for name in &plan.prune {
            self.zfs
                .act(&["destroy", "-r", &format!("{}/{name}", self.old_roots)])?;
        }
        info!(
            "{}: {} old roots kept, {} pruned, {} pinned",
            self.old_roots,
            plan.keep.len(),
            plan.prune.len(),
            plan.pinned.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
