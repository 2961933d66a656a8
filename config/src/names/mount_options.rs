//! Mount options: one option per list item, and what the top-level mount
//! of a Btrfs filesystem being rolled back may not carry.

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
