//! A key written twice in one object is refused.

use super::*;

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
