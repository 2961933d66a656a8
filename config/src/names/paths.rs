//! Absolute and relative paths: normalised, without control characters,
//! within Linux's length limits.

use super::{NAME_MAX, PATH_MAX};

/// The first control character in `s` (NUL, newline, tab, DEL …), if any.
pub(super) fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

pub(super) fn check_components<'a>(
    components: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<(), String> {
    for component in components {
        match component {
            "" => {
                return Err(format!(
                    "has an empty component (`//` or a trailing `/`); expected a normalised {what}"
                ));
            }
            "." => return Err(format!("has a `.` component; expected a normalised {what}")),
            ".." => {
                return Err(format!(
                    "has a `..` component; expected a {what} that stays where it is written"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a path of [`PATH_MAX`] bytes or more, or with a component longer
/// than [`NAME_MAX`] bytes: the kernel refuses such a path, and systemd
/// cannot name its mount unit.
pub fn check_path_length(s: &str) -> Result<(), String> {
    if s.len() >= PATH_MAX {
        return Err(format!(
            "is {} bytes long; expected a path shorter than {PATH_MAX} bytes",
            s.len()
        ));
    }
    if let Some(c) = s.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(format!(
            "has a component of {} bytes; expected components of at most {NAME_MAX} bytes",
            c.len()
        ));
    }
    Ok(())
}

/// An absolute, normalised path without control characters: `/var/lib/foo`,
/// shorter than [`PATH_MAX`] bytes, components of at most [`NAME_MAX`]
/// bytes. The root `/` itself is accepted.
pub fn check_absolute_path(s: &str) -> Result<(), String> {
    if let Some(c) = control_char(s) {
        return Err(format!(
            "contains the control character {c:?}; expected a path without control characters"
        ));
    }
    let Some(rest) = s.strip_prefix('/') else {
        return Err("is not absolute; expected a path starting with `/`".to_owned());
    };
    if rest.is_empty() {
        return Ok(());
    }
    check_components(rest.split('/'), "absolute path")?;
    check_path_length(s)
}

/// A path relative to some base (a home directory): `Documents`, `.ssh/keys`.
pub fn check_relative_path(s: &str) -> Result<(), String> {
    if let Some(c) = control_char(s) {
        return Err(format!(
            "contains the control character {c:?}; expected a path without control characters"
        ));
    }
    if s.is_empty() {
        return Err("is empty; expected a relative path such as `Documents`".to_owned());
    }
    if s.starts_with('/') {
        return Err("is absolute; expected a path relative to the home directory".to_owned());
    }
    check_components(s.split('/'), "relative path")?;
    check_path_length(s)
}
