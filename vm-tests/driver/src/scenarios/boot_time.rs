//! boot-time (a benchmark: prints figures, asserts only that boots work):
//! stage-1 time without tabula, with tabula-rollback, and with the common
//! shell script (bash-style + btrfs-progs + find, as users paste it) doing
//! the same rotation, on the same disk state: five old roots older than
//! 30 days with nested subvolumes, a root of 2,000 files. tabula's stage 1
//! only archives (it deletes nothing; pruning is the unit's after boot),
//! the script also prunes in stage 1. Also tabula's stage 1 with 0 and 40
//! old roots, the pruning unit's own run time for 0, 5 and 40 old roots,
//! and the systemd initrd, to stage 2, with and without tabula.

use crate::harness::{Ctx, Fs, Mode, Outcome, Rollback, Spec};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::{Env, Result, bail, sh};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root",
      "oldRoots": "@old_roots", "keep": { "days": 30, "min": 1, "max": null } }
  ]
}"#;

/// The common script (NixOS wiki / blog posts), in busybox sh.
const SHELL: &str = r#"#!/bin/sh
mkdir -p /btrfs_tmp
mount -t btrfs -o subvolid=5 /dev/vda /btrfs_tmp
if [ -e /btrfs_tmp/@root ]; then
    mkdir -p /btrfs_tmp/@old_roots
    timestamp=$(date -u -d "@$(stat -c %Y /btrfs_tmp/@root)" "+%Y-%m-%dT%H:%M:%SZ")
    mv /btrfs_tmp/@root "/btrfs_tmp/@old_roots/$timestamp"
fi
delete_subvolume_recursively() {
    IFS='
'
    for i in $(btrfs subvolume list -o "$1" | cut -f 9- -d ' '); do
        delete_subvolume_recursively "/btrfs_tmp/$i"
    done
    btrfs subvolume delete "$1"
}
for i in $(find /btrfs_tmp/@old_roots/ -mindepth 1 -maxdepth 1 -mtime +30); do
    delete_subvolume_recursively "$i"
done
btrfs subvolume create /btrfs_tmp/@root
umount /btrfs_tmp
"#;

/// Reset the disk to the benchmark state: `n` old roots older than 30
/// days, each with subvolumes nested three deep, created oldest first and
/// before the root (the keep policy ranks by creation order, as boots leave
/// them), then a root of 2,000 files.
fn reset(m: &Mount, now: u64, n: u32) -> Result<()> {
    sh::bash(
        r#"cd "$1"
# Every subvolume under @old_roots, deepest first.
btrfs subvolume list . | cut -d' ' -f9- | { grep '^@old_roots/' || true; } | sort -r |
  while read -r s; do btrfs -q subvolume delete "$1/$s"; done
[ -e @root ] && btrfs -q subvolume delete @root
for k in $(seq "$3" -1 1); do
  n=$(date -u -d "@$(( $2 - (30 + k) * 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
  btrfs -q subvolume create "@old_roots/$n"
  mkdir -p "@old_roots/$n/var/lib"
  btrfs -q subvolume create "@old_roots/$n/var/lib/docker"
  btrfs -q subvolume create "@old_roots/$n/var/lib/docker/layer"
  btrfs -q subvolume create "@old_roots/$n/var/lib/docker/layer/deep"
  touch -d "@$(( $2 - (30 + k) * 86400 ))" "@old_roots/$n"
done
btrfs -q subvolume create @root
mkdir -p @root/srv/many
for i in $(seq 1 2000); do echo "$i" >"@root/srv/many/f$i"; done"#,
        &[m.dir.display().to_string(), now.to_string(), n.to_string()],
    )?;
    Ok(())
}

fn ms(b: &Boot, key: &str) -> Result<u64> {
    for m in &b.marks {
        let mut w = m.split_whitespace();
        if w.next()
            .is_some_and(|f| f == key || f.starts_with(&format!("{key}=")))
        {
            if let Some(v) = w.find_map(|x| x.strip_prefix("uptime_ms=")) {
                return v
                    .parse()
                    .map_err(|_| crate::Error(format!("bad uptime {v}")));
            }
        }
    }
    bail!("no {key} marker; {}", b.describe())
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Run the benchmark.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "boot-time")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))?;
        Ok(())
    })?;
    let runs = 3;
    // (label, rollback, old roots seeded, old roots stage 1 leaves)
    let variants = [
        ("without tabula", Rollback::None(None), 5, 5),
        ("tabula-rollback", Rollback::Tabula(CONFIG.into()), 5, 6),
        (
            "common shell script",
            Rollback::Shell(SHELL.into(), None),
            5,
            1,
        ),
        ("tabula, 0 old roots", Rollback::Tabula(CONFIG.into()), 0, 1),
        (
            "tabula, 40 old roots",
            Rollback::Tabula(CONFIG.into()),
            40,
            41,
        ),
    ];
    let mut rows = Vec::new();
    for (name, rb, seeded, want) in &variants {
        let (mut step, mut stage1) = (Vec::new(), Vec::new());
        for r in 0..runs {
            reset(&Mount::btrfs(&img)?, now, *seeded)?;
            let mut spec = Spec::new(Flavour::Scripted, Fs::Btrfs, CONFIG, "");
            spec.rollback = rb.clone();
            spec.mode = Mode::RotateOnly;
            let label = name.replace([' ', ','], "-").replace("--", "-");
            let b = ctx.boot(&format!("{label}-{r}"), &img, &spec)?;
            if b.get("rollback-exit") != Some("0") {
                bail!(
                    "{name}: the rollback failed ({:?}); {}",
                    b.get("rollback-exit"),
                    b.describe()
                );
            }
            // tabula's stage 1 only archives (pruning is the unit's, after
            // boot); the shell script prunes the old roots in stage 1.
            if matches!(rb, Rollback::Tabula(_)) {
                b.expect_stage1_deleted_nothing()?;
            }
            let left = crate::harness::ls(&Mount::btrfs(&img)?.p("@old_roots"))?.len();
            if left != *want {
                bail!(
                    "{name}: {left} old roots left after the run, expected {want}; {}",
                    b.describe()
                );
            }
            step.push(ms(&b, "rollback-exit")? - ms(&b, "rollback-start")?);
            stage1.push(ms(&b, "rollback-exit")? - ms(&b, "stage1-start")?);
        }
        rows.push((name.to_string(), median(&mut step), median(&mut stage1)));
    }
    // The pruning unit after boot (scripted initrd, full boots): its own
    // run time (systemd's ExecMainStart..ExitTimestamp), the old roots
    // left afterwards (only the one archived by this boot).
    let mut prune_rows = Vec::new();
    for seeded in [0, 5, 40] {
        reset(&Mount::btrfs(&img)?, now, seeded)?;
        let spec = Spec::new(Flavour::Scripted, Fs::Btrfs, CONFIG, "wait_prune\n");
        let b = ctx.boot(&format!("prune-{seeded}"), &img, &spec)?;
        b.expect_script_ok()?;
        b.expect_stage1_deleted_nothing()?;
        b.expect_pruned()?;
        let left = crate::harness::ls(&Mount::btrfs(&img)?.p("@old_roots"))?.len();
        if left != 1 {
            bail!(
                "pruning unit, {seeded} old roots: {left} old roots left, expected 1; {}",
                b.describe()
            );
        }
        let unit_ms: u64 = b
            .get("prune_ms")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| crate::Error(format!("no prune_ms marker; {}", b.describe())))?;
        let step = ms(&b, "rollback-exit")? - ms(&b, "rollback-start")?;
        prune_rows.push((seeded, step, unit_ms));
    }
    // systemd initrd, full boots: uptime when stage 2 starts the test unit.
    let mut sysd = Vec::new();
    for (name, rb) in [
        ("without tabula", Rollback::None(None)),
        ("tabula-rollback", Rollback::Tabula(CONFIG.into())),
    ] {
        reset(&Mount::btrfs(&img)?, now, 5)?;
        let mut spec = Spec::new(Flavour::Systemd, Fs::Btrfs, CONFIG, "");
        spec.rollback = rb;
        let b = ctx.boot(&format!("systemd-{}", name.replace(' ', "-")), &img, &spec)?;
        b.expect_script_ok()?;
        let up: f64 = b
            .get("uptime_s")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        sysd.push((name, up, b.secs));
    }
    println!(
        "\nboot-time benchmark (QEMU TCG, 2 vCPUs; median of {runs}; uptime resolution 10 ms)"
    );
    println!(
        "disk: N old roots > 30 days old (default 5) with nested subvolumes 3 deep, root of 2,000 files; \
         tabula's stage 1 archives only, the shell script also prunes"
    );
    println!(
        "{:24} {:>16} {:>22}",
        "scripted stage 1", "rollback step", "stage 1 to rollback end"
    );
    for (n, s, t) in &rows {
        println!("{n:24} {s:>13} ms {t:>19} ms");
    }
    println!(
        "{:24} {:>16} {:>22}",
        "pruning unit (1 boot)", "stage-1 step", "tabula-prune.service"
    );
    for (n, s, u) in &prune_rows {
        println!(
            "{:24} {s:>13} ms {u:>19} ms",
            format!("{n} old roots to prune")
        );
    }
    println!(
        "{:24} {:>16} {:>22}",
        "systemd initrd", "stage 2 at (uptime)", "QEMU wall clock"
    );
    for (n, up, wall) in &sysd {
        println!("{n:24} {up:>14.2} s {wall:>20.1} s");
    }
    Ok(Outcome::Pass)
}
