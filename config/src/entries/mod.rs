//! The persisted entries and overlays of a configuration, each checked on its
//! own and against the others.
//!
//! An entry that is wrong on its own or clashes with another is rejected with
//! a [`Problem`] that names it and says why; every other entry is kept (see
//! `docs/generator.md`, "Bad input", for why partial output is the lesser
//! harm). [`check_entries`] is the one place these rules live: the generator
//! plans mounts from what it returns, and `--check-config` reports its
//! problems.

use std::collections::HashMap;

use crate::Config;
use crate::names::is_within;

mod checked;
mod overlays;
mod paths;
mod persist;
mod problem;

pub use checked::{CheckedOverlay, Entries, Group, Home, Kind, Parent, Persisted};
pub use paths::{SYSROOT, check_path, unit_value_problem};
pub use problem::Problem;

use overlays::collect_overlays;
use paths::check_storage;
use persist::collect_persist;
use problem::problem;

/// `/a/b/c`, `/a/b`, `/a` (the root is never a persisted path).
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            Some(0) | None => None,
            Some(i) => Some(&current[..i]),
        };
        Some(current)
    })
}

/// Boxed: sorting moves candidates around, and an entry is large.
struct Candidate(Box<Persisted>);

/// Checks every persisted entry and overlay of `config`.
#[must_use]
pub fn check_entries(config: &Config) -> Entries {
    let mut problems = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, persist) in config.persist.iter().enumerate() {
        collect_persist(persist, i, &mut candidates, &mut problems);
    }
    // Stable sort: an ancestor sorts before its descendants, and among equal
    // paths the first listed wins.
    candidates.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let mut persisted: Vec<Persisted> = Vec::new();
    // The storages that are used: a rejected storage path (`/`, a relative
    // path) must not make every other entry look "inside a storage".
    let mut storages: Vec<&str> = config
        .persist
        .iter()
        .map(|p| p.storage.as_str())
        .filter(|s| check_storage(s).is_ok())
        .collect();
    storages.dedup();
    // Accepted paths → index in `persisted`; a candidate's ancestors (and
    // itself) are looked up here, O(depth) instead of O(entries).
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let mut sources = crate::sources::Sources::new(config);
    for Candidate(mut entry) in candidates {
        if let Some(prev) = accepted.get(&entry.path).map(|&i| &persisted[i]) {
            let message = if prev.kind == entry.kind {
                format!("is listed twice; the first, {}, is kept", prev.label)
            } else {
                format!(
                    "is listed as a {} and, in {}, as a {}; a path is one or the other",
                    entry.kind.noun(),
                    prev.label,
                    prev.kind.noun()
                )
            };
            problems.push(problem(&entry.label, &entry.path, message));
            continue;
        }
        // Nested entries are fine (`.config` and `.config/fcitx5`, or
        // `/var/lib` in one storage and `/var/lib/nixos` in another): the
        // outer is mounted first, the inner on top of it. Two nestings
        // cannot work: a path inside a persisted file, and an entry mounted
        // in the initrd inside one mounted later, which would hide it.
        let outer = ancestors_and_self(&entry.path)
            .skip(1)
            .find_map(|p| accepted.get(p))
            .map(|&i| &persisted[i]);
        if let Some(outer) = outer {
            let why = if outer.kind == Kind::File {
                Some(format!(
                    "is inside {:?}, persisted by {} as a file; a file has no paths inside it",
                    outer.path, outer.label
                ))
            } else if entry.in_initrd && !outer.in_initrd {
                Some(format!(
                    "has inInitrd but is inside {:?}, persisted by {} without it: that mount comes later, in stage 2, and would hide this one; give both inInitrd or neither",
                    outer.path, outer.label
                ))
            } else {
                None
            };
            if let Some(message) = why {
                problems.push(problem(&entry.label, &entry.path, message));
                continue;
            }
            entry.outer_storage = Some(outer.storage.clone());
        }
        if let Some(storage) = storages.iter().find(|s| is_within(&entry.path, s)) {
            problems.push(problem(
                &entry.label,
                &entry.path,
                format!(
                    "is inside the storage {storage:?} of another entry; it is persistent already"
                ),
            ));
            continue;
        }
        if let Some(storage) = storages.iter().find(|s| is_within(s, &entry.path)) {
            problems.push(problem(
                &entry.label,
                &entry.path,
                format!(
                    "contains the storage {storage:?}; mounting over it would hide persisted data"
                ),
            ));
            continue;
        }
        let outers = ancestors_and_self(&entry.path)
            .skip(1)
            .filter_map(|p| accepted.get(p))
            .map(|&i| &persisted[i]);
        if let Err((value, message)) = sources.admit(&entry, outers) {
            problems.push(problem(&entry.label, &value, message));
            continue;
        }
        accepted.insert(entry.path.clone(), persisted.len());
        persisted.push(*entry);
    }
    let mut overlay_problems = Vec::new();
    let overlays = collect_overlays(config, &persisted, &mut overlay_problems);
    Entries {
        persisted,
        problems,
        overlays,
        overlay_problems,
    }
}
