use serde_json::json;

use super::table::{Table, table};
use super::*;
use crate::entries::check_entries;

fn config(directories: &serde_json::Value) -> Config {
    let doc = json!({
        "version": 1,
        "rollback": [{"type": "zfs", "dataset": "rpool/local/root", "oldRoots": "rpool/local/old"}],
        "persist": [{"storage": "/persist", "directories": directories}]
    });
    crate::parse(
        &doc.to_string(),
        std::path::Path::new("/etc/tabula/config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn problems(directories: &serde_json::Value) -> Vec<String> {
    check_entries(&config(directories))
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_seed_s_per_service_property_table_is_expressible() {
    // The per-service ZFS layout: media 1M, SQLite apps 16K, PostgreSQL data
    // 8K, its write-ahead log 128K uncompressed.
    let c = config(&json!([
        {"path": "/var/lib/plex", "zfs": {"properties": {"recordsize": "1M", "compression": "lz4"}}},
        {"path": "/var/lib/sonarr", "zfs": {"dataset": "tank/services/sonarr", "properties": {"recordsize": "16K", "compression": "lz4"}}},
        {"path": "/var/lib/postgresql", "zfs": {"properties": {"recordsize": "8K", "compression": "lz4"}}},
        {"path": "/var/lib/postgresql-wal", "zfs": {"properties": {"recordsize": "128K", "compression": "off"}}},
        {"path": "/var/lib/containers", "btrfs": {"subvolume": true, "nodatacow": true, "compression": null}},
        {"path": "/var/log", "btrfs": {"compression": "zstd:3"}}
    ]));
    let e = check_entries(&c);
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    let plex = e
        .persisted
        .iter()
        .find(|p| p.path == "/var/lib/plex")
        .unwrap();
    assert_eq!(
        plex.backing,
        Some(Backing::Zfs(ZfsSource {
            dataset: DatasetName::ChildOfStorage {
                storage: "/persist".into(),
                child: "var-lib-plex".into()
            },
            properties: vec![
                ("compression".into(), "lz4".into()),
                ("recordsize".into(), "1M".into())
            ],
        }))
    );
}

#[test]
fn an_unknown_property_is_refused_naming_the_field_the_value_and_what_is_allowed() {
    let p = problems(&json!([{"path": "/var/lib/x", "zfs": {"properties": {"recordsize": "3K"}}}]));
    assert_eq!(
        p,
        [
            "persist[0].directories[0].zfs.properties.recordsize (\"3K\"): is \"3K\"; expected a power of two from 512 to 16M, in bytes or with K or M (\"512\", \"16K\", \"1M\"); this entry is skipped, the others are still mounted"
        ]
    );
    let p = problems(&json!([{"path": "/var/lib/x", "zfs": {"properties": {"recordize": "1M"}}}]));
    assert!(p[0].starts_with("persist[0].directories[0].zfs.properties.recordize (\"1M\"): is not a ZFS property tabula sets; expected one of "), "{p:?}");
    assert!(p[0].contains("recordsize"), "{p:?}");
}

#[test]
fn mountpoint_and_canmount_are_tabula_s_and_refused_with_the_reason() {
    for name in ["mountpoint", "canmount"] {
        let p = problems(&json!([{"path": "/var/lib/x", "zfs": {"properties": {name: "legacy"}}}]));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains(&format!("zfs.properties.{name}")), "{p:?}");
        assert!(p[0].contains("mountpoint=legacy"), "{p:?}");
    }
}

#[test]
fn a_dataset_or_subvolume_is_for_directories_only_and_one_kind_per_entry() {
    let doc = json!({
        "version": 1,
        "persist": [{"storage": "/persist",
            "files": [{"path": "/etc/x", "zfs": {}}],
            "directories": [
                {"path": "/var/lib/a", "zfs": {}, "btrfs": {}},
                {"path": "/var/lib/b", "inInitrd": true, "btrfs": {}},
                {"path": "/var/lib/c", "btrfs": {"subvolume": false}},
                {"path": "/var/lib/d e", "zfs": {}},
                {"path": "/var/lib/f", "btrfs": {"nodatacow": true, "compression": "zstd"}}
            ]}]
    });
    let c = crate::parse(&doc.to_string(), std::path::Path::new("/c.json")).unwrap();
    let p: Vec<String> = check_entries(&c)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(p.len(), 6, "{p:#?}");
    assert!(
        p.iter()
            .any(|l| l.contains("directories[0]") && l.contains("both"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("directories[1].btrfs") && l.contains("inInitrd"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("directories[2].btrfs.subvolume"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("directories[3].zfs") && l.contains("name one"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("directories[4].btrfs.compression") && l.contains("nodatacow"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("files[0].zfs") && l.contains("is a file"))
    );
}

#[test]
fn a_dataset_is_never_shared_nor_inside_what_the_rollback_replaces() {
    let p = problems(&json!([
        {"path": "/var/lib/a", "zfs": {"dataset": "tank/a"}},
        {"path": "/var/lib/b", "zfs": {"dataset": "tank/a"}},
        {"path": "/var/lib/c", "zfs": {"dataset": "rpool/local/root/c"}},
        {"path": "/var/lib/d", "zfs": {"dataset": "rpool/local/old"}},
        {"path": "/var/lib-e", "zfs": {}},
        {"path": "/var/lib/e", "zfs": {}}
    ]));
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p.iter().any(|l| l.starts_with("persist[0].directories[5] (\"the child \\\"var-lib-e\\\" of the dataset of /persist\"): is the dataset of persist[0].directories[4] too")), "{p:#?}");
    assert!(p.iter().any(|l| l.starts_with(
        "persist[0].directories[1] (\"tank/a\"): is the dataset of persist[0].directories[0] too"
    )));
    assert!(
        p.iter()
            .any(|l| l.contains("directories[2]") && l.contains("rollback[0].dataset"))
    );
    assert!(
        p.iter()
            .any(|l| l.contains("directories[3]") && l.contains("rollback[0].oldRoots"))
    );
}

#[test]
fn an_own_dataset_inside_another_entry_s_own_dataset_in_one_storage_is_refused() {
    let p = problems(&json!([
        {"path": "/var/lib/postgresql", "zfs": {}},
        {"path": "/var/lib/postgresql/16/pg_wal", "zfs": {"dataset": "rpool/safe/wal"}},
        "/var/lib/postgresql/16/extra",
        {"path": "/srv", "btrfs": {}},
        {"path": "/srv/inner", "btrfs": {}}
    ]));
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with("persist[0].directories[1] (\"/var/lib/postgresql/16/pg_wal\"): has its own dataset inside \"/var/lib/postgresql\"'s (persist[0].directories[0]), in one storage, which is not supported"),
        "{p:#?}"
    );
}

#[test]
fn version_one_without_the_keys_is_unchanged() {
    let c = config(&json!(["/var/lib/x", {"path": "/var/lib/y", "zfs": null, "btrfs": null}]));
    let e = check_entries(&c);
    assert!(e.problems.is_empty());
    assert!(e.persisted.iter().all(|p| p.backing.is_none()));
}

#[test]
fn the_table_parses_and_every_kind_it_names_is_known() {
    let parsed: Result<Table, _> = serde_json::from_str(TABLE_JSON);
    assert!(parsed.is_ok(), "config/sources.json: {parsed:?}");
    let t = table();
    assert!(t.zfs.properties.len() > 20);
    assert!(is_create_only("utf8only") && !is_create_only("recordsize"));
    for name in t.zfs.refused.keys() {
        assert!(
            !t.zfs.properties.contains_key(name),
            "{name} is both allowed and refused"
        );
    }
}

#[test]
fn property_values_must_be_strings_or_the_file_is_refused() {
    let doc = json!({"version": 1, "persist": [{"storage": "/persist",
        "directories": [{"path": "/var/lib/x", "zfs": {"properties": {"recordsize": 8192}}}]}]});
    let e = crate::parse(&doc.to_string(), std::path::Path::new("/c.json")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/c.json: persist[0].directories[0].zfs.properties.recordsize: "),
        "{e}"
    );
}

#[test]
fn sizes_compare_as_the_bytes_zfs_prints() {
    assert_eq!(zfs_size_bytes("recordsize", "8K"), Some(8192));
    assert_eq!(zfs_size_bytes("recordsize", "1M"), Some(1 << 20));
    assert_eq!(zfs_size_bytes("quota", "none"), Some(0));
    assert_eq!(zfs_size_bytes("quota", "10g"), Some(10 << 30));
    assert_eq!(zfs_size_bytes("compression", "lz4"), None);
    assert_eq!(zfs_size_bytes("com.example:x", "1"), None);
}
