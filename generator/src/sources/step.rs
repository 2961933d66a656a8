//! `tabula-sources.service` at boot: each source brought to what the
//! configuration says, a marker per entry, plain directories reported.

use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use log::{error, info, warn};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::mountinfo::{Mounted, mounted_at, read_mountinfo};
use super::{CREATED, How, SOURCES_UNIT, Source, btrfs, zfs};

/// What the sources step reads and writes ([`crate::Env::sources_options`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// Every path is resolved under it: `/`, or a temporary tree in tests.
    pub root: PathBuf,
    /// Where the verdicts go ([`SOURCES_DIR`](super::SOURCES_DIR) under the root).
    pub markers: PathBuf,
    /// The mount table.
    pub mountinfo: PathBuf,
    /// The `zfs` program: `zfs` in `PATH`, or a fake in tests.
    pub zfs: String,
}

/// What the sources step decided for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The dataset or subvolume is there as configured; `created` when this
    /// run made it.
    Ready { created: bool },
    /// A plain directory with data is where it is asked for: left as it is,
    /// used as before.
    Plain,
}

/// The descriptor of the directory `path` (absolute) under `root`, every
/// component opened without following symlinks; missing components after
/// `existing` (which must exist: a storage) are created root's, 0755.
pub(super) fn open_dir_path(root: &OwnedFd, existing: &str, path: &str) -> Result<OwnedFd, String> {
    let mut fd = rustix::io::dup(root).map_err(|e| format!("/: {e}"))?;
    let mut at = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        at.push('/');
        at.push_str(comp);
        let open = |fd: &OwnedFd| {
            rustix::fs::openat(
                fd,
                comp,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        fd = match open(&fd) {
            Ok(next) => next,
            Err(Errno::NOENT) if at.len() > existing.len() => {
                match rustix::fs::mkdirat(&fd, comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(format!("cannot create {at}: {e}")),
                }
                info!("created {at} (0:0 0755)");
                open(&fd).map_err(|e| describe(&fd, comp, &at, e))?
            }
            Err(e) => return Err(describe(&fd, comp, &at, e)),
        };
    }
    Ok(fd)
}

pub(super) fn describe(parent: &OwnedFd, name: &str, path: &str, e: Errno) -> String {
    if let Ok(st) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return format!(
                "{path} is a symbolic link; tabula never follows symlinks in persisted paths, remove it"
            );
        }
    }
    format!("{path}: {e}")
}

/// What is at `name` in `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    Nothing,
    EmptyDir,
    DirWithData,
}

pub(super) fn look(parent: &OwnedFd, name: &str, path: &str) -> Result<Found, String> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(Found::Nothing),
        Err(e) => return Err(format!("{path}: {e}")),
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {}
            FileType::Symlink => {
                return Err(format!(
                    "{path} is a symbolic link; tabula never follows symlinks in persisted paths, remove it"
                ));
            }
            _ => return Err(format!("{path} is not a directory; expected a directory")),
        },
    }
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| describe(parent, name, path, e))?;
    let mut dir = rustix::fs::Dir::read_from(&fd).map_err(|e| format!("{path}: {e}"))?;
    for entry in dir.by_ref() {
        let entry = entry.map_err(|e| format!("{path}: {e}"))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(Found::DirWithData);
        }
    }
    Ok(Found::EmptyDir)
}

pub(super) fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

/// The commands that move the data of a plain directory into its own
/// dataset or subvolume, for the report.
pub(super) fn migration(s: &Source) -> String {
    let src = &s.bind.source;
    match &s.how {
        How::Zfs {
            dataset,
            properties,
            ..
        } => {
            let mut create = String::from("zfs create -o mountpoint=legacy");
            for (k, v) in properties {
                let _ = write!(create, " -o {k}={v}");
            }
            format!(
                "to move it, with the services that use {path} stopped: {create} {dataset}; mount -t zfs {dataset} /mnt; rsync -aHAX {src}/ /mnt/; umount /mnt; mv {src} {src}.old; then reboot (or systemctl restart {SOURCES_UNIT}), and remove {src}.old once the data is checked",
                path = s.bind.path
            )
        }
        How::Btrfs {
            nodatacow,
            compression,
        } => {
            let mut steps = format!("btrfs subvolume create {src}.new");
            if *nodatacow {
                let _ = write!(steps, "; chattr +C {src}.new");
            }
            if let Some(c) = compression {
                let _ = write!(steps, "; btrfs property set {src}.new compression {c}");
            }
            format!(
                "to move it, with the services that use {path} stopped: {steps}; rsync -aHAX {src}/ {src}.new/; mv {src} {src}.old; mv {src}.new {src}; remove {src}.old once the data is checked",
                path = s.bind.path
            )
        }
    }
}

/// Brings one entry's source to what the configuration says.
pub(super) fn ensure(
    s: &Source,
    root: &OwnedFd,
    table: &[Mounted],
    zfs: &zfs::Zfs<'_>,
) -> Result<Verdict, String> {
    let b = &s.bind;
    let (parent_path, name) = split_parent(&b.source);
    let parent = open_dir_path(root, &b.storage, parent_path)?;
    match &s.how {
        How::Zfs {
            dataset,
            parent_of_default,
            properties,
            ..
        } => {
            if let Some(parent_dataset) = parent_of_default {
                let storage_mount = mounted_at(table, &b.storage);
                if !storage_mount.is_some_and(|m| m.fstype == "zfs" && &m.source == parent_dataset)
                {
                    return Err(format!(
                        "its default dataset is {dataset}, a child of {parent_dataset} (the storage's dataset in /etc/fstab), but {} is not mounted from {parent_dataset}; name the dataset in \"zfs\".\"dataset\"",
                        b.storage
                    ));
                }
            }
            if let Some(m) = mounted_at(table, &b.source) {
                if m.fstype == "zfs" && &m.source == dataset {
                    zfs.correct(dataset, properties)?;
                    return Ok(Verdict::Ready { created: false });
                }
                return Err(format!(
                    "{} is already a mount point, of {} ({}), not of the dataset {dataset}; unmount it",
                    b.source, m.source, m.fstype
                ));
            }
            match look(&parent, name, &b.source)? {
                Found::DirWithData => return Ok(Verdict::Plain),
                Found::EmptyDir => {}
                Found::Nothing => {
                    match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(format!("cannot create {}: {e}", b.source)),
                    }
                }
            }
            let created = zfs.ensure(dataset, properties)?;
            Ok(Verdict::Ready { created })
        }
        How::Btrfs {
            nodatacow,
            compression,
        } => btrfs::ensure(&parent, name, &b.source, *nodatacow, compression.as_deref()),
    }
}

pub(super) fn marker(dir: &Path, kind: &str, unit: &str) -> PathBuf {
    dir.join(kind).join(unit)
}

/// Runs the sources step for `sources`; returns the labels of the entries
/// that failed, each logged with its reason.
#[must_use]
pub fn run_sources(sources: &[Source], opts: &Options) -> Vec<String> {
    let mut failed = Vec::new();
    let root = match rustix::fs::open(
        &opts.root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            error!(
                "{}: {e}; no dataset or subvolume prepared",
                opts.root.display()
            );
            return sources.iter().map(|s| s.bind.label.clone()).collect();
        }
    };
    for kind in ["ready", "plain"] {
        if let Err(e) = std::fs::create_dir_all(opts.markers.join(kind)) {
            error!("cannot create {}: {e}", opts.markers.join(kind).display());
            return sources.iter().map(|s| s.bind.label.clone()).collect();
        }
    }
    let table = read_mountinfo(&opts.mountinfo);
    let zfs = zfs::Zfs { command: &opts.zfs };
    for s in sources {
        let b = &s.bind;
        for kind in ["ready", "plain"] {
            let _ = std::fs::remove_file(marker(&opts.markers, kind, &b.unit));
        }
        let (kind, content) = match ensure(s, &root, &table, &zfs) {
            Ok(Verdict::Ready { created }) => ("ready", if created { CREATED } else { "" }),
            Ok(Verdict::Plain) => {
                let what = match &s.how {
                    How::Zfs { dataset, .. } => format!("the dataset {dataset}"),
                    How::Btrfs { .. } => "a subvolume".to_owned(),
                };
                warn!(
                    "{}: {} is a plain directory with data, and {what} is asked for there; it is NOT converted and stays mounted as before; {}",
                    b.label,
                    b.source,
                    migration(s)
                );
                ("plain", "")
            }
            Err(why) => {
                error!(
                    "{}: {why}; {} is NOT mounted, writes to it go to the erased root",
                    b.label, b.path
                );
                failed.push(b.label.clone());
                continue;
            }
        };
        let path = marker(&opts.markers, kind, &b.unit);
        if let Err(e) = std::fs::write(&path, content) {
            error!("{}: cannot write {}: {e}", b.label, path.display());
            failed.push(b.label.clone());
        }
    }
    failed
}
