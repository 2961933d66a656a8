//! Where things are: the repository, the cache made by `setup.sh`, the
//! kernel, the tabula binaries under test.

use crate::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The harness's environment, discovered once per run.
#[derive(Debug, Clone)]
pub struct Env {
    /// Repository root.
    pub repo: PathBuf,
    /// `vm-tests/`.
    pub here: PathBuf,
    /// `vm-tests/.cache` (or `TABULA_VM_CACHE`).
    pub cache: PathBuf,
    /// Kernel version, e.g. `6.1.0-56-amd64`.
    pub kver: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// `tabula-rollback` (static musl build).
    pub rollback: PathBuf,
    /// `tabula-rollback` built with the `fault-injection` feature
    /// (`--target-dir target/fault-injection`), for crash-injection.
    pub rollback_fault: PathBuf,
    /// `tabula-generator` (static musl build).
    pub generator: PathBuf,
    /// Whether the ZFS modules were built by setup.
    pub zfs: bool,
    /// Scratch space for images and initrds of this run.
    pub work: PathBuf,
    /// Console logs of this run's boots.
    pub logs: PathBuf,
}

impl Env {
    /// Find everything; fail with what to run when setup is missing.
    pub fn discover() -> Result<Env> {
        let here = match std::env::var_os("TABULA_VM_DIR") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        };
        let here = here.canonicalize().ctx("vm-tests directory")?;
        let repo = here.join("..").canonicalize().ctx("repository root")?;
        let cache =
            std::env::var_os("TABULA_VM_CACHE").map_or_else(|| here.join(".cache"), PathBuf::from);
        let kver_file = cache.join("kernel/version");
        let kver = match std::fs::read_to_string(&kver_file) {
            Ok(v) => v.trim().to_owned(),
            Err(_) => bail!(
                "{} missing: run vm-tests/setup.sh first (as root)",
                kver_file.display()
            ),
        };
        let kdir = cache.join("kernel").join(&kver);
        let vmlinuz = kdir.join(format!("boot/vmlinuz-{kver}"));
        if !vmlinuz.is_file() {
            bail!("{} missing: run vm-tests/setup.sh", vmlinuz.display());
        }
        let zfs = kdir
            .join(format!("lib/modules/{kver}/updates/dkms/zfs.ko"))
            .is_file();
        let bin = |name: &str, var: &str| {
            std::env::var_os(var).map_or_else(
                || {
                    repo.join("target/x86_64-unknown-linux-musl/release")
                        .join(name)
                },
                PathBuf::from,
            )
        };
        let rollback = bin("tabula-rollback", "TABULA_ROLLBACK_BIN");
        let generator = bin("tabula-generator", "TABULA_GENERATOR_BIN");
        let rollback_fault = std::env::var_os("TABULA_ROLLBACK_FAULT_BIN").map_or_else(
            || {
                repo.join(
                    "target/fault-injection/x86_64-unknown-linux-musl/release/tabula-rollback",
                )
            },
            PathBuf::from,
        );
        let work = cache.join("work");
        let logs = cache.join("logs");
        std::fs::create_dir_all(&work).ctx(work.display())?;
        std::fs::create_dir_all(&logs).ctx(logs.display())?;
        Ok(Env {
            repo,
            here,
            cache,
            kver,
            vmlinuz,
            rollback,
            rollback_fault,
            generator,
            zfs,
            work,
            logs,
        })
    }

    /// The unpacked kernel package.
    pub fn kernel_dir(&self) -> PathBuf {
        self.cache.join("kernel").join(&self.kver)
    }

    /// Fail unless `path` is an executable file built by cargo.
    pub fn require_bin(path: &Path) -> Result<()> {
        if !path.is_file() {
            bail!(
                "{} missing: build it with `cargo build --release --target x86_64-unknown-linux-musl -p tabula-rollback -p tabula-generator`",
                path.display()
            );
        }
        Ok(())
    }
}

/// True when `out` exists and is newer than every input (inputs that do not
/// exist are ignored).
pub fn fresh(out: &Path, inputs: &[PathBuf]) -> bool {
    let Ok(o) = out.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    inputs
        .iter()
        .all(|i| match i.metadata().and_then(|m| m.modified()) {
            Ok(t) => t <= o,
            Err(_) => true,
        })
}
