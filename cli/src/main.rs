//! `tabula`: see docs/cli.md.
#![warn(clippy::pedantic)]

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = tabula_cli::Env::from_process();
    let args = std::env::args_os().skip(1).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut err = std::io::stderr().lock();
    let mut exit = tabula_cli::run(args, &env, &mut out, &mut err);
    if let Err(e) = out.flush() {
        let _ = writeln!(err, "tabula: cannot write the output: {e}");
        if exit == tabula_cli::Exit::Ok {
            exit = tabula_cli::Exit::Failure;
        }
    }
    exit.into()
}
