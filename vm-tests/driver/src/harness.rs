//! What scenarios share: a per-scenario work directory, disk images, the
//! kernel command line of each filesystem, booting with a payload, and
//! host-side checks of Btrfs images.
//!
//! Over 400 lines on purpose: `Spec` and `Ctx::boot_with` are the one path
//! every scenario boots through (payload, initrd, QEMU, report), and the
//! host-side checks beside them are what every scenario reads its boots with.

use crate::env::Env;
use crate::image::{self, Mount};
use crate::initrd::{self, Flavour, Item, Payload};
use crate::qemu::{self, Boot, Hook, Vm};
use crate::unit::Needs;
use crate::{Context, Result, bail, sh};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The outcome of a scenario that did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// Not run, and why (printed loudly).
    Skip(String),
}

/// The root filesystem of a boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    /// Label `tabula` on /dev/vda: `@root`, `@usr`, `@persist`, ...
    Btrfs,
    /// Pool `rpool` on /dev/vda1: `rpool/local/{root,usr}`, `rpool/safe/persist`.
    Zfs,
    /// The Btrfs layout inside a LUKS2 container on /dev/vda, opened in
    /// stage 1 from the initrd's `/etc/crypttab` as
    /// `/dev/mapper/cryptroot` ([`crate::image::LUKS_NAME`]).
    LuksBtrfs,
}

/// What happens after stage 1's rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Full boot into systemd; the script runs in stage 2.
    Full,
    /// Scripted initrd only: roll back, then power off (crash tests).
    RotateOnly,
    /// Scripted initrd: run the script in stage 1 instead of booting.
    InitrdScript,
}

/// Which rollback stage 1 performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// tabula-rollback with this config.
    Tabula(String),
    /// No rollback at all, the config still goes to stage 2 (baseline).
    None(Option<String>),
    /// The common shell script (scripted flavour), with this config for stage 2.
    Shell(String, Option<String>),
}

/// One boot of a scenario.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Initrd flavour.
    pub flavour: Flavour,
    /// Root filesystem.
    pub fs: Fs,
    /// What stage 1 does.
    pub rollback: Rollback,
    /// Guest script (bash in stage 2, busybox sh in stage 1).
    pub script: String,
    /// Full boot, rotate only, or an initrd script.
    pub mode: Mode,
    /// Disks after the first.
    pub extra_disks: Vec<PathBuf>,
    /// Extra files for the new root (e.g. /etc/passwd additions).
    pub root_files: Vec<(String, Item)>,
    /// Extra files in the initrd.
    pub initrd_files: Vec<(String, Item)>,
    /// Extra kernel parameters.
    pub cmdline: String,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Another tabula-rollback build (fault injection).
    pub rollback_bin: Option<PathBuf>,
    /// Where the guest's real-time clock starts (QEMU `-rtc base=`, e.g.
    /// `2099-01-01T00:00:00`); `None`: the host's time.
    pub rtc_base: Option<String>,
}

impl Spec {
    /// A full boot with tabula-rollback and this config, running `script`.
    pub fn new(flavour: Flavour, fs: Fs, config: &str, script: &str) -> Spec {
        Spec {
            flavour,
            fs,
            rollback: Rollback::Tabula(config.to_owned()),
            script: script.to_owned(),
            mode: Mode::Full,
            extra_disks: Vec::new(),
            root_files: Vec::new(),
            initrd_files: Vec::new(),
            cmdline: String::new(),
            timeout: Duration::from_secs(240),
            rollback_bin: None,
            rtc_base: None,
        }
    }
}

/// Shell helpers prepended to every stage-2 script.
pub const PRELUDE: &str = r#"
mark() { echo "@@TABULA $*"; }
st() { stat -c '%U:%G:%a' "$1" 2>/dev/null || echo missing; }
# Wait (at most 180 s) until tabula-prune.service has run to its end, then
# report its result, exit status and run time: prune-result=success
# prune-status=0 prune_ms=N (prune-result=absent without the unit).
wait_prune() {
  local i=0 exit_ts start_ts
  if ! systemctl cat tabula-prune.service >/dev/null 2>&1; then mark "prune-result=absent"; return; fi
  while :; do
    exit_ts=$(systemctl show -P ExecMainExitTimestampMonotonic tabula-prune.service)
    [ "${exit_ts:-0}" != 0 ] && [ "$(systemctl show -P ActiveState tabula-prune.service)" != activating ] && break
    i=$((i + 1)); [ $i -gt 1800 ] && { mark "prune-result=timeout"; return; }
    sleep 0.1
  done
  start_ts=$(systemctl show -P ExecMainStartTimestampMonotonic tabula-prune.service)
  mark "prune-result=$(systemctl show -P Result tabula-prune.service) prune-status=$(systemctl show -P ExecMainStatus tabula-prune.service) prune_ms=$(( (exit_ts - start_ts) / 1000 ))"
}
"#;

/// The pruning unit of the booted guest: what `nixos-module/prune.nix`
/// renders as `tabula-prune.service` (keep the two in step), with the
/// binary at `bin` and the guest's PATH for `zfs`.
pub fn prune_unit(bin: &str, zfs: bool) -> String {
    let after = if zfs {
        "local-fs.target multi-user.target zfs-import.target"
    } else {
        "local-fs.target multi-user.target"
    };
    format!(
        "[Unit]\nDescription=tabula: prune the old roots by the keep policy\n\
         After={after}\n\n\
         [Service]\nType=oneshot\n\
         ExecStart={bin} --prune-only --config /etc/tabula/config.json\n\
         IOSchedulingClass=idle\nNice=19\nPrivateMounts=true\n\
         Environment=PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// Stage 2 after the scripted stage 1 opened a LUKS container without udev:
/// before udev's coldplug, record for each device-mapper device the flag
/// that a udev in stage 1 would have left in the database handed to stage 2
/// (`DM_UDEV_PRIMARY_SOURCE_FLAG=1`: activated properly). Without it the
/// device-mapper rules take the coldplug "add" for a spurious event and
/// disable the device, whose unit never becomes active (see
/// [`Ctx::boot_with`]).
const DM_FLAGS_UNIT: &str = "[Unit]\n\
Description=tabula harness: record the device-mapper devices opened without udev in stage 1\n\
DefaultDependencies=no\n\
Before=systemd-udev-trigger.service sysinit.target\n\n\
[Service]\nType=oneshot\nRemainAfterExit=yes\n\
ExecStart=/bin/sh -c 'mkdir -p /run/udev/data; for d in /sys/block/dm-*; do \
[ -e $$d/dev ] && echo E:DM_UDEV_PRIMARY_SOURCE_FLAG=1 >/run/udev/data/b$$(cat $$d/dev); done; true'\n";

/// Where the guest's root carries tabula-rollback for the pruning unit.
pub const PRUNE_BIN: &str = "/opt/tabula/bin/tabula-rollback";

/// Whether a config has a rollback target that keeps old roots (the
/// NixOS module installs the pruning unit only then).
pub fn keeps_old_roots(config: &str) -> Result<bool> {
    let v: serde_json::Value = serde_json::from_str(config).ctx("scenario config")?;
    Ok(v["rollback"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| !t["oldRoots"].is_null()))
}

/// The per-scenario context.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The environment.
    pub env: &'a Env,
    /// Scenario name.
    pub name: String,
    /// Work directory (recreated).
    pub dir: PathBuf,
    boots: Cell<u32>,
}

impl<'a> Ctx<'a> {
    /// A fresh work directory for the scenario.
    pub fn new(env: &'a Env, name: &str) -> Result<Ctx<'a>> {
        let dir = env.work.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).ctx(dir.display())?;
        }
        std::fs::create_dir_all(&dir).ctx(dir.display())?;
        Ok(Ctx {
            env,
            name: name.to_owned(),
            dir,
            boots: Cell::new(0),
        })
    }

    /// A fresh copy of the Btrfs base image; `prep` fills in its subvolumes
    /// through a host mount of the top level.
    pub fn btrfs_image(
        &self,
        file: &str,
        prep: impl FnOnce(&Mount) -> Result<()>,
    ) -> Result<PathBuf> {
        let base = image::btrfs_base(self.env)?;
        let img = self.dir.join(file);
        qemu::copy_image(&base, &img)?;
        let m = Mount::btrfs(&img)?;
        prep(&m)?;
        drop(m);
        Ok(img)
    }

    /// A fresh copy of the LUKS2 + Btrfs base image
    /// ([`image::luks_btrfs_base`]: `@usr`, `@root`, `@persist`,
    /// `@old_roots` inside the container).
    pub fn luks_btrfs_image(&self, file: &str) -> Result<PathBuf> {
        let base = image::luks_btrfs_base(self.env)?;
        let img = self.dir.join(file);
        qemu::copy_image(&base, &img)?;
        Ok(img)
    }

    /// A fresh copy of the encrypted ZFS base image
    /// ([`image::zfs_encrypted_base`]); its boots need the key file in the
    /// initrd ([`image::ZFS_KEY_PATH`]).
    pub fn zfs_encrypted_image(&self, file: &str) -> Result<PathBuf> {
        let base = image::zfs_encrypted_base(self.env)?;
        let img = self.dir.join(file);
        qemu::copy_image(&base, &img)?;
        Ok(img)
    }

    /// A fresh copy of the ZFS base image.
    pub fn zfs_image(&self, file: &str) -> Result<PathBuf> {
        let base = image::zfs_base(self.env)?;
        let img = self.dir.join(file);
        qemu::copy_image(&base, &img)?;
        Ok(img)
    }

    /// Boot `disk` (plus the spec's extra disks) as the spec says.
    pub fn boot(&self, label: &str, disk: &Path, spec: &Spec) -> Result<Boot> {
        self.boot_with(label, disk, spec, &mut |_| Hook::Continue)
    }

    /// [`Ctx::boot`] with a console-line hook (crash injection).
    #[allow(
        clippy::too_many_lines,
        reason = "one boot in order: the spec's payload, its initrd, the QEMU run, the report; each step uses the previous one's values"
    )]
    pub fn boot_with(
        &self,
        label: &str,
        disk: &Path,
        spec: &Spec,
        hook: &mut dyn FnMut(&str) -> Hook,
    ) -> Result<Boot> {
        let n = self.boots.get() + 1;
        self.boots.set(n);
        let name = format!("{}.{:02}-{}-{}", self.name, n, spec.flavour.name(), label);
        let mut payload = Payload::default();
        let (stage1_config, stage2_config) = match &spec.rollback {
            Rollback::Tabula(c) => (Some(c.clone()), Some(c.clone())),
            Rollback::None(c) => (None, c.clone()),
            Rollback::Shell(script, c) => {
                payload.initrd_files.push((
                    "/etc/tabula/rollback.sh".into(),
                    Item::Text(script.clone(), 0o755),
                ));
                (None, c.clone())
            }
        };
        payload.config = stage1_config;
        payload.rollback_bin.clone_from(&spec.rollback_bin);
        // The rollback unit waits for what the config names, as the NixOS
        // module renders it; a ZFS boot also needs its pool imported.
        payload.needs = match &payload.config {
            Some(c) => needs_of(c)?,
            None => Vec::new(),
        };
        if spec.fs == Fs::Zfs && !payload.needs.iter().any(|n| matches!(n, Needs::Pool(_))) {
            payload.needs.push(Needs::Pool("rpool".into()));
        }
        let fstab = match spec.fs {
            Fs::Btrfs => "/dev/vda /persist btrfs subvol=@persist 0 0\n",
            Fs::Zfs => "rpool/safe/persist /persist zfs defaults 0 0\n",
            Fs::LuksBtrfs => "/dev/mapper/cryptroot /persist btrfs subvol=@persist 0 0\n",
        };
        if spec.fs == Fs::LuksBtrfs {
            // What NixOS's boot.initrd.luks.devices puts into the initrd.
            payload.initrd_files.extend(image::luks_initrd_files());
            if spec.flavour == Flavour::Scripted {
                // The harness's busybox stage 1 has no udev (NixOS's scripted
                // stage 1 runs one and hands its database to stage 2), so the
                // device-mapper rules would take stage 2's coldplug "add" of
                // the mapped device for a spurious event: its unit would never
                // become active. DM_FLAGS_UNIT records what that database
                // would say.
                payload.root_files.push((
                    "/etc/systemd/system/tabula-harness-dm-flags.service".into(),
                    Item::Text(DM_FLAGS_UNIT.into(), 0o644),
                ));
                payload.root_files.push((
                    "/etc/systemd/system/sysinit.target.wants/tabula-harness-dm-flags.service"
                        .into(),
                    Item::Link("../tabula-harness-dm-flags.service".into()),
                ));
            }
        }
        payload
            .root_files
            .push(("/etc/fstab".into(), Item::Text(fstab.into(), 0o644)));
        if let Some(c) = stage2_config {
            payload
                .root_files
                .push(("/etc/tabula/config.json".into(), Item::Text(c, 0o644)));
            if self.env.generator.is_file() {
                payload.root_files.push((
                    "/etc/systemd/system-generators/tabula-generator".into(),
                    Item::Copy(self.env.generator.clone(), 0o755),
                ));
            } else {
                eprintln!(
                    "vm: WARNING: {} missing: stage 2 boots without tabula-generator (persisted paths will not be mounted)",
                    self.env.generator.display()
                );
            }
        }
        // The pruning half after boot, as the NixOS module installs it:
        // only with tabula-rollback in stage 1 and a target keeping old roots.
        let prunes = match &spec.rollback {
            Rollback::Tabula(c) => keeps_old_roots(c)?,
            _ => false,
        };
        if prunes {
            let bin = spec.rollback_bin.as_ref().unwrap_or(&self.env.rollback);
            payload
                .root_files
                .push((PRUNE_BIN.into(), Item::Copy(bin.clone(), 0o755)));
            payload.root_files.push((
                "/etc/systemd/system/tabula-prune.service".into(),
                Item::Text(prune_unit(PRUNE_BIN, spec.fs == Fs::Zfs), 0o644),
            ));
            payload.root_files.push((
                "/etc/systemd/system/multi-user.target.wants/tabula-prune.service".into(),
                Item::Link("../tabula-prune.service".into()),
            ));
        }
        // Later entries win: the spec's files replace the defaults above.
        payload
            .root_files
            .retain(|(p, _)| !spec.root_files.iter().any(|(q, _)| q == p));
        payload.root_files.extend(spec.root_files.iter().cloned());
        payload
            .initrd_files
            .extend(spec.initrd_files.iter().cloned());
        let initrd = self.dir.join(format!("{name}.initrd"));
        initrd::assemble(self.env, spec.flavour, &payload, &initrd)?;
        let mut append = match spec.fs {
            Fs::Btrfs => "rw root=/dev/vda rootfstype=btrfs rootflags=subvol=@root \
                          mount.usr=/dev/vda mount.usrfstype=btrfs mount.usrflags=subvol=@usr"
                .to_owned(),
            Fs::Zfs => "rw root=rpool/local/root rootfstype=zfs mount.usr=rpool/local/usr \
                        mount.usrfstype=zfs tabula.pool=rpool"
                .to_owned(),
            Fs::LuksBtrfs => {
                "rw root=/dev/mapper/cryptroot rootfstype=btrfs rootflags=subvol=@root \
                              mount.usr=/dev/mapper/cryptroot mount.usrfstype=btrfs \
                              mount.usrflags=subvol=@usr"
                    .to_owned()
            }
        };
        match spec.mode {
            Mode::Full => {}
            Mode::RotateOnly => append.push_str(" tabula.harness=rotate"),
            Mode::InitrdScript => append.push_str(" tabula.harness=script"),
        }
        match spec.rollback {
            Rollback::None(_) => append.push_str(" tabula.harness.norollback"),
            Rollback::Shell(..) => append.push_str(" tabula.harness.shellrollback"),
            Rollback::Tabula(_) => {}
        }
        if !spec.cmdline.is_empty() {
            append.push(' ');
            append.push_str(&spec.cmdline);
        }
        if spec.mode != Mode::Full && spec.flavour != Flavour::Scripted {
            bail!("{name}: rotate-only and initrd-script boots exist in the scripted flavour only");
        }
        let mut disks = vec![disk.to_path_buf()];
        disks.extend(spec.extra_disks.iter().cloned());
        let vm = Vm {
            name,
            initrd,
            append,
            disks,
            script: Some(format!("{PRELUDE}\n{}", spec.script)),
            timeout: spec.timeout,
            mem_mb: 1024,
            rtc_base: spec.rtc_base.clone(),
        };
        qemu::boot(self.env, &vm, hook)
    }
}

/// The initrd dependencies of a config's rollback targets: the device of a
/// Btrfs target, the pool of a ZFS target.
pub fn needs_of(config: &str) -> Result<Vec<Needs>> {
    let v: serde_json::Value = serde_json::from_str(config).ctx("scenario config")?;
    let mut out = Vec::new();
    for t in v["rollback"].as_array().into_iter().flatten() {
        match (
            t["type"].as_str(),
            t["device"].as_str(),
            t["dataset"].as_str(),
        ) {
            (Some("btrfs"), Some(dev), _) => out.push(Needs::Device(dev.to_owned())),
            (Some("zfs"), _, Some(ds)) => {
                let pool = ds.split('/').next().unwrap_or(ds).to_owned();
                if !out
                    .iter()
                    .any(|n| matches!(n, Needs::Pool(p) if *p == pool))
                {
                    out.push(Needs::Pool(pool));
                }
            }
            _ => bail!("scenario config: rollback target without device/dataset: {t}"),
        }
    }
    Ok(out)
}

/// A listing of a tree (type, owner, mode of every entry) and the checksum
/// of every file: equal listings mean nothing was added, removed or changed.
pub fn tree_digest(dir: &Path) -> Result<String> {
    sh::bash(
        r#"cd "$1"
find . -printf '%p %y %U:%G %m\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum"#,
        &[dir],
    )
}

/// Sorted names in a directory.
pub fn ls(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .ctx(dir.display())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .ctx(dir.display())?;
    v.sort();
    Ok(v)
}

/// Whether `name` is an old-root name: `YYYY-MM-DDTHH:MM:SSZ[.N]`, as the
/// rollback itself dates it (the one definition of the format).
pub fn is_timestamp_name(name: &str) -> bool {
    tabula_rollback::keep::parse_name(name).is_some()
}

/// [`check_eq`] for each `(what, key, expected)` row of a boot's report, in
/// order: the first mismatch fails with that row's description.
pub fn check_report(boot: &Boot, rows: &[(&str, &str, &str)]) -> Result<()> {
    for &(what, key, want) in rows {
        check_eq(what, boot.get(key), Some(want), Some(boot))?;
    }
    Ok(())
}

/// Fail with a message naming `what` unless `got == want`.
#[allow(
    clippy::needless_pass_by_value,
    reason = "callers pass fresh values (`boot.get(key)`, `Some(\"0\")`), so each check stays one line without `&`"
)]
pub fn check_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
    boot: Option<&Boot>,
) -> Result<()> {
    if got != want {
        match boot {
            Some(b) => bail!("{what}: got {got:?}, expected {want:?}; {}", b.describe()),
            None => bail!("{what}: got {got:?}, expected {want:?}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The guest's pruning unit carries every setting of the NixOS
    /// module's `tabula-prune.service` (`nixos-module/prune.nix`): a change
    /// there fails here until the harness follows.
    #[test]
    fn the_guest_pruning_unit_has_the_settings_of_the_nixos_module() {
        let nix = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nixos-module/prune.nix"),
        )
        .expect("nixos-module/prune.nix");
        let unit = super::prune_unit("/bin/tabula-rollback", false);
        for (nix_line, unit_line) in [
            (r#"Type = "oneshot";"#, "Type=oneshot"),
            (r#"IOSchedulingClass = "idle";"#, "IOSchedulingClass=idle"),
            ("Nice = 19;", "Nice=19"),
            ("PrivateMounts = true;", "PrivateMounts=true"),
            (
                r#"wantedBy = [ "multi-user.target" ];"#,
                "WantedBy=multi-user.target",
            ),
            (
                "/bin/tabula-rollback --prune-only --config /etc/tabula/config.json",
                "ExecStart=/bin/tabula-rollback --prune-only --config /etc/tabula/config.json",
            ),
            (
                r#""multi-user.target""#,
                "After=local-fs.target multi-user.target",
            ),
        ] {
            assert!(
                nix.contains(nix_line),
                "prune.nix no longer has {nix_line:?}"
            );
            assert!(
                unit.contains(unit_line),
                "the guest unit lacks {unit_line:?}:\n{unit}"
            );
        }
        assert!(nix.contains(r#""zfs-import.target""#));
        assert!(
            super::prune_unit("/bin/tabula-rollback", true)
                .contains("After=local-fs.target multi-user.target zfs-import.target")
        );
    }
}
