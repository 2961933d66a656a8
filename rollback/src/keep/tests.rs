//! The keep policy's rules, one test each, and the old-root names.

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
        let mut seen: Vec<String> = [p.keep.clone(), p.prune.clone(), p.pinned.clone()].concat();
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want);
        assert!(p.keep.len() >= (k.min as usize).min(all.len() - p.pinned.len()));
    }
}

#[test]
fn the_most_recent_old_root_is_the_last_created_whatever_its_name_says() {
    let roots = vec![
        OldRoot {
            name: "2099-01-01T00:00:00Z".into(),
            order: (5, 300),
        },
        OldRoot {
            name: "2020-01-01T00:00:00Z".into(),
            order: (9, 301),
        },
        // Pinned (not a timestamp): never the one protected.
        OldRoot {
            name: "before-upgrade".into(),
            order: (12, 302),
        },
    ];
    assert_eq!(most_recent(&roots), Some("2020-01-01T00:00:00Z"));
    assert_eq!(most_recent(&roots[2..]), None);
    assert_eq!(most_recent(&[]), None);
}
