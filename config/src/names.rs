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

/// A name must not end in [`NEW_ROOT_SUFFIX`]: the rollback would take it
/// for its own unfinished new root.
fn check_not_reserved(s: &str) -> Result<(), String> {
    if s.ends_with(NEW_ROOT_SUFFIX) {
        return Err(format!(
            "ends in {NEW_ROOT_SUFFIX:?}, which tabula reserves for the new root it builds; expected another name"
        ));
    }
    Ok(())
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

/// A user or group name: not empty, at most 256 bytes, not starting with
/// `-`, without `:`, `/`, `,`, spaces or control characters.
pub fn check_user_name(s: &str) -> Result<(), String> {
    let valid = !s.is_empty()
        && s.len() <= 256
        && !s.starts_with('-')
        && !s
            .chars()
            .any(|c| c.is_control() || matches!(c, ':' | '/' | ' ' | ','));
    if valid {
        Ok(())
    } else {
        Err("is not a valid user or group name; expected 1 to 256 bytes, not starting with `-`, without `:`, `/`, `,`, spaces or control characters".to_owned())
    }
}

/// One mount option, as one list item: not empty, without `,` (which would
/// smuggle in a second option), whitespace, control characters, `\` or `"`
/// (which a unit file or the kernel's option parser would read differently).
pub fn check_mount_option(opt: &str) -> Result<(), String> {
    if opt.is_empty() || opt.contains(',') || opt.chars().any(char::is_whitespace) {
        return Err(
            "is not a single mount option; expected one option per list item, without commas or spaces, such as \"noatime\""
                .to_owned(),
        );
    }
    if opt.chars().any(char::is_control) || opt.contains('\\') || opt.contains('"') {
        return Err("contains a control character, a backslash or a quote; expected a plain mount option such as \"noatime\"".to_owned());
    }
    Ok(())
}

/// A mount option for the top level of a Btrfs filesystem being rolled back:
/// a [`check_mount_option`] option that leaves the mount writable and at the
/// top level. Refused: `ro` and `rescue=`/`norecovery` (a read-only mount
/// cannot rotate), `subvol=`/`subvolid=` (tabula mounts `subvolid=5`
/// itself), `bind`/`rbind`/`remount` (not a fresh mount of the device).
pub fn check_btrfs_mount_option(opt: &str) -> Result<(), String> {
    check_mount_option(opt)?;
    let name = opt.split('=').next().unwrap_or(opt);
    match name {
        "subvol" | "subvolid" => Err(
            "would mount something other than the top level; tabula mounts subvolid=5 itself, remove this option"
                .to_owned(),
        ),
        "ro" | "rescue" | "norecovery" => Err(
            "makes the rollback impossible: the mount would be read-only; remove it"
                .to_owned(),
        ),
        "bind" | "rbind" | "remount" => Err(
            "is not an option of a fresh mount of the device; remove it".to_owned(),
        ),
        _ => Ok(()),
    }
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

/// A unit name for `before`: `nix-daemon.service`.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    let valid = name.len() < 256
        && name.contains('.')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err("is not a unit name; expected a name such as \"nix-daemon.service\"".to_owned())
    }
}

/// `base` + `/` + `rel`, for absolute paths: `join("/home/a", ".ssh")` is
/// `/home/a/.ssh`, `join("/", "x")` is `/x`. A leading `/` of `rel` is
/// dropped, so `join("/persist", "/var/log")` is `/persist/var/log`.
pub fn join(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    let rel = rel.trim_start_matches('/');
    let mut out = String::with_capacity(base.len() + 1 + rel.len());
    out.push_str(base);
    out.push('/');
    out.push_str(rel);
    out
}

/// `parent` + `/` + `name` for names relative to a filesystem's top level or
/// a pool (subvolumes, datasets): an empty `parent` is the top level, so
/// `join_name("", "@root")` is `@root`, `join_name("@old", "x")` is `@old/x`.
pub fn join_name(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        let mut out = String::with_capacity(parent.len() + 1 + name.len());
        out.push_str(parent);
        out.push('/');
        out.push_str(name);
        out
    }
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
    fn joins_put_exactly_one_slash_between_the_parts() {
        assert_eq!(join("/home/a", ".ssh"), "/home/a/.ssh");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/persist", "/var/log"), "/persist/var/log");
        assert_eq!(join("/persist/", "var"), "/persist/var");
        assert_eq!(join_name("", "@root"), "@root");
        assert_eq!(join_name("@old", "x"), "@old/x");
        assert_eq!(
            join_name("rpool/old", "2026-11-21T00:00:00Z"),
            "rpool/old/2026-11-21T00:00:00Z"
        );
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
