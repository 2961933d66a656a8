//! The integration tests of `tabula-rollback`, one test binary: the Btrfs
//! rotation and pruning on real filesystems (loop devices; needs root), and
//! crash safety by fault injection. `cargo test -p tabula-rollback --test
//! btrfs [module::]` runs them; `common` is what they share.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]

mod clocks;
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a set-up that fails stops the test loudly"
)]
mod common;
#[cfg(feature = "fault-injection")]
#[allow(
    clippy::unwrap_used,
    reason = "its fixture and runs are test support: a set-up that fails stops the test loudly"
)]
mod faults;
mod prune;
mod recovery;
mod refusals;
mod rotation;
mod runs;

#[cfg(not(feature = "fault-injection"))]
#[test]
fn fault_injection() {
    eprintln!(
        "\n!!!!! SKIPPED fault_injection: built without the `fault-injection` feature \
         (run `cargo test --features tabula-rollback/fault-injection`, as dev/test.sh does) !!!!!\n"
    );
}
