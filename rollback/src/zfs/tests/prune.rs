//! The two halves and the keep policy: stage 1 only swaps unless the
//! safety valve opens; `--prune-only` prunes, never the root this boot
//! archived, whatever the clocks said.

use super::*;

#[test]
fn a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless(
        "a_root_stamped_in_the_future_does_not_hold_the_min_slot_forever",
        FAKE_ZFS,
    ) {
        return Ok(());
    }
    // A boot whose clock was a year ahead created the root that the next
    // boot archived: its name lies in the future, but it was archived first.
    let future = NOW + 365 * DAY;
    let pool = Pool::new(future);
    let policy = keep(Some(30), 1, Some(1));
    let old = Some("rpool/local/old_roots");
    pool.set_clock(NOW - 2 * DAY);
    pool.run(&target(old, policy), NOW - 2 * DAY, false, None)?;
    assert_eq!(old_roots(&pool), [keep::timestamp_name(future)]);
    // The next boots, with a good clock: each keeps the root it archived
    // (the most recent), and the future-stamped one goes.
    for boot in [NOW - DAY, NOW] {
        pool.set_clock(boot);
        pool.boot_and_prune(&target(old, policy), boot)?;
        let left = old_roots(&pool);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_ne!(left[0], keep::timestamp_name(future), "{left:?}");
    }
    Ok(())
}

#[test]
fn the_root_archived_by_a_run_is_never_pruned_by_it() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless("the_root_archived_by_a_run_is_never_pruned_by_it", FAKE_ZFS) {
        return Ok(());
    }
    // The root was stamped by a clock 400 days behind; keep 30 days, min 0.
    let pool = Pool::new(NOW - 400 * DAY);
    let policy = keep(Some(30), 0, None);
    pool.run(
        &target(Some("rpool/local/old_roots"), policy),
        NOW,
        false,
        None,
    )?;
    assert_eq!(
        old_roots(&pool),
        [keep::timestamp_name(NOW - 400 * DAY)],
        "{}",
        pool.dump()
    );
    Ok(())
}

#[test]
fn stage_one_never_prunes_in_the_common_case() {
    if tabula_testkit::skip_unless("stage_one_never_prunes_in_the_common_case", FAKE_ZFS) {
        return;
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 6);
    assert_eq!(old_roots(&pool).len(), 6);
}

#[test]
fn prune_only_applies_the_keep_policy_and_nothing_else() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless(
        "prune_only_applies_the_keep_policy_and_nothing_else",
        FAKE_ZFS,
    ) {
        return Ok(());
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), keep(Some(30), 1, Some(2)));
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 5);
    let before = old_roots(&pool);
    assert_eq!(before.len(), 5);
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)?;
    // The two most recently archived stay; the only changes are destroys
    // of the others.
    assert_eq!(old_roots(&pool), before[3..].to_vec());
    let muts = pool.mutations();
    assert_eq!(muts.len(), 3, "{muts:?}");
    assert!(
        muts.iter()
            .all(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{muts:?}"
    );
    // A second prune finds nothing to do.
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)?;
    assert_eq!(pool.mutations(), Vec::<String>::new());
    Ok(())
}

#[test]
fn prune_only_never_prunes_the_root_archived_by_the_current_boot() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless(
        "prune_only_never_prunes_the_root_archived_by_the_current_boot",
        FAKE_ZFS,
    ) {
        return Ok(());
    }
    // min 0, max 0 would let every old root go; the newest stays anyway.
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), keep(Some(0), 0, Some(0)));
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 3);
    let newest = old_roots(&pool).pop();
    pool.run_mode(&t, NOW, false, None, crate::Mode::PruneOnly)?;
    assert_eq!(old_roots(&pool).pop(), newest);
    assert_eq!(old_roots(&pool).len(), 1);
    Ok(())
}

#[test]
fn the_safety_valve_prunes_in_stage_one_when_the_pool_is_short_of_space() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless(
        "the_safety_valve_prunes_in_stage_one_when_the_pool_is_short_of_space",
        FAKE_ZFS,
    ) {
        return Ok(());
    }
    let pool = Pool::new(NOW - 20 * DAY);
    let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
    boots_without_pruning(&pool, &t, NOW - 20 * DAY, 3);
    // 50 MiB available of 1 GiB: below the 10% threshold.
    pool.zfs(&["set", "available=52428800", "rpool"]);
    pool.zfs(&["set", "used=1021313024", "rpool"]);
    pool.set_clock(NOW - 60);
    pool.run(&t, NOW, false, None)?;
    assert!(
        pool.mutations()
            .iter()
            .any(|c| c.starts_with("destroy -r rpool/local/old_roots/")),
        "{:?}",
        pool.mutations()
    );
    assert_eq!(old_roots(&pool).len(), 1);
    Ok(())
}
