//! What can go wrong in the generator and the prepare step, as types: tests
//! match the variants, people read the messages (each names the path or
//! value and says what to do).

use std::fmt;
use std::path::PathBuf;

use rustix::io::Errno;
use tabula_config::ConfigError;

/// Why the generator emits nothing at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateError {
    /// The configuration file cannot be used as a whole.
    Config(ConfigError),
    /// This program's own path cannot be written into `ExecStart=`.
    OwnPath { path: String, why: &'static str },
    /// The configuration file's path cannot be written into `SourcePath=`.
    ConfigPath { path: String, why: &'static str },
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateError::Config(e) => write!(f, "{e}"),
            GenerateError::OwnPath { path, why } => write!(
                f,
                "this program's own path {path:?} {why}; install tabula-generator at a plain absolute path"
            ),
            GenerateError::ConfigPath { path, why } => {
                write!(f, "the configuration path {path:?} {why}")
            }
        }
    }
}

impl std::error::Error for GenerateError {}

impl From<ConfigError> for GenerateError {
    fn from(e: ConfigError) -> Self {
        GenerateError::Config(e)
    }
}

/// Why one entry could not be prepared (it is then not mounted).
#[derive(Debug)]
pub enum PrepareError {
    /// A component of a persisted path is a symbolic link.
    Symlink { path: String },
    /// Expected a directory.
    NotADirectory { path: String },
    /// Expected a regular file.
    NotARegularFile { path: String },
    /// Something that must exist does not.
    Missing { path: String },
    /// A file linked elsewhere: changing its owner or mode would change the
    /// file at its other names too.
    HardLinked { path: String, links: u64 },
    /// The file was replaced between its check and its use.
    Changed { path: String },
    /// Where a symlinked file's link goes, something else is.
    Occupied { path: String, link: String },
    /// The storage cannot be opened.
    Storage {
        storage: String,
        cause: Box<PrepareError>,
    },
    /// A user name that the user database does not have.
    UnknownUser { name: String, passwd: PathBuf },
    /// A group name that the group database does not have.
    UnknownGroup { name: String, group: PathBuf },
    /// Creating a directory or a file failed.
    Create { path: String, errno: Errno },
    /// Setting an owner failed.
    Chown {
        path: String,
        uid: u32,
        gid: u32,
        errno: Errno,
    },
    /// Setting a mode failed.
    Chmod {
        path: String,
        mode: u32,
        errno: Errno,
    },
    /// Another system call on `path` failed.
    Os { path: String, errno: Errno },
    /// Writing a file (a new file's content, a marker) failed.
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An entry's own dataset or subvolume is not there as configured.
    Source { path: String, why: String },
    /// A path that is not below the directory it was resolved from (the
    /// plan guarantees it is; a bug if seen).
    NotUnder { path: String, base: String },
}

impl PrepareError {
    /// The error of a system call on `path`, said in words where one fits.
    #[must_use]
    pub fn os(errno: Errno, path: &str) -> PrepareError {
        let path = path.to_owned();
        match errno {
            Errno::LOOP => PrepareError::Symlink { path },
            Errno::NOTDIR => PrepareError::NotADirectory { path },
            Errno::NOENT => PrepareError::Missing { path },
            errno => PrepareError::Os { path, errno },
        }
    }
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::Symlink { path } => write!(
                f,
                "{path} is a symbolic link; tabula never follows symlinks in persisted paths, remove it"
            ),
            PrepareError::NotADirectory { path } => {
                write!(f, "{path} is not a directory; expected a directory")
            }
            PrepareError::NotARegularFile { path } => {
                write!(f, "{path} is not a regular file; expected a file")
            }
            PrepareError::Missing { path } => write!(f, "{path} does not exist"),
            PrepareError::HardLinked { path, links } => write!(
                f,
                "{path} has {links} hard links; tabula never changes the owner or mode of a file linked elsewhere (it would change the other names too): replace it by a copy of its own"
            ),
            PrepareError::Occupied { path, link } => write!(
                f,
                "{path} is not the symbolic link to {link} that the entry's method (\"symlink\" or \"auto\") puts or keeps there; move it away (into {link} if it is the data to keep)"
            ),
            PrepareError::Changed { path } => {
                write!(f, "{path} changed while it was being checked; run again")
            }
            PrepareError::Storage { storage, cause } => {
                write!(f, "the storage {storage}: {cause}; is it mounted?")
            }
            PrepareError::UnknownUser { name, passwd } => write!(
                f,
                "user {name:?} is not in {}; create it before tabula-prepare.service runs (it runs after systemd-sysusers.service and userborn.service), or give a numeric id",
                passwd.display()
            ),
            PrepareError::UnknownGroup { name, group } => write!(
                f,
                "group {name:?} is not in {}; create it before tabula-prepare.service runs, or give a numeric id",
                group.display()
            ),
            PrepareError::Create { path, errno } => write!(f, "cannot create {path}: {errno}"),
            PrepareError::Chown {
                path,
                uid,
                gid,
                errno,
            } => write!(f, "cannot set the owner of {path} to {uid}:{gid}: {errno}"),
            PrepareError::Chmod { path, mode, errno } => {
                write!(f, "cannot set the mode of {path} to {mode:04o}: {errno}")
            }
            PrepareError::Os { path, errno } => write!(f, "{path}: {errno}"),
            PrepareError::Write { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
            PrepareError::Source { path, why } => write!(f, "{path}: {why}"),
            PrepareError::NotUnder { path, base } => write!(f, "{path} is not a path under {base}"),
        }
    }
}

impl std::error::Error for PrepareError {}
