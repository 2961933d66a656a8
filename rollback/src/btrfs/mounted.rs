//! Refusing to move or delete what is mounted: the root or any subvolume
//! nested in it, the reserved new-root name, and the old roots the keep
//! policy is about to prune (with everything nested in them). Mounts are
//! read from `/proc/self/mountinfo`: each Btrfs mount names the subvolume it
//! shows (`subvolid=`) and its device, which is matched to this filesystem
//! by the superblock's UUID; a subvolume counts as mounted when it, or a
//! subvolume below it, is (root backrefs give the nesting).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::AtFlags;

use super::identity::{Filesystem, identify};
use super::{
    Kind, MAX_DEPTH, MountedRoot, MountedSubvolume, OldRoots, Problem, Result, Rotation, join,
    subvolumes_in, unescape_mountinfo,
};
use crate::{ioctl, keep};

/// One Btrfs mount of this filesystem: the subvolume it shows, and where.
struct Mount {
    subvolid: u64,
    mountpoint: String,
}

/// The Btrfs mounts in `mountinfo` of the filesystem `ours`, except those
/// below `skip` (this run's own mount).
fn mounts_of(mountinfo: &str, ours: Filesystem, skip: &Path) -> Vec<Mount> {
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        // `id parent major:minor root mountpoint options… - type source super-options`
        let Some(mountpoint) = line.split(' ').nth(4).map(unescape_mountinfo) else {
            continue;
        };
        let Some((_, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = after.split(' ');
        let (Some("btrfs"), Some(source), Some(options)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if Path::new(&mountpoint).starts_with(skip) {
            continue;
        }
        let subvolid = options
            .split(',')
            .find_map(|o| o.strip_prefix("subvolid="))
            .and_then(|v| v.parse::<u64>().ok());
        let Some(subvolid) = subvolid else { continue };
        if identify(&unescape_mountinfo(source)).is_ok_and(|fs| fs == ours) {
            found.push(Mount {
                subvolid,
                mountpoint,
            });
        }
    }
    found
}

impl Rotation<'_> {
    /// Refuses (a dry run only warns) when a subvolume this run moves or may
    /// delete, or one nested in it, is mounted anywhere. `moved` are the
    /// root and the reserved name; the old roots due for pruning are
    /// planned as the run will plan them, with the root archived last.
    pub(super) fn check_nothing_mounted(
        &self,
        parent: BorrowedFd<'_>,
        moved: &[(&str, &str, Kind)],
        old_roots: Option<&OldRoots>,
    ) -> Result<()> {
        let Ok(ours) = identify(self.dev) else {
            return Ok(());
        };
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = mounts_of(&info, ours, self.mount_dir);
        if mounts.is_empty() {
            return Ok(());
        }
        let mut watched: Vec<(u64, String)> = Vec::new();
        let mut archived = Vec::new();
        for &(name, shown, kind) in moved {
            if kind == Kind::Subvolume {
                let info = self.info(parent, name, shown)?;
                watched.push((info.id, shown.to_owned()));
                archived.push(keep::OldRoot {
                    name: keep::timestamp_name(info.otime),
                    order: (u64::MAX, info.id),
                });
            }
        }
        if let Some(OldRoots {
            path,
            fd: Some(dir),
        }) = old_roots
        {
            let mut roots = Vec::new();
            let mut ids = Vec::new();
            for (name, id) in subvolumes_in(dir.as_fd())
                .map_err(|e| self.io_err("list the subvolumes in", path, e))?
            {
                let name = String::from_utf8_lossy(&name).into_owned();
                let order = ioctl::subvol_otransid(dir.as_fd(), id).map_err(|e| {
                    self.io_err("read the creation transaction of", &join(path, &name), e)
                })?;
                ids.push((name.clone(), id));
                roots.push(keep::OldRoot {
                    name,
                    order: (order, id),
                });
            }
            let mut protected: Vec<String> = archived.iter().map(|r| r.name.clone()).collect();
            if self.ctx.mode == crate::Mode::PruneOnly {
                protected.extend(keep::most_recent(&roots).map(str::to_owned));
            }
            roots.extend(archived);
            let protected: Vec<&str> = protected.iter().map(String::as_str).collect();
            let plan = keep::plan(&roots, self.ctx.now, &self.target.keep, &protected);
            for (name, id) in ids {
                if plan.prune.contains(&name) {
                    watched.push((id, join(path, &name)));
                }
            }
        }
        for mount in &mounts {
            let mut id = mount.subvolid;
            for _ in 0..MAX_DEPTH {
                if let Some((_, shown)) = watched.iter().find(|(w, _)| *w == id) {
                    let mounted = MountedSubvolume {
                        path: shown.clone(),
                        mountpoint: mount.mountpoint.clone(),
                        nested: (id != mount.subvolid).then_some(mount.subvolid),
                    };
                    if self.ctx.dry_run {
                        log::warn!("{mounted}; a real run refuses");
                        return Ok(());
                    }
                    return Err(self.err(Problem::Mounted(mounted)));
                }
                match ioctl::subvol_parent(self.top, id).map_err(|e| {
                    self.io_err("look up the parent of a mounted subvolume of", self.dev, e)
                })? {
                    Some(parent) if parent != id => id = parent,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Refuses a root that is mounted (tabula run by hand on a booted
    /// system): it would move the running system's root away. A Btrfs mount
    /// whose mount point has the subvolume's device number (each subvolume
    /// has its own) shows it, or a part of it. A dry run only warns.
    pub(super) fn check_not_mounted(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
    ) -> Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io_err("look at", shown, e))?;
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(mountpoint) = info.lines().find_map(|line| {
            // `id parent major:minor root mountpoint options… - type source …`
            let mountpoint = unescape_mountinfo(line.split(' ').nth(4)?);
            let (_, after) = line.split_once(" - ")?;
            let same = after.starts_with("btrfs ")
                && !Path::new(&mountpoint).starts_with(self.mount_dir)
                && rustix::fs::stat(mountpoint.as_str()).is_ok_and(|m| m.st_dev == st.st_dev);
            same.then_some(mountpoint)
        }) else {
            return Ok(());
        };
        let mounted = MountedRoot {
            path: shown.to_owned(),
            mountpoint,
        };
        if self.ctx.dry_run {
            log::warn!("{mounted}; a real run refuses to rotate it");
            Ok(())
        } else {
            Err(self.err(Problem::RootMounted(mounted)))
        }
    }
}
