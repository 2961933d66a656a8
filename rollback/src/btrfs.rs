//! The Btrfs rotation: the previous root goes to `oldRoots` (or is deleted),
//! a new root takes its place, and `oldRoots` is pruned by the keep policy.
//!
//! # Crash safety
//!
//! Let `S` be the root subvolume (`@root`), `T` the reserved name `S` +
//! `.tabula-new` next to it, and `O` the old-roots directory. Every change is
//! one atomic Btrfs operation (a subvolume create, snapshot, rename or
//! delete), and Btrfs commits whole transactions in order, so a power cut
//! leaves the filesystem exactly as it was between two of the steps below;
//! the fault-injection tests stop the process after each of them and check
//! that the next run completes.
//!
//! ```text
//!  state                                   step                          next
//!  A  S = previous root, no T              create T (empty / blank)      B
//!  B  S = previous root, T = fresh root    exchange S and T              C
//!  C  S = fresh root, T = previous root    move T to O/<otime of T>      D
//!                                          (oldRoots null: delete T)
//!  D  S = fresh root, no T                 prune O                       done
//!  E  no S, no T (first run)               create S                      D
//! ```
//!
//! A run starts by recognising where the last one stopped. `T` present
//! means B or C. The new root of B is untouched (its generation, the last
//! transaction that changed it, still equals its creation transaction; a
//! rename does not count), younger than `S` (creation transaction ids come
//! from the filesystem, not from a clock) and holds what a new root holds;
//! deleting it loses nothing, so it is deleted and the run starts over at
//! A. Any other `T` is treated as the previous root of C (a boot wrote to
//! it, and it is older than `S`): it is moved to `O` (or deleted when
//! `oldRoots` is null) first, then the rotation runs as usual. When in
//! doubt, keep (`Rotation::is_unused_new_root`). Pruning happens last,
//! so an interruption there costs nothing but a later prune, and a deleted
//! old root is gone in one operation or not at all (nested subvolumes go
//! first; each is its own step).
//!
//! `S` always exists from state A on, so a machine whose tabula is then
//! disabled still boots. Nothing is written inside any subvolume: tabula
//! only creates, renames and deletes subvolumes, plus the `O` directory.
//!
//! # What is refused
//!
//! Before any change, the run stops with an error if `S` or `T` is
//! something other than a subvolume (a plain directory or a file: tabula
//! does not move or delete what it did not make), if `blank` is set but is
//! not a subvolume, or if `O` exists but is not a directory. Inside `O`,
//! only subvolumes are old roots: anything else is left alone with a
//! warning, and an old root whose name is not a timestamp is pinned.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use tabula_config::BtrfsTarget;

use crate::{fault, ioctl, keep};

/// The inode number of every subvolume's root directory.
const SUBVOL_ROOT_INO: u64 = 256;

/// Nested subvolumes deeper than this are not deleted (docker nests two or
/// three levels; a deeper tree is more likely a loop than a layout).
const MAX_DEPTH: usize = 64;

/// How the rotation is run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The clock, seconds since the epoch.
    pub now: i64,
    /// Print what would be done instead of doing it.
    pub dry_run: bool,
    /// Where the private mount point of the top level is made.
    pub run_dir: PathBuf,
}

/// Why a Btrfs rotation stopped: one sentence naming the path, the value and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

type Result<T> = std::result::Result<T, Error>;

/// Rotates one Btrfs root as configured by `target`.
pub fn run(target: &BtrfsTarget, ctx: &Ctx) -> Result<()> {
    wait_for_device(&target.device, target.wait_seconds)?;
    let (top, fd) = TopLevel::mount(target, ctx)?;
    fault::after("mounted");
    let rotation = Rotation {
        target,
        ctx,
        top: fd.as_fd(),
        dev: &target.device,
        mount_dir: &top.dir,
    };
    let result = rotation.run();
    drop(fd);
    let unmounted = top.unmount();
    result.and(unmounted)
}

/// Waits until `device` exists and is a block device, for at most `seconds`.
fn wait_for_device(device: &str, seconds: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds.into());
    let mut said = false;
    loop {
        match rustix::fs::stat(device) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice => {
                if said {
                    log::info!("{device} appeared");
                }
                return Ok(());
            }
            Ok(st) => {
                return Err(Error(format!(
                    "{device} is a {:?}, not a block device; set `device` to the Btrfs partition, such as /dev/disk/by-label/nixos",
                    FileType::from_raw_mode(st.st_mode)
                )));
            }
            Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(e) => {
                return Err(Error(format!(
                    "cannot look at {device}: {}",
                    io::Error::from(e)
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(Error(format!(
                "{device} did not appear within {seconds} s; check `device` (ls -l /dev/disk/by-label/) or raise `waitSeconds`"
            )));
        }
        if !said {
            log::info!("waiting up to {seconds} s for {device}");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The filesystem's top level (subvolid=5), mounted at a private directory.
struct TopLevel {
    dir: PathBuf,
    mounted: bool,
}

impl TopLevel {
    /// Mounts; returns the guard and the open top-level directory.
    fn mount(target: &BtrfsTarget, ctx: &Ctx) -> Result<(TopLevel, OwnedFd)> {
        let dev = &target.device;
        let dir = make_private_dir(&ctx.run_dir)?;
        let (mut flags, data) = mount_options(&target.mount_options);
        if ctx.dry_run {
            flags |= MountFlags::RDONLY;
        }
        let cdata = CString::new(data.as_bytes()).map_err(|_| {
            Error(format!(
                "mount options {data:?} contain a NUL byte; fix `mountOptions`"
            ))
        })?;
        if let Err(e) = rustix::mount::mount(dev.as_str(), &dir, "btrfs", flags, cdata.as_c_str()) {
            let _ = std::fs::remove_dir(&dir);
            return Err(Error(format!(
                "cannot mount {dev} (btrfs, {data}{}) at {}: {}; check that {dev} holds a Btrfs filesystem and that `mountOptions` are valid Btrfs options",
                if ctx.dry_run { ",ro" } else { "" },
                dir.display(),
                io::Error::from(e)
            )));
        }
        let opened =
            rustix::mount::mount_change(&dir, MountPropagationFlags::PRIVATE).and_then(|()| {
                rustix::fs::open(
                    &dir,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            });
        match opened {
            Ok(fd) => {
                log::info!(
                    "mounted {dev} (btrfs, {data}{}) at {}",
                    if ctx.dry_run { ",ro" } else { "" },
                    dir.display()
                );
                Ok((TopLevel { dir, mounted: true }, fd))
            }
            Err(e) => {
                let _ = rustix::mount::unmount(&dir, UnmountFlags::DETACH);
                let _ = std::fs::remove_dir(&dir);
                Err(Error(format!(
                    "cannot open the top level of {dev} mounted at {}: {}",
                    dir.display(),
                    io::Error::from(e)
                )))
            }
        }
    }

    /// Unmounts and removes the mount point; an error names what is left.
    fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        let dir = self.dir.clone();
        if let Err(e) = rustix::mount::unmount(&dir, UnmountFlags::empty()) {
            log::warn!(
                "cannot unmount {}: {}; detaching it instead",
                dir.display(),
                io::Error::from(e)
            );
            rustix::mount::unmount(&dir, UnmountFlags::DETACH).map_err(|e| {
                Error(format!(
                    "cannot unmount {}: {}; it stays mounted until reboot",
                    dir.display(),
                    io::Error::from(e)
                ))
            })?;
        }
        std::fs::remove_dir(&dir).map_err(|e| {
            Error(format!(
                "cannot remove the mount point {}: {e}",
                dir.display()
            ))
        })?;
        log::info!("unmounted {}", dir.display());
        Ok(())
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Splits `mountOptions` as mount(8) does: the generic options become mount
/// flags (the kernel's Btrfs option parser refuses `noatime`), the options
/// only userspace understands (`defaults`, `nofail`, `x-systemd.*` …) are
/// dropped, the rest is passed to Btrfs after `subvolid=5`. The mount is
/// always `nosuid,nodev,noexec`: nothing is run from it.
fn mount_options(options: &[String]) -> (MountFlags, String) {
    let mut flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mut data = String::from("subvolid=5");
    for opt in options {
        let flag = match opt.as_str() {
            "noatime" => MountFlags::NOATIME,
            "nodiratime" => MountFlags::NODIRATIME,
            "relatime" => MountFlags::RELATIME,
            "strictatime" => MountFlags::STRICTATIME,
            "lazytime" => MountFlags::LAZYTIME,
            "sync" => MountFlags::SYNCHRONOUS,
            "dirsync" => MountFlags::DIRSYNC,
            "defaults" | "rw" | "async" | "atime" | "diratime" | "norelatime" | "nolazytime"
            | "auto" | "noauto" | "nofail" | "user" | "nouser" | "users" | "owner" | "group"
            | "_netdev" | "suid" | "nosuid" | "dev" | "nodev" | "exec" | "noexec" => {
                MountFlags::empty()
            }
            o if o.starts_with("x-") || o.starts_with("comment=") => MountFlags::empty(),
            o => {
                data.push(',');
                data.push_str(o);
                continue;
            }
        };
        flags |= flag;
    }
    (flags, data)
}

/// Makes a new directory `tabula-rollback.<pid>.<n>`, mode 0700, in `run_dir`.
fn make_private_dir(run_dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let pid = std::process::id();
    for n in 0..100 {
        let dir = run_dir.join(format!("tabula-rollback.{pid}.{n}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error(format!(
                    "cannot make a mount point in {}: {e}; it must be a writable directory (normally /run)",
                    run_dir.display()
                )));
            }
        }
    }
    Err(Error(format!(
        "cannot make a mount point in {}: 100 names taken; remove the stale tabula-rollback.* directories",
        run_dir.display()
    )))
}

/// Undoes the octal escapes of `/proc/self/mountinfo` (`\\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The sorted names in the directory `dir`, without `.` and `..`.
fn dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What a name in a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    Subvolume,
    Directory,
    Other(FileType),
}

impl Kind {
    fn describe(self) -> String {
        match self {
            Kind::Missing => "missing".to_owned(),
            Kind::Subvolume => "a subvolume".to_owned(),
            Kind::Directory => "a plain directory, not a subvolume".to_owned(),
            Kind::Other(t) => format!("a {t:?}, not a subvolume"),
        }
    }
}

const OPEN_DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Path resolution that stays below the directory it starts from and never
/// follows a symbolic link: every path tabula opens comes from the config or
/// the kernel, and none of them may lead elsewhere.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn open_beneath(dir: BorrowedFd<'_>, path: &OsStr) -> io::Result<OwnedFd> {
    rustix::fs::openat2(dir, path, OPEN_DIR, Mode::empty(), BENEATH).map_err(io::Error::from)
}

fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Kind> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(kind_of(&st)),
        Err(Errno::NOENT) => Ok(Kind::Missing),
        Err(e) => Err(e.into()),
    }
}

fn kind_of(st: &rustix::fs::Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory if st.st_ino == SUBVOL_ROOT_INO => Kind::Subvolume,
        FileType::Directory => Kind::Directory,
        t => Kind::Other(t),
    }
}

/// The names of the subvolumes directly in the directory `dir`, from the
/// filesystem's root references: no subvolume is opened, so the old roots
/// that stay are never read from disk.
fn subvolumes_in(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let ino = rustix::fs::fstat(dir)?.st_ino;
    let mut names = Vec::new();
    for child in ioctl::children(dir)? {
        if child.dirid == ino {
            let (path, name) = ioctl::child_path(dir, child)?;
            if path.is_empty() {
                names.push(name);
            }
        }
    }
    Ok(names)
}

fn cstr(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error(format!("{name:?} contains a NUL byte")))
}

/// `a/b/@root` → (`a/b`, `@root`); `@root` → (``, `@root`).
fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `dir` + `/` + `name`, for messages; `dir` empty is the top level.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The old-roots directory: open, or (in a dry run) not made yet.
struct OldRoots {
    path: String,
    fd: Option<OwnedFd>,
}

struct Rotation<'a> {
    target: &'a BtrfsTarget,
    ctx: &'a Ctx,
    top: BorrowedFd<'a>,
    dev: &'a str,
    /// Where the top level is mounted.
    mount_dir: &'a Path,
}

impl Rotation<'_> {
    fn err(&self, what: impl fmt::Display) -> Error {
        Error(format!("{}: {what}", self.dev))
    }

    fn io_err(&self, doing: &str, path: &str, e: impl Into<io::Error>) -> Error {
        self.err(format_args!("cannot {doing} {path}: {}", e.into()))
    }

    /// Does one action, or in a dry run prints it: every action is one line.
    fn act(&self, what: String, f: impl FnOnce() -> io::Result<()>) -> Result<()> {
        if self.ctx.dry_run {
            println!("dry-run: {what}");
            log::info!("dry-run: {what}");
            return Ok(());
        }
        f().map_err(|e| self.err(format_args!("cannot {what}: {e}")))?;
        log::info!("{what}");
        Ok(())
    }

    /// Opens the directory at `path` (relative to the top level; empty is the
    /// top level itself); `None` when it does not exist.
    fn open_dir(&self, path: &str) -> Result<Option<OwnedFd>> {
        let path = if path.is_empty() { "." } else { path };
        match open_beneath(self.top, OsStr::new(path)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(self.err(format_args!(
                "{path} is not a directory; expected a directory or subvolume there"
            ))),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(self.err(format_args!(
                "{path} goes through a symbolic link; tabula follows none, use the real path"
            ))),
            Err(e) => Err(self.io_err("open", path, e)),
        }
    }

    fn kind(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<Kind> {
        kind_at(dir, OsStr::new(name)).map_err(|e| self.io_err("look at", shown, e))
    }

    fn info(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<ioctl::SubvolInfo> {
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        ioctl::subvol_info(fd.as_fd())
            .map_err(|e| self.io_err("read the subvolume info of", shown, e))
    }

    fn run(&self) -> Result<()> {
        let t = self.target;
        let root_path = t.subvolume.as_str();
        let (parent_path, root_name) = split_parent(root_path);
        let new_name = format!("{root_name}{}", tabula_config::NEW_ROOT_SUFFIX);
        let new_path = join(parent_path, &new_name);

        // Look before touching anything.
        let Some(parent) = self.open_dir(parent_path)? else {
            return Err(self.err(format_args!(
                "{parent_path}, the directory that should hold {root_path}, does not exist; create it or fix `subvolume`"
            )));
        };
        let parent = parent.as_fd();
        let root = self.kind(parent, root_name, root_path)?;
        if !matches!(root, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(format_args!(
                "{root_path} is {}; tabula moves and deletes only subvolumes: convert it (btrfs subvolume create, copy, swap) or fix `subvolume`",
                root.describe()
            )));
        }
        if root == Kind::Subvolume {
            self.check_not_mounted(parent, root_name, root_path)?;
        }
        let leftover = self.kind(parent, &new_name, &new_path)?;
        if !matches!(leftover, Kind::Subvolume | Kind::Missing) {
            return Err(self.err(format_args!(
                "{new_path} is {}; tabula reserves this name for the new root it builds: move it away",
                leftover.describe()
            )));
        }
        for (key, other) in [("blank", &t.blank), ("oldRoots", &t.old_roots)] {
            if let Some(other) = other {
                if tabula_config::names::is_within(other, &new_path) {
                    return Err(self.err(format_args!(
                        "`{key}` ({other:?}) is tabula's reserved name {new_path:?} for the new root; rename it"
                    )));
                }
            }
        }
        let blank = match &t.blank {
            None => None,
            Some(b) => {
                let missing = || {
                    self.err(format_args!(
                        "the blank subvolume {b} does not exist; create it once (btrfs subvolume snapshot -r of an empty root) or set `blank` to null"
                    ))
                };
                let fd = self.open_dir(b)?.ok_or_else(missing)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| self.io_err("look at", b, e))?;
                if kind_of(&st) != Kind::Subvolume {
                    return Err(self.err(format_args!(
                        "the blank {b} is {}; expected a subvolume to snapshot",
                        kind_of(&st).describe()
                    )));
                }
                Some((b.as_str(), fd))
            }
        };
        let mut old_roots = match &t.old_roots {
            None => None,
            Some(o) => Some(OldRoots {
                path: o.clone(),
                fd: self.open_dir(o)?,
            }),
        };
        let blank = blank.as_ref().map(|(p, fd)| (*p, fd.as_fd()));

        // Finish what an interrupted run left (states B and C).
        if leftover == Kind::Subvolume {
            let left = self.info(parent, &new_name, &new_path)?;
            let root_info = match root {
                Kind::Subvolume => Some(self.info(parent, root_name, root_path)?),
                _ => None,
            };
            if self.is_unused_new_root(parent, &new_name, &new_path, &left, root_info, blank)? {
                log::warn!(
                    "{new_path} is the unused new root of an interrupted run: deleting it and starting over"
                );
                self.destroy(parent, &new_name, &new_path)?;
                fault::after("leftover-removed");
            } else {
                log::warn!(
                    "{new_path} is the previous root of an interrupted run: putting it away first"
                );
                self.archive(parent, &new_name, &new_path, &left, &mut old_roots)?;
                fault::after("leftover-archived");
            }
        }

        // The rotation proper (A → B → C → D, or E → D).
        let mut moved = None;
        if root == Kind::Subvolume {
            let previous = self.info(parent, root_name, root_path)?;
            self.create(parent, &new_name, &new_path, blank)?;
            fault::after("created");
            self.act(format!("exchange {root_path} and {new_path}"), || {
                rustix::fs::renameat_with(
                    parent,
                    root_name,
                    parent,
                    new_name.as_str(),
                    RenameFlags::EXCHANGE,
                )
                .map_err(io::Error::from)
            })?;
            fault::after("exchanged");
            moved = self.archive(parent, &new_name, &new_path, &previous, &mut old_roots)?;
            fault::after("archived");
        } else {
            log::info!("{root_path} does not exist yet: creating it");
            self.create(parent, root_name, root_path, blank)?;
            fault::after("created");
        }

        if let Some(old_roots) = &old_roots {
            self.prune(old_roots, moved.as_deref(), parent, root_name)?;
        }
        if !self.ctx.dry_run {
            rustix::fs::syncfs(self.top).map_err(|e| self.io_err("commit", self.dev, e))?;
        }
        Ok(())
    }

    /// Refuses a root that is mounted (tabula run by hand on a booted
    /// system): it would move the running system's root away. A Btrfs mount
    /// whose mount point has the subvolume's device number (each subvolume
    /// has its own) shows it, or a part of it. A dry run only warns.
    fn check_not_mounted(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io_err("look at", shown, e))?;
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(mountpoint) = info.lines().find_map(|line| {
            // `id parent major:minor root mountpoint options… - type source …`
            let mountpoint = unescape_mountinfo(line.split(' ').nth(4)?);
            let (_, after) = line.split_once(" - ")?;
            let same = after.starts_with("btrfs ")
                && !Path::new(&mountpoint).starts_with(self.mount_dir)
                && rustix::fs::stat(mountpoint.as_str()).is_ok_and(|m| m.st_dev == st.st_dev);
            same.then_some(mountpoint)
        }) else {
            return Ok(());
        };
        let why = format!(
            "{shown} is mounted at {mountpoint}: it is a root in use, and tabula-rollback runs in the initrd, before the root is mounted"
        );
        if self.ctx.dry_run {
            log::warn!("{why}; a real run refuses to rotate it");
            Ok(())
        } else {
            Err(self.err(format_args!(
                "{why}; refusing to move it (use --dry-run to see what a boot would do)"
            )))
        }
    }

    /// Whether the subvolume `name` at the reserved name is the new root of
    /// a run that stopped before the exchange (state B), which can be
    /// deleted without losing anything. All of these must hold:
    ///
    /// * it is untouched: its generation (last transaction that changed it)
    ///   is its creation transaction, so no later transaction wrote to it;
    /// * it was created after the current root (`otransid`), as the new
    ///   root of B is, and the previous root of C is not;
    /// * its top directory holds what a new root holds: nothing, or the
    ///   names in `blank`.
    ///
    /// Anything else is kept: when in doubt, it is treated as a previous root.
    fn is_unused_new_root(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        info: &ioctl::SubvolInfo,
        root: Option<ioctl::SubvolInfo>,
        blank: Option<(&str, BorrowedFd<'_>)>,
    ) -> Result<bool> {
        let Some(root) = root else {
            return Ok(false);
        };
        if info.generation != info.otransid || info.otransid <= root.otransid {
            return Ok(false);
        }
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        let names = dir_names(fd.as_fd()).map_err(|e| self.io_err("list", shown, e))?;
        let expected = match blank {
            None => Vec::new(),
            Some((path, fd)) => dir_names(fd).map_err(|e| self.io_err("list", path, e))?,
        };
        Ok(names == expected)
    }

    /// Creates the new root `name` in `dir`: empty, or a snapshot of blank.
    fn create(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        blank: Option<(&str, BorrowedFd<'_>)>,
    ) -> Result<()> {
        let cname = cstr(name)?;
        match blank {
            None => self.act(format!("create empty subvolume {shown}"), || {
                ioctl::subvol_create(dir, &cname)
            }),
            Some((path, fd)) => self.act(
                format!("create {shown} as a writable snapshot of {path}"),
                || ioctl::snap_create(dir, &cname, fd, false),
            ),
        }
    }

    /// Puts the previous root `name` (in `dir`) away: moved into the old
    /// roots under the name of its creation time, or deleted when
    /// `oldRoots` is null. Returns the name it got in the old roots.
    fn archive(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        shown: &str,
        info: &ioctl::SubvolInfo,
        old_roots: &mut Option<OldRoots>,
    ) -> Result<Option<String>> {
        let Some(old) = old_roots else {
            log::info!("oldRoots is null: the previous root is deleted");
            self.destroy(dir, name, shown)?;
            return Ok(None);
        };
        let old_dir = match &old.fd {
            Some(fd) => Some(fd.as_fd()),
            None => {
                let made = self.make_dirs(&old.path)?;
                old.fd = made;
                old.fd.as_ref().map(AsFd::as_fd)
            }
        };
        let base = keep::timestamp_name(info.otime);
        for _ in 0..1000 {
            let taken = |candidate: &str| match old_dir {
                Some(d) => !matches!(kind_at(d, OsStr::new(candidate)), Ok(Kind::Missing)),
                None => false,
            };
            let target = keep::unique_name(&base, taken);
            let target_path = join(&old.path, &target);
            let what = format!("move {shown} to {target_path}");
            if self.ctx.dry_run {
                self.act(what, || Ok(()))?;
                return Ok(Some(target));
            }
            let Some(old_dir) = old_dir else {
                return Err(self.err(format_args!("{} is not open", old.path)));
            };
            match rustix::fs::renameat_with(
                dir,
                name,
                old_dir,
                target.as_str(),
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => {
                    log::info!("{what}");
                    return Ok(Some(target));
                }
                // Taken between the look and the move: take the next name.
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    return Err(self.err(format_args!("cannot {what}: {}", io::Error::from(e))));
                }
            }
        }
        Err(self.err(format_args!(
            "cannot find a free name for {base} in {}; prune it by hand",
            old.path
        )))
    }

    /// Makes the directory `path` (mode 0700) and its missing parents.
    fn make_dirs(&self, path: &str) -> Result<Option<OwnedFd>> {
        let mut dir: Option<OwnedFd> = None;
        let mut done = String::new();
        for component in path.split('/') {
            let here = join(&done, component);
            let base = match &dir {
                Some(d) => d.as_fd(),
                None if done.is_empty() => self.top,
                None => {
                    // Dry run: the parent was not made, so neither is this.
                    self.act(format!("create directory {here}"), || Ok(()))?;
                    done = here;
                    continue;
                }
            };
            let next = match open_beneath(base, OsStr::new(component)) {
                Ok(fd) => Some(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.act(format!("create directory {here}"), || {
                        rustix::fs::mkdirat(base, component, Mode::from_raw_mode(0o700))
                            .map_err(io::Error::from)
                    })?;
                    if self.ctx.dry_run {
                        None
                    } else {
                        Some(
                            open_beneath(base, OsStr::new(component))
                                .map_err(|e| self.io_err("open", &here, e))?,
                        )
                    }
                }
                Err(e) => return Err(self.io_err("open", &here, e)),
            };
            dir = next;
            done = here;
        }
        Ok(dir)
    }

    /// Prunes the old roots by the keep policy. `moved` is the name the
    /// previous root got there; in a dry run it is still at
    /// `root_dir`/`root_name`.
    fn prune(
        &self,
        old: &OldRoots,
        moved: Option<&str>,
        root_dir: BorrowedFd<'_>,
        root_name: &str,
    ) -> Result<()> {
        let mut names = Vec::new();
        if let Some(dir) = &old.fd {
            let subvolumes = subvolumes_in(dir.as_fd())
                .map_err(|e| self.io_err("list the subvolumes in", &old.path, e))?;
            let entries =
                rustix::fs::Dir::read_from(dir).map_err(|e| self.io_err("list", &old.path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| self.io_err("list", &old.path, e))?;
                let raw = entry.file_name().to_bytes();
                if raw == b"." || raw == b".." {
                    continue;
                }
                let shown = join(&old.path, &String::from_utf8_lossy(raw));
                let Ok(name) = std::str::from_utf8(raw) else {
                    log::warn!("{shown} has a name that is not UTF-8: left alone");
                    continue;
                };
                let kind = if subvolumes.iter().any(|s| s.as_slice() == raw) {
                    Kind::Subvolume
                } else {
                    self.kind(dir.as_fd(), name, &shown)?
                };
                match kind {
                    Kind::Subvolume => names.push(name.to_owned()),
                    Kind::Missing => {}
                    other => log::warn!(
                        "{shown} is {}: not an old root, left alone",
                        other.describe()
                    ),
                }
            }
        }
        if let Some(m) = moved {
            if !names.iter().any(|n| n == m) {
                names.push(m.to_owned()); // a dry run did not move it
            }
        }
        names.sort();
        let plan = keep::plan(&names, self.ctx.now, &self.target.keep);
        for name in &plan.pinned {
            log::info!(
                "{} is pinned: its name is not a timestamp, so it is never pruned",
                join(&old.path, name)
            );
        }
        if self.ctx.now < keep::TRUSTED_CLOCK_FROM && !names.is_empty() {
            log::warn!(
                "the clock says {}, before 2020: not trusting it, pruning nothing",
                keep::timestamp_name(self.ctx.now)
            );
        }
        log::info!(
            "{}: {} old roots kept, {} to prune, {} pinned",
            old.path,
            plan.keep.len(),
            plan.prune.len(),
            plan.pinned.len()
        );
        for name in &plan.prune {
            let shown = join(&old.path, name);
            match &old.fd {
                Some(dir) if !self.ctx.dry_run || moved != Some(name.as_str()) => {
                    self.destroy(dir.as_fd(), name, &shown)?;
                }
                // Dry run: the previous root is still in place.
                _ => self.destroy(root_dir, root_name, &shown)?,
            }
            fault::after("pruned");
        }
        Ok(())
    }

    /// Deletes the subvolume `name` in `dir` and every subvolume nested in
    /// it, leaves first. Nothing outside it is touched: every nested path
    /// is resolved beneath the subvolume that holds it, and each nested
    /// subvolume is checked to be the one the kernel listed.
    fn destroy(&self, dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<()> {
        let fd = open_beneath(dir, OsStr::new(name)).map_err(|e| self.io_err("open", shown, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io_err("look at", shown, e))?;
        if kind_of(&st) != Kind::Subvolume {
            return Err(self.err(format_args!(
                "{shown} is {}; refusing to delete it",
                kind_of(&st).describe()
            )));
        }
        self.destroy_nested(fd.as_fd(), shown, 0)?;
        let cname = cstr(name)?;
        self.act(format!("delete subvolume {shown}"), || {
            ioctl::snap_destroy(dir, &cname)
        })
    }

    fn destroy_nested(&self, fd: BorrowedFd<'_>, shown: &str, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.err(format_args!(
                "{shown} has subvolumes nested more than {MAX_DEPTH} deep; delete them by hand"
            )));
        }
        let children =
            ioctl::children(fd).map_err(|e| self.io_err("list the subvolumes in", shown, e))?;
        for child in children {
            let (dir_path, name) = ioctl::child_path(fd, child)
                .map_err(|e| self.io_err("find the nested subvolumes of", shown, e))?;
            let child_shown = format!(
                "{shown}/{}{}",
                String::from_utf8_lossy(&dir_path),
                String::from_utf8_lossy(&name)
            );
            let dir_path = dir_path.strip_suffix(b"/").unwrap_or(&dir_path);
            let dir = if dir_path.is_empty() {
                open_beneath(fd, OsStr::new("."))
            } else {
                open_beneath(fd, OsStr::from_bytes(dir_path))
            }
            .map_err(|e| self.io_err("open the directory holding", &child_shown, e))?;
            let child_fd = open_beneath(dir.as_fd(), OsStr::from_bytes(&name))
                .map_err(|e| self.io_err("open", &child_shown, e))?;
            let info = ioctl::subvol_info(child_fd.as_fd())
                .map_err(|e| self.io_err("read the subvolume info of", &child_shown, e))?;
            if info.id != child.id {
                return Err(self.err(format_args!(
                    "{child_shown} is subvolume {}, but the kernel listed {} there; something changed it during the run, stopping",
                    info.id, child.id
                )));
            }
            self.destroy_nested(child_fd.as_fd(), &child_shown, depth + 1)?;
            drop(child_fd);
            let cname = CString::new(name).map_err(|_| self.err("a subvolume name with NUL"))?;
            self.act(format!("delete subvolume {child_shown}"), || {
                ioctl::snap_destroy(dir.as_fd(), &cname)
            })?;
            fault::after("nested-destroyed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(split_parent("@root"), ("", "@root"));
        assert_eq!(split_parent("nixos/a/root"), ("nixos/a", "root"));
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("@old_roots", "x"), "@old_roots/x");
    }

    #[test]
    fn mount_option_split() {
        let opts =
            |list: &[&str]| mount_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let base = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        assert_eq!(opts(&[]), (base, "subvolid=5".to_owned()));
        assert_eq!(
            opts(&[
                "compress=zstd:3",
                "noatime",
                "ssd",
                "space_cache=v2",
                "discard=async",
                "x-systemd.device-timeout=0",
                "defaults",
                "lazytime",
            ]),
            (
                base | MountFlags::NOATIME | MountFlags::LAZYTIME,
                "subvolid=5,compress=zstd:3,ssd,space_cache=v2,discard=async".to_owned()
            )
        );
        assert_eq!(
            opts(&["degraded", "device=/dev/vdb"]).1,
            "subvolid=5,degraded,device=/dev/vdb"
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b\\011c"), "/mnt/a b\tc");
        assert_eq!(unescape_mountinfo("/x\\04"), "/x\\04");
        assert_eq!(unescape_mountinfo("/"), "/");
        assert_eq!(unescape_mountinfo("\\777"), "?");
    }

    #[test]
    fn cstr_refuses_nul() {
        assert!(cstr("a\0b").is_err());
        assert_eq!(cstr("@root").ok().as_deref(), Some(c"@root"));
    }
}
