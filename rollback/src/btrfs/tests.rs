//! Unit tests of the pure helpers.

use rustix::mount::MountFlags;

use super::Problem;
use super::fd::{cstr, join, split_parent};
use super::mount::mount_options;
use super::mountinfo::unescape_mountinfo;

#[test]
fn parents() {
    assert_eq!(split_parent("@root"), ("", "@root"));
    assert_eq!(split_parent("nixos/a/root"), ("nixos/a", "root"));
    assert_eq!(join("", "x"), "x");
    assert_eq!(join("@old_roots", "x"), "@old_roots/x");
}

#[test]
fn mount_option_split() {
    let opts = |list: &[&str]| {
        mount_options(
            &list
                .iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>(),
        )
    };
    let base = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    assert_eq!(opts(&[]), (base, "subvolid=5".to_owned()));
    assert_eq!(
        opts(&[
            "compress=zstd:3",
            "noatime",
            "ssd",
            "space_cache=v2",
            "discard=async",
            "x-systemd.device-timeout=0",
            "defaults",
            "lazytime",
        ]),
        (
            base | MountFlags::NOATIME | MountFlags::LAZYTIME,
            "subvolid=5,compress=zstd:3,ssd,space_cache=v2,discard=async".to_owned()
        )
    );
    assert_eq!(
        opts(&["degraded", "device=/dev/vdb"]).1,
        "subvolid=5,degraded,device=/dev/vdb"
    );
}

#[test]
fn mountinfo_escapes() {
    assert_eq!(unescape_mountinfo("/mnt/a\\040b\\011c"), "/mnt/a b\tc");
    assert_eq!(unescape_mountinfo("/x\\04"), "/x\\04");
    assert_eq!(unescape_mountinfo("/"), "/");
    assert_eq!(unescape_mountinfo("\\777"), "?");
}

#[test]
fn cstr_refuses_nul() {
    assert!(matches!(cstr("a\0b"), Err(Problem::NulInName { name }) if name == "a\0b"));
    assert_eq!(cstr("@root").ok().as_deref(), Some(c"@root"));
}
