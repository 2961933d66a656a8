//! One entry prepared: its persisted copy, its mount point and their
//! parents, a symbolic link for the `symlink` and `auto` methods.

use std::os::fd::{AsFd, OwnedFd};

use log::info;
use rustix::fs::{AtFlags, FileType, StatxFlags};
use rustix::io::Errno;
use tabula_config::names::is_within;

use super::users::UserDb;
use super::walk::{Owner, ROOT_DIR, Walker, errno_text};
use super::{Done, Hook, MACHINE_ID_UNINITIALIZED};
use crate::error::PrepareError;
use crate::plan::{Bind, Group, Kind, Method, Ownership};

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
        // EINVAL: there, but not a symlink.
        Ok(_) | Err(Errno::INVAL) => Err(occupied()),
        Err(Errno::NOENT) => {
            rustix::fs::symlinkat(link, parent, name).map_err(|errno| PrepareError::Create {
                path: path.to_owned(),
                errno,
            })?;
            info!("created {path} -> {link}");
            Ok(())
        }
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

/// Prepares one entry. `root` is the descriptor of [`Options::root`](super::Options::root).
#[allow(
    clippy::too_many_lines,
    reason = "one entry's walk in the order it happens (owners, persisted side, mount point side, placement); each step is a named helper already, and splitting the sequence would hide the order"
)]
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
