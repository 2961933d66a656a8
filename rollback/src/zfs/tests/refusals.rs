//! What a run refuses, changing nothing, and the errors it stops with.

use super::*;

#[test]
fn a_missing_snapshot_is_refused_and_nothing_changes() {
    if tabula_testkit::skip_unless(
        "a_missing_snapshot_is_refused_and_nothing_changes",
        FAKE_ZFS,
    ) {
        return;
    }
    for old_roots in [None, Some("rpool/local/old_roots")] {
        let pool = Pool::new(NOW - DAY);
        pool.zfs(&["destroy", "rpool/local/root@blank"]);
        let before = pool.dump();
        let err = pool
            .run(&target(old_roots, Keep::default()), NOW, false, None)
            .err();
        assert!(
            matches!(&err, Some(ZfsError::SnapshotMissing { snapshot }) if snapshot == "rpool/local/root@blank"),
            "{err:?}"
        );
        assert_eq!(pool.mutations(), Vec::<String>::new());
        assert_eq!(pool.dump(), before);
    }
}

#[test]
fn refusals_change_nothing() {
    type Setup = fn(&Pool);
    type Refusal = fn(&ZfsError) -> bool;
    if tabula_testkit::skip_unless("refusals_change_nothing", FAKE_ZFS) {
        return;
    }
    let keep_previous = target(Some("rpool/local/old_roots"), Keep::default());
    let cases: &[(&str, Setup, Refusal)] = &[
        (
            "foreign temp",
            |p| {
                p.zfs(&["create", "rpool/local/root.tabula-new"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: None }
                    if dataset == "rpool/local/root.tabula-new")
            },
        ),
        (
            "child dataset",
            |p| {
                p.zfs(&["create", "rpool/local/root/var"]);
            },
            |e| {
                matches!(e, ZfsError::ChildDatasets { root, children }
                    if root == "rpool/local/root" && children == &["rpool/local/root/var"])
            },
        ),
        (
            "no root",
            |p| {
                p.zfs(&["destroy", "-r", "rpool/local/root"]);
            },
            |e| {
                matches!(e, ZfsError::RootMissing { root, temp }
                    if root == "rpool/local/root" && temp == "rpool/local/root.tabula-new")
            },
        ),
        (
            "unmarked clone of @blank, written to",
            |p| {
                p.zfs(&[
                    "clone",
                    "rpool/local/root@blank",
                    "rpool/local/root.tabula-new",
                ]);
                p.zfs(&["write", "rpool/local/root.tabula-new", "precious"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: Some(snapshot) }
                    if dataset == "rpool/local/root.tabula-new" && snapshot == "rpool/local/root@blank")
            },
        ),
        (
            "unmarked clone of another snapshot",
            |p| {
                p.zfs(&["snapshot", "rpool/safe@mine"]);
                p.zfs(&["clone", "rpool/safe@mine", "rpool/local/root.tabula-new"]);
            },
            |e| {
                matches!(e, ZfsError::NotMadeByTabula { dataset, clone_of: None }
                    if dataset == "rpool/local/root.tabula-new")
            },
        ),
    ];
    for (what, setup, refusal) in cases {
        let pool = Pool::new(NOW - DAY);
        setup(&pool);
        let before = pool.dump();
        let err = pool.run(&keep_previous, NOW, false, None).err();
        assert!(err.as_ref().is_some_and(refusal), "{what}: {err:?}");
        assert_eq!(pool.mutations(), Vec::<String>::new(), "{what}");
        assert_eq!(pool.dump(), before, "{what}");
    }
}

#[test]
fn a_missing_zfs_program_is_named() {
    let t = ZfsTarget {
        zfs_command: "/nonexistent/zfs".into(),
        ..target(None, Keep::default())
    };
    let err = run(
        &t,
        &Ctx {
            now: NOW,
            dry_run: false,
            run_dir: std::env::temp_dir(),
            mode: crate::Mode::Boot,
        },
    )
    .err();
    assert!(
        matches!(&err, Some(ZfsError::Spawn { command, .. }) if command == "/nonexistent/zfs"),
        "{err:?}"
    );
}

#[test]
fn a_prune_blocked_by_a_dependent_clone_stops_with_the_reason() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless(
        "a_prune_blocked_by_a_dependent_clone_stops_with_the_reason",
        FAKE_ZFS,
    ) {
        return Ok(());
    }
    let pool = Pool::new(NOW - 90 * DAY);
    let t = target(Some("rpool/local/old_roots"), keep(Some(30), 0, None));
    pool.run(&t, NOW - 89 * DAY, false, None)?;
    let old = format!(
        "rpool/local/old_roots/{}",
        keep::timestamp_name(NOW - 90 * DAY)
    );
    pool.zfs(&["snapshot", &format!("{old}@mine")]);
    pool.zfs(&["clone", &format!("{old}@mine"), "rpool/safe/rescued"]);
    pool.set_clock(NOW - DAY);
    let err = pool.boot_and_prune(&t, NOW).err();
    assert!(
        matches!(&err, Some(ZfsError::Failed { argv, stderr, .. })
            if *argv == format!("zfs destroy -r {old}") && stderr.contains("dependent clones")),
        "{err:?}"
    );
    assert!(pool.dump().contains("rpool/safe/rescued"));
    Ok(())
}

#[test]
fn a_written_clone_at_the_reserved_name_is_refused_saying_how_to_tell_a_torn_one() {
    let err = ZfsError::NotMadeByTabula {
        dataset: "rpool/local/root.tabula-new".into(),
        clone_of: Some("rpool/local/root@blank".into()),
    };
    assert_eq!(
        err.to_string(),
        "rpool/local/root.tabula-new exists but was not made by tabula (tabula:role is not new-root); \
         nothing was changed. It is a clone of rpool/local/root@blank, as a power cut during `zfs clone` \
         leaves one, but something was written to it: compare it with \
         `zfs diff rpool/local/root@blank rpool/local/root.tabula-new` and, if nothing of yours is in it, \
         `zfs destroy rpool/local/root.tabula-new`"
    );
    let err = ZfsError::NotMadeByTabula {
        dataset: "rpool/local/root.tabula-new".into(),
        clone_of: None,
    };
    assert!(
        err.to_string()
            .ends_with("nothing was changed. Rename or destroy it yourself"),
        "{err}"
    );
}
