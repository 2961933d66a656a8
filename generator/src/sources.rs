//! Persisted directories whose source is their own ZFS dataset or Btrfs
//! subvolume (the `zfs` and `btrfs` keys of an entry, checked by
//! `tabula_config::sources`).
//!
//! Three parts, in the order of a boot:
//!
//! 1. The generator ([`plan`], [`render`]) names each dataset (a named one,
//!    or the child of the dataset the storage is mounted from, read from
//!    `/etc/fstab` or the mount table) and emits `tabula-sources.service`,
//!    one mount unit per dataset (`What=<dataset>`, `Type=zfs`, at the
//!    entry's source, storage + path) and a drop-in ordering the prepare
//!    step after both. It touches no disk.
//! 2. `tabula-sources.service` ([`run`], `tabula-generator sources`), after
//!    the pools are imported and the storages mounted, before the dataset
//!    mounts: creates what is missing (`zfs create -o mountpoint=legacy -o
//!    <property>...`, a subvolume with `nodatacow` and a compression
//!    property), sets properties that drifted back to the configuration,
//!    and leaves one marker per entry in [`SOURCES_DIR`]: `ready/<unit>`
//!    (mount it; the dataset's mount unit has `ConditionPathExists=` on it)
//!    or `plain/<unit>` (a plain directory with data is where the dataset or
//!    subvolume is asked for: it is used as before, and reported with the
//!    commands that move it). No marker: the entry failed and was reported.
//!    Nothing is ever destroyed or renamed.
//! 3. The prepare step ([`before_prepare()`]), after the dataset mounts, checks
//!    that a `ready` source is what the configuration says before the bind
//!    mount is prepared, and gives a source created this boot the entry's
//!    owner and mode.

use std::collections::HashMap;
use std::path::Path;

use log::{error, info};
use tabula_config::entries::Problem;
use tabula_config::sources::{Backing, DatasetName};
use tabula_runtime::Exit;

use crate::escape::path_unit_name;
use crate::plan::{Bind, Plan};

mod before_prepare;
mod mountinfo;
mod step;
mod units;

pub use before_prepare::before_prepare;
pub use mountinfo::{Mounted, read_mountinfo, storage_dataset};
use step::{Found, look};
pub use step::{Options, Verdict, run_sources};
pub use units::render;

mod btrfs;
mod zfs;

/// The oneshot service that creates the datasets and subvolumes.
pub const SOURCES_UNIT: &str = "tabula-sources.service";

/// Where [`run`] leaves its verdicts: `ready/<bind unit>`, `plain/<bind unit>`.
pub const SOURCES_DIR: &str = "/run/tabula/sources";

/// The `PATH` of `tabula-sources.service` when it runs `zfs`: NixOS's system
/// profile, then the usual places.
pub const ZFS_SEARCH_PATH: &str =
    "/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A marker's content when the source was created by this run: the prepare
/// step gives it the entry's owner and mode, once.
const CREATED: &str = "created\n";

/// One entry whose source is its own dataset or subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The entry, as the prepare step sees it.
    pub bind: Bind,
    pub how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Zfs {
        /// The dataset's full name.
        dataset: String,
        /// When it is the default child: the storage's dataset, which must
        /// be what the storage is mounted from at boot.
        parent_of_default: Option<String>,
        properties: Vec<(String, String)>,
        /// The mount unit that mounts the dataset at the entry's source.
        unit: String,
    },
    Btrfs {
        nodatacow: bool,
        compression: Option<String>,
    },
}

const ENTRY_SKIPPED: &str = "this entry is skipped, the others are still mounted";

/// The entries of `plan` with their own dataset or subvolume, names
/// resolved. An entry whose default dataset cannot be named (its storage is
/// not a ZFS filesystem in `ROOT/etc/fstab` nor in the mount table) is moved
/// from the plan to its problems: its data must not land in a plain
/// directory in its place.
pub fn plan(plan: &mut Plan, root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut keep = Vec::with_capacity(plan.binds.len());
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    for b in std::mem::take(&mut plan.binds) {
        let how = match &b.backing {
            None => {
                keep.push(b);
                continue;
            }
            Some(Backing::Btrfs(s)) => How::Btrfs {
                nodatacow: s.nodatacow,
                compression: s.compression.clone(),
            },
            Some(Backing::Zfs(z)) => {
                let (dataset, parent_of_default) = match &z.dataset {
                    DatasetName::Named(d) => (d.clone(), None),
                    DatasetName::ChildOfStorage { storage, child } => {
                        let parent = known
                            .entry(storage.clone())
                            .or_insert_with(|| storage_dataset(root, storage))
                            .clone();
                        let Some(parent) = parent else {
                            plan.problems.push(Problem {
                                label: b.label.clone(),
                                value: b.path.clone(),
                                message: format!(
                                    "has \"zfs\" without a dataset, and its storage {storage} is not a ZFS filesystem in /etc/fstab nor mounted as one; name the dataset in \"zfs\".\"dataset\""
                                ),
                                skipped: ENTRY_SKIPPED,
                            });
                            continue;
                        };
                        let name = format!("{parent}/{child}");
                        if let Err(why) = tabula_config::names::check_dataset(&name) {
                            plan.problems.push(Problem {
                                label: b.label.clone(),
                                value: name,
                                message: format!(
                                    "is its default dataset, and {why}; name the dataset in \"zfs\".\"dataset\""
                                ),
                                skipped: ENTRY_SKIPPED,
                            });
                            continue;
                        }
                        (name, Some(parent))
                    }
                };
                How::Zfs {
                    unit: path_unit_name(&b.source, "mount"),
                    dataset,
                    parent_of_default,
                    properties: z.properties.clone(),
                }
            }
        };
        out.push(Source {
            bind: b.clone(),
            how,
        });
        keep.push(b);
    }
    plan.binds = keep;
    out
}

/// `tabula-generator sources`: the configuration's sources, each brought to
/// what it says; [`Exit::Failure`] when any failed.
#[must_use]
pub fn run(config: &Path, opts: &Options) -> Exit {
    let config = match tabula_config::load(config) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}; no dataset or subvolume prepared");
            return Exit::Usage;
        }
    };
    let mut plan = crate::plan::plan(&config, crate::plan::Stage::System);
    let sources = self::plan(&mut plan, &opts.root);
    let failed = run_sources(&sources, opts);
    info!(
        "{} of {} datasets and subvolumes prepared",
        sources.len() - failed.len(),
        sources.len()
    );
    if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    }
}
