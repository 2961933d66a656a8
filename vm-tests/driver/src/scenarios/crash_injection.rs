//! crash-injection: QEMU is killed (SIGKILL: a power cut for the guest) at a
//! random instant while tabula-rollback rotates, prunes (nested subvolumes)
//! and creates the new root, many times. After every cut the next boot's
//! rollback succeeds, exactly one root exists, old roots follow the keep
//! policy, no stray subvolume is left, and `@persist` is bit-for-bit
//! unchanged. Finally a full boot into systemd works.
//!
//! `TABULA_CRASH_ITERATIONS` (default 10) and `TABULA_CRASH_SEED` (printed
//! by every run) replay a run.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq, is_timestamp_name, ls, tree_digest};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::qemu::{End, Hook};
use crate::{Context, Env, Result, bail, ensure, sh};
use std::time::Duration;

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root",
      "oldRoots": "@old_roots", "keep": { "days": null, "min": 1, "max": 3 } }
  ]
}"#;

/// A tiny deterministic generator (xorshift64*), enough for kill instants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn uptime_ms(b: &crate::qemu::Boot, key: &str) -> Option<u64> {
    b.marks.iter().find_map(|m| {
        let mut w = m.split_whitespace();
        let first = w.next()?;
        if !first.starts_with(key) {
            return None;
        }
        w.find_map(|x| x.strip_prefix("uptime_ms="))
            .and_then(|v| v.parse().ok())
    })
}

/// Fill `@root`, `@persist` and three old roots with nested subvolumes.
fn seed(m: &Mount) -> Result<()> {
    subvol(&m.p("@root"))?;
    subvol(&m.p("@persist"))?;
    subvol(&m.p("@old_roots"))?;
    sh::bash(
        r#"cd "$1"
mkdir -p @persist/etc/ssh @persist/var/lib/app @root/etc
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"@persist/var/lib/app/blob$i"; done
echo host-key >@persist/etc/ssh/ssh_host_ed25519_key; chmod 600 @persist/etc/ssh/ssh_host_ed25519_key
chown -R 65534:65534 @persist/var/lib/app
for i in $(seq 1 200); do echo "$i" >"@root/etc/file$i"; done
for d in 2020-01-01T00:00:00Z 2020-01-02T00:00:00Z 2020-01-03T00:00:00Z; do
  btrfs -q subvolume create "@old_roots/$d"
  mkdir -p "@old_roots/$d/var/lib"
  btrfs -q subvolume create "@old_roots/$d/var/lib/machines"
  btrfs -q subvolume create "@old_roots/$d/var/lib/machines/inner"
  echo old >"@old_roots/$d/var/lib/machines/inner/file"
done"#,
        &[&m.dir],
    )?;
    Ok(())
}

/// Add an old root from 2019 with nested subvolumes three deep, so that the
/// next rotation (keep max 3) prunes it, nested subvolumes first.
fn replenish(img: &std::path::Path, n: usize) -> Result<()> {
    let m = Mount::btrfs(img)?;
    let name = format!("2019-01-01T00:{:02}:{:02}Z", (n / 60) % 60, n % 60);
    sh::bash(
        r#"cd "$1/@old_roots"
btrfs -q subvolume create "$2"
mkdir -p "$2/var/lib"
btrfs -q subvolume create "$2/var/lib/machines"
btrfs -q subvolume create "$2/var/lib/machines/inner"
btrfs -q subvolume create "$2/var/lib/machines/inner/deepest"
echo old >"$2/var/lib/machines/inner/deepest/file""#,
        &[m.dir.display().to_string(), name],
    )?;
    Ok(())
}

/// The invariants after a completed rollback.
fn check_disk(img: &std::path::Path, persist_before: &str, root_empty: bool) -> Result<usize> {
    let m = Mount::btrfs(img)?;
    check_eq(
        "top level of the disk (exactly one root, no leftover temporary name)",
        ls(&m.dir)?,
        vec![
            "@old_roots".into(),
            "@persist".into(),
            "@root".into(),
            "@usr".into(),
        ],
        None,
    )?;
    let old = ls(&m.p("@old_roots"))?;
    ensure!(
        old.iter().all(|n| is_timestamp_name(n)),
        "@old_roots holds unexpected names: {old:?}"
    );
    ensure!(
        (1..=3).contains(&old.len()),
        "keep max 3 / min 1 violated: @old_roots = {old:?}"
    );
    if root_empty {
        ensure!(ls(&m.p("@root"))?.is_empty(), "the new @root is not empty");
    }
    // Every subvolume must be one of ours or inside an old root.
    let list_all = sh::run(
        "btrfs",
        &["subvolume", "list", &m.dir.display().to_string()],
    )?;
    for line in list_all.lines() {
        let path = line.rsplit(" path ").next().unwrap_or_default();
        let ok = ["@root", "@usr", "@persist", "@old_roots"].contains(&path)
            || old.iter().any(|o| {
                path == format!("@old_roots/{o}") || path.starts_with(&format!("@old_roots/{o}/"))
            });
        ensure!(ok, "stray subvolume after the rollback: {path}");
    }
    let after = tree_digest(&m.p("@persist"))?;
    ensure!(
        after == persist_before,
        "@persist changed across the power cut"
    );
    Ok(old.len())
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "crash-injection")?;
    let iterations: u32 = std::env::var("TABULA_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed_v: u64 = std::env::var("TABULA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash-injection: {iterations} power cuts, TABULA_CRASH_SEED={seed_v}");
    let mut rng = Rng(seed_v);
    let img = ctx.btrfs_image("disk.img", seed)?;
    let persist_before = {
        let m = Mount::btrfs(&img)?;
        tree_digest(&m.p("@persist"))?
    };
    let mut rotate = Spec::new(Flavour::Scripted, Fs::Btrfs, CONFIG, "");
    rotate.mode = Mode::RotateOnly;
    rotate.timeout = Duration::from_secs(120);

    // A clean run measures the window to aim at.
    let b = ctx.boot("measure", &img, &rotate)?;
    check_eq(
        "clean rotation exit status",
        b.get("rollback-exit"),
        Some("0"),
        Some(&b),
    )?;
    let (Some(s), Some(e)) = (
        uptime_ms(&b, "rollback-start"),
        uptime_ms(&b, "rollback-exit="),
    ) else {
        bail!("no rollback timing markers; {}", b.describe());
    };
    let window = ((e.saturating_sub(s)) * 6 / 5).max(100);
    eprintln!(
        "crash-injection: a clean rotation (prune of 3 nested old roots) took ~{} ms; killing within {window} ms of its start",
        e - s
    );
    check_disk(&img, &persist_before, true)?;

    // Deterministic: stop right after each step of the state machine, both
    // as a process crash whose writes the kernel still commits (abort, then
    // the initrd syncs and powers off) and as a power cut right after the
    // step (QEMU killed as soon as the abort is printed: the uncommitted
    // transaction is lost). Then a normal boot must recover.
    Env::require_bin(&env.rollback_fault).ctx(
        "crash-injection needs the fault-injection build: cargo build --release \
         --target x86_64-unknown-linux-musl --target-dir target/fault-injection \
         -p tabula-rollback --features fault-injection (vm-tests/run.sh does it)",
    )?;
    let mut reached = 0;
    let mut stops: Vec<Vec<String>> = tabula_rollback::fault::STEPS
        .iter()
        // Btrfs steps only (crash-injection-zfs stops after the zfs-* ones).
        .filter(|s| !s.starts_with("leftover") && !s.starts_with("zfs-"))
        .map(|s| vec![s.to_string()])
        .collect();
    // Leftovers exist only after an earlier stop: stop there first.
    stops.push(vec!["created".into(), "leftover-removed".into()]);
    stops.push(vec!["exchanged".into(), "leftover-archived".into()]);
    stops.push(vec!["nested-destroyed:2".into()]);
    for (k, seq) in stops.iter().enumerate() {
        for cut in [false, true] {
            let mut label = String::new();
            let mut hit_last = false;
            for (j, step) in seq.iter().enumerate() {
                replenish(&img, k * 10 + j + usize::from(cut) * 100)?;
                let mut spec = rotate.clone();
                spec.rollback_bin = Some(env.rollback_fault.clone());
                spec.cmdline = format!("tabula.harness.fault={step}");
                // Only the last stop of a sequence is a power cut.
                let cut_here = cut && j + 1 == seq.len();
                label = format!(
                    "{}-{}",
                    if cut_here { "cut" } else { "abort" },
                    step.replace(':', "_")
                );
                let b = ctx.boot_with(&label, &img, &spec, &mut |line| {
                    if cut_here && line.contains("fault injection: aborting") {
                        Hook::KillAfter(Duration::ZERO)
                    } else {
                        Hook::Continue
                    }
                })?;
                hit_last = b.log.contains("fault injection: aborting");
            }
            reached += usize::from(hit_last);
            let r = ctx.boot(&format!("recover-{label}"), &img, &rotate)?;
            if r.get("rollback-exit") != Some("0") {
                bail!(
                    "after {label}: the next rollback failed ({:?}); {}",
                    r.get("rollback-exit"),
                    r.describe()
                );
            }
            let n = check_disk(&img, &persist_before, true)
                .ctx(format!("after {label} and a recovery boot"))?;
            eprintln!(
                "crash-injection: {:40} {} -> recovered, one root, {n} old roots, @persist unchanged",
                seq.join(" then ") + if cut { " (power cut)" } else { " (abort)" },
                if hit_last {
                    "stopped there"
                } else {
                    "STEP NOT REACHED"
                }
            );
        }
    }
    ensure!(
        reached == 2 * stops.len(),
        "only {reached} of the fault-injection stops were reached: the harness is not exercising the state machine"
    );

    // Random instants: power cuts anywhere in the rotation.
    let mut killed_after: Vec<String> = Vec::new();
    let _ = &killed_after;
    for i in 1..=iterations {
        replenish(&img, 1000 + i as usize)?;
        let delay = Duration::from_millis(rng.next() % window);
        let mut last_step = String::from("(before its first action)");
        let mut armed = false;
        let b = ctx.boot_with(&format!("cut{i:02}"), &img, &rotate, &mut |line| {
            if let Some(p) = line.find("tabula-rollback[") {
                if let Some(msg) = line[p..].split_once("]: ").map(|x| x.1) {
                    last_step = msg.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                }
            }
            if !armed && line.contains("@@TABULA rollback-start") {
                armed = true;
                return Hook::KillAfter(delay);
            }
            Hook::Continue
        })?;
        let what = match b.end {
            End::Killed if b.get("rollback-exit").is_some() => {
                format!("after tabula-rollback finished (+{} ms)", delay.as_millis())
            }
            End::Killed => format!("after \"{last_step}\" (+{} ms)", delay.as_millis()),
            End::Exited(_) => format!(
                "not killed: the boot ended first (+{} ms)",
                delay.as_millis()
            ),
            End::TimedOut => bail!(
                "cut {i}: the boot timed out before the kill; {}",
                b.describe()
            ),
        };
        eprintln!("crash-injection: cut {i:2}: power cut {what}");
        killed_after.push(what);
        let r = ctx.boot(&format!("recover{i:02}"), &img, &rotate)?;
        if r.get("rollback-exit") != Some("0") {
            bail!(
                "cut {i}: the rollback after the power cut failed ({:?}); {}",
                r.get("rollback-exit"),
                r.describe()
            );
        }
        let n = check_disk(&img, &persist_before, true)
            .ctx(format!("after cut {i} and a recovery boot"))?;
        eprintln!(
            "crash-injection: cut {i:2}: recovered, one root, {n} old roots, @persist unchanged"
        );
    }
    // And the machine still boots all the way.
    let full = Spec::new(Flavour::Scripted, Fs::Btrfs, CONFIG, "mark booted=yes\n");
    let b = ctx.boot("final", &img, &full)?;
    b.expect_script_ok()?;
    check_disk(&img, &persist_before, false)?;
    Ok(Outcome::Pass)
}
