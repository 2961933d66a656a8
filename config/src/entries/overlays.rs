//! The overlays, each checked on its own, against the others and against
//! the accepted persisted entries.

use super::checked::{CheckedOverlay, Persisted};
use super::paths::check_path;
use super::problem::{OVERLAY_SKIPPED, Problem, scoped};
use crate::Config;
use crate::names::{check_mount_option, check_unit_name, is_within};

pub(super) fn collect_overlays(
    config: &Config,
    persisted: &[Persisted],
    problems: &mut Vec<Problem>,
) -> Vec<CheckedOverlay> {
    let mut out: Vec<CheckedOverlay> = Vec::new();
    'next: for (i, o) in config.overlays.iter().enumerate() {
        let at = format!("overlays[{i}]");
        let mut paths: Vec<(String, &str)> = vec![
            (format!("{at}.where"), &o.where_),
            (format!("{at}.upper"), &o.upper),
            (format!("{at}.work"), &o.work),
        ];
        for (j, l) in o.lower.iter().enumerate() {
            paths.push((format!("{at}.lower[{j}]"), l));
        }
        if let Some(w) = &o.when_mounted {
            paths.push((format!("{at}.whenMounted"), w));
        }
        for (label, p) in &paths {
            if let Err(why) = check_path(p) {
                problems.push(scoped(label, p, why, OVERLAY_SKIPPED));
                continue 'next;
            }
        }
        let fail = |problems: &mut Vec<Problem>, key: &str, value: &str, why: String| {
            problems.push(scoped(&format!("{at}{key}"), value, why, OVERLAY_SKIPPED));
        };
        if o.lower.is_empty() {
            fail(
                problems,
                ".lower",
                "[]",
                "is empty; expected at least one lower directory".to_owned(),
            );
            continue;
        }
        if o.where_ == "/" {
            fail(
                problems,
                ".where",
                &o.where_,
                "is the root; an overlay on / belongs in the initrd".to_owned(),
            );
            continue;
        }
        if is_within(&o.upper, &o.work) || is_within(&o.work, &o.upper) {
            fail(
                problems,
                ".work",
                &o.work,
                format!(
                    "and upper {:?} contain one another; overlayfs needs two separate directories on one filesystem",
                    o.upper
                ),
            );
            continue;
        }
        if is_within(&o.upper, &o.where_) || is_within(&o.work, &o.where_) {
            fail(
                problems,
                ".upper",
                &o.upper,
                format!(
                    "or work lies inside the mount point {:?}, which the overlay hides",
                    o.where_
                ),
            );
            continue;
        }
        for (j, opt) in o.mount_options.iter().enumerate() {
            if let Err(why) = check_mount_option(opt) {
                fail(problems, &format!(".mountOptions[{j}]"), opt, why);
                continue 'next;
            }
            let name = opt.split('=').next().unwrap_or(opt);
            if matches!(name, "lowerdir" | "upperdir" | "workdir") {
                fail(
                    problems,
                    &format!(".mountOptions[{j}]"),
                    opt,
                    "sets a directory that tabula sets from lower, upper and work; remove it"
                        .to_owned(),
                );
                continue 'next;
            }
        }
        for (j, unit) in o.before.iter().enumerate() {
            if let Err(why) = check_unit_name(unit) {
                fail(
                    problems,
                    &format!(".before[{j}]"),
                    unit,
                    format!("{unit:?} {why}"),
                );
                continue 'next;
            }
        }
        if let Some(prev) = out.iter().find(|p| p.config.where_ == o.where_) {
            fail(
                problems,
                ".where",
                &o.where_,
                format!(
                    "is already the mount point of {}; the first is kept",
                    prev.label
                ),
            );
            continue;
        }
        if let Some(b) = persisted
            .iter()
            .find(|b| is_within(&o.where_, &b.path) || is_within(&b.path, &o.where_))
        {
            fail(
                problems,
                ".where",
                &o.where_,
                format!(
                    "overlaps the persisted path {:?} ({}); mount one or the other",
                    b.path, b.label
                ),
            );
            continue;
        }
        out.push(CheckedOverlay {
            label: at,
            config: o.clone(),
        });
    }
    out.sort_by(|a, b| a.config.where_.cmp(&b.config.where_));
    out
}
