//! The JSON configuration contract between tabula's NixOS module and its
//! binaries, version 1. `docs/config.md` documents every key; this crate is
//! the one implementation of it.
//!
//! [`parse`] checks the whole file: syntax, the version, unknown keys, types,
//! and every rollback field; an error there makes the file unusable.
//! [`entries::check_entries`] checks each persisted entry and overlay on its
//! own and against the others, and returns the accepted ones with the
//! problems of the rest (the generator emits the accepted ones).
//! [`check_file`] runs both: everything the file alone decides.

// Pedantic lints, with the ones this crate does not follow named and why.
#![warn(clippy::pedantic)]
#![allow(
    clippy::missing_errors_doc,
    reason = "every check returns Err(a sentence saying what is wrong and what is expected), as the module docs state; an `# Errors` section on each would repeat that"
)]

mod document;
mod dup;
pub mod entries;
mod error;
mod id_and_mode;
pub mod names;
pub mod old_root;
mod persist;
pub mod sources;
mod targets;

pub use document::{Config, check_file, load, parse};
pub use error::ConfigError;
pub use id_and_mode::{Id, Mode};
pub use names::NEW_ROOT_SUFFIX;
pub use persist::{Entry, EntryObject, Method, Overlay, Ownership, ParentDirectory, Persist, User};
pub use targets::{BtrfsTarget, Keep, RollbackTarget, ZfsTarget};

/// Where the NixOS module puts the file, in the initrd and in stage 2.
pub const DEFAULT_PATH: &str = "/etc/tabula/config.json";

/// The only version this build understands.
pub const VERSION: u64 = 1;

#[cfg(test)]
mod tests;
