//! A Btrfs filesystem on a loop device, made fresh for one test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tabula_rollback::keep::timestamp_name;

use super::{DAY, mounts_under, run_ok, sh};

/// A Btrfs filesystem on a loop device, plus a scratch directory.
pub struct Image {
    pub dir: tempfile::TempDir,
    pub device: String,
    pub mnt: PathBuf,
    mounted: bool,
}

impl Image {
    pub fn new(size_mb: u64) -> Image {
        let dir = tempfile::Builder::new()
            .prefix("tabula-btrfs-")
            .tempdir()
            .expect("tempdir");
        let img = dir.path().join("disk.img");
        let f = std::fs::File::create(&img).expect("image");
        f.set_len(size_mb << 20).expect("image size");
        drop(f);
        sh("mkfs.btrfs", &["-q", "-f", img.to_str().unwrap()]);
        let device = sh("losetup", &["--find", "--show", img.to_str().unwrap()])
            .trim()
            .to_owned();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        Image {
            dir,
            device,
            mnt,
            mounted: false,
        }
    }

    /// A fresh 256 MiB image holding `@root`, mounted for the test to add
    /// to it.
    pub fn with_root() -> Image {
        let mut img = Image::new(256);
        img.mount();
        img.subvol("@root");
        img
    }

    /// The directory the rollback makes its mount points in.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        assert!(self.mounted, "mount the image first");
        self.mnt.join(rel)
    }

    /// Mounts the top level read-write for the test to arrange or inspect.
    pub fn mount(&mut self) {
        if !self.mounted {
            sh(
                "mount",
                &["-o", "subvolid=5", &self.device, self.mnt.to_str().unwrap()],
            );
            self.mounted = true;
        }
    }

    pub fn mount_ro(&mut self) {
        if !self.mounted {
            sh(
                "mount",
                &[
                    "-o",
                    "ro,subvolid=5",
                    &self.device,
                    self.mnt.to_str().unwrap(),
                ],
            );
            self.mounted = true;
        }
    }

    pub fn umount(&mut self) {
        if self.mounted {
            // udev and the kernel's own work on a just-changed loop device
            // can hold the mount for a moment: retry, then fail naming who
            // holds it.
            let mnt = self.mnt.to_str().unwrap();
            let unmounted = (0..20).any(|_| {
                run_ok("umount", &[mnt]) || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    false
                }
            });
            if !unmounted {
                let holders = Command::new("fuser")
                    .args(["-vm", mnt])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                panic!("umount {mnt}: still busy after 2 s; held by: {holders}");
            }
            self.mounted = false;
        }
        // Mounts an aborted run left behind.
        for m in mounts_under(&self.run_dir()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
            let _ = std::fs::remove_dir(&m);
        }
    }

    /// Commits the current transaction.
    pub fn sync(&self) {
        sh("btrfs", &["filesystem", "sync", self.mnt.to_str().unwrap()]);
    }

    pub fn subvol(&self, rel: &str) {
        sh(
            "btrfs",
            &[
                "-q",
                "subvolume",
                "create",
                self.path(rel).to_str().unwrap(),
            ],
        );
    }

    pub fn snapshot(&self, from: &str, to: &str, readonly: bool) {
        let (from, to) = (self.path(from), self.path(to));
        let mut args = vec!["-q", "subvolume", "snapshot"];
        if readonly {
            args.push("-r");
        }
        args.extend([from.to_str().unwrap(), to.to_str().unwrap()]);
        sh("btrfs", &args);
    }

    /// Makes `@old_roots` with one old root per age in `ages` (days before
    /// `now`), archived in the order given (oldest first, as boots do),
    /// each holding the subvolumes `nested` (paths inside it, outer first).
    /// Returns their names.
    pub fn old_roots(&self, now: i64, ages: &[i64], nested: &[&str]) -> Vec<String> {
        self.mkdir("@old_roots");
        let mut names = Vec::new();
        for age in ages {
            let name = timestamp_name(now - age * DAY);
            let base = format!("@old_roots/{name}");
            self.subvol(&base);
            for n in nested {
                self.subvol(&format!("{base}/{n}"));
            }
            names.push(name);
        }
        names
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).unwrap();
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    pub fn is_subvol(&self, rel: &str) -> bool {
        self.path(rel)
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir() && m.ino() == 256)
    }

    /// Every subvolume, by path from the top level.
    pub fn subvolumes(&self) -> Vec<String> {
        let out = sh("btrfs", &["subvolume", "list", self.mnt.to_str().unwrap()]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_once(" path ").map(|(_, p)| p.to_owned()))
            .collect();
        v.sort();
        v
    }

    /// The names in a directory, sorted.
    pub fn ls(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Path → (kind, size, mode, inode, content hash) of everything under `rel`.
    pub fn tree(&self, rel: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.path(rel), "", &mut out);
        out
    }

    /// The superblock generation: it moves with every committed change.
    pub fn generation(&self) -> u64 {
        assert!(!self.mounted);
        let out = sh("btrfs", &["inspect-internal", "dump-super", &self.device]);
        out.lines()
            .find_map(|l| l.strip_prefix("generation"))
            .and_then(|v| v.trim().parse().ok())
            .expect("generation in dump-super")
    }

    /// A complete listing: every subvolume with its ids, uuids and
    /// generations, and every file with its metadata and content hash.
    pub fn full_listing(&mut self) -> String {
        self.umount();
        let generation = self.generation();
        self.mount_ro();
        let subvols = sh(
            "btrfs",
            &[
                "subvolume",
                "list",
                "-a",
                "-c",
                "-g",
                "-u",
                "-q",
                "-R",
                self.mnt.to_str().unwrap(),
            ],
        );
        let tree = self.tree("");
        self.umount();
        let mut s = format!("generation {generation}\n{subvols}");
        for (k, v) in tree {
            writeln!(s, "{k} {v}").unwrap();
        }
        s
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
        for m in mounts_under(&self.run_dir()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let md = e.path().symlink_metadata().unwrap();
        let kind = if md.is_dir() {
            "d"
        } else if md.is_file() {
            "f"
        } else {
            "o"
        };
        let hash = if md.is_file() {
            hash_file(&e.path())
        } else {
            0
        };
        out.insert(
            path.clone(),
            format!(
                "{kind} size={} mode={:o} ino={} mtime={}.{} hash={hash:016x}",
                if md.is_dir() { 0 } else { md.size() },
                md.mode(),
                md.ino(),
                md.mtime(),
                md.mtime_nsec()
            ),
        );
        if md.is_dir() {
            walk(&e.path(), &path, out);
        }
    }
}

pub fn hash_file(p: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(&std::fs::read(p).unwrap());
    h.finish()
}
