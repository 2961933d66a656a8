//! What is persisted: storages, their users, their directory and file
//! entries as written in JSON, and the overlays.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::{Id, Mode};

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

/// One user's entries, relative to the home. Every field is optional
/// (`default` on the struct).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct User {
    /// `None` means `/home/<name>`.
    pub home: Option<String>,
    pub directories: Vec<Entry>,
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
    /// Directories only: the source is its own ZFS dataset
    /// ([`crate::sources`]).
    #[serde(default)]
    pub zfs: Option<crate::sources::ZfsKey>,
    /// Directories only: the source is its own Btrfs subvolume.
    #[serde(default)]
    pub btrfs: Option<crate::sources::BtrfsKey>,
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
    /// impermanence's `auto`, decided by the prepare step at each boot: a
    /// bind mount when the persisted copy exists, else a symbolic link to
    /// where it will be (not created), so that the first write lands in
    /// storage and a program that creates a missing file sees none.
    Auto,
}

impl Method {
    /// How a file entry with this method is put in place when its
    /// persisted copy does (`true`) or does not exist: never [`Method::Auto`].
    #[must_use]
    pub fn placed(self, copy_exists: bool) -> Method {
        match self {
            Method::Auto if copy_exists => Method::Bind,
            Method::Auto => Method::Symlink,
            m => m,
        }
    }
}

/// The owner and mode a missing parent directory of an entry is created
/// with; unset fields take the defaults of created parents. Every field is
/// optional (`default` on the struct).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParentDirectory {
    pub user: Option<Id>,
    pub group: Option<Id>,
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
