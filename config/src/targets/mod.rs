//! The rollback targets: one filesystem each (Btrfs or ZFS) whose root is
//! replaced in stage 1, with how many old roots to keep.

use serde::Deserialize;
use serde::de::Deserializer;

mod check;
mod distinct;

pub(crate) use check::parse_target;
pub(crate) use distinct::check_distinct_targets;

/// One filesystem to roll back in stage 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    Btrfs(BtrfsTarget),
    Zfs(ZfsTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BtrfsTarget {
    pub device: String,
    #[serde(default)]
    pub mount_options: Vec<String>,
    pub subvolume: String,
    #[serde(default)]
    pub blank: Option<String>,
    /// Required, but may be `null` (delete the previous root): deleting must
    /// be asked for, never a default.
    #[serde(deserialize_with = "required_nullable")]
    pub old_roots: Option<String>,
    #[serde(default)]
    pub keep: Keep,
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZfsTarget {
    pub dataset: String,
    #[serde(default = "default_snapshot")]
    pub snapshot: String,
    #[serde(deserialize_with = "required_nullable")]
    pub old_roots: Option<String>,
    #[serde(default)]
    pub keep: Keep,
    #[serde(default = "default_zfs_command")]
    pub zfs_command: String,
}

impl ZfsTarget {
    /// The pool: the first component of the dataset.
    #[must_use]
    pub fn pool(&self) -> &str {
        self.dataset.split('/').next().unwrap_or(&self.dataset)
    }
}

/// How many old roots to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// Delete old roots older than this many days; `None`: no age limit.
    #[serde(default = "default_days")]
    pub days: Option<u32>,
    /// Always keep at least this many of the newest, whatever their age.
    #[serde(default = "default_min")]
    pub min: u32,
    /// Keep at most this many, newest first (`min` wins).
    #[serde(default)]
    pub max: Option<u32>,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            days: default_days(),
            min: default_min(),
            max: None,
        }
    }
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "serde's `default` for an `Option` field must return the `Option`"
)]
fn default_days() -> Option<u32> {
    Some(30)
}
fn default_min() -> u32 {
    1
}
fn default_wait_seconds() -> u32 {
    30
}
fn default_snapshot() -> String {
    "blank".to_owned()
}
fn default_zfs_command() -> String {
    "zfs".to_owned()
}

fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}
