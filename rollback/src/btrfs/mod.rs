//! The Btrfs rotation: the previous root goes to `oldRoots` (or is deleted),
//! a new root takes its place, and `oldRoots` is pruned by the keep policy.
//!
//! # Crash safety
//!
//! Let `S` be the root subvolume (`@root`), `T` the reserved name `S` +
//! `.tabula-new` next to it, and `O` the old-roots directory. Every change is
//! one atomic Btrfs operation (a subvolume create, snapshot, rename or
//! delete), and Btrfs commits whole transactions in order, so a power cut
//! leaves the filesystem exactly as it was between two of the steps below;
//! the fault-injection tests stop the process after each of them and check
//! that the next run completes.
//!
//! ```text
//!  state                                   step                          next
//!  A  S = previous root, no T              create T (empty / blank)      B
//!  B  S = previous root, T = fresh root    exchange S and T              C
//!  C  S = fresh root, T = previous root    move T to O/<otime of T>      D
//!                                          (oldRoots null: delete T)
//!  D  S = fresh root, no T                 commit (prune O only when     done
//!                                          the safety valve opens)
//!  E  no S, no T (first run)               create S                      D
//! ```
//!
//! Pruning `O` is the other half (`--prune-only`, run by
//! `tabula-prune.service` once the system is up): it opens `O`, makes the
//! same refusals, and deletes old roots by the keep policy, each one a
//! step of its own, nested subvolumes first; it never touches `S` or `T`,
//! and never the most recently archived old root (the previous root of the
//! current boot). Stage 1 prunes only when [`crate::valve`] says so.
//!
//! A run starts by recognising where the last one stopped. `T` present
//! means B or C. The new root of B is untouched (its generation, the last
//! transaction that changed it, still equals its creation transaction; a
//! rename does not count), younger than `S` (creation transaction ids come
//! from the filesystem, not from a clock) and holds what a new root holds;
//! deleting it loses nothing, so it is deleted and the run starts over at
//! A. Any other `T` is treated as the previous root of C (a boot wrote to
//! it, and it is older than `S`): it is moved to `O` (or deleted when
//! `oldRoots` is null) first, then the rotation runs as usual. When in
//! doubt, keep (`Rotation::is_unused_new_root`). Pruning happens last (or
//! in the other half),
//! so an interruption there costs nothing but a later prune, and a deleted
//! old root is gone in one operation or not at all (nested subvolumes go
//! first; each is its own step).
//!
//! `S` always exists from state A on, so a machine whose tabula is then
//! disabled still boots. Nothing is written inside any subvolume: tabula
//! only creates, renames and deletes subvolumes, plus the `O` directory.
//!
//! # What is refused
//!
//! Before any change, the run stops with an error if `S` or `T` is
//! something other than a subvolume (a plain directory or a file: tabula
//! does not move or delete what it did not make), if `blank` is set but is
//! not a subvolume, or if `O` exists but is not a directory. Inside `O`,
//! only subvolumes are old roots: anything else is left alone with a
//! warning, and an old root whose name is not a timestamp is pinned.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use tabula_config::BtrfsTarget;

use crate::{fault, ioctl};

mod archive;
mod delete;
mod device;
mod error;
mod fd;
mod identity;
mod look;
mod mount;
mod mounted;
mod mountinfo;
mod prune;
mod state;
#[cfg(test)]
mod tests;

use device::wait_for_device;
use fd::{cstr, dir_names, join, kind_at, kind_of, open_beneath, split_parent, subvolumes_in};
use mount::TopLevel;
use mountinfo::unescape_mountinfo;

pub use error::{Error, MountedRoot, MountedSubvolume, Problem};
pub use fd::Kind;
pub use identity::check_distinct;

/// The inode number of every subvolume's root directory.
const SUBVOL_ROOT_INO: u64 = 256;

/// Nested subvolumes deeper than this are not deleted (docker nests two or
/// three levels; a deeper tree is more likely a loop than a layout).
const MAX_DEPTH: usize = 64;
/// The top-level subvolume (`BTRFS_FS_TREE_OBJECTID`): the default unless
/// `btrfs subvolume set-default` changed it.
const TOP_LEVEL: u64 = 5;

pub use crate::Ctx;

type Result<T> = std::result::Result<T, Error>;

/// Rotates one Btrfs root as configured by `target`.
pub fn run(target: &BtrfsTarget, ctx: &Ctx) -> Result<()> {
    wait_for_device(&target.device, target.wait_seconds)?;
    let (top, fd) = TopLevel::mount(target, ctx)?;
    fault::after("mounted");
    let rotation = Rotation {
        target,
        ctx,
        top: fd.as_fd(),
        dev: &target.device,
        mount_dir: &top.dir,
    };
    let result = match ctx.mode {
        crate::Mode::Boot => rotation.run(),
        crate::Mode::PruneOnly => rotation.prune_only(),
    };
    drop(fd);
    let unmounted = top.unmount();
    result.and(unmounted)
}

/// The old-roots directory: open, or (in a dry run) not made yet.
struct OldRoots {
    path: String,
    fd: Option<OwnedFd>,
}

struct Rotation<'a> {
    target: &'a BtrfsTarget,
    ctx: &'a Ctx,
    top: BorrowedFd<'a>,
    dev: &'a str,
    /// Where the top level is mounted.
    mount_dir: &'a Path,
}

impl Rotation<'_> {
    /// `problem`, on this run's device.
    fn err(&self, problem: Problem) -> Error {
        Error::Rotation {
            device: self.dev.to_owned(),
            problem,
        }
    }

    /// `op` ("open", "list" …) of `path` failed with `e`.
    fn io_err(&self, op: &'static str, path: &str, e: impl Into<io::Error>) -> Error {
        self.err(Problem::Io {
            op,
            path: path.to_owned(),
            source: e.into(),
        })
    }

    /// Does one action, or in a dry run prints it: every action is one line.
    fn act(&self, what: String, f: impl FnOnce() -> io::Result<()>) -> Result<()> {
        if self.ctx.dry_run {
            println!("dry-run: {what}");
            log::info!("dry-run: {what}");
            return Ok(());
        }
        if let Err(source) = f() {
            return Err(self.err(Problem::Action {
                action: what,
                source,
            }));
        }
        log::info!("{what}");
        Ok(())
    }

    fn kind(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<Kind> {
        kind_at(dir, OsStr::new(name)).map_err(|e| self.io_err("look at", shown, e))
    }

    fn info(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<ioctl::SubvolInfo> {
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        ioctl::subvol_info(fd.as_fd())
            .map_err(|e| self.io_err("read the subvolume info of", shown, e))
    }
}
