//! zfs-encrypted: the storage seed's pool layout with native encryption on
//! the pool's top dataset (`encryption=aes-256-gcm`, `keyformat=passphrase`,
//! `keylocation=file:///etc/tabula-harness/zfs.key`, a key file the initrd
//! carries), every dataset inheriting it (`encryptionroot` = `rpool`). The
//! keys are loaded right after `zpool import -N`, as NixOS's import unit
//! does (the systemd flavour's `zfs-import-rpool.service`, the scripted
//! `/init`). Three boots:
//!
//! 1. scripted, keep-previous (`oldRoots`): the root is rotated; root and
//!    persisted dataset encrypted with their keys available; stage 2 writes
//!    to `/` and to persisted paths;
//! 2. systemd initrd, keep-previous: `/` clean, persisted data whole, two
//!    old roots (timestamp names), exactly one holding boot 1's file, every
//!    old root still `aes-256-gcm` under `rpool`'s key; writes again;
//! 3. scripted, rollback to `@blank` (`oldRoots: null`): `/` clean, the old
//!    roots untouched and encrypted, persisted data whole.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::image::{ZFS_KEY, ZFS_KEY_PATH};
use crate::initrd::{Flavour, Item};
use crate::qemu::Boot;
use crate::scenarios::btrfs_rotation::{REPORT, check_unit_order};
use crate::scenarios::zfs_rollback::{WRITE, ZFS_REPORT};
use crate::{Env, Result, ensure};

const KEEP: &str = crate::scenarios::zfs_keep_previous::CONFIG;

/// Encryption of the root, the persisted dataset and every old root, and
/// which old roots hold boot 1's file (mounted read-only).
const ENC_REPORT: &str = r#"
enc_report() {
  local n out="" found=""
  mark "root-enc=$(zfs get -H -o value encryption,encryptionroot,keystatus rpool/local/root | paste -sd,)"
  mark "persist-enc=$(zfs get -H -o value encryption,encryptionroot,keystatus rpool/safe/persist | paste -sd,)"
  mkdir -p /run/old
  for n in $(zfs list -H -o name -d 1 rpool/local/old_roots | tail -n +2); do
    out="$out${out:+;}${n##*/}=$(zfs get -H -o value encryption,encryptionroot $n | paste -sd,)"
    if mount -t zfs -o ro "$n" /run/old 2>/dev/null; then
      [ -e /run/old/tabula-written-on-root ] && found="$found${found:+,}${n##*/}"
      umount /run/old
    else
      found="$found${found:+,}unmountable:${n##*/}"
    fi
  done
  mark "old-enc=$out"
  mark "old-with-file=$found"
  zfs get -H encryption,encryptionroot,keystatus,keylocation rpool rpool/local/root rpool/safe/persist | sed 's/^/Z: /'
}
"#;

const ENCRYPTED: &str = "aes-256-gcm,rpool,available";

fn spec(flavour: Flavour, config: &str, script: &str) -> Spec {
    let mut s = Spec::new(flavour, Fs::Zfs, config, script);
    s.initrd_files
        .push((ZFS_KEY_PATH.into(), Item::Text(ZFS_KEY.into(), 0o400)));
    s
}

/// The old roots' encryption: `(name, "encryption,encryptionroot")`.
fn old_roots(b: &Boot) -> Vec<(String, String)> {
    b.get("old-enc")
        .unwrap_or_default()
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(n, e)| (n.to_owned(), e.to_owned()))
        .collect()
}

fn check_encrypted(what: &str, b: &Boot, old: usize) -> Result<()> {
    check_report(
        b,
        &[
            (
                &format!("{what}: root encryption,encryptionroot,keystatus"),
                "root-enc",
                ENCRYPTED,
            ),
            (
                &format!("{what}: persisted dataset encryption,encryptionroot,keystatus"),
                "persist-enc",
                ENCRYPTED,
            ),
        ],
    )?;
    let olds = old_roots(b);
    check_eq(
        &format!("{what}: number of old roots"),
        olds.len(),
        old,
        Some(b),
    )?;
    ensure!(
        olds.iter()
            .all(|(n, e)| is_timestamp_name(n) && e == "aes-256-gcm,rpool"),
        "{what}: an old root is not named by time or not encrypted under rpool's key: {olds:?}; {}",
        b.describe()
    );
    Ok(())
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "zfs-encrypted")?;
    let img = ctx.zfs_encrypted_image("disk.img")?;
    let funcs = format!("{REPORT}{ZFS_REPORT}{ENC_REPORT}");

    let b1 = ctx.boot(
        "keep-write",
        &img,
        &spec(
            Flavour::Scripted,
            KEEP,
            &format!("{funcs}\nzreport\nenc_report\n{WRITE}\nwait_prune\n"),
        ),
    )?;
    b1.expect_script_ok()?;
    b1.expect_stage1_deleted_nothing()?;
    b1.expect_pruned()?;
    check_eq(
        "boot 1: tabula-rollback exit status",
        b1.get("rollback-exit"),
        Some("0"),
        Some(&b1),
    )?;
    check_encrypted("boot 1", &b1, 1)?;

    let b2 = ctx.boot(
        "keep-check",
        &img,
        &spec(
            Flavour::Systemd,
            KEEP,
            &format!("{funcs}\nreport\nzreport\nenc_report\n{WRITE}\nwait_prune\n"),
        ),
    )?;
    b2.expect_script_ok()?;
    b2.expect_stage1_deleted_nothing()?;
    b2.expect_pruned()?;
    check_unit_order(&b2)?;
    check_report(&b2, super::ERASED_AND_PERSISTED)?;
    check_report(
        &b2,
        &[(
            "boot 2: root dataset mountpoint,canmount",
            "root-props",
            "legacy,on",
        )],
    )?;
    check_encrypted("boot 2", &b2, 2)?;
    let with: Vec<&str> = b2
        .get("old-with-file")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    check_eq(
        "boot 2: old roots holding the file written in boot 1",
        with.len(),
        1,
        Some(&b2),
    )?;

    let rollback = crate::scenarios::zfs_rollback::CONFIG;
    let b3 = ctx.boot(
        "rollback",
        &img,
        &spec(
            Flavour::Scripted,
            rollback,
            &format!("{funcs}\nreport\nzreport\nenc_report\n"),
        ),
    )?;
    b3.expect_script_ok()?;
    check_eq(
        "boot 3: tabula-rollback exit status",
        b3.get("rollback-exit"),
        Some("0"),
        Some(&b3),
    )?;
    check_report(&b3, super::ERASED_AND_PERSISTED)?;
    check_encrypted("boot 3", &b3, 2)?;
    check_eq(
        "boot 3: the old roots, untouched by the rollback to @blank",
        old_roots(&b3),
        old_roots(&b2),
        Some(&b3),
    )?;
    ensure!(
        b3.get("snapshots")
            .is_some_and(|s| s.split(',').any(|x| x == "rpool/local/root@blank")),
        "boot 3: rpool/local/root@blank is gone: {:?}; {}",
        b3.get("snapshots"),
        b3.describe()
    );
    Ok(Outcome::Pass)
}
