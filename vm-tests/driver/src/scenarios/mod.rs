//! The scenarios, one file each; the NixOS VM tests mirror them one for one.

pub mod boot_time;
pub mod btrfs_blank_template;
pub mod btrfs_retention;
pub mod btrfs_rotation;
pub mod cli_zfs;
pub mod crash_injection;
pub mod crash_injection_zfs;
pub mod failure_policy;
pub mod hibernate;
pub mod luks_btrfs;
pub mod machine_id_first_boot;
pub mod nested_and_symlink;
pub mod overlay;
pub mod persist_homes;
pub mod several_roots;
pub mod smoke;
pub mod zfs_bad_clock;
pub mod zfs_datasets;
pub mod zfs_encrypted;
pub mod zfs_keep_previous;
pub mod zfs_rollback;
pub mod zfs_torn_clone;

use crate::harness::Outcome;
use crate::initrd::Flavour;
use crate::{Env, Result};

/// A named scenario.
/// The extended set: the long, exhaustive scenarios (every crash point with
/// random power cuts, the benchmark). Every other scenario is in the default
/// set: at least one boot proving each claim of the README. The test command
/// (`dev/test.sh`, `vm-tests/run.sh` with no argument) runs both sets;
/// `--set default` or `--set extended` runs one of them, so a developer can
/// run the quick set and CI can be split in two without dropping anything.
pub const EXTENDED: &[&str] = &["crash-injection", "crash-injection-zfs", "boot-time"];

/// Which set a scenario belongs to.
pub fn is_extended(name: &str) -> bool {
    EXTENDED.contains(&name)
}

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
            name: "zfs-datasets",
            proves: "persisted directories with their own datasets: created with their properties on the first boot, data survives the rollback, a changed property applied, a removed entry's dataset untouched",
            zfs: true,
            run: zfs_datasets::run,
        },
        Scenario {
            name: "zfs-keep-previous",
            proves: "oldRoots on ZFS: previous root renamed under old_roots with its files, @blank cloned and promoted",
            zfs: true,
            run: zfs_keep_previous::run,
        },
        Scenario {
            name: "zfs-bad-clock",
            proves: "a root cloned under a clock far ahead (-rtc base=2099): old roots ranked by createtxg, not name; the root a boot archives is never pruned by it, the future name is logged as now and pruned once a newer root is archived",
            zfs: true,
            run: zfs_bad_clock::run,
        },
        Scenario {
            name: "btrfs-retention",
            proves: "keep days/min/max over 10 old roots with nested subvolumes; pinned name and plain directory untouched",
            zfs: false,
            run: btrfs_retention::run,
        },
        Scenario {
            name: "btrfs-blank-template",
            proves: "blank set: the new root is a snapshot of the template, which never changes",
            zfs: false,
            run: btrfs_blank_template::run,
        },
        Scenario {
            name: "persist-files-and-homes",
            proves: "files created-then-bound, a user's home with user-owned parents, machine-id stable via inInitrd and committed on the first boot only",
            zfs: false,
            run: persist_homes::run,
        },
        Scenario {
            name: "machine-id-first-boot",
            proves: "systemd initrd, /etc/machine-id persisted inInitrd, three boots from an empty /persist and a root without the file: never a symlink; boot 1 is a first boot whose id the commit service writes into storage, boots 2 and 3 keep it",
            zfs: false,
            run: machine_id_first_boot::run,
        },
        Scenario {
            name: "nested-and-symlink",
            proves: "/var/lib and /var/lib/nixos in two storages, .config and .config/fcitx5: mounted outer first, each write in its own storage; a symlinked file rewritten by rename keeps the link and its new content; a file with method auto and no copy is a link on boot 1 (its write creates the copy) and a bind mount on boot 2",
            zfs: false,
            run: nested_and_symlink::run,
        },
        Scenario {
            name: "overlay-present",
            proves: "overlay with its upper layer on the SSD disk: mounted, writes land on the SSD",
            zfs: false,
            run: overlay::run_present,
        },
        Scenario {
            name: "overlay-absent",
            proves: "SSD detached, its upper/work directories on the erased root: nothing mounted from them, the boot succeeds on the lower layer, the journal says why in one line",
            zfs: false,
            run: overlay::run_absent,
        },
        Scenario {
            name: "failure-policy-btrfs",
            proves: "missing blank / device, both flavours: rollback fails loudly, boot continues, nothing deleted",
            zfs: false,
            run: failure_policy::run_btrfs,
        },
        Scenario {
            name: "failure-policy-zfs",
            proves: "missing snapshot: rollback fails loudly, boot continues, no dataset destroyed",
            zfs: true,
            run: failure_policy::run_zfs,
        },
        Scenario {
            name: "several-roots-btrfs",
            proves: "two Btrfs targets on two disks, one config, both flavours: both rotated in one boot; a missing blank on the root or a detached second disk fails only that target (left as it was), exit 1 with `1 of 2 targets failed`, the other rotated, the machine boots; systemd: the unit wants (not requires) each device, so a missing disk does not stop it",
            zfs: false,
            run: several_roots::run_btrfs,
        },
        Scenario {
            name: "several-roots-zfs",
            proves: "rpool/local/root and rpool/local/home each rolled back to its own @blank in one boot; a missing snapshot on either leaves that dataset as it was, the other rolled back, exit 1 with `1 of 2 targets failed`, the machine boots (scripted and systemd initrd)",
            zfs: true,
            run: several_roots::run_zfs,
        },
        Scenario {
            name: "luks-btrfs-scripted",
            proves: "scripted stage 1: the Btrfs layout in a LUKS2 container opened by cryptsetup (key file in the initrd) before tabula-rollback, which rotates /dev/mapper/cryptroot as usual; persisted data whole, the disk still LUKS2",
            zfs: false,
            run: |e| luks_btrfs::run(e, Flavour::Scripted),
        },
        Scenario {
            name: "luks-btrfs-systemd",
            proves: "systemd initrd: the same, opened by systemd-cryptsetup from the initrd's /etc/crypttab, tabula-rollback.service started after it and finished before sysroot.mount",
            zfs: false,
            run: |e| luks_btrfs::run(e, Flavour::Systemd),
        },
        Scenario {
            name: "zfs-encrypted",
            proves: "the pool natively encrypted (aes-256-gcm, passphrase from a key file in the initrd, loaded after zpool import -N as NixOS does): keep-previous and rollback to @blank both work on the encrypted root, old roots stay encrypted under rpool's key, persisted data intact (scripted and systemd initrd)",
            zfs: true,
            run: zfs_encrypted::run,
        },
        Scenario {
            name: "crash-injection",
            proves: "power cuts at random instants of a rotation: next boot succeeds, one root, @persist unchanged",
            zfs: false,
            run: crash_injection::run,
        },
        Scenario {
            name: "crash-injection-zfs",
            proves: "a stop after every ZFS rotation step (abort and power cut) and random power cuts: next rollback succeeds, one root, previous root kept, persist unchanged",
            zfs: true,
            run: crash_injection_zfs::run,
        },
        Scenario {
            name: "zfs-torn-clone",
            proves: "power cut inside `zfs clone -o` built on real ZFS: unmarked written=0 clone destroyed and the root rotated; one holding data or of another snapshot refused, nothing destroyed",
            zfs: true,
            run: zfs_torn_clone::run,
        },
        Scenario {
            name: "cli-zfs",
            proves: "the tabula command after real ZFS boots: diff lists exactly the planted ephemeral files, never persisted ones; roots lists the archived root; restore (--dry-run, --to storage, --to place) keeps owner, mode, times, xattrs, the old root unmodified, no mount left",
            zfs: true,
            run: cli_zfs::run,
        },
        Scenario {
            name: "hibernate-resume-scripted",
            proves: "scripted stage 1: hibernate, resume: the resume attempt comes before tabula-rollback, which never runs in the resumed boot; process, open file and / intact, no old root archived, btrfs check clean; the next normal boot rolls back",
            zfs: false,
            run: |e| hibernate::run(e, Flavour::Scripted),
        },
        Scenario {
            name: "hibernate-resume-systemd",
            proves: "systemd initrd: the same, tabula-rollback.service ordered after systemd-hibernate-resume@.service (systemd 252) through local-fs-pre.target, checked with a resume unit made 3 s slower",
            zfs: false,
            run: |e| hibernate::run(e, Flavour::Systemd),
        },
        Scenario {
            name: "hibernate-rollback-first",
            proves: "negative control (scripted): with the resume attempt moved after tabula-rollback, stage 1 archives the hibernated root on disk, then the kernel resumes and carries on with its in-memory old root; what the disk holds afterwards is printed",
            zfs: false,
            run: hibernate::run_rollback_first,
        },
        Scenario {
            name: "boot-time",
            proves: "benchmark (figures, no timing assertion): stage 1 without tabula, with it, with the shell script",
            zfs: false,
            run: boot_time::run,
        },
    ]
}

/// What the second boot of every rotation scenario reports when the root
/// was erased and the persisted directory and file came back whole.
pub const ERASED_AND_PERSISTED: &[(&str, &str, &str)] = &[
    (
        "boot 2: file written to / before the reboot",
        "root-file",
        "absent",
    ),
    ("boot 2: persisted data", "data", "kept"),
    ("boot 2: persisted file content", "secret", "secret"),
    (
        "boot 2: persisted directory owner:group:mode",
        "dir-stat",
        "nobody:nogroup:750",
    ),
    (
        "boot 2: persisted data owner:group:mode",
        "data-stat",
        "nobody:nogroup:640",
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_extended_name_is_a_scenario_and_the_default_set_is_not_empty() {
        let all = super::all();
        for name in super::EXTENDED {
            assert!(
                all.iter().any(|s| s.name == *name),
                "EXTENDED names {name}, which is no scenario"
            );
        }
        assert!(all.iter().any(|s| !super::is_extended(s.name)));
    }
}
