//! The mount table: which paths under the running root are mount points.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Decodes the `\NNN` octal escapes of `/proc/self/mountinfo` fields.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    tabula_runtime::escape::unescape_octal(field, 3)
}

/// The mount points strictly under `root`, as paths relative to it (no
/// leading `/`), read from the mountinfo text `table`.
pub fn under(table: &[u8], root: &Path) -> BTreeSet<Vec<u8>> {
    let root = root.as_os_str().as_bytes();
    let root = if root.ends_with(b"/") {
        &root[..root.len() - 1]
    } else {
        root
    };
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(unescape)
        .filter_map(|point| {
            let rest = point.strip_prefix(root)?;
            let rel = rest.strip_prefix(b"/")?;
            (!rel.is_empty()).then(|| rel.to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_under_the_root_are_found_with_escapes_decoded() {
        let table = b"22 1 0:21 / / rw shared:1 - btrfs /dev/vda rw\n\
30 22 0:30 / /persist rw - btrfs /dev/vda rw\n\
31 22 0:30 /var/log /var/log rw - btrfs /dev/vda rw\n\
32 22 0:31 / /srv/a\\040b rw - tmpfs tmpfs rw\n\
40 1 0:40 / /mnt/t/root/x rw - tmpfs tmpfs rw\n";
        let all = under(table, Path::new("/"));
        let want: BTreeSet<Vec<u8>> = [&b"persist"[..], b"var/log", b"srv/a b", b"mnt/t/root/x"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        assert_eq!(all, want);
        let sub = under(table, Path::new("/mnt/t/root"));
        assert_eq!(sub, [b"x".to_vec()].into_iter().collect());
        assert!(under(table, Path::new("/mnt/t/ro")).is_empty());
    }
}
