//! What the boot makes again: the *regenerated* class of `diff`. Each rule
//! says how tabula knows (the reason printed with the entry):
//!
//! - a mount point of the running system is mounted again;
//! - a symlink into `/nix/store`, `/etc/static` or `/run/current-system` is
//!   linked again by the NixOS activation;
//! - a file of [`ACTIVATION_FILES`] is written again by the activation;
//! - a file listed in `/etc/.clean` was copied from the store by the etc
//!   activation, which copies it again;
//! - a path a line of systemd-tmpfiles' configuration creates, and the
//!   parents it makes on the way ([`crate::tmpfiles`]);
//! - a new directory that holds a persisted path or a mount point (the boot
//!   makes it to mount there), or holds only regenerated entries.
//!
//! Everything else is lost: the classification errs towards telling.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::BorrowedFd;

use rustix::fs::{Mode, OFlags};

use crate::btrfs::Change;
use crate::diff::{Class, Entry, Kind, is_within};
use crate::tmpfiles::Tmpfiles;

/// Files NixOS activation (re)writes at every boot, relative to the root,
/// with who writes them. Kept short on purpose: what is not here and not a
/// store link is reported as lost.
pub const ACTIVATION_FILES: &[(&str, &str)] = &[
    ("etc/.clean", "written by the etc activation (setup-etc.pl)"),
    ("etc/NIXOS", "written by the etc activation"),
    (
        "etc/.pwd.lock",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/passwd",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/group",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/shadow",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/subuid",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/subgid",
        "written by the users activation (update-users-groups.pl)",
    ),
    (
        "etc/.updated",
        "written by systemd-update-done at every boot",
    ),
    (
        "var/.updated",
        "written by systemd-update-done at every boot",
    ),
];

/// Classifies `entries` (sorted by path, all [`Class::Lost`] on entry):
/// `view` is what the changes were read from (the root subvolume or
/// dataset, or the root mount without what is mounted on it), `root` the
/// running system's root with its mounts (where systemd-tmpfiles' and the
/// store's files are).
pub fn classify(
    view: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    entries: &mut [Entry],
    persisted: &[Vec<u8>],
    mount_points: &BTreeSet<Vec<u8>>,
) {
    let etc_clean = read_etc_clean(view);
    for e in entries.iter_mut() {
        if let Some(why) = regenerated(view, &e.rel, e.kind, mount_points, &etc_clean) {
            e.class = Class::Regenerated(why);
        }
    }
    // A configuration file of systemd-tmpfiles that is lost itself (on
    // the way to it, a lost file or symlink) makes nothing at the next boot.
    let lost: BTreeSet<&[u8]> = entries
        .iter()
        .filter(|e| e.kind != Kind::Directory && e.class == Class::Lost)
        .map(|e| e.rel.as_slice())
        .collect();
    let survives = |rel: &[u8]| {
        !rel.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &rel[..i])
            .chain([rel])
            .any(|p| lost.contains(p))
    };
    let tmpfiles = Tmpfiles::read(root, &survives);
    for e in entries.iter_mut().filter(|e| e.class == Class::Lost) {
        if let Some(rule) = tmpfiles.makes(&e.rel, e.kind) {
            e.class = Class::Regenerated(format!(
                "made by systemd-tmpfiles at every boot: `{}` in {}",
                rule.line, rule.file
            ));
        }
    }
    classify_directories(entries, persisted, mount_points, &tmpfiles);
}

/// Why the boot makes `rel` again, or `None` when it does not (as far as
/// these rules know). Directories are decided later, from what they hold.
fn regenerated(
    view: BorrowedFd<'_>,
    rel: &[u8],
    kind: Kind,
    mount_points: &BTreeSet<Vec<u8>>,
    etc_clean: &BTreeSet<Vec<u8>>,
) -> Option<String> {
    if mount_points.contains(rel) {
        return Some("a mount point of the running system: mounted again at boot".to_owned());
    }
    if kind == Kind::Symlink {
        let target = rustix::fs::readlinkat(view, rel, Vec::new()).ok()?;
        let t = target.to_bytes();
        for prefix in [
            &b"/nix/store/"[..],
            b"/etc/static/",
            b"/run/current-system/",
        ] {
            if t.starts_with(prefix) {
                return Some(format!(
                    "a symlink into {}: NixOS activation links it again",
                    String::from_utf8_lossy(&prefix[..prefix.len() - 1])
                ));
            }
        }
        return None;
    }
    if kind == Kind::Directory {
        return None;
    }
    if let Some((_, who)) = ACTIVATION_FILES.iter().find(|(p, _)| p.as_bytes() == rel) {
        return Some((*who).to_owned());
    }
    if rel
        .strip_prefix(b"etc/")
        .is_some_and(|r| etc_clean.contains(r))
    {
        return Some(
            "listed in /etc/.clean: copied from the store by the etc activation".to_owned(),
        );
    }
    None
}

/// The files the etc activation copied (not linked) from the store, as
/// paths relative to /etc, from /etc/.clean on the root.
fn read_etc_clean(view: BorrowedFd<'_>) -> BTreeSet<Vec<u8>> {
    let Ok(fd) = rustix::fs::openat(
        view,
        c"etc/.clean",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return BTreeSet::new();
    };
    let mut text = Vec::new();
    let mut file = std::fs::File::from(fd);
    if std::io::Read::read_to_end(&mut file, &mut text).is_err() {
        return BTreeSet::new();
    }
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A new directory is regenerated when it holds a persisted path or a
/// mount point (the boot makes it to mount there), a path systemd-tmpfiles
/// makes (it makes the parents), or holds only regenerated entries;
/// otherwise it is lost.
fn classify_directories(
    entries: &mut [Entry],
    persisted: &[Vec<u8>],
    mount_points: &BTreeSet<Vec<u8>>,
    tmpfiles: &Tmpfiles,
) {
    // Children after their parents in path order; walk backwards.
    let index: BTreeMap<Vec<u8>, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.rel.clone(), i))
        .collect();
    let mut lost_inside: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut anything_inside: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[b].rel.cmp(&entries[a].rel));
    for i in order {
        let rel = entries[i].rel.clone();
        if entries[i].kind == Kind::Directory
            && entries[i].class == Class::Lost
            && entries[i].change == Change::New
        {
            let holds_kept = persisted
                .iter()
                .chain(mount_points.iter())
                .any(|p| p != &rel && is_within(p, &rel));
            if holds_kept {
                entries[i].class = Class::Regenerated(
                    "holds a persisted path or a mount point: made again at boot".to_owned(),
                );
            } else if let Some((path, rule)) = tmpfiles.under(&rel) {
                entries[i].class = Class::Regenerated(format!(
                    "made by systemd-tmpfiles on the way to /{}: `{}` in {}",
                    String::from_utf8_lossy(path),
                    rule.line,
                    rule.file
                ));
            } else if anything_inside.contains(&rel) && !lost_inside.contains(&rel) {
                entries[i].class = Class::Regenerated("holds only regenerated entries".to_owned());
            }
        }
        if let Some(pos) = rel.iter().rposition(|&b| b == b'/') {
            let parent = rel[..pos].to_vec();
            if index.contains_key(&parent) {
                anything_inside.insert(parent.clone());
                if entries[i].class == Class::Lost {
                    lost_inside.insert(parent);
                }
            }
        }
    }
}
