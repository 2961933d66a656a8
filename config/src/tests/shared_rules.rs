//! The rules the NixOS module states too, against `config/rules.json`.

use super::*;

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
        "oldRootName" => string(|s| {
            if old_root::is_old_root_name(s) {
                Ok(())
            } else {
                Err("is not an old root's name".to_owned())
            }
        }),
        // A pair [inner, outer] of normalised names: whether inner is outer
        // or lies below it.
        "within" => match value.as_array().map(Vec::as_slice) {
            Some([Value::String(inner), Value::String(outer)]) => {
                if names::is_within(inner, outer) {
                    Ok(())
                } else {
                    Err(format!("{inner:?} is not within {outer:?}"))
                }
            }
            _ => Err(format!("{value} is not a pair of names")),
        },
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
    let table: Value = serde_json::from_str(include_str!("../../rules.json"))
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
