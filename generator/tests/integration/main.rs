//! tabula-generator's integration tests, one test binary
//! (`cargo test -p tabula-generator --test integration`); one module per
//! part of the program, the helpers they share in `common`. Tests that need
//! root, loop devices or programs the machine may lack are `#[ignore]`d with
//! their need and skip visibly through `tabula_testkit::skip_unless`;
//! `dev/test.sh` runs them with `--include-ignored`.

#![warn(clippy::pedantic)]
#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario from setup to the last assertion"
)]
#![allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "unit-name suffixes (`.mount`) are case-sensitive in systemd"
)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a helper of a test that cannot set up must stop loudly, as the test itself may (clippy.toml allows it in #[test] functions only)"
)]

mod common;

mod apply;
mod cli;
mod escape_corpus;
mod golden;
mod injection;
mod prepare;
mod sources;
