//! Deleting a subvolume with everything nested in it, leaves first,
//! nothing outside it.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use super::{Kind, MAX_DEPTH, Problem, Result, Rotation, cstr, kind_of, open_beneath};
use crate::{fault, ioctl};

impl Rotation<'_> {
    /// Deletes the subvolume `name` in `dir` and every subvolume nested in
    /// it, leaves first. Nothing outside it is touched: every nested path
    /// is resolved beneath the subvolume that holds it, and each nested
    /// subvolume is checked to be the one the kernel listed.
    pub(super) fn destroy(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<()> {
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io_err("look at", shown, e))?;
        if kind_of(&st) != Kind::Subvolume {
            return Err(self.err(Problem::NotDeletable {
                path: shown.to_owned(),
                kind: kind_of(&st),
            }));
        }
        self.destroy_nested(fd.as_fd(), shown, 0)?;
        let cname = cstr(name).map_err(|p| self.err(p))?;
        self.act(format!("delete subvolume {shown}"), || {
            ioctl::snap_destroy(dir, &cname)
        })
    }

    pub(super) fn destroy_nested(
        &self,
        fd: BorrowedFd<'_>,
        shown: &str,
        depth: usize,
    ) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.err(Problem::NestedTooDeep {
                path: shown.to_owned(),
            }));
        }
        let children =
            ioctl::children(fd).map_err(|e| self.io_err("list the subvolumes in", shown, e))?;
        for child in children {
            let (dir_path, name) = ioctl::child_path(fd, child)
                .map_err(|e| self.io_err("find the nested subvolumes of", shown, e))?;
            let child_shown = format!(
                "{shown}/{}{}",
                String::from_utf8_lossy(&dir_path),
                String::from_utf8_lossy(&name)
            );
            let dir_path = dir_path.strip_suffix(b"/").unwrap_or(&dir_path);
            let dir = if dir_path.is_empty() {
                open_beneath(fd, OsStr::new("."))
            } else {
                open_beneath(fd, OsStr::from_bytes(dir_path))
            }
            .map_err(|e| self.io_err("open the directory holding", &child_shown, e))?;
            let child_fd = open_beneath(dir.as_fd(), OsStr::from_bytes(&name))
                .map_err(|e| self.io_err("open", &child_shown, e))?;
            let info = ioctl::subvol_info(child_fd.as_fd())
                .map_err(|e| self.io_err("read the subvolume info of", &child_shown, e))?;
            if info.id != child.id {
                return Err(self.err(Problem::ChangedDuringRun {
                    path: child_shown,
                    found: info.id,
                    listed: child.id,
                }));
            }
            self.destroy_nested(child_fd.as_fd(), &child_shown, depth + 1)?;
            drop(child_fd);
            let cname = CString::new(name).map_err(|e| {
                self.err(Problem::NulInName {
                    name: String::from_utf8_lossy(&e.into_vec()).into_owned(),
                })
            })?;
            self.act(format!("delete subvolume {child_shown}"), || {
                ioctl::snap_destroy(dir.as_fd(), &cname)
            })?;
            fault::after("nested-destroyed");
        }
        Ok(())
    }
}
