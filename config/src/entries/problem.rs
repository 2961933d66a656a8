//! A rejected entry, storage, user or overlay: which one, why, and what is
//! left out because of it.

use std::fmt;

/// A rejected entry: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub label: String,
    pub value: String,
    pub message: String,
    /// What is left out because of it.
    pub skipped: &'static str,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}): {}; {}",
            self.label, self.value, self.message, self.skipped
        )
    }
}

pub(super) const ENTRY_SKIPPED: &str = "this entry is skipped, the others are still mounted";
pub(super) const STORAGE_SKIPPED: &str =
    "none of this storage's entries is mounted, the other storages are";
pub(super) const USER_SKIPPED: &str = "none of this user's entries is mounted, the others are";
pub(super) const OVERLAY_SKIPPED: &str = "this overlay is skipped, the others are still mounted";

pub(super) fn problem(label: &str, value: &str, message: impl Into<String>) -> Problem {
    scoped(label, value, message, ENTRY_SKIPPED)
}

pub(super) fn scoped(
    label: &str,
    value: &str,
    message: impl Into<String>,
    skipped: &'static str,
) -> Problem {
    Problem {
        label: label.to_owned(),
        value: value.to_owned(),
        message: message.into(),
        skipped,
    }
}
