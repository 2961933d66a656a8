//! The names of old roots: the moment the root was created, in UTC,
//! `2026-11-21T23:56:00Z`, with `.1`, `.2`… appended when that name is
//! taken. This is the one definition of that format; the rollback names old
//! roots with [`timestamp_name`] and dates them with [`parse_name`], and the
//! test harnesses recognise them with [`is_old_root_name`].

const DAY: i64 = 86_400;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
/// Howard Hinnant's `civil_from_days`.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the algorithm yields a day in 1..=31 and a month in 1..=12"
)]
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
#[must_use]
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
#[must_use]
pub fn parse_name(name: &str) -> Option<i64> {
    parse_dated(name).map(|(t, _)| t)
}

/// The Unix time and the collision counter (0 for none) of an old root's
/// name; the pair orders names from oldest to newest.
#[must_use]
pub fn parse_dated(name: &str) -> Option<(i64, u64)> {
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

/// Whether `name` is an old root's name that [`parse_name`] can date.
#[must_use]
pub fn is_old_root_name(name: &str) -> bool {
    parse_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_219_200; // 2026-11-21T00:00:00Z

    #[test]
    fn a_name_reads_back_as_the_time_it_was_made_from() {
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
    fn a_name_with_any_wrong_character_is_not_dated() {
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
            // Century years are leap years only when divisible by 400.
            "1900-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            // One wrong separator at each place.
            "2026_11-21T00:00:00Z",
            "2026-11_21T00:00:00Z",
            "2026-11-21t00:00:00Z",
            "2026-11-21T00_00:00Z",
            "2026-11-21T00:00_00Z",
            "2026-11-21T00:00:00z",
            "2026-11-21T00:00:00Z_1",
        ] {
            assert_eq!(parse_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn is_old_root_name_says_whether_a_name_is_dated() {
        assert!(is_old_root_name("2026-11-21T00:00:00Z"));
        assert!(is_old_root_name("2026-11-21T00:00:00Z.3"));
        assert!(!is_old_root_name("pinned"));
    }

    #[test]
    fn later_names_and_counters_order_after_earlier_ones() {
        assert_eq!(parse_dated("2026-11-21T00:00:00Z"), Some((NOW, 0)));
        assert_eq!(parse_dated("2026-11-21T00:00:00Z.7"), Some((NOW, 7)));
        assert!(parse_dated("2026-11-21T00:00:01Z") > parse_dated("2026-11-21T00:00:00Z.9"));
    }
}
