//! The prepare step: before the bind mounts, create every missing source,
//! target and parent with its owner and mode. An existing source keeps its
//! owner and mode unless its entry says `"ownership": "enforce"`; the mount
//! point gets the source's owner and mode (or, enforced, the entry's).
//!
//! It is symlink-safe: every path is walked one component at a time from a
//! directory file descriptor with `O_NOFOLLOW`, never by name from `/`, and
//! owners and modes are changed through the descriptor of the object that
//! was checked. A user who plants a symlink anywhere in their persisted tree,
//! or swaps a directory for one between our check and our change, makes
//! this entry fail; nothing outside the tree is ever opened, created, chowned
//! or chmodded. A file with more than one hard link is never chowned or
//! chmodded (a hard link to someone else's file is the other classic trick):
//! its entry fails.
//!
//! For each entry prepared, an empty file named after its mount unit is
//! created in [`crate::units::PREPARED_DIR`]; the mount unit asserts it, so
//! an entry that could not be prepared safely is never mounted.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use log::{error, info};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;
use tabula_config::Id;
use tabula_config::names::is_within;
use tabula_runtime::Exit;

use crate::error::PrepareError;
use crate::plan::{Bind, Group, Kind, Method, Ownership, Plan, Stage};
use tabula_config::names::join;

/// Content of a persisted `/etc/machine-id` created by tabula: systemd
/// treats it as "no id yet" and the first boot as a first boot.
pub const MACHINE_ID_UNINITIALIZED: &str = "uninitialized\n";

/// Everything the prepare step reads or writes besides the plan
/// ([`crate::Env::prepare_options`] for a run; tests set each path).
#[derive(Debug, Clone)]
pub struct Options {
    /// The filesystem root every absolute path is resolved under: `/`, or
    /// a temporary directory in tests.
    pub root: PathBuf,
    /// Where the per-entry markers go.
    pub prepared_dir: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
}

/// Users and groups, read from passwd and group files (static binaries have
/// no NSS; NixOS writes both files at activation).
#[derive(Debug, Default, Clone)]
pub struct UserDb {
    users: HashMap<String, (u32, u32)>,
    groups: HashMap<String, u32>,
    passwd: PathBuf,
    group: PathBuf,
}

impl UserDb {
    pub fn load(passwd: &Path, group: &Path) -> Self {
        let mut db = UserDb {
            passwd: passwd.to_owned(),
            group: group.to_owned(),
            ..UserDb::default()
        };
        for line in std::fs::read_to_string(passwd).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid), Some(gid)) = (f.first(), f.get(2), f.get(3)) {
                if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                    db.users.entry((*name).to_owned()).or_insert((uid, gid));
                }
            }
        }
        for line in std::fs::read_to_string(group).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2)) {
                if let Ok(gid) = gid.parse() {
                    db.groups.entry((*name).to_owned()).or_insert(gid);
                }
            }
        }
        db
    }

    /// uid and primary gid. A numeric uid not in the database has no known
    /// primary group; its gid is taken equal to the uid.
    fn user(&self, id: &Id) -> Result<(u32, u32), PrepareError> {
        match id {
            Id::Numeric(uid) => Ok(self
                .users
                .values()
                .find(|(u, _)| u == uid)
                .copied()
                .unwrap_or((*uid, *uid))),
            Id::Name(name) => {
                self.users
                    .get(name)
                    .copied()
                    .ok_or_else(|| PrepareError::UnknownUser {
                        name: name.clone(),
                        passwd: self.passwd.clone(),
                    })
            }
        }
    }

    pub(crate) fn uid(&self, id: &Id) -> Result<u32, PrepareError> {
        self.user(id).map(|(uid, _)| uid)
    }

    pub(crate) fn gid(&self, group: &Group) -> Result<u32, PrepareError> {
        match group {
            Group::Id(Id::Numeric(gid)) => Ok(*gid),
            Group::Id(Id::Name(name)) => {
                self.groups
                    .get(name)
                    .copied()
                    .ok_or_else(|| PrepareError::UnknownGroup {
                        name: name.clone(),
                        group: self.group.clone(),
                    })
            }
            Group::PrimaryOf(Id::Numeric(uid)) => Ok(*uid),
            Group::PrimaryOf(user) => self.user(user).map(|(_, gid)| gid),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} {:04o}", self.uid, self.gid, self.mode)
    }
}

const ROOT_DIR: Owner = Owner {
    uid: 0,
    gid: 0,
    mode: 0o755,
};

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Prepared,
    /// A symbolic link to the persisted copy was placed (or was already
    /// there): `"method": "symlink"`, or `"auto"` with the copy missing,
    /// whose mount unit's condition then skips the bind mount.
    Linked,
    AlreadyMounted,
}

/// Called with each absolute path after its component was opened and
/// before anything is changed through it; tests use it to swap things.
pub type Hook<'a> = &'a dyn Fn(&str);

struct Walker<'a> {
    hook: Option<Hook<'a>>,
}

fn errno_text(e: Errno, path: &str) -> PrepareError {
    PrepareError::os(e, path)
}

/// Like [`PrepareError::os`], but `O_DIRECTORY | O_NOFOLLOW` on a symlink gives
/// `ENOTDIR`: look at what `name` is to say it right.
fn open_error(parent: impl AsFd, name: &str, e: Errno, path: &str) -> PrepareError {
    if e == Errno::NOTDIR {
        if let Ok(st) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                return errno_text(Errno::LOOP, path);
            }
        }
    }
    errno_text(e, path)
}

fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits)
}

fn open_dir(parent: impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Sets owner and mode through `fd` where they differ, saying so when
/// `report` (an existing entry corrected, not one just created).
///
/// A file (anything but a directory) with more than one hard link is never
/// changed: its other names may be anywhere on the filesystem (a root-owned
/// key, `/etc/shadow`), and a new owner or mode would apply to them too. The
/// entry fails instead; when nothing needs changing, nothing is changed.
fn fix(fd: impl AsFd, want: Owner, path: &str, report: bool) -> Result<(), PrepareError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
    let file_type = FileType::from_raw_mode(st.st_mode);
    let owner_differs = st.st_uid != want.uid || st.st_gid != want.gid;
    let mode_differs = st.st_mode & 0o7777 != want.mode;
    if (owner_differs || mode_differs) && file_type != FileType::Directory && st.st_nlink > 1 {
        return Err(PrepareError::HardLinked {
            path: path.to_owned(),
            links: st.st_nlink,
        });
    }
    if owner_differs {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(want.uid)),
            Some(rustix::fs::Gid::from_raw(want.gid)),
        )
        .map_err(|errno| PrepareError::Chown {
            path: path.to_owned(),
            uid: want.uid,
            gid: want.gid,
            errno,
        })?;
        if report {
            info!(
                "{path}: owner {}:{} corrected to {}:{}",
                st.st_uid, st.st_gid, want.uid, want.gid
            );
        }
    }
    // chown clears set-id bits, so the mode is set (or checked) after it.
    let st2 = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
    if st2.st_mode & 0o7777 != want.mode {
        rustix::fs::fchmod(&fd, mode(want.mode)).map_err(|errno| PrepareError::Chmod {
            path: path.to_owned(),
            mode: want.mode,
            errno,
        })?;
        if report && st.st_mode & 0o7777 != want.mode {
            info!(
                "{path}: mode {:04o} corrected to {:04o}",
                st.st_mode & 0o7777,
                want.mode
            );
        }
    }
    Ok(())
}

impl Walker<'_> {
    fn hook(&self, path: &str) {
        if let Some(h) = self.hook {
            h(path);
        }
    }

    /// Opens the existing directory `path` (absolute) below `root`, without
    /// following any symlink.
    fn open_existing(&self, root: &OwnedFd, path: &str) -> Result<OwnedFd, PrepareError> {
        let mut fd = rustix::io::dup(root).map_err(|e| errno_text(e, "/"))?;
        let mut at = String::from("/");
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            at = join(&at, comp);
            fd = open_dir(&fd, comp).map_err(|e| open_error(&fd, comp, e, &at))?;
            self.hook(&at);
        }
        Ok(fd)
    }

    /// Walks from `fd` (the directory `base`) down to the parent of `path`,
    /// creating missing directories with `parent_owner(prefix)`; returns the
    /// parent's descriptor.
    fn walk_parents(
        &self,
        mut fd: OwnedFd,
        base: &str,
        path: &str,
        parent_owner: &dyn Fn(&str) -> Owner,
    ) -> Result<(OwnedFd, String), PrepareError> {
        let not_under = || PrepareError::NotUnder {
            path: path.to_owned(),
            base: base.to_owned(),
        };
        let rest = path
            .strip_prefix(base)
            .map(|r| r.trim_start_matches('/'))
            .ok_or_else(not_under)?;
        let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, parents)) = comps.split_last() else {
            return Err(not_under());
        };
        let mut at = base.to_owned();
        for comp in parents {
            at = join(&at, comp);
            fd = self.ensure_dir(&fd, comp, &at, parent_owner(&at), false)?;
        }
        Ok((fd, (*last).to_owned()))
    }

    /// Opens or creates the directory `name` in `parent`; a created one gets
    /// `want`, an existing one is corrected to `want` only if `fix_existing`.
    fn ensure_dir(
        &self,
        parent: &OwnedFd,
        name: &str,
        path: &str,
        want: Owner,
        fix_existing: bool,
    ) -> Result<OwnedFd, PrepareError> {
        match open_dir(parent, name) {
            Ok(fd) => {
                self.hook(path);
                if fix_existing {
                    fix(&fd, want, path, true)?;
                }
                Ok(fd)
            }
            Err(Errno::NOENT) => {
                // Created closed (0700, root) and opened without following:
                // if something replaces it in between, the open fails.
                match rustix::fs::mkdirat(parent, name, mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => {
                        return Err(PrepareError::Create {
                            path: path.to_owned(),
                            errno,
                        });
                    }
                }
                let fd = open_dir(parent, name).map_err(|e| open_error(parent, name, e, path))?;
                self.hook(path);
                fix(&fd, want, path, false)?;
                info!("created {path} ({want})");
                Ok(fd)
            }
            Err(e) => Err(open_error(parent, name, e, path)),
        }
    }

    /// Opens or creates the regular file `name` in `parent`; a created one
    /// gets `want`, an existing one is corrected to `want` only if
    /// `fix_existing`.
    fn ensure_file(
        &self,
        parent: &OwnedFd,
        name: &str,
        path: &str,
        want: Owner,
        content: &str,
        fix_existing: bool,
    ) -> Result<OwnedFd, PrepareError> {
        let probe = rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match probe {
            Ok(p) => {
                let st = rustix::fs::fstat(&p).map_err(|e| errno_text(e, path))?;
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::RegularFile => {}
                    FileType::Symlink => return Err(errno_text(Errno::LOOP, path)),
                    _ => {
                        return Err(PrepareError::NotARegularFile {
                            path: path.to_owned(),
                        });
                    }
                }
                // Opening a regular file has no side effect; the identity
                // check catches a swap between the probe and this open.
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno_text(e, path))?;
                let st2 = rustix::fs::fstat(&fd).map_err(|e| errno_text(e, path))?;
                if (st.st_dev, st.st_ino) != (st2.st_dev, st2.st_ino) {
                    return Err(PrepareError::Changed {
                        path: path.to_owned(),
                    });
                }
                self.hook(path);
                if fix_existing {
                    fix(&fd, want, path, true)?;
                }
                Ok(fd)
            }
            Err(Errno::NOENT) => {
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode(0o600),
                )
                .map_err(|errno| PrepareError::Create {
                    path: path.to_owned(),
                    errno,
                })?;
                if !content.is_empty() {
                    let write_error = |error| PrepareError::Write {
                        path: PathBuf::from(path),
                        error,
                    };
                    let mut f = std::fs::File::from(fd.try_clone().map_err(write_error)?);
                    f.write_all(content.as_bytes()).map_err(write_error)?;
                }
                self.hook(path);
                fix(&fd, want, path, false)?;
                info!("created {path} ({want})");
                Ok(fd)
            }
            Err(e) => Err(errno_text(e, path)),
        }
    }
}

/// Makes `name` in `parent` a symbolic link to `link`: created when
/// missing, left as it is when it already is that link; anything else there
/// fails the entry and is left alone.
fn place_symlink(parent: &OwnedFd, name: &str, path: &str, link: &str) -> Result<(), PrepareError> {
    let occupied = || PrepareError::Occupied {
        path: path.to_owned(),
        link: link.to_owned(),
    };
    match rustix::fs::readlinkat(parent, name, Vec::new()) {
        Ok(current) if current.as_bytes() == link.as_bytes() => Ok(()),
        Ok(_) => Err(occupied()),
        Err(Errno::NOENT) => {
            rustix::fs::symlinkat(link, parent, name).map_err(|errno| PrepareError::Create {
                path: path.to_owned(),
                errno,
            })?;
            info!("created {path} -> {link}");
            Ok(())
        }
        // EINVAL: there, but not a symlink.
        Err(Errno::INVAL) => Err(occupied()),
        Err(e) => Err(errno_text(e, path)),
    }
}

/// Whether `name` exists in `parent` (as anything, a symlink too).
fn exists_at(parent: &OwnedFd, name: &str, path: &str) -> Result<bool, PrepareError> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(errno_text(e, path)),
    }
}

/// How a file entry with `"method": "auto"` is put in place at this boot
/// (`tabula_config::Method::placed`): a link already there and right stays
/// a link (as impermanence leaves it); otherwise a bind mount when the
/// persisted copy exists, or when something is already at the path (it is
/// never replaced: the bind mount covers it, as with `"bind"`), and a link
/// to the copy when neither is there. A link to anything else fails the
/// entry, as with `"symlink"`.
fn auto_method(
    (sparent, sname, source): (&OwnedFd, &str, &str),
    tparent: &OwnedFd,
    tname: &str,
    mount_point: &str,
    link: &str,
) -> Result<Method, PrepareError> {
    match rustix::fs::readlinkat(tparent, tname, Vec::new()) {
        Ok(current) if current.as_bytes() == link.as_bytes() => return Ok(Method::Symlink),
        Ok(_) => {
            return Err(PrepareError::Occupied {
                path: mount_point.to_owned(),
                link: link.to_owned(),
            });
        }
        // EINVAL: something that is not a symlink; NOENT: nothing.
        Err(Errno::INVAL | Errno::NOENT) => {}
        Err(e) => return Err(errno_text(e, mount_point)),
    }
    let copy_exists = exists_at(sparent, sname, source)?;
    let target_exists = exists_at(tparent, tname, mount_point)?;
    Ok(Method::Auto.placed(copy_exists || target_exists))
}

/// The owner and mode `fd` has now.
fn owner_of(fd: impl AsFd, path: &str) -> Result<Owner, PrepareError> {
    let st = rustix::fs::fstat(fd).map_err(|e| errno_text(e, path))?;
    Ok(Owner {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
    })
}

fn mount_id(fd: impl AsFd, name: &str) -> Option<u64> {
    let flags = if name.is_empty() {
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    rustix::fs::statx(fd, name, flags, StatxFlags::MNT_ID)
        .ok()
        .filter(|st| st.stx_mask & StatxFlags::MNT_ID.bits() != 0)
        .map(|st| st.stx_mnt_id)
}

/// Prepares one entry. `root` is the descriptor of [`Options::root`].
pub fn prepare_bind(
    b: &Bind,
    db: &UserDb,
    root: &OwnedFd,
    hook: Option<Hook<'_>>,
) -> Result<Done, PrepareError> {
    let walker = Walker { hook };
    let want = Owner {
        uid: db.uid(&b.user)?,
        gid: db.gid(&b.group)?,
        mode: b.mode,
    };
    // The home's owner, for created parents inside it.
    let home_owner = match &b.home {
        Some(h) => Some(Owner {
            uid: db.uid(&h.user)?,
            gid: db.gid(&Group::PrimaryOf(h.user.clone()))?,
            mode: 0o755,
        }),
        None => None,
    };
    // `target` = stage prefix + `path`; the source side mirrors it.
    let prefix = &b.target[..b.target.len() - b.path.len()];
    let target_home = b.home.as_ref().map(|h| h.path.clone());
    let source_home = b.home.as_ref().map(|h| {
        let unprefixed = h.path.strip_prefix(prefix).unwrap_or(&h.path);
        format!("{}{unprefixed}", b.storage)
    });
    // The entry's `parentDirectory`, for its parent directory on each side.
    let parent_owner = match &b.parent {
        Some(p) => Some(Owner {
            uid: db.uid(&p.user)?,
            gid: db.gid(&p.group)?,
            mode: p.mode,
        }),
        None => None,
    };
    let owner_for = |home: &Option<String>, entry: &str| {
        let home = home.clone();
        let entry_parent = entry.rsplit_once('/').map(|(p, _)| p.to_owned());
        move |at: &str| -> Owner {
            // The home first: it is created as the user's 0700 whatever an
            // entry directly inside it asks for its parent, as impermanence.
            if let (Some(h), Some(o)) = (&home, home_owner) {
                if at == h {
                    return Owner { mode: 0o700, ..o };
                }
            }
            if let Some(p) = parent_owner {
                if entry_parent.as_deref() == Some(at) {
                    return p;
                }
            }
            match (&home, home_owner) {
                (Some(h), Some(o)) if is_within(at, h) => o,
                _ => ROOT_DIR,
            }
        }
    };

    // The target side first: if it is already a mount point (the initrd
    // mounted it), there is nothing to do.
    let root_dup = rustix::io::dup(root).map_err(|e| errno_text(e, "/"))?;
    let (tparent, tname) = walker.walk_parents(
        root_dup,
        "/",
        &b.target,
        &owner_for(&target_home, &b.target),
    )?;
    if let (Some(parent_id), Some(id)) = (mount_id(&tparent, ""), mount_id(&tparent, &tname)) {
        if parent_id != id {
            return Ok(Done::AlreadyMounted);
        }
    }

    // The storage must exist (it is a mounted filesystem): creating it would
    // persist into the erased root.
    let storage =
        walker
            .open_existing(root, &b.storage)
            .map_err(|cause| PrepareError::Storage {
                storage: b.storage.clone(),
                cause: Box::new(cause),
            })?;
    let (sparent, sname) = walker.walk_parents(
        storage,
        &b.storage,
        &b.source,
        &owner_for(&source_home, &b.source),
    )?;
    // Inside another entry, the mount point is where that entry's mount
    // puts it: in the outer storage, which exists (it is mounted) and was
    // prepared first, as outer entries sort before inner ones.
    let mut mount_point = b.target.clone();
    let (tparent, tname) = match &b.outer_storage {
        None => (tparent, tname),
        Some(outer) => {
            let unprefixed = b.target.strip_prefix(prefix).unwrap_or(&b.target);
            mount_point = format!("{outer}{unprefixed}");
            let outer_home = b.home.as_ref().map(|h| {
                let unprefixed = h.path.strip_prefix(prefix).unwrap_or(&h.path);
                format!("{outer}{unprefixed}")
            });
            let outer_fd =
                walker
                    .open_existing(root, outer)
                    .map_err(|cause| PrepareError::Storage {
                        storage: outer.clone(),
                        cause: Box::new(cause),
                    })?;
            walker.walk_parents(
                outer_fd,
                outer,
                &mount_point,
                &owner_for(&outer_home, &mount_point),
            )?
        }
    };
    // Enforced: the entry's owner and mode on both sides. Otherwise the
    // source keeps what it has (the entry's only if created just now) and
    // the mount point mirrors it, as impermanence's `chown --reference`
    // and `chmod --reference` do.
    let enforce = b.ownership == Ownership::Enforce;
    let mut placed = Method::Bind;
    match b.kind {
        Kind::Directory => {
            let src = walker.ensure_dir(&sparent, &sname, &b.source, want, enforce)?;
            let target_want = if enforce {
                want
            } else {
                owner_of(&src, &b.source)?
            };
            walker.ensure_dir(&tparent, &tname, &mount_point, target_want, true)?;
        }
        Kind::File => {
            let content = if b.is_machine_id() {
                MACHINE_ID_UNINITIALIZED
            } else {
                ""
            };
            // The link names the copy as the running system sees it.
            let link = &b.source[prefix.len()..];
            placed = match b.method {
                // Inside an entry of the same storage, the mount point is the
                // copy itself: a link there would point at itself.
                Method::Auto if mount_point == b.source => Method::Bind,
                Method::Auto => auto_method(
                    (&sparent, &sname, &b.source),
                    &tparent,
                    &tname,
                    &mount_point,
                    link,
                )?,
                m => m,
            };
            if placed == Method::Symlink && b.method == Method::Auto {
                // As impermanence: the copy is not created, the program's
                // first write through the link creates it (and one that
                // checks whether the file exists sees that it does not).
                if exists_at(&sparent, &sname, &b.source)? {
                    walker.ensure_file(&sparent, &sname, &b.source, want, "", enforce)?;
                }
                place_symlink(&tparent, &tname, &mount_point, link)?;
            } else if placed == Method::Symlink {
                walker.ensure_file(&sparent, &sname, &b.source, want, content, enforce)?;
                place_symlink(&tparent, &tname, &mount_point, link)?;
            } else {
                let src =
                    walker.ensure_file(&sparent, &sname, &b.source, want, content, enforce)?;
                let target_want = if enforce {
                    want
                } else {
                    owner_of(&src, &b.source)?
                };
                walker.ensure_file(&tparent, &tname, &mount_point, target_want, "", true)?;
            }
        }
    }
    // What systemd will mount is named by path: check, now that everything
    // is in place, that neither path has a symlink anywhere (a swap during
    // this run leaves one), so that the mount cannot be redirected.
    let quiet = Walker { hook: None };
    // (Inside another entry, the mount point checked is the one in the outer
    // storage: the target path leads there once the outer entry is mounted.)
    // (A link placed to a copy not created yet: only the copy's parents.)
    let checked: &[&String] = if placed == Method::Symlink {
        &[&b.source]
    } else {
        &[&b.source, &mount_point]
    };
    for path in checked {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent_fd = quiet.open_existing(root, if parent.is_empty() { "/" } else { parent })?;
        let st = match rustix::fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) if placed == Method::Symlink && b.method == Method::Auto => continue,
            r => r.map_err(|e| errno_text(e, path))?,
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return Err(errno_text(Errno::LOOP, path));
        }
    }
    Ok(if placed == Method::Symlink {
        Done::Linked
    } else {
        Done::Prepared
    })
}

/// Entries that could not be prepared, each with its label.
pub type Failed = Vec<(String, PrepareError)>;

/// Prepares every entry of `plan`; returns the entries that failed. `Err`:
/// nothing could be prepared (the root or the marker directory cannot be
/// opened).
pub fn prepare_all(
    plan: &Plan,
    opts: &Options,
    hook: Option<Hook<'_>>,
) -> Result<Failed, PrepareError> {
    let db = UserDb::load(&opts.passwd, &opts.group);
    let root = rustix::fs::open(
        &opts.root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_text(e, &opts.root.to_string_lossy()))?;
    std::fs::create_dir_all(&opts.prepared_dir).map_err(|error| PrepareError::Write {
        path: opts.prepared_dir.clone(),
        error,
    })?;
    let mut failed = Vec::new();
    for b in &plan.binds {
        // An entry with its own dataset or subvolume: checked (and, created
        // this boot, given its owner and mode) first.
        if let Err(e) = crate::sources::before_prepare(b, &db, &root, &opts.root) {
            failed.push((b.label.clone(), e));
            continue;
        }
        match prepare_bind(b, &db, &root, hook) {
            Ok(done) => {
                if done == Done::AlreadyMounted {
                    info!("{} is already mounted; left as it is", b.target);
                }
                let marker = opts.prepared_dir.join(&b.unit);
                if let Err(error) = std::fs::write(&marker, "") {
                    failed.push((
                        b.label.clone(),
                        PrepareError::Write {
                            path: marker,
                            error,
                        },
                    ));
                }
            }
            Err(e) => failed.push((b.label.clone(), e)),
        }
    }
    Ok(failed)
}

/// The prepare step for `stage` with the configuration `config`: logs each
/// entry that failed; [`Exit::Failure`] when any did.
pub fn run(config: &Path, stage: Stage, opts: &Options) -> Exit {
    let config = match tabula_config::load(config) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}; nothing prepared, nothing will be mounted");
            return Exit::Usage;
        }
    };
    let plan = crate::plan::plan(&config, stage);
    let failed = match prepare_all(&plan, opts, None) {
        Ok(failed) => failed,
        Err(e) => {
            error!("{e}; nothing prepared, nothing will be mounted");
            return Exit::Failure;
        }
    };
    for (label, why) in &failed {
        error!("{label}: {why}; it is NOT mounted, writes to it go to the erased root");
    }
    info!(
        "{} of {} persisted paths prepared",
        plan.binds.len() - failed.len(),
        plan.binds.len()
    );
    if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    }
}
