//! The rules for paths that end up in a unit file or a mount call: on top
//! of the name rules, what a unit file line carries and what fits in the
//! initrd.

use crate::names::{self, check_absolute_path, join};

/// Where the initrd mounts the real root: entries mounted in the initrd
/// (`inInitrd`) live below it there, and their paths must fit with it.
pub const SYSROOT: &str = "/sysroot";

/// A control character, surrounding whitespace or a trailing backslash: a
/// value that a unit file line would not carry as written.
pub fn unit_value_problem(s: &str) -> Option<&'static str> {
    if s.chars().any(char::is_control) {
        Some("contains a control character, which would end the line in a unit file")
    } else if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        Some("starts or ends with whitespace, which systemd strips from unit-file values")
    } else if s.ends_with('\\') {
        Some("ends with a backslash, which continues a line in a unit file")
    } else {
        None
    }
}

/// A path that ends up in a unit file or a mount call: an absolute path
/// ([`names::check_absolute_path`]) that a unit file carries as written.
pub fn check_path(s: &str) -> Result<(), String> {
    check_absolute_path(s)?;
    if let Some(why) = unit_value_problem(s) {
        return Err(why.to_owned());
    }
    Ok(())
}

/// A storage's mount point: a [`check_path`] path other than `/`.
pub(super) fn check_storage(s: &str) -> Result<(), String> {
    check_path(s)?;
    if s == "/" {
        return Err("is the root itself; expected the mount point of persistent storage, such as \"/persist\"".to_owned());
    }
    Ok(())
}

/// A path mounted in the initrd lives under [`SYSROOT`] there: it must fit
/// below the path length limit with that prefix.
pub(super) fn check_mounted_length(path: &str, in_initrd: bool) -> Result<(), String> {
    if in_initrd {
        names::check_path_length(&join(SYSROOT, path))
            .map_err(|why| format!("{why} (counting the {SYSROOT} prefix it has in the initrd)"))
    } else {
        names::check_path_length(path)
    }
}
