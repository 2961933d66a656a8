//! The persisted entries and overlays of a configuration, each checked on its
//! own and against the others.
//!
//! An entry that is wrong on its own or clashes with another is rejected with
//! a [`Problem`] that names it and says why; every other entry is kept (see
//! `docs/generator.md`, "Bad input", for why partial output is the lesser
//! harm). [`check_entries`] is the one place these rules live: the generator
//! plans mounts from what it returns, and `--check-config` reports its
//! problems.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::names::{
    self, check_absolute_path, check_mount_option, check_relative_path, check_unit_name, is_within,
    join,
};
use crate::{Config, Entry, Id, Method, Overlay, Ownership, Persist};

/// Where the initrd mounts the real root: entries mounted in the initrd
/// (`inInitrd`) live below it there, and their paths must fit with it.
pub const SYSROOT: &str = "/sysroot";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Directory,
    File,
}

impl Kind {
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

const ENTRY_SKIPPED: &str = "this entry is skipped, the others are still mounted";
const STORAGE_SKIPPED: &str = "none of this storage's entries is mounted, the other storages are";
const USER_SKIPPED: &str = "none of this user's entries is mounted, the others are";
const OVERLAY_SKIPPED: &str = "this overlay is skipped, the others are still mounted";

/// What [`check_entries`] found.
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

fn problem(label: &str, value: &str, message: impl Into<String>) -> Problem {
    scoped(label, value, message, ENTRY_SKIPPED)
}

fn scoped(label: &str, value: &str, message: impl Into<String>, skipped: &'static str) -> Problem {
    Problem {
        label: label.to_owned(),
        value: value.to_owned(),
        message: message.into(),
        skipped,
    }
}

/// A control character, surrounding whitespace or a trailing backslash: a
/// value that a unit file line would not carry as written.
pub fn unit_value_problem(s: &str) -> Option<&'static str> {
    if s.chars().any(char::is_control) {
        Some("contains a control character, which would end the line in a unit file")
    } else if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        Some("starts or ends with whitespace, which systemd strips from unit-file values")
    } else if s.ends_with('\\') {
        Some("ends with a backslash, which continues a line in a unit file")
    } else {
        None
    }
}

/// A path that ends up in a unit file or a mount call: an absolute path
/// ([`names::check_absolute_path`]) that a unit file carries as written.
pub fn check_path(s: &str) -> Result<(), String> {
    check_absolute_path(s)?;
    if let Some(why) = unit_value_problem(s) {
        return Err(why.to_owned());
    }
    Ok(())
}

/// A storage's mount point: a [`check_path`] path other than `/`.
fn check_storage(s: &str) -> Result<(), String> {
    check_path(s)?;
    if s == "/" {
        return Err("is the root itself; expected the mount point of persistent storage, such as \"/persist\"".to_owned());
    }
    Ok(())
}

/// A path mounted in the initrd lives under [`SYSROOT`] there: it must fit
/// below the path length limit with that prefix.
fn check_mounted_length(path: &str, in_initrd: bool) -> Result<(), String> {
    if in_initrd {
        names::check_path_length(&join(SYSROOT, path))
            .map_err(|why| format!("{why} (counting the {SYSROOT} prefix it has in the initrd)"))
    } else {
        names::check_path_length(path)
    }
}

/// `prefix` followed by `index` and `]`: labels are built for every entry,
/// so without the formatting machinery.
fn indexed_label(prefix: &str, index: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + 8);
    out.push_str(prefix);
    let mut digits = [0u8; 20];
    let mut n = index;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
    out.push(']');
    out
}

/// `/a/b/c`, `/a/b`, `/a` (the root is never a persisted path).
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            Some(0) | None => None,
            Some(i) => Some(&current[..i]),
        };
        Some(current)
    })
}

/// Boxed: sorting moves candidates around, and an entry is large.
struct Candidate(Box<Persisted>);

/// Checks every persisted entry and overlay of `config`.
pub fn check_entries(config: &Config) -> Entries {
    let mut problems = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, persist) in config.persist.iter().enumerate() {
        collect_persist(persist, i, &mut candidates, &mut problems);
    }
    // Stable sort: an ancestor sorts before its descendants, and among equal
    // paths the first listed wins.
    candidates.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let mut persisted: Vec<Persisted> = Vec::new();
    // The storages that are used: a rejected storage path (`/`, a relative
    // path) must not make every other entry look "inside a storage".
    let mut storages: Vec<&str> = config
        .persist
        .iter()
        .map(|p| p.storage.as_str())
        .filter(|s| check_storage(s).is_ok())
        .collect();
    storages.dedup();
    // Accepted paths → index in `persisted`; a candidate's ancestors (and
    // itself) are looked up here, O(depth) instead of O(entries).
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let mut sources = crate::sources::Sources::new(config);
    for Candidate(mut entry) in candidates {
        if let Some(prev) = accepted.get(&entry.path).map(|&i| &persisted[i]) {
            let message = if prev.kind == entry.kind {
                format!("is listed twice; the first, {}, is kept", prev.label)
            } else {
                format!(
                    "is listed as a {} and, in {}, as a {}; a path is one or the other",
                    entry.kind.noun(),
                    prev.label,
                    prev.kind.noun()
                )
            };
            problems.push(problem(&entry.label, &entry.path, message));
            continue;
        }
        // Nested entries are fine (`.config` and `.config/fcitx5`, or
        // `/var/lib` in one storage and `/var/lib/nixos` in another): the
        // outer is mounted first, the inner on top of it. Two nestings
        // cannot work: a path inside a persisted file, and an entry mounted
        // in the initrd inside one mounted later, which would hide it.
        let outer = ancestors_and_self(&entry.path)
            .skip(1)
            .find_map(|p| accepted.get(p))
            .map(|&i| &persisted[i]);
        if let Some(outer) = outer {
            let why = if outer.kind == Kind::File {
                Some(format!(
                    "is inside {:?}, persisted by {} as a file; a file has no paths inside it",
                    outer.path, outer.label
                ))
            } else if entry.in_initrd && !outer.in_initrd {
                Some(format!(
                    "has inInitrd but is inside {:?}, persisted by {} without it: that mount comes later, in stage 2, and would hide this one; give both inInitrd or neither",
                    outer.path, outer.label
                ))
            } else {
                None
            };
            if let Some(message) = why {
                problems.push(problem(&entry.label, &entry.path, message));
                continue;
            }
            entry.outer_storage = Some(outer.storage.clone());
        }
        if let Some(storage) = storages.iter().find(|s| is_within(&entry.path, s)) {
            problems.push(problem(
                &entry.label,
                &entry.path,
                format!(
                    "is inside the storage {storage:?} of another entry; it is persistent already"
                ),
            ));
            continue;
        }
        if let Some(storage) = storages.iter().find(|s| is_within(s, &entry.path)) {
            problems.push(problem(
                &entry.label,
                &entry.path,
                format!(
                    "contains the storage {storage:?}; mounting over it would hide persisted data"
                ),
            ));
            continue;
        }
        if let Err((value, message)) = sources.admit(&entry.label, entry.backing.as_ref()) {
            problems.push(problem(&entry.label, &value, message));
            continue;
        }
        accepted.insert(entry.path.clone(), persisted.len());
        persisted.push(*entry);
    }
    let mut overlay_problems = Vec::new();
    let overlays = collect_overlays(config, &persisted, &mut overlay_problems);
    Entries {
        persisted,
        problems,
        overlays,
        overlay_problems,
    }
}

fn collect_persist(
    persist: &Persist,
    i: usize,
    out: &mut Vec<Candidate>,
    problems: &mut Vec<Problem>,
) {
    let at = format!("persist[{i}]");
    let storage = &persist.storage;
    if let Err(why) = check_storage(storage) {
        problems.push(scoped(
            &format!("{at}.storage"),
            storage,
            why,
            STORAGE_SKIPPED,
        ));
        return;
    }
    let mut options = Vec::new();
    if persist.hide_mounts {
        options.push("x-gvfs-hide".to_owned());
    }
    for (j, opt) in persist.mount_options.iter().enumerate() {
        if let Err(why) = check_mount_option(opt) {
            problems.push(scoped(
                &format!("{at}.mountOptions[{j}]"),
                opt,
                why,
                STORAGE_SKIPPED,
            ));
            return;
        }
        options.push(opt.clone());
    }
    let ctx = Ctx {
        storage,
        options: Rc::from(options),
    };
    for (kind, key, list) in [
        (Kind::Directory, "directories", &persist.directories),
        (Kind::File, "files", &persist.files),
    ] {
        let prefix = format!("{at}.{key}[");
        for (j, entry) in list.iter().enumerate() {
            let label = indexed_label(&prefix, j);
            match ctx.entry(kind, &label, entry, None) {
                Ok(e) => out.push(Candidate(Box::new(e))),
                Err(p) => problems.push(p),
            }
        }
    }
    for (name, user) in &persist.users {
        let uat = format!("{at}.users.{name}");
        let user_id = Id::Name(name.clone());
        if let Err(why) = names::check_user_name(name) {
            problems.push(scoped(&uat, name, why, USER_SKIPPED));
            continue;
        }
        let home = user.home.clone().unwrap_or_else(|| join("/home", name));
        if let Err(why) = check_path(&home) {
            problems.push(scoped(&format!("{uat}.home"), &home, why, USER_SKIPPED));
            continue;
        }
        if home == "/" {
            problems.push(scoped(
                &format!("{uat}.home"),
                &home,
                "is the root; expected a home directory such as \"/home/alice\"",
                USER_SKIPPED,
            ));
            continue;
        }
        for (kind, key, list) in [
            (Kind::Directory, "directories", &user.directories),
            (Kind::File, "files", &user.files),
        ] {
            let prefix = format!("{uat}.{key}[");
            for (j, entry) in list.iter().enumerate() {
                let label = indexed_label(&prefix, j);
                match ctx.entry(kind, &label, entry, Some((&user_id, &home))) {
                    Ok(e) => out.push(Candidate(Box::new(e))),
                    Err(p) => problems.push(p),
                }
            }
        }
    }
}

struct Ctx<'a> {
    storage: &'a str,
    options: Rc<[String]>,
}

impl Ctx<'_> {
    fn entry(
        &self,
        kind: Kind,
        label: &str,
        entry: &Entry,
        user: Option<(&Id, &str)>,
    ) -> Result<Persisted, Problem> {
        let e = &entry.0;
        let path = match user {
            None => {
                check_path(&e.path).map_err(|why| problem(label, &e.path, why))?;
                if e.path == "/" {
                    return Err(problem(
                        label,
                        &e.path,
                        "is the root itself; persist the directories under it instead",
                    ));
                }
                e.path.clone()
            }
            Some((_, home)) => {
                check_relative_path(&e.path).map_err(|why| problem(label, &e.path, why))?;
                let full = join(home, &e.path);
                check_path(&full).map_err(|why| problem(label, &e.path, why))?;
                full
            }
        };
        if is_within(&path, self.storage) {
            return Err(problem(
                label,
                &path,
                format!(
                    "is inside the storage {:?} itself; expected a path on the erased root, whose copy is kept under the storage",
                    self.storage
                ),
            ));
        }
        let source = join(self.storage, &path);
        if let Some(why) = unit_value_problem(&source) {
            return Err(problem(label, &source, why));
        }
        check_mounted_length(&path, e.in_initrd).map_err(|why| problem(label, &path, why))?;
        check_mounted_length(&source, e.in_initrd).map_err(|why| {
            problem(
                label,
                &source,
                format!("is where its persisted copy would be, and {why}"),
            )
        })?;
        let method = e.method.unwrap_or_default();
        if method == Method::Symlink {
            if kind == Kind::Directory {
                return Err(problem(
                    label,
                    &path,
                    "is a directory, and \"method\": \"symlink\" is for files; remove it (a directory is bind-mounted)",
                ));
            }
            if path == "/etc/machine-id" {
                return Err(problem(
                    label,
                    &path,
                    "cannot be a symlink: systemd does not write a first boot's id through a symlink; remove \"method\" (it is bind-mounted)",
                ));
            }
            if e.in_initrd {
                return Err(problem(
                    label,
                    &path,
                    "has both \"method\": \"symlink\" and inInitrd; a symlink needs no mount, drop inInitrd",
                ));
            }
        }
        for (j, opt) in e.mount_options.iter().enumerate() {
            check_mount_option(opt)
                .map_err(|why| problem(&format!("{label}.mountOptions[{j}]"), opt, why))?;
        }
        let backing = crate::sources::check_keys(
            kind,
            self.storage,
            &path,
            e.in_initrd,
            e.zfs.as_ref(),
            e.btrfs.as_ref(),
        )
        .map_err(|(field, value, why)| problem(&format!("{label}{field}"), &value, why))?;
        let options = if e.mount_options.is_empty() {
            Rc::clone(&self.options)
        } else {
            let mut all = self.options.to_vec();
            for opt in &e.mount_options {
                if !all.contains(opt) {
                    all.push(opt.clone());
                }
            }
            Rc::from(all)
        };
        let (default_user, default_group) = match user {
            None => (
                Id::Name("root".to_owned()),
                Group::Id(Id::Name("root".to_owned())),
            ),
            Some((u, _)) => (u.clone(), Group::PrimaryOf(u.clone())),
        };
        let mode = e.mode.map_or(
            match kind {
                Kind::Directory => 0o755,
                Kind::File => 0o644,
            },
            |m| m.0,
        );
        Ok(Persisted {
            kind,
            label: label.to_owned(),
            source,
            storage: self.storage.to_owned(),
            path,
            user: e.user.clone().unwrap_or(default_user),
            group: e.group.clone().map_or(default_group, Group::Id),
            mode,
            in_initrd: e.in_initrd,
            ownership: e.ownership.unwrap_or_default(),
            outer_storage: None,
            method,
            parent: e.parent_directory.as_ref().map(|p| Parent {
                // A created parent defaults to root's 0755, or in a home to
                // the user's (docs/generator.md).
                user: p.user.clone().unwrap_or_else(|| match user {
                    None => Id::Name("root".to_owned()),
                    Some((u, _)) => u.clone(),
                }),
                group: p.group.clone().map_or_else(
                    || match user {
                        None => Group::Id(Id::Name("root".to_owned())),
                        Some((u, _)) => Group::PrimaryOf(u.clone()),
                    },
                    Group::Id,
                ),
                mode: p.mode.map_or(0o755, |m| m.0),
            }),
            home: user.map(|(u, home)| Home {
                user: u.clone(),
                path: home.to_owned(),
            }),
            options,
            backing,
        })
    }
}

fn collect_overlays(
    config: &Config,
    persisted: &[Persisted],
    problems: &mut Vec<Problem>,
) -> Vec<CheckedOverlay> {
    let mut out: Vec<CheckedOverlay> = Vec::new();
    'next: for (i, o) in config.overlays.iter().enumerate() {
        let at = format!("overlays[{i}]");
        let mut paths: Vec<(String, &str)> = vec![
            (format!("{at}.where"), &o.where_),
            (format!("{at}.upper"), &o.upper),
            (format!("{at}.work"), &o.work),
        ];
        for (j, l) in o.lower.iter().enumerate() {
            paths.push((format!("{at}.lower[{j}]"), l));
        }
        if let Some(w) = &o.when_mounted {
            paths.push((format!("{at}.whenMounted"), w));
        }
        for (label, p) in &paths {
            if let Err(why) = check_path(p) {
                problems.push(scoped(label, p, why, OVERLAY_SKIPPED));
                continue 'next;
            }
        }
        let fail = |problems: &mut Vec<Problem>, key: &str, value: &str, why: String| {
            problems.push(scoped(&format!("{at}{key}"), value, why, OVERLAY_SKIPPED));
        };
        if o.lower.is_empty() {
            fail(
                problems,
                ".lower",
                "[]",
                "is empty; expected at least one lower directory".to_owned(),
            );
            continue;
        }
        if o.where_ == "/" {
            fail(
                problems,
                ".where",
                &o.where_,
                "is the root; an overlay on / belongs in the initrd".to_owned(),
            );
            continue;
        }
        if is_within(&o.upper, &o.work) || is_within(&o.work, &o.upper) {
            fail(
                problems,
                ".work",
                &o.work,
                format!(
                    "and upper {:?} contain one another; overlayfs needs two separate directories on one filesystem",
                    o.upper
                ),
            );
            continue;
        }
        if is_within(&o.upper, &o.where_) || is_within(&o.work, &o.where_) {
            fail(
                problems,
                ".upper",
                &o.upper,
                format!(
                    "or work lies inside the mount point {:?}, which the overlay hides",
                    o.where_
                ),
            );
            continue;
        }
        for (j, opt) in o.mount_options.iter().enumerate() {
            if let Err(why) = check_mount_option(opt) {
                fail(problems, &format!(".mountOptions[{j}]"), opt, why);
                continue 'next;
            }
            let name = opt.split('=').next().unwrap_or(opt);
            if matches!(name, "lowerdir" | "upperdir" | "workdir") {
                fail(
                    problems,
                    &format!(".mountOptions[{j}]"),
                    opt,
                    "sets a directory that tabula sets from lower, upper and work; remove it"
                        .to_owned(),
                );
                continue 'next;
            }
        }
        for (j, unit) in o.before.iter().enumerate() {
            if let Err(why) = check_unit_name(unit) {
                fail(
                    problems,
                    &format!(".before[{j}]"),
                    unit,
                    format!("{unit:?} {why}"),
                );
                continue 'next;
            }
        }
        if let Some(prev) = out.iter().find(|p| p.config.where_ == o.where_) {
            fail(
                problems,
                ".where",
                &o.where_,
                format!(
                    "is already the mount point of {}; the first is kept",
                    prev.label
                ),
            );
            continue;
        }
        if let Some(b) = persisted
            .iter()
            .find(|b| is_within(&o.where_, &b.path) || is_within(&b.path, &o.where_))
        {
            fail(
                problems,
                ".where",
                &o.where_,
                format!(
                    "overlaps the persisted path {:?} ({}); mount one or the other",
                    b.path, b.label
                ),
            );
            continue;
        }
        out.push(CheckedOverlay {
            label: at,
            config: o.clone(),
        });
    }
    out.sort_by(|a, b| a.config.where_.cmp(&b.config.where_));
    out
}
