//! ZFS dataset and snapshot names, and the `zfs` command's path.

use super::paths::check_absolute_path;
use super::{DATASET_MAX, NEW_ROOT_SUFFIX, ZFS_OLD_ROOT_ROOM, check_not_reserved};

fn check_zfs_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("has an empty component; expected names like \"rpool/local/root\"".to_owned());
    }
    if c == "." || c == ".." {
        return Err(format!("has the component {c:?}, which ZFS does not allow"));
    }
    if let Some(bad) = c
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "contains {bad:?}; expected only letters, digits and `_ - . :` in each component"
        ));
    }
    Ok(())
}

/// A ZFS dataset name: `pool/child/grandchild`.
pub fn check_dataset(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty; expected a dataset such as \"rpool/local/root\"".to_owned());
    }
    if s.len() > DATASET_MAX {
        return Err(format!(
            "is {} bytes long; expected at most {DATASET_MAX} bytes, ZFS's limit",
            s.len()
        ));
    }
    if s.starts_with('/') {
        return Err(
            "starts with `/`; expected a dataset name such as \"rpool/local/root\", not a mount point"
                .to_owned(),
        );
    }
    for c in s.split('/') {
        check_zfs_component(c)?;
    }
    if s.starts_with(|c: char| !c.is_ascii_alphabetic()) {
        return Err("does not start with a letter; ZFS pool names must".to_owned());
    }
    check_not_reserved(s)
}

/// The dataset to roll back (the `dataset` field): a dataset inside a pool
/// (not the pool itself) whose name leaves room for [`NEW_ROOT_SUFFIX`]
/// within [`DATASET_MAX`].
pub fn check_root_dataset(s: &str) -> Result<(), String> {
    check_dataset(s)?;
    if !s.contains('/') {
        return Err(
            "is a whole pool; expected a dataset inside the pool, such as \"rpool/local/root\""
                .to_owned(),
        );
    }
    if s.len() + NEW_ROOT_SUFFIX.len() > DATASET_MAX {
        return Err(format!(
            "is {} bytes long; expected at most {} bytes, so that the new root's name (with {NEW_ROOT_SUFFIX:?}) fits in ZFS's {DATASET_MAX}",
            s.len(),
            DATASET_MAX - NEW_ROOT_SUFFIX.len()
        ));
    }
    Ok(())
}

/// A ZFS `oldRoots` dataset: a dataset name that leaves room for the old
/// roots below it ([`ZFS_OLD_ROOT_ROOM`]) within [`DATASET_MAX`].
pub fn check_zfs_old_roots(s: &str) -> Result<(), String> {
    check_dataset(s)?;
    if s.len() + ZFS_OLD_ROOT_ROOM > DATASET_MAX {
        return Err(format!(
            "is {} bytes long; expected at most {} bytes, so that the old roots' names below it fit in ZFS's {DATASET_MAX}",
            s.len(),
            DATASET_MAX - ZFS_OLD_ROOT_ROOM
        ));
    }
    Ok(())
}

/// A ZFS snapshot name, without the dataset and the `@`: `blank`.
pub fn check_snapshot(s: &str) -> Result<(), String> {
    if s.contains('/') || s.contains('@') {
        return Err(
            "contains `/` or `@`; expected the bare snapshot name, such as \"blank\"".to_owned(),
        );
    }
    check_zfs_component(s)
}

/// `zfsCommand`: a bare command name looked up in `PATH` (`zfs`), or an
/// absolute path to the program.
pub fn check_zfs_command(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("is not a command; expected \"zfs\" or the absolute path of the zfs program, such as \"/run/current-system/sw/bin/zfs\"".to_owned());
    }
    if !s.contains('/') {
        return Ok(());
    }
    check_absolute_path(s)?;
    if s == "/" {
        return Err(
            "is the root directory; expected the absolute path of the zfs program".to_owned(),
        );
    }
    Ok(())
}
