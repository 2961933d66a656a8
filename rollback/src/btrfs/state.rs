//! The crash-state machine of the rotation (see the table in the module
//! documentation): recognising where an interrupted run stopped, and each
//! transition.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::RenameFlags;

use super::look::Look;
use super::{Kind, Result, Rotation, cstr, dir_names, open_beneath};
use crate::{fault, ioctl};

/// Where a rotation stands: the rows of the crash-state table in the module
/// documentation. A run recognises its state once ([`Rotation::recognise`])
/// and then takes one transition at a time until [`State::Done`].
#[derive(Debug)]
enum State {
    /// B, found at the start: `T` is the unused new root of a run that
    /// stopped before the exchange. Deleting it loses nothing → A.
    UnusedNewRootLeft,
    /// C, found at the start: `T` is a previous root (a boot wrote to it, or
    /// it is older than `S`). Archived first → A, or E without `S`.
    PreviousRootLeft(ioctl::SubvolInfo),
    /// A: `S` is the previous root; no `T` → create `T` → B.
    PreviousRootInPlace,
    /// B: `S` the previous root (described), `T` the fresh root → exchange → C.
    NewRootMade(ioctl::SubvolInfo),
    /// C: `S` the fresh root, `T` the previous root → archive `T` → D.
    Exchanged(ioctl::SubvolInfo),
    /// E: no `S`, no `T` (first run) → create `S` → D.
    FirstBoot,
    /// D: `S` the fresh root, no `T` → commit (prune `O` only when the
    /// safety valve opens).
    FreshRootInPlace,
    /// Nothing left to do.
    Done,
}

impl Rotation<'_> {
    /// The whole rotation: look, recognise, then transitions until done.
    pub(super) fn run(&self) -> Result<()> {
        let mut look = self.look()?;
        let mut state = self.recognise(&look)?;
        // The names this run gives to the roots it archives: never pruned by it.
        let mut archived: [Option<String>; 2] = [None, None];
        loop {
            state = match state {
                State::UnusedNewRootLeft => {
                    self.discard_unused_new_root(&look)?;
                    State::PreviousRootInPlace
                }
                State::PreviousRootLeft(left) => {
                    archived[0] = self.archive_previous_root_left(&mut look, &left)?;
                    if look.root == Kind::Subvolume {
                        State::PreviousRootInPlace
                    } else {
                        State::FirstBoot
                    }
                }
                State::PreviousRootInPlace => State::NewRootMade(self.create_new_root(&look)?),
                State::NewRootMade(previous) => State::Exchanged(self.exchange(&look, previous)?),
                State::Exchanged(previous) => {
                    archived[1] = self.archive_exchanged_root(&mut look, &previous)?;
                    State::FreshRootInPlace
                }
                State::FirstBoot => {
                    self.create_first_root(&look)?;
                    State::FreshRootInPlace
                }
                State::FreshRootInPlace => {
                    self.finish(&look, &archived)?;
                    State::Done
                }
                State::Done => return Ok(()),
            };
        }
    }

    /// Where the last run stopped, from what the filesystem records about
    /// `S` and `T` (no clock): see [`Self::is_unused_new_root`].
    fn recognise(&self, look: &Look) -> Result<State> {
        if look.leftover != Kind::Subvolume {
            return Ok(match look.root {
                Kind::Subvolume => State::PreviousRootInPlace,
                _ => State::FirstBoot,
            });
        }
        let parent = look.parent.as_fd();
        let left = self.info(parent, &look.new_name, &look.new_path)?;
        let root_info = match look.root {
            Kind::Subvolume => Some(self.info(parent, look.root_name, look.root_path)?),
            _ => None,
        };
        let blank = look.blank.as_ref().map(|(p, fd)| (*p, fd.as_fd()));
        if self.is_unused_new_root(
            parent,
            &look.new_name,
            &look.new_path,
            &left,
            root_info,
            blank,
        )? {
            Ok(State::UnusedNewRootLeft)
        } else {
            Ok(State::PreviousRootLeft(left))
        }
    }

    /// B found at the start → A.
    fn discard_unused_new_root(&self, look: &Look) -> Result<()> {
        log::warn!(
            "{} is the unused new root of an interrupted run: deleting it and starting over",
            look.new_path
        );
        self.destroy(look.parent.as_fd(), &look.new_name, &look.new_path)?;
        fault::after("leftover-removed");
        Ok(())
    }

    /// C found at the start → A (or E). Returns the old root's name.
    fn archive_previous_root_left(
        &self,
        look: &mut Look,
        left: &ioctl::SubvolInfo,
    ) -> Result<Option<String>> {
        log::warn!(
            "{} is the previous root of an interrupted run: putting it away first",
            look.new_path
        );
        let name = self.archive(
            look.parent.as_fd(),
            &look.new_name,
            &look.new_path,
            left,
            &mut look.old_roots,
        )?;
        fault::after("leftover-archived");
        Ok(name)
    }

    /// A → B. Returns what `S`, the previous root, is.
    fn create_new_root(&self, look: &Look) -> Result<ioctl::SubvolInfo> {
        let parent = look.parent.as_fd();
        let previous = self.info(parent, look.root_name, look.root_path)?;
        let blank = look.blank.as_ref().map(|(p, fd)| (*p, fd.as_fd()));
        self.create(parent, &look.new_name, &look.new_path, blank)?;
        fault::after("created");
        Ok(previous)
    }

    /// B → C: one atomic `renameat2(RENAME_EXCHANGE)`.
    fn exchange(&self, look: &Look, previous: ioctl::SubvolInfo) -> Result<ioctl::SubvolInfo> {
        let parent = look.parent.as_fd();
        self.act(
            format!("exchange {} and {}", look.root_path, look.new_path),
            || {
                rustix::fs::renameat_with(
                    parent,
                    look.root_name,
                    parent,
                    look.new_name.as_str(),
                    RenameFlags::EXCHANGE,
                )
                .map_err(io::Error::from)
            },
        )?;
        fault::after("exchanged");
        Ok(previous)
    }

    /// C → D. Returns the old root's name.
    fn archive_exchanged_root(
        &self,
        look: &mut Look,
        previous: &ioctl::SubvolInfo,
    ) -> Result<Option<String>> {
        let name = self.archive(
            look.parent.as_fd(),
            &look.new_name,
            &look.new_path,
            previous,
            &mut look.old_roots,
        )?;
        fault::after("archived");
        Ok(name)
    }

    /// E → D.
    fn create_first_root(&self, look: &Look) -> Result<()> {
        log::info!("{} does not exist yet: creating it", look.root_path);
        let blank = look.blank.as_ref().map(|(p, fd)| (*p, fd.as_fd()));
        self.create(look.parent.as_fd(), look.root_name, look.root_path, blank)?;
        fault::after("created");
        Ok(())
    }

    /// D → done: prune when the safety valve opens, then commit.
    fn finish(&self, look: &Look, archived: &[Option<String>; 2]) -> Result<()> {
        if let Some(old_roots) = &look.old_roots {
            if !self.ctx.dry_run {
                let names: Vec<&str> = archived.iter().flatten().map(String::as_str).collect();
                crate::this_boot::record(&self.ctx.run_dir, &self.this_boot_key(), &names);
            }
            match self.valve(old_roots)? {
                Some(reason) => {
                    log::warn!(
                        "safety valve: {reason}: pruning {} in stage 1",
                        old_roots.path
                    );
                    let archived = [archived[0].as_deref(), archived[1].as_deref()];
                    self.prune(old_roots, &archived, look.parent.as_fd(), look.root_name)?;
                }
                None => log::info!(
                    "{}: pruning left to the booted system (tabula-rollback --prune-only)",
                    old_roots.path
                ),
            }
        }
        // Commit now rather than at the unmount (a dry run's read-only
        // mount has nothing to commit: syncfs returns at once).
        rustix::fs::syncfs(self.top).map_err(|e| self.io_err("commit", self.dev, e))?;
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
        let cname = cstr(name).map_err(|p| self.err(p))?;
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
