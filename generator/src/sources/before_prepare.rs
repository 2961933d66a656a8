//! The prepare step's check of an entry with its own source.

use std::os::fd::OwnedFd;
use std::path::Path;

use log::info;
use rustix::fs::{Mode, OFlags};
use tabula_config::sources::Backing;

use super::mountinfo::{mounted_at, read_mountinfo};
use super::step::{describe, marker, open_dir_path, split_parent};
use super::{CREATED, SOURCES_DIR, SOURCES_UNIT, btrfs};
use crate::error::PrepareError;
use crate::plan::Bind;
use crate::prepare::UserDb;

/// The prepare step's check of an entry with its own source, before the
/// entry is prepared: `Ok` to go on (a plain directory used as before, or a
/// source that is there as configured, given the entry's owner and mode if
/// the sources step created it this boot); `Err` fails the entry.
pub fn before_prepare(
    b: &Bind,
    db: &UserDb,
    root: &OwnedFd,
    root_path: &Path,
) -> Result<(), PrepareError> {
    let Some(backing) = &b.backing else {
        return Ok(());
    };
    let markers = root_path.join(SOURCES_DIR.trim_start_matches('/'));
    if marker(&markers, "plain", &b.unit).exists() {
        return Ok(());
    }
    let ready = marker(&markers, "ready", &b.unit);
    let source_error = |why: String| PrepareError::Source {
        path: b.source.clone(),
        why,
    };
    let Ok(content) = std::fs::read_to_string(&ready) else {
        return Err(source_error(format!(
            "its own {} was not prepared ({SOURCES_UNIT} says why)",
            match backing {
                Backing::Zfs(_) => "dataset",
                Backing::Btrfs(_) => "subvolume",
            }
        )));
    };
    let (parent_path, name) = split_parent(&b.source);
    let parent = open_dir_path(root, parent_path, parent_path).map_err(source_error)?;
    let fd = rustix::fs::openat(
        &parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| source_error(describe(&parent, name, &b.source, e)))?;
    match backing {
        Backing::Zfs(_) => {
            let table = read_mountinfo(&root_path.join("proc/self/mountinfo"));
            let is_zfs = mounted_at(&table, &b.source).is_some_and(|m| m.fstype == "zfs");
            if !is_zfs {
                return Err(source_error(
                    "its dataset is not mounted there (see its mount unit and tabula-sources.service)"
                        .to_owned(),
                ));
            }
        }
        Backing::Btrfs(_) => {
            if !btrfs::is_subvolume(&fd) {
                return Err(source_error("is not a Btrfs subvolume".to_owned()));
            }
        }
    }
    if content == CREATED {
        let (uid, gid) = (db.uid(&b.user)?, db.gid(&b.group)?);
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|errno| PrepareError::Chown {
            path: b.source.clone(),
            uid,
            gid,
            errno,
        })?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(b.mode)).map_err(|errno| {
            PrepareError::Chmod {
                path: b.source.clone(),
                mode: b.mode,
                errno,
            }
        })?;
        info!(
            "{}: new {} given {uid}:{gid} {:04o}",
            b.source,
            match backing {
                Backing::Zfs(_) => "dataset",
                Backing::Btrfs(_) => "subvolume",
            },
            b.mode
        );
        std::fs::write(&ready, "").map_err(|error| PrepareError::Write { path: ready, error })?;
    }
    Ok(())
}
