//! From a parsed configuration to the list of mounts to make, with every
//! entry checked on its own and against the others.
//!
//! An entry that is wrong on its own or clashes with another is rejected
//! with a [`Problem`] that names it and says why; every other entry is kept
//! (see `docs/generator.md`, "Bad input", for why partial output is the
//! lesser harm).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use tabula_config::names::{check_absolute_path, check_relative_path, is_within};
use tabula_config::{Config, Entry, Id, Overlay, Persist};

use crate::escape::{path_unit_name, unit_value_problem};

/// Where the initrd mounts the real root.
pub const SYSROOT: &str = "/sysroot";

/// The persisted copy of this file is created holding `uninitialized`, so
/// that systemd treats the first boot as a first boot and
/// `systemd-machine-id-commit.service` writes the new id through the bind
/// mount into persistent storage.
pub const MACHINE_ID: &str = "/etc/machine-id";

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
    /// The home directory as mounted (under `/sysroot` in the initrd).
    pub path: String,
}

/// One bind mount of a persisted directory or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub kind: Kind,
    /// How messages name the entry: `persist[0].users.alice.files[1]`.
    pub label: String,
    /// The mount point (`Where=`), under `/sysroot` in the initrd.
    pub target: String,
    /// The persisted copy (`What=`), storage + path.
    pub source: String,
    /// The storage, as mounted here.
    pub storage: String,
    /// The path as the user wrote it made absolute, without `/sysroot`.
    pub path: String,
    pub user: Id,
    pub group: Group,
    pub mode: u32,
    pub in_initrd: bool,
    pub home: Option<Home>,
    /// Mount options after `bind` (shared by every entry of a storage).
    pub options: Rc<[String]>,
    /// The mount unit's name.
    pub unit: String,
}

impl Bind {
    /// Whether the persisted copy must start as `uninitialized`.
    pub fn is_machine_id(&self) -> bool {
        self.kind == Kind::File && self.path == MACHINE_ID
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    pub label: String,
    pub config: Overlay,
    pub unit: String,
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

const ENTRY_SKIPPED: &str = "this entry is skipped, the others are still mounted";
const STORAGE_SKIPPED: &str = "none of this storage's entries is mounted, the other storages are";
const USER_SKIPPED: &str = "none of this user's entries is mounted, the others are";
const OVERLAY_SKIPPED: &str = "this overlay is skipped, the others are still mounted";

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}): {}; {}",
            self.label, self.value, self.message, self.skipped
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by target.
    pub binds: Vec<Bind>,
    /// Sorted by mount point.
    pub overlays: Vec<OverlayMount>,
    pub problems: Vec<Problem>,
}

/// Where the generator runs: in the initrd only `inInitrd` entries are
/// mounted, under [`SYSROOT`]; overlays belong to the booted system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Initrd,
    System,
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

/// Checks a path that ends up in a unit file or a mount call.
fn check_path(s: &str) -> Result<(), String> {
    check_absolute_path(s)?;
    if let Some(why) = unit_value_problem(s) {
        return Err(why.to_owned());
    }
    Ok(())
}

fn check_option(opt: &str) -> Result<(), String> {
    if opt.is_empty() || opt.contains(',') || opt.chars().any(char::is_whitespace) {
        return Err(format!(
            "mount option {opt:?} is not a single option; expected one option per list item, without commas or spaces, such as \"noatime\""
        ));
    }
    if opt.chars().any(char::is_control) || opt.contains('\\') || opt.contains('"') {
        return Err(format!(
            "mount option {opt:?} contains a control character, a backslash or a quote"
        ));
    }
    Ok(())
}

fn check_unit_name(name: &str) -> Result<(), String> {
    let valid = name.len() < 256
        && name.contains('.')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a unit name; expected a name such as \"nix-daemon.service\""
        ))
    }
}

fn join(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    let mut out = String::with_capacity(base.len() + 1 + rel.len());
    out.push_str(base);
    out.push('/');
    out.push_str(rel);
    out
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

fn prefixed(stage: Stage, path: &str) -> String {
    match stage {
        Stage::Initrd => join(SYSROOT, path.trim_start_matches('/')),
        Stage::System => path.to_owned(),
    }
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

/// Boxed: sorting moves candidates around, and a `Bind` is large.
struct Candidate {
    bind: Box<Bind>,
}

/// Builds the plan for `stage`.
pub fn plan(config: &Config, stage: Stage) -> Plan {
    let mut problems = Vec::new();
    let mut candidates = Vec::new();
    for (i, persist) in config.persist.iter().enumerate() {
        collect_persist(persist, i, stage, &mut candidates, &mut problems);
    }
    // Stable sort: an ancestor sorts before its descendants, and among equal
    // paths the first listed wins.
    candidates.sort_by(|a, b| a.bind.path.cmp(&b.bind.path));
    let mut binds: Vec<Bind> = Vec::new();
    let mut storages: Vec<String> = config.persist.iter().map(|p| p.storage.clone()).collect();
    storages.dedup();
    // Accepted paths → index in `binds`; a candidate's ancestors (and
    // itself) are looked up here, O(depth) instead of O(entries).
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for Candidate { bind } in candidates {
        let clash = ancestors_and_self(&bind.path)
            .find_map(|p| accepted.get(p))
            .map(|&i| &binds[i]);
        if let Some(prev) = clash {
            let message = if prev.path == bind.path {
                if prev.kind == bind.kind {
                    format!("is listed twice; the first, {}, is kept", prev.label)
                } else {
                    format!(
                        "is listed as a {} and, in {}, as a {}; a path is one or the other",
                        bind.kind.noun(),
                        prev.label,
                        prev.kind.noun()
                    )
                }
            } else {
                format!(
                    "is inside {:?}, persisted by {}; a persisted path inside another would be hidden or hide it, persist only one of them",
                    prev.path, prev.label
                )
            };
            problems.push(problem(&bind.label, &bind.path, message));
            continue;
        }
        if let Some(storage) = storages.iter().find(|s| is_within(&bind.path, s)) {
            problems.push(problem(
                &bind.label,
                &bind.path,
                format!(
                    "is inside the storage {storage:?} of another entry; it is persistent already"
                ),
            ));
            continue;
        }
        if let Some(storage) = storages.iter().find(|s| is_within(s, &bind.path)) {
            problems.push(problem(
                &bind.label,
                &bind.path,
                format!(
                    "contains the storage {storage:?}; mounting over it would hide persisted data"
                ),
            ));
            continue;
        }
        accepted.insert(bind.path.clone(), binds.len());
        binds.push(*bind);
    }
    if stage == Stage::Initrd {
        binds.retain(|b| b.in_initrd);
    }
    let overlays = match stage {
        Stage::Initrd => Vec::new(),
        Stage::System => collect_overlays(config, &binds, &mut problems),
    };
    Plan {
        binds,
        overlays,
        problems,
    }
}

fn collect_persist(
    persist: &Persist,
    i: usize,
    stage: Stage,
    out: &mut Vec<Candidate>,
    problems: &mut Vec<Problem>,
) {
    let at = format!("persist[{i}]");
    let storage = &persist.storage;
    if let Err(why) = check_path(storage) {
        problems.push(scoped(
            &format!("{at}.storage"),
            storage,
            why,
            STORAGE_SKIPPED,
        ));
        return;
    }
    if storage == "/" {
        problems.push(scoped(
            &format!("{at}.storage"),
            storage,
            "is the root itself; expected the mount point of persistent storage, such as \"/persist\"",
            STORAGE_SKIPPED,
        ));
        return;
    }
    let mut options = Vec::new();
    if persist.hide_mounts {
        options.push("x-gvfs-hide".to_owned());
    }
    for (j, opt) in persist.mount_options.iter().enumerate() {
        if let Err(why) = check_option(opt) {
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
        stage,
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
                Ok(bind) => out.push(Candidate {
                    bind: Box::new(bind),
                }),
                Err(p) => problems.push(p),
            }
        }
    }
    for (name, user) in &persist.users {
        let uat = format!("{at}.users.{name}");
        let user_id = Id::Name(name.clone());
        if name.is_empty()
            || name.starts_with('-')
            || name
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, ':' | '/' | ','))
        {
            problems.push(scoped(
                &uat,
                name,
                "is not a valid user name; expected a name without `:`, `/`, `,`, spaces or control characters",
                USER_SKIPPED,
            ));
            continue;
        }
        let home = user.home.clone().unwrap_or_else(|| format!("/home/{name}"));
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
                    Ok(bind) => out.push(Candidate {
                        bind: Box::new(bind),
                    }),
                    Err(p) => problems.push(p),
                }
            }
        }
    }
}

struct Ctx<'a> {
    storage: &'a str,
    stage: Stage,
    options: Rc<[String]>,
}

impl Ctx<'_> {
    fn entry(
        &self,
        kind: Kind,
        label: &str,
        entry: &Entry,
        user: Option<(&Id, &str)>,
    ) -> Result<Bind, Problem> {
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
        let source = join(self.storage, path.trim_start_matches('/'));
        if let Some(why) = unit_value_problem(&source) {
            return Err(problem(label, &source, why));
        }
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
        if mode > 0o7777 {
            return Err(problem(
                label,
                &path,
                format!("mode {mode:o} is out of range"),
            ));
        }
        let target = prefixed(self.stage, &path);
        Ok(Bind {
            kind,
            label: label.to_owned(),
            unit: path_unit_name(&target, "mount"),
            source: prefixed(self.stage, &source),
            storage: prefixed(self.stage, self.storage),
            target,
            path,
            user: e.user.clone().unwrap_or(default_user),
            group: e.group.clone().map_or(default_group, Group::Id),
            mode,
            in_initrd: e.in_initrd,
            home: user.map(|(u, home)| Home {
                user: u.clone(),
                path: prefixed(self.stage, home),
            }),
            options: Rc::clone(&self.options),
        })
    }
}

fn collect_overlays(
    config: &Config,
    binds: &[Bind],
    problems: &mut Vec<Problem>,
) -> Vec<OverlayMount> {
    let mut out: Vec<OverlayMount> = Vec::new();
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
            if let Err(why) = check_option(opt) {
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
                fail(problems, &format!(".before[{j}]"), unit, why);
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
        if let Some(b) = binds
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
        out.push(OverlayMount {
            label: at,
            unit: path_unit_name(&o.where_, "mount"),
            config: o.clone(),
        });
    }
    out.sort_by(|a, b| a.config.where_.cmp(&b.config.where_));
    out
}
