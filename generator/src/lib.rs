//! tabula's systemd generator: bind-mount units for persisted directories
//! and files, overlay mount units, and the prepare step that creates and
//! fixes what they mount, symlink-safely. `docs/generator.md` describes what
//! is emitted and why.
//!
//! `main.rs` only reads arguments and the environment; everything here takes
//! its paths as parameters so that tests run against temporary trees.

use std::path::{Path, PathBuf};

use log::{error, info, warn};

pub mod error;
pub mod escape;
pub mod plan;
pub mod prepare;
pub mod units;

pub use plan::{Plan, Stage, plan};
pub use units::{Context, Node, Tree, render};

pub use error::{GenerateError, PrepareError};
/// The exit status: [`Exit::Failure`] when an output directory cannot be
/// written, [`Exit::Usage`] for bad usage or configuration (including
/// rejected entries, after the valid ones were emitted).
pub use tabula_runtime::Exit;

/// Everything the generator reads besides its arguments.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The configuration file.
    pub config: PathBuf,
    /// How units name it in `SourcePath=` (normally `config` itself).
    pub source_path: String,
    /// `/etc/initrd-release`: when it exists, we run in the initrd.
    pub initrd_release: PathBuf,
    /// Absolute path of this program, for the prepare service.
    pub exe: String,
}

/// Result of one generator run, for the caller to report.
#[derive(Debug)]
pub struct Outcome {
    pub tree: Tree,
    pub problems: Vec<String>,
}

/// Reads the configuration and computes the output tree. `Err` is a
/// configuration that cannot be used at all: nothing must be emitted.
pub fn generate(env: &Environment) -> Result<Outcome, GenerateError> {
    let config = tabula_config::load(&env.config)?;
    let stage = if env.initrd_release.exists() {
        Stage::Initrd
    } else {
        Stage::System
    };
    let plan = plan(&config, stage);
    if stage == Stage::System {
        if let Some(b) = plan
            .binds
            .iter()
            .find(|b| b.is_machine_id() && !b.in_initrd)
        {
            warn!(
                "{}: /etc/machine-id is persisted without \"inInitrd\": true; systemd reads it before any stage-2 mount, so this boot runs with a different id than the persisted one. Set inInitrd (with a systemd initrd)",
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
    let config_path = env.source_path.as_str();
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
    Ok(Outcome {
        tree: render(&plan, &ctx),
        problems: plan.problems.iter().map(ToString::to_string).collect(),
    })
}

/// The generator proper: `dirs` are the one or three output directories
/// systemd passes (normal, early, late); only the normal one is written.
pub fn run_generator(dirs: &[PathBuf], env: &Environment) -> Exit {
    let [normal, ..] = dirs else {
        error!("usage: tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return Exit::Usage;
    };
    if !(dirs.len() == 1 || dirs.len() == 3) || dirs.iter().any(|d| !d.is_absolute()) {
        error!(
            "expected one or three absolute output directories, got {dirs:?}; usage: tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR] | tabula-generator prepare [--initrd]"
        );
        return Exit::Usage;
    }
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

/// The absolute path of the running program, for the prepare service:
/// `TABULA_GENERATOR_EXE` if set (tests, golden files), else
/// `/proc/self/exe`, which on NixOS resolves to the store path and on
/// other systems to the installed binary.
pub fn own_path() -> String {
    if let Some(p) = std::env::var_os("TABULA_GENERATOR_EXE") {
        return p.to_string_lossy().into_owned();
    }
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/etc/systemd/system-generators/tabula-generator".to_owned())
}

/// The configuration file: `TABULA_CONFIG` or `/etc/tabula/config.json`.
pub fn config_path() -> PathBuf {
    std::env::var_os("TABULA_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(tabula_config::DEFAULT_PATH))
}

/// `/etc/initrd-release`, or `TABULA_INITRD_RELEASE` (tests).
pub fn initrd_release_path() -> PathBuf {
    std::env::var_os("TABULA_INITRD_RELEASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/etc/initrd-release").to_owned())
}
