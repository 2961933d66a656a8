//! Owners and modes, and the walk that opens (or creates) a path one
//! component at a time without following symlinks.

use std::fmt;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use log::info;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::Hook;
use crate::error::PrepareError;
use tabula_config::names::join;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mode: u32,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} {:04o}", self.uid, self.gid, self.mode)
    }
}

pub(super) const ROOT_DIR: Owner = Owner {
    uid: 0,
    gid: 0,
    mode: 0o755,
};

pub(super) struct Walker<'a> {
    pub(super) hook: Option<Hook<'a>>,
}

pub(super) fn errno_text(e: Errno, path: &str) -> PrepareError {
    PrepareError::os(e, path)
}

/// Like [`PrepareError::os`], but `O_DIRECTORY | O_NOFOLLOW` on a symlink gives
/// `ENOTDIR`: look at what `name` is to say it right.
pub(super) fn open_error(parent: impl AsFd, name: &str, e: Errno, path: &str) -> PrepareError {
    if e == Errno::NOTDIR {
        if let Ok(st) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                return errno_text(Errno::LOOP, path);
            }
        }
    }
    errno_text(e, path)
}

pub(super) fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits)
}

pub(super) fn open_dir(parent: impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Sets owner and mode through `fd` where they differ, saying so when
/// `report` (an existing entry corrected, not one just created).
///
/// A file (anything but a directory) with more than one hard link is never
/// changed: its other names may be anywhere on the filesystem (a root-owned
/// key, `/etc/shadow`), and a new owner or mode would apply to them too. The
/// entry fails instead; when nothing needs changing, nothing is changed.
pub(super) fn fix(
    fd: impl AsFd,
    want: Owner,
    path: &str,
    report: bool,
) -> Result<(), PrepareError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
    let file_type = FileType::from_raw_mode(st.st_mode);
    let owner_differs = st.st_uid != want.uid || st.st_gid != want.gid;
    let mode_differs = st.st_mode & 0o7777 != want.mode;
    if (owner_differs || mode_differs) && file_type != FileType::Directory && st.st_nlink > 1 {
        return Err(PrepareError::HardLinked {
            path: path.to_owned(),
            links: st.st_nlink,
        });
    }
    if owner_differs {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(want.uid)),
            Some(rustix::fs::Gid::from_raw(want.gid)),
        )
        .map_err(|errno| PrepareError::Chown {
            path: path.to_owned(),
            uid: want.uid,
            gid: want.gid,
            errno,
        })?;
        if report {
            info!(
                "{path}: owner {}:{} corrected to {}:{}",
                st.st_uid, st.st_gid, want.uid, want.gid
            );
        }
    }
    // chown clears set-id bits, so the mode is set (or checked) after it.
    let st2 = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
    if st2.st_mode & 0o7777 != want.mode {
        rustix::fs::fchmod(&fd, mode(want.mode)).map_err(|errno| PrepareError::Chmod {
            path: path.to_owned(),
            mode: want.mode,
            errno,
        })?;
        if report && st.st_mode & 0o7777 != want.mode {
            info!(
                "{path}: mode {:04o} corrected to {:04o}",
                st.st_mode & 0o7777,
                want.mode
            );
        }
    }
    Ok(())
}

impl Walker<'_> {
    pub(super) fn hook(&self, path: &str) {
        if let Some(h) = self.hook {
            h(path);
        }
    }

    /// Opens the existing directory `path` (absolute) below `root`, without
    /// following any symlink.
    pub(super) fn open_existing(
        &self,
        root: &OwnedFd,
        path: &str,
    ) -> Result<OwnedFd, PrepareError> {
        let mut fd = rustix::io::dup(root).map_err(|e| errno_text(e, "/"))?;
        let mut at = String::from("/");
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            at = join(&at, comp);
            fd = open_dir(&fd, comp).map_err(|e| open_error(&fd, comp, e, &at))?;
            self.hook(&at);
        }
        Ok(fd)
    }

    /// Walks from `fd` (the directory `base`) down to the parent of `path`,
    /// creating missing directories with `parent_owner(prefix)`; returns the
    /// parent's descriptor.
    pub(super) fn walk_parents(
        &self,
        mut fd: OwnedFd,
        base: &str,
        path: &str,
        parent_owner: &dyn Fn(&str) -> Owner,
    ) -> Result<(OwnedFd, String), PrepareError> {
        let not_under = || PrepareError::NotUnder {
            path: path.to_owned(),
            base: base.to_owned(),
        };
        let rest = path
            .strip_prefix(base)
            .map(|r| r.trim_start_matches('/'))
            .ok_or_else(not_under)?;
        let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, parents)) = comps.split_last() else {
            return Err(not_under());
        };
        let mut at = base.to_owned();
        for comp in parents {
            at = join(&at, comp);
            fd = self.ensure_dir(&fd, comp, &at, parent_owner(&at), false)?;
        }
        Ok((fd, (*last).to_owned()))
    }

    /// Opens or creates the directory `name` in `parent`; a created one gets
    /// `want`, an existing one is corrected to `want` only if `fix_existing`.
    pub(super) fn ensure_dir(
        &self,
        parent: &OwnedFd,
        name: &str,
        path: &str,
        want: Owner,
        fix_existing: bool,
    ) -> Result<OwnedFd, PrepareError> {
        match open_dir(parent, name) {
            Ok(fd) => {
                self.hook(path);
                if fix_existing {
                    fix(&fd, want, path, true)?;
                }
                Ok(fd)
            }
            Err(Errno::NOENT) => {
                // Created closed (0700, root) and opened without following:
                // if something replaces it in between, the open fails.
                match rustix::fs::mkdirat(parent, name, mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => {
                        return Err(PrepareError::Create {
                            path: path.to_owned(),
                            errno,
                        });
                    }
                }
                let fd = open_dir(parent, name).map_err(|e| open_error(parent, name, e, path))?;
                self.hook(path);
                fix(&fd, want, path, false)?;
                info!("created {path} ({want})");
                Ok(fd)
            }
            Err(e) => Err(open_error(parent, name, e, path)),
        }
    }

    /// Opens or creates the regular file `name` in `parent`; a created one
    /// gets `want`, an existing one is corrected to `want` only if
    /// `fix_existing`.
    pub(super) fn ensure_file(
        &self,
        parent: &OwnedFd,
        name: &str,
        path: &str,
        want: Owner,
        content: &str,
        fix_existing: bool,
    ) -> Result<OwnedFd, PrepareError> {
        let probe = rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match probe {
            Ok(p) => {
                let st = rustix::fs::fstat(&p).map_err(|e| errno_text(e, path))?;
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::RegularFile => {}
                    FileType::Symlink => return Err(errno_text(Errno::LOOP, path)),
                    _ => {
                        return Err(PrepareError::NotARegularFile {
                            path: path.to_owned(),
                        });
                    }
                }
                // Opening a regular file has no side effect; the identity
                // check catches a swap between the probe and this open.
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno_text(e, path))?;
                let st2 = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
                if (st.st_dev, st.st_ino) != (st2.st_dev, st2.st_ino) {
                    return Err(PrepareError::Changed {
                        path: path.to_owned(),
                    });
                }
                self.hook(path);
                if fix_existing {
                    fix(&fd, want, path, true)?;
                }
                Ok(fd)
            }
            Err(Errno::NOENT) => {
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode(0o600),
                )
                .map_err(|errno| PrepareError::Create {
                    path: path.to_owned(),
                    errno,
                })?;
                if !content.is_empty() {
                    let write_error = |error| PrepareError::Write {
                        path: PathBuf::from(path),
                        error,
                    };
                    let mut f = std::fs::File::from(fd.try_clone().map_err(write_error)?);
                    f.write_all(content.as_bytes()).map_err(write_error)?;
                }
                self.hook(path);
                fix(&fd, want, path, false)?;
                info!("created {path} ({want})");
                Ok(fd)
            }
            Err(e) => Err(errno_text(e, path)),
        }
    }
}
