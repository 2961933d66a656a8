//! Which old roots the current boot archived, handed from stage 1 to the
//! pruning half.
//!
//! The pruning half never prunes the root the current boot archived. The
//! creation order tells which one that is in the common case (it is the most
//! recently created old root), but not when an old root was created after
//! the root it follows: a snapshot made by hand into `oldRoots`, or one
//! received with `btrfs receive` / `zfs receive`. So stage 1 also writes
//! what it archived into `<run dir>/tabula-archived` (`/run`, which both
//! initrd flavours hand over to the booted system), one line per old root:
//! the target's key, a tab, the old root's name. The pruning half protects
//! every name recorded for its target. A record that cannot be written is
//! logged and the rotation goes on: the creation order still protects the
//! common case.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

const FILE: &str = "tabula-archived";

/// Records that the target `key` archived the old roots `names` this boot
/// (replacing what an earlier run recorded for it: on a real machine `/run`
/// starts empty at every boot, and a test's runs stand for boots).
pub fn record(run_dir: &Path, key: &str, names: &[&str]) {
    let path = run_dir.join(FILE);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.split_once('\t').is_none_or(|(k, _)| k != key))
        .fold(String::new(), |mut text, line| {
            let _ = writeln!(text, "{line}");
            text
        });
    for name in names {
        let _ = writeln!(text, "{key}\t{name}");
    }
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        log::warn!(
            "cannot record in {} what this boot archived ({}): {e}; the pruning half protects it by creation order only",
            path.display(),
            names.join(", ")
        );
    }
}

/// The old roots the target `key` archived this boot, as recorded by
/// [`record`]; none when nothing was recorded.
#[must_use]
pub fn archived(run_dir: &Path, key: &str) -> Vec<String> {
    std::fs::read_to_string(run_dir.join(FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(k, _)| *k == key)
        .map(|(_, name)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_boot_archived_is_read_back_for_its_target_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (btrfs, zfs) = ("btrfs /dev/vda @old_roots", "zfs rpool/local/old_roots");
        assert!(archived(dir.path(), btrfs).is_empty());
        record(
            dir.path(),
            btrfs,
            &["2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z.1"],
        );
        record(dir.path(), zfs, &["2026-12-01T10:00:01Z"]);
        assert_eq!(
            archived(dir.path(), btrfs),
            ["2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z.1"]
        );
        assert_eq!(archived(dir.path(), zfs), ["2026-12-01T10:00:01Z"]);
        assert!(archived(dir.path(), "btrfs /dev/vdb @old_roots").is_empty());
        // A later run of one target replaces its own record only.
        record(dir.path(), btrfs, &[]);
        assert!(archived(dir.path(), btrfs).is_empty());
        assert_eq!(archived(dir.path(), zfs), ["2026-12-01T10:00:01Z"]);
    }
}
