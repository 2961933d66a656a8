//! zfs-bad-clock: the clock of an earlier boot decides nothing. Boot 1 runs
//! with the guest clock in 2099, so the previous root is archived under a
//! 2099 name; boots 2 and 3 run with the real clock and keep
//! `{ days 30, min 1, max 1 }`. The old roots are ranked by the order ZFS
//! created them (`createtxg`), not by their names: after boot 2 the root it
//! archived (newest by `createtxg`, oldest by name) is the one kept and the
//! 2099 one (oldest by `createtxg`) is the one the pruning unit destroys,
//! with a log line saying that the name in the future is treated as now.
//! After boot 3 again exactly one old root is left: the one boot 3 archived.
//! Stage 1 destroys nothing in any boot.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, is_timestamp_name};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::scenarios::btrfs_rotation::REPORT;
use crate::scenarios::zfs_rollback::ZFS_REPORT;
use crate::{Env, Result, ensure};

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

/// The clock of boot 1.
const FUTURE: &str = "2099-01-01T00:00:00";

/// Guest helpers: the old roots as `name@createtxg` (in `zfs list` order),
/// what each holds in `/tabula-boot` (mounted read-only), and the pruning
/// unit's lines about names in the future.
const BAD_CLOCK: &str = r#"
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
prunelog() {
  journalctl -b -o cat -u tabula-prune.service | sed 's/^/PRUNE: /'
  mark "future-lines=$(journalctl -b -o cat -u tabula-prune.service | grep -c 'is named after a time later than now' || true)"
}
"#;

/// The script of boot `n`: report, mark the root with `n`, wait for the
/// pruning unit, list the old roots before and after it.
fn script(n: u32) -> String {
    format!(
        "{REPORT}{ZFS_REPORT}{BAD_CLOCK}\nmark \"clock-year=$(date -u +%Y)\"\n\
         oldtxg old-early\nzreport\nwait_prune\noldtxg old-after\noldboot\nprunelog\n\
         echo {n} >/tabula-boot\nsync\n"
    )
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

    // Boot 1: the clock in 2099. The image's root is archived under a 2099
    // name; it is the only old root, the pruning unit keeps it.
    let b1 = boot(&ctx, "future-clock", 1, &img, Some(FUTURE))?;
    check_eq(
        "boot 1: guest clock year",
        b1.get("clock-year"),
        Some("2099"),
        Some(&b1),
    )?;
    let after1 = old_roots(&b1, "old-after")?;
    check_eq(
        "boot 1: old roots after pruning",
        after1.len(),
        1,
        Some(&b1),
    )?;
    let (future_name, future_txg) = after1[0].clone();
    ensure!(
        future_name.starts_with("2099-") && is_timestamp_name(&future_name),
        "boot 1: the root archived under the 2099 clock is named {future_name:?}; {}",
        b1.describe()
    );

    // Boot 2: the real clock. Stage 1 archives boot 1's root under today's
    // name: newest by createtxg, oldest by name. max 1: the pruning unit
    // keeps it and destroys the 2099 one.
    let b2 = boot(&ctx, "real-clock", 2, &img, None)?;
    ensure!(
        b2.get("clock-year").is_some_and(|y| y != "2099"),
        "boot 2: the guest clock still says {:?}; {}",
        b2.get("clock-year"),
        b2.describe()
    );
    let after2 = old_roots(&b2, "old-after")?;
    check_eq(
        "boot 2: old roots after pruning",
        after2.len(),
        1,
        Some(&b2),
    )?;
    let (kept2, txg2) = after2[0].clone();
    ensure!(
        kept2 != future_name && is_timestamp_name(&kept2) && kept2 < future_name,
        "boot 2: the old root kept is {kept2:?}, expected the one boot 2 archived \
         (named before {future_name:?}); {}",
        b2.describe()
    );
    ensure!(
        txg2 > future_txg,
        "boot 2: the kept old root {kept2} has createtxg {txg2}, not after the 2099 one's \
         ({future_name}, {future_txg}); {}",
        b2.describe()
    );
    check_eq(
        "boot 2: the kept old root holds the file boot 1 wrote",
        b2.get("old-holds"),
        Some("1"),
        Some(&b2),
    )?;
    check_eq(
        "boot 2: pruning-unit lines saying a name lies in the future",
        b2.get("future-lines"),
        Some("1"),
        Some(&b2),
    )?;
    let warned =
        format!("rpool/local/old_roots/{future_name} is named after a time later than now");
    ensure!(
        b2.log.contains(&warned),
        "boot 2: no line {warned:?} in the console; {}",
        b2.describe()
    );

    // Boot 3: again exactly one old root, the one boot 3 archived.
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
        kept3 != kept2 && txg3 > txg2 && is_timestamp_name(&kept3),
        "boot 3: the old root kept is {kept3:?} (createtxg {txg3}), expected the one boot 3 \
         archived, after {kept2:?} (createtxg {txg2}); {}",
        b3.describe()
    );
    check_eq(
        "boot 3: the kept old root holds the file boot 2 wrote",
        b3.get("old-holds"),
        Some("2"),
        Some(&b3),
    )?;
    check_eq(
        "boot 3: pruning-unit lines saying a name lies in the future",
        b3.get("future-lines"),
        Some("0"),
        Some(&b3),
    )?;
    ensure!(
        b3.get("snapshots")
            .is_some_and(|s| s.split(',').any(|x| x == "rpool/local/root@blank")),
        "rpool/local/root@blank is gone after three rotations: {:?}; {}",
        b3.get("snapshots"),
        b3.describe()
    );
    Ok(Outcome::Pass)
}
