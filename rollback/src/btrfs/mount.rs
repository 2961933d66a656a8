//! The private mount of the filesystem's top level, as a guard that
//! unmounts, and the mapping of `mountOptions` to mount flags and Btrfs
//! options.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use tabula_config::BtrfsTarget;

use super::{Ctx, Error, Result};

/// The filesystem's top level (subvolid=5), mounted at a private directory.
pub(super) struct TopLevel {
    pub(super) dir: PathBuf,
    mounted: bool,
}

impl TopLevel {
    /// Mounts; returns the guard and the open top-level directory.
    pub(super) fn mount(target: &BtrfsTarget, ctx: &Ctx) -> Result<(TopLevel, OwnedFd)> {
        let dev = &target.device;
        let dir = make_private_dir(&ctx.run_dir)?;
        let (mut flags, data) = mount_options(&target.mount_options);
        if ctx.dry_run {
            flags |= MountFlags::RDONLY;
        }
        let cdata = CString::new(data.as_bytes()).map_err(|_| Error::MountOptionsNul {
            options: data.clone(),
        })?;
        if let Err(e) = rustix::mount::mount(dev.as_str(), &dir, "btrfs", flags, cdata.as_c_str()) {
            let _ = std::fs::remove_dir(&dir);
            return Err(Error::Mount {
                device: dev.clone(),
                options: format!("{data}{}", if ctx.dry_run { ",ro" } else { "" }),
                dir,
                source: e.into(),
            });
        }
        let opened =
            rustix::mount::mount_change(&dir, MountPropagationFlags::PRIVATE).and_then(|()| {
                rustix::fs::open(
                    &dir,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            });
        match opened {
            Ok(fd) => {
                log::info!(
                    "mounted {dev} (btrfs, {data}{}) at {}",
                    if ctx.dry_run { ",ro" } else { "" },
                    dir.display()
                );
                Ok((TopLevel { dir, mounted: true }, fd))
            }
            Err(e) => {
                let _ = rustix::mount::unmount(&dir, UnmountFlags::DETACH);
                let _ = std::fs::remove_dir(&dir);
                Err(Error::OpenTopLevel {
                    device: dev.clone(),
                    dir,
                    source: e.into(),
                })
            }
        }
    }

    /// Unmounts and removes the mount point; an error names what is left.
    pub(super) fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        let dir = self.dir.clone();
        if let Err(e) = rustix::mount::unmount(&dir, UnmountFlags::empty()) {
            log::warn!(
                "cannot unmount {}: {}; detaching it instead",
                dir.display(),
                io::Error::from(e)
            );
            rustix::mount::unmount(&dir, UnmountFlags::DETACH).map_err(|e| Error::Unmount {
                dir: dir.clone(),
                source: e.into(),
            })?;
        }
        std::fs::remove_dir(&dir).map_err(|source| Error::RemoveMountPoint {
            dir: dir.clone(),
            source,
        })?;
        log::info!("unmounted {}", dir.display());
        Ok(())
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Splits `mountOptions` as mount(8) does: the generic options become mount
/// flags (the kernel's Btrfs option parser refuses `noatime`), the options
/// only userspace understands (`defaults`, `nofail`, `x-systemd.*` …) are
/// dropped, the rest is passed to Btrfs after `subvolid=5`. The mount is
/// always `nosuid,nodev,noexec`: nothing is run from it.
pub(super) fn mount_options(options: &[String]) -> (MountFlags, String) {
    let mut flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mut data = String::from("subvolid=5");
    for opt in options {
        let flag = match opt.as_str() {
            "noatime" => MountFlags::NOATIME,
            "nodiratime" => MountFlags::NODIRATIME,
            "relatime" => MountFlags::RELATIME,
            "strictatime" => MountFlags::STRICTATIME,
            "lazytime" => MountFlags::LAZYTIME,
            "sync" => MountFlags::SYNCHRONOUS,
            "dirsync" => MountFlags::DIRSYNC,
            "defaults" | "rw" | "async" | "atime" | "diratime" | "norelatime" | "nolazytime"
            | "auto" | "noauto" | "nofail" | "user" | "nouser" | "users" | "owner" | "group"
            | "_netdev" | "suid" | "nosuid" | "dev" | "nodev" | "exec" | "noexec" => {
                MountFlags::empty()
            }
            o if o.starts_with("x-") || o.starts_with("comment=") => MountFlags::empty(),
            o => {
                data.push(',');
                data.push_str(o);
                continue;
            }
        };
        flags |= flag;
    }
    (flags, data)
}

/// Makes a new directory `tabula-rollback.<pid>.<n>`, mode 0700, in `run_dir`.
pub(super) fn make_private_dir(run_dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let pid = std::process::id();
    for n in 0..100 {
        let dir = run_dir.join(format!("tabula-rollback.{pid}.{n}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::MountPoint {
                    run_dir: run_dir.to_owned(),
                    source: Some(e),
                });
            }
        }
    }
    Err(Error::MountPoint {
        run_dir: run_dir.to_owned(),
        source: None,
    })
}
