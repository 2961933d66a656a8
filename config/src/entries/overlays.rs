//! The overlays, each checked on its own, against the others and against
//! the accepted persisted entries.

use super::checked::{CheckedOverlay, Persisted};
use super::paths::check_path;
use super::problem::{OVERLAY_SKIPPED, Problem, scoped};
use crate::names::{check_mount_option, check_unit_name, is_within};
use crate::{Config, Overlay};

pub(super) fn collect_overlays(
    config: &Config,
    persisted: &[Persisted],
    problems: &mut Vec<Problem>,
) -> Vec<CheckedOverlay> {
    let mut out: Vec<CheckedOverlay> = Vec::new();
    for (i, o) in config.overlays.iter().enumerate() {
        let at = format!("overlays[{i}]");
        match check_alone(o, &at).and_then(|()| check_against(o, &at, &out, persisted)) {
            Ok(()) => out.push(CheckedOverlay {
                label: at,
                config: o.clone(),
            }),
            Err(p) => problems.push(p),
        }
    }
    out.sort_by(|a, b| a.config.where_.cmp(&b.config.where_));
    out
}

/// The problem of the field `key` (`.where`, `.before[0]`) of the overlay
/// labelled `at`.
fn fail(at: &str, key: &str, value: &str, why: impl Into<String>) -> Problem {
    scoped(&format!("{at}{key}"), value, why, OVERLAY_SKIPPED)
}

/// The first problem of one overlay's own fields.
fn check_alone(o: &Overlay, at: &str) -> Result<(), Problem> {
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
        check_path(p).map_err(|why| scoped(label, p, why, OVERLAY_SKIPPED))?;
    }
    if o.lower.is_empty() {
        return Err(fail(
            at,
            ".lower",
            "[]",
            "is empty; expected at least one lower directory",
        ));
    }
    if o.where_ == "/" {
        return Err(fail(
            at,
            ".where",
            &o.where_,
            "is the root; an overlay on / belongs in the initrd",
        ));
    }
    if is_within(&o.upper, &o.work) || is_within(&o.work, &o.upper) {
        return Err(fail(
            at,
            ".work",
            &o.work,
            format!(
                "and upper {:?} contain one another; overlayfs needs two separate directories on one filesystem",
                o.upper
            ),
        ));
    }
    if is_within(&o.upper, &o.where_) || is_within(&o.work, &o.where_) {
        return Err(fail(
            at,
            ".upper",
            &o.upper,
            format!(
                "or work lies inside the mount point {:?}, which the overlay hides",
                o.where_
            ),
        ));
    }
    for (j, opt) in o.mount_options.iter().enumerate() {
        let key = format!(".mountOptions[{j}]");
        check_mount_option(opt).map_err(|why| fail(at, &key, opt, why))?;
        let name = opt.split('=').next().unwrap_or(opt);
        if matches!(name, "lowerdir" | "upperdir" | "workdir") {
            return Err(fail(
                at,
                &key,
                opt,
                "sets a directory that tabula sets from lower, upper and work; remove it",
            ));
        }
    }
    for (j, unit) in o.before.iter().enumerate() {
        check_unit_name(unit).map_err(|why| {
            fail(
                at,
                &format!(".before[{j}]"),
                unit,
                format!("{unit:?} {why}"),
            )
        })?;
    }
    Ok(())
}

/// The first conflict of an overlay with the overlays accepted before it
/// and with the persisted entries.
fn check_against(
    o: &Overlay,
    at: &str,
    accepted: &[CheckedOverlay],
    persisted: &[Persisted],
) -> Result<(), Problem> {
    if let Some(prev) = accepted.iter().find(|p| p.config.where_ == o.where_) {
        return Err(fail(
            at,
            ".where",
            &o.where_,
            format!(
                "is already the mount point of {}; the first is kept",
                prev.label
            ),
        ));
    }
    if let Some(b) = persisted
        .iter()
        .find(|b| is_within(&o.where_, &b.path) || is_within(&b.path, &o.where_))
    {
        return Err(fail(
            at,
            ".where",
            &o.where_,
            format!(
                "overlaps the persisted path {:?} ({}); mount one or the other",
                b.path, b.label
            ),
        ));
    }
    Ok(())
}
