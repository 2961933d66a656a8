//! tabula's QEMU boot harness: real kernels, both initrd flavours, Btrfs and
//! ZFS, crash injection. See vm-tests/README.md.

// Pedantic lints, with the ones this crate does not follow named and why.
#![warn(clippy::pedantic)]
#![allow(
    clippy::missing_errors_doc,
    reason = "a test harness: every fallible step returns `Error`, a sentence naming the command, path or guest line that failed; an `# Errors` section on each would repeat that"
)]
#![allow(
    clippy::must_use_candidate,
    reason = "a test harness, not a library for others: its callers are the scenarios in this crate, and an unused result there is caught by review, not by the type"
)]

pub mod demo;
pub mod env;
mod error;
pub mod harness;
pub mod image;
pub mod initrd;
pub mod qemu;
#[allow(
    clippy::too_many_lines,
    reason = "a scenario is one sequential story of boots and checks, read top to bottom; cutting it into helpers would hide the order that is the point (and `all` is the table of them)"
)]
pub mod scenarios;
pub mod sh;
pub mod unit;

pub use env::Env;
pub use error::{Context, Error, Result};
