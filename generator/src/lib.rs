//! tabula's systemd generator: bind-mount units for persisted directories
//! and files, overlay mount units, and the prepare step that creates and
//! fixes what they mount, symlink-safely. `docs/generator.md` describes what
//! is emitted and why.
//!
//! The data moves one way: [`cli`] reads the arguments, the configuration
//! is parsed and checked (`tabula-config`), [`plan()`] turns it into mounts,
//! [`units`] into files. `main.rs` only hands the arguments and [`Env`] to
//! [`run`]; everything the program reads from the machine is under
//! [`Env::root`], so tests run it against a temporary tree.

// Pedantic lints, with the ones this crate does not follow named and why.
#![warn(clippy::pedantic)]
#![allow(
    clippy::missing_errors_doc,
    reason = "every fallible function returns a typed error (error.rs) whose variants say what went wrong; an `# Errors` section on each would repeat them"
)]
#![allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "unit-name suffixes (`.mount`, `.service`) are case-sensitive in systemd, so a case-sensitive `ends_with` is the right comparison"
)]

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use log::{error, info, warn};
use tabula_runtime::log::{KMSG, Target};

pub mod cli;
pub mod error;
pub mod escape;
pub mod plan;
pub mod prepare;
pub mod sources;
pub mod units;

pub use cli::Command;
pub use error::{GenerateError, PrepareError};
pub use plan::{Plan, Stage, plan};
pub use units::{Context, Node, Tree, render};

/// The exit status: [`Exit::Failure`] when an output directory cannot be
/// written, [`Exit::Usage`] for bad usage or configuration (including
/// rejected entries, after the valid ones were emitted).
pub use tabula_runtime::Exit;

/// The environment variable that moves [`Env::root`] (tests, as
/// `ZRAM_GENERATOR_ROOT` does for systemd's zram-generator).
pub const ROOT_VARIABLE: &str = "TABULA_GENERATOR_ROOT";

/// `/etc/initrd-release`: when it exists, we run in the initrd.
pub const INITRD_RELEASE: &str = "/etc/initrd-release";

/// Everything the program reads from the machine besides its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The root every absolute path is read and written under: `/`, or a
    /// temporary tree in tests. The configuration is
    /// `ROOT/etc/tabula/config.json`, the initrd is recognised by
    /// `ROOT/etc/initrd-release`, users by `ROOT/etc/passwd` and
    /// `ROOT/etc/group`, and lines go to `ROOT/dev/kmsg`. Units name the
    /// configuration by its path under the root.
    pub root: PathBuf,
    /// The absolute path of this program, for the prepare service's
    /// `ExecStart=`.
    pub exe: String,
}

impl Env {
    /// The environment of this process: the root is `/` unless
    /// [`ROOT_VARIABLE`] names another; the program's path is
    /// `/proc/self/exe` (on NixOS the store path).
    #[must_use]
    pub fn from_process() -> Env {
        Env {
            root: std::env::var_os(ROOT_VARIABLE)
                .filter(|r| !r.is_empty())
                .map_or_else(|| PathBuf::from("/"), PathBuf::from),
            exe: std::env::current_exe().map_or_else(
                |_| "/etc/systemd/system-generators/tabula-generator".to_owned(),
                |p| p.to_string_lossy().into_owned(),
            ),
        }
    }

    /// `absolute` under the root.
    #[must_use]
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// The configuration file.
    #[must_use]
    pub fn config(&self) -> PathBuf {
        self.path(tabula_config::DEFAULT_PATH)
    }

    /// In the initrd or in the booted system.
    #[must_use]
    pub fn stage(&self) -> Stage {
        if self.path(INITRD_RELEASE).exists() {
            Stage::Initrd
        } else {
            Stage::System
        }
    }

    /// What the prepare step reads and writes.
    #[must_use]
    pub fn prepare_options(&self) -> prepare::Options {
        prepare::Options {
            root: self.root.clone(),
            prepared_dir: self.path(units::PREPARED_DIR),
            passwd: self.path("/etc/passwd"),
            group: self.path("/etc/group"),
        }
    }

    /// What the sources step reads and writes.
    #[must_use]
    pub fn sources_options(&self) -> sources::Options {
        sources::Options {
            root: self.root.clone(),
            markers: self.path(sources::SOURCES_DIR),
            mountinfo: self.path("/proc/self/mountinfo"),
            zfs: "zfs".to_owned(),
        }
    }
}

/// The whole program: `args` are the arguments after the program name.
pub fn run(args: impl IntoIterator<Item = OsString>, env: &Env) -> Exit {
    let kmsg = Target::Kmsg(env.path(KMSG));
    let command = match cli::parse_args(args) {
        Ok(command) => command,
        Err(e) => {
            tabula_runtime::log::init("tabula-generator", kmsg);
            error!("{e}");
            return Exit::Usage;
        }
    };
    match command {
        Command::Help => {
            let _ = writeln!(std::io::stdout(), "{}", cli::USAGE);
            Exit::Ok
        }
        Command::Version => {
            let _ = writeln!(
                std::io::stdout(),
                "tabula-generator {}",
                env!("CARGO_PKG_VERSION")
            );
            Exit::Ok
        }
        Command::CheckConfig { path } => check_config(&path, &mut std::io::stderr().lock()),
        Command::Prepare { stage } => {
            // A service: its stderr is the journal.
            tabula_runtime::log::init("tabula-prepare", Target::Stderr);
            prepare::run(&env.config(), stage, &env.prepare_options())
        }
        Command::Sources => {
            tabula_runtime::log::init("tabula-sources", Target::Stderr);
            sources::run(&env.config(), &env.sources_options())
        }
        Command::Generate { normal } => {
            tabula_runtime::log::init("tabula-generator", kmsg);
            run_generator(&normal, env)
        }
    }
}

/// `--check-config PATH`: everything the file alone decides (the document
/// and every entry, as `tabula-config` checks them), one line per problem
/// on `err`. Reads the file and nothing else: no unit is written, nothing is
/// logged to the kernel. [`Exit::Ok`] when valid, [`Exit::Usage`] when not.
pub fn check_config(path: &Path, err: &mut dyn std::io::Write) -> Exit {
    let problems = tabula_config::check_file(path);
    for p in &problems {
        let _ = writeln!(err, "tabula-generator: {p}");
    }
    if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Usage
    }
}

/// Whether `path` is mounted on (its mount differs from its parent's); a
/// path that cannot be looked at is not.
fn is_mount_point(path: &Path) -> bool {
    let id = |p: &Path| {
        rustix::fs::statx(
            rustix::fs::CWD,
            p,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()
        .filter(|st| st.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() != 0)
        .map(|st| st.stx_mnt_id)
    };
    match (path.parent().map(id), id(path)) {
        (Some(Some(parent)), Some(own)) => parent != own,
        _ => false,
    }
}

/// Result of one generator run, for the caller to report.
#[derive(Debug)]
pub struct Outcome {
    pub tree: Tree,
    pub problems: Vec<String>,
}

/// Reads the configuration and computes the output tree. `Err` is a
/// configuration that cannot be used at all: nothing must be emitted.
pub fn generate(env: &Env) -> Result<Outcome, GenerateError> {
    let config = tabula_config::load(&env.config())?;
    let stage = env.stage();
    let mut plan = plan(&config, stage);
    let sources = sources::plan(&mut plan, &env.root);
    if stage == Stage::System {
        // (Mounted already: the scripted initrd's stage 1 did it, or the
        // administrator's own initrd; PID 1 read the persisted copy.)
        if let Some(b) = plan
            .binds
            .iter()
            .find(|b| b.is_machine_id() && !b.in_initrd && !is_mount_point(&env.path(&b.target)))
        {
            warn!(
                "{}: /etc/machine-id is persisted without \"inInitrd\": true, so it is bind-mounted after systemd has read it: this boot runs as a first boot with a new random id (a new journal directory, new DHCP leases), and only programs that read the file later see the persisted copy. Set inInitrd (it needs the systemd initrd)",
                b.label
            );
        }
    }
    if let Some(why) = escape::unit_value_problem(&env.exe)
        .or_else(|| (!env.exe.starts_with('/')).then_some("is not an absolute path"))
    {
        return Err(GenerateError::OwnPath {
            path: env.exe.clone(),
            why,
        });
    }
    let config_path = tabula_config::DEFAULT_PATH;
    if let Some(why) = escape::unit_value_problem(config_path) {
        return Err(GenerateError::ConfigPath {
            path: config_path.to_owned(),
            why,
        });
    }
    let ctx = Context {
        stage,
        config_path,
        exe: &env.exe,
    };
    let mut tree = render(&plan, &ctx);
    sources::render(&sources, &ctx, &mut tree);
    Ok(Outcome {
        tree,
        problems: plan.problems.iter().map(ToString::to_string).collect(),
    })
}

/// The generator proper: writes the units into `normal`, the normal output
/// directory systemd passes.
#[must_use]
pub fn run_generator(normal: &Path, env: &Env) -> Exit {
    let outcome = match generate(env) {
        Ok(o) => o,
        Err(e) => {
            error!("{e}; nothing is mounted from persistent storage");
            return Exit::Usage;
        }
    };
    for p in &outcome.problems {
        error!("{p}");
    }
    if let Err(e) = units::write_tree(&outcome.tree, normal) {
        error!("cannot write units to {}: {e}", normal.display());
        return Exit::Failure;
    }
    let units = outcome.tree.keys().filter(|k| !k.contains('/')).count();
    info!("wrote {units} units to {}", normal.display());
    if outcome.problems.is_empty() {
        Exit::Ok
    } else {
        warn!(
            "{} entries rejected (above); the others are mounted",
            outcome.problems.len()
        );
        Exit::Usage
    }
}
