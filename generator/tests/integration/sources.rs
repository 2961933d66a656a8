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

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::RwLock;

use crate::common::SYSTEMD_ANALYZE;
use tabula_testkit::{BTRFS_ON_LOOP, Need};

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
        text.push_str(&format!(
            "40 36 0:40 / {point} rw shared:9 - zfs {dataset} rw,xattr,noacl\n"
        ));
        fs::write(table, text).unwrap();
    }

    fn fake_dir(&self) -> PathBuf {
        self.dir.path().join("fake")
    }

    /// The rollback's `zfs` simulator, with a pool state.
    fn fake_zfs(&self, state: &str) {
        let _writing = FORKS.write().unwrap_or_else(|e| e.into_inner());
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
        let _running = FORKS.read().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(self.fake_dir().join("zfs"))
            .arg("dump")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tabula-generator ARGS` on this machine: exit status, log.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let _running = FORKS.read().unwrap_or_else(|e| e.into_inner());
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

/// The per-service layout: media 1M, SQLite 16K, PostgreSQL data 8K and
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
fn first_boot_creates_every_dataset_legacy_mounted_with_its_properties_by_argument_vector() {
    if tabula_testkit::skip_unless(
        "first_boot_creates_every_dataset_legacy_mounted_with_its_properties_by_argument_vector",
        FAKE_ZFS,
    ) {
        return;
    }
    let m = Machine::new();
    m.fake_zfs(POOLS);
    m.config(&seed_config("8K", true));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    let argv = m.argv_log();
    let creates: Vec<&str> = argv
        .lines()
        .filter(|l| !l.starts_with("list\t") && !l.starts_with("get\t"))
        .map(str::trim_end)
        .collect();
    assert_eq!(
        creates,
        [
            "create\t-o\tmountpoint=legacy\t-o\tcompression=lz4\t-o\trecordsize=1M\trpool/safe/persist/var-lib-plex",
            "create\t-o\tmountpoint=legacy\t-o\tcompression=lz4\t-o\trecordsize=8K\trpool/safe/persist/postgresql",
            "create\t-o\tmountpoint=legacy\t-o\tcompression=off\t-o\trecordsize=128K\trpool/safe/persist/var-lib-postgresql-wal",
            "create\t-o\tcanmount=off\ttank/services",
            "create\t-o\tmountpoint=legacy\t-o\tcompression=lz4\t-o\trecordsize=16K\ttank/services/sonarr",
        ],
        "{log}"
    );
    for unit in [
        "var-lib-plex.mount",
        "var-lib-postgresql.mount",
        "var-lib-postgresql\\x2dwal.mount",
        "var-lib-sonarr.mount",
    ] {
        assert_eq!(
            m.marker("ready", unit).as_deref(),
            Some("created\n"),
            "{unit}"
        );
    }
    // The mount points exist, so that the dataset mounts need not make them.
    assert!(m.path("/persist/var/lib/postgresql").is_dir());
    assert!(
        log.contains("created the dataset rpool/safe/persist/postgresql"),
        "{log}"
    );

    // A second boot: everything is there, nothing is created or set.
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    let changes: Vec<String> = m
        .argv_log()
        .lines()
        .filter(|l| l.starts_with("create\t") || l.starts_with("set\t"))
        .map(str::to_owned)
        .collect();
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert_eq!(m.marker("ready", "var-lib-plex.mount").as_deref(), Some(""));
}

#[test]
fn a_drifted_property_is_set_again_and_a_removed_entry_keeps_its_dataset() {
    if tabula_testkit::skip_unless(
        "a_drifted_property_is_set_again_and_a_removed_entry_keeps_its_dataset",
        FAKE_ZFS,
    ) {
        return;
    }
    let m = Machine::new();
    m.fake_zfs(POOLS);
    m.config(&seed_config("8K", true));
    assert_eq!(m.run(&["sources"]).0, 0);
    // By hand, someone sets sonarr's recordsize; the configuration changes
    // PostgreSQL's and no longer lists plex.
    {
        let _running = FORKS.read().unwrap_or_else(|e| e.into_inner());
        Command::new(m.fake_dir().join("zfs"))
            .args(["set", "recordsize=64K", "tank/services/sonarr"])
            .status()
            .unwrap();
    }
    m.config(&seed_config("16K", false));
    let before = m.argv_log().lines().count();
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    let this_boot: Vec<String> = m
        .argv_log()
        .lines()
        .skip(before)
        .map(str::to_owned)
        .collect();
    let changes: Vec<&String> = this_boot
        .iter()
        .filter(|l| !l.starts_with("list\t") && !l.starts_with("get\t"))
        .collect();
    assert_eq!(
        changes,
        [
            "set\trecordsize=16K\trpool/safe/persist/postgresql",
            "set\trecordsize=16K\ttank/services/sonarr",
        ],
        "{log}"
    );
    assert!(
        log.contains("rpool/safe/persist/postgresql: recordsize was 8192, set to 16K as the configuration says"),
        "{log}"
    );
    assert!(
        log.contains("tank/services/sonarr: recordsize was 65536, set to 16K"),
        "{log}"
    );
    // Nothing is ever destroyed or renamed; plex's dataset is left alone.
    assert!(!m.argv_log().lines().any(|l| {
        ["destroy", "rename", "inherit", "rollback"]
            .iter()
            .any(|v| l.starts_with(v))
    }));
    assert!(m.dump().contains("rpool/safe/persist/var-lib-plex origin=- props=compression=lz4,mountpoint=legacy,recordsize=1M"), "{}", m.dump());
}

#[test]
fn a_plain_directory_with_data_is_not_converted_but_reported_with_the_commands() {
    if tabula_testkit::skip_unless(
        "a_plain_directory_with_data_is_not_converted_but_reported_with_the_commands",
        FAKE_ZFS,
    ) {
        return;
    }
    let m = Machine::new();
    m.fake_zfs(POOLS);
    fs::create_dir_all(m.path("/persist/var/lib/postgresql")).unwrap();
    fs::write(m.path("/persist/var/lib/postgresql/PG_VERSION"), "17\n").unwrap();
    m.config(&seed_config("8K", false));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    assert!(
        !m.argv_log().contains("rpool/safe/persist/postgresql\n"),
        "{}",
        m.argv_log()
    );
    assert_eq!(
        m.marker("plain", "var-lib-postgresql.mount").as_deref(),
        Some("")
    );
    assert_eq!(m.marker("ready", "var-lib-postgresql.mount"), None);
    let line = log
        .lines()
        .find(|l| l.contains("/persist/var/lib/postgresql is a plain directory with data"))
        .unwrap_or_else(|| panic!("{log}"));
    for part in [
        "NOT converted and stays mounted as before",
        "zfs create -o mountpoint=legacy -o compression=lz4 -o recordsize=8K rpool/safe/persist/postgresql",
        "rsync -aHAX /persist/var/lib/postgresql/ /mnt/",
        "mv /persist/var/lib/postgresql /persist/var/lib/postgresql.old",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    assert_eq!(
        fs::read_to_string(m.path("/persist/var/lib/postgresql/PG_VERSION")).unwrap(),
        "17\n"
    );
}

#[test]
fn a_missing_pool_or_a_dataset_tabula_cannot_mount_fails_only_its_entry() {
    if tabula_testkit::skip_unless(
        "a_missing_pool_or_a_dataset_tabula_cannot_mount_fails_only_its_entry",
        FAKE_ZFS,
    ) {
        return;
    }
    let m = Machine::new();
    // No pool `tank`; the wal dataset exists, mounted by ZFS itself.
    m.fake_zfs(
        r#"{"datasets": {
          "rpool": {"creation": 1, "origin": null, "props": {}},
          "rpool/safe": {"creation": 1, "origin": null, "props": {}},
          "rpool/safe/persist": {"creation": 1, "origin": null, "props": {"mountpoint": "legacy"}},
          "rpool/safe/persist/var-lib-postgresql-wal": {"creation": 1, "origin": null, "props": {"mountpoint": "/srv/wal"}}
        }, "snapshots": {}}"#,
    );
    m.config(&seed_config("8K", true));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(
            "persist[0].directories[1]: the pool tank of tank/services/sonarr is not imported"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "has mountpoint=/srv/wal; tabula mounts it itself and only with mountpoint=legacy"
        ),
        "{log}"
    );
    assert_eq!(m.marker("ready", "var-lib-sonarr.mount"), None);
    assert_eq!(m.marker("ready", "var-lib-postgresql\\x2dwal.mount"), None);
    assert!(m.marker("ready", "var-lib-plex.mount").is_some());
    assert!(m.marker("ready", "var-lib-postgresql.mount").is_some());
    assert!(
        !m.argv_log().contains("set\tmountpoint"),
        "never changed: {}",
        m.argv_log()
    );
}

/// The prepare step after the sources step: a dataset that is not mounted
/// (its creation failed) fails its entry; one created this boot and
/// mounted gets the entry's owner and mode, once.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn prepare_gives_a_new_dataset_the_entry_s_owner_and_refuses_one_that_is_not_mounted() {
    if tabula_testkit::skip_unless(
        "prepare_gives_a_new_dataset_the_entry_s_owner_and_refuses_one_that_is_not_mounted",
        &[FAKE_ZFS[0], Need::Root],
    ) {
        return;
    }
    let m = Machine::new();
    m.fake_zfs(POOLS);
    m.config(&seed_config("8K", false));
    assert_eq!(m.run(&["sources"]).0, 0);
    // Only PostgreSQL's dataset is mounted (the others' mounts "failed").
    m.mounted(
        "rpool/safe/persist/postgresql",
        "/persist/var/lib/postgresql",
    );
    let (code, log) = m.run(&["prepare"]);
    assert_eq!(code, 1, "{log}");
    let pg = fs::metadata(m.path("/persist/var/lib/postgresql")).unwrap();
    assert_eq!((pg.uid(), pg.gid(), pg.mode() & 0o7777), (71, 71, 0o750));
    assert!(
        m.path("/run/tabula/prepared/var-lib-postgresql.mount")
            .exists()
    );
    assert!(!m.path("/run/tabula/prepared/var-lib-sonarr.mount").exists());
    assert!(
        log.contains("/persist/var/lib/sonarr: its dataset is not mounted there"),
        "{log}"
    );
    // Given once: a later change by hand is kept (ownership "create").
    fs::set_permissions(
        m.path("/persist/var/lib/postgresql"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    m.run(&["prepare"]);
    let pg = fs::metadata(m.path("/persist/var/lib/postgresql")).unwrap();
    assert_eq!(pg.mode() & 0o7777, 0o700);
}

/// systemd's reading of the emitted units: the dataset is mounted after the
/// sources step (and the pool import) and before the prepare step, and the
/// bind mount requires and follows the dataset's mount.
#[test]
#[ignore = "needs systemd's own tools (systemd-analyze), which a build sandbox lacks; dev/test.sh runs it"]
fn a_dataset_is_mounted_after_its_creation_and_before_the_prepare_step_and_its_bind_mount() {
    if tabula_testkit::skip_unless(
        "a_dataset_is_mounted_after_its_creation_and_before_the_prepare_step_and_its_bind_mount",
        &[SYSTEMD_ANALYZE],
    ) {
        return;
    }
    let m = Machine::new();
    m.config(&seed_config("8K", true));
    let out = m.dir.path().join("units");
    fs::create_dir_all(&out).unwrap();
    let (code, log) = m.run(&[out.to_str().unwrap()]);
    assert_eq!(code, 0, "{log}");
    let text = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "./var-lib-plex.mount",
            "./persist-var-lib-plex.mount",
            "./tabula-prepare.service",
            "./tabula-sources.service",
        ])
        .env("SYSTEMD_LOG_LEVEL", "debug")
        .current_dir(&out)
        .output()
        .expect("systemd-analyze");
    let text =
        String::from_utf8_lossy(&text.stderr).into_owned() + &String::from_utf8_lossy(&text.stdout);
    let deps = |unit: &str| -> Vec<String> {
        let mut lines = Vec::new();
        let mut inside = false;
        for l in text.lines() {
            if let Some(name) = l.trim().strip_prefix("-> Unit ") {
                inside = name.trim_end_matches(':') == unit;
                continue;
            }
            if inside {
                lines.push(l.trim().to_owned());
            }
        }
        assert!(!lines.is_empty(), "systemd did not dump {unit}:\n{text}");
        lines
    };
    let has = |unit: &str, line: &str| {
        let d = deps(unit);
        assert!(
            d.iter().any(|l| l.starts_with(line)),
            "{unit}: no {line:?} in {d:#?}"
        );
    };
    has("var-lib-plex.mount", "Requires: persist-var-lib-plex.mount");
    has("var-lib-plex.mount", "After: persist-var-lib-plex.mount");
    has("var-lib-plex.mount", "After: tabula-prepare.service");
    has(
        "persist-var-lib-plex.mount",
        "After: tabula-sources.service",
    );
    has("persist-var-lib-plex.mount", "After: zfs-import.target");
    has(
        "persist-var-lib-plex.mount",
        "Before: tabula-prepare.service",
    );
    has(
        "persist-var-lib-plex.mount",
        "What: rpool/safe/persist/var-lib-plex",
    );
    has("persist-var-lib-plex.mount", "Where: /persist/var/lib/plex");
    has(
        "tabula-prepare.service",
        "After: persist-var-lib-plex.mount",
    );
    has("tabula-prepare.service", "After: tabula-sources.service");
    has("tabula-sources.service", "After: zfs-import.target");
    has(
        "tabula-sources.service",
        "Before: persist-var-lib-plex.mount",
    );
}

// --- Btrfs, for real ---------------------------------------------------------

/// A Btrfs filesystem on a loop device, mounted at the machine's `/data`.
struct Loop {
    device: String,
    mnt: PathBuf,
}

impl Loop {
    fn new(m: &Machine) -> Loop {
        let img = m.dir.path().join("disk.img");
        let f = fs::File::create(&img).unwrap();
        f.set_len(256 << 20).unwrap();
        drop(f);
        tabula_testkit::sh("mkfs.btrfs", &["-q", "-f", img.to_str().unwrap()]);
        let device = tabula_testkit::sh("losetup", &["--find", "--show", img.to_str().unwrap()])
            .trim()
            .to_owned();
        let mnt = m.path("/data");
        tabula_testkit::sh("mount", &["-t", "btrfs", &device, mnt.to_str().unwrap()]);
        Loop { device, mnt }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

fn btrfs_config(extra: &str) -> String {
    format!(
        r#"{{"version": 1, "persist": [{{"storage": "/data", "directories": [
          {{"path": "/var/lib/containers", "user": "71", "group": "71", "mode": "0750",
            "btrfs": {{"subvolume": true, "nodatacow": true, "compression": null}}}},
          {{"path": "/var/cache/builds", "btrfs": {{"subvolume": true, "nodatacow": false, "compression": "zstd:3"}}}}
          {extra}
        ]}}]}}"#
    )
}

fn nocow(p: &Path) -> bool {
    let f = fs::File::open(p).unwrap();
    let flags = tabula_btrfs::ioctl::inode_flags(std::os::fd::AsFd::as_fd(&f)).unwrap();
    flags & tabula_btrfs::ioctl::FS_NOCOW_FL != 0
}

fn property(p: &Path) -> String {
    tabula_testkit::sh(
        "btrfs",
        &["property", "get", p.to_str().unwrap(), "compression"],
    )
    .trim()
    .to_owned()
}

fn is_subvolume(p: &Path) -> bool {
    fs::metadata(p).unwrap().ino() == 256
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_subvolume_is_created_with_nodatacow_and_its_compression_and_drift_is_set_back_and_logged() {
    if tabula_testkit::skip_unless(
        "a_subvolume_is_created_with_nodatacow_and_its_compression_and_drift_is_set_back_and_logged",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let m = Machine::new();
    let disk = Loop::new(&m);
    m.config(&btrfs_config(""));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    let containers = disk.mnt.join("var/lib/containers");
    let builds = disk.mnt.join("var/cache/builds");
    assert!(is_subvolume(&containers) && is_subvolume(&builds));
    assert!(nocow(&containers), "containers is not nodatacow");
    assert!(!nocow(&builds));
    assert_eq!(property(&builds), "compression=zstd:3");
    assert_eq!(property(&containers), "");
    // `lsattr` agrees, and a file made in it inherits the flag.
    fs::write(containers.join("disk.qcow2"), "").unwrap();
    assert!(nocow(&containers.join("disk.qcow2")));
    let lsattr = tabula_testkit::sh("lsattr", &["-d", containers.to_str().unwrap()]);
    assert!(
        lsattr.split_whitespace().next().unwrap().contains('C'),
        "{lsattr}"
    );

    // The prepare step gives the new subvolume the entry's owner and mode.
    let (code, log) = m.run(&["prepare"]);
    assert_eq!(code, 0, "{log}");
    let meta = fs::metadata(&containers).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (71, 71, 0o750)
    );
    assert!(
        m.path("/run/tabula/prepared/var-lib-containers.mount")
            .exists()
    );

    // Drift, by hand: the compression changed, nodatacow cleared.
    tabula_testkit::sh(
        "btrfs",
        &[
            "property",
            "set",
            builds.to_str().unwrap(),
            "compression",
            "zlib",
        ],
    );
    tabula_testkit::sh("chattr", &["-C", containers.to_str().unwrap()]);
    assert!(!nocow(&containers));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(property(&builds), "compression=zstd:3");
    assert!(nocow(&containers));
    assert!(
        log.contains(
            "/data/var/cache/builds: compression was zlib, set to zstd:3 as the configuration says"
        ),
        "{log}"
    );
    assert!(
        log.contains("/data/var/lib/containers: nodatacow set back to true"),
        "{log}"
    );
    assert!(log.contains("the files already there keep theirs"), "{log}");
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn a_plain_btrfs_directory_is_left_alone_and_reported_and_a_removed_entry_keeps_its_subvolume() {
    if tabula_testkit::skip_unless(
        "a_plain_btrfs_directory_is_left_alone_and_reported_and_a_removed_entry_keeps_its_subvolume",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let m = Machine::new();
    let disk = Loop::new(&m);
    let old = disk.mnt.join("var/lib/machines");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("image.raw"), "data").unwrap();
    let empty = disk.mnt.join("var/lib/empty");
    fs::create_dir_all(&empty).unwrap();
    m.config(&btrfs_config(
        r#", {"path": "/var/lib/machines", "btrfs": {"nodatacow": true}},
             {"path": "/var/lib/empty", "btrfs": {}}"#,
    ));
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    // With data: not converted, reported with the commands, used as before.
    assert!(!is_subvolume(&old));
    assert_eq!(fs::read_to_string(old.join("image.raw")).unwrap(), "data");
    let line = log
        .lines()
        .find(|l| l.contains("/data/var/lib/machines is a plain directory with data"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("btrfs subvolume create /data/var/lib/machines.new; chattr +C /data/var/lib/machines.new; rsync -aHAX /data/var/lib/machines/ /data/var/lib/machines.new/"), "{line}");
    // Empty: nothing to lose, it becomes the subvolume.
    assert!(is_subvolume(&empty));
    let (code, log) = m.run(&["prepare"]);
    assert_eq!(code, 0, "{log}");
    assert!(
        m.path("/run/tabula/prepared/var-lib-machines.mount")
            .exists()
    );

    // The entries are removed from the configuration: their subvolumes and
    // data stay.
    fs::write(disk.mnt.join("var/cache/builds/object.o"), "x").unwrap();
    m.config(
        r#"{"version": 1, "persist": [{"storage": "/data", "directories": ["/var/lib/other"]}]}"#,
    );
    let (code, log) = m.run(&["sources"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(m.run(&["prepare"]).0, 0);
    assert!(is_subvolume(&disk.mnt.join("var/cache/builds")));
    assert!(is_subvolume(&disk.mnt.join("var/lib/containers")));
    assert_eq!(
        fs::read_to_string(disk.mnt.join("var/cache/builds/object.o")).unwrap(),
        "x"
    );
    assert_eq!(
        property(&disk.mnt.join("var/cache/builds")),
        "compression=zstd:3"
    );
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
