//! The units of the sources step: `tabula-sources.service`, one mount unit
//! per dataset, the drop-in ordering the prepare step after them.

use std::fmt::Write as _;

use super::{How, SOURCES_DIR, SOURCES_UNIT, Source, ZFS_SEARCH_PATH};
use crate::escape::{unit_value, unit_word};
use crate::units::{Context, DOCUMENTATION, HEADER, Node, PREPARE_UNIT, Tree};

/// A unit file being written: the header, then lines.
pub(super) struct Lines(String);

impl Lines {
    pub(super) fn new() -> Self {
        Lines(HEADER.to_owned())
    }
    pub(super) fn line(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self.0.push('\n');
        self
    }
    /// `key=value`, `%` doubled.
    pub(super) fn set(&mut self, key: &str, value: &str) -> &mut Self {
        let _ = writeln!(self.0, "{key}={}", unit_value(value));
        self
    }
    /// `key=` words, each quoted as needed.
    pub(super) fn words(&mut self, key: &str, words: &[&str]) -> &mut Self {
        let quoted: Vec<String> = words.iter().map(|w| unit_word(w)).collect();
        let _ = writeln!(self.0, "{key}={}", quoted.join(" "));
        self
    }
    pub(super) fn origin(&mut self, ctx: &Context<'_>) -> &mut Self {
        self.set("Documentation", DOCUMENTATION)
            .set("SourcePath", ctx.config_path)
    }
    pub(super) fn finish(&mut self) -> Node {
        Node::File(std::mem::take(&mut self.0))
    }
}

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
    let mut unit = Lines::new();
    unit.line("")
        .line("[Unit]")
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
        .line("")
        .line("[Service]")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes");
    if any_zfs {
        unit.set("Environment", &format!("PATH={ZFS_SEARCH_PATH}"));
    }
    unit.words("ExecStart", &[ctx.exe, "sources"]);
    tree.insert(SOURCES_UNIT.to_owned(), unit.finish());

    let mut after = vec![SOURCES_UNIT];
    after.extend(&mounts);
    let mut dropin = Lines::new();
    dropin
        .line("")
        .line("# The sources with their own dataset or subvolume exist, and the")
        .line("# datasets are mounted, before the prepare step looks at them.")
        .line("[Unit]")
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
    let mut unit = Lines::new();
    unit.line("")
        .line("[Unit]")
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
        .line("")
        .line("[Mount]")
        .set("What", dataset)
        .set("Where", &b.source)
        .set("Type", "zfs");
    unit.finish()
}
