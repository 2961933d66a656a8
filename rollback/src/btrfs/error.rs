//! Why a Btrfs run stopped: one variant per thing that can go wrong, each
//! shown as one sentence naming the path, the value and what to do (the
//! log lines and docs/rollback.md quote these sentences).

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustix::fs::FileType;

use super::{Kind, MAX_DEPTH};

/// Why a Btrfs run stopped, before or around the rotation: the device, the
/// private mount, two targets on one filesystem; or, under
/// [`Error::Rotation`], a step on the mounted filesystem.
#[derive(Debug)]
pub enum Error {
    /// `device` exists but is not a block device.
    NotABlockDevice { device: String, kind: FileType },
    /// `device` did not appear within `waited` seconds (`waitSeconds`).
    DeviceMissing { device: String, waited: u32 },
    /// `device` could not be looked at (stat, or its superblock read).
    LookAtDevice { device: String, source: io::Error },
    /// `mountOptions` hold a NUL byte (`options` as passed to Btrfs).
    MountOptionsNul { options: String },
    /// The top level could not be mounted; `options` as shown in the log.
    Mount {
        device: String,
        options: String,
        dir: PathBuf,
        source: io::Error,
    },
    /// The top level was mounted, but could not be made private or opened.
    OpenTopLevel {
        device: String,
        dir: PathBuf,
        source: io::Error,
    },
    /// The private mount could not be unmounted, even detached.
    Unmount { dir: PathBuf, source: io::Error },
    /// The private mount point could not be removed after the unmount.
    RemoveMountPoint { dir: PathBuf, source: io::Error },
    /// No private mount point could be made in `run_dir`: the error, or
    /// `None` when every name was taken.
    MountPoint {
        run_dir: PathBuf,
        source: Option<io::Error>,
    },
    /// Two targets (`rollback[target]` and the earlier `rollback[earlier]`)
    /// name one filesystem and `overlap` (what of them overlaps).
    SameFilesystem {
        target: usize,
        device: String,
        earlier: usize,
        earlier_device: String,
        overlap: String,
    },
    /// A step on the filesystem on `device` stopped: what went wrong.
    Rotation { device: String, problem: Problem },
}

/// What stopped a step on the mounted filesystem (the rotation, or the
/// pruning half). Paths are shown from the top level.
#[derive(Debug)]
pub enum Problem {
    /// `op` ("open", "list", "look at" …) of `path` failed.
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    /// An action of the rotation (as logged: "delete subvolume …") failed.
    Action { action: String, source: io::Error },
    /// The directory that should hold the root does not exist.
    ParentMissing { parent: String, root: String },
    /// The root is something other than a subvolume.
    RootNotASubvolume { root: String, kind: Kind },
    /// The reserved new-root name is taken by something tabula did not make.
    ReservedNameTaken { path: String, kind: Kind },
    /// A configured path (`key`: `blank` or `oldRoots`) is, or lies in, the
    /// reserved new-root name.
    ReservedNameConfigured {
        key: &'static str,
        value: String,
        reserved: String,
    },
    /// `blank` does not exist.
    BlankMissing { blank: String },
    /// `blank` is not a subvolume.
    BlankNotASubvolume { blank: String, kind: Kind },
    /// `path`, from the key `field`, reaches a symbolic link at `link`
    /// (tabula follows none).
    SymbolicLink {
        field: &'static str,
        path: String,
        link: String,
    },
    /// `path`, from the key `field`, reaches something that is not a
    /// directory at `at`.
    NotADirectory {
        field: &'static str,
        path: String,
        at: String,
        kind: Kind,
    },
    /// The filesystem's default subvolume (`btrfs subvolume set-default`)
    /// is `subvolume`, one this run moves or may delete, or (`nested`) lies
    /// inside it. `root` is the configured `subvolume`.
    DefaultSubvolume {
        subvolume: String,
        default_id: u64,
        nested: bool,
        root: String,
    },
    /// A subvolume this run moves or may delete is mounted.
    Mounted(MountedSubvolume),
    /// The root is mounted (tabula run by hand on a booted system).
    RootMounted(MountedRoot),
    /// What was to be deleted is not a subvolume.
    NotDeletable { path: String, kind: Kind },
    /// Subvolumes nested deeper than tabula deletes (`MAX_DEPTH` levels).
    NestedTooDeep { path: String },
    /// A nested subvolume is not the one the kernel listed at its place.
    ChangedDuringRun {
        path: String,
        found: u64,
        listed: u64,
    },
    /// A subvolume in the old roots that the kernel did not list there.
    Unlisted { path: String, dir: String },
    /// A name with a NUL byte.
    NulInName { name: String },
    /// Every name derived from `base` is taken in the old roots `dir`.
    NoFreeName { base: String, dir: String },
    /// The old-roots directory `path` was not opened (a dry run's).
    NotOpen { path: String },
}

/// A subvolume the run would move or delete (`path`), mounted at
/// `mountpoint`, itself or through the subvolume `nested` inside it.
#[derive(Debug)]
pub struct MountedSubvolume {
    pub path: String,
    pub mountpoint: String,
    pub nested: Option<u64>,
}

/// The root `path`, mounted at `mountpoint`.
#[derive(Debug)]
pub struct MountedRoot {
    pub path: String,
    pub mountpoint: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotABlockDevice { device, kind } => write!(
                f,
                "{device} is a {kind:?}, not a block device; set `device` to the Btrfs partition, such as /dev/disk/by-label/nixos"
            ),
            Error::DeviceMissing { device, waited } => write!(
                f,
                "{device} did not appear within {waited} s; check `device` (ls -l /dev/disk/by-label/) or raise `waitSeconds`"
            ),
            Error::LookAtDevice { device, source } => {
                write!(f, "cannot look at {device}: {source}")
            }
            Error::MountOptionsNul { options } => write!(
                f,
                "mount options {options:?} contain a NUL byte; fix `mountOptions`"
            ),
            Error::Mount {
                device,
                options,
                dir,
                source,
            } => write!(
                f,
                "cannot mount {device} (btrfs, {options}) at {}: {source}; check that {device} holds a Btrfs filesystem and that `mountOptions` are valid Btrfs options",
                dir.display()
            ),
            Error::OpenTopLevel {
                device,
                dir,
                source,
            } => write!(
                f,
                "cannot open the top level of {device} mounted at {}: {source}",
                dir.display()
            ),
            Error::Unmount { dir, source } => write!(
                f,
                "cannot unmount {}: {source}; it stays mounted until reboot",
                dir.display()
            ),
            Error::RemoveMountPoint { dir, source } => write!(
                f,
                "cannot remove the mount point {}: {source}",
                dir.display()
            ),
            Error::MountPoint {
                run_dir,
                source: Some(source),
            } => write!(
                f,
                "cannot make a mount point in {}: {source}; it must be a writable directory (normally /run)",
                run_dir.display()
            ),
            Error::MountPoint {
                run_dir,
                source: None,
            } => write!(
                f,
                "cannot make a mount point in {}: 100 names taken; remove the stale tabula-rollback.* directories",
                run_dir.display()
            ),
            Error::SameFilesystem {
                target,
                device,
                earlier,
                earlier_device,
                overlap,
            } => write!(
                f,
                "rollback[{target}] ({device}) and rollback[{earlier}] ({earlier_device}) are the same filesystem, and {overlap} overlap: \
                 the second would rotate or prune what the first archived; nothing was changed. \
                 Name each root once, with its own oldRoots"
            ),
            Error::Rotation { device, problem } => write!(f, "{device}: {problem}"),
        }
    }
}

impl fmt::Display for Problem {
    #[allow(clippy::too_many_lines, reason = "one arm per variant")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io { op, path, source } => write!(f, "cannot {op} {path}: {source}"),
            Problem::Action { action, source } => write!(f, "cannot {action}: {source}"),
            Problem::ParentMissing { parent, root } => write!(
                f,
                "{parent}, the directory that should hold {root}, does not exist; create it or fix `subvolume`"
            ),
            Problem::RootNotASubvolume { root, kind } => write!(
                f,
                "{root} is {}; tabula moves and deletes only subvolumes: convert it (btrfs subvolume create, copy, swap) or fix `subvolume`",
                kind.describe()
            ),
            Problem::ReservedNameTaken { path, kind } => write!(
                f,
                "{path} is {}; tabula reserves this name for the new root it builds: move it away",
                kind.describe()
            ),
            Problem::ReservedNameConfigured {
                key,
                value,
                reserved,
            } => write!(
                f,
                "`{key}` ({value:?}) is tabula's reserved name {reserved:?} for the new root; rename it"
            ),
            Problem::BlankMissing { blank } => write!(
                f,
                "the blank subvolume {blank} does not exist; create it once (btrfs subvolume snapshot -r of an empty root) or set `blank` to null"
            ),
            Problem::BlankNotASubvolume { blank, kind } => write!(
                f,
                "the blank {blank} is {}; expected a subvolume to snapshot",
                kind.describe()
            ),
            Problem::SymbolicLink { field, path, link } => {
                write!(f, "`{field}` ({path}): ")?;
                if link == path {
                    write!(f, "{path} is a symbolic link")?;
                } else {
                    write!(f, "{link}, on the way to {path}, is a symbolic link")?;
                }
                write!(
                    f,
                    "; tabula follows none: make it a real directory, or set `{field}` to the real path"
                )
            }
            Problem::NotADirectory {
                field,
                path,
                at,
                kind,
            } => write!(
                f,
                "`{field}` ({path}): {at} is {}; expected a directory or subvolume there",
                kind.describe_file()
            ),
            Problem::DefaultSubvolume {
                subvolume,
                default_id,
                nested,
                root,
            } => {
                if *nested {
                    write!(
                        f,
                        "the default subvolume (id {default_id}) lies inside {subvolume}"
                    )?;
                } else {
                    write!(f, "{subvolume} is the default subvolume")?;
                }
                write!(
                    f,
                    " of this filesystem (`btrfs subvolume set-default`): a mount without subvol= would keep \
                     showing the previous root, and fail once it is pruned; nothing was changed. Make the top level \
                     the default again (`btrfs subvolume set-default 5 <mountpoint>`) and mount the root with \
                     subvol={root}"
                )
            }
            Problem::Mounted(mounted) => write!(
                f,
                "{mounted}; nothing was changed. Unmount it first (tabula-rollback runs in the initrd, before anything is mounted)"
            ),
            Problem::RootMounted(mounted) => write!(
                f,
                "{mounted}; refusing to move it (use --dry-run to see what a boot would do)"
            ),
            Problem::NotDeletable { path, kind } => {
                write!(f, "{path} is {}; refusing to delete it", kind.describe())
            }
            Problem::NestedTooDeep { path } => write!(
                f,
                "{path} has subvolumes nested more than {MAX_DEPTH} deep; delete them by hand"
            ),
            Problem::ChangedDuringRun {
                path,
                found,
                listed,
            } => write!(
                f,
                "{path} is subvolume {found}, but the kernel listed {listed} there; something changed it during the run, stopping"
            ),
            Problem::Unlisted { path, dir } => write!(
                f,
                "{path} is a subvolume the kernel did not list in {dir}; the filesystem changed during the run"
            ),
            Problem::NulInName { name } => write!(f, "{name:?} contains a NUL byte"),
            Problem::NoFreeName { base, dir } => write!(
                f,
                "cannot find a free name for {base} in {dir}; prune it by hand"
            ),
            Problem::NotOpen { path } => write!(f, "{path} is not open"),
        }
    }
}

/// Why the subvolume is in the way (the start of the refusal, and of a dry
/// run's warning).
impl fmt::Display for MountedSubvolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is mounted at {}", self.path, self.mountpoint)?;
        if let Some(nested) = self.nested {
            write!(f, " (subvolume {nested} inside it)")?;
        }
        f.write_str(": it is in use, and this run would move or delete it")
    }
}

/// Why the root is in the way (the start of the refusal, and of a dry run's
/// warning).
impl fmt::Display for MountedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is mounted at {}: it is a root in use, and tabula-rollback runs in the initrd, before the root is mounted",
            self.path, self.mountpoint
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::LookAtDevice { source, .. }
            | Error::Mount { source, .. }
            | Error::OpenTopLevel { source, .. }
            | Error::Unmount { source, .. }
            | Error::RemoveMountPoint { source, .. }
            | Error::MountPoint {
                source: Some(source),
                ..
            } => Some(source),
            Error::Rotation { problem, .. } => problem.source(),
            _ => None,
        }
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Problem::Io { source, .. } | Problem::Action { source, .. } => Some(source),
            _ => None,
        }
    }
}
