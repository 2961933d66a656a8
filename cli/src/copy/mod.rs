//! Copying a file or a tree with its owner, mode, timestamps and extended
//! attributes, through file descriptors: no symlink is ever followed (a
//! symlink is copied as a symlink), nothing outside the two trees is
//! touched, and nothing existing is overwritten unless asked.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::output::escape;
use crate::{Error, Result};

mod meta;
mod open;

use meta::{copy_xattrs, kind_name, times};
pub use open::open_parent;

/// How to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches, each set by one command-line flag or the terminal"
)]
pub struct Options {
    /// Print what would be copied; change nothing.
    pub dry_run: bool,
    /// Replace what exists at the destination.
    pub force: bool,
    /// Do not descend into other filesystems (mount points) of the source.
    pub one_filesystem: bool,
    /// Show progress on stderr.
    pub progress: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    /// Not copied, with why (sockets, other filesystems).
    pub skipped: Vec<String>,
}

/// Copies `src_dir/src_name` to `dst_dir/dst_name`; `shown` names the
/// destination in messages.
pub fn copy(
    src_dir: BorrowedFd<'_>,
    src_name: &CStr,
    dst: Option<(BorrowedFd<'_>, &CStr)>,
    shown: &[u8],
    opts: Options,
    out: &mut dyn Write,
) -> Result<Stats> {
    // No destination directory yet: only a dry run gets here.
    let (dst_dir, dst_name, dst_missing) = match dst {
        Some((d, n)) => (d, n, false),
        None if opts.dry_run => (src_dir, src_name, true),
        None => {
            return Err(Error::runtime(format!(
                "the directory of {} is missing",
                escape(shown)
            )));
        }
    };
    let mut c = Copier {
        opts,
        stats: Stats::default(),
        links: HashMap::new(),
        out,
        dev: None,
        dst_missing,
    };
    let st = rustix::fs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::runtime(format!("cannot read the source {}: {e}", escape(shown))))?;
    c.dev = Some(st.st_dev);
    c.entry(src_dir, src_name, dst_dir, dst_name, shown, &st)?;
    if opts.progress {
        let _ = writeln!(std::io::stderr());
    }
    Ok(c.stats)
}

struct Copier<'a> {
    opts: Options,
    stats: Stats,
    /// Hard links: (device, inode) of the source → destination path.
    links: HashMap<(u64, u64), (OwnedFd, CString)>,
    out: &'a mut dyn Write,
    dev: Option<u64>,
    /// Dry run into a directory that does not exist yet: nothing there.
    dst_missing: bool,
}

fn fail(what: &str, path: &[u8], e: Errno) -> Error {
    Error::runtime(format!("cannot {what} {}: {e}", escape(path)))
}

impl Copier<'_> {
    #[allow(
        clippy::too_many_lines,
        reason = "one match over the kinds of entry, each arm a few lines; split, each part would need the whole copier"
    )]
    fn entry(
        &mut self,
        sd: BorrowedFd<'_>,
        sn: &CStr,
        dd: BorrowedFd<'_>,
        dn: &CStr,
        shown: &[u8],
        st: &Stat,
    ) -> Result<()> {
        let kind = FileType::from_raw_mode(st.st_mode);
        if self.opts.one_filesystem && Some(st.st_dev) != self.dev {
            self.stats
                .skipped
                .push(format!("{} (another filesystem)", escape(shown)));
            return Ok(());
        }
        if kind == FileType::Socket {
            self.stats.skipped.push(format!(
                "{} (a socket: its program makes it again)",
                escape(shown)
            ));
            return Ok(());
        }
        // What exists at the destination.
        let existing = if self.dst_missing {
            Err(Errno::NOENT)
        } else {
            rustix::fs::statat(dd, dn, AtFlags::SYMLINK_NOFOLLOW)
        };
        match existing {
            Ok(existing) => {
                let both_dirs = kind == FileType::Directory
                    && FileType::from_raw_mode(existing.st_mode) == FileType::Directory;
                if !self.opts.force {
                    return Err(Error::runtime(format!(
                        "{} exists; tabula does not overwrite: move it away, or add --force to replace it",
                        escape(shown)
                    )));
                }
                if !both_dirs && !self.opts.dry_run {
                    let flags = if FileType::from_raw_mode(existing.st_mode) == FileType::Directory
                    {
                        AtFlags::REMOVEDIR
                    } else {
                        AtFlags::empty()
                    };
                    rustix::fs::unlinkat(dd, dn, flags).map_err(|e| fail("replace", shown, e))?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(fail("look at", shown, e)),
        }
        self.stats.entries += 1;
        if self.opts.dry_run {
            writeln!(self.out, "would copy {} {}", kind_name(kind), escape(shown))
                .map_err(|e| Error::runtime(e.to_string()))?;
        }
        if kind != FileType::Directory && st.st_nlink > 1 {
            if let Some((ldir, lname)) = self.links.get(&(st.st_dev, st.st_ino)) {
                if !self.opts.dry_run {
                    rustix::fs::linkat(ldir, lname.as_c_str(), dd, dn, AtFlags::empty())
                        .map_err(|e| fail("link", shown, e))?;
                }
                return Ok(());
            }
        }
        if self.opts.dry_run {
            match kind {
                FileType::Directory => {
                    self.children(sd, sn, None, shown)?;
                }
                FileType::RegularFile => {
                    self.stats.bytes += u64::try_from(st.st_size).unwrap_or(0);
                    if st.st_nlink > 1 {
                        // Later names of this file are links, as in a real copy.
                        let again = rustix::io::dup(sd).map_err(|e| fail("remember", shown, e))?;
                        self.links
                            .insert((st.st_dev, st.st_ino), (again, sn.to_owned()));
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let owner = (
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match kind {
            FileType::Directory => {
                rustix::fs::mkdirat(dd, dn, Mode::from_raw_mode(0o700))
                    .or_else(|e| if e == Errno::EXIST { Ok(()) } else { Err(e) })
                    .map_err(|e| fail("make", shown, e))?;
                let dst = rustix::fs::openat(
                    dd,
                    dn,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail("open", shown, e))?;
                let src = self.children(sd, sn, Some(dst.as_fd()), shown)?;
                Self::finish(src.as_fd(), dst.as_fd(), owner, mode, st, shown)?;
            }
            FileType::RegularFile => {
                let src = rustix::fs::openat(
                    sd,
                    sn,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail("read", shown, e))?;
                let dst = rustix::fs::openat(
                    dd,
                    dn,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| fail("create", shown, e))?;
                let mut from = std::fs::File::from(src);
                let mut to = std::fs::File::from(dst);
                let n = std::io::copy(&mut from, &mut to)
                    .map_err(|e| Error::runtime(format!("cannot copy {}: {e}", escape(shown))))?;
                self.stats.bytes += n;
                if self.opts.progress {
                    eprint!(
                        "\rcopied {} entries, {}",
                        self.stats.entries,
                        crate::output::human_size(self.stats.bytes)
                    );
                }
                Self::finish(from.as_fd(), to.as_fd(), owner, mode, st, shown)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(sd, sn, Vec::new())
                    .map_err(|e| fail("read the symlink", shown, e))?;
                rustix::fs::symlinkat(target.as_c_str(), dd, dn)
                    .map_err(|e| fail("make the symlink", shown, e))?;
                rustix::fs::chownat(dd, dn, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fail("chown", shown, e))?;
                rustix::fs::utimensat(dd, dn, &times(st), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fail("set the times of", shown, e))?;
            }
            _ => {
                let file_type = kind;
                rustix::fs::mknodat(dd, dn, file_type, mode, st.st_rdev)
                    .map_err(|e| fail("make", shown, e))?;
                rustix::fs::chownat(dd, dn, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fail("chown", shown, e))?;
                rustix::fs::chmodat(dd, dn, mode, AtFlags::empty())
                    .map_err(|e| fail("chmod", shown, e))?;
                rustix::fs::utimensat(dd, dn, &times(st), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fail("set the times of", shown, e))?;
            }
        }
        if kind != FileType::Directory && st.st_nlink > 1 {
            let dir = rustix::io::dup(dd).map_err(|e| fail("remember", shown, e))?;
            self.links
                .insert((st.st_dev, st.st_ino), (dir, dn.to_owned()));
        }
        Ok(())
    }

    /// Copies what the directory `sd/sn` holds into `dst` (`None`: dry run);
    /// returns the open source directory.
    fn children(
        &mut self,
        sd: BorrowedFd<'_>,
        sn: &CStr,
        dst: Option<BorrowedFd<'_>>,
        shown: &[u8],
    ) -> Result<OwnedFd> {
        let src = rustix::fs::openat(
            sd,
            sn,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open", shown, e))?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&src).map_err(|e| fail("list", shown, e))? {
            let entry = entry.map_err(|e| fail("list", shown, e))?;
            let name = entry.file_name();
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        names.sort();
        for name in names {
            let mut path = shown.to_vec();
            path.push(b'/');
            path.extend_from_slice(name.to_bytes());
            let st = rustix::fs::statat(&src, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| fail("read", &path, e))?;
            let dst = match dst {
                Some(d) => d,
                None => src.as_fd(), // dry run: never written
            };
            self.entry(src.as_fd(), &name, dst, &name, &path, &st)?;
        }
        Ok(src)
    }

    /// Owner, mode, extended attributes and times, in that order (a chown
    /// clears set-id bits; writing the times last keeps them).
    fn finish(
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        owner: (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>),
        mode: Mode,
        st: &Stat,
        shown: &[u8],
    ) -> Result<()> {
        rustix::fs::fchown(dst, owner.0, owner.1).map_err(|e| fail("chown", shown, e))?;
        rustix::fs::fchmod(dst, mode).map_err(|e| fail("chmod", shown, e))?;
        copy_xattrs(src, dst).map_err(|e| fail("copy the extended attributes of", shown, e))?;
        rustix::fs::futimens(dst, &times(st)).map_err(|e| fail("set the times of", shown, e))
    }
}
