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

fn parse_str(s: &str) -> Result<Config, ConfigError> {
    parse(s, Path::new("/etc/tabula/config.json"))
}

/// The error line for a config whose single rollback target is `target`.
fn target_error(target: &str) -> String {
    let doc = format!(r#"{{"version": 1, "rollback": [{target}]}}"#);
    match parse_str(&doc) {
        Ok(c) => panic!("accepted {target}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_documented_example_parses() {
    let c = parse_str(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
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
}

#[test]
fn minimal_documents() {
    let c = parse_str(r#"{"version":1}"#).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.rollback.is_empty() && c.persist.is_empty() && c.overlays.is_empty());
    let c = parse_str(
        r#"{"version":1,"rollback":[{"type":"zfs","dataset":"rpool/root","oldRoots":null}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let RollbackTarget::Zfs(z) = &c.rollback[0] else {
        panic!("not zfs")
    };
    assert_eq!(z.snapshot, "blank");
    assert_eq!(z.keep, Keep::default());
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
fn ids_accept_names_and_numbers() {
    let doc = r#"{"version": 1, "persist": [{"storage": "/p", "files": [
        {"path": "/a", "user": 1000, "group": "100"}, {"path": "/b", "user": "alice", "group": "users"}]}]}"#;
    let c = parse_str(doc).unwrap_or_else(|e| panic!("{e}"));
    let files = &c.persist[0].files;
    assert_eq!(files[0].0.user, Some(Id::Numeric(1000)));
    assert_eq!(files[0].0.group, Some(Id::Numeric(100)));
    assert_eq!(files[1].0.user, Some(Id::Name("alice".into())));
    assert!(parse_str(r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "user": 4294967295}]}]}"#).is_err());
    assert!(parse_str(r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "user": -1}]}]}"#).is_err());
}

const BTRFS: &str =
    r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "oldRoots": "@old_roots""#;
const ZFS: &str = r#""type": "zfs", "dataset": "rpool/local/root", "oldRoots": null"#;

#[test]
fn rollback_target_errors() {
    let cases: Vec<(String, &str)> = vec![
        (r#"{"device": "/dev/vda2"}"#.into(), "rollback[0].type: is missing; expected \"btrfs\" or \"zfs\""),
        (r#"{"type": "ext4"}"#.into(), "rollback[0].type: is \"ext4\"; expected \"btrfs\" or \"zfs\""),
        ("3".into(), "rollback[0]: is a number, expected an object"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root"}"#.into(), "rollback[0]: missing field `oldRoots`"),
        (r#"{"type": "zfs", "dataset": "rpool/root"}"#.into(), "rollback[0]: missing field `oldRoots`"),
        (format!(r#"{{{BTRFS}, "extra": 1}}"#), "rollback[0].extra: unknown field `extra`, expected one of `device`"),
        (format!(r#"{{{BTRFS}, "keep": {{"days": "30"}}}}"#), "rollback[0].keep.days: invalid type: string \"30\", expected u32"),
        (format!(r#"{{{BTRFS}, "keep": {{"days": -1}}}}"#), "rollback[0].keep.days: invalid value: integer `-1`, expected u32"),
        (format!(r#"{{{BTRFS}, "keep": {{"min": 1.5}}}}"#), "rollback[0].keep.min: invalid type: floating point `1.5`, expected u32"),
        (format!(r#"{{{BTRFS}, "keep": {{"weeks": 2}}}}"#), "rollback[0].keep.weeks: unknown field `weeks`"),
        (format!(r#"{{{BTRFS}, "keep": {{"min": 5, "max": 2}}}}"#), "rollback[0].keep.max: 2 is below keep.min (5)"),
        (format!(r#"{{{BTRFS}, "waitSeconds": 7200}}"#), "rollback[0].waitSeconds: 7200 is more than an hour"),
        (format!(r#"{{{BTRFS}, "mountOptions": ["subvol=@root"]}}"#), "rollback[0].mountOptions[0]: \"subvol=@root\" would mount something other than the top level"),
        (format!(r#"{{{BTRFS}, "mountOptions": ["compress=zstd,noatime"]}}"#), "rollback[0].mountOptions[0]: \"compress=zstd,noatime\" is not a single mount option"),
        (format!(r#"{{{BTRFS}, "mountOptions": ["ro"]}}"#), "rollback[0].mountOptions[0]: \"ro\" makes the rollback impossible"),
        (r#"{"type": "btrfs", "device": "dev/vda2", "subvolume": "@root", "oldRoots": null}"#.into(), "rollback[0].device: \"dev/vda2\" is not absolute"),
        (r#"{"type": "btrfs", "device": "/dev/../vda2", "subvolume": "@root", "oldRoots": null}"#.into(), "rollback[0].device: \"/dev/../vda2\" has a `..` component"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"\" is empty"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "../@root", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"../@root\" has a `..` component"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "/@root", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"/@root\" starts with `/`"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@ro\u0000ot", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"@ro\\0ot\" contains the control character '\\0'"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@ro\not", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"@ro\\not\" contains the control character '\\n'"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "oldRoots": "@root/old"}"#.into(), "rollback[0].oldRoots: \"@root/old\" is inside `subvolume` (\"@root\")"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "@root", "oldRoots": null}"#.into(), "rollback[0].subvolume: \"@root\" is the same as `blank`"),
        (r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "..", "oldRoots": null}"#.into(), "rollback[0].blank: \"..\" has a `..` component"),
        (r#"{"type": "zfs", "dataset": "rpool", "oldRoots": null}"#.into(), "rollback[0].dataset: \"rpool\" is a whole pool"),
        (r#"{"type": "zfs", "dataset": "", "oldRoots": null}"#.into(), "rollback[0].dataset: \"\" is empty"),
        (r#"{"type": "zfs", "dataset": "rpool/../root", "oldRoots": null}"#.into(), "rollback[0].dataset: \"rpool/../root\" has the component \"..\""),
        (r#"{"type": "zfs", "dataset": "rpool/root@blank", "oldRoots": null}"#.into(), "rollback[0].dataset: \"rpool/root@blank\" contains '@'"),
        (r#"{"type": "zfs", "dataset": "rpool/ro\not", "oldRoots": null}"#.into(), "contains '\\n'"),
        (format!(r#"{{{ZFS}, "snapshot": "@blank"}}"#), "rollback[0].snapshot: \"@blank\" contains `/` or `@`"),
        (format!(r#"{{{ZFS}, "snapshot": ""}}"#), "rollback[0].snapshot: \"\" has an empty component"),
        (r#"{"type": "zfs", "dataset": "rpool/local/root", "oldRoots": "tank/old"}"#.into(), "rollback[0].oldRoots: \"tank/old\" is not in the pool \"rpool\""),
        (r#"{"type": "zfs", "dataset": "rpool/local/root", "oldRoots": "rpool/local/root/old"}"#.into(), "contain one another"),
        (r#"{"type": "zfs", "dataset": "rpool/local/root", "oldRoots": "rpool/local"}"#.into(), "contain one another"),
        (format!(r#"{{{ZFS}, "zfsCommand": "bin/zfs"}}"#), "rollback[0].zfsCommand: \"bin/zfs\" is not absolute"),
        (format!(r#"{{{ZFS}, "zfsCommand": ""}}"#), "rollback[0].zfsCommand: \"\" is not a command"),
    ];
    let mut wrong = Vec::new();
    for (target, want) in cases {
        let line = target_error(&target);
        if !line.contains(want) || line.contains('\n') {
            wrong.push(format!("for {target}\n got: {line:?}\nwant: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_same_root_twice_is_refused() {
    let doc = format!(r#"{{"version": 1, "rollback": [{{{BTRFS}}}, {{{BTRFS}}}]}}"#);
    let e = parse_str(&doc)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("rollback[1]: rolls back the same root as rollback[0]"),
        "{e}"
    );
    let doc = format!(
        r#"{{"version": 1, "rollback": [{{{ZFS}}}, {{"type": "zfs", "dataset": "rpool/local", "oldRoots": null}}]}}"#
    );
    assert!(parse_str(&doc).is_err());
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

/// One case of `config/rules.json`: a JSON value, or a long string written
/// as `{"prefix", "repeat", "times", "suffix"}`.
fn rule_case(case: &Value) -> Value {
    match case {
        Value::Object(m) if m.contains_key("repeat") => {
            let part = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
            let times = m.get("times").and_then(Value::as_u64).unwrap_or(0);
            let times = usize::try_from(times).unwrap_or(0);
            Value::String(format!(
                "{}{}{}",
                part("prefix"),
                part("repeat").repeat(times),
                part("suffix")
            ))
        }
        other => other.clone(),
    }
}

/// The config crate's own decision for `value` under `rule`; `None` for a
/// rule this crate does not know.
fn decide(rule: &str, value: &Value) -> Option<Result<(), String>> {
    let string = |check: fn(&str) -> Result<(), String>| match value.as_str() {
        Some(s) => check(s),
        None => Err(format!("{value} is not a string")),
    };
    // Numbers go through the real parser, in the field that holds them.
    let in_target = |field: &str| {
        let doc = format!(
            r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "/dev/vda",
                "subvolume": "@root", "oldRoots": null, {field}: {value}}}]}}"#
        );
        parse_str(&doc).map(drop).map_err(|e| e.to_string())
    };
    Some(match rule {
        "absolutePath" => string(names::check_absolute_path),
        "persistedPath" => string(entries::check_path),
        "relativePath" => string(names::check_relative_path),
        "subvolume" => string(names::check_subvolume),
        "rootSubvolume" => string(names::check_root_subvolume),
        "dataset" => string(names::check_dataset),
        "rootDataset" => string(names::check_root_dataset),
        "zfsOldRoots" => string(names::check_zfs_old_roots),
        "snapshot" => string(names::check_snapshot),
        "userName" => string(names::check_user_name),
        "mountOption" => string(names::check_mount_option),
        "btrfsMountOption" => string(names::check_btrfs_mount_option),
        "zfsCommand" => string(names::check_zfs_command),
        "unitName" => string(names::check_unit_name),
        "mode" => Mode::deserialize(value.clone())
            .map(drop)
            .map_err(|e| e.to_string()),
        "userOrGroup" => Id::deserialize(value.clone())
            .map(drop)
            .map_err(|e| e.to_string()),
        "waitSeconds" => in_target(r#""waitSeconds""#),
        "keepCount" => in_target_keep_min(value),
        "zfsSource" => crate::sources::decide_case("zfs", value),
        "btrfsSource" => crate::sources::decide_case("btrfs", value),
        _ => return None,
    })
}

fn in_target_keep_min(value: &Value) -> Result<(), String> {
    let doc = format!(
        r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "/dev/vda",
            "subvolume": "@root", "oldRoots": null, "keep": {{"min": {value}, "max": null}}}}]}}"#
    );
    parse_str(&doc).map(drop).map_err(|e| e.to_string())
}

/// The rules that the NixOS module states too, each tried on every case of
/// the shared table that the Nix evaluation tests read as well.
#[test]
fn every_shared_rule_case_is_decided_as_the_table_says() {
    let table: Value = serde_json::from_str(include_str!("../rules.json"))
        .unwrap_or_else(|e| panic!("config/rules.json: {e}"));
    let Value::Object(rules) = table else {
        panic!("config/rules.json is not an object")
    };
    let mut wrong = Vec::new();
    let mut cases = 0;
    for (rule, sides) in &rules {
        for (side, want_ok) in [("accept", true), ("refuse", false)] {
            let list = sides
                .get(side)
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{rule}.{side} is not a list"));
            assert!(!list.is_empty(), "{rule}.{side} has no case");
            for case in list {
                let value = rule_case(case);
                let Some(got) = decide(rule, &value) else {
                    panic!("config/rules.json names the rule {rule:?}, unknown here")
                };
                cases += 1;
                if got.is_ok() != want_ok {
                    let shown: String = value.to_string().chars().take(80).collect();
                    wrong.push(format!("{rule} must {side} {shown}: got {got:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(cases > 200, "only {cases} cases");
}

/// The error line for `doc`, which must be refused.
fn refused(doc: &str) -> String {
    match parse_str(doc) {
        Ok(c) => panic!("accepted {doc}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_repeated_version_key_is_refused_not_read_as_the_last() {
    let e = refused(r#"{"version": 2, "version": 1}"#);
    assert_eq!(
        e,
        "/etc/tabula/config.json: version: the key \"version\" appears twice in one object; JSON readers disagree on which one wins, so expected each key once: remove one"
    );
}

#[test]
fn a_repeated_old_roots_key_never_turns_keeping_into_deleting() {
    let e = refused(
        r#"{"version": 1, "rollback": [{"type": "btrfs", "device": "/dev/vda2",
            "subvolume": "@root", "oldRoots": "@old_roots", "oldRoots": null}]}"#,
    );
    assert!(
        e.contains("rollback[0].oldRoots: the key \"oldRoots\" appears twice"),
        "{e}"
    );
}

#[test]
fn a_repeated_key_is_refused_at_any_depth_with_its_path() {
    for (doc, path) in [
        (
            r#"{"version": 1, "persist": [{"storage": "/p"}, {"storage": "/q", "files": [{"path": "/a", "mode": "0600", "mode": "0644"}]}]}"#,
            "persist[1].files[0].mode",
        ),
        (
            r#"{"version": 1, "persist": [{"storage": "/p", "users": {"alice": {}, "alice": {"home": "/x"}}}]}"#,
            "persist[0].users.alice",
        ),
        (
            r#"{"version": 1, "rollback": [{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "oldRoots": null, "keep": {"min": 1, "days": 3, "min": 0}}]}"#,
            "rollback[0].keep.min",
        ),
        (
            r#"{"version": 1, "overlays": [[{"a": 1, "a": 1}]]}"#,
            "overlays[0][0].a",
        ),
        (
            r#"{"version": 1, "rollback": [], "rollback": []}"#,
            "rollback",
        ),
    ] {
        let e = refused(doc);
        assert!(
            e.contains(&format!(": {path}: the key ")) && e.contains("appears twice"),
            "{doc}: {e}"
        );
    }
}

#[test]
fn equal_keys_in_different_objects_are_not_duplicates() {
    let doc = r#"{"version": 1, "persist": [
        {"storage": "/p", "files": [{"path": "/a", "mode": "0600"}, {"path": "/b", "mode": "0600"}]},
        {"storage": "/q", "users": {"alice": {"files": ["x"]}, "bob": {"files": ["x"]}}}]}"#;
    assert!(parse_str(doc).is_ok());
    assert!(refused("{").contains("is not valid JSON"));
    assert!(refused(r#"{"version": 1} x"#).contains("is not valid JSON"));
}

fn two_targets(a: &str, b: &str) -> Result<Config, ConfigError> {
    parse_str(&format!(
        r#"{{"version": 1, "rollback": [{{{a}}}, {{{b}}}]}}"#
    ))
}

#[test]
fn two_roots_on_one_device_with_separate_old_roots_are_accepted() {
    let root = r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "@blank", "oldRoots": "@old_roots/root""#;
    let home = r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@home", "blank": "@blank", "oldRoots": "@old_roots/home""#;
    let c = two_targets(root, home).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rollback.len(), 2);
    // The same names on two devices are two filesystems.
    let other = BTRFS.replace("/dev/vda2", "/dev/vdb2");
    assert!(two_targets(BTRFS, &other).is_ok());
    // Two datasets side by side, each with its own old roots.
    assert!(
        two_targets(
            r#""type": "zfs", "dataset": "rpool/root", "oldRoots": "rpool/old/root""#,
            r#""type": "zfs", "dataset": "rpool/home", "oldRoots": "rpool/old/home""#
        )
        .is_ok()
    );
}

#[test]
fn two_targets_never_share_or_nest_what_they_rotate_or_prune() {
    let btrfs = |sub: &str, blank: &str, old: &str| {
        format!(
            r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "{sub}", "blank": {blank}, "oldRoots": {old}"#
        )
    };
    let zfs =
        |ds: &str, old: &str| format!(r#""type": "zfs", "dataset": "{ds}", "oldRoots": {old}"#);
    for (a, b, want) in [
        (
            btrfs("@root", "null", r#""@old_roots""#),
            btrfs("@home", "null", r#""@old_roots""#),
            r#"rollback[1].oldRoots: "@old_roots" is the same as rollback[0].oldRoots ("@old_roots") on the same device "/dev/vda2""#,
        ),
        (
            btrfs("@root", "null", r#""@old""#),
            btrfs("@home", "null", r#""@old/home""#),
            r#"rollback[1].oldRoots: "@old/home" is inside rollback[0].oldRoots ("@old")"#,
        ),
        (
            btrfs("@root", "null", r#""@old_roots""#),
            btrfs("@home", r#""@root/blank""#, "null"),
            r#"rollback[1].blank: "@root/blank" is inside rollback[0].subvolume ("@root")"#,
        ),
        (
            btrfs("@root", "null", "null"),
            btrfs("@home", "null", r#""@root/old""#),
            r#"rollback[1].oldRoots: "@root/old" is inside rollback[0].subvolume ("@root")"#,
        ),
        (
            btrfs("@root/home", "null", "null"),
            btrfs("@root", "null", "null"),
            r#"rollback[1].subvolume: "@root" contains rollback[0].subvolume ("@root/home")"#,
        ),
        (
            btrfs("@a", "null", r#""@old""#),
            btrfs("@old/x", "null", "null"),
            r#"rollback[1].subvolume: "@old/x" is inside rollback[0].oldRoots ("@old")"#,
        ),
        (
            zfs("rpool/root", r#""rpool/old""#),
            zfs("rpool/home", r#""rpool/old""#),
            r#"rollback[1].oldRoots: "rpool/old" is the same as rollback[0].oldRoots ("rpool/old"); "#,
        ),
        (
            zfs("rpool/root", "null"),
            zfs("rpool/home", r#""rpool/root/old""#),
            r#"rollback[1].oldRoots: "rpool/root/old" is inside rollback[0].dataset ("rpool/root")"#,
        ),
    ] {
        let e = two_targets(&a, &b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("accepted {a} with {b}"));
        assert!(e.contains(want), "{a} with {b}:\n got: {e}\nwant: {want}");
    }
}

#[test]
fn names_ending_in_the_new_root_suffix_are_refused_naming_the_field() {
    for (target, field) in [
        (
            r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root.tabula-new", "oldRoots": null}"#,
            "subvolume",
        ),
        (
            r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "@blank.tabula-new", "oldRoots": null}"#,
            "blank",
        ),
        (
            r#"{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "oldRoots": "@old.tabula-new"}"#,
            "oldRoots",
        ),
        (
            r#"{"type": "zfs", "dataset": "rpool/root.tabula-new", "oldRoots": null}"#,
            "dataset",
        ),
        (
            r#"{"type": "zfs", "dataset": "rpool/root", "oldRoots": "rpool/old.tabula-new"}"#,
            "oldRoots",
        ),
    ] {
        let e = target_error(target);
        assert!(
            e.contains(&format!("rollback[0].{field}: "))
                && e.contains("ends in \".tabula-new\", which tabula reserves"),
            "{e}"
        );
    }
}

#[test]
fn a_root_name_leaves_room_for_the_new_root_suffix() {
    let btrfs = |sub: &str| {
        format!(
            r#"{{"type": "btrfs", "device": "/dev/vda2", "subvolume": "{sub}", "oldRoots": null}}"#
        )
    };
    let zfs =
        |ds: &str, old: &str| format!(r#"{{"type": "zfs", "dataset": "{ds}", "oldRoots": {old}}}"#);
    let one = |t: String| parse_str(&format!(r#"{{"version": 1, "rollback": [{t}]}}"#));
    // Btrfs: 244 + ".tabula-new" (11) = 255 = NAME_MAX.
    let longest = "r".repeat(244);
    assert!(one(btrfs(&longest)).is_ok());
    assert!(one(btrfs(&format!("nixos/{longest}"))).is_ok());
    let e = target_error(&btrfs(&"r".repeat(245)));
    assert!(
        e.contains("rollback[0].subvolume: ") && e.contains("expected at most 244 bytes"),
        "{e}"
    );
    // A blank or old-roots subvolume gets no suffix: 255 is fine there.
    let blank = format!(
        r#"{{"type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "{}", "oldRoots": null}}"#,
        "b".repeat(255)
    );
    assert!(one(blank).is_ok());
    // ZFS: the dataset's whole name, 244 + 11 = 255.
    let ds = format!("rpool/{}", "d".repeat(238));
    assert_eq!(ds.len(), 244);
    assert!(one(zfs(&ds, "null")).is_ok());
    let e = target_error(&zfs(&format!("{ds}d"), "null"));
    assert!(
        e.contains("rollback[0].dataset: ") && e.contains("expected at most 244 bytes"),
        "{e}"
    );
    // ZFS old roots: room for "/YYYY-MM-DDTHH:MM:SSZ.NNNN" (26 bytes).
    let old = format!("rpool/{}", "o".repeat(223));
    assert_eq!(old.len(), 229);
    assert!(one(zfs("rpool/root", &format!("{old:?}"))).is_ok());
    let e = target_error(&zfs("rpool/root", &format!("\"{old}o\"")));
    assert!(
        e.contains("rollback[0].oldRoots: ") && e.contains("expected at most 229 bytes"),
        "{e}"
    );
}

fn one_target(target: &str) -> Result<Config, ConfigError> {
    parse_str(&format!(r#"{{"version": 1, "rollback": [{target}]}}"#))
}

fn keep_of(c: &Config) -> Keep {
    match &c.rollback[0] {
        RollbackTarget::Btrfs(b) => b.keep,
        RollbackTarget::Zfs(z) => z.keep,
    }
}

/// Pinned by literal values: `keep.min` = 0 by default would let a machine
/// that was off for longer than `keep.days` lose the root it just archived.
#[test]
fn an_unset_keep_policy_keeps_thirty_days_and_at_least_one_root() {
    let want = Keep {
        days: Some(30),
        min: 1,
        max: None,
    };
    for target in [
        format!("{{{BTRFS}}}"),
        format!(r#"{{{BTRFS}, "keep": {{}}}}"#),
        format!("{{{ZFS}}}"),
        format!(r#"{{{ZFS}, "keep": {{}}}}"#),
    ] {
        let c = one_target(&target).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keep_of(&c), want, "{target}");
    }
    assert_eq!(Keep::default(), want);
    // An explicit null means no age limit, not the default.
    let c = one_target(&format!(r#"{{{BTRFS}, "keep": {{"days": null}}}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keep_of(&c).days, None);
}

#[test]
fn unset_target_fields_take_their_documented_defaults() {
    let c = one_target(&format!("{{{BTRFS}}}")).unwrap_or_else(|e| panic!("{e}"));
    let RollbackTarget::Btrfs(b) = &c.rollback[0] else {
        panic!("not btrfs")
    };
    assert_eq!((b.wait_seconds, b.blank.as_deref()), (30, None));
    assert!(b.mount_options.is_empty());
    let c = one_target(&format!("{{{ZFS}}}")).unwrap_or_else(|e| panic!("{e}"));
    let RollbackTarget::Zfs(z) = &c.rollback[0] else {
        panic!("not zfs")
    };
    assert_eq!(
        (z.snapshot.as_str(), z.zfs_command.as_str()),
        ("blank", "zfs")
    );
    assert_eq!(z.pool(), "rpool");
}

#[test]
fn keep_max_equal_to_min_is_accepted_and_one_below_is_refused() {
    let c = one_target(&format!(r#"{{{BTRFS}, "keep": {{"min": 3, "max": 3}}}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keep_of(&c).max, Some(3));
    let e = target_error(&format!(r#"{{{BTRFS}, "keep": {{"min": 3, "max": 2}}}}"#));
    assert!(
        e.contains("rollback[0].keep.max: 2 is below keep.min (3)"),
        "{e}"
    );
    let e = target_error(&format!(r#"{{{ZFS}, "keep": {{"min": 3, "max": 2}}}}"#));
    assert!(e.contains("rollback[0].keep.max: 2 is below"), "{e}");
}

#[test]
fn wait_seconds_of_one_hour_is_accepted_and_one_more_is_refused() {
    let c = one_target(&format!(r#"{{{BTRFS}, "waitSeconds": 3600}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    let RollbackTarget::Btrfs(b) = &c.rollback[0] else {
        panic!("not btrfs")
    };
    assert_eq!(b.wait_seconds, 3600);
    let e = target_error(&format!(r#"{{{BTRFS}, "waitSeconds": 3601}}"#));
    assert!(
        e.contains("rollback[0].waitSeconds: 3601 is more than an hour; expected at most 3600"),
        "{e}"
    );
}

fn entry_error(entry: &str) -> String {
    refused(&format!(
        r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{entry}]}}]}}"#
    ))
}

#[test]
fn mode_strings_are_three_or_four_octal_digits_and_nothing_else() {
    for bad in ["+755", "7", "75", "07555", "0758", "-755", "0x75", " 755"] {
        let e = entry_error(&format!(r#"{{"path": "/a", "mode": "{bad}"}}"#));
        assert!(
            e.contains(&format!(
                "{bad:?} is not a mode; expected 3 or 4 octal digits as a string, such as \"0755\""
            )),
            "{e}"
        );
    }
    let mode = |m: &str| {
        let doc = format!(
            r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{{"path": "/a", "mode": "{m}"}}]}}]}}"#
        );
        let c = parse_str(&doc).unwrap_or_else(|e| panic!("{e}"));
        c.persist[0].files[0].0.mode
    };
    assert_eq!(mode("755"), Some(Mode(0o755)));
    assert_eq!(mode("0700"), Some(Mode(0o700)));
    assert_eq!(mode("7777"), Some(Mode(0o7777)));
    assert_eq!(mode("000"), Some(Mode(0)));
    assert_eq!(Mode(0o755).to_string(), "0755");
    assert_eq!(Mode(0o7).to_string(), "0007");
    assert_eq!(Mode(0o4750).to_string(), "4750");
}

#[test]
fn error_text_names_the_value_and_what_is_expected() {
    assert_eq!(Id::Name("alice".into()).to_string(), "alice");
    assert_eq!(Id::Numeric(1000).to_string(), "1000");
    let e = entry_error(r#"{"path": "/a", "user": true}"#);
    assert!(
        e.contains("persist[0].files[0].user: invalid type: boolean `true`, expected a user or group name, or a numeric id"),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "group": "a:b"}"#);
    assert!(
        e.contains(r#"persist[0].files[0].group: "a:b" is not a valid user or group name; expected 1 to 256 bytes"#),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": "4294967295"}"#);
    assert!(
        e.contains("4294967295 is out of range for a user or group id"),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": "99999999999999999999"}"#);
    assert!(
        e.contains(r#""99999999999999999999" is out of range"#),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": 4294967295}"#);
    assert!(
        e.contains("4294967295 is out of range for a user or group id"),
        "{e}"
    );
    let e = entry_error("7");
    assert!(
        e.contains("persist[0].files[0]: invalid type: integer `7`, expected a path string or an object with `path`"),
        "{e}"
    );
    let whole = ConfigError {
        file: "/x.json".into(),
        field: String::new(),
        message: "m".into(),
    };
    assert_eq!(whole.to_string(), "/x.json: m");
    let field = ConfigError {
        field: "a.b".into(),
        ..whole
    };
    assert_eq!(field.to_string(), "/x.json: a.b: m");
    assert!(refused("[]").contains("the document is a list, expected a JSON object"));
    assert!(refused("{}").contains("version: is missing"));
}

fn entries_of(doc: &str) -> entries::Entries {
    let c = parse_str(doc).unwrap_or_else(|e| panic!("{e}"));
    entries::check_entries(&c)
}

/// Each problem as `label (value): message; skipped`.
fn problem_lines(e: &entries::Entries) -> Vec<String> {
    e.all_problems().map(ToString::to_string).collect()
}

#[test]
fn every_bad_entry_is_named_and_every_good_one_is_kept_with_its_defaults() {
    let e = entries_of(
        r#"{"version": 1, "persist": [
        {"storage": "/persist", "hideMounts": true, "mountOptions": ["noexec"],
         "directories": ["/var/log", "var/rel", "/var/log", "/etc/ok/sub", "/persist/x", "/",
                         {"path": "/srv", "user": 5, "group": "wheel", "mode": "0700", "inInitrd": true}],
         "files": ["/etc/ok", "/var/log"],
         "users": {"alice": {"directories": ["/abs", "docs"], "files": [".x"]},
                   "bob": {"home": "/", "files": ["y"]},
                   "carol": {"home": "rel"},
                   "-dave": {"files": ["z"]}}},
        {"storage": "/", "directories": ["/a"]},
        {"storage": "/p2", "mountOptions": ["a,b"], "directories": ["/b"]},
        {"storage": "/p3", "directories": ["/mnt", "/p2/in", "/var/log"]},
        {"storage": "/mnt/data"}]}"#,
    );
    let lines = problem_lines(&e);
    let want = [
        r#"persist[0].directories[1] ("var/rel"): is not absolute"#,
        r#"persist[0].directories[5] ("/"): is the root itself"#,
        r#"persist[0].users.alice.directories[0] ("/abs"): is absolute; expected a path relative to the home directory; this entry is skipped, the others are still mounted"#,
        r#"persist[0].users.bob.home ("/"): is the root; expected a home directory such as "/home/alice"; none of this user's entries is mounted, the others are"#,
        r#"persist[0].users.carol.home ("rel"): is not absolute"#,
        r#"persist[0].users.-dave ("-dave"): is not a valid user or group name"#,
        r#"persist[1].storage ("/"): is the root itself; expected the mount point of persistent storage, such as "/persist"; none of this storage's entries is mounted, the other storages are"#,
        r#"persist[2].mountOptions[0] ("a,b"): is not a single mount option"#,
        r#"persist[0].directories[2] ("/var/log"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[0].files[1] ("/var/log"): is listed as a file and, in persist[0].directories[0], as a directory; a path is one or the other"#,
        r#"persist[3].directories[2] ("/var/log"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[0].directories[3] ("/etc/ok/sub"): is inside "/etc/ok", persisted by persist[0].files[0] as a file; a file has no paths inside it"#,
        r#"persist[3].directories[0] ("/mnt"): contains the storage "/mnt/data"; mounting over it would hide persisted data"#,
        r#"persist[3].directories[1] ("/p2/in"): is inside the storage "/p2" of another entry; it is persistent already"#,
        r#"persist[0].directories[4] ("/persist/x"): is inside the storage "/persist" itself"#,
    ];
    for w in want {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w}\nin\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), want.len(), "{}", lines.join("\n"));
    let kept: Vec<(&str, &str)> = e
        .persisted
        .iter()
        .map(|p| (p.label.as_str(), p.path.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("persist[0].files[0]", "/etc/ok"),
            ("persist[0].users.alice.files[0]", "/home/alice/.x"),
            ("persist[0].users.alice.directories[1]", "/home/alice/docs"),
            ("persist[0].directories[6]", "/srv"),
            ("persist[0].directories[0]", "/var/log"),
        ]
    );
    let by_label = |l: &str| {
        e.persisted
            .iter()
            .find(|p| p.label == l)
            .unwrap_or_else(|| panic!("{l} not kept"))
    };
    let log = by_label("persist[0].directories[0]");
    assert_eq!(log.kind, entries::Kind::Directory);
    assert_eq!(
        (log.source.as_str(), log.storage.as_str()),
        ("/persist/var/log", "/persist")
    );
    assert_eq!(log.user, Id::Name("root".into()));
    assert_eq!(log.group, entries::Group::Id(Id::Name("root".into())));
    assert_eq!(
        (log.mode, log.in_initrd, log.home.is_none()),
        (0o755, false, true)
    );
    assert_eq!(&*log.options, ["x-gvfs-hide", "noexec"]);
    let ok = by_label("persist[0].files[0]");
    assert_eq!((ok.kind, ok.mode), (entries::Kind::File, 0o644));
    let srv = by_label("persist[0].directories[6]");
    assert_eq!(
        (srv.user.clone(), srv.group.clone(), srv.mode, srv.in_initrd),
        (
            Id::Numeric(5),
            entries::Group::Id(Id::Name("wheel".into())),
            0o700,
            true
        )
    );
    let x = by_label("persist[0].users.alice.files[0]");
    assert_eq!(x.user, Id::Name("alice".into()));
    assert_eq!(x.group, entries::Group::PrimaryOf(Id::Name("alice".into())));
    assert_eq!(
        x.home,
        Some(entries::Home {
            user: Id::Name("alice".into()),
            path: "/home/alice".into()
        })
    );
    assert_eq!(x.source, "/persist/home/alice/.x");
    assert_eq!(entries::Kind::File.noun(), "file");
    assert_eq!(entries::Kind::Directory.noun(), "directory");
    assert_eq!(
        entries::Group::PrimaryOf(Id::Numeric(7)).to_string(),
        "the primary group of 7"
    );
    assert_eq!(entries::Group::Id(Id::Numeric(7)).to_string(), "7");
}

#[test]
fn an_initrd_entry_must_fit_below_sysroot() {
    let fits = format!("/b{}", "/aaaaaaa".repeat(511)); // 4090 bytes
    let doc = |in_initrd: bool| {
        format!(
            r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{{"path": "{fits}", "inInitrd": {in_initrd}}}]}}]}}"#
        )
    };
    // Stage 2 mounts it at its own path, storage copy 4092 bytes: fine.
    assert!(problem_lines(&entries_of(&doc(false))).is_empty());
    // In the initrd, /sysroot + the path is 4098 bytes.
    let lines = problem_lines(&entries_of(&doc(true)));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("is 4098 bytes long")
            && lines[0].contains("counting the /sysroot prefix"),
        "{lines:?}"
    );
    // The persisted copy alone can be what is too long.
    let path = format!("/b{}", "/aaaaaaa".repeat(511));
    let doc = format!(
        r#"{{"version": 1, "persist": [{{"storage": "/persist/deep", "files": ["{path}"]}}]}}"#
    );
    let lines = problem_lines(&entries_of(&doc));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("is where its persisted copy would be, and is 4103 bytes long"),
        "{lines:?}"
    );
}

#[test]
fn every_bad_overlay_is_named_and_the_good_ones_are_kept_in_mount_point_order() {
    let ov = |fields: &str| {
        format!(r#"{{"lower": ["/l"], "upper": "/u/up", "work": "/u/wk", {fields}}}"#)
    };
    let doc = format!(
        r#"{{"version": 1, "persist": [{{"storage": "/persist", "directories": ["/var/lib"]}}],
        "overlays": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]}}"#,
        ov(r#""where": "/z""#),
        ov(r#""where": "rel""#),
        r#"{"where": "/e", "lower": [], "upper": "/u/up", "work": "/u/wk"}"#,
        ov(r#""where": "/""#),
        r#"{"where": "/n", "lower": ["/l"], "upper": "/u", "work": "/u/wk"}"#,
        r#"{"where": "/i", "lower": ["/l"], "upper": "/i/up", "work": "/u/wk"}"#,
        ov(r#""where": "/o", "mountOptions": ["a b"]"#),
        ov(r#""where": "/o2", "mountOptions": ["upperdir=/x"]"#),
        ov(r#""where": "/b", "before": ["nounit"]"#),
        ov(r#""where": "/z""#),
        ov(r#""where": "/var""#),
        ov(
            r#""where": "/a", "whenMounted": "/mnt/ssd", "mountOptions": ["index=off"], "before": ["x.service"]"#
        ),
    );
    let e = entries_of(&doc);
    let lines: Vec<String> = e.overlay_problems.iter().map(ToString::to_string).collect();
    let want = [
        r#"overlays[1].where ("rel"): is not absolute"#,
        r#"overlays[2].lower ("[]"): is empty; expected at least one lower directory; this overlay is skipped, the others are still mounted"#,
        r#"overlays[3].where ("/"): is the root; an overlay on / belongs in the initrd"#,
        r#"overlays[4].work ("/u/wk"): and upper "/u" contain one another"#,
        r#"overlays[5].upper ("/i/up"): or work lies inside the mount point "/i""#,
        r#"overlays[6].mountOptions[0] ("a b"): is not a single mount option"#,
        r#"overlays[7].mountOptions[0] ("upperdir=/x"): sets a directory that tabula sets"#,
        r#"overlays[8].before[0] ("nounit"): "nounit" is not a unit name"#,
        r#"overlays[9].where ("/z"): is already the mount point of overlays[0]; the first is kept"#,
        r#"overlays[10].where ("/var"): overlaps the persisted path "/var/lib" (persist[0].directories[0])"#,
    ];
    for (got, w) in lines.iter().zip(want) {
        assert!(got.starts_with(w), "got {got}\nwant {w}");
    }
    assert_eq!(lines.len(), want.len(), "{}", lines.join("\n"));
    assert!(e.problems.is_empty());
    let kept: Vec<(&str, &str)> = e
        .overlays
        .iter()
        .map(|o| (o.label.as_str(), o.config.where_.as_str()))
        .collect();
    assert_eq!(kept, [("overlays[11]", "/a"), ("overlays[0]", "/z")]);
}

#[test]
fn check_file_reports_the_document_error_or_every_entry_problem() {
    let dir = std::env::temp_dir().join(format!("tabula-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("c.json");
    let write = |text: &str| std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    write(r#"{"version": 1, "persist": [{"storage": "/p", "directories": ["/a"]}]}"#);
    assert_eq!(check_file(&file), []);
    write(
        r#"{"version": 1, "persist": [{"storage": "/p", "directories": ["a", "/b", "/b"]}],
           "overlays": [{"where": "/", "lower": ["/l"], "upper": "/u", "work": "/w"}]}"#,
    );
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
    write(r#"{"version": 1, "version": 1}"#);
    let errors = check_file(&file);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "version");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check_file(&dir.join("missing.json")).len(), 1);
}

#[test]
fn an_entry_applies_its_owner_and_mode_only_to_what_it_creates_unless_it_enforces_them() {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "directories": ["/a", {"path": "/b", "ownership": "create"},
                          {"path": "/c", "ownership": "enforce"}]}]}"#,
    );
    let got: Vec<(&str, Ownership)> = e
        .persisted
        .iter()
        .map(|p| (p.path.as_str(), p.ownership))
        .collect();
    assert_eq!(
        got,
        [
            ("/a", Ownership::Create),
            ("/b", Ownership::Create),
            ("/c", Ownership::Enforce)
        ]
    );
    let err = parse_str(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "files": [{"path": "/etc/x", "ownership": "always"}]}]}"#,
    )
    .map(|_| ())
    .expect_err("an unknown ownership is refused");
    let line = err.to_string();
    assert!(
        line.contains("ownership") && line.contains("always") && line.contains("enforce"),
        "{line}"
    );
}

#[test]
fn nested_entries_are_kept_outer_first_and_only_true_conflicts_are_refused() {
    let e = entries_of(
        r#"{"version": 1, "persist": [
        {"storage": "/persist",
         "directories": ["/var/lib", {"path": "/srv/boot/early", "inInitrd": true}, "/srv/boot"],
         "files": ["/etc/app.conf"],
         "users": {"alice": {"directories": [".config/fcitx5", ".config"]}}},
        {"storage": "/state",
         "directories": ["/var/lib/nixos", "/var/lib/nixos/inner", "/etc/app.conf/x",
                         {"path": "/var/lib", "mode": "0700"}]}]}"#,
    );
    let lines = problem_lines(&e);
    let want = [
        r#"persist[0].directories[1] ("/srv/boot/early"): has inInitrd but is inside "/srv/boot", persisted by persist[0].directories[2] without it: that mount comes later, in stage 2, and would hide this one; give both inInitrd or neither"#,
        r#"persist[1].directories[3] ("/var/lib"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[1].directories[2] ("/etc/app.conf/x"): is inside "/etc/app.conf", persisted by persist[0].files[0] as a file"#,
    ];
    for w in want {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w}\nin\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), want.len(), "{}", lines.join("\n"));
    let kept: Vec<(&str, Option<&str>)> = e
        .persisted
        .iter()
        .map(|p| (p.path.as_str(), p.outer_storage.as_deref()))
        .collect();
    assert_eq!(
        kept,
        [
            ("/etc/app.conf", None),
            ("/home/alice/.config", None),
            ("/home/alice/.config/fcitx5", Some("/persist")),
            ("/srv/boot", None),
            ("/var/lib", None),
            ("/var/lib/nixos", Some("/persist")),
            ("/var/lib/nixos/inner", Some("/state")),
        ]
    );
}

#[test]
fn an_entry_s_mount_options_follow_its_storage_s_and_a_bad_one_skips_only_that_entry() {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist", "hideMounts": true,
           "mountOptions": ["nodev"],
           "directories": [{"path": "/a", "mountOptions": ["x-gvfs-trash", "x-gvfs-hide"]},
                           "/b", {"path": "/c", "mountOptions": ["a,b"]}],
           "files": [{"path": "/etc/f", "mountOptions": ["ro"]}]}]}"#,
    );
    let got: Vec<(&str, Vec<&str>)> = e
        .persisted
        .iter()
        .map(|p| {
            (
                p.path.as_str(),
                p.options.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", vec!["x-gvfs-hide", "nodev", "x-gvfs-trash"]),
            ("/b", vec!["x-gvfs-hide", "nodev"]),
            ("/etc/f", vec!["x-gvfs-hide", "nodev", "ro"]),
        ]
    );
    assert_eq!(
        problem_lines(&e),
        [
            r#"persist[0].directories[2].mountOptions[0] ("a,b"): is not a single mount option; expected one option per list item, without commas or spaces, such as "noatime"; this entry is skipped, the others are still mounted"#
        ]
    );
}

#[test]
fn a_parent_directory_takes_the_defaults_of_created_parents_for_what_it_leaves_unset() {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "files": [{"path": "/var/keys/secret", "parentDirectory": {"mode": "0700"}}, "/etc/plain"],
           "users": {"alice": {"files": [{"path": ".config/app/key",
                                          "parentDirectory": {"group": "wheel"}}]}}}]}"#,
    );
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    let parent_of = |path: &str| {
        e.persisted
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("{path} not kept"))
            .parent
            .clone()
    };
    assert_eq!(
        parent_of("/var/keys/secret"),
        Some(entries::Parent {
            user: Id::Name("root".into()),
            group: entries::Group::Id(Id::Name("root".into())),
            mode: 0o700
        })
    );
    assert_eq!(parent_of("/etc/plain"), None);
    assert_eq!(
        parent_of("/home/alice/.config/app/key"),
        Some(entries::Parent {
            user: Id::Name("alice".into()),
            group: entries::Group::Id(Id::Name("wheel".into())),
            mode: 0o755
        })
    );
    let err = parse_str(
        r#"{"version": 1, "persist": [{"storage": "/p",
           "files": [{"path": "/x/y", "parentDirectory": {"mode": "0700", "recursive": true}}]}]}"#,
    )
    .map(|_| ())
    .expect_err("an unknown key in parentDirectory is refused");
    assert!(err.to_string().contains("recursive"), "{err}");
}

#[test]
fn a_symlink_is_for_files_other_than_the_machine_id_and_outside_the_initrd() {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "directories": [{"path": "/var/lib/app", "method": "symlink"}],
           "files": [{"path": "/etc/app.json", "method": "symlink"},
                     {"path": "/etc/machine-id", "method": "symlink"},
                     {"path": "/etc/early", "method": "symlink", "inInitrd": true},
                     {"path": "/etc/bound", "method": "bind"}]}]}"#,
    );
    let kept: Vec<(&str, Method)> = e
        .persisted
        .iter()
        .map(|p| (p.path.as_str(), p.method))
        .collect();
    assert_eq!(
        kept,
        [
            ("/etc/app.json", Method::Symlink),
            ("/etc/bound", Method::Bind)
        ]
    );
    let lines = problem_lines(&e);
    for w in [
        r#"persist[0].directories[0] ("/var/lib/app"): is a directory, and "method": "symlink" is for files"#,
        r#"persist[0].files[1] ("/etc/machine-id"): cannot be a symlink"#,
        r#"persist[0].files[2] ("/etc/early"): has both "method": "symlink" and inInitrd"#,
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w}\nin\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), 3, "{}", lines.join("\n"));
}
