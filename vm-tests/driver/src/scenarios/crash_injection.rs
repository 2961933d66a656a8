//! crash-injection: QEMU is killed (SIGKILL: a power cut for the guest) at a
//! random instant while tabula-rollback rotates and creates the new root in
//! stage 1, and while the pruning half (`--prune-only`, the booted system's
//! `tabula-prune.service`) prunes old roots with nested subvolumes, many
//! times. Each boot runs stage 1 then the pruning run, both in the initrd
//! (`tabula.harness.prune`: the same binary and arguments as the unit, without
//! the seconds a systemd boot costs). After every cut the next boot's
//! rollback and pruning succeed, exactly one root exists, old roots follow the
//! keep policy, no stray subvolume is left, and `@persist` is bit-for-bit
//! unchanged. Finally a full boot into systemd, whose pruning unit runs.
//!
//! `TABULA_CRASH_ITERATIONS` (default 10) and `TABULA_CRASH_SEED` (printed
//! by every run) replay a run.

use crate::harness::{
    Ctx, Fs, Mode, Outcome, Spec, check_eq, check_report, is_timestamp_name, ls, tree_digest,
};
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

/// Fill `@persist`, three old roots with nested subvolumes (oldest first,
/// as boots leave them: the keep policy ranks by creation order), then
/// `@root`.
fn seed(m: &Mount) -> Result<()> {
    subvol(&m.p("@persist"))?;
    subvol(&m.p("@old_roots"))?;
    sh::bash(
        r#"cd "$1"
mkdir -p @persist/etc/ssh @persist/var/lib/app
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"@persist/var/lib/app/blob$i"; done
echo host-key >@persist/etc/ssh/ssh_host_ed25519_key; chmod 600 @persist/etc/ssh/ssh_host_ed25519_key
chown -R 65534:65534 @persist/var/lib/app
for d in 2020-01-01T00:00:00Z 2020-01-02T00:00:00Z 2020-01-03T00:00:00Z; do
  btrfs -q subvolume create "@old_roots/$d"
  mkdir -p "@old_roots/$d/var/lib"
  btrfs -q subvolume create "@old_roots/$d/var/lib/machines"
  btrfs -q subvolume create "@old_roots/$d/var/lib/machines/inner"
  echo old >"@old_roots/$d/var/lib/machines/inner/file"
done
btrfs -q subvolume create @root
mkdir -p @root/etc
for i in $(seq 1 200); do echo "$i" >"@root/etc/file$i"; done"#,
        &[&m.dir],
    )?;
    Ok(())
}

/// Give the current `@root` subvolumes nested three deep (as a machine's
/// root with `/var/lib/machines` has), so that stage 1 archives it with them
/// and a later pruning run deletes them, deepest first. Called before every
/// boot, so that every old root the pruning run meets has them. Old roots are
/// only ever made by boots, so the creation order stays the boots' order.
fn replenish(img: &std::path::Path, n: usize) -> Result<()> {
    let m = Mount::btrfs(img)?;
    sh::bash(
        r#"cd "$1"
[ -d @root ] || exit 0
d="@root/var/lib/machines-$2"
mkdir -p "@root/var/lib"
btrfs -q subvolume create "$d"
btrfs -q subvolume create "$d/inner"
btrfs -q subvolume create "$d/inner/deepest"
echo old >"$d/inner/deepest/file""#,
        &[m.dir.display().to_string(), n.to_string()],
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
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
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
    rotate.cmdline = "tabula.harness.prune".into();
    rotate.timeout = Duration::from_secs(120);

    // A clean run measures the window to aim at.
    replenish(&img, 0)?;
    let b = ctx.boot("measure", &img, &rotate)?;
    check_report(
        &b,
        &[
            ("clean rotation exit status", "rollback-exit", "0"),
            ("clean pruning run exit status", "prune-exit", "0"),
        ],
    )?;
    b.expect_stage1_deleted_nothing()?;
    let (Some(start), Some(end)) = (
        uptime_ms(&b, "rollback-start"),
        uptime_ms(&b, "prune-exit="),
    ) else {
        bail!("no rollback/pruning timing markers; {}", b.describe());
    };
    let window = ((end.saturating_sub(start)) * 6 / 5).max(100);
    eprintln!(
        "crash-injection: a clean stage 1 + pruning run (one old root with nested subvolumes pruned) took ~{} ms; killing within {window} ms of the rollback's start",
        end - start
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
    // Stage 1's steps (it prunes nothing here: the safety valve stays
    // shut), then the pruning run's (`prune:<step>`; each run prunes one
    // old root with two or three nested subvolumes), then chains: leftovers
    // exist only after an earlier stop, and a pruning run may follow a
    // stage 1 that stopped.
    let stops: Vec<Vec<String>> = [
        &["mounted"][..],
        &["created"],
        &["exchanged"],
        &["archived"],
        &["prune:mounted"],
        &["prune:nested-destroyed:1"],
        &["prune:nested-destroyed:2"],
        &["prune:pruned:1"],
        &["created", "leftover-removed"],
        &["exchanged", "leftover-archived"],
        &["exchanged", "prune:nested-destroyed:1"],
        &["prune:nested-destroyed:2", "prune:pruned:1", "exchanged"],
    ]
    .iter()
    .map(|seq| seq.iter().map(ToString::to_string).collect())
    .collect();
    for (k, seq) in stops.iter().enumerate() {
        for cut in [false, true] {
            let mut label = String::new();
            let mut hit_last = false;
            for (j, step) in seq.iter().enumerate() {
                replenish(&img, 100 + k * 10 + j + usize::from(cut) * 200)?;
                let mut spec = rotate.clone();
                spec.rollback_bin = Some(env.rollback_fault.clone());
                spec.cmdline = match step.strip_prefix("prune:") {
                    Some(p) => format!("tabula.harness.prune tabula.harness.prunefault={p}"),
                    None => format!("tabula.harness.prune tabula.harness.fault={step}"),
                };
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
            replenish(&img, 500 + k * 10 + usize::from(cut) * 200)?;
            let r = ctx.boot(&format!("recover-{label}"), &img, &rotate)?;
            if r.get("rollback-exit") != Some("0") || r.get("prune-exit") != Some("0") {
                bail!(
                    "after {label}: the next rollback or pruning run failed (rollback-exit={:?}, prune-exit={:?}); {}",
                    r.get("rollback-exit"),
                    r.get("prune-exit"),
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

    // Random instants: power cuts anywhere in stage 1's rotation and the
    // pruning run after it.
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
            End::Killed if b.get("prune-exit").is_some() => {
                format!("after the pruning run finished (+{} ms)", delay.as_millis())
            }
            End::Killed if b.get("rollback-exit").is_some() => format!(
                "in the pruning run, after \"{last_step}\" (+{} ms)",
                delay.as_millis()
            ),
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
        replenish(&img, 2000 + i as usize)?;
        let r = ctx.boot(&format!("recover{i:02}"), &img, &rotate)?;
        if r.get("rollback-exit") != Some("0") || r.get("prune-exit") != Some("0") {
            bail!(
                "cut {i}: the rollback or pruning run after the power cut failed (rollback-exit={:?}, prune-exit={:?}); {}",
                r.get("rollback-exit"),
                r.get("prune-exit"),
                r.describe()
            );
        }
        let n = check_disk(&img, &persist_before, true)
            .ctx(format!("after cut {i} and a recovery boot"))?;
        eprintln!(
            "crash-injection: cut {i:2}: recovered, one root, {n} old roots, @persist unchanged"
        );
    }
    // And the machine still boots all the way, and its pruning unit runs.
    replenish(&img, 9999)?;
    let full = Spec::new(
        Flavour::Scripted,
        Fs::Btrfs,
        CONFIG,
        "wait_prune\nmark booted=yes\n",
    );
    let b = ctx.boot("final", &img, &full)?;
    b.expect_script_ok()?;
    b.expect_stage1_deleted_nothing()?;
    b.expect_pruned()?;
    check_disk(&img, &persist_before, false)?;
    Ok(Outcome::Pass)
}
