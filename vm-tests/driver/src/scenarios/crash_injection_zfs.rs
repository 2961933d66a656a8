//! crash-injection-zfs: power cuts (QEMU killed) at random instants of the
//! ZFS keep-previous rotation (clone, rename, rename, promote, prune). After
//! every cut the next boot's rollback succeeds; then, inspected from an
//! initrd shell: exactly one `rpool/local/root` (unmarked, not a clone,
//! owning `@blank`), no leftover `.tabula-new`, old roots per policy, and
//! `rpool/safe/persist` unchanged (sha256 of every file).
//!
//! `TABULA_CRASH_ZFS_ITERATIONS` (default 5) and `TABULA_CRASH_SEED`.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq};
use crate::initrd::Flavour;
use crate::qemu::{Boot, End, Hook};
use crate::{Env, Result, bail, ensure};
use std::time::Duration;

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": null, "min": 1, "max": 2 } }
  ]
}"#;

/// Seed `rpool/safe/persist` with files (initrd shell, busybox).
const SEED: &str = r#"
set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
mkdir -p /p && mount -t zfs rpool/safe/persist /p
mkdir -p /p/etc/ssh /p/var/lib/app
for i in 1 2 3 4 5 6 7 8 9 10; do head -c $((i * 4099)) /dev/urandom >/p/var/lib/app/blob$i; done
echo key >/p/etc/ssh/ssh_host_ed25519_key
umount /p
zpool export rpool
"#;

/// Report the pool state (initrd shell, busybox).
const INSPECT: &str = r#"
set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
mark "datasets=$(zfs list -H -t all -o name | tr '\n' ',')"
mark "origin=$(zfs get -H -o value origin rpool/local/root) mark=$(zfs get -H -o value -s local tabula:role rpool/local/root | tr -d '\n')x"
mkdir -p /p && mount -t zfs -o ro rpool/safe/persist /p
mark "persist=$(cd /p && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-32)"
umount /p
zpool export rpool
"#;

fn inspect(ctx: &Ctx, img: &std::path::Path, label: &str) -> Result<(Boot, String)> {
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, INSPECT);
    spec.mode = Mode::InitrdScript;
    spec.timeout = Duration::from_secs(180);
    let b = ctx.boot(label, img, &spec)?;
    check_eq(
        "inspection script",
        b.get("script-exit"),
        Some("0"),
        Some(&b),
    )?;
    let ds: Vec<String> = b
        .get("datasets")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    ensure!(
        ds.iter().filter(|d| *d == "rpool/local/root").count() == 1,
        "not exactly one rpool/local/root: {ds:?}; {}",
        b.describe()
    );
    ensure!(
        ds.iter().any(|d| d == "rpool/local/root@blank"),
        "rpool/local/root@blank missing: {ds:?}; {}",
        b.describe()
    );
    ensure!(
        !ds.iter().any(|d| d.contains("tabula-new")),
        "a leftover temporary dataset: {ds:?}; {}",
        b.describe()
    );
    let old = ds
        .iter()
        .filter(|d| d.starts_with("rpool/local/old_roots/") && !d.contains('@'))
        .count();
    ensure!(
        (1..=2).contains(&old),
        "keep min 1 / max 2 violated: {old} old roots in {ds:?}"
    );
    check_eq(
        "root origin (promoted)",
        b.get("origin"),
        Some("-"),
        Some(&b),
    )?;
    let persist = b.get("persist").unwrap_or_default().to_owned();
    ensure!(persist.len() == 32, "no persist checksum; {}", b.describe());
    Ok((b, persist))
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "crash-injection-zfs")?;
    let iterations: u64 = std::env::var("TABULA_CRASH_ZFS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut seed: u64 = std::env::var("TABULA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash-injection-zfs: {iterations} power cuts, TABULA_CRASH_SEED={seed}");
    let img = ctx.zfs_image("disk.img")?;
    let mut s = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, SEED);
    s.mode = Mode::InitrdScript;
    check_eq(
        "seeding /persist",
        ctx.boot("seed", &img, &s)?.get("script-exit"),
        Some("0"),
        None,
    )?;

    let mut rotate = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, "");
    rotate.mode = Mode::RotateOnly;
    rotate.timeout = Duration::from_secs(180);
    let b = ctx.boot("measure", &img, &rotate)?;
    check_eq(
        "clean rotation exit status",
        b.get("rollback-exit"),
        Some("0"),
        Some(&b),
    )?;
    let (_, persist) = inspect(&ctx, &img, "inspect-clean")?;
    // Aim at the destructive part: from `zfs clone` to the end of the run
    // (kernel timestamps of tabula-rollback's own log lines).
    let stamp = |needle: &str| -> Option<f64> {
        b.log
            .lines()
            .find(|l| l.contains("tabula-rollback[") && l.contains(needle))
            .and_then(|l| l.strip_prefix('['))
            .and_then(|l| l.split(']').next())
            .and_then(|t| t.trim().parse().ok())
    };
    let (Some(t0), Some(t1)) = (stamp("running zfs clone"), stamp(": done")) else {
        bail!("no clone/done lines from tabula-rollback; {}", b.describe());
    };
    let window = (((t1 - t0) * 1000.0) as u64).max(200);
    eprintln!(
        "crash-injection-zfs: clone to done took ~{window} ms in a clean run; cutting within it"
    );
    for i in 1..=iterations {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % window);
        let mut last = String::new();
        let mut armed = false;
        let b = ctx.boot_with(&format!("cut{i:02}"), &img, &rotate, &mut |line| {
            if let Some(p) = line.find("tabula-rollback[") {
                if let Some((_, msg)) = line[p..].split_once("]: ") {
                    last = msg.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                }
            }
            if !armed && line.contains("tabula-rollback[") && line.contains("running zfs clone") {
                armed = true;
                return Hook::KillAfter(delay);
            }
            Hook::Continue
        })?;
        let what = match b.end {
            End::Killed if b.get("rollback-exit").is_some() => {
                "after the rollback finished".to_owned()
            }
            End::Killed => format!("after \"{last}\""),
            End::Exited(_) => "not killed: the boot ended first".to_owned(),
            End::TimedOut => bail!("cut {i}: timed out before the kill; {}", b.describe()),
        };
        eprintln!(
            "crash-injection-zfs: cut {i}: +{} ms, {what}",
            delay.as_millis()
        );
        let r = ctx.boot(&format!("recover{i:02}"), &img, &rotate)?;
        check_eq(
            &format!("cut {i}: the next rollback"),
            r.get("rollback-exit"),
            Some("0"),
            Some(&r),
        )?;
        let (_, p) = inspect(&ctx, &img, &format!("inspect{i:02}"))?;
        ensure!(p == persist, "cut {i}: rpool/safe/persist changed");
        eprintln!(
            "crash-injection-zfs: cut {i}: recovered, one root, @blank kept, persist unchanged"
        );
    }
    Ok(Outcome::Pass)
}
