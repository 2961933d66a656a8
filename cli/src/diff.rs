//! `tabula diff`: what the next boot erases.
//!
//! Three steps: find the paths of the ephemeral root that differ from what
//! the next boot starts from (per filesystem: [`crate::btrfs`],
//! [`crate::walk`] for tmpfs, [`crate::zfs`]); look each up (type, size,
//! modification time); classify it:
//!
//! - *persisted*: at or under a path a `persist` entry declares (it is
//!   mounted from the storage, so the root only holds its mount point):
//!   never listed;
//! - *regenerated*: what the boot makes again (see [`crate::classify`]);
//! - *lost*: everything else.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tabula_config::{Config, RollbackTarget};

pub use crate::btrfs::Change;
use crate::{Env, Error, Result};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDevice => "char-device",
            Kind::BlockDevice => "block-device",
        }
    }
}

/// Whether the next boot loses an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Lost,
    /// Made again at every boot; the reason says how tabula knows.
    Regenerated(String),
}

/// One path that the next boot erases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, without the leading `/`.
    pub rel: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
    pub change: Change,
    pub class: Class,
}

impl Entry {
    /// The absolute path on the running system.
    pub fn path(&self) -> Vec<u8> {
        let mut p = b"/".to_vec();
        p.extend_from_slice(&self.rel);
        p
    }
}

/// The answer of `diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `btrfs`, `tmpfs` or `zfs`.
    pub filesystem: &'static str,
    /// How the changed paths were found, for the curious.
    pub method: String,
    /// Sorted by path; persisted paths are never here.
    pub entries: Vec<Entry>,
    /// The storage `--nix` suggests (the first `persist` storage, else
    /// `/persist`).
    pub storage: String,
}

const BTRFS_MAGIC: i64 = 0x9123_683e;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The changed paths of a root, and a descriptor to look them up through.
pub(crate) type Found = (&'static str, String, OwnedFd, BTreeMap<Vec<u8>, Change>);

/// Opens the root a command reads (a usage error when it is not a
/// directory that can be opened).
pub(crate) fn open_root(root: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::usage(format!(
            "cannot open the root {}: {e}; expected a directory",
            root.display()
        ))
    })
}

/// Finds and classifies what the next boot erases on the root at `root`.
pub fn diff(config: &Config, root: &Path, env: &Env) -> Result<Report> {
    let root_fd = open_root(root)?;
    let fs_type = rustix::fs::fstatfs(&root_fd)
        .map_err(|e| Error::runtime(format!("cannot statfs {}: {e}", root.display())))?
        .f_type as i64;
    let table = std::fs::read(&env.mountinfo).map_err(|e| {
        Error::runtime(format!(
            "cannot read the mount table {}: {e}",
            env.mountinfo.display()
        ))
    })?;
    let mount_points = crate::mounts::under(&table, root);

    // Btrfs by the filesystem; a ZFS target in the configuration means a
    // ZFS root (whatever filesystem tests put at --root); else a tmpfs.
    let zfs_target = config.rollback.iter().find_map(|t| match t {
        RollbackTarget::Zfs(z) => Some(z),
        RollbackTarget::Btrfs(_) => None,
    });
    let (filesystem, method, view, changes): Found = if fs_type == BTRFS_MAGIC {
        crate::btrfs::running_root_changes(config, &root_fd, root)?
    } else if let Some(z) = zfs_target {
        let changes = crate::zfs::diff(z, root)?;
        let view = rustix::io::dup(&root_fd).map_err(|e| Error::runtime(format!("dup: {e}")))?;
        (
            "zfs",
            format!("zfs diff {}@{}", z.dataset, z.snapshot),
            view,
            changes,
        )
    } else if fs_type == TMPFS_MAGIC {
        tmpfs_changes(&root_fd, root)?
    } else {
        return Err(Error::usage(format!(
            "{} is neither a tmpfs nor a root that the configuration rolls back; expected the running root (tabula diff --root DIR)",
            root.display()
        )));
    };

    let persisted = persisted_paths(config, None);
    let mut entries = Vec::new();
    for (rel, change) in changes {
        if persisted.iter().any(|p| is_within(&rel, p)) {
            continue;
        }
        let Ok(st) = rustix::fs::statat(&view, rel.as_slice(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue; // gone since it was found
        };
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            _ => Kind::File,
        };
        entries.push(Entry {
            rel,
            kind,
            size: if kind == Kind::File {
                u64::try_from(st.st_size).unwrap_or(0)
            } else {
                0
            },
            mtime: st.st_mtime,
            change,
            class: Class::Lost,
        });
    }
    crate::classify::classify(
        view.as_fd(),
        root_fd.as_fd(),
        &mut entries,
        &persisted,
        &mount_points,
    );
    let storage = config
        .persist
        .first()
        .map_or_else(|| "/persist".to_owned(), |p| p.storage.clone());
    Ok(Report {
        filesystem,
        method,
        entries,
        storage,
    })
}

/// Everything on the tmpfs root, read through a copy of the root mount
/// without the mounts on top of it (`open_tree(OPEN_TREE_CLONE)`).
fn tmpfs_changes(root_fd: &OwnedFd, root: &Path) -> Result<Found> {
    let clone = rustix::mount::open_tree(
        root_fd,
        c".",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| {
        Error::runtime(format!(
            "cannot take a private view of the tmpfs root {}: {e}; are you root?",
            root.display()
        ))
    })?;
    let mut found = BTreeMap::new();
    crate::walk::walk(clone.as_fd(), b"", &mut |p| {
        found.insert(p.to_vec(), Change::New);
    })
    .map_err(|e| {
        Error::runtime(format!(
            "cannot walk the tmpfs root {}: {e}",
            root.display()
        ))
    })?;
    Ok((
        "tmpfs",
        "a walk of the tmpfs, without the mounts on it".to_owned(),
        clone,
        found,
    ))
}

/// Every persisted path of `storage` (all storages when `None`), relative
/// to the root (no leading `/`). The entries and their rules are the
/// config crate's ([`tabula_config::entries::check_entries`]): an entry it
/// rejects is not mounted at boot, so what is at its path is not persisted.
pub fn persisted_paths(config: &Config, storage: Option<&str>) -> Vec<Vec<u8>> {
    tabula_config::entries::check_entries(config)
        .persisted
        .into_iter()
        .filter(|p| storage.is_none_or(|s| p.storage == s))
        .map(|p| p.path.trim_start_matches('/').as_bytes().to_vec())
        .collect()
}

/// `path` is `dir` or inside it (both relative, normalised).
pub fn is_within(path: &[u8], dir: &[u8]) -> bool {
    path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}
