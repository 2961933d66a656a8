//! What a rotation runs: the exact command sequences of both modes, and
//! what many boots leave.

use super::*;

#[test]
fn rollback_mode_runs_exactly_rollback_r() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless("rollback_mode_runs_exactly_rollback_r", FAKE_ZFS) {
        return Ok(());
    }
    let pool = Pool::new(NOW - DAY);
    pool.zfs(&["snapshot", "rpool/local/root@later"]);
    pool.run(&target(None, Keep::default()), NOW, false, None)?;
    assert_eq!(
        pool.commands(),
        [
            "list -H -o name -t snapshot rpool/local/root@blank",
            "rollback -r rpool/local/root@blank",
        ]
    );
    let dump = pool.dump();
    assert!(dump.contains("rpool/local/root origin=- props=com.sun:auto-snapshot=false,encryption=aes-256-gcm,mountpoint=legacy rolled_back=1"), "{dump}");
    assert!(!dump.contains("@later"), "{dump}");
    Ok(())
}

#[test]
fn keep_previous_runs_the_documented_sequence() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless("keep_previous_runs_the_documented_sequence", FAKE_ZFS) {
        return Ok(());
    }
    let created = NOW - DAY;
    let pool = Pool::new(created);
    let name = keep::timestamp_name(created);
    pool.run(
        &target(Some("rpool/local/old_roots"), Keep::default()),
        NOW,
        false,
        None,
    )?;
    let old = format!("rpool/local/old_roots/{name}");
    assert_eq!(
        pool.mutations(),
        [
            "create -o canmount=off -o mountpoint=none rpool/local/old_roots".to_owned(),
            "clone -o tabula:role=new-root -o com.sun:auto-snapshot=false -o mountpoint=legacy rpool/local/root@blank rpool/local/root.tabula-new".to_owned(),
            format!("rename rpool/local/root {old}"),
            "rename rpool/local/root.tabula-new rpool/local/root".to_owned(),
            format!("set canmount=noauto {old}"),
            "promote rpool/local/root".to_owned(),
            "inherit tabula:role rpool/local/root".to_owned(),
        ]
    );
    let dump = pool.dump();
    assert!(dump.contains(&format!("{old} origin=rpool/local/root@blank props=canmount=noauto,com.sun:auto-snapshot=false,encryption=aes-256-gcm,mountpoint=legacy")), "{dump}");
    assert!(dump.contains("rpool/local/root origin=- props=com.sun:auto-snapshot=false,mountpoint=legacy rolled_back=0"), "{dump}");
    assert!(dump.contains("rpool/local/root@blank"), "{dump}");
    Ok(())
}

#[test]
fn rotations_accumulate_and_are_pruned() {
    if tabula_testkit::skip_unless("rotations_accumulate_and_are_pruned", FAKE_ZFS) {
        return;
    }
    // Ten boots, a day apart; keep 30 days but at most 4.
    let pool = Pool::new(NOW - 20 * DAY);
    let keep_policy = keep(Some(30), 1, Some(4));
    for boot in 1..=10 {
        // Each boot's rotation creates the next root at `booted`.
        let booted = NOW - 20 * DAY + boot * DAY;
        pool.set_clock(booted - 60);
        pool.boot_and_prune(&target(Some("rpool/local/old_roots"), keep_policy), booted)
            .unwrap_or_else(|e| panic!("boot {boot}: {e}"));
    }
    let dump = pool.dump();
    let olds: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("rpool/local/old_roots/"))
        .collect();
    let want: Vec<String> = (6..=9)
        .map(|b| keep::timestamp_name(NOW - 20 * DAY + b * DAY))
        .collect();
    let got: Vec<&str> = olds
        .iter()
        .filter_map(|l| l.split(' ').next())
        .filter_map(|n| n.rsplit('/').next())
        .collect();
    assert_eq!(got, want, "{dump}");
    let last = pool.mutations();
    assert!(
        last.iter()
            .any(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{last:?}"
    );
    assert!(!last.iter().any(|c| c.starts_with("create")), "{last:?}");
}

#[test]
fn dry_run_changes_nothing() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless("dry_run_changes_nothing", FAKE_ZFS) {
        return Ok(());
    }
    for old_roots in [None, Some("rpool/local/old_roots")] {
        let pool = Pool::new(NOW - DAY);
        let before = pool.dump();
        pool.run(&target(old_roots, Keep::default()), NOW, true, None)?;
        assert_eq!(pool.mutations(), Vec::<String>::new());
        assert_eq!(pool.dump(), before);
    }
    Ok(())
}
