//! The mount units: one bind mount per persisted entry, one overlay mount
//! per overlay.

use super::unit_file::UnitFile;
use super::{Context, Node, PREPARED_DIR, prepare_unit_name};
use crate::escape::{overlay_dir, path_unit_name};
use crate::plan::{Bind, Method, OverlayMount, Stage};

pub(super) fn bind_unit(b: &Bind, ctx: &Context<'_>, target: &str) -> Node {
    let prepare = prepare_unit_name(ctx.stage);
    let mut unit = UnitFile::new(768);
    unit.blank()
        .section("Unit")
        .set_parts(
            "Description",
            &[
                "Persisted ",
                b.kind.noun(),
                " ",
                &b.path,
                " from ",
                &b.storage,
            ],
        )
        .origin(ctx)
        .set("DefaultDependencies", "no");
    match ctx.stage {
        Stage::System => unit
            .set("Conflicts", "umount.target")
            .list("Before", &["umount.target", target]),
        Stage::Initrd => unit.set("Before", target),
    };
    unit.set("Wants", prepare)
        .set("After", prepare)
        .words("RequiresMountsFor", &[&b.storage])
        .set_parts("AssertPathExists", &[PREPARED_DIR, "/", &b.unit]);
    if b.method == Method::Auto {
        // The prepare step decides at boot: a symlink when the persisted
        // copy is missing, and then this bind mount must not cover it.
        unit.set_parts("ConditionPathIsSymbolicLink", &["!", &b.target]);
    }
    unit.blank()
        .section("Mount")
        .set("What", &b.source)
        .set("Where", &b.target)
        .set("Type", "none")
        .joined(
            "Options",
            std::iter::once("bind").chain(b.options.iter().map(String::as_str)),
            ',',
        )
        .finish()
}

/// Mount units of `path` and each of its parents, `/` excluded.
pub(super) fn mount_units_along(path: &str) -> Vec<String> {
    let mut units = Vec::new();
    let mut prefix = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        prefix.push('/');
        prefix.push_str(comp);
        units.push(path_unit_name(&prefix, "mount"));
    }
    units
}

pub(super) fn overlay_unit(overlay: &OverlayMount, ctx: &Context<'_>) -> Node {
    let o = &overlay.config;
    let description = match &o.when_mounted {
        Some(w) => format!("Overlay on {}, upper layer on {w}", o.where_),
        None => format!("Overlay on {}", o.where_),
    };
    let mut before = vec!["umount.target"];
    if o.before.is_empty() {
        before.push("local-fs.target");
    }
    before.extend(o.before.iter().map(String::as_str));
    let mut unit = UnitFile::new(1024);
    unit.blank()
        .section("Unit")
        .set("Description", &description)
        .origin(ctx)
        .set("DefaultDependencies", "no")
        .set("Conflicts", "umount.target")
        .list("Before", &before);
    let mut dirs: Vec<&str> = vec![&o.upper, &o.work];
    dirs.extend(o.lower.iter().map(String::as_str));
    if let Some(when) = &o.when_mounted {
        // Ordered after, never requiring, what lives on the SSD: when it
        // is absent its mounts fail, this unit's condition is checked
        // and the journal says "skipped because of an unmet condition
        // check (ConditionPathIsMountPoint=...)", and the listed units
        // start on the lower layers alone.
        let mut after: Vec<String> = Vec::new();
        for d in dirs.iter().copied().chain([when.as_str()]) {
            after.extend(mount_units_along(d));
        }
        after.retain(|u| *u != overlay.unit);
        after.sort();
        after.dedup();
        unit.set("Wants", &path_unit_name(when, "mount"))
            .list_lines("After", &after, 16)
            .set("ConditionPathIsMountPoint", when);
    } else {
        let others: Vec<&str> = dirs.into_iter().filter(|d| *d != o.where_).collect();
        if !others.is_empty() {
            unit.words("RequiresMountsFor", &others);
        }
    }
    let lower: Vec<String> = o.lower.iter().map(|l| overlay_dir(l)).collect();
    let mut options = vec![
        format!("lowerdir={}", lower.join(":")),
        format!("upperdir={}", overlay_dir(&o.upper)),
        format!("workdir={}", overlay_dir(&o.work)),
    ];
    options.extend(o.mount_options.iter().cloned());
    unit.blank()
        .section("Mount")
        .set("What", "overlay")
        .set("Where", &o.where_)
        .set("Type", "overlay")
        .set("Options", &options.join(","))
        .finish()
}
