//! `tabula-prepare.service` (or its initrd twin): the oneshot that runs the
//! prepare step before the bind mounts.

use super::unit_file::UnitFile;
use super::{Context, Node, parent};
use crate::plan::{Plan, Stage};

pub(super) fn prepare_unit(plan: &Plan, ctx: &Context<'_>, target: &str) -> Node {
    let mut mounts_for: Vec<&str> = Vec::new();
    for b in &plan.binds {
        mounts_for.push(&b.storage);
        // An entry inside another is prepared in the outer entry's storage
        // (listed for the outer entry), not under its own parent: that is
        // the outer entry's mount point, mounted after this service.
        if b.outer_storage.is_none() {
            mounts_for.push(parent(&b.target));
        }
    }
    mounts_for.sort_unstable();
    mounts_for.dedup();
    let mut unit = UnitFile::new(1024);
    unit.blank()
        .section("Unit")
        .set(
            "Description",
            "Prepare persisted paths: create them and set their owners and modes",
        )
        .origin(ctx)
        .set("DefaultDependencies", "no");
    match ctx.stage {
        Stage::System => unit
            .set("Conflicts", "shutdown.target")
            .list("Before", &["shutdown.target", target])
            // The user database must be complete before names are resolved.
            .list(
                "After",
                &[
                    "local-fs-pre.target",
                    "systemd-remount-fs.service",
                    "systemd-sysusers.service",
                    "userborn.service",
                ],
            ),
        Stage::Initrd => unit
            .set("Conflicts", "initrd-switch-root.target")
            .list("Before", &["initrd-switch-root.target", target])
            .set("After", "initrd-root-fs.target"),
    };
    let exec: &[&str] = match ctx.stage {
        Stage::System => &[ctx.exe, "prepare"],
        Stage::Initrd => &[ctx.exe, "prepare", "--initrd"],
    };
    unit.words_lines("RequiresMountsFor", &mounts_for, 16)
        .blank()
        .section("Service")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes")
        .words("ExecStart", exec)
        .finish()
}
