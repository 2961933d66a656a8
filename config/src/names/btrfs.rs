//! Btrfs subvolume names, relative to the filesystem's top level.

use super::paths::{check_components, control_char};
use super::{NAME_MAX, NEW_ROOT_SUFFIX, check_not_reserved};

/// A subvolume path relative to the top level of a Btrfs filesystem:
/// `@root`, `nixos/root`. Never absolute, never leaving the filesystem.
pub fn check_subvolume(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty; expected a subvolume name such as \"@root\"".to_owned());
    }
    if let Some(c) = control_char(s) {
        return Err(format!(
            "contains the control character {c:?}; expected a subvolume name such as \"@root\""
        ));
    }
    if s.starts_with('/') {
        return Err(
            "starts with `/`; expected a name relative to the filesystem's top level, such as \"@root\""
                .to_owned(),
        );
    }
    check_components(s.split('/'), "subvolume name relative to the top level")?;
    if let Some(c) = s.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(format!(
            "has a component of {} bytes; expected components of at most {NAME_MAX} bytes",
            c.len()
        ));
    }
    check_not_reserved(s)
}

/// The root subvolume (the `subvolume` field): a subvolume name whose last
/// component leaves room for [`NEW_ROOT_SUFFIX`] within [`NAME_MAX`].
pub fn check_root_subvolume(s: &str) -> Result<(), String> {
    check_subvolume(s)?;
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.len() + NEW_ROOT_SUFFIX.len() > NAME_MAX {
        return Err(format!(
            "has a last component of {} bytes; expected at most {} bytes, so that the new root's name (with {NEW_ROOT_SUFFIX:?}) fits in {NAME_MAX}",
            last.len(),
            NAME_MAX - NEW_ROOT_SUFFIX.len()
        ));
    }
    Ok(())
}
