//! From a checked configuration to the list of mounts to make.
//!
//! The config crate checks every entry on its own and against the others
//! (`tabula_config::entries`) and returns the accepted ones with the problems
//! of the rest; here they become mounts for the stage the generator runs in
//! (under `/sysroot` in the initrd). Data moves one way: parse and check →
//! plan → units → files.

use tabula_config::Config;
use tabula_config::Overlay;
use tabula_config::entries::{CheckedOverlay, Entries, check_entries};
pub use tabula_config::entries::{Group, Home, Kind, Parent, Persisted, Problem, SYSROOT};
use tabula_config::names::join;
pub use tabula_config::{Method, Ownership};

use crate::escape::path_unit_name;

/// The persisted copy of this file is created holding `uninitialized`, so
/// that systemd treats the first boot as a first boot and
/// `systemd-machine-id-commit.service` writes the new id through the bind
/// mount into persistent storage.
pub const MACHINE_ID: &str = "/etc/machine-id";

/// One bind mount of a persisted directory or file: the config crate's
/// checked entry ([`Persisted`], its fields reached through `Deref`) with
/// its paths as mounted here (`source`, `storage`, `outer_storage` and the
/// home under `/sysroot` in the initrd; `path` stays as the user wrote it),
/// plus the mount point and the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub entry: Persisted,
    /// The mount point (`Where=`), under `/sysroot` in the initrd.
    pub target: String,
    /// The mount unit's name.
    pub unit: String,
}

impl std::ops::Deref for Bind {
    type Target = Persisted;

    fn deref(&self) -> &Persisted {
        &self.entry
    }
}

impl Bind {
    /// Whether it has a mount unit: a bind mount, or `"auto"` (a bind
    /// mount unless the prepare step placed a symlink).
    #[must_use]
    pub fn is_mounted(&self) -> bool {
        self.method != Method::Symlink
    }

    /// Whether the persisted copy must start as `uninitialized`.
    #[must_use]
    pub fn is_machine_id(&self) -> bool {
        self.kind == Kind::File && self.path == MACHINE_ID
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    pub label: String,
    pub config: Overlay,
    pub unit: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by target: an outer entry before the entries inside it, so
    /// that the prepare step creates the outer entry first.
    pub binds: Vec<Bind>,
    /// Sorted by mount point.
    pub overlays: Vec<OverlayMount>,
    pub problems: Vec<Problem>,
}

/// Where the generator runs: in the initrd only `inInitrd` entries are
/// mounted, under [`SYSROOT`]; overlays belong to the booted system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Initrd,
    System,
}

fn prefixed(stage: Stage, path: &str) -> String {
    match stage {
        Stage::Initrd => join(SYSROOT, path),
        Stage::System => path.to_owned(),
    }
}

fn bind(stage: Stage, e: Persisted) -> Bind {
    let target = prefixed(stage, &e.path);
    Bind {
        unit: path_unit_name(&target, "mount"),
        target,
        entry: Persisted {
            source: prefixed(stage, &e.source),
            storage: prefixed(stage, &e.storage),
            outer_storage: e.outer_storage.map(|s| prefixed(stage, &s)),
            home: e.home.map(|h| Home {
                user: h.user,
                path: prefixed(stage, &h.path),
            }),
            ..e
        },
    }
}

/// Builds the plan for `stage`: in the initrd only `inInitrd` entries, and
/// no overlays (they belong to the booted system, and so do their problems).
#[must_use]
pub fn plan(config: &Config, stage: Stage) -> Plan {
    let Entries {
        persisted,
        mut problems,
        overlays,
        overlay_problems,
    } = check_entries(config);
    let binds = persisted
        .into_iter()
        .filter(|e| stage == Stage::System || e.in_initrd)
        .map(|e| bind(stage, e))
        .collect();
    let overlays = match stage {
        Stage::Initrd => Vec::new(),
        Stage::System => {
            problems.extend(overlay_problems);
            overlays
                .into_iter()
                .map(|CheckedOverlay { label, config }| OverlayMount {
                    unit: path_unit_name(&config.where_, "mount"),
                    label,
                    config,
                })
                .collect()
        }
    };
    Plan {
        binds,
        overlays,
        problems,
    }
}
