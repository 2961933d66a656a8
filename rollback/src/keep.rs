//! Names of old roots and the keep policy, as pure functions.
//!
//! An old root is named after the moment its root was created, in UTC:
//! `2026-11-21T23:56:00Z`, with `.1`, `.2`… appended when that name is taken.
//! Its age is read back from the name alone, so renaming an old root to
//! anything else pins it: [`plan`] never prunes what it cannot date.

use tabula_config::Keep;

const DAY: i64 = 86_400;

/// Before this instant (2020-01-01T00:00:00Z) the clock is not believed: an
/// initrd without an RTC, or with a dead battery, starts at 1970. [`plan`]
/// prunes nothing by age or count when `now` is earlier.
pub const TRUSTED_CLOCK_FROM: i64 = 1_577_836_800;

// The name format is part of the configuration contract; its one
// definition is in the config crate.
use tabula_config::old_root::parse_dated;
pub use tabula_config::old_root::{parse_name, timestamp_name};

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

/// What to do with the entries of an old-roots directory or dataset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Dated entries that stay, newest first.
    pub keep: Vec<String>,
    /// Dated entries to delete, newest first.
    pub prune: Vec<String>,
    /// Entries whose names are not timestamps: never pruned.
    pub pinned: Vec<String>,
}

/// Decides which old roots to prune at `now`:
///
/// - the newest `keep.min` dated entries always stay;
/// - of the rest, an entry goes when it is more than `keep.days` days old,
///   or when it is beyond the newest `keep.max`;
/// - undatable names are pinned;
/// - before [`TRUSTED_CLOCK_FROM`] nothing is pruned at all.
///
/// "Newest" is the order of the names (time, then collision counter), which
/// does not depend on the clock.
pub fn plan(names: &[String], now: i64, keep: &Keep) -> Plan {
    let mut dated = Vec::new();
    let mut plan = Plan::default();
    for name in names {
        match parse_dated(name) {
            Some(key) => dated.push((key, name.clone())),
            None => plan.pinned.push(name.clone()),
        }
    }
    dated.sort_by(|a, b| b.cmp(a));
    plan.pinned.sort();
    let clock_trusted = now >= TRUSTED_CLOCK_FROM;
    let min = usize::try_from(keep.min).unwrap_or(usize::MAX);
    let max = keep.max.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    for (rank, ((time, _), name)) in dated.into_iter().enumerate() {
        let too_old = keep
            .days
            .is_some_and(|days| now.saturating_sub(time) > i64::from(days) * DAY);
        let too_many = max.is_some_and(|max| rank >= max);
        if clock_trusted && rank >= min && (too_old || too_many) {
            plan.prune.push(name);
        } else {
            plan.keep.push(name);
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
