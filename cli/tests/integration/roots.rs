//! `tabula roots` on a real Btrfs filesystem: each old root, in the
//! filesystem's order of creation, with what the keep policy does with it
//! at the next boot.

use crate::common::{Scratch, TestResult, assert_ok, p, sh, tabula_at};
use crate::diff::config;
use tabula_testkit::{BTRFS_ON_LOOP, skip_unless};

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn btrfs_roots_shows_each_old_root_with_what_the_keep_policy_does_next_boot() -> TestResult {
    if skip_unless(
        "btrfs_roots_shows_each_old_root_with_what_the_keep_policy_does_next_boot",
        BTRFS_ON_LOOP,
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    let (dev, top) = sc.btrfs_with_root("");
    std::fs::create_dir_all(top.join("@old_roots/not-a-subvolume"))?;
    // Archived in the order of their names (the clock was right); the
    // rollback ranks them by creation transaction, and so does the list.
    for name in [
        "2026-09-01T10:00:00Z",
        "2026-10-01T10:00:00Z",
        "2026-11-30T10:00:00Z",
        "2026-11-30T10:00:00Z.1",
        "before-upgrade",
    ] {
        sh(
            "btrfs",
            &[
                "-q",
                "subvolume",
                "create",
                p(&top.join("@old_roots").join(name)),
            ],
        );
    }
    let cfg = config(
        &sc,
        &format!(
            r#"{{"type": "btrfs", "device": "{dev}", "subvolume": "@root", "oldRoots": "@old_roots", "keep": {{"days": 30, "min": 1, "max": 3}}}}"#
        ),
    );
    let out = tabula_at("1796083200", &["--config", p(&cfg), "roots"]); // 2026-12-01T00:00:00Z
    assert_ok(&out);
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim_end).collect();
    // The pinned one shows its creation time (now, in the real clock), so
    // only its fate and place are compared.
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| !l.ends_with("before-upgrade"))
            .copied()
            .collect::<Vec<_>>(),
        [
            "2026-11-30T10:00:00Z    kept                      @old_roots/2026-11-30T10:00:00Z.1",
            "2026-11-30T10:00:00Z    kept                      @old_roots/2026-11-30T10:00:00Z",
            "2026-10-01T10:00:00Z    pruned at the next boot   @old_roots/2026-10-01T10:00:00Z",
            "2026-09-01T10:00:00Z    pruned at the next boot   @old_roots/2026-09-01T10:00:00Z",
        ]
    );
    assert!(
        lines.iter().any(
            |l| l.contains("pinned (never pruned)") && l.ends_with("@old_roots/before-upgrade")
        ),
        "{text}"
    );
    Ok(())
}
