//! `tabula roots`: the old roots and what the keep policy does with each
//! at the next boot. The policy is the rollback's own
//! ([`tabula_rollback::keep::plan`]), called here, not re-implemented, with
//! the same order of creation it ranks by (Btrfs `otransid`, ZFS
//! `createtxg`); the list is shown in that order, most recent first.

use std::io::Write;
use std::os::fd::AsFd;

use serde_json::json;
use tabula_config::{Config, Keep, RollbackTarget};
use tabula_rollback::keep;

use crate::{Env, Error, Result};

/// What happens to an old root at the next boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Kept,
    Pruned,
    /// Its name is not a timestamp: never pruned.
    Pinned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldRoot {
    /// Where it is: `@old_roots/2026-…` (Btrfs) or `rpool/old/2026-…` (ZFS).
    pub location: String,
    pub name: String,
    /// When it was archived (the root's creation time), seconds since 1970:
    /// from the name, else from the filesystem.
    pub archived: Option<i64>,
    pub fate: Fate,
    /// The filesystem's order of creation (see `keep::OldRoot::order`):
    /// larger is more recently archived.
    pub order: (u64, u64),
}

/// An old root as listed: its name, creation time (seconds since 1970, if
/// known) and the filesystem's order of creation.
pub type Found = (String, Option<i64>, (u64, u64));

/// The old roots of every rollback target that keeps them.
pub fn list(config: &Config, env: &Env) -> Result<Vec<OldRoot>> {
    let now = env.now();
    let mut all = Vec::new();
    for target in &config.rollback {
        let (names, keep_policy, prefix): (Vec<Found>, Keep, String) = match target {
            RollbackTarget::Btrfs(b) => {
                let Some(old) = &b.old_roots else { continue };
                let top = crate::btrfs::mount_top(b)?;
                let dir = match crate::btrfs::open_at(top.as_fd(), old) {
                    Ok(d) => d,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => {
                        return Err(Error::runtime(format!(
                            "cannot open {old} on {}: {e}",
                            b.device
                        )));
                    }
                };
                let mut names = Vec::new();
                let entries = rustix::fs::Dir::read_from(&dir).map_err(|e| {
                    Error::runtime(format!("cannot list {old} on {}: {e}", b.device))
                })?;
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name == "." || name == ".." {
                        continue;
                    }
                    // Only subvolumes are old roots (their top inode is 256).
                    let is_subvolume = rustix::fs::statat(
                        &dir,
                        entry.file_name(),
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .is_ok_and(|st| {
                        st.st_ino == tabula_btrfs::FIRST_FREE_OBJECTID
                            && rustix::fs::FileType::from_raw_mode(st.st_mode)
                                == rustix::fs::FileType::Directory
                    });
                    if !is_subvolume {
                        continue;
                    }
                    let info = crate::btrfs::open_at(dir.as_fd(), &name)
                        .map_err(std::io::Error::from)
                        .and_then(|fd| tabula_btrfs::ioctl::subvol_info(fd.as_fd()))
                        .map_err(|e| {
                            Error::runtime(format!(
                                "cannot read old root {old}/{name} on {}: {e}",
                                b.device
                            ))
                        })?;
                    // The filesystem's order of creation, as the rollback
                    // ranks old roots: creation transaction, then id.
                    names.push((name, Some(info.otime), (info.otransid, info.id)));
                }
                (names, b.keep, format!("{old}/"))
            }
            RollbackTarget::Zfs(z) => {
                let Some(old) = &z.old_roots else { continue };
                (crate::zfs::old_roots(z, old)?, z.keep, format!("{old}/"))
            }
        };
        let ordered: Vec<keep::OldRoot> = names
            .iter()
            .map(|(name, _, order)| keep::OldRoot {
                name: name.clone(),
                order: *order,
            })
            .collect();
        let plan = keep::plan(&ordered, now, &keep_policy, &[]);
        for (name, created, order) in names {
            let fate = if plan.prune.contains(&name) {
                Fate::Pruned
            } else if plan.pinned.contains(&name) {
                Fate::Pinned
            } else {
                Fate::Kept
            };
            all.push(OldRoot {
                location: format!("{prefix}{name}"),
                archived: keep::parse_name(&name).or(created),
                name,
                fate,
                order,
            });
        }
    }
    all.sort_by(|a, b| b.order.cmp(&a.order).then(a.location.cmp(&b.location)));
    Ok(all)
}

/// Prints the old roots, newest first.
pub fn print(roots: &[OldRoot], as_json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let fate = |f: Fate| match f {
        Fate::Kept => "kept",
        Fate::Pruned => "pruned at the next boot",
        Fate::Pinned => "pinned (never pruned)",
    };
    if as_json {
        let list: Vec<_> = roots
            .iter()
            .map(|r| {
                json!({
                    "location": r.location,
                    "name": r.name,
                    "archived": r.archived,
                    "pinned": r.fate == Fate::Pinned,
                    "next_boot": match r.fate { Fate::Kept | Fate::Pinned => "keep", Fate::Pruned => "prune" },
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &list)?;
        return writeln!(out);
    }
    if roots.is_empty() {
        return writeln!(out, "no old roots");
    }
    writeln!(
        out,
        "{:<22}  {:<24}  old root",
        "archived (UTC)", "next boot"
    )?;
    for r in roots {
        let when = r
            .archived
            .map_or_else(|| "unknown".to_owned(), keep::timestamp_name);
        writeln!(out, "{when:<22}  {:<24}  {}", fate(r.fate), r.location)?;
    }
    Ok(())
}
