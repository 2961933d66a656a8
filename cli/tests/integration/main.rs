//! The `tabula` command's integration tests, in one binary: `diff` on
//! real Btrfs and tmpfs roots against a planted truth ([`diff`], with the
//! checks of every output form in [`diff_check`]), `roots` ([`roots`]),
//! `restore`, `adopt` and `stray` ([`copies`]), and the ZFS side against a
//! fake `zfs` ([`zfs`]). [`common`] holds the shared set-up: loop devices,
//! mounts undone on drop, running the binary.
//!
//! The tests that need root and loop devices are `#[ignore]`d with the
//! reason and start with `tabula_testkit::skip_unless`; `dev/test.sh` runs
//! them.
#![warn(clippy::pedantic)]
// Set-up that cannot happen is a broken test machine: it stops loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod copies;
mod diff;
mod diff_check;
mod roots;
mod zfs;
