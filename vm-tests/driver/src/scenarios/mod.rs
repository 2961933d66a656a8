//! The scenarios, one file each; the NixOS VM tests mirror them one for one.

pub mod btrfs_rotation;
pub mod crash_injection;
pub mod smoke;
pub mod zfs_rollback;

use crate::harness::Outcome;
use crate::initrd::Flavour;
use crate::{Env, Result};

/// A named scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Name, as given on the command line.
    pub name: &'static str,
    /// What it proves, one line.
    pub proves: &'static str,
    /// Whether it needs the ZFS modules.
    pub zfs: bool,
    /// The scenario.
    pub run: fn(&Env) -> Result<Outcome>,
}

/// Every scenario, in run order.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "smoke-scripted",
            proves: "the harness boots the scripted initrd into systemd (no tabula)",
            zfs: false,
            run: |e| smoke::run(e, Flavour::Scripted),
        },
        Scenario {
            name: "smoke-systemd",
            proves: "the harness boots the systemd initrd into systemd (no tabula)",
            zfs: false,
            run: |e| smoke::run(e, Flavour::Systemd),
        },
        Scenario {
            name: "btrfs-rotation-scripted",
            proves: "scripted stage 1: / erased, persisted data with owners/modes kept, old root under @old_roots",
            zfs: false,
            run: |e| btrfs_rotation::run(e, Flavour::Scripted),
        },
        Scenario {
            name: "btrfs-rotation-systemd",
            proves: "systemd initrd: the same, with tabula-rollback.service ordered before sysroot.mount",
            zfs: false,
            run: |e| btrfs_rotation::run(e, Flavour::Systemd),
        },
        Scenario {
            name: "zfs-rollback-scripted",
            proves: "scripted stage 1: zpool import, rollback to @blank, persisted dataset intact",
            zfs: true,
            run: |e| zfs_rollback::run(e, Flavour::Scripted),
        },
        Scenario {
            name: "zfs-rollback-systemd",
            proves: "systemd initrd: the same, tabula-rollback.service after zfs-import-rpool.service",
            zfs: true,
            run: |e| zfs_rollback::run(e, Flavour::Systemd),
        },
        Scenario {
            name: "crash-injection",
            proves: "power cuts at random instants of a rotation: next boot succeeds, one root, @persist unchanged",
            zfs: false,
            run: crash_injection::run,
        },
    ]
}
