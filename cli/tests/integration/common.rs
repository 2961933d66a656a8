//! Real filesystems for the `tabula` tests: a Btrfs image on a loop device,
//! mounts that are undone on drop, and the `tabula` binary.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use tabula_testkit::sh;

/// What a test returns: a failing step stops it with its error.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A scratch directory whose mounts are undone (last first) on drop.
#[derive(Debug)]
pub struct Scratch {
    pub dir: tempfile::TempDir,
    mounts: Vec<PathBuf>,
    loops: Vec<String>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("tabula-cli-")
                .tempdir()
                .unwrap(),
            mounts: Vec::new(),
            loops: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh Btrfs filesystem on a loop device; returns the device.
    pub fn btrfs(&mut self, size_mb: u64) -> String {
        let img = self.path("disk.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(size_mb << 20).unwrap();
        drop(f);
        sh("mkfs.btrfs", &["-q", "-f", p(&img)]);
        let dev = sh("losetup", &["--find", "--show", p(&img)])
            .trim()
            .to_owned();
        self.loops.push(dev.clone());
        dev
    }

    /// A fresh Btrfs filesystem (256 MiB) with an empty `@root`, its top
    /// level mounted at `top` with `subvolid=5` and `extra` options
    /// (`",noatime"`); returns the device and that mount point.
    pub fn btrfs_with_root(&mut self, extra: &str) -> (String, PathBuf) {
        let dev = self.btrfs(256);
        let top = self.path("top");
        self.mount(&["-o", &format!("subvolid=5{extra}"), &dev], &top);
        sh(
            "btrfs",
            &["-q", "subvolume", "create", p(&top.join("@root"))],
        );
        (dev, top)
    }

    /// `mount ARGS... WHERE`, made first if missing; undone on drop.
    pub fn mount(&mut self, args: &[&str], at: &Path) {
        std::fs::create_dir_all(at).ok();
        let mut all: Vec<&str> = args.to_vec();
        all.push(p(at));
        sh("mount", &all);
        self.mounts.push(at.to_owned());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).output();
        }
    }
}

/// Runs the `tabula` binary.
pub fn tabula(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabula"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

/// Runs the `tabula` binary with its clock at `now` (Unix seconds, through
/// `TABULA_NOW`).
pub fn tabula_at(now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabula"))
        .args(args)
        .env("TABULA_NOW", now)
        .output()
        .unwrap()
}

/// Asserts that a command exited 0; otherwise fails showing its stderr.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `bytes` to `path` (making parents).
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `dir` joined with a relative path given as bytes.
pub fn join(dir: &Path, rel: &[u8]) -> PathBuf {
    dir.join(std::ffi::OsStr::from_bytes(rel))
}
