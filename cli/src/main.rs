//! `tabula`: see docs/cli.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    let env = tabula_cli::Env::from_process();
    let args = std::env::args_os().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    ExitCode::from(tabula_cli::run(args, &env, &mut out, &mut err))
}
