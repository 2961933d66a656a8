//! The one log both backends write about a keep-policy decision, before
//! anything is pruned: what is pinned, which names lie in the future, a
//! clock that is not believed, and the count.

use crate::keep::{self, Plan};

// `old_roots` + `/` + `name`, for messages.
use tabula_config::names::join_name as join;

/// Logs `plan`, made at `now` for the old roots in `old_roots` (a Btrfs
/// directory or a ZFS dataset).
pub fn report(old_roots: &str, plan: &Plan, now: i64) {
    for name in &plan.pinned {
        log::info!(
            "{} is pinned: its name is not a timestamp, so it is never pruned",
            join(old_roots, name)
        );
    }
    for name in &plan.future {
        log::warn!(
            "{} is named after a time later than now ({}); its clock was wrong: treated as made now",
            join(old_roots, name),
            keep::timestamp_name(now)
        );
    }
    let any = !(plan.keep.is_empty() && plan.prune.is_empty() && plan.pinned.is_empty());
    if now < keep::TRUSTED_CLOCK_FROM && any {
        log::warn!(
            "the clock says {}, before 2020: not trusting it, pruning nothing",
            keep::timestamp_name(now)
        );
    }
    log::info!(
        "{old_roots}: {} old roots kept, {} to prune, {} pinned",
        plan.keep.len(),
        plan.prune.len(),
        plan.pinned.len()
    );
}
