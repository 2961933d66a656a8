//! The keep-previous rotation (`oldRoots` set): the state machine in the
//! table at the top of `zfs/mod.rs`, and pruning.

use log::info;
use tabula_config::ZfsTarget;

use super::command::Zfs;
use super::{Ctx, MARK, MARK_VALUE, NOT_COPIED, Result, ZfsError};
use crate::{fault, keep};

/// Where a keep-previous rotation stands: the rows of the table at the top
/// of this file that a run can find (R the root, T `<dataset>.tabula-new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// S0 (or S4): R, no T → clone, archive, rename, finish (S0 → S4).
    Root,
    /// S1 torn: R, and an unmarked clone T of R@snapshot with nothing
    /// written to it (a power cut inside `zfs clone -o`) → destroy T → S0.
    TornClone,
    /// S1: R and a marked T → destroy T (an untouched clone) → S0.
    UnusedClone,
    /// S2: no R, a marked T → rename T to R → S3.
    Archived,
    /// S3: R marked → finish → S4.
    Renamed,
}

pub(super) struct Rotation<'a> {
    pub(super) zfs: &'a Zfs<'a>,
    pub(super) target: &'a ZfsTarget,
    pub(super) old_roots: &'a str,
    pub(super) ctx: &'a Ctx,
}

impl Rotation<'_> {
    pub(super) fn root(&self) -> &str {
        &self.target.dataset
    }

    pub(super) fn temp(&self) -> String {
        format!("{}{}", self.target.dataset, tabula_config::NEW_ROOT_SUFFIX)
    }

    pub(super) fn snapshot(&self) -> String {
        format!("{}@{}", self.target.dataset, self.target.snapshot)
    }

    /// How this target's archived roots are recorded for the pruning half
    /// ([`crate::this_boot`]).
    fn this_boot_key(&self) -> String {
        format!("zfs {}", self.old_roots)
    }

    pub(super) fn is_marked(&self, name: &str) -> Result<bool> {
        Ok(self.zfs.get(MARK, name)? == MARK_VALUE)
    }

    /// Whether `name` is what a power cut during S0 → S1 can leave: `zfs
    /// clone -o` creates the clone and sets its properties in separate
    /// transactions, so the clone may exist without the mark. Such a clone
    /// of the blank snapshot with nothing written to it holds nothing that
    /// the snapshot does not: destroying it loses nothing. Anything else is
    /// not tabula's to touch.
    pub(super) fn is_torn_clone(&self, name: &str) -> Result<bool> {
        Ok(self.zfs.get("origin", name)? == self.snapshot()
            && self.zfs.get("written", name)? == "0")
    }

    /// Where the last run stopped, from the datasets and their marks; a
    /// state that may not be changed safely is refused here.
    pub(super) fn recognise(&self) -> Result<State> {
        let (root, temp) = (self.root(), self.temp());
        let root_exists = self.zfs.exists(root)?;
        let temp_exists = self.zfs.exists(&temp)?;
        if temp_exists && !self.is_marked(&temp)? {
            if !(root_exists && self.is_torn_clone(&temp)?) {
                // Touch nothing; the error says how to tell a torn clone.
                let snapshot = self.snapshot();
                let clone_of = (self.zfs.get("origin", &temp)? == snapshot).then_some(snapshot);
                return Err(ZfsError::NotMadeByTabula {
                    dataset: temp,
                    clone_of,
                });
            }
            return Ok(State::TornClone);
        }
        match (root_exists, temp_exists) {
            (false, false) => Err(ZfsError::RootMissing {
                root: root.to_owned(),
                temp,
            }),
            (false, true) => Ok(State::Archived),
            (true, _) if self.is_marked(root)? => {
                info!("a previous run stopped before finishing the new root {root}; finishing it");
                if temp_exists {
                    return Err(ZfsError::BothMarked {
                        root: root.to_owned(),
                        temp,
                    });
                }
                Ok(State::Renamed)
            }
            (true, true) => Ok(State::UnusedClone),
            (true, false) => Ok(State::Root),
        }
    }

    /// Recognises the state, takes the transitions to S4, prunes.
    pub(super) fn run(&self) -> Result<()> {
        let (root, temp) = (self.root(), self.temp());
        let fresh = match self.recognise()? {
            State::TornClone => {
                info!(
                    "{temp} is an unmarked clone of {} with nothing written to it, left by a power cut during `zfs clone`; destroying it",
                    self.snapshot()
                );
                self.zfs.act(&["destroy", &temp])?;
                self.rotate()?
            }
            State::UnusedClone => {
                info!(
                    "{temp} is left over from a run stopped before it moved the root; destroying it"
                );
                self.zfs.act(&["destroy", &temp])?;
                self.rotate()?
            }
            State::Archived => {
                info!(
                    "a previous run stopped after moving {root} away; putting the new root {temp} in place"
                );
                self.zfs.act(&["rename", &temp, root])?;
                fault::after("zfs-renamed");
                self.finish(None)?;
                None
            }
            State::Renamed => {
                self.finish(None)?;
                None
            }
            State::Root => self.rotate()?,
        };
        if let Some(reason) = self.valve()? {
            log::warn!(
                "safety valve: {reason}: pruning {} in stage 1",
                self.old_roots
            );
            self.prune(fresh.as_deref())
        } else {
            info!(
                "{}: pruning left to the booted system (tabula-rollback --prune-only)",
                self.old_roots
            );
            Ok(())
        }
    }

    /// `--prune-only`: prunes `oldRoots` by the keep policy, nothing else;
    /// the most recently created old root (the previous root of the current
    /// boot) is never pruned.
    pub(super) fn prune_only(&self) -> Result<()> {
        if !self.zfs.exists(self.old_roots)? {
            info!("{} does not exist yet: nothing to prune", self.old_roots);
            return Ok(());
        }
        self.prune(None)
    }

    /// The stage-1 safety valve ([`crate::valve`]): why this boot must
    /// prune, or `None`. Costs three `zfs` commands (the old roots, and the
    /// pool's `available` and `used`), whatever the old roots hold.
    pub(super) fn valve(&self) -> Result<Option<String>> {
        let dated = self
            .old_roots_in_order()?
            .iter()
            .filter(|r| keep::parse_name(&r.name).is_some())
            .count();
        let pool = self
            .old_roots
            .split_once('/')
            .map_or(self.old_roots, |(p, _)| p);
        let bytes = |property: &str| -> Result<Option<u64>> {
            Ok(self.zfs.get(property, pool)?.parse::<u64>().ok())
        };
        let space = match (bytes("available")?, bytes("used")?) {
            (Some(available), Some(used)) => Some((available, available.saturating_add(used))),
            _ => None,
        };
        Ok(crate::valve::reason(dated, space))
    }

    /// S0 → S3, then [`Self::finish`]. Returns the new old root's name.
    pub(super) fn rotate(&self) -> Result<Option<String>> {
        let (root, temp, snapshot) = (self.root(), self.temp(), self.snapshot());
        if !self.zfs.exists(&snapshot)? {
            return Err(ZfsError::SnapshotMissing { snapshot });
        }
        let nested = self.zfs.children(root)?;
        if !nested.is_empty() {
            return Err(ZfsError::ChildDatasets {
                root: root.to_owned(),
                children: nested,
            });
        }
        if !self.zfs.exists(self.old_roots)? {
            info!("creating {} for old roots", self.old_roots);
            self.zfs.act(&[
                "create",
                "-o",
                "canmount=off",
                "-o",
                "mountpoint=none",
                self.old_roots,
            ])?;
        }
        let existing = self.existing_old_roots()?;
        let created = self.zfs.get("creation", root)?;
        let created: i64 = created.parse().map_err(|_| ZfsError::Unexpected {
            argv: Zfs::show(&["get", "-H", "-p", "-o", "value", "creation", root]),
            output: created.clone(),
            expected: "the creation time in Unix seconds",
        })?;
        let name = keep::unique_name(&keep::timestamp_name(created), |n| {
            existing.iter().any(|e| e == n)
        });
        let destination = format!("{}/{name}", self.old_roots);

        let mut args: Vec<String> =
            vec!["clone".into(), "-o".into(), format!("{MARK}={MARK_VALUE}")];
        for (property, value) in self.local_properties()? {
            args.push("-o".into());
            args.push(format!("{property}={value}"));
        }
        args.push(snapshot.clone());
        args.push(temp.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.zfs.act(&args)?; // S1
        fault::after("zfs-cloned");
        self.zfs.act(&["rename", root, &destination])?; // S2
        if !self.ctx.dry_run {
            crate::this_boot::record(&self.ctx.run_dir, &self.this_boot_key(), &[name.as_str()]);
        }
        fault::after("zfs-archived");
        self.zfs.act(&["rename", &temp, root])?; // S3
        fault::after("zfs-renamed");
        self.finish(Some(&destination))?;
        Ok(Some(name))
    }

    /// S3 → S4: keep the old root from mounting over the new one, promote the
    /// new root, clear the mark. `previous` is the old root when known; after
    /// a crash it is read from the new root's origin (none once promoted).
    /// Every step is idempotent.
    pub(super) fn finish(&self, previous: Option<&str>) -> Result<()> {
        let root = self.root();
        let previous = if let Some(p) = previous {
            Some(p.to_owned())
        } else {
            let origin = self.zfs.get("origin", root)?;
            origin
                .split_once('@')
                .map(|(dataset, _)| dataset.to_owned())
        };
        if let Some(previous) = &previous {
            if tabula_config::names::is_within(previous, self.old_roots) {
                self.zfs.act(&["set", "canmount=noauto", previous])?;
            }
            self.zfs.act(&["promote", root])?;
            fault::after("zfs-promoted");
        }
        self.zfs.act(&["inherit", MARK, root])?;
        info!(
            "{root} is a fresh clone of @{}{}",
            self.target.snapshot,
            previous
                .as_deref()
                .map(|p| format!("; the previous root is {p}"))
                .unwrap_or_default()
        );
        Ok(())
    }

    pub(super) fn existing_old_roots(&self) -> Result<Vec<String>> {
        if self.ctx.dry_run && !self.zfs.exists(self.old_roots)? {
            return Ok(Vec::new());
        }
        let prefix = format!("{}/", self.old_roots);
        Ok(self
            .zfs
            .children(self.old_roots)?
            .into_iter()
            .filter_map(|c| c.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// `zfs get` of the root's locally set properties, to give them to the clone.
    pub(super) fn local_properties(&self) -> Result<Vec<(String, String)>> {
        let out = self.zfs.query(&[
            "get",
            "-H",
            "-p",
            "-o",
            "property,value",
            "-s",
            "local",
            "all",
            self.root(),
        ])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(p, _)| !NOT_COPIED.contains(p))
            .map(|(p, v)| (p.to_owned(), v.to_owned()))
            .collect())
    }

    /// The old roots with their creation transaction group (`createtxg`):
    /// the pool's own order of creation, which no clock can disturb.
    pub(super) fn old_roots_in_order(&self) -> Result<Vec<keep::OldRoot>> {
        if self.ctx.dry_run && !self.zfs.exists(self.old_roots)? {
            return Ok(Vec::new());
        }
        let args = [
            "list",
            "-H",
            "-p",
            "-o",
            "name,createtxg",
            "-t",
            "filesystem,volume",
            "-d",
            "1",
            self.old_roots,
        ];
        let out = self.zfs.query(&args)?;
        let prefix = format!("{}/", self.old_roots);
        let mut roots = Vec::new();
        for line in out.lines() {
            let parsed = line
                .split_once('\t')
                .and_then(|(name, txg)| Some((name, txg.parse::<u64>().ok()?)));
            let Some((name, order)) = parsed else {
                return Err(ZfsError::Unexpected {
                    argv: Zfs::show(&args),
                    output: line.to_owned(),
                    expected: "a dataset name, a tab and its createtxg",
                });
            };
            if let Some(name) = name.strip_prefix(&prefix) {
                roots.push(keep::OldRoot {
                    name: name.to_owned(),
                    order: (order, 0),
                });
            }
        }
        Ok(roots)
    }

    /// Prunes `oldRoots` by the keep policy; `fresh` is the old root this
    /// run archived (never pruned by it).
    pub(super) fn prune(&self, fresh: Option<&str>) -> Result<()> {
        let mut names = self.old_roots_in_order()?;
        if let Some(fresh) = fresh.filter(|_| self.ctx.dry_run) {
            // A dry run did not move it; it is the most recent.
            names.push(keep::OldRoot {
                name: fresh.to_owned(),
                order: (u64::MAX, 0),
            });
        }
        let recorded = crate::this_boot::archived(&self.ctx.run_dir, &self.this_boot_key());
        let mut archived: Vec<&str> = fresh.into_iter().collect();
        if self.ctx.mode == crate::Mode::PruneOnly {
            // The previous root of the current boot: as stage 1 recorded it,
            // and the most recently created.
            archived.extend(recorded.iter().map(String::as_str));
            archived.extend(keep::most_recent(&names));
        }
        let plan = keep::plan(&names, self.ctx.now, &self.target.keep, &archived);
        crate::keep_report::report(self.old_roots, &plan, self.ctx.now);
        for name in &plan.prune {
            self.zfs
                .act(&["destroy", "-r", &format!("{}/{name}", self.old_roots)])?;
            fault::after("zfs-pruned");
        }
        Ok(())
    }
}
