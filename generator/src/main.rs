//! `tabula-generator`: see `tabula-generator --help` and `docs/generator.md`.

#![warn(clippy::pedantic)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // args_os: a path that is not UTF-8 must not panic.
    let env = tabula_generator::Env::from_process();
    tabula_generator::run(std::env::args_os().skip(1), &env).into()
}
