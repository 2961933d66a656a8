//! The crate's unit tests, by what they check; this module holds what
//! several of them share.

use super::*;

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

mod document;
mod duplicate_keys;
mod id_and_mode;
mod overlays;
mod persisted;
mod shared_rules;
mod targets;

fn parse_str(s: &str) -> Result<Config, ConfigError> {
    parse(s, Path::new("/etc/tabula/config.json"))
}

/// The error line for a config whose single rollback target is `target`.
fn target_error(target: &str) -> String {
    let doc = format!(r#"{{"version": 1, "rollback": [{target}]}}"#);
    match parse_str(&doc) {
        Ok(c) => panic!("accepted {target}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

const BTRFS: &str =
    r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "oldRoots": "@old_roots""#;
const ZFS: &str = r#""type": "zfs", "dataset": "rpool/local/root", "oldRoots": null"#;

/// The error line for `doc`, which must be refused.
fn refused(doc: &str) -> String {
    match parse_str(doc) {
        Ok(c) => panic!("accepted {doc}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn entries_of(doc: &str) -> Result<entries::Entries, ConfigError> {
    parse_str(doc).map(|c| entries::check_entries(&c))
}

/// What a test returns when its setup can fail: the failure is the error.
type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Each accepted entry's path with one of its fields, in the order kept.
fn by_path<'a, T>(
    e: &'a entries::Entries,
    field: impl Fn(&'a entries::Persisted) -> T,
) -> Vec<(&'a str, T)> {
    e.persisted
        .iter()
        .map(|p| (p.path.as_str(), field(p)))
        .collect()
}

/// Each problem as `label (value): message; skipped`.
fn problem_lines(e: &entries::Entries) -> Vec<String> {
    e.all_problems().map(ToString::to_string).collect()
}

/// Asserts that `lines` (from [`problem_lines`]) are exactly the problems of
/// `want`, in any order: each line starts with one of them.
fn assert_problems_are(lines: &[String], want: &[&str]) {
    for w in want {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w}\nin\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), want.len(), "{}", lines.join("\n"));
}
