//! What the checks return: the accepted entries with their defaults
//! applied, the accepted overlays, and the problems of the rest.

use std::fmt;
use std::rc::Rc;

use super::Problem;
use crate::{Id, Method, Overlay, Ownership};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Directory,
    File,
}

impl Kind {
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::File => "file",
        }
    }
}

/// The group of a user entry defaults to the user's primary group, known
/// only when the user database is read at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    Id(Id),
    PrimaryOf(Id),
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Id(id) => write!(f, "{id}"),
            Group::PrimaryOf(user) => write!(f, "the primary group of {user}"),
        }
    }
}

/// A user's home, for the owners of created parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub user: Id,
    /// The home directory as configured (absolute, on the running system).
    pub path: String,
}

/// One persisted directory or file, checked, with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    pub kind: Kind,
    /// How messages name the entry: `persist[0].users.alice.files[1]`.
    pub label: String,
    /// The path as the user wrote it made absolute.
    pub path: String,
    /// The persisted copy: storage + path.
    pub source: String,
    /// The storage's mount point.
    pub storage: String,
    pub user: Id,
    pub group: Group,
    pub mode: u32,
    pub in_initrd: bool,
    /// Whether `user`, `group` and `mode` apply to existing data too.
    pub ownership: Ownership,
    /// When the entry is inside another persisted entry: that entry's
    /// storage. Once the outer entry is mounted, this entry's mount point
    /// is there, at outer storage + path.
    pub outer_storage: Option<String>,
    /// Owner and mode of the entry's parent directory, on both sides, when
    /// the prepare step creates it (not when it is the home).
    pub parent: Option<Parent>,
    /// A bind mount, or (files only) a symbolic link.
    pub method: Method,
    pub home: Option<Home>,
    /// Mount options after `bind`: the storage's, then the entry's own
    /// (shared by every entry of a storage that has none of its own).
    pub options: Rc<[String]>,
    /// The source's own dataset or subvolume, if the entry asks for one.
    pub backing: Option<crate::sources::Backing>,
}

/// The owner and mode of a created parent directory, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub user: Id,
    pub group: Group,
    pub mode: u32,
}

/// An overlay whose fields passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOverlay {
    pub label: String,
    pub config: Overlay,
}

/// What [`check_entries`](super::check_entries) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// The accepted persisted entries, sorted by path: an outer entry
    /// before the entries inside it.
    pub persisted: Vec<Persisted>,
    /// Problems of the persisted entries, in the order found.
    pub problems: Vec<Problem>,
    /// The accepted overlays, sorted by mount point.
    pub overlays: Vec<CheckedOverlay>,
    /// Problems of the overlays.
    pub overlay_problems: Vec<Problem>,
}

impl Entries {
    /// Every problem: the persisted entries', then the overlays'.
    pub fn all_problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().chain(&self.overlay_problems)
    }
}
