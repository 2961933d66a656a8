//! The JSON configuration contract between tabula's NixOS module and its
//! binaries, version 1. `docs/config.md` documents every key; this crate is
//! the one implementation of it.
//!
//! [`parse`] checks the whole file: syntax, the version, unknown keys, types,
//! and every rollback field; an error there makes the file unusable.
//! [`entries::check_entries`] checks each persisted entry and overlay on its
//! own and against the others, and returns the accepted ones with the
//! problems of the rest (the generator emits the accepted ones).
//! [`check_file`] runs both: everything the file alone decides.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

mod dup;
pub mod entries;
pub mod names;
pub mod old_root;
pub mod sources;

pub use names::NEW_ROOT_SUFFIX;

/// Where the NixOS module puts the file, in the initrd and in stage 2.
pub const DEFAULT_PATH: &str = "/etc/tabula/config.json";

/// The only version this build understands.
pub const VERSION: u64 = 1;

/// One problem with a configuration file: which file, which field, and a
/// message that gives the value and what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// JSON path of the field, e.g. `rollback[0].keep.days`; empty for the
    /// document as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.field,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub rollback: Vec<RollbackTarget>,
    pub persist: Vec<Persist>,
    pub overlays: Vec<Overlay>,
}

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

/// One persistent storage and what is mounted back from it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Persist {
    pub storage: String,
    #[serde(default)]
    pub hide_mounts: bool,
    #[serde(default)]
    pub mount_options: Vec<String>,
    #[serde(default)]
    pub directories: Vec<Entry>,
    #[serde(default)]
    pub files: Vec<Entry>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// `None` means `/home/<name>`.
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub directories: Vec<Entry>,
    #[serde(default)]
    pub files: Vec<Entry>,
}

/// A persisted directory or file. In JSON either a bare path string or an
/// object; unset fields take the defaults of their context (system or user
/// entry, directory or file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryObject {
    pub path: String,
    #[serde(default)]
    pub user: Option<Id>,
    #[serde(default)]
    pub group: Option<Id>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub in_initrd: bool,
    /// Whether `user`, `group` and `mode` are applied to existing data too;
    /// absent: [`Ownership::Create`].
    #[serde(default)]
    pub ownership: Option<Ownership>,
    /// Mount options of this entry's bind mount, after its storage's.
    #[serde(default)]
    pub mount_options: Vec<String>,
    /// Owner and mode of the entry's parent directory, when it is created.
    #[serde(default)]
    pub parent_directory: Option<ParentDirectory>,
    /// How a file is put in place; absent: [`Method::Bind`].
    #[serde(default)]
    pub method: Option<Method>,
    /// Directories only: the source is its own ZFS dataset ([`sources`]).
    #[serde(default)]
    pub zfs: Option<sources::ZfsKey>,
    /// Directories only: the source is its own Btrfs subvolume.
    #[serde(default)]
    pub btrfs: Option<sources::BtrfsKey>,
}

/// How a persisted file is put in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A bind mount of the persisted copy.
    #[default]
    Bind,
    /// A symbolic link to the persisted copy, no mount: a program that
    /// replaces the file by rename replaces the link.
    Symlink,
}

/// The owner and mode a missing parent directory of an entry is created
/// with; unset fields take the defaults of created parents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentDirectory {
    #[serde(default)]
    pub user: Option<Id>,
    #[serde(default)]
    pub group: Option<Id>,
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// When an entry's owner and mode are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// Only to a source (and the parents) the prepare step creates; existing
    /// data keeps its owner and mode, and the mount point mirrors the
    /// source's (as `chown`/`chmod --reference` would).
    #[default]
    Create,
    /// To existing sources and mount points too, on every boot.
    Enforce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry(pub EntryObject);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path string or an object with `path`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                Ok(Entry(EntryObject {
                    path: v.to_owned(),
                    user: None,
                    group: None,
                    mode: None,
                    in_initrd: false,
                    ownership: None,
                    mount_options: Vec::new(),
                    parent_directory: None,
                    method: None,
                    zfs: None,
                    btrfs: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                EntryObject::deserialize(de::value::MapAccessDeserializer::new(map)).map(Entry)
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// A user or group: a name, resolved at boot, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    Name(String),
    Numeric(u32),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Name(n) => f.write_str(n),
            Id::Numeric(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or group name, or a numeric id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .map(Id::Numeric)
                    .ok_or_else(|| E::custom(format!("{v} is out of range for a user or group id")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    return v
                        .parse::<u64>()
                        .map_err(|_| {
                            E::custom(format!("{v:?} is out of range for a user or group id"))
                        })
                        .and_then(|n| self.visit_u64(n));
                }
                names::check_user_name(v)
                    .map(|()| Id::Name(v.to_owned()))
                    .map_err(|why| E::custom(format!("{v:?} {why}, or a numeric id")))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Permission bits, written in JSON as an octal string such as `"0750"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = (3..=4).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match u32::from_str_radix(&s, 8) {
            Ok(bits) if valid => Ok(Mode(bits)),
            _ => Err(de::Error::custom(format!(
                "{s:?} is not a mode; expected 3 or 4 octal digits as a string, such as \"0755\""
            ))),
        }
    }
}

/// An overlay mount made by the generator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overlay {
    #[serde(rename = "where")]
    pub where_: String,
    pub lower: Vec<String>,
    pub upper: String,
    pub work: String,
    #[serde(default)]
    pub when_mounted: Option<String>,
    #[serde(default)]
    pub before: Vec<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub mount_options: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[allow(dead_code)]
    version: Value,
    #[serde(default)]
    rollback: Vec<Value>,
    #[serde(default)]
    persist: Vec<Persist>,
    #[serde(default)]
    overlays: Vec<Overlay>,
}

/// Reads and parses the file at `file`; see [`parse`].
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_owned(),
        field: String::new(),
        message: format!("cannot read the configuration: {e}; expected the JSON file written by tabula's NixOS module"),
    })?;
    parse(&text, file)
}

/// Everything the file at `path` alone decides, as one error per problem:
/// the document (syntax, version, keys, types, every rollback target) and
/// every persisted entry and overlay. Empty means valid: a boot would refuse
/// nothing of it without looking at a disk. Reads the file and nothing else.
pub fn check_file(path: &Path) -> Vec<ConfigError> {
    match load(path) {
        Err(e) => vec![e],
        Ok(config) => entries::check_entries(&config)
            .all_problems()
            .map(|p| ConfigError {
                file: path.to_owned(),
                field: p.label.clone(),
                message: format!("{:?} {}; {}", p.value, p.message, p.skipped),
            })
            .collect(),
    }
}

/// Parses and checks a configuration document; `file` only names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let err = |field: &str, message: String| ConfigError {
        file: file.to_owned(),
        field: field.to_owned(),
        message,
    };
    match dup::find_duplicate(text) {
        Err(e) => return Err(err("", format!("is not valid JSON: {e}"))),
        Ok(Some(d)) => {
            return Err(err(
                &d.path,
                format!(
                    "the key {:?} appears twice in one object; JSON readers disagree on which one wins, so expected each key once: remove one",
                    d.key
                ),
            ));
        }
        Ok(None) => {}
    }
    let doc: Value =
        serde_json::from_str(text).map_err(|e| err("", format!("is not valid JSON: {e}")))?;
    let Value::Object(top) = &doc else {
        return Err(err(
            "",
            format!("the document is {}, expected a JSON object", kind(&doc)),
        ));
    };
    match top.get("version") {
        None => {
            return Err(err(
                "version",
                format!(
                    "is missing; expected `\"version\": {VERSION}` (this is tabula's configuration format version)"
                ),
            ));
        }
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(err(
                "version",
                format!(
                    "is {v}; this tabula understands only version {VERSION}: regenerate the file with the matching NixOS module"
                ),
            ));
        }
    }
    let raw: RawConfig = serde_path_to_error::deserialize(doc)
        .map_err(|e| err(&e.path().to_string(), e.inner().to_string()))?;
    let rollback = raw
        .rollback
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_target(v, &format!("rollback[{i}]")).map_err(|(f, m)| err(&f, m)))
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct_targets(&rollback).map_err(|(f, m)| err(&f, m))?;
    Ok(Config {
        rollback,
        persist: raw.persist,
        overlays: raw.overlays,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

type FieldError = (String, String);

fn parse_target(value: Value, at: &str) -> Result<RollbackTarget, FieldError> {
    let Value::Object(mut map) = value else {
        return Err((
            at.to_owned(),
            format!("is {}, expected an object with a \"type\"", kind(&value)),
        ));
    };
    let ty = map.remove("type");
    let value = Value::Object(map);
    let target = match ty.as_ref().and_then(Value::as_str) {
        Some("btrfs") => RollbackTarget::Btrfs(typed(value, at)?),
        Some("zfs") => RollbackTarget::Zfs(typed(value, at)?),
        _ => {
            let shown = ty.map_or_else(|| "missing".to_owned(), |t| t.to_string());
            return Err((
                format!("{at}.type"),
                format!("is {shown}; expected \"btrfs\" or \"zfs\""),
            ));
        }
    };
    check_target(&target, at)?;
    Ok(target)
}

fn typed<T: de::DeserializeOwned>(value: Value, at: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let field = if inner == "." || inner.is_empty() {
            at.to_owned()
        } else {
            format!("{at}.{inner}")
        };
        (field, e.inner().to_string())
    })
}

fn field_check(
    at: &str,
    key: &str,
    value: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<(), FieldError> {
    check(value).map_err(|why| (format!("{at}.{key}"), format!("{value:?} {why}")))
}

fn check_target(target: &RollbackTarget, at: &str) -> Result<(), FieldError> {
    match target {
        RollbackTarget::Btrfs(b) => {
            field_check(at, "device", &b.device, names::check_absolute_path)?;
            if b.device == "/" {
                return Err((
                    format!("{at}.device"),
                    "\"/\" is not a device; expected a path such as \"/dev/disk/by-label/nixos\""
                        .to_owned(),
                ));
            }
            for (i, opt) in b.mount_options.iter().enumerate() {
                field_check(
                    at,
                    &format!("mountOptions[{i}]"),
                    opt,
                    names::check_btrfs_mount_option,
                )?;
            }
            field_check(at, "subvolume", &b.subvolume, names::check_root_subvolume)?;
            if let Some(blank) = &b.blank {
                field_check(at, "blank", blank, names::check_subvolume)?;
            }
            if let Some(old) = &b.old_roots {
                field_check(at, "oldRoots", old, names::check_subvolume)?;
            }
            let named = [
                ("subvolume", Some(&b.subvolume)),
                ("blank", b.blank.as_ref()),
                ("oldRoots", b.old_roots.as_ref()),
            ];
            for (ka, a) in named {
                for (kb, b) in named {
                    if let (Some(a), Some(b)) = (a, b) {
                        if ka != kb && names::is_within(a, b) {
                            return Err((
                                format!("{at}.{ka}"),
                                format!(
                                    "{a:?} is {} `{kb}` ({b:?}); expected separate subvolumes",
                                    if a == b { "the same as" } else { "inside" }
                                ),
                            ));
                        }
                    }
                }
            }
            if b.wait_seconds > 3600 {
                return Err((
                    format!("{at}.waitSeconds"),
                    format!(
                        "{} is more than an hour; expected at most 3600",
                        b.wait_seconds
                    ),
                ));
            }
        }
        RollbackTarget::Zfs(z) => {
            field_check(at, "dataset", &z.dataset, names::check_root_dataset)?;
            field_check(at, "snapshot", &z.snapshot, names::check_snapshot)?;
            if let Some(old) = &z.old_roots {
                field_check(at, "oldRoots", old, names::check_zfs_old_roots)?;
                if old.split('/').next() != Some(z.pool()) {
                    return Err((
                        format!("{at}.oldRoots"),
                        format!(
                            "{old:?} is not in the pool {:?}; expected a dataset in the same pool, such as \"{}/local/old_roots\"",
                            z.pool(),
                            z.pool()
                        ),
                    ));
                }
                if names::is_within(old, &z.dataset) || names::is_within(&z.dataset, old) {
                    return Err((
                        format!("{at}.oldRoots"),
                        format!(
                            "{old:?} and the dataset {:?} contain one another; expected separate datasets",
                            z.dataset
                        ),
                    ));
                }
            }
            field_check(at, "zfsCommand", &z.zfs_command, names::check_zfs_command)?;
        }
    }
    let keep = match target {
        RollbackTarget::Btrfs(b) => b.keep,
        RollbackTarget::Zfs(z) => z.keep,
    };
    if let (Some(max), min) = (keep.max, keep.min) {
        if max < min {
            return Err((
                format!("{at}.keep.max"),
                format!(
                    "{max} is below keep.min ({min}); min wins, so set max to at least {min} or to null"
                ),
            ));
        }
    }
    Ok(())
}

/// The names a target owns on its filesystem, with their field names: the
/// root, the blank and the old roots (Btrfs subvolumes, ZFS datasets).
fn owned_names(t: &RollbackTarget) -> Vec<(&'static str, &str)> {
    match t {
        RollbackTarget::Btrfs(b) => [
            Some(("subvolume", b.subvolume.as_str())),
            b.blank.as_deref().map(|n| ("blank", n)),
            b.old_roots.as_deref().map(|n| ("oldRoots", n)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        RollbackTarget::Zfs(z) => [
            Some(("dataset", z.dataset.as_str())),
            z.old_roots.as_deref().map(|n| ("oldRoots", n)),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// Where a target's names live: the Btrfs device, or the ZFS namespace
/// (dataset names carry their pool).
fn namespace(t: &RollbackTarget) -> Option<&str> {
    match t {
        RollbackTarget::Btrfs(b) => Some(&b.device),
        RollbackTarget::Zfs(_) => None,
    }
}

/// Two targets must not roll back, archive into or prune the same thing, as
/// far as the strings show: on one Btrfs device (or among ZFS datasets) no
/// name of one target (root, blank, old roots) may be or lie inside a name of
/// another. Two targets may share one `blank` (it is only read). What only
/// the filesystem shows (one filesystem under two device names) is checked
/// at boot.
fn check_distinct_targets(targets: &[RollbackTarget]) -> Result<(), FieldError> {
    for (i, a) in targets.iter().enumerate() {
        for (j, b) in targets.iter().enumerate().skip(i + 1) {
            let same_kind = matches!(
                (a, b),
                (RollbackTarget::Btrfs(_), RollbackTarget::Btrfs(_))
                    | (RollbackTarget::Zfs(_), RollbackTarget::Zfs(_))
            );
            if !same_kind || namespace(a) != namespace(b) {
                continue;
            }
            let (root_a, root_b) = (owned_names(a)[0], owned_names(b)[0]);
            if root_a.1 == root_b.1 {
                return Err((
                    format!("rollback[{j}]"),
                    format!("rolls back the same root as rollback[{i}]; expected each root once"),
                ));
            }
            for (ka, na) in owned_names(a) {
                for (kb, nb) in owned_names(b) {
                    if ka == "blank" && kb == "blank" {
                        continue;
                    }
                    // How b's name stands to a's.
                    let how = if na == nb {
                        "is the same as"
                    } else if names::is_within(nb, na) {
                        "is inside"
                    } else if names::is_within(na, nb) {
                        "contains"
                    } else {
                        continue;
                    };
                    let place = match namespace(a) {
                        Some(device) => format!(" on the same device {device:?}"),
                        None => String::new(),
                    };
                    return Err((
                        format!("rollback[{j}].{kb}"),
                        format!(
                            "{nb:?} {how} rollback[{i}].{ka} ({na:?}){place}; one target would rotate or prune what the other keeps: expected separate names for each target"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
