//! Pruning the old roots by the keep policy: the `--prune-only` half, and
//! the stage-1 safety valve that decides when the rotation prunes too.

use std::os::fd::{AsFd, BorrowedFd};

use super::{Kind, OldRoots, Problem, Result, Rotation, dir_names, join, subvolumes_in};
use crate::{fault, ioctl, keep};

impl Rotation<'_> {
    /// `--prune-only`: opens `O`, makes the refusals that concern it (the
    /// default subvolume inside an old root due for pruning, a mounted one),
    /// prunes by the keep policy and commits. `S` and `T` are not looked
    /// at: the root is mounted on a booted system, and an unfinished
    /// rotation is the next boot's to finish.
    pub(super) fn prune_only(&self) -> Result<()> {
        let Some(path) = &self.target.old_roots else {
            log::info!("oldRoots is null: there are no old roots to prune");
            return Ok(());
        };
        let old = OldRoots {
            path: path.clone(),
            fd: self.open_dir("oldRoots", path)?,
        };
        if old.fd.is_none() {
            log::info!("{path} does not exist yet: nothing to prune");
            return Ok(());
        }
        self.check_default_subvolume(self.top, &[], Some(&old))?;
        self.check_nothing_mounted(self.top, &[], Some(&old))?;
        self.prune(&old, &[None, None], self.top, "")?;
        // Commit now rather than at the unmount (a dry run's read-only
        // mount has nothing to commit: syncfs returns at once).
        rustix::fs::syncfs(self.top).map_err(|e| self.io_err("commit", self.dev, e))?;
        Ok(())
    }

    /// The stage-1 safety valve ([`crate::valve`]): why this boot must
    /// prune, or `None`. Costs one directory read of `O` and one `statfs`,
    /// whatever the old roots hold. Btrfs's `statfs` counts, as available,
    /// the free space in allocated data chunks plus the unallocated space
    /// data chunks could still take.
    pub(super) fn valve(&self, old: &OldRoots) -> Result<Option<String>> {
        let dated = match &old.fd {
            Some(dir) => dir_names(dir.as_fd())
                .map_err(|e| self.io_err("list", &old.path, e))?
                .iter()
                .filter(|n| {
                    std::str::from_utf8(n)
                        .ok()
                        .and_then(keep::parse_name)
                        .is_some()
                })
                .count(),
            None => 0,
        };
        let space = match rustix::fs::fstatvfs(self.top) {
            Ok(s) => Some((
                s.f_bavail.saturating_mul(s.f_frsize),
                s.f_blocks.saturating_mul(s.f_frsize),
            )),
            Err(e) => {
                log::warn!(
                    "cannot read the free space of {}: {e}; assuming enough",
                    self.dev
                );
                None
            }
        };
        Ok(crate::valve::reason(dated, space))
    }

    /// Prunes the old roots by the keep policy. `archived` are the names
    /// this run gave the roots it put away (an interrupted run's previous
    /// root, then this boot's previous root), which it never prunes; in a
    /// dry run the previous root is still at `root_dir`/`root_name`.
    /// How this target's archived roots are recorded for the pruning half
    /// ([`crate::this_boot`]).
    pub(super) fn this_boot_key(&self) -> String {
        format!(
            "btrfs {} {}",
            self.target.device,
            self.target.old_roots.as_deref().unwrap_or("")
        )
    }

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
                        return Err(self.err(Problem::Unlisted {
                            path: shown,
                            dir: old.path.clone(),
                        }));
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
        let recorded = crate::this_boot::archived(&self.ctx.run_dir, &self.this_boot_key());
        let mut archived: Vec<&str> = archived.iter().flatten().copied().collect();
        if self.ctx.mode == crate::Mode::PruneOnly {
            // The previous root of the current boot: as stage 1 recorded it,
            // and the most recently created.
            archived.extend(recorded.iter().map(String::as_str));
            archived.extend(keep::most_recent(&names));
        }
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
