//! Two rollback targets must not rotate or prune what the other keeps.

use super::RollbackTarget;
use super::check::FieldError;
use crate::names;

/// The names a target owns on its filesystem, with their field names: the
/// root, the blank and the old roots (Btrfs subvolumes, ZFS datasets).
fn owned_names(t: &RollbackTarget) -> Vec<(&'static str, &str)> {
    match t {
        RollbackTarget::Btrfs(b) => [
            Some(("subvolume", b.subvolume.as_str())),
            b.blank.as_deref().map(|n| ("blank", n)),
            b.old_roots.as_deref().map(|n| ("oldRoots", n)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        RollbackTarget::Zfs(z) => [
            Some(("dataset", z.dataset.as_str())),
            z.old_roots.as_deref().map(|n| ("oldRoots", n)),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// Where a target's names live: the Btrfs device, or the ZFS namespace
/// (dataset names carry their pool).
fn namespace(t: &RollbackTarget) -> Option<&str> {
    match t {
        RollbackTarget::Btrfs(b) => Some(&b.device),
        RollbackTarget::Zfs(_) => None,
    }
}

/// Two targets must not roll back, archive into or prune the same thing, as
/// far as the strings show: on one Btrfs device (or among ZFS datasets) no
/// name of one target (root, blank, old roots) may be or lie inside a name of
/// another. Two targets may share one `blank` (it is only read). What only
/// the filesystem shows (one filesystem under two device names) is checked
/// at boot.
pub(crate) fn check_distinct_targets(targets: &[RollbackTarget]) -> Result<(), FieldError> {
    for (i, a) in targets.iter().enumerate() {
        for (j, b) in targets.iter().enumerate().skip(i + 1) {
            let same_kind = matches!(
                (a, b),
                (RollbackTarget::Btrfs(_), RollbackTarget::Btrfs(_))
                    | (RollbackTarget::Zfs(_), RollbackTarget::Zfs(_))
            );
            if !same_kind || namespace(a) != namespace(b) {
                continue;
            }
            let (root_a, root_b) = (owned_names(a)[0], owned_names(b)[0]);
            if root_a.1 == root_b.1 {
                return Err((
                    format!("rollback[{j}]"),
                    format!("rolls back the same root as rollback[{i}]; expected each root once"),
                ));
            }
            for (ka, na) in owned_names(a) {
                for (kb, nb) in owned_names(b) {
                    if ka == "blank" && kb == "blank" {
                        continue;
                    }
                    // How b's name stands to a's.
                    let how = if na == nb {
                        "is the same as"
                    } else if names::is_within(nb, na) {
                        "is inside"
                    } else if names::is_within(na, nb) {
                        "contains"
                    } else {
                        continue;
                    };
                    let place = match namespace(a) {
                        Some(device) => format!(" on the same device {device:?}"),
                        None => String::new(),
                    };
                    return Err((
                        format!("rollback[{j}].{kb}"),
                        format!(
                            "{nb:?} {how} rollback[{i}].{ka} ({na:?}){place}; one target would rotate or prune what the other keeps: expected separate names for each target"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
