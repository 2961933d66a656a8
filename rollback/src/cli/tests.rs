//! The command line and the kernel command line, parsed; `--check-config`.

use super::*;

fn args(list: &[&str]) -> Result<Command, UsageError> {
    parse_args(list.iter().map(OsString::from))
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "compared with what parse_args returns"
)]
fn run(config: &str, dry_run: bool) -> Result<Command, UsageError> {
    Ok(Command::Run {
        config: PathBuf::from(config),
        dry_run,
        prune_only: false,
    })
}

#[test]
fn arguments() {
    assert_eq!(args(&[]), run("/etc/tabula/config.json", false));
    assert_eq!(args(&["--dry-run"]), run("/etc/tabula/config.json", true));
    assert_eq!(args(&["--config", "/x.json"]), run("/x.json", false));
    assert_eq!(
        args(&["--dry-run", "--config=/x.json"]),
        run("/x.json", true)
    );
    assert_eq!(args(&["--config", "rel.json"]), run("rel.json", false));
    assert_eq!(args(&["--help"]), Ok(Command::Help));
    assert_eq!(args(&["--dry-run", "-h"]), Ok(Command::Help));
    assert_eq!(args(&["--version"]), Ok(Command::Version));
    assert_eq!(
        args(&["--prune-only", "--config", "/x.json"]),
        Ok(Command::Run {
            config: PathBuf::from("/x.json"),
            dry_run: false,
            prune_only: true,
        })
    );
    assert_eq!(
        args(&["--check-config", "/x.json"]),
        Ok(Command::CheckConfig {
            config: PathBuf::from("/x.json")
        })
    );
}

#[test]
fn check_config_takes_its_path_and_nothing_else() {
    for list in [
        &["--check-config"][..],
        &["--check-config", ""][..],
        &["--check-config", "a", "--check-config", "b"][..],
        &["--check-config", "a", "--dry-run"][..],
        &["--check-config", "a", "--prune-only"][..],
        &["--config", "a", "--check-config", "b"][..],
    ] {
        assert!(args(list).is_err(), "{list:?} must be refused");
    }
}

fn check(text: &str) -> (crate::Exit, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let mut err = Vec::new();
    let code = check_config(&path, &mut err);
    (code, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn check_config_exits_0_and_prints_nothing_for_a_valid_file() {
    let (code, err) = check(
        r#"{"version": 1, "rollback": [{"type": "btrfs", "device": "/dev/vda2",
            "subvolume": "@root", "oldRoots": "@old_roots"}],
            "persist": [{"storage": "/persist", "directories": ["/var/log"]}]}"#,
    );
    assert_eq!((code, err.as_str()), (crate::Exit::Ok, ""));
}

#[test]
fn check_config_prints_one_line_per_problem_and_exits_2() {
    let (code, err) = check(
        r#"{"version": 1, "persist": [{"storage": "/persist",
            "directories": ["var/log", "/ok", "/ok"]}]}"#,
    );
    assert_eq!(code, crate::Exit::Usage);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("persist[0].directories[0]"), "{err}");
    assert!(err.contains("persist[0].directories[2]"), "{err}");
    let (code, err) = check(
        r#"{"version": 1, "rollback": [{"type": "zfs",
        "dataset": "rpool/root", "oldRoots": null, "zfsCommand": "bin/zfs"}]}"#,
    );
    assert_eq!(code, crate::Exit::Usage);
    assert!(
        err.contains("rollback[0].zfsCommand") && err.contains("\"bin/zfs\""),
        "{err}"
    );
    let (code, err) = check("{");
    assert_eq!(
        (code, err.lines().count()),
        (crate::Exit::Usage, 1),
        "{err}"
    );
}

#[test]
fn argument_errors() {
    let unexpected = |a: &str| UsageError::Unexpected(a.into());
    for (list, want) in [
        (
            &["--config"][..],
            UsageError::MissingValue { option: "--config" },
        ),
        (&["--config="][..], UsageError::EmptyConfig),
        (
            &["--config", "a", "--config", "b"][..],
            UsageError::Twice { option: "--config" },
        ),
        (&["--dryrun"][..], unexpected("--dryrun")),
        (&["extra"][..], unexpected("extra")),
        (&["-c", "x"][..], unexpected("-c")),
    ] {
        assert_eq!(args(list), Err(want), "{list:?}");
    }
    // Shown quoted, with what to do.
    assert_eq!(
        unexpected("-c").to_string(),
        "unexpected argument \"-c\"; see --help"
    );
}

#[test]
fn kernel_command_line() {
    assert_eq!(parse_cmdline(""), Ok(Kernel::Normal));
    assert_eq!(
        parse_cmdline("BOOT_IMAGE=/x root=fstab quiet\n"),
        Ok(Kernel::Normal)
    );
    assert_eq!(parse_cmdline("quiet tabula.rollback=0"), Ok(Kernel::Skip));
    assert_eq!(parse_cmdline("tabula.rollback=off"), Ok(Kernel::Skip));
    assert_eq!(
        parse_cmdline("tabula.rollback=dry-run quiet"),
        Ok(Kernel::DryRun)
    );
    assert_eq!(
        parse_cmdline("tabula.rollback=0 tabula.rollback=1"),
        Ok(Kernel::Normal)
    );
    assert_eq!(parse_cmdline("tabula.rollback"), Ok(Kernel::Normal));
    // Quoted values, and look-alikes that are other parameters.
    assert_eq!(parse_cmdline("\"tabula.rollback=0\""), Ok(Kernel::Skip));
    assert_eq!(
        parse_cmdline("x=\"a tabula.rollback=0 b\" tabula.rollbacks=0 rd.tabula.rollback=0"),
        Ok(Kernel::Normal)
    );
    assert_eq!(
        parse_cmdline("tabula.rollback=dryrun"),
        Err(UsageError::KernelValue {
            value: "dryrun".into()
        })
    );
}
