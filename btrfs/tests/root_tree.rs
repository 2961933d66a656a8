//! The root-tree reads of `tabula_btrfs::ioctl` against a real Btrfs on a
//! loop device, compared with what the kernel says through other ioctls.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]

use std::os::fd::AsFd;
use std::process::Command;

use tabula_btrfs::ioctl;
use tabula_testkit::{BTRFS_ON_LOOP, sh, skip_unless};

struct Fs {
    dir: tempfile::TempDir,
    dev: String,
}

impl Drop for Fs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.dir.path().join("mnt"))
            .output();
        let _ = Command::new("losetup").args(["-d", &self.dev]).output();
    }
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn root_tree_reads_and_tree_searches_agree_with_the_kernel() -> std::io::Result<()> {
    if skip_unless(
        "root_tree_reads_and_tree_searches_agree_with_the_kernel",
        BTRFS_ON_LOOP,
    ) {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let img = dir.path().join("img");
    std::fs::File::create(&img)?.set_len(256 << 20)?;
    sh("mkfs.btrfs", &["-q", "-f", img.to_str().unwrap()]);
    let dev = sh("losetup", &["--find", "--show", img.to_str().unwrap()])
        .trim()
        .to_owned();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt)?;
    sh("mount", &[&dev, mnt.to_str().unwrap()]);
    let fs = Fs { dir, dev };
    let a = mnt.join("a");
    sh("btrfs", &["-q", "subvolume", "create", a.to_str().unwrap()]);
    sh(
        "btrfs",
        &["-q", "subvolume", "create", a.join("b").to_str().unwrap()],
    );
    let open = |p: &std::path::Path| std::fs::File::open(p);
    let (top, fa, fb) = (open(&mnt)?, open(&a)?, open(&a.join("b"))?);
    let ia = ioctl::subvol_info(fa.as_fd())?;
    let ib = ioctl::subvol_info(fb.as_fd())?;
    assert_eq!(ioctl::subvol_otransid(top.as_fd(), ia.id)?, ia.otransid);
    assert_eq!(ioctl::subvol_otransid(top.as_fd(), ib.id)?, ib.otransid);
    assert!(ib.otransid >= ia.otransid);
    assert_eq!(ioctl::subvol_parent(top.as_fd(), ib.id)?, Some(ia.id));
    assert_eq!(ioctl::subvol_parent(top.as_fd(), ia.id)?, Some(5));
    assert_eq!(ioctl::default_subvol(top.as_fd())?, 5);
    sh(
        "btrfs",
        &[
            "subvolume",
            "set-default",
            &ia.id.to_string(),
            mnt.to_str().unwrap(),
        ],
    );
    assert_eq!(ioctl::default_subvol(top.as_fd())?, ia.id);
    assert!(ioctl::subvol_otransid(top.as_fd(), 999_999).is_err());
    assert_eq!(ioctl::subvol_parent(top.as_fd(), 999_999)?, None);
    assert_eq!(ioctl::ino_lookup(top.as_fd(), ia.id, 256)?, b"");

    // 300 long names of one inode: its name items outgrow the one-page
    // buffer of a single-object search, which must grow and find them all.
    let file = a.join("f");
    std::fs::write(&file, b"x")?;
    let long = "n".repeat(200);
    for i in 0..300 {
        std::fs::hard_link(&file, a.join(format!("{long}{i:03}")))?;
    }
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file)?);
    let mut names = Vec::new();
    let search = tabula_btrfs::Search {
        min_objectid: ino,
        max_objectid: ino,
        min_type: tabula_btrfs::INODE_REF_KEY,
        max_type: tabula_btrfs::INODE_EXTREF_KEY,
        ..tabula_btrfs::Search::all(ia.id)
    };
    ioctl::tree_search(top.as_fd(), &search, |item| {
        names.extend(tabula_btrfs::parse_names(&item));
        true
    })?;
    assert_eq!(names.len(), 301);
    assert!(names.iter().all(|n| n.parent == 256));
    drop((top, fa, fb));
    drop(fs);
    Ok(())
}
