//! Looking before touching: opening the configured directories (naming a
//! symbolic link as one, with its configuration key) and the refusal of a
//! default subvolume the rotation would move.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType};

use super::*;
use crate::{ioctl, keep};

impl Rotation<'_> {
    /// Opens the directory at `path` (relative to the top level; empty is the
    /// top level itself); `None` when it does not exist.
    /// `field` names the configuration key the path comes from.
    pub(super) fn open_dir(&self, field: &str, path: &str) -> Result<Option<OwnedFd>> {
        let path = if path.is_empty() { "." } else { path };
        match open_beneath(self.top, OsStr::new(path)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                Err(self.not_a_directory(field, path, &e))
            }
            Err(e) => Err(self.io_err("open", path, e)),
        }
    }

    /// Why `path` (from the key `field`) could not be opened as a directory:
    /// the first component that is a symbolic link is named as one (tabula
    /// follows none), else the one that is not a directory.
    pub(super) fn not_a_directory(&self, field: &str, path: &str, e: &io::Error) -> Error {
        let mut here = String::new();
        for component in path.split('/') {
            here = join(&here, component);
            let Ok(st) = rustix::fs::statat(self.top, here.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                break;
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    let what = if here == path {
                        format!("{path} is a symbolic link")
                    } else {
                        format!("{here}, on the way to {path}, is a symbolic link")
                    };
                    return self.err(format_args!(
                        "`{field}` ({path}): {what}; tabula follows none: make it a real directory, or set `{field}` to the real path"
                    ));
                }
                FileType::Directory => {}
                other => {
                    return self.err(format_args!(
                        "`{field}` ({path}): {here} is {}; expected a directory or subvolume there",
                        Kind::Other(other).describe_file()
                    ));
                }
            }
        }
        self.io_err("open", path, io::Error::new(e.kind(), e.to_string()))
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
        moved: [(&str, &str, Kind); 2],
        old_roots: Option<&OldRoots>,
    ) -> Result<()> {
        let default = ioctl::default_subvol(self.top)
            .map_err(|e| self.io_err("read the default subvolume of", self.dev, e))?;
        if default == TOP_LEVEL {
            return Ok(());
        }
        let mut watched: Vec<(u64, String)> = Vec::new();
        for (name, shown, kind) in moved {
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
                let what = if id == default {
                    format!("{shown} is the default subvolume")
                } else {
                    format!("the default subvolume (id {default}) lies inside {shown}")
                };
                return Err(self.err(format_args!(
                    "{what} of this filesystem (`btrfs subvolume set-default`): a mount without subvol= would keep \
                     showing the previous root, and fail once it is pruned; nothing was changed. Make the top level \
                     the default again (`btrfs subvolume set-default 5 <mountpoint>`) and mount the root with \
                     subvol={}",
                    self.target.subvolume
                )));
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
