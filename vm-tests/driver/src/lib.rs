//! tabula's QEMU boot harness: real kernels, both initrd flavours, Btrfs and
//! ZFS, crash injection. See vm-tests/README.md.

pub mod demo;
pub mod env;
mod error;
pub mod harness;
pub mod image;
pub mod initrd;
pub mod qemu;
pub mod scenarios;
pub mod sh;
pub mod unit;

pub use env::Env;
pub use error::{Context, Error, Result};
