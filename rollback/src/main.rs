//! `tabula-rollback [--config PATH] [--dry-run]`: see `docs/rollback.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let env = match tabula_rollback::Env::from_process() {
        Ok(env) => env,
        Err(message) => {
            eprintln!("tabula-rollback: {message}");
            return ExitCode::from(tabula_rollback::EXIT_USAGE);
        }
    };
    ExitCode::from(tabula_rollback::run(std::env::args_os().skip(1), &env))
}
