//! `tabula-rollback [--config PATH] [--dry-run]`: see `docs/rollback.md`.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]

use std::process::ExitCode;

use tabula_rollback::Exit;

fn main() -> ExitCode {
    let env = match tabula_rollback::Env::from_process() {
        Ok(env) => env,
        Err(message) => {
            eprintln!("tabula-rollback: {message}");
            return Exit::Usage.into();
        }
    };
    tabula_rollback::run(std::env::args_os().skip(1), &env).into()
}
