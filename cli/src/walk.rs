//! A walk of a directory tree through file descriptors: no symlink is
//! followed, no other filesystem is entered.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Calls `found` with the path (relative to `dir`, which is `prefix`; no
/// leading `/`) of everything below `dir`, parents before children. A
/// directory on another device than `dir` is reported but not entered.
pub fn walk(
    dir: BorrowedFd<'_>,
    prefix: &[u8],
    found: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    let dev = rustix::fs::fstat(dir)?.st_dev;
    walk_dir(dir, prefix, dev, found)
}

fn walk_dir(
    dir: BorrowedFd<'_>,
    prefix: &[u8],
    dev: u64,
    found: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    let fd: OwnedFd = rustix::fs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut subdirs = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        found(&path);
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => {
                rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            }
            _ => false,
        };
        if is_dir {
            subdirs.push((entry.file_name().to_owned(), path));
        }
    }
    for (name, path) in subdirs {
        let sub = rustix::fs::openat(
            &fd,
            &name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if rustix::fs::fstat(&sub)?.st_dev != dev {
            continue;
        }
        walk_dir(sub.as_fd(), &path, dev, found)?;
    }
    Ok(())
}
