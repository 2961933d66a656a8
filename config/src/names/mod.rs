//! Checks for the strings that name things on disk: absolute paths, Btrfs
//! subvolume names, ZFS dataset and snapshot names.
//!
//! Each check returns `Err(reason)` with a sentence fragment that says what is
//! wrong and what is expected; the caller adds the field and the value.
//!
//! These are the contract's rules for single values. The NixOS module states
//! the same rules; `config/rules.json` holds the cases both sides are tested
//! against.

/// Appended to a root's name (a Btrfs subvolume's last component, a ZFS
/// dataset) for the new root under construction. A configured name must not
/// end in it, and must leave room for it.
pub const NEW_ROOT_SUFFIX: &str = ".tabula-new";

/// The longest file name (one path component) Linux allows, in bytes.
pub const NAME_MAX: usize = 255;

/// Paths must be shorter than this many bytes (Linux's `PATH_MAX` counts the
/// terminating NUL).
pub const PATH_MAX: usize = 4096;

/// The longest ZFS dataset name, in bytes (ZFS's `ZFS_MAX_DATASET_NAME_LEN`
/// minus its NUL).
pub const DATASET_MAX: usize = 255;

/// The length of an old root's name without a collision counter:
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub const OLD_ROOT_NAME_LEN: usize = 20;

/// Room kept for an old root below a ZFS `oldRoots` dataset: `/`, the dated
/// name, and a collision counter of up to four digits (`.1234`).
pub const ZFS_OLD_ROOT_ROOM: usize = 1 + OLD_ROOT_NAME_LEN + 5;

mod btrfs;
mod join;
mod mount_options;
mod paths;
mod system_names;
mod zfs;

pub use btrfs::{check_root_subvolume, check_subvolume};
pub use join::{is_within, join, join_name};
pub use mount_options::{check_btrfs_mount_option, check_mount_option};
pub use paths::{check_absolute_path, check_path_length, check_relative_path};
pub use system_names::{check_unit_name, check_user_name};
pub use zfs::{
    check_dataset, check_root_dataset, check_snapshot, check_zfs_command, check_zfs_old_roots,
};

/// A name must not end in [`NEW_ROOT_SUFFIX`]: the rollback would take it
/// for its own unfinished new root.
pub(crate) fn check_not_reserved(s: &str) -> Result<(), String> {
    if s.ends_with(NEW_ROOT_SUFFIX) {
        return Err(format!(
            "ends in {NEW_ROOT_SUFFIX:?}, which tabula reserves for the new root it builds; expected another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
