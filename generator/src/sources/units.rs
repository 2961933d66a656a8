//! The units of the sources step: `tabula-sources.service`, one mount unit
//! per dataset, the drop-in ordering the prepare step after them.

use super::{How, SOURCES_DIR, SOURCES_UNIT, Source, ZFS_SEARCH_PATH};
use crate::units::{Context, Node, PREPARE_UNIT, Tree, UnitFile};

/// The units for `sources`, added to `tree`: `tabula-sources.service`, one
/// mount unit per dataset, and a drop-in that orders the prepare step after
/// them.
pub fn render(sources: &[Source], ctx: &Context<'_>, tree: &mut Tree) {
    if sources.is_empty() {
        return;
    }
    let any_zfs = sources.iter().any(|s| matches!(s.how, How::Zfs { .. }));
    let mut storages: Vec<&str> = sources.iter().map(|s| s.bind.storage.as_str()).collect();
    storages.sort_unstable();
    storages.dedup();
    let mut mounts: Vec<&str> = Vec::new();
    for s in sources {
        if let How::Zfs { dataset, unit, .. } = &s.how {
            mounts.push(unit);
            tree.insert(unit.clone(), dataset_unit(s, dataset, ctx));
        }
    }

    let mut before = vec!["shutdown.target", "local-fs.target", PREPARE_UNIT];
    before.extend(&mounts);
    let mut after = vec!["local-fs-pre.target", "systemd-remount-fs.service"];
    if any_zfs {
        after.push("zfs-import.target");
    }
    let mut unit = UnitFile::new(512);
    unit.blank()
        .section("Unit")
        .set(
            "Description",
            "Create the persisted directories' own datasets and subvolumes",
        )
        .origin(ctx)
        .set("DefaultDependencies", "no")
        .set("Conflicts", "shutdown.target")
        .set("Before", &before.join(" "))
        .set("After", &after.join(" "))
        .words("RequiresMountsFor", &storages)
        .blank()
        .section("Service")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes");
    if any_zfs {
        unit.set("Environment", &format!("PATH={ZFS_SEARCH_PATH}"));
    }
    unit.words("ExecStart", &[ctx.exe, "sources"]);
    tree.insert(SOURCES_UNIT.to_owned(), unit.finish());

    let mut after = vec![SOURCES_UNIT];
    after.extend(&mounts);
    let mut dropin = UnitFile::new(512);
    dropin
        .blank()
        .comment("The sources with their own dataset or subvolume exist, and the")
        .comment("datasets are mounted, before the prepare step looks at them.")
        .section("Unit")
        .origin(ctx)
        .set("Wants", SOURCES_UNIT)
        .set("After", &after.join(" "));
    tree.insert(
        format!("{PREPARE_UNIT}.d/50-tabula-sources.conf"),
        dropin.finish(),
    );
}

pub(super) fn dataset_unit(s: &Source, dataset: &str, ctx: &Context<'_>) -> Node {
    let b = &s.bind;
    let mut unit = UnitFile::new(512);
    unit.blank()
        .section("Unit")
        .set(
            "Description",
            &format!("Dataset {dataset} of the persisted directory {}", b.path),
        )
        .origin(ctx)
        .set("DefaultDependencies", "no")
        .set("Conflicts", "umount.target")
        .set(
            "Before",
            &format!("umount.target local-fs.target {PREPARE_UNIT}"),
        )
        .set("Wants", SOURCES_UNIT)
        .set("After", &format!("{SOURCES_UNIT} zfs-import.target"))
        .words("RequiresMountsFor", &[&b.storage])
        .set(
            "ConditionPathExists",
            &format!("{SOURCES_DIR}/ready/{}", b.unit),
        )
        .blank()
        .section("Mount")
        .set("What", dataset)
        .set("Where", &b.source)
        .set("Type", "zfs");
    unit.finish()
}
