//! Persisted directories whose source is their own ZFS dataset or Btrfs
//! subvolume (the `zfs` and `btrfs` keys of an entry, checked by
//! `tabula_config::sources`).
//!
//! Three parts, in the order of a boot:
//!
//! 1. The generator ([`plan`], [`render`]) names each dataset (a named one,
//!    or the child of the dataset the storage is mounted from, read from
//!    `/etc/fstab` or the mount table) and emits `tabula-sources.service`,
//!    one mount unit per dataset (`What=<dataset>`, `Type=zfs`, at the
//!    entry's source, storage + path) and a drop-in ordering the prepare
//!    step after both. It touches no disk.
//! 2. `tabula-sources.service` ([`run`], `tabula-generator sources`), after
//!    the pools are imported and the storages mounted, before the dataset
//!    mounts: creates what is missing (`zfs create -o mountpoint=legacy -o
//!    <property>...`, a subvolume with `nodatacow` and a compression
//!    property), sets properties that drifted back to the configuration,
//!    and leaves one marker per entry in [`SOURCES_DIR`]: `ready/<unit>`
//!    (mount it; the dataset's mount unit has `ConditionPathExists=` on it)
//!    or `plain/<unit>` (a plain directory with data is where the dataset or
//!    subvolume is asked for: it is used as before, and reported with the
//!    commands that move it). No marker: the entry failed and was reported.
//!    Nothing is ever destroyed or renamed.
//! 3. The prepare step ([`before_prepare`]), after the dataset mounts, checks
//!    that a `ready` source is what the configuration says before the bind
//!    mount is prepared, and gives a source created this boot the entry's
//!    owner and mode.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use log::{error, info, warn};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tabula_config::entries::Problem;
use tabula_config::sources::{Backing, DatasetName};
use tabula_runtime::Exit;

use crate::error::PrepareError;
use crate::escape::{path_unit_name, unit_value, unit_word};
use crate::plan::{Bind, Plan};
use crate::prepare::UserDb;
use crate::units::{Context, DOCUMENTATION, HEADER, Node, PREPARE_UNIT, Tree};

mod btrfs;
mod zfs;

/// The oneshot service that creates the datasets and subvolumes.
pub const SOURCES_UNIT: &str = "tabula-sources.service";

/// Where [`run`] leaves its verdicts: `ready/<bind unit>`, `plain/<bind unit>`.
pub const SOURCES_DIR: &str = "/run/tabula/sources";

/// The `PATH` of `tabula-sources.service` when it runs `zfs`: NixOS's system
/// profile, then the usual places.
pub const ZFS_SEARCH_PATH: &str =
    "/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A marker's content when the source was created by this run: the prepare
/// step gives it the entry's owner and mode, once.
const CREATED: &str = "created\n";

/// One entry whose source is its own dataset or subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The entry, as the prepare step sees it.
    pub bind: Bind,
    pub how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Zfs {
        /// The dataset's full name.
        dataset: String,
        /// When it is the default child: the storage's dataset, which must
        /// be what the storage is mounted from at boot.
        parent_of_default: Option<String>,
        properties: Vec<(String, String)>,
        /// The mount unit that mounts the dataset at the entry's source.
        unit: String,
    },
    Btrfs {
        nodatacow: bool,
        compression: Option<String>,
    },
}

const ENTRY_SKIPPED: &str = "this entry is skipped, the others are still mounted";

/// Unescapes the `\NNN` octal escapes of `/etc/fstab` and the mount table.
fn unoctal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of the mount table: where, what type, from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub point: String,
    pub fstype: String,
    pub source: String,
}

/// The mount table in `/proc/self/mountinfo` format, last mount last.
pub fn read_mountinfo(file: &Path) -> Vec<Mounted> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next()?;
            Some(Mounted {
                point: unoctal(point),
                fstype: fstype.to_owned(),
                source: unoctal(source),
            })
        })
        .collect()
}

/// What is mounted at `point` now (the topmost mount).
fn mounted_at<'a>(table: &'a [Mounted], point: &str) -> Option<&'a Mounted> {
    table.iter().rev().find(|m| m.point == point)
}

/// The dataset `storage` is mounted from: its `zfs` line in `ROOT/etc/fstab`,
/// else the mount table `ROOT/proc/self/mountinfo`.
pub fn storage_dataset(root: &Path, storage: &str) -> Option<String> {
    let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap_or_default();
    for line in fstab.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && !f[0].starts_with('#') && unoctal(f[1]) == storage && f[2] == "zfs" {
            return Some(unoctal(f[0]));
        }
    }
    let table = read_mountinfo(&root.join("proc/self/mountinfo"));
    mounted_at(&table, storage)
        .filter(|m| m.fstype == "zfs")
        .map(|m| m.source.clone())
}

/// The entries of `plan` with their own dataset or subvolume, names
/// resolved. An entry whose default dataset cannot be named (its storage is
/// not a ZFS filesystem in `ROOT/etc/fstab` nor in the mount table) is moved
/// from the plan to its problems: its data must not land in a plain
/// directory in its place.
pub fn plan(plan: &mut Plan, root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut keep = Vec::with_capacity(plan.binds.len());
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    for b in std::mem::take(&mut plan.binds) {
        let how = match &b.backing {
            None => {
                keep.push(b);
                continue;
            }
            Some(Backing::Btrfs(s)) => How::Btrfs {
                nodatacow: s.nodatacow,
                compression: s.compression.clone(),
            },
            Some(Backing::Zfs(z)) => {
                let (dataset, parent_of_default) = match &z.dataset {
                    DatasetName::Named(d) => (d.clone(), None),
                    DatasetName::ChildOfStorage { storage, child } => {
                        let parent = known
                            .entry(storage.clone())
                            .or_insert_with(|| storage_dataset(root, storage))
                            .clone();
                        let Some(parent) = parent else {
                            plan.problems.push(Problem {
                                label: b.label.clone(),
                                value: b.path.clone(),
                                message: format!(
                                    "has \"zfs\" without a dataset, and its storage {storage} is not a ZFS filesystem in /etc/fstab nor mounted as one; name the dataset in \"zfs\".\"dataset\""
                                ),
                                skipped: ENTRY_SKIPPED,
                            });
                            continue;
                        };
                        let name = format!("{parent}/{child}");
                        if let Err(why) = tabula_config::names::check_dataset(&name) {
                            plan.problems.push(Problem {
                                label: b.label.clone(),
                                value: name,
                                message: format!(
                                    "is its default dataset, and {why}; name the dataset in \"zfs\".\"dataset\""
                                ),
                                skipped: ENTRY_SKIPPED,
                            });
                            continue;
                        }
                        (name, Some(parent))
                    }
                };
                How::Zfs {
                    unit: path_unit_name(&b.source, "mount"),
                    dataset,
                    parent_of_default,
                    properties: z.properties.clone(),
                }
            }
        };
        out.push(Source {
            bind: b.clone(),
            how,
        });
        keep.push(b);
    }
    plan.binds = keep;
    out
}

/// A unit file being written: the header, then lines.
struct Lines(String);

impl Lines {
    fn new() -> Self {
        Lines(HEADER.to_owned())
    }
    fn line(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self.0.push('\n');
        self
    }
    /// `key=value`, `%` doubled.
    fn set(&mut self, key: &str, value: &str) -> &mut Self {
        let _ = writeln!(self.0, "{key}={}", unit_value(value));
        self
    }
    /// `key=` words, each quoted as needed.
    fn words(&mut self, key: &str, words: &[&str]) -> &mut Self {
        let quoted: Vec<String> = words.iter().map(|w| unit_word(w)).collect();
        let _ = writeln!(self.0, "{key}={}", quoted.join(" "));
        self
    }
    fn origin(&mut self, ctx: &Context<'_>) -> &mut Self {
        self.set("Documentation", DOCUMENTATION)
            .set("SourcePath", ctx.config_path)
    }
    fn finish(&mut self) -> Node {
        Node::File(std::mem::take(&mut self.0))
    }
}

/// The units for `sources`, added to `tree`: `tabula-sources.service`, one
/// mount unit per dataset, and a drop-in that orders the prepare step after
/// them.
pub fn render(sources: &[Source], ctx: &Context<'_>, tree: &mut Tree) {
    if sources.is_empty() {
        return;
    }
    let any_zfs = sources.iter().any(|s| matches!(s.how, How::Zfs { .. }));
    let mut storages: Vec<&str> = sources.iter().map(|s| s.bind.storage.as_str()).collect();
    storages.sort_unstable();
    storages.dedup();
    let mut mounts: Vec<&str> = Vec::new();
    for s in sources {
        if let How::Zfs { dataset, unit, .. } = &s.how {
            mounts.push(unit);
            tree.insert(unit.clone(), dataset_unit(s, dataset, ctx));
        }
    }

    let mut before = vec!["shutdown.target", "local-fs.target", PREPARE_UNIT];
    before.extend(&mounts);
    let mut after = vec!["local-fs-pre.target", "systemd-remount-fs.service"];
    if any_zfs {
        after.push("zfs-import.target");
    }
    let mut unit = Lines::new();
    unit.line("")
        .line("[Unit]")
        .set(
            "Description",
            "Create the persisted directories' own datasets and subvolumes",
        )
        .origin(ctx)
        .set("DefaultDependencies", "no")
        .set("Conflicts", "shutdown.target")
        .set("Before", &before.join(" "))
        .set("After", &after.join(" "))
        .words("RequiresMountsFor", &storages)
        .line("")
        .line("[Service]")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes");
    if any_zfs {
        unit.set("Environment", &format!("PATH={ZFS_SEARCH_PATH}"));
    }
    unit.words("ExecStart", &[ctx.exe, "sources"]);
    tree.insert(SOURCES_UNIT.to_owned(), unit.finish());

    let mut after = vec![SOURCES_UNIT];
    after.extend(&mounts);
    let mut dropin = Lines::new();
    dropin
        .line("")
        .line("# The sources with their own dataset or subvolume exist, and the")
        .line("# datasets are mounted, before the prepare step looks at them.")
        .line("[Unit]")
        .origin(ctx)
        .set("Wants", SOURCES_UNIT)
        .set("After", &after.join(" "));
    tree.insert(
        format!("{PREPARE_UNIT}.d/50-tabula-sources.conf"),
        dropin.finish(),
    );
}

fn dataset_unit(s: &Source, dataset: &str, ctx: &Context<'_>) -> Node {
    let b = &s.bind;
    let mut unit = Lines::new();
    unit.line("")
        .line("[Unit]")
        .set(
            "Description",
            &format!("Dataset {dataset} of the persisted directory {}", b.path),
        )
        .origin(ctx)
        .set("DefaultDependencies", "no")
        .set("Conflicts", "umount.target")
        .set(
            "Before",
            &format!("umount.target local-fs.target {PREPARE_UNIT}"),
        )
        .set("Wants", SOURCES_UNIT)
        .set("After", &format!("{SOURCES_UNIT} zfs-import.target"))
        .words("RequiresMountsFor", &[&b.storage])
        .set(
            "ConditionPathExists",
            &format!("{SOURCES_DIR}/ready/{}", b.unit),
        )
        .line("")
        .line("[Mount]")
        .set("What", dataset)
        .set("Where", &b.source)
        .set("Type", "zfs");
    unit.finish()
}

/// What the sources step reads and writes ([`crate::Env::sources_options`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// Every path is resolved under it: `/`, or a temporary tree in tests.
    pub root: PathBuf,
    /// Where the verdicts go ([`SOURCES_DIR`] under the root).
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
fn open_dir_path(root: &OwnedFd, existing: &str, path: &str) -> Result<OwnedFd, String> {
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

fn describe(parent: &OwnedFd, name: &str, path: &str, e: Errno) -> String {
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
enum Found {
    Nothing,
    EmptyDir,
    DirWithData,
}

fn look(parent: &OwnedFd, name: &str, path: &str) -> Result<Found, String> {
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

fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

/// The commands that move the data of a plain directory into its own
/// dataset or subvolume, for the report.
fn migration(s: &Source) -> String {
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
fn ensure(
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

fn marker(dir: &Path, kind: &str, unit: &str) -> PathBuf {
    dir.join(kind).join(unit)
}

/// Runs the sources step for `sources`; returns the labels of the entries
/// that failed, each logged with its reason.
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

/// `tabula-generator sources`: the configuration's sources, each brought to
/// what it says; [`Exit::Failure`] when any failed.
pub fn run(config: &Path, opts: &Options) -> Exit {
    let config = match tabula_config::load(config) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}; no dataset or subvolume prepared");
            return Exit::Usage;
        }
    };
    let mut plan = crate::plan::plan(&config, crate::plan::Stage::System);
    let sources = self::plan(&mut plan, &opts.root);
    let failed = run_sources(&sources, opts);
    info!(
        "{} of {} datasets and subvolumes prepared",
        sources.len() - failed.len(),
        sources.len()
    );
    if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_s_dataset_is_read_from_fstab_then_from_the_mount_table_escapes_undone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::write(
            root.join("etc/fstab"),
            "# rpool/x /persist zfs\n/dev/vda /data btrfs defaults 0 0\nrpool/safe/my\\040data /my\\040data zfs defaults 0 0\n",
        )
        .unwrap();
        std::fs::write(
            root.join("proc/self/mountinfo"),
            "36 1 0:32 / /persist rw shared:2 - zfs rpool/safe/persist rw\n\
             37 1 0:33 / /data rw shared:3 - btrfs /dev/vda rw\n",
        )
        .unwrap();
        assert_eq!(
            storage_dataset(root, "/my data").as_deref(),
            Some("rpool/safe/my data")
        );
        assert_eq!(
            storage_dataset(root, "/persist").as_deref(),
            Some("rpool/safe/persist")
        );
        assert_eq!(storage_dataset(root, "/data"), None);
        assert_eq!(storage_dataset(root, "/elsewhere"), None);
        assert_eq!(unoctal(r"a\134b\01"), r"a\b\01");
    }
}
