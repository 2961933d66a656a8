//! luks-btrfs (both flavours): the Btrfs layout (`@root`, `@usr`,
//! `@persist`, `@old_roots`) inside a LUKS2 container on /dev/vda, opened
//! in stage 1 before tabula-rollback from the initrd's `/etc/crypttab` with
//! a key file (systemd initrd: systemd-cryptsetup-generator and
//! `systemd-cryptsetup@cryptroot.service`, as NixOS's `boot.initrd.luks`
//! does with systemd in stage 1; scripted: `cryptsetup open` before the
//! rollback, as nixpkgs' luksroot.nix does before postResumeCommands).
//! tabula's `device` is `/dev/mapper/cryptroot`; it waits for the mapped
//! device (systemd: the unit is ordered after its device unit). Two boots:
//! the rotation as on plain Btrfs, persisted data whole; the disk is still
//! a LUKS2 container with no Btrfs signature readable outside it.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::scenarios::btrfs_rotation::{REPORT, check_unit_order};
use crate::{Env, Result, bail, ensure, sh};

/// The rotation config of the Btrfs scenarios, on the mapped device.
pub const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/mapper/cryptroot", "subvolume": "@root",
      "oldRoots": "@old_roots", "keep": { "days": 30, "min": 1, "max": null } }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

/// systemd initrd: the journal lines of the container being opened and of
/// the rollback unit starting, and what the root is mounted from.
const LUKS_REPORT: &str = r#"
luks_report() {
  local j a b
  j=$(journalctl -b -o cat 2>/dev/null)
  a=$(grep -n -m1 'Finished.*systemd-cryptsetup@cryptroot.service' <<<"$j" | cut -d: -f1)
  b=$(grep -n -m1 'Starting.*tabula-rollback.service' <<<"$j" | cut -d: -f1)
  mark "cryptsetup-finished-line=${a:-none} rollback-starting-line=${b:-none}"
  local src; src=$(findmnt -n -o SOURCE / | sed 's/\[.*//')
  mark "root-on-cryptroot=$([ "$(readlink -f "$src")" = "$(readlink -f /dev/mapper/cryptroot)" ] && echo yes || echo no) root-crypt=$(lsblk -n -o TYPE "$src" 2>/dev/null | head -n1)"
  grep -E 'cryptsetup|cryptroot|tabula-rollback' <<<"$j" | sed 's/^/J: /'
}
"#;

/// After the boots, from an initrd shell: open the container, report the
/// top level, the old roots (and which hold boot 1's file), the root and
/// the persisted data.
const INSPECT: &str = r#"set -e
mkdir -p /run/cryptsetup /m
cryptsetup open --key-file /etc/tabula-harness/luks.key /dev/vda cryptroot
mount -o ro,subvolid=5 /dev/mapper/cryptroot /m
mark "top=$(ls /m | tr '\n' ',')"
mark "old=$(ls /m/@old_roots | tr '\n' ',')"
found=""
for n in $(ls /m/@old_roots); do
  [ "$(cat /m/@old_roots/$n/tabula-written-on-root 2>/dev/null)" = erased ] && found="$found$n,"
done
mark "old-with-file=$found"
mark "root-file=$([ -e /m/@root/tabula-written-on-root ] && echo present || echo absent)"
mark "persist-data=$(cat /m/@persist/var/lib/tabula-test/data)"
umount /m
cryptsetup close cryptroot
"#;

/// The container was opened before the rollback started.
fn check_opened_first(b: &Boot, flavour: Flavour) -> Result<()> {
    match flavour {
        Flavour::Scripted => {
            let opened = b.log.find("@@TABULA luks-opened=cryptroot");
            let rollback = b.log.find("@@TABULA rollback-start");
            ensure!(
                matches!((opened, rollback), (Some(o), Some(r)) if o < r),
                "scripted: the container was not opened before the rollback started; {}",
                b.describe()
            );
            check_eq(
                "scripted: tabula-rollback exit status",
                b.get("rollback-exit"),
                Some("0"),
                Some(b),
            )
        }
        Flavour::Systemd => {
            let (Some(Ok(c)), Some(Ok(r))) = (
                b.get("cryptsetup-finished-line").map(str::parse::<u32>),
                b.get("rollback-starting-line").map(str::parse::<u32>),
            ) else {
                bail!(
                    "systemd initrd: systemd-cryptsetup@cryptroot.service did not finish or tabula-rollback.service did not start; {}",
                    b.describe()
                );
            };
            ensure!(
                c < r,
                "systemd initrd: tabula-rollback.service started before the container was opened; {}",
                b.describe()
            );
            check_unit_order(b)
        }
    }
}

/// Run the scenario in one flavour.
pub fn run(env: &Env, flavour: Flavour) -> Result<Outcome> {
    let ctx = Ctx::new(env, &format!("luks-btrfs-{}", flavour.name()))?;
    let img = ctx.luks_btrfs_image("disk.img")?;
    let boot1 = format!(
        "{REPORT}{LUKS_REPORT}\nset -e\nreport\nluks_report\necho erased >/tabula-written-on-root\n\
         echo kept >/var/lib/tabula-test/data\nchown nobody:nogroup /var/lib/tabula-test/data\n\
         chmod 0640 /var/lib/tabula-test/data\necho secret >/etc/tabula-test.conf\nsync\nwait_prune\n"
    );
    let b1 = ctx.boot(
        "write",
        &img,
        &Spec::new(flavour, Fs::LuksBtrfs, CONFIG, &boot1),
    )?;
    b1.expect_script_ok()?;
    check_report(
        &b1,
        &[
            (
                "boot 1: persisted directory mounted",
                "persist-mounted",
                "yes",
            ),
            ("boot 1: persisted file mounted", "file-mounted", "yes"),
            (
                "boot 1: / mounted from /dev/mapper/cryptroot",
                "root-on-cryptroot",
                "yes",
            ),
            ("boot 1: / lies on", "root-crypt", "crypt"),
        ],
    )?;
    b1.expect_pruned()?;
    let boot2 = format!("{REPORT}{LUKS_REPORT}\nreport\nluks_report\nwait_prune\n");
    let b2 = ctx.boot(
        "check",
        &img,
        &Spec::new(flavour, Fs::LuksBtrfs, CONFIG, &boot2),
    )?;
    b2.expect_script_ok()?;
    check_report(&b2, super::ERASED_AND_PERSISTED)?;
    b2.expect_pruned()?;
    for b in [&b1, &b2] {
        b.expect_stage1_deleted_nothing()?;
        check_opened_first(b, flavour)?;
    }

    // The disk: from the host, still a LUKS2 container with nothing of
    // Btrfs visible outside it (blkid probes the image file); inside, seen
    // from an initrd shell (the host kernel may lack device-mapper), the
    // rotation as on plain Btrfs.
    let kind = sh::run(
        "blkid",
        &[
            "-p",
            "-o",
            "value",
            "-s",
            "TYPE",
            &img.display().to_string(),
        ],
    )?;
    check_eq("the disk's signature", kind.trim(), "crypto_LUKS", None)?;
    let mut inspect = Spec::new(Flavour::Scripted, Fs::LuksBtrfs, CONFIG, INSPECT);
    inspect.mode = Mode::InitrdScript;
    let i = ctx.boot("inspect", &img, &inspect)?;
    check_report(
        &i,
        &[
            ("inspection: initrd script", "script-exit", "0"),
            (
                "inspection: top level inside the container",
                "top",
                "@old_roots,@persist,@root,@usr,",
            ),
            (
                "inspection: @root holds the file written before the reboot",
                "root-file",
                "absent",
            ),
            (
                "inspection: @persist/var/lib/tabula-test/data",
                "persist-data",
                "kept",
            ),
        ],
    )?;
    let old: Vec<&str> = i
        .get("old")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    ensure!(
        old.iter().all(|n| is_timestamp_name(n)),
        "@old_roots holds unexpected names: {old:?}; {}",
        i.describe()
    );
    check_eq(
        "number of old roots after two rotations",
        old.len(),
        2,
        Some(&i),
    )?;
    let with_file = i
        .get("old-with-file")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .count();
    check_eq(
        "old roots holding the file written in boot 1",
        with_file,
        1,
        Some(&i),
    )?;
    Ok(Outcome::Pass)
}
