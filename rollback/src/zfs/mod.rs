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
//!   S4  R (unmarked, owns @snap), O/<name> its clone → done (prune O only
//!                                                      when the safety valve opens)
//!   ```
//!
//!   Pruning O is the other half, `--prune-only` (`tabula-prune.service`,
//!   after the pool is imported): `zfs destroy -r` of each old root the
//!   keep policy lets go, oldest first, never the most recently created.
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

use log::info;
use tabula_config::ZfsTarget;

use crate::fault;

mod command;
mod rotation;

use command::Zfs;
use rotation::Rotation;

pub use crate::Ctx;

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
    /// The snapshot to roll back to, or to clone, does not exist.
    SnapshotMissing { snapshot: String },
    /// The root dataset does not exist, and no unfinished rotation (`temp`,
    /// the reserved new-root name) either.
    RootMissing { root: String, temp: String },
    /// `dataset`, at the reserved new-root name, is not marked as tabula's.
    /// `clone_of` is the snapshot it is a clone of when that is the
    /// target's own snapshot (a power cut during `zfs clone` leaves one;
    /// something was written to it since).
    NotMadeByTabula {
        dataset: String,
        clone_of: Option<String>,
    },
    /// Both the root and the reserved new-root name are marked as new roots.
    BothMarked { root: String, temp: String },
    /// The root has child datasets, which a rotation would move with it.
    ChildDatasets { root: String, children: Vec<String> },
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
            ZfsError::SnapshotMissing { snapshot } => write!(
                f,
                "the snapshot {snapshot} does not exist, so there is nothing to roll back to; nothing was changed. \
                 Create it once, while the dataset is empty: `zfs snapshot {snapshot}`"
            ),
            ZfsError::RootMissing { root, temp } => write!(
                f,
                "the root dataset {root} does not exist and no unfinished rotation ({temp}) was found; \
                 nothing was changed. Check `dataset` in the configuration"
            ),
            ZfsError::NotMadeByTabula { dataset, clone_of } => {
                write!(
                    f,
                    "{dataset} exists but was not made by tabula ({MARK} is not {MARK_VALUE}); nothing was changed"
                )?;
                match clone_of {
                    // Real ZFS counts a few KiB as written in a fresh clone of a
                    // snapshot that holds files, so a torn clone of a non-empty
                    // snapshot looks used: say how to tell.
                    Some(snapshot) => write!(
                        f,
                        ". It is a clone of {snapshot}, as a power cut during `zfs clone` leaves one, but something was written to it: \
                         compare it with `zfs diff {snapshot} {dataset}` and, if nothing of yours is in it, `zfs destroy {dataset}`"
                    ),
                    None => f.write_str(". Rename or destroy it yourself"),
                }
            }
            ZfsError::BothMarked { root, temp } => write!(
                f,
                "both {root} and {temp} are marked as new roots; nothing was changed. \
                 Destroy the one you do not want"
            ),
            ZfsError::ChildDatasets { root, children } => write!(
                f,
                "{root} has child datasets ({}), which a rotation would move into oldRoots with it; \
                 nothing was changed. Move them out of the root dataset, or set oldRoots to null",
                children.join(", ")
            ),
        }
    }
}

impl std::error::Error for ZfsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ZfsError::Spawn { error, .. } => Some(error),
            _ => None,
        }
    }
}

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

/// Rolls one ZFS root back, as the target says.
pub fn run(target: &ZfsTarget, ctx: &Ctx) -> Result<()> {
    let zfs = Zfs {
        command: &target.zfs_command,
        dry_run: ctx.dry_run,
    };
    match (&target.old_roots, ctx.mode) {
        (None, crate::Mode::Boot) => rollback(&zfs, target),
        (None, crate::Mode::PruneOnly) => {
            info!("oldRoots is null: there are no old roots to prune");
            Ok(())
        }
        (Some(old_roots), mode) => {
            let rotation = Rotation {
                zfs: &zfs,
                target,
                old_roots,
                ctx,
            };
            match mode {
                crate::Mode::Boot => rotation.run(),
                crate::Mode::PruneOnly => rotation.prune_only(),
            }
        }
    }
}

fn rollback(zfs: &Zfs<'_>, target: &ZfsTarget) -> Result<()> {
    let snapshot = format!("{}@{}", target.dataset, target.snapshot);
    if !zfs.exists(&snapshot)? {
        return Err(ZfsError::SnapshotMissing { snapshot });
    }
    zfs.act(&["rollback", "-r", &snapshot])?;
    fault::after("zfs-rolled-back");
    info!("{} rolled back to @{}", target.dataset, target.snapshot);
    Ok(())
}

#[cfg(test)]
mod tests;
