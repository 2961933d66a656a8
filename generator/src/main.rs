//! `tabula-generator NORMAL_DIR [EARLY_DIR LATE_DIR]`: the systemd generator.
//! `tabula-generator prepare [--initrd]`: the prepare step, run by the
//! `tabula-prepare.service` the generator emits.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use tabula_generator::{Environment, config_path, initrd_release_path, own_path};
use tabula_runtime::log::{KMSG, Target};

fn main() -> ExitCode {
    // args_os: a path that is not UTF-8 must not panic.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let status = if args.first().is_some_and(|a| a == "prepare") {
        tabula_runtime::log::init("tabula-prepare", Target::Stderr);
        let rest: Vec<String> = args[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        match rest.as_slice() {
            [] => tabula_generator::prepare::run(
                &config_path(),
                tabula_generator::Stage::System,
                &tabula_generator::prepare::Options::system(),
            ),
            [flag] if flag == "--initrd" => tabula_generator::prepare::run(
                &config_path(),
                tabula_generator::Stage::Initrd,
                &tabula_generator::prepare::Options::system(),
            ),
            _ => {
                log::error!("usage: tabula-generator prepare [--initrd]");
                tabula_generator::Exit::Usage
            }
        }
    } else {
        // `TABULA_LOG=stderr`: lines to stderr only (tests, by hand).
        let target = if std::env::var_os("TABULA_LOG").is_some_and(|v| v == "stderr") {
            Target::Stderr
        } else {
            Target::Kmsg(KMSG.into())
        };
        tabula_runtime::log::init("tabula-generator", target);
        let config = config_path();
        let env = Environment {
            source_path: config.to_string_lossy().into_owned(),
            config,
            initrd_release: initrd_release_path(),
            exe: own_path(),
        };
        let dirs: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
        tabula_generator::run_generator(&dirs, &env)
    };
    status.into()
}
