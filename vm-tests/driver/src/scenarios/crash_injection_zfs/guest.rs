//! The guest's side of crash-injection-zfs: the configurations, the script
//! that seeds the persistent dataset, and the inspection boot with the
//! invariants it checks after every stop.

use crate::harness::{Ctx, Fs, Mode, Spec, check_eq};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::{Result, ensure};
use std::time::Duration;

pub(super) const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank",
      "oldRoots": "rpool/local/old_roots", "keep": { "days": null, "min": 1, "max": 2 } }
  ]
}"#;

/// The same root without old roots: `zfs rollback -r`.
pub(super) const CONFIG_NULL: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank", "oldRoots": null }
  ]
}"#;

/// Seed `rpool/safe/persist` with files (initrd shell, busybox).
pub(super) const SEED: &str = r"
set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
mkdir -p /p && mount -t zfs rpool/safe/persist /p
mkdir -p /p/etc/ssh /p/var/lib/app
for i in 1 2 3 4 5 6 7 8 9 10; do head -c $((i * 4099)) /dev/urandom >/p/var/lib/app/blob$i; done
echo key >/p/etc/ssh/ssh_host_ed25519_key
umount /p
zpool export rpool
";

/// Recover (when asked), report the pool state, and write the marker file
/// `gen-$NEXT` on the root for the next stop (initrd shell, busybox).
const INSPECT: &str = r#"
set -e
ZPOOL_IMPORT_UDEV_TIMEOUT_MS=0 zpool import -N -f rpool
if [ "$RECOVER" = yes ]; then
  rc=0; tabula-rollback --config /etc/tabula/config.json || rc=$?
  mark "recover-exit=$rc"
  # The pruning half, as the booted system's tabula-prune.service runs it.
  rc=0; tabula-rollback --prune-only --config /etc/tabula/config.json || rc=$?
  mark "prune-exit=$rc"
fi
mark "datasets=$(zfs list -H -t all -o name | tr '\n' ',')"
mark "origin=$(zfs get -H -o value origin rpool/local/root) mark=$(zfs get -H -o value -s local tabula:role rpool/local/root | tr -d '\n')x"
mkdir -p /p /r
mount -t zfs -o ro rpool/safe/persist /p
mark "persist=$(cd /p && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-32)"
umount /p
mount -t zfs rpool/local/root /r
mark "root-files=$(ls -A /r | paste -sd, -)"
[ -n "$NEXT" ] && echo "$NEXT" >"/r/gen-$NEXT"
umount /r
for n in $(zfs list -H -o name -d 1 rpool/local/old_roots | tail -n +2); do
  if mount -t zfs -o ro "$n" /r 2>/dev/null; then
    mark "old-files=${n##*/}:$(ls -A /r | grep '^gen-' | paste -sd, -)"
    umount /r
  else
    mark "old-files=${n##*/}:unmountable"
  fi
done
zpool export rpool
"#;

/// What an inspection found.
pub(super) struct State {
    pub(super) persist: String,
    pub(super) old_roots: usize,
}

/// Inspect (after a recovery rollback when `recover`), check the
/// invariants, and leave `gen-<next>` on the root. `gen` is the marker the
/// root held before the stop, which exactly one old root must now hold.
pub(super) fn inspect(
    ctx: &Ctx,
    img: &std::path::Path,
    label: &str,
    config: &str,
    recover: bool,
    gen_before: Option<u32>,
    next: u32,
) -> Result<(Boot, State)> {
    let script = format!(
        "RECOVER={}\nNEXT={next}\n{INSPECT}",
        if recover { "yes" } else { "no" }
    );
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, config, &script);
    spec.mode = Mode::InitrdScript;
    spec.timeout = Duration::from_secs(180);
    let b = ctx.boot(label, img, &spec)?;
    check_eq(
        "inspection script",
        b.get("script-exit"),
        Some("0"),
        Some(&b),
    )?;
    if recover {
        check_eq(
            &format!("{label}: the recovery rollback's exit status"),
            b.get("recover-exit"),
            Some("0"),
            Some(&b),
        )?;
        check_eq(
            &format!("{label}: the pruning run's exit status"),
            b.get("prune-exit"),
            Some("0"),
            Some(&b),
        )?;
    }
    let ds: Vec<String> = b
        .get("datasets")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    ensure!(
        ds.iter().filter(|d| *d == "rpool/local/root").count() == 1,
        "{label}: not exactly one rpool/local/root: {ds:?}; {}",
        b.describe()
    );
    ensure!(
        ds.iter().any(|d| d == "rpool/local/root@blank"),
        "{label}: rpool/local/root@blank missing: {ds:?}; {}",
        b.describe()
    );
    ensure!(
        !ds.iter().any(|d| d.contains("tabula-new")),
        "{label}: a leftover temporary dataset: {ds:?}; {}",
        b.describe()
    );
    let old = ds
        .iter()
        .filter(|d| d.starts_with("rpool/local/old_roots/") && !d.contains('@'))
        .count();
    check_eq(
        &format!("{label}: root origin (promoted)"),
        b.get("origin"),
        Some("-"),
        Some(&b),
    )?;
    check_eq(
        &format!("{label}: tabula:role on the root"),
        b.get("mark"),
        Some("x"),
        Some(&b),
    )?;
    check_eq(
        &format!("{label}: files on the new root"),
        b.get("root-files"),
        Some(""),
        Some(&b),
    )?;
    if let Some(g) = gen_before {
        let holders: Vec<&str> = b
            .all("old-files")
            .into_iter()
            .filter(|v| {
                // "<timestamp name>:<files>": the name has colons, the files none.
                v.rsplit_once(':')
                    .is_some_and(|(_, f)| f.split(',').any(|x| x == format!("gen-{g}")))
            })
            .collect();
        ensure!(
            holders.len() == 1,
            "{label}: the root of before the stop (holding gen-{g}) is not exactly one old root: {:?}; {}",
            b.all("old-files"),
            b.describe()
        );
    }
    let persist = b.get("persist").unwrap_or_default().to_owned();
    ensure!(
        persist.len() == 32,
        "{label}: no persist checksum; {}",
        b.describe()
    );
    Ok((
        b,
        State {
            persist,
            old_roots: old,
        },
    ))
}
