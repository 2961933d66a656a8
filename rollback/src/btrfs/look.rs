//! Looking before touching: opening the configured directories (naming a
//! symbolic link as one, with its configuration key) and the refusal of a
//! default subvolume the rotation would move.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType};

use super::{
    Error, Kind, MAX_DEPTH, OldRoots, Problem, Result, Rotation, TOP_LEVEL, join, kind_of,
    open_beneath, split_parent, subvolumes_in,
};
use crate::{ioctl, keep};

/// What a run found before changing anything: the names it works on, what
/// is at them, and the directories it opened.
pub(super) struct Look<'t> {
    /// The directory that holds `S` and `T`.
    pub(super) parent: OwnedFd,
    /// `S`: its name in `parent`, and its path from the top level.
    pub(super) root_name: &'t str,
    pub(super) root_path: &'t str,
    /// `T`, the reserved name next to `S`.
    pub(super) new_name: String,
    pub(super) new_path: String,
    /// What `S` and `T` were at the start (subvolume or missing).
    pub(super) root: Kind,
    pub(super) leftover: Kind,
    /// `blank`, open, when configured.
    pub(super) blank: Option<(&'t str, OwnedFd)>,
    /// `O`, when configured (open if it exists).
    pub(super) old_roots: Option<OldRoots>,
}

impl<'t> Rotation<'t> {
    /// Looks before touching anything: every refusal that needs no change
    /// is made here.
    pub(super) fn look(&self) -> Result<Look<'t>> {
        let t = self.target;
        let root_path = t.subvolume.as_str();
        let (parent_path, root_name) = split_parent(root_path);
        let new_name = format!("{root_name}{}", tabula_config::NEW_ROOT_SUFFIX);
        let new_path = join(parent_path, &new_name);

        // Look before touching anything.
        let Some(parent) = self.open_dir("subvolume", parent_path)? else {
            return Err(self.err(Problem::ParentMissing {
                parent: parent_path.to_owned(),
                root: root_path.to_owned(),
            }));
        };
        let parent_fd = parent;
        let parent = parent_fd.as_fd();
        let root = self.kind(parent, root_name, root_path)?;
        if !matches!(root, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(Problem::RootNotASubvolume {
                root: root_path.to_owned(),
                kind: root,
            }));
        }
        if root == Kind::Subvolume {
            self.check_not_mounted(parent, root_name, root_path)?;
        }
        let leftover = self.kind(parent, &new_name, &new_path)?;
        if !matches!(leftover, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(Problem::ReservedNameTaken {
                path: new_path,
                kind: leftover,
            }));
        }
        for (key, other) in [("blank", &t.blank), ("oldRoots", &t.old_roots)] {
            if let Some(other) = other {
                if tabula_config::names::is_within(other, &new_path) {
                    return Err(self.err(Problem::ReservedNameConfigured {
                        key,
                        value: other.clone(),
                        reserved: new_path,
                    }));
                }
            }
        }
        let blank = match &t.blank {
            None => None,
            Some(b) => {
                let missing = || self.err(Problem::BlankMissing { blank: b.clone() });
                let fd = self.open_dir("blank", b)?.ok_or_else(missing)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| self.io_err("look at", b, e))?;
                if kind_of(&st) != Kind::Subvolume {
                    return Err(self.err(Problem::BlankNotASubvolume {
                        blank: b.clone(),
                        kind: kind_of(&st),
                    }));
                }
                Some((b.as_str(), fd))
            }
        };
        let old_roots = match &t.old_roots {
            None => None,
            Some(o) => Some(OldRoots {
                path: o.clone(),
                fd: self.open_dir("oldRoots", o)?,
            }),
        };

        self.check_default_subvolume(
            parent,
            &[
                (root_name, root_path, root),
                (&new_name, &new_path, leftover),
            ],
            old_roots.as_ref(),
        )?;

        self.check_nothing_mounted(
            parent,
            &[
                (root_name, root_path, root),
                (&new_name, &new_path, leftover),
            ],
            old_roots.as_ref(),
        )?;
        Ok(Look {
            parent: parent_fd,
            root_name,
            root_path,
            new_name,
            new_path,
            root,
            leftover,
            blank,
            old_roots,
        })
    }
    /// Opens the directory at `path` (relative to the top level; empty is the
    /// top level itself); `None` when it does not exist.
    /// `field` names the configuration key the path comes from.
    pub(super) fn open_dir(&self, field: &'static str, path: &str) -> Result<Option<OwnedFd>> {
        let path = if path.is_empty() { "." } else { path };
        match open_beneath(self.top, OsStr::new(path)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                Err(self.not_a_directory(field, path, e))
            }
            Err(e) => Err(self.io_err("open", path, e)),
        }
    }

    /// Why `path` (from the key `field`) could not be opened as a directory:
    /// the first component that is a symbolic link is named as one (tabula
    /// follows none), else the one that is not a directory.
    pub(super) fn not_a_directory(&self, field: &'static str, path: &str, e: io::Error) -> Error {
        let mut here = String::new();
        for component in path.split('/') {
            here = join(&here, component);
            let Ok(st) = rustix::fs::statat(self.top, here.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                break;
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    return self.err(Problem::SymbolicLink {
                        field,
                        path: path.to_owned(),
                        link: here,
                    });
                }
                FileType::Directory => {}
                other => {
                    return self.err(Problem::NotADirectory {
                        field,
                        path: path.to_owned(),
                        at: here,
                        kind: Kind::Other(other),
                    });
                }
            }
        }
        self.io_err("open", path, e)
    }

    /// Refuses when the filesystem's default subvolume (`btrfs subvolume
    /// set-default`, what a mount without `subvol=` shows) is one the
    /// rotation moves or may delete, or lies inside one: the root, the
    /// reserved name, or a dated old root. The rotation would leave the
    /// default on the previous root, so a mount without `subvol=` would boot
    /// the old system, and once it is pruned, nothing.
    pub(super) fn check_default_subvolume(
        &self,
        parent: BorrowedFd<'_>,
        moved: &[(&str, &str, Kind)],
        old_roots: Option<&OldRoots>,
    ) -> Result<()> {
        let default = ioctl::default_subvol(self.top)
            .map_err(|e| self.io_err("read the default subvolume of", self.dev, e))?;
        if default == TOP_LEVEL {
            return Ok(());
        }
        let mut watched: Vec<(u64, String)> = Vec::new();
        for &(name, shown, kind) in moved {
            if kind == Kind::Subvolume {
                watched.push((self.info(parent, name, shown)?.id, shown.to_owned()));
            }
        }
        if let Some(OldRoots {
            path,
            fd: Some(dir),
        }) = old_roots
        {
            let subvolumes = subvolumes_in(dir.as_fd())
                .map_err(|e| self.io_err("list the subvolumes in", path, e))?;
            for (name, id) in subvolumes {
                let name = String::from_utf8_lossy(&name);
                if keep::parse_name(&name).is_some() {
                    watched.push((id, join(path, &name)));
                }
            }
        }
        let mut id = default;
        for _ in 0..MAX_DEPTH {
            if let Some((_, shown)) = watched.iter().find(|(w, _)| *w == id) {
                return Err(self.err(Problem::DefaultSubvolume {
                    subvolume: shown.clone(),
                    default_id: default,
                    nested: id != default,
                    root: self.target.subvolume.clone(),
                }));
            }
            match ioctl::subvol_parent(self.top, id).map_err(|e| {
                self.io_err(
                    "look up the parent of the default subvolume of",
                    self.dev,
                    e,
                )
            })? {
                Some(parent) if parent != id => id = parent,
                _ => break,
            }
        }
        Ok(())
    }
}
