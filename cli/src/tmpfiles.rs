//! systemd-tmpfiles' configuration, read from the running system: the
//! paths `systemd-tmpfiles --create` makes at every boot (NixOS renders
//! `systemd.tmpfiles.rules` and the packages' `tmpfiles.d` files there, and
//! systemd's own `var.conf`, `tmp.conf`, `home.conf`, `systemd.conf` name
//! `/var/lib`, `/var/tmp`, `/var/lib/systemd`, ...). This is how `diff`
//! knows, without guessing by name, that such a path comes back.
//!
//! What is read, as systemd-tmpfiles reads it (tmpfiles.d(5)): the `*.conf`
//! files of `/etc/tmpfiles.d`, `/run/tmpfiles.d`, `/usr/local/lib/tmpfiles.d`
//! and `/usr/lib/tmpfiles.d`, a name in an earlier directory hiding the same
//! name in a later one, a link to `/dev/null` masking it; absolute symlinks
//! (NixOS links `/etc/tmpfiles.d/*.conf` into `/etc/static` and the store)
//! resolved inside the root. Only lines that create something count:
//! `f F d D v q Q p L c b C`; a line whose path has a specifier (`%h`), a
//! glob, an escape or quotes is skipped (what it names depends on the
//! user or the moment); for each path the first line in file-name order
//! wins, as systemd-tmpfiles does. `systemd-tmpfiles` makes the missing
//! parents of every path it creates, so they come back too.
//!
//! A configuration file that is itself on the ephemeral root and lost (a
//! file written there by hand) does not come back, so its lines are not
//! taken, and it hides nothing: the caller says which files survive.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::diff::Kind;

/// Where systemd-tmpfiles reads its configuration, relative to the root,
/// first wins.
pub const DIRS: &[&str] = &[
    "etc/tmpfiles.d",
    "run/tmpfiles.d",
    "usr/local/lib/tmpfiles.d",
    "usr/lib/tmpfiles.d",
];

/// What a line makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Makes {
    /// An entry of this kind.
    One(Kind),
    /// A copy (`C`) of whatever its source is.
    Copy,
}

/// One line that creates a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub makes: Makes,
    /// The configuration file, absolute, as named in its directory.
    pub file: String,
    /// The line, its fields separated by one space.
    pub line: String,
}

/// The creating lines of the running system, by path (relative to the
/// root, no leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmpfiles {
    rules: BTreeMap<Vec<u8>, Rule>,
}

/// What a line type makes, `None` when it makes nothing (it adjusts,
/// cleans or removes).
fn creates(letter: u8) -> Option<Makes> {
    Some(Makes::One(match letter {
        b'f' | b'F' => Kind::File,
        b'd' | b'D' | b'v' | b'q' | b'Q' => Kind::Directory,
        b'p' => Kind::Fifo,
        b'L' => Kind::Symlink,
        b'c' => Kind::CharDevice,
        b'b' => Kind::BlockDevice,
        b'C' => return Some(Makes::Copy),
        _ => return None,
    }))
}

/// A line's path, relative and normalised, or `None` when tabula cannot
/// know what it names (specifiers, globs, escapes, quotes, `.`, `..`).
fn plain_path(field: &str) -> Option<Vec<u8>> {
    let rest = field.strip_prefix('/')?;
    if field
        .bytes()
        .any(|b| matches!(b, b'%' | b'*' | b'?' | b'[' | b'\\' | b'"' | b'\''))
    {
        return None;
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    Some(parts.join("/").into_bytes())
}

impl Tmpfiles {
    /// Adds the creating lines of one configuration file (`file`, its
    /// absolute name) unless a path already has a line.
    pub fn add(&mut self, file: &str, text: &str) {
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(ty), Some(path)) = (fields.next(), fields.next()) else {
                continue;
            };
            // The type letter, then modifiers (`+ ! - = ~ ^ $`).
            let mut ty = ty.bytes();
            let Some(letter) = ty.next() else { continue };
            if ty.any(|b| b.is_ascii_alphanumeric()) {
                continue;
            }
            let (Some(makes), Some(rel)) = (creates(letter), plain_path(path)) else {
                continue;
            };
            self.rules.entry(rel).or_insert_with(|| Rule {
                makes,
                file: file.to_owned(),
                line: line.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
    }

    /// Reads the configuration of the running system whose root is `root`
    /// (the mounted view: `/usr`, `/run` and the store are other
    /// filesystems). `survives` says whether a configuration file, by its
    /// path relative to the root (as named in its directory), is still
    /// there at the next boot.
    pub fn read(root: BorrowedFd<'_>, survives: &dyn Fn(&[u8]) -> bool) -> Tmpfiles {
        let mut files: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in DIRS {
            let Ok(fd) = open_in_root(root, dir.as_bytes(), true) else {
                continue;
            };
            let Ok(list) = rustix::fs::Dir::read_from(&fd) else {
                continue;
            };
            let mut names: Vec<String> = list
                .flatten()
                .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
                .filter(|n| {
                    !n.starts_with('.')
                        && std::path::Path::new(n)
                            .extension()
                            .is_some_and(|e| e == "conf")
                })
                .collect();
            names.sort();
            for name in names {
                let rel = format!("{dir}/{name}");
                // A file that is gone at the next boot hides nothing then;
                // one that stays hides the same name in later directories
                // (a link to /dev/null only that).
                if seen.contains(&name) || !survives(rel.as_bytes()) {
                    continue;
                }
                seen.insert(name.clone());
                let masked = rustix::fs::readlinkat(&fd, name.as_str(), Vec::new())
                    .is_ok_and(|t| t.to_bytes() == b"/dev/null");
                if masked {
                    continue;
                }
                let Ok(file) = open_in_root(root, rel.as_bytes(), false) else {
                    continue;
                };
                let mut text = Vec::new();
                let mut file = std::fs::File::from(file);
                if std::io::Read::read_to_end(&mut file, &mut text).is_ok() {
                    files.insert(name, (format!("/{rel}"), text));
                }
            }
        }
        let mut t = Tmpfiles::default();
        for (file, text) in files.values() {
            t.add(file, &String::from_utf8_lossy(text));
        }
        t
    }

    /// The line that makes `rel` as a `kind`, if any.
    pub fn makes(&self, rel: &[u8], kind: Kind) -> Option<&Rule> {
        self.rules
            .get(rel)
            .filter(|r| r.makes == Makes::Copy || r.makes == Makes::One(kind))
    }

    /// A line that makes a path strictly under `rel` (so `rel` is made as
    /// its parent), if any: its path and the line.
    pub fn under(&self, rel: &[u8]) -> Option<(&[u8], &Rule)> {
        let mut start = rel.to_vec();
        start.push(b'/');
        self.rules
            .range(start.clone()..)
            .next()
            .filter(|(p, _)| p.starts_with(&start))
            .map(|(p, r)| (p.as_slice(), r))
    }
}

/// Opens `rel` under `root` as the running system resolves it, absolute
/// symlinks included, but never out of `root`.
fn open_in_root(
    root: BorrowedFd<'_>,
    rel: &[u8],
    directory: bool,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_that_create_a_plain_path_count_and_the_first_one_wins() {
        let mut t = Tmpfiles::default();
        t.add(
            "/usr/lib/tmpfiles.d/a.conf",
            "# comment\n\
             d /var/lib/systemd 0755 root root -\n\
             d! /run/boot-only\n\
             L+ /etc/mtab - - - - ../proc/self/mounts\n\
             f /var//log/wtmp/   0664 root\tutmp -\n\
             C /etc/skel - - - -\n\
             z /var/log/journal 2755 root systemd-journal - -\n\
             d /home/%u/x\n\
             d /srv/*\n\
             d \"/quoted path\"\n\
             d /var/../etc\n\
             Dz /bad/type\n\
             x\n",
        );
        t.add("/etc/tmpfiles.d/b.conf", "f /var/lib/systemd\n");
        assert_eq!(
            t.makes(b"var/lib/systemd", Kind::Directory)
                .map(|r| r.line.as_str()),
            Some("d /var/lib/systemd 0755 root root -")
        );
        assert!(t.makes(b"var/lib/systemd", Kind::File).is_none());
        assert!(t.makes(b"run/boot-only", Kind::Directory).is_some());
        assert!(t.makes(b"etc/mtab", Kind::Symlink).is_some());
        assert_eq!(
            t.makes(b"var/log/wtmp", Kind::File)
                .map(|r| r.line.as_str()),
            Some("f /var//log/wtmp/ 0664 root utmp -")
        );
        assert!(t.makes(b"etc/skel", Kind::Directory).is_some());
        assert!(t.makes(b"etc/skel", Kind::File).is_some());
        // The comment, the adjusting `z`, the specifier, the glob, the
        // quotes, the `..`, the unknown type and the short line: nothing.
        assert_eq!(t.rules.len(), 5, "{:?}", t.rules.keys());
        assert_eq!(
            t.under(b"var").map(|(p, _)| p.to_vec()),
            Some(b"var/lib/systemd".to_vec())
        );
        assert!(t.under(b"var/lib/systemd").is_none());
        assert!(t.under(b"va").is_none());
    }
}
