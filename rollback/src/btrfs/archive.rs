//! Putting the previous root away: moved into the old roots under the
//! name of its creation time, or deleted; making the old-roots directory.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, RenameFlags};
use rustix::io::Errno;

use super::{Kind, OldRoots, Problem, Result, Rotation, join, kind_at, open_beneath};
use crate::{ioctl, keep};

impl Rotation<'_> {
    /// Puts the previous root `name` (in `dir`) away: moved into the old
    /// roots under the name of its creation time, or deleted when
    /// `oldRoots` is null. Returns the name it got in the old roots.
    pub(super) fn archive(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        info: &ioctl::SubvolInfo,
        old_roots: &mut Option<OldRoots>,
    ) -> Result<Option<String>> {
        let Some(old) = old_roots else {
            log::info!("oldRoots is null: the previous root is deleted");
            self.destroy(dir, name, shown)?;
            return Ok(None);
        };
        let old_dir = if let Some(fd) = &old.fd {
            Some(fd.as_fd())
        } else {
            let made = self.make_dirs(&old.path)?;
            old.fd = made;
            old.fd.as_ref().map(AsFd::as_fd)
        };
        let base = keep::timestamp_name(info.otime);
        for _ in 0..1000 {
            let taken = |candidate: &str| match old_dir {
                Some(d) => !matches!(kind_at(d, OsStr::new(candidate)), Ok(Kind::Missing)),
                None => false,
            };
            let target = keep::unique_name(&base, taken);
            let target_path = join(&old.path, &target);
            let what = format!("move {shown} to {target_path}");
            if self.ctx.dry_run {
                self.act(what, || Ok(()))?;
                return Ok(Some(target));
            }
            let Some(old_dir) = old_dir else {
                return Err(self.err(Problem::NotOpen {
                    path: old.path.clone(),
                }));
            };
            match rustix::fs::renameat_with(
                dir,
                name,
                old_dir,
                target.as_str(),
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => {
                    log::info!("{what}");
                    return Ok(Some(target));
                }
                // Taken between the look and the move: take the next name.
                Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(self.err(Problem::Action {
                        action: what,
                        source: e.into(),
                    }));
                }
            }
        }
        Err(self.err(Problem::NoFreeName {
            base,
            dir: old.path.clone(),
        }))
    }

    /// Makes the directory `path` (mode 0700) and its missing parents.
    pub(super) fn make_dirs(&self, path: &str) -> Result<Option<OwnedFd>> {
        let mut dir: Option<OwnedFd> = None;
        let mut done = String::new();
        for component in path.split('/') {
            let here = join(&done, component);
            let base = match &dir {
                Some(d) => d.as_fd(),
                None if done.is_empty() => self.top,
                None => {
                    // Dry run: the parent was not made, so neither is this.
                    self.act(format!("create directory {here}"), || Ok(()))?;
                    done = here;
                    continue;
                }
            };
            let next = match open_beneath(base, OsStr::new(component)) {
                Ok(fd) => Some(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.act(format!("create directory {here}"), || {
                        rustix::fs::mkdirat(base, component, Mode::from_raw_mode(0o700))
                            .map_err(io::Error::from)
                    })?;
                    if self.ctx.dry_run {
                        None
                    } else {
                        Some(
                            open_beneath(base, OsStr::new(component))
                                .map_err(|e| self.io_err("open", &here, e))?,
                        )
                    }
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                    return Err(self.not_a_directory("oldRoots", path, e));
                }
                Err(e) => return Err(self.io_err("open", &here, e)),
            };
            dir = next;
            done = here;
        }
        Ok(dir)
    }
}
