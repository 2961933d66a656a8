//! The prepare step for real, as root, in a temporary root: owners and modes
//! of every created parent, correction of wrong owners and modes, and a
//! non-root user's tree full of planted symlinks (and a directory swapped
//! for a symlink between check and use) that must not make it touch
//! anything outside.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tabula_generator::prepare::Options;

mod file_methods;
mod owners_and_modes;
mod symlinks_and_hard_links;

const ALICE: u32 = 4242;
const USERS: u32 = 4100;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    opts: Options,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("persist")).expect("mkdir");
    fs::create_dir_all(root.join("outside")).expect("mkdir");
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(
        &passwd,
        format!("root:x:0:0::/root:/bin/sh\nalice:x:{ALICE}:{USERS}::/home/alice:/bin/sh\n"),
    )
    .expect("write");
    fs::write(
        &group,
        format!("root:x:0:\nusers:x:{USERS}:\nwheel:x:10:\n"),
    )
    .expect("write");
    let opts = Options {
        root: root.clone(),
        prepared_dir: dir.path().join("run/tabula/prepared"),
        passwd,
        group,
    };
    Fixture {
        _dir: dir,
        root,
        opts,
    }
}

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Everything observable about a tree outside the persisted ones.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32, u64, Option<PathBuf>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).expect("stat");
        let link = fs::read_link(&d).ok();
        out.push((d.clone(), m.uid(), m.gid(), m.mode(), m.len(), link));
        if m.is_dir() {
            for e in fs::read_dir(&d).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

/// Writes `text` to the file `path` and gives it `mode`.
fn write_with_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

const CONFIG: &str = r#"{
  "version": 1,
  "persist": [ { "storage": "/persist",
    "directories": [ { "path": "/var/log", "ownership": "enforce" },
                     { "path": "/var/lib/private", "mode": "0700" },
                     { "path": "/srv/wheel", "user": 4242, "group": "wheel", "mode": "2770" } ],
    "files": [ { "path": "/etc/ssh/ssh_host_ed25519_key", "mode": "0600" }, "/etc/machine-id" ],
    "users": { "alice": {
      "directories": [ "Documents", { "path": ".ssh", "mode": "0700" }, ".local/share/direnv" ],
      "files": [ ".bash_history", ".config/app/settings.json" ] } } } ]
}"#;
