//! Crash recovery: a power cut at each step of a rotation or of a pruning
//! run, and a clone torn by one, are finished by the next run.

use super::*;

#[test]
fn a_power_cut_at_every_step_is_recovered() {
    if tabula_testkit::skip_unless("a_power_cut_at_every_step_is_recovered", FAKE_ZFS) {
        return;
    }
    let created = NOW - 3 * DAY;
    let name = keep::timestamp_name(created);
    let old_roots = Some("rpool/local/old_roots");
    // Seven pool changes make a first rotation (see the sequence test).
    for cut in 0..7 {
        let pool = Pool::new(created);
        let err = pool.run(&target(old_roots, Keep::default()), NOW, false, Some(cut));
        assert!(
            err.is_err(),
            "cut after {cut} changes, yet the run succeeded"
        );
        pool.run(&target(old_roots, Keep::default()), NOW, false, None)
            .unwrap_or_else(|e| {
                panic!("run after a cut after {cut} changes: {e}\n{}", pool.dump())
            });
        assert_settled(&pool, std::slice::from_ref(&name));
        // And the run after that is an ordinary rotation.
        pool.set_clock(NOW - DAY);
        pool.run(&target(old_roots, Keep::default()), NOW, false, None)
            .unwrap_or_else(|e| panic!("second rotation after cut {cut}: {e}\n{}", pool.dump()));
        let dump = pool.dump();
        assert_eq!(
            dump.lines()
                .filter(|l| l.starts_with("rpool/local/old_roots/"))
                .count(),
            2,
            "{dump}"
        );
    }
}

#[test]
fn a_clone_torn_by_a_power_cut_is_recovered() -> Result<(), ZfsError> {
    if tabula_testkit::skip_unless("a_clone_torn_by_a_power_cut_is_recovered", FAKE_ZFS) {
        return Ok(());
    }
    // `zfs clone -o` creates the clone, then sets its properties: a power
    // cut between the two leaves an unmarked, empty clone of @blank.
    let pool = Pool::new(NOW - DAY);
    pool.zfs(&[
        "clone",
        "rpool/local/root@blank",
        "rpool/local/root.tabula-new",
    ]);
    pool.run(
        &target(Some("rpool/local/old_roots"), Keep::default()),
        NOW,
        false,
        None,
    )?;
    assert_eq!(pool.mutations()[0], "destroy rpool/local/root.tabula-new");
    assert_settled(&pool, &[keep::timestamp_name(NOW - DAY)]);
    Ok(())
}

#[test]
fn a_power_cut_during_the_pruning_run_is_recovered() {
    if tabula_testkit::skip_unless("a_power_cut_during_the_pruning_run_is_recovered", FAKE_ZFS) {
        return;
    }
    // Four boots leave four old roots; the pruning run destroys three, and
    // is cut before each of its destroys in turn.
    for cut in 0..3 {
        let pool = Pool::new(NOW - 20 * DAY);
        let t = target(Some("rpool/local/old_roots"), EVERY_DAY_ONE);
        boots_without_pruning(&pool, &t, NOW - 20 * DAY, 4);
        let err = pool.run_mode(&t, NOW, false, Some(cut), crate::Mode::PruneOnly);
        assert!(
            err.is_err(),
            "cut after {cut} changes, yet the prune succeeded"
        );
        // Whatever the cut left, the newest old root is there.
        let left = old_roots(&pool);
        assert_eq!(
            left.last(),
            Some(&keep::timestamp_name(NOW - 20 * DAY + 3 * DAY)),
            "cut {cut}: {left:?}"
        );
        // The next boot and its pruning run settle it.
        pool.set_clock(NOW - 60);
        pool.boot_and_prune(&t, NOW)
            .unwrap_or_else(|e| panic!("after cut {cut}: {e}\n{}", pool.dump()));
        assert_eq!(old_roots(&pool).len(), 1, "cut {cut}: {}", pool.dump());
        assert!(pool.dump().contains("rpool/local/root "), "{}", pool.dump());
    }
}
