//! The rollback targets: their fields, their defaults, and two targets
//! against each other.

use super::*;

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

fn two_targets(a: &str, b: &str) -> Result<Config, ConfigError> {
    parse_str(&format!(
        r#"{{"version": 1, "rollback": [{{{a}}}, {{{b}}}]}}"#
    ))
}

#[test]
fn two_roots_on_one_device_with_separate_old_roots_are_accepted() -> TestResult {
    let root = r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@root", "blank": "@blank", "oldRoots": "@old_roots/root""#;
    let home = r#""type": "btrfs", "device": "/dev/vda2", "subvolume": "@home", "blank": "@blank", "oldRoots": "@old_roots/home""#;
    let c = two_targets(root, home)?;
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
    Ok(())
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
            .map_or_else(|| panic!("accepted {a} with {b}"), |e| e.to_string());
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
fn an_unset_keep_policy_keeps_thirty_days_and_at_least_one_root() -> TestResult {
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
        let c = one_target(&target)?;
        assert_eq!(keep_of(&c), want, "{target}");
    }
    assert_eq!(Keep::default(), want);
    // An explicit null means no age limit, not the default.
    let c = one_target(&format!(r#"{{{BTRFS}, "keep": {{"days": null}}}}"#))?;
    assert_eq!(keep_of(&c).days, None);
    Ok(())
}

#[test]
fn unset_target_fields_take_their_documented_defaults() -> TestResult {
    let c = one_target(&format!("{{{BTRFS}}}"))?;
    let RollbackTarget::Btrfs(b) = &c.rollback[0] else {
        panic!("not btrfs")
    };
    assert_eq!((b.wait_seconds, b.blank.as_deref()), (30, None));
    assert!(b.mount_options.is_empty());
    let c = one_target(&format!("{{{ZFS}}}"))?;
    let RollbackTarget::Zfs(z) = &c.rollback[0] else {
        panic!("not zfs")
    };
    assert_eq!(
        (z.snapshot.as_str(), z.zfs_command.as_str()),
        ("blank", "zfs")
    );
    assert_eq!(z.pool(), "rpool");
    Ok(())
}

#[test]
fn keep_max_equal_to_min_is_accepted_and_one_below_is_refused() -> TestResult {
    let c = one_target(&format!(r#"{{{BTRFS}, "keep": {{"min": 3, "max": 3}}}}"#))?;
    assert_eq!(keep_of(&c).max, Some(3));
    let e = target_error(&format!(r#"{{{BTRFS}, "keep": {{"min": 3, "max": 2}}}}"#));
    assert!(
        e.contains("rollback[0].keep.max: 2 is below keep.min (3)"),
        "{e}"
    );
    let e = target_error(&format!(r#"{{{ZFS}, "keep": {{"min": 3, "max": 2}}}}"#));
    assert!(e.contains("rollback[0].keep.max: 2 is below"), "{e}");
    Ok(())
}

#[test]
fn wait_seconds_of_one_hour_is_accepted_and_one_more_is_refused() -> TestResult {
    let c = one_target(&format!(r#"{{{BTRFS}, "waitSeconds": 3600}}"#))?;
    let RollbackTarget::Btrfs(b) = &c.rollback[0] else {
        panic!("not btrfs")
    };
    assert_eq!(b.wait_seconds, 3600);
    let e = target_error(&format!(r#"{{{BTRFS}, "waitSeconds": 3601}}"#));
    assert!(
        e.contains("rollback[0].waitSeconds: 3601 is more than an hour; expected at most 3600"),
        "{e}"
    );
    Ok(())
}
