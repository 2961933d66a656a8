//! The two initramfs flavours: a cached base (`initrd/build-base.sh`) plus a
//! small per-boot cpio archive appended to it (the kernel unpacks
//! concatenated archives in order) holding what the scenario decides:
//! tabula-rollback, its config, the rendered units, the stage-2 payload.

use crate::env::{Env, fresh};
use crate::unit::{self, Needs};
use crate::{Context, Result, sh};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// The initrd flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// busybox `/init`, NixOS's scripted stage 1 shape.
    Scripted,
    /// systemd as PID 1 in the initrd.
    Systemd,
}

impl Flavour {
    /// Both flavours, in test order.
    pub const ALL: [Flavour; 2] = [Flavour::Scripted, Flavour::Systemd];

    /// Short name used in file names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Scripted => "scripted",
            Flavour::Systemd => "systemd",
        }
    }
}

/// The cached base archive of a flavour, rebuilt when its inputs changed.
pub fn base(env: &Env, flavour: Flavour) -> Result<PathBuf> {
    let out = env
        .cache
        .join(format!("initrd/{}-base.cpio.gz", flavour.name()));
    let inputs = [
        env.here.join("initrd/build-base.sh"),
        env.here.join("initrd/scripted-init"),
        env.here.join("guest/activate"),
        env.cache.join("kernel/version"),
        env.cache.join("stamps/zfs"),
        env.cache.join("stamps/rootfs"),
    ];
    if !fresh(&out, &inputs) {
        let t = std::time::Instant::now();
        sh::run(
            "bash",
            &[
                env.here.join("initrd/build-base.sh").as_os_str(),
                std::ffi::OsStr::new(flavour.name()),
                env.cache.as_os_str(),
                out.as_os_str(),
            ],
        )?;
        eprintln!(
            "vm: built {} initrd base in {:.1} s",
            flavour.name(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(out)
}

/// One file of the per-boot archive.
#[derive(Debug, Clone)]
pub enum Item {
    /// Text content with a mode.
    Text(String, u32),
    /// A copy of a host file with a mode.
    Copy(PathBuf, u32),
    /// A symbolic link.
    Link(String),
}

/// What a boot's initrd carries on top of the base.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// The tabula config (`/etc/tabula/config.json` in the initrd and on the
    /// new root), or `None` for a boot without tabula.
    pub config: Option<String>,
    /// The tabula-rollback binary, when not the normal release build.
    pub rollback_bin: Option<PathBuf>,
    /// Initrd dependencies of the rollback unit (systemd flavour).
    pub needs: Vec<Needs>,
    /// Extra files in the initrd (absolute paths).
    pub initrd_files: Vec<(String, Item)>,
    /// Files copied onto the new root by the activation (absolute paths),
    /// like a NixOS generation's /etc.
    pub root_files: Vec<(String, Item)>,
}

fn put(stage: &Path, path: &str, item: &Item) -> Result<()> {
    let dst = stage.join(path.trim_start_matches('/'));
    if let Some(p) = dst.parent() {
        fs::create_dir_all(p).ctx(p.display())?;
    }
    match item {
        Item::Text(s, mode) => {
            fs::write(&dst, s).ctx(dst.display())?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(*mode)).ctx(dst.display())?;
        }
        Item::Copy(src, mode) => {
            fs::copy(src, &dst).ctx(format!("copy {} to {}", src.display(), dst.display()))?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(*mode)).ctx(dst.display())?;
        }
        Item::Link(target) => symlink(target, &dst).ctx(dst.display())?,
    }
    Ok(())
}

/// Assemble the initrd of one boot at `out`: base + per-boot archive.
pub fn assemble(env: &Env, flavour: Flavour, payload: &Payload, out: &Path) -> Result<()> {
    let base = base(env, flavour)?;
    let stage = out.with_extension("d");
    if stage.exists() {
        fs::remove_dir_all(&stage).ctx(stage.display())?;
    }
    fs::create_dir_all(&stage).ctx(stage.display())?;
    if let Some(cfg) = &payload.config {
        let bin = payload.rollback_bin.as_ref().unwrap_or(&env.rollback);
        Env::require_bin(bin)?;
        put(
            &stage,
            "/usr/bin/tabula-rollback",
            &Item::Copy(bin.clone(), 0o755),
        )?;
        put(
            &stage,
            "/etc/tabula/config.json",
            &Item::Text(cfg.clone(), 0o644),
        )?;
        put(
            &stage,
            "/usr/lib/tabula-harness/payload/etc/tabula/config.json",
            &Item::Text(cfg.clone(), 0o644),
        )?;
        if flavour == Flavour::Systemd {
            let json = fs::read_to_string(env.repo.join("nixos-module/rollback-unit.json"))
                .ctx("nixos-module/rollback-unit.json")?;
            let r = unit::render(&json, "/usr/bin/tabula-rollback", &payload.needs)?;
            put(
                &stage,
                "/etc/systemd/system/tabula-rollback.service",
                &Item::Text(r.text, 0o644),
            )?;
            for (target, kind) in &r.install {
                put(
                    &stage,
                    &format!("/etc/systemd/system/{target}.{kind}/tabula-rollback.service"),
                    &Item::Link("../tabula-rollback.service".into()),
                )?;
            }
        }
    }
    if flavour == Flavour::Systemd {
        for n in &payload.needs {
            if let Needs::Pool(pool) = n {
                zfs_import_units(&stage, pool)?;
                put(
                    &stage,
                    "/etc/modules-load.d/tabula-zfs.conf",
                    &Item::Text("zfs\n".into(), 0o644),
                )?;
            }
        }
    }
    for (p, item) in &payload.initrd_files {
        put(&stage, p, item)?;
    }
    for (p, item) in &payload.root_files {
        put(&stage, &format!("/usr/lib/tabula-harness/payload{p}"), item)?;
    }
    let cpio = out.with_extension("extra.cpio.gz");
    sh::bash(
        r#"cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 >"$2"
cat "$3" "$2" >"$4""#,
        &[
            stage.as_os_str(),
            cpio.as_os_str(),
            base.as_os_str(),
            out.as_os_str(),
        ],
    )?;
    Ok(())
}

/// The pool import unit of the systemd initrd (what NixOS's
/// `zfs-import-<pool>.service` does), and the root/usr mounts ordered after it.
fn zfs_import_units(stage: &Path, pool: &str) -> Result<()> {
    let zpool = sh::run("bash", &["-c", "command -v zpool"])?
        .trim()
        .to_owned();
    put(
        stage,
        &format!("/etc/systemd/system/zfs-import-{pool}.service"),
        &Item::Text(
            format!(
                "[Unit]\nDescription=Import ZFS pool \"{pool}\"\nDefaultDependencies=no\n\
                 Requires=dev-vda1.device\nAfter=dev-vda1.device systemd-modules-load.service\n\
                 Before=sysroot.mount initrd-root-fs.target\n\n\
                 [Service]\nType=oneshot\nRemainAfterExit=yes\n\
                 ExecStart={zpool} import -N -f {pool}\n\
                 ExecStart=/usr/lib/tabula-harness/zfs-load-keys {pool}\n"
            ),
            0o644,
        ),
    )?;
    for m in ["sysroot.mount", "sysusr-usr.mount", "sysroot-usr.mount"] {
        put(
            stage,
            &format!("/etc/systemd/system/{m}.d/zfs-import.conf"),
            &Item::Text(
                format!(
                    "[Unit]\nRequires=zfs-import-{pool}.service\nAfter=zfs-import-{pool}.service\n"
                ),
                0o644,
            ),
        )?;
    }
    Ok(())
}
