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
mod tests {
    use super::*;

    const NOW: i64 = 1_795_219_200; // 2026-11-21T00:00:00Z

    fn keep(days: Option<u32>, min: u32, max: Option<u32>) -> Keep {
        Keep { days, min, max }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn days_ago(d: i64) -> String {
        timestamp_name(NOW - d * DAY)
    }

    /// The policy over `names` archived in the order their names say (the
    /// clocks were right), nothing archived by this run.
    fn plan(names: &[String], now: i64, k: &Keep) -> Plan {
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort_by_key(|n| parse_dated(n));
        let roots: Vec<OldRoot> = names
            .iter()
            .map(|name| OldRoot {
                name: name.clone(),
                order: (
                    sorted.iter().position(|n| *n == name).unwrap_or(0) as u64,
                    0,
                ),
            })
            .collect();
        super::plan(&roots, now, k, &[])
    }

    /// Old roots archived in the order given (first = archived first),
    /// whatever their names say.
    fn archived_in_order(names: &[&str]) -> Vec<OldRoot> {
        names
            .iter()
            .zip(100u64..)
            .map(|(name, order)| OldRoot {
                name: (*name).to_owned(),
                order: (order, 0),
            })
            .collect()
    }

    #[test]
    fn min_counts_the_most_recently_archived_not_the_largest_timestamps() {
        // Archived first, but stamped a year ahead by a clock set wrong.
        let future = timestamp_name(NOW + 365 * DAY);
        let roots = archived_in_order(&[&future, &days_ago(40), &days_ago(35)]);
        let p = super::plan(&roots, NOW, &keep(None, 1, Some(1)), &[]);
        assert_eq!(p.keep, vec![days_ago(35)]);
        assert_eq!(p.prune, vec![days_ago(40), future]);
    }

    #[test]
    fn the_root_archived_by_a_run_is_never_pruned_by_it() {
        // Stamped long ago by a clock set to the build date, archived last.
        let stale = timestamp_name(NOW - 900 * DAY);
        let roots = archived_in_order(&[&days_ago(3), &days_ago(2), &stale]);
        for k in [
            keep(Some(30), 0, None),
            keep(None, 0, Some(0)),
            keep(Some(0), 0, Some(0)),
        ] {
            let p = super::plan(&roots, NOW, &k, &[&stale]);
            assert!(p.keep.contains(&stale), "{k:?}: {p:?}");
            assert!(!p.prune.contains(&stale), "{k:?}: {p:?}");
        }
        // Without the protection the same policy prunes it: the rule is
        // what keeps it.
        let p = super::plan(&roots, NOW, &keep(Some(0), 0, Some(0)), &[]);
        assert!(p.prune.contains(&stale), "{p:?}");
    }

    #[test]
    fn only_the_oldest_in_the_filesystem_order_are_pruned() {
        // The oldest archive is stamped in the future (young by its name),
        // so it stays, and nothing archived after it may go before it.
        let future = timestamp_name(NOW + 10 * DAY);
        let roots = archived_in_order(&[&future, &days_ago(90), &days_ago(80), &days_ago(1)]);
        let p = super::plan(&roots, NOW, &keep(Some(30), 1, None), &[]);
        assert!(p.prune.is_empty(), "{p:?}");
        assert_eq!(
            p.keep,
            vec![days_ago(1), days_ago(80), days_ago(90), future]
        );
        // Once the old end is prunable, the prefix goes, up to the first
        // that stays.
        let roots = archived_in_order(&[
            &days_ago(90),
            &days_ago(80),
            &days_ago(2),
            &days_ago(70),
            &days_ago(1),
        ]);
        let p = super::plan(&roots, NOW, &keep(Some(30), 1, None), &[]);
        assert_eq!(p.prune, vec![days_ago(80), days_ago(90)]);
        assert_eq!(p.keep, vec![days_ago(1), days_ago(70), days_ago(2)]);
    }

    #[test]
    fn a_name_in_the_future_is_reported_and_aged_as_now() {
        let future = timestamp_name(NOW + 3 * DAY);
        let roots = archived_in_order(&[&days_ago(5), &future]);
        let p = super::plan(&roots, NOW, &keep(Some(0), 0, None), &[]);
        assert_eq!(p.future, vec![future.clone()]);
        // Age 0 is not more than 0 days: it stays; the one before it is
        // 5 days old and goes.
        assert_eq!(p.keep, vec![future]);
        assert_eq!(p.prune, vec![days_ago(5)]);
    }

    #[test]
    fn max_equal_to_min_keeps_exactly_that_many() {
        let all: Vec<String> = (0..6).map(days_ago).collect();
        let p = plan(&all, NOW, &keep(None, 3, Some(3)));
        assert_eq!(p.keep, (0..3).map(days_ago).collect::<Vec<_>>());
        assert_eq!(p.prune, (3..6).map(days_ago).collect::<Vec<_>>());
    }

    #[test]
    fn a_name_with_one_wrong_separator_is_pinned() {
        let good = "2026-11-21T10:20:30Z";
        assert!(parse_name(good).is_some());
        for at in [4, 7, 10, 13, 16, 19] {
            for wrong in [b'_', b'0', b' '] {
                let mut bad = good.as_bytes().to_vec();
                bad[at] = wrong;
                let bad = String::from_utf8(bad).unwrap_or_default();
                assert_eq!(parse_name(&bad), None, "{bad:?}");
                let p = plan(&names(&[&bad]), NOW, &keep(Some(0), 0, Some(0)));
                assert_eq!(p.pinned, vec![bad.clone()], "{bad:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(timestamp_name(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp_name(NOW), "2026-11-21T00:00:00Z");
        assert_eq!(timestamp_name(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp_name(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(timestamp_name(-1), "1969-12-31T23:59:59Z");
        assert_eq!(timestamp_name(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp_name(i64::MIN), "0000-01-01T00:00:00Z");
        for t in [
            0,
            1,
            59,
            86_399,
            951_782_400,
            NOW,
            NOW + 12_345,
            4_102_444_799,
            -86_400 * 400,
        ] {
            assert_eq!(parse_name(&timestamp_name(t)), Some(t), "{t}");
        }
        // Every day of 400 years, once.
        for d in (0..146_097).map(|d| d - 50_000) {
            let t = d * DAY + 3_723;
            assert_eq!(parse_name(&timestamp_name(t)), Some(t));
        }
    }

    #[test]
    fn what_is_not_a_timestamp_is_pinned() {
        assert_eq!(parse_name("2026-11-21T00:00:00Z.1"), Some(NOW));
        assert_eq!(parse_name("2026-11-21T00:00:00Z.12"), Some(NOW));
        for bad in [
            "",
            "keep-me",
            "2026-11-21T00:00:00",
            "2026-11-21 00:00:00Z",
            "2026-11-21T00:00:00Z.0",
            "2026-11-21T00:00:00Z.01",
            "2026-11-21T00:00:00Z.",
            "2026-11-21T00:00:00Z.x",
            "2026-11-21T00:00:00Z-pinned",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T00:60:00Z",
            "2026-11-21T00:00:60Z",
            "+026-11-21T00:00:00Z",
            "2026-1a-21T00:00:00Z",
            "٢٠٢٦-11-21T00:00:00Z",
        ] {
            assert_eq!(parse_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn collisions_get_counters() {
        let taken = ["a", "a.1", "a.2"];
        assert_eq!(unique_name("a", |n| taken.contains(&n)), "a.3");
        assert_eq!(unique_name("b", |n| taken.contains(&n)), "b");
        assert_eq!(unique_name("a", |n| n == "a"), "a.1");
    }

    #[test]
    fn days_policy_keeps_min_even_when_all_are_old() {
        let all = names(&[&days_ago(40), &days_ago(50), &days_ago(60)]);
        let p = plan(&all, NOW, &keep(Some(30), 1, None));
        assert_eq!(p.keep, vec![days_ago(40)]);
        assert_eq!(p.prune, vec![days_ago(50), days_ago(60)]);
        let p = plan(&all, NOW, &keep(Some(30), 0, None));
        assert_eq!(p.keep, Vec::<String>::new());
        assert_eq!(p.prune.len(), 3);
    }

    #[test]
    fn days_boundary_is_exclusive() {
        let all = names(&[
            &days_ago(0),
            &days_ago(30),
            &timestamp_name(NOW - 30 * DAY - 1),
        ]);
        let p = plan(&all, NOW, &keep(Some(30), 0, None));
        assert_eq!(p.keep, vec![days_ago(0), days_ago(30)]);
        assert_eq!(p.prune, vec![timestamp_name(NOW - 30 * DAY - 1)]);
    }

    #[test]
    fn max_prunes_the_oldest_beyond_it() {
        let all: Vec<String> = (0..10).map(days_ago).collect();
        let p = plan(&all, NOW, &keep(None, 1, Some(3)));
        assert_eq!(p.keep, vec![days_ago(0), days_ago(1), days_ago(2)]);
        assert_eq!(p.prune, (3..10).map(days_ago).collect::<Vec<_>>());
        // min wins over max
        let p = plan(&all, NOW, &keep(None, 5, Some(5)));
        assert_eq!(p.keep.len(), 5);
        // days and max together: whichever prunes more
        let p = plan(&all, NOW, &keep(Some(5), 1, Some(8)));
        assert_eq!(p.keep, (0..=5).map(days_ago).collect::<Vec<_>>());
        let p = plan(&all, NOW, &keep(None, 1, None));
        assert!(p.prune.is_empty());
        let p = plan(&all, NOW, &keep(None, 0, Some(0)));
        assert_eq!(p.prune.len(), 10);
    }

    #[test]
    fn pinned_names_are_never_pruned_and_do_not_count() {
        let all = names(&[
            "my-good-root",
            &days_ago(100),
            &days_ago(200),
            "2026-11-21T00:00:00Z-x",
        ]);
        let p = plan(&all, NOW, &keep(Some(30), 1, Some(1)));
        assert_eq!(p.pinned, names(&["2026-11-21T00:00:00Z-x", "my-good-root"]));
        assert_eq!(p.keep, vec![days_ago(100)]);
        assert_eq!(p.prune, vec![days_ago(200)]);
    }

    #[test]
    fn collision_counters_order_after_their_base() {
        let base = days_ago(50);
        let all = names(&[
            &base,
            &format!("{base}.2"),
            &format!("{base}.1"),
            &days_ago(60),
        ]);
        let p = plan(&all, NOW, &keep(Some(30), 2, None));
        assert_eq!(p.keep, vec![format!("{base}.2"), format!("{base}.1")]);
        assert_eq!(p.prune, vec![base, days_ago(60)]);
    }

    #[test]
    fn a_clock_at_1970_deletes_nothing() {
        let all: Vec<String> = (0..50).map(|d| days_ago(d * 10)).collect();
        for now in [0, 1, 86_400 * 365, TRUSTED_CLOCK_FROM - 1] {
            let p = plan(&all, now, &keep(Some(1), 0, Some(1)));
            assert!(p.prune.is_empty(), "pruned at {now}: {p:?}");
            assert_eq!(p.keep.len(), 50);
        }
    }

    #[test]
    fn a_clock_in_2099_still_keeps_min() {
        let far = 4_102_444_800; // 2100-01-01
        let all: Vec<String> = (0..10).map(days_ago).collect();
        let p = plan(&all, far, &keep(Some(30), 3, None));
        assert_eq!(p.keep, vec![days_ago(0), days_ago(1), days_ago(2)]);
        assert_eq!(p.prune.len(), 7);
    }

    #[test]
    fn entries_from_the_future_are_not_old() {
        let future = timestamp_name(NOW + 400 * DAY);
        let all = names(&[&future, &days_ago(1), &days_ago(90)]);
        let p = plan(&all, NOW, &keep(Some(30), 1, None));
        assert_eq!(p.keep, vec![future, days_ago(1)]);
        assert_eq!(p.prune, vec![days_ago(90)]);
    }

    #[test]
    fn plan_partitions_its_input() {
        // Every name ends up in exactly one list, whatever the policy.
        let all: Vec<String> = (0..40)
            .map(|i| {
                if i % 7 == 0 {
                    format!("pinned-{i}")
                } else {
                    days_ago(i * 3)
                }
            })
            .collect();
        for k in [
            keep(Some(30), 1, None),
            keep(None, 0, Some(4)),
            keep(Some(0), 10, Some(12)),
        ] {
            let p = plan(&all, NOW, &k);
            let mut seen: Vec<String> =
                [p.keep.clone(), p.prune.clone(), p.pinned.clone()].concat();
            seen.sort();
            let mut want = all.clone();
            want.sort();
            assert_eq!(seen, want);
            assert!(p.keep.len() >= (k.min as usize).min(all.len() - p.pinned.len()));
        }
    }
}
