//! Btrfs subvolumes for real, on a loop device, as root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Machine;
use tabula_testkit::BTRFS_ON_LOOP;

// --- Btrfs, for real ---------------------------------------------------------

/// A Btrfs filesystem on a loop device, mounted at the machine's `/data`.
pub(super) struct Loop {
    device: String,
    mnt: PathBuf,
}

impl Loop {
    pub(super) fn new(m: &Machine) -> Loop {
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

pub(super) fn btrfs_config(extra: &str) -> String {
    format!(
        r#"{{"version": 1, "persist": [{{"storage": "/data", "directories": [
          {{"path": "/var/lib/containers", "user": "71", "group": "71", "mode": "0750",
            "btrfs": {{"subvolume": true, "nodatacow": true, "compression": null}}}},
          {{"path": "/var/cache/builds", "btrfs": {{"subvolume": true, "nodatacow": false, "compression": "zstd:3"}}}}
          {extra}
        ]}}]}}"#
    )
}

pub(super) fn nocow(p: &Path) -> bool {
    let f = fs::File::open(p).unwrap();
    let flags = tabula_btrfs::ioctl::inode_flags(std::os::fd::AsFd::as_fd(&f)).unwrap();
    flags & tabula_btrfs::ioctl::FS_NOCOW_FL != 0
}

pub(super) fn property(p: &Path) -> String {
    tabula_testkit::sh(
        "btrfs",
        &["property", "get", p.to_str().unwrap(), "compression"],
    )
    .trim()
    .to_owned()
}

pub(super) fn is_subvolume(p: &Path) -> bool {
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
