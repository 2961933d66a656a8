//! The metadata a copy carries over: times and extended attributes (owner
//! and mode are set by the copier, in the order its `finish` explains).

use std::ffi::CString;
use std::os::fd::BorrowedFd;

use rustix::fs::{FileType, Stat, Timespec, Timestamps};
use rustix::io::Errno;

/// The access and modification times of `st`, to set on the copy.
pub(super) fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec.try_into().unwrap_or(0),
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec.try_into().unwrap_or(0),
        },
    }
}

/// Copies every extended attribute of `src` to `dst` (none when the
/// source's filesystem has none).
pub(super) fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    if size == 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size];
    let n = rustix::fs::flistxattr(src, &mut names[..])?;
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let len = rustix::fs::fgetxattr_query(src, cname.as_c_str())?;
        let mut value = vec![0u8; len];
        let len = rustix::fs::fgetxattr(src, cname.as_c_str(), &mut value[..])?;
        rustix::fs::fsetxattr(
            dst,
            cname.as_c_str(),
            &value[..len],
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}

/// What an entry is, in messages.
pub(super) fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::RegularFile => "file",
        _ => "special file",
    }
}
