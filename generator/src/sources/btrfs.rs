//! A persisted directory as its own Btrfs subvolume: created through the
//! shared ioctl code (`tabula-btrfs`), `nodatacow` as the inode flag
//! `FS_NOCOW_FL` (set while the subvolume is empty), compression as the
//! `btrfs.compression` extended attribute of its top directory (what
//! `btrfs property set … compression` writes).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use log::{info, warn};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use tabula_btrfs::ioctl::{FS_NOCOW_FL, inode_flags, set_inode_flags, subvol_create};

use super::{Found, Verdict, look};

/// `BTRFS_SUPER_MAGIC`, the `f_type` of `statfs` on Btrfs.
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
const COMPRESSION: &str = "btrfs.compression";

// `f_type`'s integer type differs between targets (and libcs).
#[allow(clippy::unnecessary_cast)]
fn on_btrfs(fd: impl AsFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|st| st.f_type as i64 == BTRFS_SUPER_MAGIC)
}

/// Whether the directory open at `fd` is the top of a Btrfs subvolume.
pub fn is_subvolume(fd: &OwnedFd) -> bool {
    on_btrfs(fd)
        && rustix::fs::fstat(fd).is_ok_and(|st| st.st_ino == tabula_btrfs::FIRST_FREE_OBJECTID)
}

fn open(parent: &OwnedFd, name: &str, path: &str) -> Result<OwnedFd, String> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{path}: {e}"))
}

/// The `btrfs.compression` property of `fd`, `None` when unset.
pub fn compression(fd: &OwnedFd, path: &str) -> Result<Option<String>, String> {
    let mut buf = vec![0u8; 64];
    match rustix::fs::fgetxattr(fd, COMPRESSION, &mut buf) {
        Ok(n) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Err(Errno::NODATA) => Ok(None),
        Err(e) => Err(format!("cannot read {COMPRESSION} of {path}: {e}")),
    }
}

fn set_compression(fd: &OwnedFd, path: &str, want: Option<&str>) -> Result<(), String> {
    match want {
        Some(c) => rustix::fs::fsetxattr(
            fd,
            COMPRESSION,
            c.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| format!("cannot set the compression of {path} to {c}: {e}")),
        None => match rustix::fs::fremovexattr(fd, COMPRESSION) {
            Ok(()) | Err(Errno::NODATA) => Ok(()),
            Err(e) => Err(format!(
                "cannot remove the compression property of {path}: {e}"
            )),
        },
    }
}

fn nocow(fd: &OwnedFd, path: &str) -> Result<bool, String> {
    inode_flags(fd.as_fd())
        .map(|f| f & FS_NOCOW_FL != 0)
        .map_err(|e| format!("cannot read the inode flags of {path}: {e}"))
}

fn set_nocow(fd: &OwnedFd, path: &str, on: bool) -> Result<(), String> {
    let flags = inode_flags(fd.as_fd())
        .map_err(|e| format!("cannot read the inode flags of {path}: {e}"))?;
    let flags = if on {
        flags | FS_NOCOW_FL
    } else {
        flags & !FS_NOCOW_FL
    };
    set_inode_flags(fd.as_fd(), flags)
        .map_err(|e| format!("cannot set nodatacow={on} on {path}: {e}"))
}

/// Creates the subvolume `name` in `parent` with its properties.
fn create(
    parent: &OwnedFd,
    name: &str,
    path: &str,
    nodatacow: bool,
    compression: Option<&str>,
) -> Result<(), String> {
    let cname = CString::new(name).map_err(|_| format!("{path} has a NUL byte"))?;
    subvol_create(parent.as_fd(), &cname)
        .map_err(|e| format!("cannot create the subvolume {path}: {e}"))?;
    let fd = open(parent, name, path)?;
    // Empty now: the only moment nodatacow takes on what it holds.
    if nodatacow {
        set_nocow(&fd, path, true)?;
    }
    set_compression(&fd, path, compression)?;
    info!(
        "created the subvolume {path} (nodatacow {}, compression {})",
        if nodatacow { "on" } else { "off" },
        compression.unwrap_or("unset")
    );
    Ok(())
}

/// Sets what drifted from the configuration back, logging each.
fn correct(
    fd: &OwnedFd,
    path: &str,
    empty: bool,
    nodatacow: bool,
    want: Option<&str>,
) -> Result<(), String> {
    if nocow(fd, path)? != nodatacow {
        set_nocow(fd, path, nodatacow)?;
        if empty {
            info!("{path}: nodatacow set back to {nodatacow} as the configuration says");
        } else {
            warn!(
                "{path}: nodatacow set back to {nodatacow} as the configuration says; it applies to files created from now on, the files already there keep theirs (copy them to change it)"
            );
        }
    }
    let now = compression(fd, path)?;
    if now.as_deref() != want {
        set_compression(fd, path, want)?;
        info!(
            "{path}: compression was {}, set to {} as the configuration says",
            now.as_deref().unwrap_or("unset"),
            want.unwrap_or("unset")
        );
    }
    Ok(())
}

/// Brings `name` in `parent` to a subvolume as configured.
pub fn ensure(
    parent: &OwnedFd,
    name: &str,
    path: &str,
    nodatacow: bool,
    compression: Option<&str>,
) -> Result<Verdict, String> {
    if !on_btrfs(parent) {
        return Err(format!(
            "the directory that holds {path} is not on Btrfs; a subvolume needs a Btrfs storage (remove \"btrfs\" from the entry)"
        ));
    }
    let found = look(parent, name, path)?;
    if found == Found::Nothing {
        create(parent, name, path, nodatacow, compression)?;
        return Ok(Verdict::Ready { created: true });
    }
    let fd = open(parent, name, path)?;
    if is_subvolume(&fd) {
        correct(&fd, path, found == Found::EmptyDir, nodatacow, compression)?;
        return Ok(Verdict::Ready { created: false });
    }
    if found == Found::DirWithData {
        return Ok(Verdict::Plain);
    }
    // An empty plain directory holds nothing to lose: it becomes the
    // subvolume (it fails, and stays, if a file appeared meanwhile).
    drop(fd);
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        .map_err(|e| format!("cannot replace the empty directory {path} by a subvolume: {e}"))?;
    info!("{path}: the empty directory is replaced by a subvolume");
    create(parent, name, path, nodatacow, compression)?;
    Ok(Verdict::Ready { created: true })
}
