//! Checks configuration files against the contract, as the binaries would:
//! `cargo run -q -p tabula-config --example check -- FILE...`. Prints one line
//! per file, exits 2 if any is refused. The NixOS module's tests feed it every
//! config.json the module renders (nixos-module/tests/run.sh).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut refused = false;
    for arg in std::env::args_os().skip(1) {
        let file = Path::new(&arg);
        match tabula_config::load(file) {
            Ok(_) => println!("ok: {}", file.display()),
            Err(e) => {
                eprintln!("refused: {e}");
                refused = true;
            }
        }
    }
    if refused {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
