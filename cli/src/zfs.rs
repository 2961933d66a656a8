//! The ZFS side of `diff` and `roots`, through the `zfs` program (argument
//! vectors, never a shell).
//!
//! `diff` asks `zfs diff -H -F DATASET@SNAPSHOT DATASET`: ZFS finds the
//! changed objects from its block birth times, so the cost follows what
//! changed, and it never leaves the dataset (other datasets and bind
//! mounts are not its business). A walk of the dataset compared with the
//! snapshot's `.zfs/snapshot` view would read every file of both.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use tabula_config::ZfsTarget;

use crate::btrfs::Change;
use crate::{Error, Result};

fn run(target: &ZfsTarget, args: &[&str]) -> Result<String> {
    let out = Command::new(&target.zfs_command)
        .args(args)
        .output()
        .map_err(|e| {
            Error::runtime(format!(
                "cannot run {} {}: {e}; check `zfsCommand` in the configuration",
                target.zfs_command,
                args.join(" ")
            ))
        })?;
    if !out.status.success() {
        return Err(Error::runtime(format!(
            "{} {} failed ({}): {}",
            target.zfs_command,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| {
        Error::runtime(format!(
            "{} {} printed bytes that are not UTF-8",
            target.zfs_command,
            args.join(" ")
        ))
    })
}

/// Decodes `zfs diff`'s escapes: a byte outside printable ASCII, a space
/// or a backslash is written `\0NNN` (octal).
pub fn unescape(field: &str) -> Vec<u8> {
    tabula_runtime::escape::unescape_octal(field.as_bytes(), 4)
}

/// Parses `zfs diff -H -F` output into paths relative to `mountpoint`
/// (the dataset's mount point as `zfs diff` prints it): created (`+`),
/// modified (`M`, not directories: a directory changes whenever an entry
/// does) and renamed-to (`R`) paths. Removed (`-`) paths come back at the
/// next boot and are not listed.
pub fn parse_diff(text: &str, mountpoint: &[u8]) -> Result<BTreeMap<Vec<u8>, Change>> {
    let mut found = BTreeMap::new();
    let rel = |p: &str| -> Option<Vec<u8>> {
        let path = unescape(p);
        let base = mountpoint.strip_suffix(b"/").unwrap_or(mountpoint);
        let rest = path.strip_prefix(base)?;
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        (!rest.is_empty()).then(|| rest.to_vec())
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = || {
            Error::runtime(format!(
                "cannot read this line of zfs diff: {line:?}; expected CHANGE<TAB>TYPE<TAB>PATH"
            ))
        };
        let (change, kind, path) = match fields.as_slice() {
            [c, k, p] | [c, k, _, p] => (*c, *k, *p),
            _ => return Err(bad()),
        };
        match (change, kind) {
            ("+" | "R", _) => {
                if let Some(r) = rel(path) {
                    found.insert(r, Change::New);
                }
            }
            // A directory changes whenever an entry does; a removed path
            // comes back at the next boot.
            ("M", "/") | ("-", _) => {}
            ("M", _) => {
                if let Some(r) = rel(path) {
                    found.entry(r).or_insert(Change::Modified);
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(found)
}

/// The paths of the root dataset that differ from its snapshot.
pub fn diff(target: &ZfsTarget, root: &Path) -> Result<BTreeMap<Vec<u8>, Change>> {
    let snapshot = format!("{}@{}", target.dataset, target.snapshot);
    let text = run(target, &["diff", "-H", "-F", &snapshot, &target.dataset])?;
    let mountpoint = run(
        target,
        &["get", "-H", "-o", "value", "mountpoint", &target.dataset],
    )?;
    let mountpoint = match mountpoint.trim_end_matches('\n') {
        // A legacy mount point: zfs diff prints paths where it is mounted,
        // which for the running root is the root.
        "legacy" | "none" | "-" => root.as_os_str().as_bytes().to_vec(),
        m => m.as_bytes().to_vec(),
    };
    parse_diff(&text, &mountpoint)
}

/// Whether the filesystem `dataset` exists (`zfs list`); the error says
/// why not.
pub fn exists(target: &ZfsTarget, dataset: &str) -> Result<()> {
    run(
        target,
        &["list", "-H", "-o", "name", "-t", "filesystem", dataset],
    )
    .map(drop)
}

/// The old roots: the filesystems directly under `oldRoots`, with their
/// `creation` property (seconds since the epoch) and `createtxg` (the
/// pool's order of creation, which the rollback's keep policy ranks by).
pub fn old_roots(target: &ZfsTarget, old_roots: &str) -> Result<Vec<crate::roots::Found>> {
    let args = [
        "list",
        "-H",
        "-p",
        "-o",
        "name,creation,createtxg",
        "-t",
        "filesystem,volume",
        "-d",
        "1",
        old_roots,
    ];
    let text = run(target, &args)?;
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, creation, txg] = fields.as_slice() else {
            return Err(Error::runtime(format!(
                "cannot read this line of {} {}: {line:?}; expected a name, its creation time and its createtxg, tab-separated",
                target.zfs_command,
                args.join(" ")
            )));
        };
        let Some(short) = name
            .strip_prefix(old_roots)
            .and_then(|n| n.strip_prefix('/'))
        else {
            continue; // oldRoots itself
        };
        let txg: u64 = txg
            .trim()
            .parse()
            .map_err(|_| Error::runtime(format!("{name}: createtxg {txg:?} is not a number")))?;
        found.push((short.to_owned(), creation.trim().parse().ok(), (txg, 0)));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zfs_diff_output_becomes_the_new_and_modified_paths() {
        let text = "+\tF\t/etc/new\\0040file\n\
M\t/\t/etc\n\
M\tF\t/etc/hostname\n\
-\tF\t/etc/gone\n\
R\tF\t/var/old\t/var/renamed\n\
+\t/\t/srv/\\0377dir\n\
+\tF\t/srv/\\0377dir/a\\0012b\n";
        let got = parse_diff(text, b"/").unwrap();
        let want: BTreeMap<Vec<u8>, Change> = [
            (b"etc/new file".to_vec(), Change::New),
            (b"etc/hostname".to_vec(), Change::Modified),
            (b"var/renamed".to_vec(), Change::New),
            (b"srv/\xffdir".to_vec(), Change::New),
            (b"srv/\xffdir/a\nb".to_vec(), Change::New),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        assert!(parse_diff("garbage", b"/").is_err());
        let under_mnt = parse_diff("+\tF\t/mnt/root/x\n", b"/mnt/root").unwrap();
        assert_eq!(under_mnt.keys().collect::<Vec<_>>(), vec![&b"x".to_vec()]);
    }
}
