//! One storage's entries (system and users'), each checked on its own with
//! its defaults applied.

use std::rc::Rc;

use super::Candidate;
use super::checked::{Group, Home, Kind, Parent, Persisted};
use super::paths::{check_mounted_length, check_path, check_storage, unit_value_problem};
use super::problem::{Problem, STORAGE_SKIPPED, USER_SKIPPED, problem, scoped};
use crate::names::{self, check_mount_option, check_relative_path, is_within, join};
use crate::{Entry, EntryObject, Id, Method, Persist};

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
        digits[i] = b"0123456789"[n % 10];
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

pub(super) fn collect_persist(
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
    ctx.entries(
        &at,
        [&persist.directories, &persist.files],
        None,
        out,
        problems,
    );
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
        ctx.entries(
            &uat,
            [&user.directories, &user.files],
            Some((&user_id, &home)),
            out,
            problems,
        );
    }
}

struct Ctx<'a> {
    storage: &'a str,
    options: Rc<[String]>,
}

impl Ctx<'_> {
    /// Checks the directories and then the files of the storage itself
    /// (`user` is `None`) or of one user, in order, each labelled
    /// `{at}.directories[j]` or `{at}.files[j]`.
    fn entries(
        &self,
        at: &str,
        [directories, files]: [&[Entry]; 2],
        user: Option<(&Id, &str)>,
        out: &mut Vec<Candidate>,
        problems: &mut Vec<Problem>,
    ) {
        for (kind, key, list) in [
            (Kind::Directory, "directories", directories),
            (Kind::File, "files", files),
        ] {
            let prefix = format!("{at}.{key}[");
            for (j, entry) in list.iter().enumerate() {
                let label = indexed_label(&prefix, j);
                match self.entry(kind, &label, entry, user) {
                    Ok(e) => out.push(Candidate(Box::new(e))),
                    Err(p) => problems.push(p),
                }
            }
        }
    }

    /// The entry's absolute path (a user's relative to the home) and its
    /// persisted copy below the storage, each checked for where it must
    /// fit: a unit file, and the initrd's `/sysroot` if it is mounted there.
    fn path_and_source(
        &self,
        label: &str,
        e: &EntryObject,
        user: Option<(&Id, &str)>,
    ) -> Result<(String, String), Problem> {
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
        Ok((path, source))
    }

    /// The file method rule: `symlink` and `auto` are for files; `/etc/machine-id`
    /// is never a symlink (`auto` there is `bind`); a symlink needs no
    /// initrd mount.
    fn method(kind: Kind, label: &str, path: &str, e: &EntryObject) -> Result<Method, Problem> {
        let mut method = e.method.unwrap_or_default();
        if method != Method::Bind && kind == Kind::Directory {
            let name = if method == Method::Auto {
                "auto"
            } else {
                "symlink"
            };
            return Err(problem(
                label,
                path,
                format!(
                    "is a directory, and \"method\": \"{name}\" is for files; remove it (a directory is bind-mounted)"
                ),
            ));
        }
        // The id is always there for PID 1 to read (created "uninitialized"):
        // systemd 258 and later never create it through a symlink.
        if method == Method::Auto && path == "/etc/machine-id" {
            method = Method::Bind;
        }
        if method == Method::Symlink {
            if path == "/etc/machine-id" {
                return Err(problem(
                    label,
                    path,
                    "cannot be a symlink: systemd does not write a first boot's id through a symlink; remove \"method\" (it is bind-mounted)",
                ));
            }
            if e.in_initrd {
                return Err(problem(
                    label,
                    path,
                    "has both \"method\": \"symlink\" and inInitrd; a symlink needs no mount, drop inInitrd",
                ));
            }
        }
        Ok(method)
    }

    fn entry(
        &self,
        kind: Kind,
        label: &str,
        entry: &Entry,
        user: Option<(&Id, &str)>,
    ) -> Result<Persisted, Problem> {
        let e = &entry.0;
        let (path, source) = self.path_and_source(label, e, user)?;
        let method = Self::method(kind, label, &path, e)?;
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
        // A created parent takes the entry's default owner (root's, or in a
        // home the user's) and mode 0755 (docs/generator.md).
        let parent = e.parent_directory.as_ref().map(|p| Parent {
            user: p.user.clone().unwrap_or_else(|| default_user.clone()),
            group: p
                .group
                .clone()
                .map_or_else(|| default_group.clone(), Group::Id),
            mode: p.mode.map_or(0o755, |m| m.0),
        });
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
            parent,
            home: user.map(|(u, home)| Home {
                user: u.clone(),
                path: home.to_owned(),
            }),
            options,
            backing,
        })
    }
}
