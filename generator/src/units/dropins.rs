//! Drop-ins into units tabula does not own: the target that wants the
//! mounts, and `systemd-machine-id-commit.service`.

use super::unit_file::UnitFile;
use super::{Context, Node, prepare_unit_name};
use crate::plan::Plan;

pub(super) fn wants_dropin(plan: &Plan, ctx: &Context<'_>) -> Node {
    let mut units: Vec<&str> = plan
        .binds
        .iter()
        .filter(|b| b.is_mounted())
        .map(|b| b.unit.as_str())
        .collect();
    // A symlinked file has no mount unit to pull the prepare step in.
    if plan.binds.iter().any(|b| !b.is_mounted()) {
        units.push(prepare_unit_name(ctx.stage));
    }
    // No size hint from the entry count: the string grows by doubling,
    // a handful of copies even for 10,000 entries.
    UnitFile::new(1024)
        .blank()
        .comment("The persisted paths, each a mount unit of this directory (and the")
        .comment("prepare step, which places the symlinked files, when there are any).")
        .section("Unit")
        .origin(ctx)
        .list_lines("Wants", &units, 8)
        .finish()
}

pub(super) fn machine_id_dropin(ctx: &Context<'_>) -> Node {
    UnitFile::new(768)
        .blank()
        .comment("/etc/machine-id is a bind mount of its persisted copy. On the first boot")
        .comment("that copy holds \"uninitialized\", systemd runs with a transient id, and")
        .comment("this service writes it through the bind mount into persistent storage.")
        .comment("On every later boot the id is already persisted: nothing to commit.")
        .section("Unit")
        .origin(ctx)
        .set("ConditionFirstBoot", "yes")
        .finish()
}
