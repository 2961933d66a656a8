//! Persisted directories with their own ZFS dataset or Btrfs subvolume,
//! through the real program (`tabula-generator sources`, then `prepare`)
//! in a temporary root (`TABULA_GENERATOR_ROOT`):
//!
//! - ZFS against the rollback's simulator `rollback/tests/fake-zfs`, which
//!   records every argument vector: creation on the first boot, drift
//!   corrected, nothing destroyed or renamed, a plain directory left alone,
//!   a missing pool failing only its entry;
//! - Btrfs for real on a loop device, as root: the subvolume, its
//!   `nodatacow` inode flag and compression property, drift set back and
//!   logged, a plain directory left alone and reported, a removed entry's
//!   subvolume kept;
//! - the order systemd reads from the emitted units.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::RwLock;

use tabula_testkit::Need;

mod btrfs;
mod zfs;

const FAKE_ZFS: &[Need] = &[Need::Program {
    name: "python3",
    package: "python3",
}];

/// Held for writing while a program is written, for reading while one runs:
/// a program open for writing cannot be started (ETXTBSY), and a process
/// forked by another test thread would hold it open until its `exec`.
static FORKS: RwLock<()> = RwLock::new(());

/// A machine: a temporary root with the configuration, users, `/etc/fstab`
/// and a mount table, and a directory with the fake `zfs`.
struct Machine {
    dir: tempfile::TempDir,
    root: PathBuf,
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\npostgres:x:71:71::/var/lib/postgresql:/bin/sh\n";
const GROUP: &str = "root:x:0:\npostgres:x:71:\n";

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        for d in ["etc/tabula", "proc/self", "bin", "persist", "data"] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        fs::write(root.join("etc/passwd"), PASSWD).expect("passwd");
        fs::write(root.join("etc/group"), GROUP).expect("group");
        fs::write(
            root.join("etc/fstab"),
            "rpool/safe/persist /persist zfs defaults 0 0\n",
        )
        .expect("fstab");
        fs::write(
            root.join("proc/self/mountinfo"),
            "30 1 0:31 / / rw shared:1 - tmpfs none rw\n\
             36 30 0:32 / /persist rw,relatime shared:2 - zfs rpool/safe/persist rw,xattr,noacl\n",
        )
        .expect("mountinfo");
        Machine { dir, root }
    }

    fn config(&self, json: &str) {
        fs::write(self.root.join("etc/tabula/config.json"), json).expect("config");
    }

    /// Says that `dataset` is mounted at `point`, as the dataset's mount
    /// unit would do.
    fn mounted(&self, dataset: &str, point: &str) {
        let table = self.root.join("proc/self/mountinfo");
        let mut text = fs::read_to_string(&table).unwrap();
        writeln!(
            text,
            "40 36 0:40 / {point} rw shared:9 - zfs {dataset} rw,xattr,noacl"
        )
        .unwrap();
        fs::write(table, text).unwrap();
    }

    fn fake_dir(&self) -> PathBuf {
        self.dir.path().join("fake")
    }

    /// The rollback's `zfs` simulator, with a pool state.
    fn fake_zfs(&self, state: &str) {
        let _writing = FORKS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fake = self.fake_dir();
        fs::create_dir_all(&fake).unwrap();
        let source = format!("{}/../rollback/tests/fake-zfs", env!("CARGO_MANIFEST_DIR"));
        let text = fs::read_to_string(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let body = text.split_once('\n').map_or("", |(_, rest)| rest);
        let python3 = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("python3"))
            .find(|p| p.is_file())
            .expect("python3 on PATH");
        let program = fake.join("zfs");
        // Written by `cp`, in its own process: the other test modules of
        // this binary fork without taking FORKS, and a child forked while
        // this process held the program open for writing would keep it
        // open until its `exec`.
        let text = fake.join("zfs.text");
        fs::write(&text, format!("#!{}\n{body}", python3.display())).unwrap();
        let copied = Command::new("cp")
            .arg(&text)
            .arg(&program)
            .status()
            .unwrap();
        assert!(
            copied.success(),
            "cp {} {}",
            text.display(),
            program.display()
        );
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(fake.join("state.json"), state).unwrap();
        let _ = fs::remove_file(fake.join("argv.log"));
    }

    fn argv_log(&self) -> String {
        fs::read_to_string(self.fake_dir().join("argv.log")).unwrap_or_default()
    }

    fn dump(&self) -> String {
        let _running = FORKS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new(self.fake_dir().join("zfs"))
            .arg("dump")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tabula-generator ARGS` on this machine: exit status, log.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let _running = FORKS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = format!(
            "{}:{}",
            self.fake_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_tabula-generator"))
            .args(args)
            .env("TABULA_GENERATOR_ROOT", &self.root)
            .env("PATH", path)
            .output()
            .expect("run tabula-generator");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn marker(&self, kind: &str, unit: &str) -> Option<String> {
        fs::read_to_string(self.path(&format!("/run/tabula/sources/{kind}/{unit}"))).ok()
    }
}

/// A pool `rpool` with the storage's dataset, and a pool `tank`.
const POOLS: &str = r#"{"datasets": {
  "rpool": {"creation": 1, "origin": null, "props": {}},
  "rpool/safe": {"creation": 1, "origin": null, "props": {"canmount": "off"}},
  "rpool/safe/persist": {"creation": 1, "origin": null, "props": {"mountpoint": "legacy"}},
  "tank": {"creation": 1, "origin": null, "props": {}}
}, "snapshots": {}}"#;

/// The per-service layout: media 1M, `SQLite` 16K, `PostgreSQL` data 8K and
/// its write-ahead log 128K uncompressed.
fn seed_config(postgres_recordsize: &str, with_plex: bool) -> String {
    let plex = if with_plex {
        r#"{"path": "/var/lib/plex", "zfs": {"properties": {"recordsize": "1M", "compression": "lz4"}}},"#
    } else {
        ""
    };
    format!(
        r#"{{"version": 1, "persist": [{{"storage": "/persist", "directories": [
          {plex}
          {{"path": "/var/lib/sonarr", "zfs": {{"dataset": "tank/services/sonarr", "properties": {{"recordsize": "16K", "compression": "lz4"}}}}}},
          {{"path": "/var/lib/postgresql", "user": "postgres", "group": "postgres", "mode": "0750",
            "zfs": {{"dataset": "rpool/safe/persist/postgresql", "properties": {{"recordsize": "{postgres_recordsize}", "compression": "lz4"}}}}}},
          {{"path": "/var/lib/postgresql-wal", "zfs": {{"properties": {{"recordsize": "128K", "compression": "off"}}}}}}
        ]}}]}}"#
    )
}

#[test]
fn a_symlink_on_the_way_to_a_source_is_never_followed() {
    if tabula_testkit::skip_unless(
        "a_symlink_on_the_way_to_a_source_is_never_followed",
        FAKE_ZFS,
    ) {
        return;
    }
    let m = Machine::new();
    m.fake_zfs(POOLS);
    // /persist/var/lib leads elsewhere: the dataset would be mounted there.
    fs::create_dir_all(m.path("/persist/var")).unwrap();
    fs::create_dir_all(m.path("/elsewhere")).unwrap();
    std::os::unix::fs::symlink(m.path("/elsewhere"), m.path("/persist/var/lib")).unwrap();
    m.config(&seed_config("8K", false));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("/persist/var/lib is a symbolic link; tabula never follows symlinks"),
        "{log}"
    );
    assert_eq!(fs::read_dir(m.path("/elsewhere")).unwrap().count(), 0);
    assert_eq!(m.marker("ready", "var-lib-postgresql.mount"), None);
    assert!(!m.argv_log().contains("create\t"), "{}", m.argv_log());
}
