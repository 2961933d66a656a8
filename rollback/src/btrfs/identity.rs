//! Which filesystem a device holds, so that two targets naming one Btrfs
//! filesystem by different device strings (`/dev/disk/by-label/nixos` and
//! `/dev/vda2`, a symbolic link and its target, two device nodes of one
//! disk) are recognised before anything changes.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileExt;

use tabula_config::{BtrfsTarget, RollbackTarget, names::is_within};

use super::{Error, wait_for_device};

/// Where the primary Btrfs superblock lies, and its `fsid` and magic in it.
const SUPERBLOCK: u64 = 0x1_0000;
const FSID: std::ops::Range<usize> = 0x20..0x30;
const MAGIC: std::ops::Range<usize> = 0x40..0x48;
const BTRFS_MAGIC: &[u8] = b"_BHRfS_M";

/// What identifies the filesystem on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filesystem {
    /// The Btrfs filesystem UUID (`fsid`), the same on every device of a
    /// multi-device filesystem.
    Btrfs([u8; 16]),
    /// No Btrfs superblock could be read: the device number.
    Device(u64),
}

/// What filesystem `device` holds (a block device, or the file of an
/// image).
pub(super) fn identify(device: &str) -> io::Result<Filesystem> {
    let rdev = rustix::fs::stat(device)?.st_rdev;
    let mut block = [0u8; 0x48];
    let read = std::fs::File::open(device).and_then(|f| f.read_exact_at(&mut block, SUPERBLOCK));
    if read.is_ok() && &block[MAGIC] == BTRFS_MAGIC {
        let mut fsid = [0u8; 16];
        fsid.copy_from_slice(&block[FSID]);
        return Ok(Filesystem::Btrfs(fsid));
    }
    Ok(Filesystem::Device(rdev))
}

/// Whether two targets on one filesystem would touch each other's
/// subvolumes: one root inside the other, or old roots shared, or one's old
/// roots inside the other's root (where its rotation moves them).
fn overlap(a: &BtrfsTarget, b: &BtrfsTarget) -> Option<String> {
    let either = |x: &str, y: &str| is_within(x, y) || is_within(y, x);
    if either(&a.subvolume, &b.subvolume) {
        return Some(format!(
            "the root {} and the root {}",
            a.subvolume, b.subvolume
        ));
    }
    for (x, y) in [(a, b), (b, a)] {
        if let Some(old) = &x.old_roots {
            if is_within(old, &y.subvolume) || is_within(&y.subvolume, old) {
                return Some(format!("the oldRoots {old} and the root {}", y.subvolume));
            }
            if let Some(other) = &y.old_roots {
                if either(old, other) {
                    return Some(format!("the oldRoots {old} and the oldRoots {other}"));
                }
            }
        }
    }
    None
}

/// Refuses, before any change, two Btrfs targets whose devices hold one
/// filesystem and whose roots or old roots overlap: the second would rotate
/// or prune what the first has just archived. Targets on one filesystem
/// with separate subvolumes are fine. Waits for each device as its run
/// would.
///
/// A device that does not appear, or cannot be read, cannot overlap
/// another: its target's failure is returned under its index (the run
/// reports it and goes on with the other targets), not as a refusal of
/// every target.
pub fn check_distinct(targets: &[RollbackTarget]) -> Result<BTreeMap<usize, Error>, Error> {
    let mut seen: Vec<(usize, &BtrfsTarget, Filesystem)> = Vec::new();
    let mut unavailable = BTreeMap::new();
    for (j, target) in targets.iter().enumerate() {
        let RollbackTarget::Btrfs(b) = target else {
            continue;
        };
        if let Err(e) = wait_for_device(&b.device, b.wait_seconds) {
            unavailable.insert(j, e);
            continue;
        }
        let fs = match identify(&b.device) {
            Ok(fs) => fs,
            Err(e) => {
                unavailable.insert(
                    j,
                    Error::LookAtDevice {
                        device: b.device.clone(),
                        source: e,
                    },
                );
                continue;
            }
        };
        for (i, a, other) in &seen {
            if *other != fs {
                continue;
            }
            if let Some(overlap) = overlap(a, b) {
                return Err(Error::SameFilesystem {
                    target: j,
                    device: b.device.clone(),
                    earlier: *i,
                    earlier_device: a.device.clone(),
                    overlap,
                });
            }
        }
        seen.push((j, b, fs));
    }
    Ok(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(sub: &str, old: Option<&str>) -> BtrfsTarget {
        BtrfsTarget {
            device: "/dev/vda2".into(),
            mount_options: Vec::new(),
            subvolume: sub.into(),
            blank: None,
            old_roots: old.map(str::to_owned),
            keep: tabula_config::Keep::default(),
            wait_seconds: 0,
        }
    }

    #[test]
    fn separate_roots_on_one_filesystem_do_not_overlap() {
        let a = target("@root", Some("@old/root"));
        let b = target("@home-root", Some("@old/home"));
        assert_eq!(overlap(&a, &b), None);
        assert_eq!(overlap(&target("@a", None), &target("@b", None)), None);
    }

    #[test]
    fn shared_or_nested_paths_overlap() {
        let cases = [
            (target("@root", None), target("@root", None)),
            (target("@root", None), target("@root/nested", None)),
            (target("@a", Some("@old")), target("@b", Some("@old"))),
            (target("@a", Some("@old")), target("@b", Some("@old/b"))),
            (target("@a", Some("@b/old")), target("@b", None)),
            (target("@a", Some("@old")), target("@old/x", None)),
        ];
        for (a, b) in cases {
            assert!(overlap(&a, &b).is_some(), "{a:?} {b:?}");
            assert!(overlap(&b, &a).is_some(), "{b:?} {a:?}");
        }
    }
}
