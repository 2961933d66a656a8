//! A persisted directory whose source is its own ZFS dataset or Btrfs
//! subvolume: the `zfs` and `btrfs` keys of a directory entry.
//!
//! ```json
//! {"path": "/var/lib/postgresql",
//!  "zfs": {"dataset": "rpool/safe/persist/postgresql",
//!          "properties": {"recordsize": "8K", "compression": "lz4"}}}
//! {"path": "/var/lib/containers",
//!  "btrfs": {"subvolume": true, "nodatacow": true, "compression": null}}
//! ```
//!
//! The values these keys may take are data, `config/sources.json`, read
//! here and by the NixOS module; `config/rules.json` (rules `zfsSource` and
//! `btrfsSource`) holds the cases both sides are tested against. An entry
//! whose key is wrong (an unknown property, a value ZFS could never take,
//! both keys, a file entry) is rejected with a problem naming the field, the
//! value and what is allowed; the other entries are still mounted.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::entries::{Kind, Persisted};
use crate::names::{self, is_within};
use crate::{Config, RollbackTarget};

mod table;

pub use table::{check_btrfs_compression, check_zfs_property, is_create_only, zfs_size_bytes};

/// The value table, `config/sources.json`, as shipped in the binary.
pub const TABLE_JSON: &str = include_str!("../../sources.json");

/// The `zfs` key of a directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZfsKey {
    /// `None`: a child of the dataset mounted at the storage.
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The `btrfs` key of a directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtrfsKey {
    /// Must be `true` (the only kind of Btrfs source there is).
    #[serde(default = "yes")]
    pub subvolume: bool,
    #[serde(default)]
    pub nodatacow: bool,
    /// `None`: the property is left unset (the mount's `compress=` applies).
    #[serde(default)]
    pub compression: Option<String>,
}

fn yes() -> bool {
    true
}

/// Which dataset an entry's source is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DatasetName {
    /// Named in the configuration.
    Named(String),
    /// `<the dataset mounted at the storage>/<child>`, known at boot.
    ChildOfStorage { storage: String, child: String },
}

/// A checked `zfs` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZfsSource {
    pub dataset: DatasetName,
    /// Sorted by name, each value checked against the table.
    pub properties: Vec<(String, String)>,
}

/// A checked `btrfs` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtrfsSource {
    pub nodatacow: bool,
    pub compression: Option<String>,
}

/// What an entry's source is, when it is more than a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    Zfs(ZfsSource),
    Btrfs(BtrfsSource),
}

/// The child dataset an entry at `path` gets when it names none: its path's
/// components joined by `-` (`/var/lib/postgresql` → `var-lib-postgresql`),
/// one level below the storage's dataset, so that no intermediate dataset is
/// created over the storage's own directories.
pub fn default_child(path: &str) -> Result<String, String> {
    let child = path.trim_start_matches('/').replace('/', "-");
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_-.:".contains(&b);
    if !child.bytes().all(ok) {
        return Err(format!(
            "has characters a ZFS dataset name cannot hold, so it has no default dataset (the storage's dataset + {child:?}); name one in \"zfs\".\"dataset\""
        ));
    }
    Ok(child)
}

/// One problem with an entry's `zfs` or `btrfs` key: the field (relative to
/// the entry: `.zfs.properties.recordsize`), the value and why.
pub type KeyProblem = (String, String, String);

/// Checks the `zfs` and `btrfs` keys of an entry at `path` (absolute) in
/// `storage`.
pub fn check_keys(
    kind: Kind,
    storage: &str,
    path: &str,
    in_initrd: bool,
    zfs: Option<&ZfsKey>,
    btrfs: Option<&BtrfsKey>,
) -> Result<Option<Backing>, KeyProblem> {
    let p = |field: &str, value: &str, why: String| Err((field.to_owned(), value.to_owned(), why));
    let key = match (zfs, btrfs) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return p(
                "",
                path,
                "has both \"zfs\" and \"btrfs\"; a source is one or the other: keep the one of the filesystem its storage is on".to_owned(),
            );
        }
        (Some(_), None) => "zfs",
        (None, Some(_)) => "btrfs",
    };
    if kind == Kind::File {
        return p(
            &format!(".{key}"),
            path,
            format!(
                "is a file; only a directory can be its own {}: remove \"{key}\"",
                if key == "zfs" { "dataset" } else { "subvolume" }
            ),
        );
    }
    if in_initrd {
        return p(
            &format!(".{key}"),
            path,
            format!(
                "has inInitrd; an own {} is created and mounted in stage 2: drop inInitrd or \"{key}\"",
                if key == "zfs" { "dataset" } else { "subvolume" }
            ),
        );
    }
    if let Some(z) = zfs {
        let dataset = match &z.dataset {
            Some(d) => {
                names::check_dataset(d)
                    .map_err(|why| (".zfs.dataset".to_owned(), d.clone(), why))?;
                if !d.contains('/') {
                    return p(
                        ".zfs.dataset",
                        d,
                        "is a whole pool; expected a dataset inside it, such as \"rpool/safe/persist/postgresql\"".to_owned(),
                    );
                }
                DatasetName::Named(d.clone())
            }
            None => DatasetName::ChildOfStorage {
                storage: storage.to_owned(),
                child: default_child(path)
                    .map_err(|why| (".zfs".to_owned(), path.to_owned(), why))?,
            },
        };
        for (name, value) in &z.properties {
            check_zfs_property(name, value)
                .map_err(|why| (format!(".zfs.properties.{name}"), value.clone(), why))?;
        }
        return Ok(Some(Backing::Zfs(ZfsSource {
            dataset,
            properties: z
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })));
    }
    let Some(b) = btrfs else {
        return Ok(None);
    };
    if !b.subvolume {
        return p(
            ".btrfs.subvolume",
            "false",
            "expected true (a Btrfs source is a subvolume); remove \"btrfs\" for a plain directory"
                .to_owned(),
        );
    }
    if let Some(c) = &b.compression {
        check_btrfs_compression(c)
            .map_err(|why| (".btrfs.compression".to_owned(), c.clone(), why))?;
        if b.nodatacow {
            return p(
                ".btrfs.compression",
                c,
                "is set with nodatacow; Btrfs neither compresses nor sets a compression property on nodatacow files: drop one".to_owned(),
            );
        }
    }
    Ok(Some(Backing::Btrfs(BtrfsSource {
        nodatacow: b.nodatacow,
        compression: b.compression.clone(),
    })))
}

/// The datasets already taken by accepted entries, and those of the
/// rollback targets, for [`Sources::admit`].
#[derive(Debug, Default)]
pub struct Sources {
    taken: HashMap<DatasetName, String>,
    /// (dataset, which rollback field names it)
    rolled_back: Vec<(String, String)>,
}

impl Sources {
    #[must_use]
    pub fn new(config: &Config) -> Self {
        let mut rolled_back = Vec::new();
        for (i, t) in config.rollback.iter().enumerate() {
            if let RollbackTarget::Zfs(z) = t {
                rolled_back.push((z.dataset.clone(), format!("rollback[{i}].dataset")));
                if let Some(o) = &z.old_roots {
                    rolled_back.push((o.clone(), format!("rollback[{i}].oldRoots")));
                }
            }
        }
        Sources {
            taken: HashMap::new(),
            rolled_back,
        }
    }

    /// Accepts the source of `entry` (whose accepted ancestors are
    /// `outers`), or says why it clashes with one accepted before: one
    /// dataset for two entries, a dataset that the rollback destroys or
    /// archives at every boot, or a dataset inside another entry's own
    /// dataset in one storage (the sources step would make the inner mount
    /// point before the outer dataset is mounted).
    pub fn admit<'a>(
        &mut self,
        entry: &Persisted,
        mut outers: impl Iterator<Item = &'a Persisted>,
    ) -> Result<(), (String, String)> {
        let label = &entry.label;
        let Some(Backing::Zfs(z)) = &entry.backing else {
            return Ok(());
        };
        if let Some(o) = outers
            .find(|o| o.storage == entry.storage && matches!(o.backing, Some(Backing::Zfs(_))))
        {
            return Err((
                entry.path.clone(),
                format!(
                    "has its own dataset inside {:?}'s ({}), in one storage, which is not supported (the inner mount point would be made before the outer dataset is mounted): persist it at a path outside {:?}, or give one of them no \"zfs\"",
                    o.path, o.label, o.path
                ),
            ));
        }
        if let DatasetName::Named(d) = &z.dataset {
            for (r, field) in &self.rolled_back {
                if is_within(d, r) || is_within(r, d) {
                    return Err((
                        d.clone(),
                        format!(
                            "is, or is inside or contains, {r:?} ({field}), which the rollback replaces at every boot; a persisted dataset must lie outside it"
                        ),
                    ));
                }
            }
        }
        if let Some(prev) = self.taken.get(&z.dataset) {
            let shown = match &z.dataset {
                DatasetName::Named(d) => d.clone(),
                DatasetName::ChildOfStorage { storage, child } => {
                    format!("the child {child:?} of the dataset of {storage}")
                }
            };
            return Err((
                shown,
                format!("is the dataset of {prev} too; each entry needs its own"),
            ));
        }
        self.taken.insert(z.dataset.clone(), label.to_owned());
        Ok(())
    }
}

/// How the shared table's `zfsSource` and `btrfsSource` cases are decided:
/// `value` as the `key` of a directory entry, through the real parser and
/// the entry checks.
#[cfg(test)]
pub(crate) fn decide_case(key: &str, value: &serde_json::Value) -> Result<(), String> {
    let doc = serde_json::json!({
        "version": 1,
        "persist": [{"storage": "/persist", "directories": [{"path": "/var/lib/x", key: value}]}]
    });
    let config = crate::parse(
        &doc.to_string(),
        std::path::Path::new("/etc/tabula/config.json"),
    )
    .map_err(|e| e.to_string())?;
    match crate::entries::check_entries(&config).problems.first() {
        Some(p) => Err(p.to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
