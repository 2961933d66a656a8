//! Opening where a copy reads or writes: every directory on the way opened
//! beneath the root, never through a symlink.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::CString;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::output::escape;
use crate::{Error, Result};

/// Opens the directory that holds `rel` (a relative path, no `..`) under
/// `root`, never through a symlink; with `create`, makes missing
/// directories (mode 0755). Returns it and the last component, or `None`
/// when a directory is missing and not to be made.
pub fn open_parent(
    root: BorrowedFd<'_>,
    rel: &[u8],
    create: bool,
    same_fs: bool,
) -> Result<Option<(OwnedFd, CString)>> {
    let parts: Vec<&[u8]> = rel
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(Error::usage(
            "the path is the root itself; give a path below it",
        ));
    };
    if parts.iter().any(|p| *p == b"." || *p == b"..") {
        return Err(Error::usage(format!(
            "{} contains `.` or `..`; give a normalised absolute path",
            escape(rel)
        )));
    }
    let mut resolve =
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    if same_fs {
        resolve |= ResolveFlags::NO_XDEV;
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(root, c".", flags, Mode::empty())
        .map_err(|e| Error::runtime(format!("cannot open the root: {e}")))?;
    let mut walked = Vec::new();
    for part in dirs {
        walked.extend_from_slice(part);
        let mut next = rustix::fs::openat2(&dir, *part, flags, Mode::empty(), resolve);
        if matches!(next, Err(Errno::NOENT)) && create {
            rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755)).map_err(|e| {
                Error::runtime(format!(
                    "cannot make the directory {}: {e}",
                    escape(&walked)
                ))
            })?;
            next = rustix::fs::openat2(&dir, *part, flags, Mode::empty(), resolve);
        }
        if matches!(next, Err(Errno::NOENT)) {
            return Ok(None);
        }
        dir = next.map_err(|e| {
            let why = match e {
                Errno::LOOP | Errno::NOTDIR => "it is a symlink or not a directory, and tabula never follows a symlink out of the tree".to_owned(),
                Errno::XDEV => "it is on another filesystem (a mount point)".to_owned(),
                e => e.to_string(),
            };
            Error::runtime(format!("cannot open /{}: {why}", escape(&walked)))
        })?;
        walked.push(b'/');
    }
    let name = CString::new(last.to_vec())
        .map_err(|_| Error::usage("a path cannot contain a NUL byte"))?;
    Ok(Some((dir, name)))
}
