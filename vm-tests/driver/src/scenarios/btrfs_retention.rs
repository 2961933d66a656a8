//! btrfs-retention: many old roots of varied ages with nested subvolumes
//! three deep, a pinned (renamed) old root and a plain directory: the keep
//! policy (days 30, min 2, max 5) deletes exactly the expected entries with
//! everything nested in them, and touches nothing else. Stage 1 only swaps
//! (deletes nothing); the pruning unit does the pruning once the guest is
//! up, and the guest script waits for it before powering off.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, ls, tree_digest};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::{Env, Result, ensure, sh};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root",
      "oldRoots": "@old_roots", "keep": { "days": 30, "min": 2, "max": 5 } }
  ]
}"#;

/// Ages in days of the seeded old roots.
const AGES: [u64; 10] = [1, 2, 5, 10, 20, 29, 31, 45, 60, 400];

fn name_at(secs: u64) -> Result<String> {
    Ok(sh::run(
        "date",
        &["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"],
    )?
    .trim()
    .to_owned())
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "btrfs-retention")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut names = Vec::new();
    for a in AGES {
        names.push(name_at(now - a * 86_400 - 3_600)?);
    }
    let pinned = "pinned-by-user";
    let plain = name_at(now - 500 * 86_400)?; // old timestamp name, but a plain directory
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))?;
        sh::bash(r#"echo precious >"$1/@persist/file""#, &[&m.dir])?;
        // Oldest first, as a real machine's boots leave them: the keep
        // policy ranks old roots by creation order. The pinned one was
        // archived before any of them and renamed by its user.
        let pinned = pinned.to_owned();
        let seeded: Vec<(usize, &String)> = std::iter::once((names.len(), &pinned))
            .chain(names.iter().enumerate().rev())
            .collect();
        for (i, n) in seeded {
            let d = m.p(&format!("@old_roots/{n}"));
            subvol(&d)?;
            sh::bash(
                r#"cd "$1"; echo "$2" >marker
if (( $2 % 2 == 0 )); then
  mkdir -p var/lib; btrfs -q subvolume create var/lib/docker
  btrfs -q subvolume create var/lib/docker/layer; btrfs -q subvolume create var/lib/docker/layer/deep
  echo x >var/lib/docker/layer/deep/f
fi"#,
                &[d.display().to_string(), i.to_string()],
            )?;
        }
        sh::bash(r#"mkdir -p "$1/@old_roots/$2" && echo user-data >"$1/@old_roots/$2/keep-me""#, &[m.dir.display().to_string(), plain.clone()])?;
        // The root last: the previous boot made it after archiving the
        // newest old root.
        subvol(&m.p("@root"))?;
        Ok(())
    })?;
    let (persist_before, pinned_before, plain_before) = {
        let m = Mount::btrfs(&img)?;
        (
            tree_digest(&m.p("@persist"))?,
            tree_digest(&m.p(&format!("@old_roots/{pinned}")))?,
            tree_digest(&m.p(&format!("@old_roots/{plain}")))?,
        )
    };
    let b = ctx.boot(
        "retain",
        &img,
        &Spec::new(
            Flavour::Scripted,
            Fs::Btrfs,
            CONFIG,
            "wait_prune\nmark booted=yes\n",
        ),
    )?;
    b.expect_script_ok()?;
    b.expect_stage1_deleted_nothing()?;
    b.expect_pruned()?;
    check_eq(
        "tabula-rollback exit status",
        b.get("rollback-exit"),
        Some("0"),
        Some(&b),
    )?;

    let m = Mount::btrfs(&img)?;
    let after = ls(&m.p("@old_roots"))?;
    // Expected: the new old root (age 0) and the 4 newest seeded ones under
    // 30 days (max 5 in all), the pinned one, the plain directory.
    let mut expect: Vec<String> = names[..4].to_vec();
    expect.push(pinned.to_owned());
    expect.push(plain.clone());
    let new: Vec<&String> = after.iter().filter(|n| !expect.contains(n)).collect();
    check_eq("old roots added by the boot", new.len(), 1, Some(&b))?;
    for e in &expect {
        ensure!(
            after.contains(e),
            "{e} was deleted but the policy keeps it; left: {after:?}; {}",
            b.describe()
        );
    }
    for gone in &names[4..] {
        ensure!(
            !after.contains(gone),
            "{gone} (older than 30 days or beyond max 5) survived: {after:?}"
        );
    }
    let subvols = sh::run(
        "btrfs",
        &["subvolume", "list", &m.dir.display().to_string()],
    )?;
    for line in subvols.lines() {
        let path = line.rsplit(" path ").next().unwrap_or_default();
        let ok = ["@root", "@usr", "@persist", "@old_roots"].contains(&path)
            || after.iter().any(|o| {
                path == format!("@old_roots/{o}") || path.starts_with(&format!("@old_roots/{o}/"))
            });
        ensure!(
            ok,
            "a nested subvolume of a pruned old root survived: {path}"
        );
    }
    ensure!(
        tree_digest(&m.p("@persist"))? == persist_before,
        "@persist changed"
    );
    ensure!(
        tree_digest(&m.p(&format!("@old_roots/{pinned}")))? == pinned_before,
        "the pinned old root changed"
    );
    ensure!(
        tree_digest(&m.p(&format!("@old_roots/{plain}")))? == plain_before,
        "the plain directory in @old_roots changed"
    );
    ensure!(
        b.log.contains(pinned),
        "the log does not mention the pinned entry {pinned}; {}",
        b.describe()
    );
    Ok(Outcome::Pass)
}
