//! The crash-state machine of the rotation (see the table in the module
//! documentation): recognising where an interrupted run stopped, and each
//! transition.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::RenameFlags;

use super::*;
use crate::{fault, ioctl};

impl Rotation<'_> {
    pub(super) fn run(&self) -> Result<()> {
        let t = self.target;
        let root_path = t.subvolume.as_str();
        let (parent_path, root_name) = split_parent(root_path);
        let new_name = format!("{root_name}{NEW_SUFFIX}");
        let new_path = join(parent_path, &new_name);

        // Look before touching anything.
        let Some(parent) = self.open_dir("subvolume", parent_path)? else {
            return Err(self.err(format_args!(
                "{parent_path}, the directory that should hold {root_path}, does not exist; create it or fix `subvolume`"
            )));
        };
        let parent = parent.as_fd();
        let root = self.kind(parent, root_name, root_path)?;
        if !matches!(root, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(format_args!(
                "{root_path} is {}; tabula moves and deletes only subvolumes: convert it (btrfs subvolume create, copy, swap) or fix `subvolume`",
                root.describe()
            )));
        }
        if root == Kind::Subvolume {
            self.check_not_mounted(parent, root_name, root_path)?;
        }
        let leftover = self.kind(parent, &new_name, &new_path)?;
        if !matches!(leftover, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(format_args!(
                "{new_path} is {}; tabula reserves this name for the new root it builds: move it away",
                leftover.describe()
            )));
        }
        for (key, other) in [("blank", &t.blank), ("oldRoots", &t.old_roots)] {
            if let Some(other) = other {
                if tabula_config::names::is_within(other, &new_path) {
                    return Err(self.err(format_args!(
                        "`{key}` ({other:?}) is tabula's reserved name {new_path:?} for the new root; rename it"
                    )));
                }
            }
        }
        let blank = match &t.blank {
            None => None,
            Some(b) => {
                let missing = || {
                    self.err(format_args!(
                        "the blank subvolume {b} does not exist; create it once (btrfs subvolume snapshot -r of an empty root) or set `blank` to null"
                    ))
                };
                let fd = self.open_dir("blank", b)?.ok_or_else(missing)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| self.io_err("look at", b, e))?;
                if kind_of(&st) != Kind::Subvolume {
                    return Err(self.err(format_args!(
                        "the blank {b} is {}; expected a subvolume to snapshot",
                        kind_of(&st).describe()
                    )));
                }
                Some((b.as_str(), fd))
            }
        };
        let mut old_roots = match &t.old_roots {
            None => None,
            Some(o) => Some(OldRoots {
                path: o.clone(),
                fd: self.open_dir("oldRoots", o)?,
            }),
        };
        let blank = blank.as_ref().map(|(p, fd)| (*p, fd.as_fd()));

        self.check_default_subvolume(
            parent,
            [
                (root_name, root_path, root),
                (&new_name, &new_path, leftover),
            ],
            old_roots.as_ref(),
        )?;

        self.check_nothing_mounted(
            parent,
            [
                (root_name, root_path, root),
                (&new_name, &new_path, leftover),
            ],
            old_roots.as_ref(),
        )?;

        // Finish what an interrupted run left (states B and C).
        let mut leftover_moved = None;
        if leftover == Kind::Subvolume {
            let left = self.info(parent, &new_name, &new_path)?;
            let root_info = match root {
                Kind::Subvolume => Some(self.info(parent, root_name, root_path)?),
                _ => None,
            };
            if self.is_unused_new_root(parent, &new_name, &new_path, &left, root_info, blank)? {
                log::warn!(
                    "{new_path} is the unused new root of an interrupted run: deleting it and starting over"
                );
                self.destroy(parent, &new_name, &new_path)?;
                fault::after("leftover-removed");
            } else {
                log::warn!(
                    "{new_path} is the previous root of an interrupted run: putting it away first"
                );
                leftover_moved =
                    self.archive(parent, &new_name, &new_path, &left, &mut old_roots)?;
                fault::after("leftover-archived");
            }
        }

        // The rotation proper (A → B → C → D, or E → D).
        let mut moved = None;
        if root == Kind::Subvolume {
            let previous = self.info(parent, root_name, root_path)?;
            self.create(parent, &new_name, &new_path, blank)?;
            fault::after("created");
            self.act(format!("exchange {root_path} and {new_path}"), || {
                rustix::fs::renameat_with(
                    parent,
                    root_name,
                    parent,
                    new_name.as_str(),
                    RenameFlags::EXCHANGE,
                )
                .map_err(io::Error::from)
            })?;
            fault::after("exchanged");
            moved = self.archive(parent, &new_name, &new_path, &previous, &mut old_roots)?;
            fault::after("archived");
        } else {
            log::info!("{root_path} does not exist yet: creating it");
            self.create(parent, root_name, root_path, blank)?;
            fault::after("created");
        }

        if let Some(old_roots) = &old_roots {
            let archived = [leftover_moved.as_deref(), moved.as_deref()];
            self.prune(old_roots, &archived, parent, root_name)?;
        }
        if !self.ctx.dry_run {
            rustix::fs::syncfs(self.top).map_err(|e| self.io_err("commit", self.dev, e))?;
        }
        Ok(())
    }

    /// Whether the subvolume `name` at the reserved name is the new root of
    /// a run that stopped before the exchange (state B), which can be
    /// deleted without losing anything. All of these must hold:
    ///
    /// * it is untouched: its generation (last transaction that changed it)
    ///   is its creation transaction, so no later transaction wrote to it;
    /// * it was created after the current root (`otransid`), as the new
    ///   root of B is, and the previous root of C is not;
    /// * its top directory holds what a new root holds: nothing, or the
    ///   names in `blank`.
    ///
    /// Anything else is kept: when in doubt, it is treated as a previous root.
    pub(super) fn is_unused_new_root(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        info: &ioctl::SubvolInfo,
        root: Option<ioctl::SubvolInfo>,
        blank: Option<(&str, BorrowedFd<'_>)>,
    ) -> Result<bool> {
        let Some(root) = root else {
            return Ok(false);
        };
        if info.generation != info.otransid || info.otransid <= root.otransid {
            return Ok(false);
        }
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        let names = dir_names(fd.as_fd()).map_err(|e| self.io_err("list", shown, e))?;
        let expected = match blank {
            None => Vec::new(),
            Some((path, fd)) => dir_names(fd).map_err(|e| self.io_err("list", path, e))?,
        };
        Ok(names == expected)
    }

    /// Creates the new root `name` in `dir`: empty, or a snapshot of blank.
    pub(super) fn create(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        blank: Option<(&str, BorrowedFd<'_>)>,
    ) -> Result<()> {
        let cname = cstr(name)?;
        match blank {
            None => self.act(format!("create empty subvolume {shown}"), || {
                ioctl::subvol_create(dir, &cname)
            }),
            Some((path, fd)) => self.act(
                format!("create {shown} as a writable snapshot of {path}"),
                || ioctl::snap_create(dir, &cname, fd, false),
            ),
        }
    }
}
