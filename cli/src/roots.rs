//! `tabula roots`: the old roots and what the keep policy does with each
//! at the next boot. The policy is the rollback's own
//! ([`tabula_rollback::keep::plan`]), called here, not re-implemented.

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
}

/// The old roots of every rollback target that keeps them.
pub fn list(config: &Config, env: &Env) -> Result<Vec<OldRoot>> {
    let now = env.now();
    let mut all = Vec::new();
    for target in &config.rollback {
        let (names, keep_policy, prefix): (Vec<(String, Option<i64>)>, Keep, String) = match target
        {
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
                    let otime = crate::btrfs::open_at(dir.as_fd(), &name)
                        .ok()
                        .and_then(|fd| tabula_btrfs::ioctl::subvol_info(fd.as_fd()).ok())
                        .map(|i| i.otime);
                    names.push((name, otime));
                }
                (names, b.keep, format!("{old}/"))
            }
            RollbackTarget::Zfs(z) => {
                let Some(old) = &z.old_roots else { continue };
                (crate::zfs::old_roots(z, old)?, z.keep, format!("{old}/"))
            }
        };
        let plain: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
        let plan = keep::plan(&plain, now, &keep_policy);
        for (name, created) in names {
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
            });
        }
    }
    all.sort_by(|a, b| {
        b.archived
            .cmp(&a.archived)
            .then(a.location.cmp(&b.location))
    });
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
