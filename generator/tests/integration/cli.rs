//! The binary as systemd runs it: arguments, exit codes, one line per
//! problem, nothing emitted for an unusable configuration, the rest emitted
//! around rejected entries, initrd detection.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary as systemd would, with `config` as its configuration
/// under a temporary root (no `/dev/kmsg` there: lines go to stderr).
fn run(config: &str, dirs: &[&Path], initrd: bool) -> io::Result<(Output, tempfile::TempDir)> {
    let root = tempfile::tempdir()?;
    fs::create_dir_all(root.path().join("etc/tabula"))?;
    fs::write(root.path().join("etc/tabula/config.json"), config)?;
    if initrd {
        fs::write(root.path().join("etc/initrd-release"), "ID=nixos\n")?;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tabula-generator"))
        .args(dirs)
        .env(tabula_generator::ROOT_VARIABLE, root.path())
        .output()?;
    Ok((out, root))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const GOOD: &str = r#"{"version":1,"persist":[{"storage":"/persist","directories":["/var/log"],
  "files":[{"path":"/etc/machine-id","inInitrd":true}]}]}"#;

#[test]
fn one_or_three_directories() -> io::Result<()> {
    let out = tempfile::tempdir()?;
    let (o, _t) = run(GOOD, &[out.path()], false)?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(listing(out.path()).contains(&"var-log.mount".to_owned()));
    let (a, b, c) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let (o, _t) = run(GOOD, &[a.path(), b.path(), c.path()], false)?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(listing(a.path()).contains(&"var-log.mount".to_owned()));
    assert!(listing(b.path()).is_empty() && listing(c.path()).is_empty());
    let (o, _t) = run(GOOD, &[a.path(), b.path()], false)?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("one or three"), "{}", stderr(&o));
    let (o, _t) = run(GOOD, &[Path::new("relative")], false)?;
    assert_eq!(o.status.code(), Some(2));
    Ok(())
}

#[test]
fn unusable_configuration_emits_nothing() -> io::Result<()> {
    for (config, needle) in [
        ("{ not json", "is not valid JSON"),
        (r#"{"version":2}"#, "understands only version 1"),
        (
            r#"{"version":2,"version":1}"#,
            "version: the key \"version\" appears twice",
        ),
        (
            r#"{"version":1,"persist":[{"storage":"/p","directorys":[]}]}"#,
            "unknown field",
        ),
    ] {
        let out = tempfile::tempdir()?;
        let (o, _t) = run(config, &[out.path()], false)?;
        assert_eq!(o.status.code(), Some(2), "{config}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line expected: {err}");
        assert!(err.contains(needle) && err.contains("config.json"), "{err}");
        assert!(
            listing(out.path()).is_empty(),
            "something emitted for {config}"
        );
    }
    Ok(())
}

#[test]
fn rejected_entries_are_named_and_the_rest_is_emitted() -> io::Result<()> {
    let config = r#"{"version":1,"persist":[{"storage":"/persist",
      "directories":["/var/log","var/rel","/var/log",{"path":"/var/log/sub","inInitrd":true},"/persist/x","/a/../b","/c\u0007"],
      "files":["/var/log"]}]}"#;
    let out = tempfile::tempdir()?;
    let (o, _t) = run(config, &[out.path()], false)?;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for needle in [
        r#"directories[1] ("var/rel"): is not absolute"#,
        r#"directories[2] ("/var/log"): is listed twice"#,
        r#"directories[3] ("/var/log/sub"): has inInitrd but is inside "/var/log""#,
        r#"directories[4] ("/persist/x"): is inside the storage"#,
        r#"directories[5] ("/a/../b"): has a `..` component"#,
        r#"directories[6] ("/c\u{7}"): contains the control character"#,
        r#"files[0] ("/var/log"): is listed as a file and"#,
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    assert_eq!(
        listing(out.path()),
        [
            "local-fs.target.d",
            "tabula-prepare.service",
            "var-log.mount"
        ]
    );
    Ok(())
}

#[test]
fn initrd_emits_only_in_initrd_entries_under_sysroot() -> io::Result<()> {
    let out = tempfile::tempdir()?;
    let (o, _t) = run(GOOD, &[out.path()], true)?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        listing(out.path()),
        [
            "initrd-fs.target.d",
            "sysroot-etc-machine\\x2did.mount",
            "tabula-prepare-initrd.service"
        ]
    );
    Ok(())
}

#[test]
fn machine_id_outside_the_initrd_is_warned_about() -> io::Result<()> {
    let out = tempfile::tempdir()?;
    let (o, _t) = run(
        r#"{"version":1,"persist":[{"storage":"/persist","files":["/etc/machine-id"]}]}"#,
        &[out.path()],
        false,
    )?;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o)
            .contains(r#"persist[0].files[0]: /etc/machine-id is persisted without "inInitrd": true, so it is bind-mounted after systemd has read it"#),
        "{}",
        stderr(&o)
    );
    Ok(())
}

#[test]
fn a_program_path_that_a_unit_cannot_hold_emits_nothing() -> io::Result<()> {
    let root = tempfile::tempdir()?;
    fs::create_dir_all(root.path().join("etc/tabula")).expect("mkdir");
    fs::write(root.path().join("etc/tabula/config.json"), GOOD).expect("write");
    for exe in [
        "relative/tabula-generator",
        "/nix/store/x\ny/tabula-generator",
    ] {
        let env = tabula_generator::Env {
            root: root.path().to_owned(),
            exe: exe.to_owned(),
        };
        let result = tabula_generator::generate(&env);
        assert!(
            matches!(&result, Err(tabula_generator::GenerateError::OwnPath { path, .. }) if path == exe),
            "{exe:?}: {result:?}"
        );
    }
    Ok(())
}

/// `tabula-generator --check-config PATH` in `cwd`, under a root whose
/// kernel log is a plain file, so that a line written there is seen.
fn check_config(config: Option<&str>) -> io::Result<(Output, tempfile::TempDir)> {
    let root = tempfile::tempdir()?;
    fs::create_dir_all(root.path().join("dev"))?;
    fs::write(root.path().join("dev/kmsg"), "")?;
    let path = root.path().join("candidate.json");
    if let Some(text) = config {
        fs::write(&path, text)?;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tabula-generator"))
        .arg("--check-config")
        .arg(&path)
        .current_dir(root.path())
        .env(tabula_generator::ROOT_VARIABLE, root.path())
        .output()?;
    Ok((out, root))
}

/// Every file under `dir` with its content.
fn contents(dir: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs::read(&p)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn check_config_accepts_a_valid_file_silently_and_touches_nothing() -> io::Result<()> {
    let (o, root) = check_config(Some(GOOD))?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!((stderr(&o).as_str(), o.stdout.as_slice()), ("", &b""[..]));
    // Only what the test put there: no unit, no kernel log line.
    assert_eq!(
        contents(root.path())?,
        [
            (
                root.path().join("candidate.json").display().to_string(),
                GOOD.as_bytes().to_vec()
            ),
            (root.path().join("dev/kmsg").display().to_string(), vec![]),
        ]
    );
    Ok(())
}

#[test]
fn check_config_prints_one_line_per_problem_and_exits_2() -> io::Result<()> {
    let config = r#"{"version":1,"persist":[{"storage":"/persist",
      "directories":["/var/log","var/rel","/var/log","/c\u0007"],
      "files":["/etc/machine-id"]}],
      "overlays":[{"where":"/nix/store","lower":[],"upper":"/u","work":"/w"}]}"#;
    let (o, root) = check_config(Some(config))?;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for (line, field) in lines.iter().zip([
        "persist[0].directories[1]",
        "persist[0].directories[3]",
        "persist[0].directories[2]",
        "overlays[0].lower",
    ]) {
        assert!(
            line.starts_with("tabula-generator: ")
                && line.contains("candidate.json: ")
                && line.contains(field),
            "{field} expected in {line}"
        );
    }
    assert_eq!(
        fs::read(root.path().join("dev/kmsg")).expect("read"),
        b"",
        "the check wrote to the kernel log"
    );
    // A file that is not a configuration, and no file: one line each.
    for config in [Some("{ not json"), Some(r#"{"version":2}"#), None] {
        let (o, _root) = check_config(config)?;
        assert_eq!(o.status.code(), Some(2), "{config:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{config:?}: {}", stderr(&o));
    }
    Ok(())
}

/// A path the kernel or systemd cannot take (4096 bytes or more, a
/// component over 255 bytes, or too long once the initrd's `/sysroot` is
/// put in front) is a bad entry: named, skipped, the rest still emitted,
/// exit 2.
#[test]
fn overlong_paths_are_rejected_by_name_and_the_rest_is_emitted() -> io::Result<()> {
    let long_component = format!("/srv/{}", "c".repeat(256));
    let too_long = "/aaaaaaa".repeat(512); // 4096 bytes
    let fits_alone = format!("/b{}", "/aaaaaaa".repeat(511)); // 4090 bytes
    assert_eq!((too_long.len(), fits_alone.len()), (4096, 4090));
    let config = format!(
        r#"{{"version":1,"persist":[{{"storage":"/p",
          "directories":["/var/log","{long_component}","{too_long}"],
          "files":[{{"path":"/etc/machine-id","inInitrd":true}},
                   {{"path":"{fits_alone}","inInitrd":true}}]}}]}}"#
    );
    for initrd in [false, true] {
        let out = tempfile::tempdir()?;
        let (o, _t) = run(&config, &[out.path()], initrd)?;
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("persist[0].files[1] (") && err.contains("/sysroot"),
            "{err}"
        );
        if initrd {
            assert_eq!(
                listing(out.path()),
                [
                    "initrd-fs.target.d",
                    "sysroot-etc-machine\\x2did.mount",
                    "tabula-prepare-initrd.service"
                ]
            );
        } else {
            for needle in [
                "persist[0].directories[1] (",
                "has a component of 256 bytes",
                "persist[0].directories[2] (",
                "is 4096 bytes long",
            ] {
                assert!(err.contains(needle), "missing {needle:?} in\n{err}");
            }
            assert_eq!(
                listing(out.path()),
                [
                    "etc-machine\\x2did.mount",
                    "local-fs.target.d",
                    "systemd-machine-id-commit.service.d",
                    "tabula-prepare.service",
                    "var-log.mount"
                ]
            );
        }
    }
    Ok(())
}
