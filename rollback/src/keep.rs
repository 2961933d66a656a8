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

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01. Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time, in UTC. Times before year 0 or
/// after 9999 are clamped into that range, so the name keeps its shape.
pub fn timestamp_name(unix_seconds: i64) -> String {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let t = unix_seconds.clamp(MIN, MAX);
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    let secs = t.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Splits `base.N` into the base and the collision counter (0 for none).
fn split_suffix(name: &str) -> (&str, u64) {
    if let Some((base, n)) = name.rsplit_once('.') {
        let canonical =
            !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
        if let (true, Ok(n)) = (canonical, n.parse::<u64>()) {
            return (base, n);
        }
    }
    (name, 0)
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The Unix time an old root's name stands for, or `None` when the name is
/// not exactly `YYYY-MM-DDTHH:MM:SSZ` (optionally `.N`, N ≥ 1, no leading
/// zero): such an entry is pinned.
pub fn parse_name(name: &str) -> Option<i64> {
    parse_dated(name).map(|(t, _)| t)
}

fn parse_dated(name: &str) -> Option<(i64, u64)> {
    let (base, n) = split_suffix(name);
    let b = base.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let field = |r: std::ops::Range<usize>| base.get(r).and_then(parse_digits);
    let (year, month, day) = (i64::from(field(0..4)?), field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let t = days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    Some((t, n))
}

/// `base` if it is free, else the first free `base.1`, `base.2`, …
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (1u64..)
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
