//! crash-injection-zfs: the ZFS keep-previous rotation (clone, rename,
//! rename, promote, prune) stopped between any two `zfs` commands.
//!
//! 1. With the `fault-injection` build: a stop right after every step
//!    (`zfs-cloned`, `zfs-archived`, `zfs-renamed`, `zfs-promoted`,
//!    `zfs-pruned`, and the steps of the runs that finish an interrupted
//!    one), each both as a process crash (abort; the initrd then exports the
//!    pool and powers off) and as a power cut (QEMU killed the instant the
//!    abort is printed); then `oldRoots: null`'s `zfs-rolled-back` the same
//!    way.
//! 2. Power cuts (QEMU killed) at random instants from `zfs clone` to the
//!    end of the run.
//!
//! `zfs-pruned` is a step of the pruning half (`--prune-only`, the booted
//! system's `tabula-prune.service`), run right after stage 1 for that stop.
//! After every stop, a recovery boot runs the normal rollback in stage 1
//! (same binary, configuration and `zpool import -N` as a normal boot), then
//! the pruning half, and inspects the pool from the initrd shell: the rollback succeeded;
//! exactly one `rpool/local/root` (unmarked, promoted, owning `@blank`,
//! holding nothing), no leftover `.tabula-new`, 1–2 old roots (keep min 1,
//! max 2), exactly one of them holding the file written on the root before
//! the stop, and `rpool/safe/persist` unchanged (sha256 of every file).
//! Finally a full boot into systemd.
//!
//! `TABULA_CRASH_ZFS_ITERATIONS` (default 5) and `TABULA_CRASH_SEED`.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq};
use crate::initrd::Flavour;
use crate::qemu::{End, Hook};
use crate::{Context, Env, Result, bail, ensure};
use std::time::Duration;

mod guest;

use guest::{CONFIG, CONFIG_NULL, SEED, inspect};

/// One stop: boot the fault-injection build with `TABULA_FAULT_AFTER=step`,
/// as an abort or (when `cut`) a power cut at the abort. Returns whether the
/// step was reached.
fn stop(
    ctx: &Ctx,
    img: &std::path::Path,
    config: &str,
    step: &str,
    cut: bool,
    label: &str,
) -> Result<bool> {
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, config, "");
    spec.mode = Mode::RotateOnly;
    spec.timeout = Duration::from_secs(180);
    spec.rollback_bin = Some(ctx.env.rollback_fault.clone());
    // Stage 1 prunes nothing (the safety valve stays shut): `zfs-pruned`
    // is a step of the pruning half, run right after stage 1 as the
    // booted system's unit would run it.
    spec.cmdline = if step == "zfs-pruned" {
        format!("tabula.harness.prune tabula.harness.prunefault={step}")
    } else {
        format!("tabula.harness.fault={step}")
    };
    let b = ctx.boot_with(label, img, &spec, &mut |line| {
        if cut && line.contains("fault injection: aborting") {
            Hook::KillAfter(Duration::ZERO)
        } else {
            Hook::Continue
        }
    })?;
    if b.end == End::TimedOut {
        bail!("{label}: timed out; {}", b.describe());
    }
    Ok(b.log.contains("fault injection: aborting"))
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
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
                | 1
        });
    eprintln!("crash-injection-zfs: {iterations} power cuts, TABULA_CRASH_SEED={seed}");
    Env::require_bin(&env.rollback_fault).ctx(
        "crash-injection-zfs needs the fault-injection build: cargo build --release \
         --target x86_64-unknown-linux-musl --target-dir target/fault-injection \
         -p tabula-rollback --features fault-injection (vm-tests/run.sh does it)",
    )?;
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
    let mut next = 1;
    let (_, clean) = inspect(&ctx, &img, "inspect-clean", CONFIG, false, None, next)?;
    let persist = clean.persist;

    // 1. A stop after every step. The second stop of a pair is reached only
    // in the run that finishes an interrupted one (after the first stop).
    let mut stops: Vec<Vec<&str>> = tabula_rollback::fault::STEPS
        .iter()
        .filter(|s| s.starts_with("zfs-") && **s != "zfs-rolled-back")
        .map(|s| vec![*s])
        .collect();
    // After `zfs-archived` the next run renames the new root into place
    // (the recovery's own `zfs-renamed`); after `zfs-renamed` it promotes.
    stops.push(vec!["zfs-archived", "zfs-renamed"]);
    stops.push(vec!["zfs-renamed", "zfs-promoted"]);
    let mut reached = 0;
    let mut total = 0;
    for seq in &stops {
        for cut in [false, true] {
            let gen_before = next;
            let mut label = String::new();
            let mut hit_last = false;
            for (j, step) in seq.iter().enumerate() {
                // Only the last stop of a sequence is a power cut.
                let cut_here = cut && j + 1 == seq.len();
                label = format!("{}-{step}", if cut_here { "cut" } else { "abort" });
                hit_last = stop(&ctx, &img, CONFIG, step, cut_here, &label)?;
            }
            total += 1;
            reached += usize::from(hit_last);
            next += 1;
            let (_, st) = inspect(
                &ctx,
                &img,
                &format!("recover-{label}"),
                CONFIG,
                true,
                Some(gen_before),
                next,
            )
            .ctx(format!("after {}", seq.join(" then ")))?;
            ensure!(
                (1..=2).contains(&st.old_roots),
                "after {label}: keep min 1 / max 2 violated: {} old roots",
                st.old_roots
            );
            ensure!(
                st.persist == persist,
                "after {label}: rpool/safe/persist changed"
            );
            eprintln!(
                "crash-injection-zfs: {:36} {} -> recovered, one root, {} old roots, the previous root kept, persist unchanged",
                seq.join(" then ") + if cut { " (power cut)" } else { " (abort)" },
                if hit_last {
                    "stopped there"
                } else {
                    "STEP NOT REACHED"
                },
                st.old_roots
            );
        }
    }
    ensure!(
        reached == total,
        "only {reached} of {total} fault-injection stops were reached: the harness is not exercising the ZFS state machine"
    );

    // 2. Random instants from `zfs clone` to the end of the run. A clean
    // run's kernel timestamps of tabula-rollback's own log lines give the
    // window.
    let b = ctx.boot("measure-window", &img, &rotate)?;
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
    // A negative span (it cannot be, but the stamps are parsed text) gives
    // 0 and then the 200 ms floor.
    let span_ms = Duration::try_from_secs_f64(t1 - t0).map_or(0, |d| d.as_millis());
    let window = u64::try_from(span_ms).unwrap_or(u64::MAX).max(200);
    eprintln!(
        "crash-injection-zfs: clone to done took ~{window} ms in a clean run; cutting within it"
    );
    next += 1;
    inspect(&ctx, &img, "inspect-window", CONFIG, false, None, next)?;
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
        let gen_before = next;
        next += 1;
        let (_, st) = inspect(
            &ctx,
            &img,
            &format!("recover{i:02}"),
            CONFIG,
            true,
            Some(gen_before),
            next,
        )?;
        ensure!(
            (1..=2).contains(&st.old_roots),
            "cut {i}: keep min 1 / max 2 violated: {} old roots",
            st.old_roots
        );
        ensure!(st.persist == persist, "cut {i}: rpool/safe/persist changed");
        eprintln!(
            "crash-injection-zfs: cut {i}: recovered, one root, @blank kept, the previous root kept, persist unchanged"
        );
    }

    // 3. `oldRoots: null`: a stop right after `zfs rollback -r`, then a
    // normal run; the old roots of the rotations above are left alone.
    for cut in [false, true] {
        let label = format!("{}-zfs-rolled-back", if cut { "cut" } else { "abort" });
        let before = next;
        ensure!(
            stop(&ctx, &img, CONFIG_NULL, "zfs-rolled-back", cut, &label)?,
            "{label}: step zfs-rolled-back not reached"
        );
        let (b, st) = inspect(
            &ctx,
            &img,
            &format!("recover-{label}"),
            CONFIG_NULL,
            true,
            None,
            next,
        )?;
        ensure!(
            !b.all("old-files")
                .iter()
                .any(|v| v.contains(&format!("gen-{before}"))),
            "{label}: the rolled-back root's file is in an old root: {:?}",
            b.all("old-files")
        );
        ensure!(
            (1..=2).contains(&st.old_roots),
            "{label}: old roots changed without oldRoots: {}",
            st.old_roots
        );
        ensure!(st.persist == persist, "{label}: rpool/safe/persist changed");
        eprintln!(
            "crash-injection-zfs: oldRoots null, zfs-rolled-back ({}) -> root rolled back, persist unchanged",
            if cut { "power cut" } else { "abort" }
        );
    }

    // And the machine still boots all the way.
    let full = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, "mark booted=yes\n");
    let b = ctx.boot("final", &img, &full)?;
    b.expect_script_ok()?;
    check_eq("final boot", b.get("booted"), Some("yes"), Some(&b))?;
    Ok(Outcome::Pass)
}
