//! Pruning the old roots by the keep policy.

use std::os::fd::{AsFd, BorrowedFd};

use super::*;
use crate::{fault, ioctl, keep};

impl Rotation<'_> {
    /// Prunes the old roots by the keep policy. `archived` are the names
    /// this run gave the roots it put away (an interrupted run's previous
    /// root, then this boot's previous root), which it never prunes; in a
    /// dry run the previous root is still at `root_dir`/`root_name`.
    pub(super) fn prune(
        &self,
        old: &OldRoots,
        archived: &[Option<&str>; 2],
        root_dir: BorrowedFd<'_>,
        root_name: &str,
    ) -> Result<()> {
        let moved = archived[1];
        let mut names = Vec::new();
        if let Some(dir) = &old.fd {
            let subvolumes = subvolumes_in(dir.as_fd())
                .map_err(|e| self.io_err("list the subvolumes in", &old.path, e))?;
            let entries =
                rustix::fs::Dir::read_from(dir).map_err(|e| self.io_err("list", &old.path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| self.io_err("list", &old.path, e))?;
                let raw = entry.file_name().to_bytes();
                if raw == b"." || raw == b".." {
                    continue;
                }
                let shown = join(&old.path, &String::from_utf8_lossy(raw));
                let Ok(name) = std::str::from_utf8(raw) else {
                    log::warn!("{shown} has a name that is not UTF-8: left alone");
                    continue;
                };
                let id = subvolumes
                    .iter()
                    .find(|(s, _)| s.as_slice() == raw)
                    .map(|(_, id)| *id);
                let kind = if id.is_some() {
                    Kind::Subvolume
                } else {
                    self.kind(dir.as_fd(), name, &shown)?
                };
                match (kind, id) {
                    (Kind::Subvolume, Some(id)) => {
                        let order = ioctl::subvol_otransid(dir.as_fd(), id).map_err(|e| {
                            self.io_err("read the creation transaction of", &shown, e)
                        })?;
                        names.push(keep::OldRoot {
                            name: name.to_owned(),
                            order: (order, id),
                        });
                    }
                    (Kind::Subvolume, None) => {
                        return Err(self.err(format_args!(
                            "{shown} is a subvolume the kernel did not list in {}; the filesystem changed during the run",
                            old.path
                        )));
                    }
                    (Kind::Missing, _) => {}
                    (other, _) => log::warn!(
                        "{shown} is {}: not an old root, left alone",
                        other.describe()
                    ),
                }
            }
        }
        if let Some(m) = moved {
            if !names.iter().any(|n| n.name == m) {
                // A dry run did not move it; it is the most recent.
                names.push(keep::OldRoot {
                    name: m.to_owned(),
                    order: (u64::MAX, u64::MAX),
                });
            }
        }
        let archived: Vec<&str> = archived.iter().flatten().copied().collect();
        let plan = keep::plan(&names, self.ctx.now, &self.target.keep, &archived);
        crate::keep_report::report(&old.path, &plan, self.ctx.now);
        for name in &plan.prune {
            let shown = join(&old.path, name);
            match &old.fd {
                Some(dir) if !self.ctx.dry_run || moved != Some(name.as_str()) => {
                    self.destroy(dir.as_fd(), name, &shown)?;
                }
                // Dry run: the previous root is still in place.
                _ => self.destroy(root_dir, root_name, &shown)?,
            }
            fault::after("pruned");
        }
        Ok(())
    }
}
