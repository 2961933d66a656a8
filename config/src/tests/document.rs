//! The document as a whole: the example, the minimal files, what makes a
//! file unusable, and reading it from disk.

use super::*;

const EXAMPLE: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/disk/by-label/nixos", "mountOptions": [],
      "subvolume": "@root", "blank": null, "oldRoots": "@old_roots",
      "keep": { "days": 30, "min": 1, "max": null } },
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": null, "keep": { "days": 30, "min": 1, "max": null } }
  ],
  "persist": [
    { "storage": "/persist", "hideMounts": false, "mountOptions": [],
      "directories": [ "/var/log",
        { "path": "/var/lib/bluetooth", "user": "root", "group": "root", "mode": "0700" } ],
      "files": [ "/etc/ssh/ssh_host_ed25519_key",
        { "path": "/etc/machine-id", "inInitrd": true } ],
      "users": { "alice": { "home": "/home/alice",
        "directories": [ "Documents", { "path": ".ssh", "mode": "0700" } ],
        "files": [ ".bash_history" ] } } }
  ],
  "overlays": [
    { "where": "/nix/store", "lower": ["/nix/store"],
      "upper": "/mnt/nix-ssd/upper", "work": "/mnt/nix-ssd/work",
      "whenMounted": "/mnt/nix-ssd",
      "before": ["nix-daemon.service", "nix-daemon.socket"], "required": false }
  ]
}"#;

#[test]
fn the_documented_example_parses() -> TestResult {
    let c = parse_str(EXAMPLE)?;
    assert_eq!(c.rollback.len(), 2);
    let RollbackTarget::Btrfs(b) = &c.rollback[0] else {
        panic!("not btrfs")
    };
    assert_eq!(b.subvolume, "@root");
    assert_eq!(b.old_roots.as_deref(), Some("@old_roots"));
    assert_eq!(
        b.keep,
        Keep {
            days: Some(30),
            min: 1,
            max: None
        }
    );
    assert_eq!(b.wait_seconds, 30);
    let RollbackTarget::Zfs(z) = &c.rollback[1] else {
        panic!("not zfs")
    };
    assert_eq!(z.pool(), "rpool");
    assert_eq!(z.old_roots, None);
    assert_eq!(z.zfs_command, "zfs");
    let p = &c.persist[0];
    assert_eq!(p.directories[0].0.path, "/var/log");
    assert_eq!(p.directories[1].0.mode, Some(Mode(0o700)));
    assert_eq!(p.directories[1].0.user, Some(Id::Name("root".into())));
    assert!(p.files[1].0.in_initrd);
    assert_eq!(p.users["alice"].directories[1].0.path, ".ssh");
    assert_eq!(c.overlays[0].where_, "/nix/store");
    assert_eq!(c.overlays[0].when_mounted.as_deref(), Some("/mnt/nix-ssd"));
    Ok(())
}

#[test]
fn minimal_documents() -> TestResult {
    let c = parse_str(r#"{"version":1}"#)?;
    assert!(c.rollback.is_empty() && c.persist.is_empty() && c.overlays.is_empty());
    let c = parse_str(
        r#"{"version":1,"rollback":[{"type":"zfs","dataset":"rpool/root","oldRoots":null}]}"#,
    )?;
    let RollbackTarget::Zfs(z) = &c.rollback[0] else {
        panic!("not zfs")
    };
    assert_eq!(z.snapshot, "blank");
    assert_eq!(z.keep, Keep::default());
    Ok(())
}

#[test]
fn document_level_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "is not valid JSON"),
        ("{", "is not valid JSON"),
        ("[]", "the document is a list, expected a JSON object"),
        ("{}", "version: is missing; expected `\"version\": 1`"),
        (
            r#"{"version": 2}"#,
            "version: is 2; this tabula understands only version 1",
        ),
        (
            r#"{"version": "1"}"#,
            "version: is \"1\"; this tabula understands only version 1",
        ),
        (r#"{"version": 1.0}"#, "version: is 1.0;"),
        (
            r#"{"version": 1, "rollbak": []}"#,
            "rollbak: unknown field `rollbak`",
        ),
        (
            r#"{"version": 1, "rollback": {}}"#,
            "rollback: invalid type: map, expected a sequence",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "directories": [3]}]}"#,
            "persist[0].directories[0]: invalid type: integer `3`, expected a path string or an object with `path`",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "directories": [{"path": "/a", "mode": "999"}]}]}"#,
            "persist[0].directories[0].mode: \"999\" is not a mode",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "directories": [{"path": "/a", "mode": 493}]}]}"#,
            "persist[0].directories[0].mode: invalid type: integer `493`, expected a string",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "user": "a:b"}]}]}"#,
            "persist[0].files[0].user: \"a:b\" is not a valid user or group name",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "colour": 1}]}]}"#,
            "persist[0].files[0].colour: unknown field `colour`",
        ),
        (
            r#"{"version": 1, "overlays": [{"where": "/nix/store", "lower": ["/nix/store"], "upper": "/u"}]}"#,
            "overlays[0]: missing field `work`",
        ),
    ];
    let mut wrong = Vec::new();
    for (doc, want) in cases {
        match parse_str(doc) {
            Ok(c) => wrong.push(format!("accepted {doc}: {c:?}")),
            Err(e) => {
                let line = e.to_string();
                let ok = line.starts_with("/etc/tabula/config.json: ")
                    && line.contains(want)
                    && !line.contains('\n');
                if !ok {
                    wrong.push(format!("for {doc}\n got: {line:?}\nwant: {want}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn load_names_a_missing_file() {
    let e = load(Path::new("/nonexistent/tabula.json"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with("/nonexistent/tabula.json: cannot read the configuration"),
        "{e}"
    );
}

#[test]
fn check_file_reports_the_document_error_or_every_entry_problem() -> TestResult {
    let dir = std::env::temp_dir().join(format!("tabula-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("c.json");
    let write = |text: &str| std::fs::write(&file, text);
    write(r#"{"version": 1, "persist": [{"storage": "/p", "directories": ["/a"]}]}"#)?;
    assert_eq!(check_file(&file), []);
    write(
        r#"{"version": 1, "persist": [{"storage": "/p", "directories": ["a", "/b", "/b"]}],
           "overlays": [{"where": "/", "lower": ["/l"], "upper": "/u", "work": "/w"}]}"#,
    )?;
    let errors: Vec<String> = check_file(&file).iter().map(ToString::to_string).collect();
    let f = file.display();
    assert_eq!(
        errors,
        [
            format!(
                r#"{f}: persist[0].directories[0]: "a" is not absolute; expected a path starting with `/`; this entry is skipped, the others are still mounted"#
            ),
            format!(
                r#"{f}: persist[0].directories[2]: "/b" is listed twice; the first, persist[0].directories[1], is kept; this entry is skipped, the others are still mounted"#
            ),
            format!(
                r#"{f}: overlays[0].where: "/" is the root; an overlay on / belongs in the initrd; this overlay is skipped, the others are still mounted"#
            ),
        ]
    );
    write(r#"{"version": 1, "version": 1}"#)?;
    let errors = check_file(&file);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "version");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check_file(&dir.join("missing.json")).len(), 1);
    Ok(())
}
