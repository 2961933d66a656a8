//! machine-id-first-boot (systemd initrd): `/etc/machine-id` persisted
//! `inInitrd` (written `"method": "auto"`, as the impermanence compatibility
//! module writes every file, which the config makes a bind mount there),
//! booted three times from an empty `/persist` and a root without the file.
//!
//! What it stands for, systemd 258 and later (the harness runs Debian's 252):
//! PID 1 no longer creates a missing `/etc/machine-id` through a symbolic
//! link (systemd#39717, preservation#22), and `systemd-machine-id-setup
//! --commit` does not follow one (systemd#43104). tabula never gives it a
//! link: the initrd's prepare step creates the persisted copy holding
//! `uninitialized` and an empty mount point, and bind-mounts the copy before
//! PID 1 of stage 2 reads it. PID 1 then sees a first boot, keeps the id it
//! generates transient (mounted over the file, in 252 as in 258), and
//! `systemd-machine-id-commit.service` writes it through the bind mount into
//! the copy (on first boots only: tabula's drop-in). So the first boot ends
//! with a valid id in storage, and every later boot uses it, not a first boot.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report};
use crate::image::subvol;
use crate::initrd::{Flavour, Item};
use crate::{Env, Result, ensure};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", "oldRoots": "@old_roots" }
  ],
  "persist": [
    { "storage": "/persist",
      "files": [ { "path": "/etc/machine-id", "inInitrd": true, "method": "auto", "ownership": "create" } ] }
  ]
}"#;

/// Removes the harness skeleton's empty `/etc/machine-id` from the fresh
/// root, after the harness's activation and before tabula's initrd prepare
/// step: the root holds no id at all, as a NixOS root after a rollback.
const NO_ID_ON_ROOT: &str = "[Unit]
Description=scenario: the erased root has no /etc/machine-id
DefaultDependencies=no
After=tabula-harness-activate.service
Before=initrd-root-fs.target tabula-prepare-initrd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/rm -f /sysroot/etc/machine-id
";

const REPORT: &str = r#"
mark "machine-id=$(cat /etc/machine-id) mid-mounted=$(mountpoint -q /etc/machine-id && echo yes || echo no) mid-symlink=$([ -L /etc/machine-id ] && echo yes || echo no)"
mark "persisted-mid=$(head -c 40 /persist/etc/machine-id 2>/dev/null || echo missing) persisted-symlink=$([ -L /persist/etc/machine-id ] && echo yes || echo no) persisted-stat=$(st /persist/etc/machine-id)"
mark "first-boot=$(journalctl -b -o cat | grep -c 'Detected first boot')"
mark "copy-created=$(journalctl -b -o cat | grep -c 'created /sysroot/persist/etc/machine-id')"
mark "target-created=$(journalctl -b -o cat | grep -c 'created /sysroot/etc/machine-id ')"
mark "mount-in-initrd=$(journalctl -b -o cat | grep -c 'Mounted.*Persisted file /etc/machine-id from /sysroot/persist')"
u=systemd-machine-id-commit.service
mark "commit-cond=$(systemctl show -p ConditionResult --value $u) commit-result=$(systemctl show -p Result --value $u) commit-ran=$([ "$(systemctl show -p ExecMainStartTimestampMonotonic --value $u)" -gt 0 ] 2>/dev/null && echo yes || echo no)"
mark "commit-tmpfs-error=$(journalctl -b -o cat | grep -c 'not on a temporary file system')"
"#;

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "machine-id-first-boot")?;
    // An empty @persist: no machine id in storage at all.
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))
    })?;
    let mut spec = Spec::new(Flavour::Systemd, Fs::Btrfs, CONFIG, REPORT);
    Env::require_bin(&env.generator)?;
    spec.initrd_files = vec![
        // /persist is needed for boot: mounted in the initrd (NixOS's
        // neededForBoot), so the generator's inInitrd mount finds it.
        (
            "/etc/fstab".to_owned(),
            Item::Text(
                "/dev/vda /sysroot/persist btrfs subvol=@persist 0 0\n".into(),
                0o644,
            ),
        ),
        (
            "/etc/systemd/system-generators/tabula-generator".into(),
            Item::Copy(env.generator.clone(), 0o755),
        ),
        (
            "/etc/systemd/system/scenario-no-machine-id.service".into(),
            Item::Text(NO_ID_ON_ROOT.into(), 0o644),
        ),
        (
            "/etc/systemd/system/initrd.target.wants/scenario-no-machine-id.service".into(),
            Item::Link("../scenario-no-machine-id.service".into()),
        ),
    ];
    let boots = [
        ctx.boot("first", &img, &spec)?,
        ctx.boot("second", &img, &spec)?,
        ctx.boot("third", &img, &spec)?,
    ];
    for b in &boots {
        b.expect_script_ok()?;
    }
    let mid = boots[0].get("machine-id").unwrap_or_default();
    ensure!(
        mid.len() == 32 && mid.chars().all(|c| c.is_ascii_hexdigit()) && mid != "0".repeat(32),
        "boot 1: /etc/machine-id is {mid:?}, not a valid id; {}",
        boots[0].describe()
    );
    for (i, b) in boots.iter().enumerate() {
        let n = i + 1;
        check_eq(
            &format!("boot {n}: the machine id"),
            b.get("machine-id"),
            Some(mid),
            Some(b),
        )?;
        check_report(
            b,
            &[
                (
                    &format!("boot {n}: /etc/machine-id bind-mounted"),
                    "mid-mounted",
                    "yes",
                ),
                (
                    &format!("boot {n}: /etc/machine-id is a symbolic link"),
                    "mid-symlink",
                    "no",
                ),
                (
                    &format!("boot {n}: mounted by the initrd"),
                    "mount-in-initrd",
                    "1",
                ),
                (
                    &format!("boot {n}: the mount point made on the root, which had no file"),
                    "target-created",
                    "1",
                ),
                (
                    &format!("boot {n}: the persisted copy holds the id"),
                    "persisted-mid",
                    mid,
                ),
                (
                    &format!("boot {n}: the persisted copy is a symbolic link"),
                    "persisted-symlink",
                    "no",
                ),
                (
                    &format!("boot {n}: the persisted copy's owner and mode"),
                    "persisted-stat",
                    "root:root:644",
                ),
                (
                    &format!("boot {n}: \"not on a temporary file system\" in the journal"),
                    "commit-tmpfs-error",
                    "0",
                ),
            ],
        )?;
    }
    // Boot 1 starts from nothing: the copy is created ("uninitialized"),
    // systemd sees a first boot and the commit service persists its id.
    check_report(
        &boots[0],
        &[
            (
                "boot 1: the persisted copy created by the initrd's prepare step",
                "copy-created",
                "1",
            ),
            ("boot 1: systemd detected a first boot", "first-boot", "1"),
            (
                "boot 1: systemd-machine-id-commit conditions",
                "commit-cond",
                "yes",
            ),
            ("boot 1: systemd-machine-id-commit ran", "commit-ran", "yes"),
            (
                "boot 1: systemd-machine-id-commit result",
                "commit-result",
                "success",
            ),
        ],
    )?;
    for (i, b) in boots.iter().enumerate().skip(1) {
        let n = i + 1;
        check_report(
            b,
            &[
                (
                    &format!("boot {n}: the persisted copy created again"),
                    "copy-created",
                    "0",
                ),
                (
                    &format!("boot {n}: systemd detected a first boot"),
                    "first-boot",
                    "0",
                ),
                (
                    &format!("boot {n}: systemd-machine-id-commit conditions"),
                    "commit-cond",
                    "no",
                ),
                (
                    &format!("boot {n}: systemd-machine-id-commit ran"),
                    "commit-ran",
                    "no",
                ),
            ],
        )?;
    }
    Ok(Outcome::Pass)
}
