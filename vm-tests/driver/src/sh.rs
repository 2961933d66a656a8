//! Running host commands with argument vectors and useful errors.

use crate::{Context, Result, bail};
use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// Run `prog args...`, return its stdout; on failure the error names the
/// command line, the exit status and stderr.
pub fn run<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ctx(format!(
            "cannot run {prog} (is it installed? run vm-tests/setup.sh)"
        ))?;
    if !out.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                // A script argument: its first line is enough to name it.
                let a = a.as_ref().to_string_lossy();
                match a.split_once('\n') {
                    Some((first, _)) => format!("{first} ..."),
                    None => a.into_owned(),
                }
            })
            .collect();
        bail!(
            "`{prog} {}` failed ({}): {}",
            shown.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a bash snippet with `set -euo pipefail`; positional parameters $1...
/// are `args` (never interpolated into the script text).
pub fn bash<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Result<String> {
    let full = format!("set -euo pipefail\n{script}");
    let mut bash_args: Vec<&OsStr> = vec![OsStr::new("-c"), OsStr::new(&full), OsStr::new("bash")];
    bash_args.extend(args.iter().map(AsRef::as_ref));
    run("bash", &bash_args)
}
