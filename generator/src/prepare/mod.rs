//! The prepare step: before the bind mounts, create every missing source,
//! target and parent with its owner and mode. An existing source keeps its
//! owner and mode unless its entry says `"ownership": "enforce"`; the mount
//! point gets the source's owner and mode (or, enforced, the entry's).
//!
//! It is symlink-safe: every path is walked one component at a time from a
//! directory file descriptor with `O_NOFOLLOW`, never by name from `/`, and
//! owners and modes are changed through the descriptor of the object that
//! was checked. A user who plants a symlink anywhere in their persisted tree,
//! or swaps a directory for one between our check and our change, makes
//! this entry fail; nothing outside the tree is ever opened, created, chowned
//! or chmodded. A file with more than one hard link is never chowned or
//! chmodded (a hard link to someone else's file is the other classic trick):
//! its entry fails.
//!
//! For each entry prepared, an empty file named after its mount unit is
//! created in [`crate::units::PREPARED_DIR`]; the mount unit asserts it, so
//! an entry that could not be prepared safely is never mounted.

use std::path::{Path, PathBuf};

use log::{error, info};
use rustix::fs::{Mode, OFlags};
use tabula_runtime::Exit;

use crate::error::PrepareError;
use crate::plan::{Plan, Stage};

mod entry;
mod users;
mod walk;

pub use entry::prepare_bind;
pub use users::UserDb;
use walk::errno_text;

/// Content of a persisted `/etc/machine-id` created by tabula: systemd
/// treats it as "no id yet" and the first boot as a first boot.
pub const MACHINE_ID_UNINITIALIZED: &str = "uninitialized\n";

/// Everything the prepare step reads or writes besides the plan
/// ([`crate::Env::prepare_options`] for a run; tests set each path).
#[derive(Debug, Clone)]
pub struct Options {
    /// The filesystem root every absolute path is resolved under: `/`, or
    /// a temporary directory in tests.
    pub root: PathBuf,
    /// Where the per-entry markers go.
    pub prepared_dir: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
}

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Prepared,
    /// A symbolic link to the persisted copy was placed (or was already
    /// there): `"method": "symlink"`, or `"auto"` with the copy missing,
    /// whose mount unit's condition then skips the bind mount.
    Linked,
    AlreadyMounted,
}

/// Called with each absolute path after its component was opened and
/// before anything is changed through it; tests use it to swap things.
pub type Hook<'a> = &'a dyn Fn(&str);

/// Entries that could not be prepared, each with its label.
pub type Failed = Vec<(String, PrepareError)>;

/// Prepares every entry of `plan`; returns the entries that failed. `Err`:
/// nothing could be prepared (the root or the marker directory cannot be
/// opened).
pub fn prepare_all(
    plan: &Plan,
    opts: &Options,
    hook: Option<Hook<'_>>,
) -> Result<Failed, PrepareError> {
    let db = UserDb::load(&opts.passwd, &opts.group);
    let root = rustix::fs::open(
        &opts.root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_text(e, &opts.root.to_string_lossy()))?;
    std::fs::create_dir_all(&opts.prepared_dir).map_err(|error| PrepareError::Write {
        path: opts.prepared_dir.clone(),
        error,
    })?;
    let mut failed = Vec::new();
    for b in &plan.binds {
        // An entry with its own dataset or subvolume: checked (and, created
        // this boot, given its owner and mode) first.
        if let Err(e) = crate::sources::before_prepare(b, &db, &root, &opts.root) {
            failed.push((b.label.clone(), e));
            continue;
        }
        match prepare_bind(b, &db, &root, hook) {
            Ok(done) => {
                if done == Done::AlreadyMounted {
                    info!("{} is already mounted; left as it is", b.target);
                }
                let marker = opts.prepared_dir.join(&b.unit);
                if let Err(error) = std::fs::write(&marker, "") {
                    failed.push((
                        b.label.clone(),
                        PrepareError::Write {
                            path: marker,
                            error,
                        },
                    ));
                }
            }
            Err(e) => failed.push((b.label.clone(), e)),
        }
    }
    Ok(failed)
}

/// The prepare step for `stage` with the configuration `config`: logs each
/// entry that failed; [`Exit::Failure`] when any did.
#[must_use]
pub fn run(config: &Path, stage: Stage, opts: &Options) -> Exit {
    let config = match tabula_config::load(config) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}; nothing prepared, nothing will be mounted");
            return Exit::Usage;
        }
    };
    let plan = crate::plan::plan(&config, stage);
    let failed = match prepare_all(&plan, opts, None) {
        Ok(failed) => failed,
        Err(e) => {
            error!("{e}; nothing prepared, nothing will be mounted");
            return Exit::Failure;
        }
    };
    for (label, why) in &failed {
        error!("{label}: {why}; it is NOT mounted, writes to it go to the erased root");
    }
    info!(
        "{} of {} persisted paths prepared",
        plan.binds.len() - failed.len(),
        plan.binds.len()
    );
    if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    }
}
