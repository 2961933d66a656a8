//! zfs-bad-clock: the clock of an earlier boot decides nothing. An old root
//! is named after its ZFS `creation`, which the clock of the boot that
//! cloned it stamped. Boot 1 runs with the guest's real-time clock set far
//! in the future (QEMU `-rtc base=2099-...`), so the root its stage 1 clones
//! carries a creation time decades ahead; boots 2 and 3 run with the real
//! clock and keep `{ days 30, min 1, max 1 }`.
//!
//! - Boot 2 archives that root under a future name: the pruning unit keeps
//!   it (the root archived by this boot, newest by `createtxg`), prunes the
//!   older one, and logs that the name lies in the future and is treated as
//!   now.
//! - Boot 3 archives its previous root under today's name, which sorts
//!   before the future name: ranked by `createtxg`, not by name, the root
//!   boot 3 archived is the one kept and the future-named one is pruned.
//!
//! Stage 1 destroys nothing in any boot.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, is_timestamp_name};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::scenarios::btrfs_rotation::REPORT;
use crate::scenarios::zfs_rollback::ZFS_REPORT;
use crate::{Env, Result, ensure};
use tabula_rollback::keep::timestamp_name;

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": 30, "min": 1, "max": 1 } }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

/// Where the real-time clock of boot 1 starts.
const FUTURE: &str = "2099-01-01T00:00:00";

/// Ten years: a creation time this far past the host's clock is "in the
/// future" beyond doubt.
const DECADE: i64 = 10 * 365 * 86_400;

/// Guest helpers: the creation time of the root, the old roots as
/// `name@createtxg` (in `zfs list` order), and what each holds in
/// `/tabula-boot` (mounted read-only).
const BAD_CLOCK: &str = r#"
created() {
  mark "root-created=$(zfs get -H -p -o value creation rpool/local/root)"
}
oldtxg() {
  mark "$1=$(zfs list -H -p -o name,createtxg -r -d 1 rpool/local/old_roots | grep '^rpool/local/old_roots/' | sed 's#^rpool/local/old_roots/##' | tr '\t' @ | paste -sd,)"
}
oldboot() {
  local n found=""
  mkdir -p /run/old
  for n in $(zfs list -H -o name -r -d 1 rpool/local/old_roots | grep '^rpool/local/old_roots/'); do
    if mount -t zfs -o ro "$n" /run/old 2>/dev/null; then
      found="$found${found:+,}$(cat /run/old/tabula-boot 2>/dev/null || echo none)"
      umount /run/old
    else
      found="$found${found:+,}unmountable"
    fi
  done
  mark "old-holds=$found"
}
"#;

/// The script of boot `n`: report, wait for the pruning unit, list the old
/// roots (`old-early` is for the log only: the unit may already have run),
/// then mark the root with `n`.
fn script(n: u32) -> String {
    format!(
        "{REPORT}{ZFS_REPORT}{BAD_CLOCK}\nmark \"clock-year=$(date -u +%Y)\"\ncreated\n\
         oldtxg old-early\nzreport\nwait_prune\noldtxg old-after\noldboot\n\
         echo {n} >/tabula-boot\nsync\n"
    )
}

/// The console lines of tabula-rollback (stage 1 and the pruning unit)
/// saying that an old root's name lies in the future.
fn future_lines(b: &Boot) -> Vec<&str> {
    b.log
        .lines()
        .filter(|l| {
            l.contains("tabula-rollback[") && l.contains("is named after a time later than now")
        })
        .collect()
}

/// `name@createtxg` pairs of a marker.
fn old_roots(b: &Boot, key: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for item in b.get(key).unwrap_or_default().split(',') {
        if item.is_empty() {
            continue;
        }
        let parsed = item
            .rsplit_once('@')
            .and_then(|(n, t)| Some((n.to_owned(), t.parse::<u64>().ok()?)));
        ensure!(
            parsed.is_some(),
            "{key}: {item:?} is not name@createtxg; {}",
            b.describe()
        );
        out.extend(parsed);
    }
    Ok(out)
}

/// Boot `n` (its clock starting at `rtc`, or the host's), checked to have
/// run its script, the rollback and the pruning unit to success with stage 1
/// destroying nothing.
fn boot(ctx: &Ctx, label: &str, n: u32, img: &std::path::Path, rtc: Option<&str>) -> Result<Boot> {
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, &script(n));
    spec.rtc_base = rtc.map(str::to_owned);
    let b = ctx.boot(label, img, &spec)?;
    b.expect_script_ok()?;
    b.expect_stage1_deleted_nothing()?;
    b.expect_pruned()?;
    check_eq(
        &format!("boot {n}: tabula-rollback exit status"),
        b.get("rollback-exit"),
        Some("0"),
        Some(&b),
    )?;
    Ok(b)
}

/// Run the scenario (scripted flavour).
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "zfs-bad-clock")?;
    let img = ctx.zfs_image("disk.img")?;
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));

    // Boot 1: the clock far ahead. Stage 1 archives the image's root and
    // clones the new root, whose creation time lies decades ahead.
    let b1 = boot(&ctx, "future-clock", 1, &img, Some(FUTURE))?;
    let created: i64 = b1
        .get("root-created")
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    println!(
        "observed: with -rtc base={FUTURE}, boot 1 stamped its root's creation {} \
         (stage 2's clock, after systemd's own check, says {:?})",
        timestamp_name(created),
        b1.get("clock-year")
    );
    ensure!(
        created > host_now + DECADE,
        "boot 1: the root cloned under the clock of {FUTURE} has creation {created} ({}), \
         not decades ahead of the host's {host_now}; {}",
        timestamp_name(created),
        b1.describe()
    );
    let future_name = timestamp_name(created);
    let after1 = old_roots(&b1, "old-after")?;
    check_eq(
        "boot 1: old roots after pruning",
        after1.len(),
        1,
        Some(&b1),
    )?;
    let (first, first_txg) = after1[0].clone();

    // Boot 2: the real clock. Stage 1 archives boot 1's root under the
    // future name; max 1: the pruning unit keeps it (archived by this boot,
    // newest by createtxg) and prunes the image's root.
    let b2 = boot(&ctx, "real-clock", 2, &img, None)?;
    let after2 = old_roots(&b2, "old-after")?;
    check_eq(
        "boot 2: old roots after pruning",
        after2.len(),
        1,
        Some(&b2),
    )?;
    let (kept2, txg2) = after2[0].clone();
    check_eq(
        "boot 2: the old root kept (the one boot 2 archived, named after boot 1's clock)",
        kept2.as_str(),
        future_name.as_str(),
        Some(&b2),
    )?;
    ensure!(
        txg2 > first_txg,
        "boot 2: the kept old root {kept2} has createtxg {txg2}, not after the pruned one's \
         ({first}, {first_txg}); {}",
        b2.describe()
    );
    check_eq(
        "boot 2: the kept old root holds the file boot 1 wrote",
        b2.get("old-holds"),
        Some("1"),
        Some(&b2),
    )?;
    let warned =
        format!("rpool/local/old_roots/{future_name} is named after a time later than now");
    let lines = future_lines(&b2);
    ensure!(
        lines.len() == 1 && lines[0].contains(&warned) && lines[0].contains("treated as made now"),
        "boot 2: expected one line {warned:?} ... \"treated as made now\", got {lines:?}; {}",
        b2.describe()
    );

    // Boot 3: its previous root is archived under today's name, which sorts
    // before the future name; by createtxg it is the newest: kept, and the
    // future-named one pruned.
    let b3 = boot(&ctx, "again", 3, &img, None)?;
    let after3 = old_roots(&b3, "old-after")?;
    check_eq(
        "boot 3: old roots after pruning",
        after3.len(),
        1,
        Some(&b3),
    )?;
    let (kept3, txg3) = after3[0].clone();
    ensure!(
        kept3 < future_name && txg3 > txg2 && is_timestamp_name(&kept3),
        "boot 3: the old root kept is {kept3:?} (createtxg {txg3}), expected the one boot 3 \
         archived: named before {future_name:?}, created after it (createtxg {txg2}); {}",
        b3.describe()
    );
    check_eq(
        "boot 3: the kept old root holds the file boot 2 wrote",
        b3.get("old-holds"),
        Some("2"),
        Some(&b3),
    )?;
    let lines = future_lines(&b3);
    ensure!(
        lines.len() == 1 && lines[0].contains(&warned),
        "boot 3: expected one line {warned:?}, got {lines:?}; {}",
        b3.describe()
    );
    ensure!(
        b3.get("snapshots")
            .is_some_and(|s| s.split(',').any(|x| x == "rpool/local/root@blank")),
        "rpool/local/root@blank is gone after three rotations: {:?}; {}",
        b3.get("snapshots"),
        b3.describe()
    );
    Ok(Outcome::Pass)
}
