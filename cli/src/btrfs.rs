//! The Btrfs side of `diff` and `roots`: the filesystem's top level,
//! mounted detached (visible to no other process, gone when the command
//! exits), and the changes of the root subvolume since its `blank`
//! template, read with the tree search that `btrfs subvolume find-new` uses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
use std::path::Path;
use tabula_btrfs::{
    FIRST_FREE_OBJECTID, INODE_EXTREF_KEY, INODE_ITEM_KEY, INODE_REF_KEY, InodeItem, Name, Search,
    ioctl,
};

use tabula_config::{BtrfsTarget, Config, RollbackTarget};

use crate::diff::Found;
use crate::{Error, Result};

/// The top level (subvolid=5) of the target's filesystem, mounted read-only
/// and detached: no path leads to it, and it disappears with the
/// descriptor.
pub fn mount_top(target: &BtrfsTarget) -> Result<OwnedFd> {
    let dev = &target.device;
    let fail = |what: &str, e: rustix::io::Errno| {
        Error::runtime(format!(
            "cannot mount the top level of {dev} ({what}: {e}); check that `device` holds a Btrfs filesystem and that you are root"
        ))
    };
    let fs = rustix::mount::fsopen("btrfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| fail("fsopen", e))?;
    rustix::mount::fsconfig_set_string(&fs, "source", dev.as_str())
        .map_err(|e| fail("source", e))?;
    rustix::mount::fsconfig_set_string(&fs, "subvolid", "5").map_err(|e| fail("subvolid=5", e))?;
    rustix::mount::fsconfig_create(&fs).map_err(|e| fail("create", e))?;
    let mount = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .map_err(|e| fail("fsmount", e))?;
    // fsmount gives an O_PATH descriptor; ioctls need an open directory.
    open_at(mount.as_fd(), ".").map_err(|e| fail("open", e))
}

/// Opens the subvolume (or directory) `name` below `dir` (the top level, or
/// an old-roots directory), never through a symlink.
pub fn open_at(dir: BorrowedFd<'_>, name: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// A path that differs from the template, relative to the subvolume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The path does not exist in the template (created, renamed to, a new
    /// hard link, or inside such a directory).
    New,
    /// The template has this path, with other content or metadata.
    Modified,
}

/// What [`scan`] finds: the changed inodes, and the names by inode.
type Scanned = (Vec<(u64, InodeItem)>, HashMap<u64, Vec<Name>>);

/// One pass over the tree blocks of `tree` written since transaction
/// `base`: the inodes changed after it, and the names found in those
/// blocks (a new inode's names were all written after `base`, so they are
/// all there).
fn scan(top: BorrowedFd<'_>, tree: u64, base: u64) -> std::io::Result<Scanned> {
    let mut changed = Vec::new();
    let mut scanned_names: HashMap<u64, Vec<Name>> = HashMap::new();
    let search = Search {
        min_objectid: FIRST_FREE_OBJECTID,
        min_type: INODE_ITEM_KEY,
        max_type: INODE_EXTREF_KEY,
        min_transid: base,
        ..Search::all(tree)
    };
    ioctl::tree_search(top, &search, |item| {
        match item.item_type {
            INODE_ITEM_KEY => {
                if let Some(inode) = InodeItem::parse(&item.data) {
                    if inode.transid > base {
                        changed.push((item.objectid, inode));
                    }
                }
            }
            INODE_REF_KEY | INODE_EXTREF_KEY => scanned_names
                .entry(item.objectid)
                .or_default()
                .extend(tabula_btrfs::parse_names(&item)),
            _ => {}
        }
        true
    })?;
    Ok((changed, scanned_names))
}

/// The paths of the root subvolume `tree` that differ from `blank_tree`,
/// which it is a snapshot of (taken in transaction `base`). Only tree
/// blocks written after `base` are read; a new directory is walked.
pub fn changes_since(
    top: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    tree: u64,
    blank_tree: u64,
    base: u64,
) -> Result<BTreeMap<Vec<u8>, Change>> {
    let io = |what: &str, e: std::io::Error| {
        Error::runtime(format!(
            "cannot read the root subvolume's tree ({what}): {e}"
        ))
    };
    // Btrfs keeps recent inode updates in memory (delayed inode items)
    // until its transaction commits; the tree search reads the tree, so
    // commit first, as `btrfs subvolume find-new` users must `sync`.
    rustix::fs::syncfs(top).map_err(|e| io("syncfs", e.into()))?;
    let (changed, mut scanned_names) = scan(top, tree, base).map_err(|e| io("tree search", e))?;
    let created: BTreeSet<u64> = changed
        .iter()
        .filter(|(_, inode)| inode.generation > base)
        .map(|(ino, _)| *ino)
        .collect();

    let mut found: BTreeMap<Vec<u8>, Change> = BTreeMap::new();
    let mut dirs: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut new_dirs = BTreeSet::new();
    for (ino, inode) in changed {
        let names = match scanned_names.remove(&ino) {
            Some(mut names) if created.contains(&ino) => {
                // A name in a created directory is found by the walk of
                // the outermost created directory, below.
                names.retain(|n| !created.contains(&n.parent));
                names
            }
            // An older inode may keep names in blocks not written since.
            _ => names_of(top, tree, ino).map_err(|e| io("names", e))?,
        };
        let is_dir = inode.mode & 0o170_000 == 0o040_000;
        let (old_names, modified) = if inode.generation > base {
            (BTreeSet::new(), false)
        } else {
            let (old, old_names) = inode_in(top, blank_tree, ino).map_err(|e| io("template", e))?;
            let modified = match old {
                None => true,
                Some(o) if is_dir => (o.mode, o.uid, o.gid) != (inode.mode, inode.uid, inode.gid),
                Some(o) => {
                    (o.mode, o.uid, o.gid, o.size, o.mtime, o.rdev)
                        != (
                            inode.mode,
                            inode.uid,
                            inode.gid,
                            inode.size,
                            inode.mtime,
                            inode.rdev,
                        )
                }
            };
            (old_names, modified)
        };
        for name in names {
            let is_new = !old_names.contains(&name);
            if !is_new && !modified {
                continue;
            }
            let dir = if let Some(d) = dirs.get(&name.parent) {
                d.clone()
            } else {
                let d = ioctl::ino_lookup(top, tree, name.parent).map_err(|e| io("path", e))?;
                dirs.insert(name.parent, d.clone());
                d
            };
            let mut path = dir;
            path.extend_from_slice(&name.name);
            if is_new && is_dir {
                new_dirs.insert(path.clone());
            }
            found.insert(
                path,
                if is_new {
                    Change::New
                } else {
                    Change::Modified
                },
            );
        }
    }
    // Subvolumes nested in the root go with it; they are not in its tree.
    for child in ioctl::children(root).map_err(|e| io("nested subvolumes", e))? {
        let (dir, name) =
            ioctl::child_path(root, child).map_err(|e| io("nested subvolume path", e))?;
        let mut path = dir;
        path.extend_from_slice(&name);
        new_dirs.insert(path.clone());
        found.insert(path, Change::New);
    }
    // What a new directory holds is new at its path, changed or not.
    for dir in new_dirs {
        let fd = rustix::fs::openat(
            root,
            dir.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let Ok(fd) = fd else { continue };
        crate::walk::walk(fd.as_fd(), &dir, &mut |p| {
            found.insert(p.to_vec(), Change::New);
        })
        .map_err(|e| io("walk", e))?;
    }
    Ok(found)
}

/// The names of inode `ino` in `tree`.
fn names_of(fd: BorrowedFd<'_>, tree: u64, ino: u64) -> std::io::Result<Vec<Name>> {
    Ok(inode_in(fd, tree, ino)?.1.into_iter().collect())
}

/// Inode `ino` of `tree` (`None`: no such inode) and its names.
fn inode_in(
    fd: BorrowedFd<'_>,
    tree: u64,
    ino: u64,
) -> std::io::Result<(Option<InodeItem>, BTreeSet<Name>)> {
    let mut inode = None;
    let mut names = BTreeSet::new();
    let search = Search {
        min_objectid: ino,
        max_objectid: ino,
        min_type: INODE_ITEM_KEY,
        max_type: INODE_EXTREF_KEY,
        ..Search::all(tree)
    };
    ioctl::tree_search(fd, &search, |item| {
        match item.item_type {
            INODE_ITEM_KEY => inode = InodeItem::parse(&item.data),
            INODE_REF_KEY | INODE_EXTREF_KEY => names.extend(tabula_btrfs::parse_names(&item)),
            _ => {}
        }
        true
    })?;
    Ok((inode, names))
}

/// Everything in the subvolume `sub` and in the subvolumes nested in it
/// (they go with the root at the next boot), as new.
fn walk_subvolume(sub: BorrowedFd<'_>) -> std::io::Result<BTreeMap<Vec<u8>, Change>> {
    let mut found = BTreeMap::new();
    crate::walk::walk(sub, b"", &mut |p| {
        found.insert(p.to_vec(), Change::New);
    })?;
    for child in ioctl::children(sub)? {
        let (mut path, name) = ioctl::child_path(sub, child)?;
        path.extend_from_slice(&name);
        if let Ok(fd) = rustix::fs::openat(
            sub,
            path.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            crate::walk::walk(fd.as_fd(), &path, &mut |p| {
                found.insert(p.to_vec(), Change::New);
            })?;
        }
    }
    Ok(found)
}

/// The changes of the running root, a Btrfs subvolume: the configuration's
/// Btrfs target whose subvolume is the root at `root` (the same device
/// number), read with the tree search since its `blank` template when the
/// root is a snapshot of it, else a walk of the subvolume and the
/// subvolumes nested in it. Returns what `diff` reports and the subvolume
/// (detached, read-only) to look the paths up through.
pub(crate) fn running_root_changes(
    config: &Config,
    root_fd: &OwnedFd,
    root: &Path,
) -> Result<Found> {
    let root_dev = rustix::fs::fstat(root_fd)
        .map_err(|e| Error::runtime(format!("stat {}: {e}", root.display())))?
        .st_dev;
    let targets: Vec<_> = config
        .rollback
        .iter()
        .filter_map(|t| match t {
            RollbackTarget::Btrfs(b) => Some(b),
            RollbackTarget::Zfs(_) => None,
        })
        .collect();
    for target in &targets {
        let top = mount_top(target)?;
        let Ok(sub) = open_at(top.as_fd(), &target.subvolume) else {
            continue;
        };
        let same = rustix::fs::fstat(&sub).is_ok_and(|st| st.st_dev == root_dev);
        if !same {
            continue;
        }
        let io = |e: std::io::Error| {
            Error::runtime(format!(
                "cannot read subvolume {} of {}: {e}",
                target.subvolume, target.device
            ))
        };
        let info = tabula_btrfs::ioctl::subvol_info(sub.as_fd()).map_err(io)?;
        let blank = match &target.blank {
            Some(b) => match open_at(top.as_fd(), b) {
                Ok(fd) => Some(tabula_btrfs::ioctl::subvol_info(fd.as_fd()).map_err(io)?),
                Err(_) => None,
            },
            None => None,
        };
        if let Some(blank) = blank.filter(|b| b.uuid == info.parent_uuid && b.uuid != [0; 16]) {
            let changes =
                changes_since(top.as_fd(), sub.as_fd(), info.id, blank.id, info.otransid)?;
            return Ok((
                "btrfs",
                format!(
                    "tree search of subvolume {} (id {}) since generation {}, when it was made from {}",
                    target.subvolume,
                    info.id,
                    info.otransid,
                    target.blank.as_deref().unwrap_or_default()
                ),
                sub,
                changes,
            ));
        }
        let found = walk_subvolume(sub.as_fd()).map_err(io)?;
        return Ok((
            "btrfs",
            match &target.blank {
                None => format!(
                    "a walk of subvolume {} (id {}): the next boot starts it empty",
                    target.subvolume, info.id
                ),
                Some(blank) => format!(
                    "a walk of subvolume {} (id {}): it is not a snapshot of {blank}, so all of it is listed",
                    target.subvolume, info.id
                ),
            },
            sub,
            found,
        ));
    }
    Err(Error::usage(format!(
        "{} is on Btrfs but is none of the root subvolumes the configuration rolls back ({}); expected the running root",
        root.display(),
        targets
            .iter()
            .map(|t| format!("{} on {}", t.subvolume, t.device))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
