//! Checks for the strings that name things on disk: absolute paths, Btrfs
//! subvolume names, ZFS dataset and snapshot names.
//!
//! Each check returns `Err(reason)` with a sentence fragment that says what is
//! wrong and what is expected; the caller adds the field and the value.

/// The first control character in `s` (NUL, newline, tab, DEL …), if any.
fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

fn check_components<'a>(
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

/// An absolute, normalised path without control characters: `/var/lib/foo`.
/// The root `/` itself is accepted.
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
    check_components(rest.split('/'), "absolute path")
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
    check_components(s.split('/'), "relative path")
}

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
    if s.split('/').any(|c| c.len() > 255) {
        return Err("has a component longer than 255 bytes".to_owned());
    }
    Ok(())
}

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
    if s.len() > 255 {
        return Err("is longer than 255 bytes, ZFS's limit".to_owned());
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

/// Whether `inner` is `outer` or lies below it, component-wise
/// (`/a/bc` is not inside `/a/b`).
pub fn is_within(inner: &str, outer: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    match inner.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || outer.is_empty(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths() {
        for ok in ["/", "/var/log", "/home/alice/.ssh", "/with space/é"] {
            assert_eq!(check_absolute_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "var/log",
            "/var//log",
            "/var/log/",
            "/var/./log",
            "/var/../etc",
            "/a\nb",
            "/a\0b",
            "/a\tb",
        ] {
            assert!(check_absolute_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(check_relative_path(".ssh"), Ok(()));
        assert_eq!(check_relative_path("a/b c"), Ok(()));
        for bad in ["", "/abs", "a/../b", "..", "a/", "a\nb"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn subvolumes() {
        for ok in ["@root", "root", "nixos/root", "@old_roots", "a.b"] {
            assert_eq!(check_subvolume(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "/@root", "..", "@root/..", "a//b", "a/", "./a", "a\nb", "a\0b",
        ] {
            assert!(check_subvolume(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_subvolume(&"x".repeat(256)).is_err());
    }

    #[test]
    fn datasets_and_snapshots() {
        for ok in ["rpool/local/root", "tank", "rpool/a_b-c.d:e"] {
            assert_eq!(check_dataset(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/rpool",
            "rpool/",
            "rpool//x",
            "rpool/x@blank",
            "rpool/../x",
            "rpool/a b",
            "1pool",
            "rpool/x\n",
        ] {
            assert!(check_dataset(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_snapshot("blank"), Ok(()));
        for bad in ["", "a/b", "@blank", "bl ank", ".."] {
            assert!(check_snapshot(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn within() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/anything", "/"));
        assert!(is_within("@old/x", "@old"));
        assert!(!is_within("@old_roots", "@old"));
    }
}
