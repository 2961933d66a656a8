//! Names of old roots and the keep policy, as pure functions.
//!
//! An old root is named after the moment its root was created, in UTC:
//! `2026-11-21T23:56:00Z`, with `.1`, `.2`… appended when that name is taken.
//! Its age is read back from the name alone, so renaming an old root to
//! anything else pins it: [`plan`] never prunes what it cannot date. Which
//! old roots are the most recent is not read from the names, though: the
//! clock that stamped them may have been wrong (a board without a
//! battery-backed clock); the filesystem's order of creation decides.

use tabula_config::Keep;

const DAY: i64 = 86_400;

/// Before this instant (2020-01-01T00:00:00Z) the clock is not believed: an
/// initrd without an RTC, or with a dead battery, starts at 1970. [`plan`]
/// prunes nothing by age or count when `now` is earlier.
pub const TRUSTED_CLOCK_FROM: i64 = 1_577_836_800;

// The name format is part of the configuration contract; its one
// definition is in the config crate.
use tabula_config::old_root::parse_dated;
pub use tabula_config::old_root::{parse_name, timestamp_name};

/// `base` if it is free, else the first free `base.1`, `base.2`, …
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (1..=u64::MAX)
        .map(|n| format!("{base}.{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| base.to_owned())
}

/// An old root as the keep policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldRoot {
    /// Its name in the old-roots directory or dataset.
    pub name: String,
    /// Its place in the filesystem's own order of creation: the creation
    /// transaction (Btrfs `otransid`, ZFS `createtxg`), then, for two made
    /// in one transaction, the id the filesystem gave it (Btrfs subvolume
    /// ids only grow). Larger is more recently archived. No clock enters it.
    pub order: (u64, u64),
}

/// What to do with the entries of an old-roots directory or dataset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Dated entries that stay, most recently archived first.
    pub keep: Vec<String>,
    /// Dated entries to delete, most recently archived first.
    pub prune: Vec<String>,
    /// Entries whose names are not timestamps: never pruned.
    pub pinned: Vec<String>,
    /// Dated entries whose name lies after `now`: treated as made now.
    pub future: Vec<String>,
}

/// The most recently archived dated old root, in the filesystem's order of
/// creation: the previous root of the current boot, when `--prune-only`
/// runs after a boot's rotation. `--prune-only` never prunes it, whatever
/// `keep` says (`keep.min` ≥ 1 keeps it too; this does not depend on it).
#[must_use]
pub fn most_recent(roots: &[OldRoot]) -> Option<&str> {
    roots
        .iter()
        .filter(|r| parse_dated(&r.name).is_some())
        .max_by_key(|r| r.order)
        .map(|r| r.name.as_str())
}

/// Decides which old roots to prune at `now`. `archived` is the old root
/// this run has just archived, if any. Whatever any clock said:
///
/// - the order is the filesystem's ([`OldRoot::order`]), not the names;
/// - `archived` is never pruned;
/// - the `keep.min` most recently archived dated entries always stay;
/// - of the rest, an entry may go when it is more than `keep.days` days old
///   (its age from its name, never negative: a name after `now` counts as
///   made now), or when it is beyond the `keep.max` most recent;
/// - only the oldest entries go: an entry is pruned only when every entry
///   archived before it is pruned too;
/// - undatable names are pinned, and take no part in the order;
/// - before [`TRUSTED_CLOCK_FROM`] nothing is pruned at all.
#[must_use]
pub fn plan(roots: &[OldRoot], now: i64, keep: &Keep, archived: &[&str]) -> Plan {
    let mut dated = Vec::new();
    let mut plan = Plan::default();
    for root in roots {
        match parse_dated(&root.name) {
            Some(key) => dated.push((root.order, key, root.name.clone())),
            None => plan.pinned.push(root.name.clone()),
        }
    }
    dated.sort_by(|a, b| b.cmp(a));
    plan.pinned.sort();
    let clock_trusted = now >= TRUSTED_CLOCK_FROM;
    let min = usize::try_from(keep.min).unwrap_or(usize::MAX);
    let max = keep.max.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let prunable: Vec<bool> = dated
        .iter()
        .enumerate()
        .map(|(rank, (_, (time, _), name))| {
            if *time > now && clock_trusted {
                plan.future.push(name.clone());
            }
            let age = now.saturating_sub(*time).max(0);
            let too_old = keep.days.is_some_and(|days| age > i64::from(days) * DAY);
            let too_many = max.is_some_and(|max| rank >= max);
            clock_trusted
                && rank >= min
                && !archived.contains(&name.as_str())
                && (too_old || too_many)
        })
        .collect();
    // The prunable entries at the old end of the order, up to the first
    // one that stays.
    let kept = prunable.iter().rposition(|p| !p).map_or(0, |i| i + 1);
    for (rank, (_, _, name)) in dated.into_iter().enumerate() {
        if rank < kept {
            plan.keep.push(name);
        } else {
            plan.prune.push(name);
        }
    }
    plan
}

#[cfg(test)]
mod tests;
