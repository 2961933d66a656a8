//! `tabula restore`, `tabula adopt` and `tabula stray`: getting data back
//! from an old root, moving what is on the ephemeral root into a storage,
//! and finding what the storages hold that no entry declares.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde_json::json;
use tabula_config::{Config, RollbackTarget};

use crate::copy::{self, Options};
use crate::diff::{is_within, open_root, persisted_paths};
use crate::output::{escape, human_size};
use crate::{Error, Result};

/// The storage that declares `rel` (or holds an entry around it), else the
/// first storage.
fn storage_for(config: &Config, rel: &[u8]) -> Result<(String, bool)> {
    let entries = tabula_config::entries::check_entries(config);
    if let Some(p) = entries
        .persisted
        .iter()
        .find(|p| is_within(rel, p.path.trim_start_matches('/').as_bytes()))
    {
        return Ok((p.storage.clone(), true));
    }
    config.persist.first().map(|s| (s.storage.clone(), false)).ok_or_else(|| {
        Error::usage("the configuration has no persist storage; add one (tabula.persist.\"/persist\") and switch first")
    })
}

fn entry_line(
    storage: &str,
    path: &[u8],
    is_dir: bool,
    declared: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let shown = escape(path);
    if declared {
        return writeln!(
            out,
            "{shown} is already declared in tabula.persist.\"{storage}\""
        );
    }
    let key = if is_dir { "directories" } else { "files" };
    writeln!(
        out,
        "add to your configuration, then switch:\n  tabula.persist.\"{storage}\".{key} = [ \"{shown}\" ];"
    )
}

/// Opens old root `name` read-only: a subvolume of `oldRoots` on the top
/// level, mounted detached (Btrfs), or the dataset `oldRoots/name`, mounted
/// detached and read-only (ZFS).
fn open_old_root(config: &Config, name: &str) -> Result<OwnedFd> {
    let short = name.rsplit('/').next().unwrap_or(name);
    if short.is_empty() || short == "." || short == ".." {
        return Err(Error::usage(format!(
            "{name:?} is not an old root; see tabula roots"
        )));
    }
    for target in &config.rollback {
        match target {
            RollbackTarget::Btrfs(b) => {
                let Some(old) = &b.old_roots else { continue };
                let top = crate::btrfs::mount_top(b)?;
                if let Ok(dir) = crate::btrfs::open_at(top.as_fd(), old) {
                    if let Ok(fd) = crate::btrfs::open_at(dir.as_fd(), short) {
                        return Ok(fd);
                    }
                }
            }
            RollbackTarget::Zfs(z) => {
                let Some(old) = &z.old_roots else { continue };
                let dataset = format!("{old}/{short}");
                if crate::zfs::exists(z, &dataset).is_err() {
                    continue;
                }
                return mount_zfs_read_only(&dataset);
            }
        }
    }
    Err(Error::usage(format!(
        "no old root named {name:?}; `tabula roots` lists them"
    )))
}

/// Mounts the ZFS filesystem `dataset` read-only (the superblock and the
/// mount) and detached: no path leads to it, no other process sees it, it
/// disappears when the descriptor closes.
fn mount_zfs_read_only(dataset: &str) -> Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fail = |what: &str, e: rustix::io::Errno| {
        Error::runtime(format!(
            "cannot mount the old root {dataset} read-only ({what}: {e}); check that the zfs module is loaded and that you are root"
        ))
    };
    let fs =
        rustix::mount::fsopen("zfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail("fsopen", e))?;
    rustix::mount::fsconfig_set_string(&fs, "source", dataset).map_err(|e| fail("source", e))?;
    rustix::mount::fsconfig_set_flag(&fs, "ro").map_err(|e| fail("ro", e))?;
    rustix::mount::fsconfig_create(&fs).map_err(|e| fail("create", e))?;
    let m = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .map_err(|e| fail("fsmount", e))?;
    crate::btrfs::open_at(m.as_fd(), ".").map_err(|e| fail("open", e))
}

/// Where `restore` puts the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Storage,
    Place,
}

/// `tabula restore PATH --from ROOT`.
pub fn restore(
    config: &Config,
    root: &Path,
    path: &[u8],
    from: &str,
    to: To,
    opts: Options,
    out: &mut dyn Write,
) -> Result<()> {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    let (storage, declared) = storage_for(config, rel)?;
    let old = open_old_root(config, from)?;
    let (src_dir, src_name) = copy::open_parent(old.as_fd(), rel, false, false)?
        .ok_or_else(|| Error::runtime(format!("{} is not in old root {from}", escape(path))))?;
    let st = rustix::fs::statat(&src_dir, &src_name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
        Error::runtime(format!(
            "{} in old root {from}: {e}; `tabula roots` lists the old roots",
            escape(path)
        ))
    })?;
    let root_fd = open_root(root)?;
    let mut dest = match to {
        To::Storage => storage.trim_start_matches('/').as_bytes().to_vec(),
        To::Place => Vec::new(),
    };
    if !dest.is_empty() {
        dest.push(b'/');
    }
    dest.extend_from_slice(rel);
    let target = copy::open_parent(root_fd.as_fd(), &dest, !opts.dry_run, false)?;
    let shown = [b"/".as_slice(), &dest].concat();
    let target = target.as_ref().map(|(d, n)| (d.as_fd(), n.as_c_str()));
    let stats = copy::copy(src_dir.as_fd(), &src_name, target, &shown, opts, out)?;
    report(
        out,
        &stats,
        opts,
        &format!("from old root {from} to"),
        &shown,
    )?;
    if to == To::Storage {
        entry_line(
            &storage,
            path,
            FileType::from_raw_mode(st.st_mode) == FileType::Directory,
            declared,
            out,
        )
        .map_err(|e| Error::runtime(e.to_string()))?;
    }
    Ok(())
}

/// `tabula adopt PATH`.
pub fn adopt(
    config: &Config,
    root: &Path,
    path: &[u8],
    opts: Options,
    out: &mut dyn Write,
) -> Result<()> {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    let (storage, declared) = storage_for(config, rel)?;
    if declared {
        return Err(Error::usage(format!(
            "{} is already persisted in {storage}: it is mounted from there, nothing to adopt",
            escape(path)
        )));
    }
    let root_fd = open_root(root)?;
    let (src_dir, src_name) = copy::open_parent(root_fd.as_fd(), rel, false, true)?
        .ok_or_else(|| Error::runtime(format!("{} does not exist on the root", escape(path))))?;
    let st = rustix::fs::statat(&src_dir, &src_name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::runtime(format!("cannot read {}: {e}", escape(path))))?;
    let mut dest = storage.trim_start_matches('/').as_bytes().to_vec();
    dest.push(b'/');
    dest.extend_from_slice(rel);
    let target = copy::open_parent(root_fd.as_fd(), &dest, !opts.dry_run, false)?;
    let shown = [b"/".as_slice(), &dest].concat();
    let opts = Options {
        one_filesystem: true,
        ..opts
    };
    let target = target.as_ref().map(|(d, n)| (d.as_fd(), n.as_c_str()));
    let stats = copy::copy(src_dir.as_fd(), &src_name, target, &shown, opts, out)?;
    report(out, &stats, opts, &format!("{} to", escape(path)), &shown)?;
    entry_line(
        &storage,
        path,
        FileType::from_raw_mode(st.st_mode) == FileType::Directory,
        false,
        out,
    )
    .map_err(|e| Error::runtime(e.to_string()))
}

fn report(
    out: &mut dyn Write,
    stats: &copy::Stats,
    opts: Options,
    what: &str,
    to: &[u8],
) -> Result<()> {
    let verb = if opts.dry_run { "would copy" } else { "copied" };
    let mut w = || -> std::io::Result<()> {
        writeln!(
            out,
            "{verb} {} entries ({}) {what} {}",
            stats.entries,
            human_size(stats.bytes),
            escape(to)
        )?;
        for s in &stats.skipped {
            writeln!(out, "  not copied: {s}")?;
        }
        Ok(())
    };
    w().map_err(|e| Error::runtime(e.to_string()))
}

/// One path in a storage that no entry declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// Absolute, on the running system (`/persist/var/lib/old`).
    pub path: Vec<u8>,
    pub entries: u64,
    pub bytes: u64,
}

/// `tabula stray`: the outermost paths of each storage that are neither a
/// declared entry nor on the way to one.
pub fn stray(config: &Config, root: &Path) -> Result<Vec<Stray>> {
    let root_fd = open_root(root)?;
    let mut found = Vec::new();
    for storage in &config.persist {
        let declared = persisted_paths(config, Some(&storage.storage));
        let srel = storage.storage.trim_start_matches('/').as_bytes();
        let dir = match rustix::fs::openat2(
            &root_fd,
            srel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_SYMLINKS,
        ) {
            Ok(d) => d,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => {
                return Err(Error::runtime(format!(
                    "cannot open the storage {}: {e}",
                    storage.storage
                )));
            }
        };
        visit(dir.as_fd(), &storage.storage, b"", &declared, &mut found)?;
    }
    Ok(found)
}

fn visit(
    dir: std::os::fd::BorrowedFd<'_>,
    storage: &str,
    rel: &[u8],
    declared: &[Vec<u8>],
    found: &mut Vec<Stray>,
) -> Result<()> {
    let fail = |e: rustix::io::Errno| {
        Error::runtime(format!("cannot list {storage}/{}: {e}", escape(rel)))
    };
    let mut names: Vec<_> = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        if entry.file_name() != c"." && entry.file_name() != c".." {
            names.push(entry.file_name().to_owned());
        }
    }
    names.sort();
    for name in names {
        let mut p = rel.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name.to_bytes());
        if declared.iter().any(|d| is_within(&p, d)) {
            continue;
        }
        let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(fail)?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let on_the_way = declared.iter().any(|d| is_within(d, &p));
        let sub = || {
            rustix::fs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fail)
        };
        if on_the_way && is_dir {
            visit(sub()?.as_fd(), storage, &p, declared, found)?;
            continue;
        }
        let (mut entries, mut bytes) = (
            1u64,
            if is_dir {
                0
            } else {
                u64::try_from(st.st_size).unwrap_or(0)
            },
        );
        if is_dir {
            let d = sub()?;
            crate::walk::walk(d.as_fd(), b"", &mut |child| {
                entries += 1;
                if let Ok(s) = rustix::fs::statat(&d, child, AtFlags::SYMLINK_NOFOLLOW) {
                    if FileType::from_raw_mode(s.st_mode) == FileType::RegularFile {
                        bytes += u64::try_from(s.st_size).unwrap_or(0);
                    }
                }
            })
            .map_err(|e| Error::runtime(format!("cannot walk {storage}/{}: {e}", escape(&p))))?;
        }
        let mut path = storage.as_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(&p);
        found.push(Stray {
            path,
            entries,
            bytes,
        });
    }
    Ok(())
}

/// Prints the strays, largest first.
pub fn print_stray(strays: &[Stray], as_json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let mut sorted: Vec<&Stray> = strays.iter().collect();
    sorted.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    if as_json {
        let list: Vec<_> = sorted
            .iter()
            .map(|s| {
                let mut v = json!({"path": String::from_utf8_lossy(&s.path), "entries": s.entries, "bytes": s.bytes});
                if std::str::from_utf8(&s.path).is_err() {
                    if let Some(m) = v.as_object_mut() {
                        m.insert("path_bytes".into(), json!(s.path));
                    }
                }
                v
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &list)?;
        return writeln!(out);
    }
    if sorted.is_empty() {
        return writeln!(out, "no strays: every path in the storages is declared");
    }
    writeln!(
        out,
        "{:>8}  {:>7}  not declared by any entry",
        "size", "entries"
    )?;
    for s in sorted {
        writeln!(
            out,
            "{:>8}  {:>7}  {}",
            human_size(s.bytes),
            s.entries,
            escape(&s.path)
        )?;
    }
    Ok(())
}
