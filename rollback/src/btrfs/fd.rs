//! Descriptor helpers: every path is opened beneath the directory it
//! belongs to, without following symbolic links; what a name is; the
//! subvolumes in a directory; names for messages.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Problem, SUBVOL_ROOT_INO};
use crate::ioctl;

/// The sorted names in the directory `dir`, without `.` and `..`.
pub(super) fn dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What a name in a directory is (as the refusals name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Subvolume,
    Directory,
    Other(FileType),
}

impl Kind {
    pub(super) fn describe(self) -> String {
        match self {
            Kind::Missing => "missing".to_owned(),
            Kind::Subvolume => "a subvolume".to_owned(),
            Kind::Directory => "a plain directory, not a subvolume".to_owned(),
            Kind::Other(_) => format!("{}, not a subvolume", self.describe_file()),
        }
    }

    /// What a file that is neither missing nor a directory is.
    pub(super) fn describe_file(self) -> String {
        match self {
            Kind::Other(FileType::Symlink) => "a symbolic link".to_owned(),
            Kind::Other(FileType::RegularFile) => "a file".to_owned(),
            Kind::Other(t) => format!("a {t:?}"),
            other => other.describe(),
        }
    }
}

pub(super) const OPEN_DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Path resolution that stays below the directory it starts from and never
/// follows a symbolic link: every path tabula opens comes from the config or
/// the kernel, and none of them may lead elsewhere.
pub(super) const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

pub(super) fn open_beneath(dir: BorrowedFd<'_>, path: &OsStr) -> io::Result<OwnedFd> {
    rustix::fs::openat2(dir, path, OPEN_DIR, Mode::empty(), BENEATH).map_err(io::Error::from)
}

pub(super) fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Kind> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(kind_of(&st)),
        Err(Errno::NOENT) => Ok(Kind::Missing),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn kind_of(st: &rustix::fs::Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory if st.st_ino == SUBVOL_ROOT_INO => Kind::Subvolume,
        FileType::Directory => Kind::Directory,
        t => Kind::Other(t),
    }
}

/// The names of the subvolumes directly in the directory `dir`, from the
/// filesystem's root references: no subvolume is opened, so the old roots
/// that stay are never read from disk.
pub(super) fn subvolumes_in(dir: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, u64)>> {
    let ino = rustix::fs::fstat(dir)?.st_ino;
    let mut names = Vec::new();
    for child in ioctl::children(dir)? {
        if child.dirid == ino {
            let (path, name) = ioctl::child_path(dir, child)?;
            if path.is_empty() {
                names.push((name, child.id));
            }
        }
    }
    Ok(names)
}

pub(super) fn cstr(name: &str) -> std::result::Result<CString, Problem> {
    CString::new(name).map_err(|_| Problem::NulInName {
        name: name.to_owned(),
    })
}

/// `a/b/@root` → (`a/b`, `@root`); `@root` → (empty, `@root`).
pub(super) fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

// `dir` + `/` + `name`, for messages; `dir` empty is the top level.
pub(super) use tabula_config::names::join_name as join;
