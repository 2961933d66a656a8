//! Where a storage is mounted from: `/etc/fstab` and the mount table, with
//! their octal escapes undone.

use std::path::Path;

/// Unescapes the `\NNN` octal escapes of `/etc/fstab` and the mount table.
pub(super) fn unoctal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of the mount table: where, what type, from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub point: String,
    pub fstype: String,
    pub source: String,
}

/// The mount table in `/proc/self/mountinfo` format, last mount last.
#[must_use]
pub fn read_mountinfo(file: &Path) -> Vec<Mounted> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next()?;
            Some(Mounted {
                point: unoctal(point),
                fstype: fstype.to_owned(),
                source: unoctal(source),
            })
        })
        .collect()
}

/// What is mounted at `point` now (the topmost mount).
pub(super) fn mounted_at<'a>(table: &'a [Mounted], point: &str) -> Option<&'a Mounted> {
    table.iter().rev().find(|m| m.point == point)
}

/// The dataset `storage` is mounted from: its `zfs` line in `ROOT/etc/fstab`,
/// else the mount table `ROOT/proc/self/mountinfo`.
#[must_use]
pub fn storage_dataset(root: &Path, storage: &str) -> Option<String> {
    let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap_or_default();
    for line in fstab.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && !f[0].starts_with('#') && unoctal(f[1]) == storage && f[2] == "zfs" {
            return Some(unoctal(f[0]));
        }
    }
    let table = read_mountinfo(&root.join("proc/self/mountinfo"));
    mounted_at(&table, storage)
        .filter(|m| m.fstype == "zfs")
        .map(|m| m.source.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_s_dataset_is_read_from_fstab_then_from_the_mount_table_escapes_undone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::write(
            root.join("etc/fstab"),
            "# rpool/x /persist zfs\n/dev/vda /data btrfs defaults 0 0\nrpool/safe/my\\040data /my\\040data zfs defaults 0 0\n",
        )
        .unwrap();
        std::fs::write(
            root.join("proc/self/mountinfo"),
            "36 1 0:32 / /persist rw shared:2 - zfs rpool/safe/persist rw\n\
             37 1 0:33 / /data rw shared:3 - btrfs /dev/vda rw\n",
        )
        .unwrap();
        assert_eq!(
            storage_dataset(root, "/my data").as_deref(),
            Some("rpool/safe/my data")
        );
        assert_eq!(
            storage_dataset(root, "/persist").as_deref(),
            Some("rpool/safe/persist")
        );
        assert_eq!(storage_dataset(root, "/data"), None);
        assert_eq!(storage_dataset(root, "/elsewhere"), None);
        assert_eq!(unoctal(r"a\134b\01"), r"a\b\01");
    }
}
