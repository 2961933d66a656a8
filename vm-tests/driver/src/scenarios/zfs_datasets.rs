//! zfs-datasets: persisted directories with their own datasets, the
//! per-service layout (media 1M, SQLite 16K, PostgreSQL data 8K, its
//! write-ahead log 128K uncompressed). Boot 1 (first boot): every dataset is
//! created by `tabula-sources.service` with `mountpoint=legacy` and its
//! properties, mounted at the storage path by the unit the generator emits
//! and bind-mounted; a service writes into one. Boot 2, after the root
//! rollback, with a changed `recordsize` and one entry removed: the data is
//! there, the changed property is applied (and logged), the removed entry's
//! dataset and its data are untouched (no longer mounted).

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report};
use crate::initrd::{Flavour, Item};
use crate::scenarios::btrfs_rotation::REPORT;
use crate::scenarios::zfs_rollback::WRITE as WRITE_ROOT_AND_PERSIST;
use crate::{Env, Result};

/// The configuration; `{PG}` is PostgreSQL's recordsize, `{PLEX}` the plex
/// entry (or nothing).
const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "zfs", "dataset": "rpool/local/root", "snapshot": "blank", "oldRoots": null }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" },
        {PLEX}
        { "path": "/var/lib/sonarr", "user": "nobody", "group": "nogroup", "mode": "0750",
          "zfs": { "dataset": "rpool/safe/services/sonarr", "properties": { "recordsize": "16K", "compression": "lz4" } } },
        { "path": "/var/lib/postgresql", "zfs": { "properties": { "recordsize": "{PG}", "compression": "lz4" } } },
        { "path": "/var/lib/postgresql-wal", "zfs": { "properties": { "recordsize": "128K", "compression": "off" } } } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

const PLEX: &str = r#"{ "path": "/var/lib/plex", "zfs": { "dataset": null, "properties": { "recordsize": "1M", "compression": "lz4" } } },"#;

fn config(pg: &str, plex: bool) -> String {
    CONFIG
        .replace("{PG}", pg)
        .replace("{PLEX}", if plex { PLEX } else { "" })
}

/// Datasets, their properties and mounts, as markers.
const DATASETS: &str = r#"
dsreport() {
  local d p
  for d in var-lib-plex services/sonarr var-lib-postgresql var-lib-postgresql-wal; do
    case $d in services/*) p=rpool/safe/$d ;; *) p=rpool/safe/persist/$d ;; esac
    mark "ds-${d##*/}=$(zfs get -H -p -o value recordsize,compression,mountpoint "$p" 2>/dev/null | paste -sd, || echo missing)"
  done
  mark "services-canmount=$(zfs get -H -o value canmount rpool/safe/services 2>/dev/null || echo missing)"
  local m
  m=$(findmnt -n -o SOURCE,FSTYPE /persist/var/lib/sonarr | tr -s ' ' ,); mark "mnt-sonarr=${m:-none}"
  m=$(findmnt -n -o SOURCE,FSTYPE /persist/var/lib/plex | tr -s ' ' ,); mark "mnt-plex=${m:-none}"
  mark "bind-sonarr=$(mountpoint -q /var/lib/sonarr && echo yes || echo no) bind-pg=$(mountpoint -q /var/lib/postgresql && echo yes || echo no)"
  mark "sonarr-stat=$(st /var/lib/sonarr)"
  mark "sources-result=$(systemctl show -P Result tabula-sources.service) prepare-result=$(systemctl show -P Result tabula-prepare.service)"
  mark "journal-set=$(journalctl -b -o cat -u tabula-sources.service | grep -c 'recordsize was 8192, set to 16K')"
  mark "journal-created=$(journalctl -b -o cat -u tabula-sources.service | grep -c 'created the dataset')"
  mark "journal-zfs-set=$(journalctl -b -o cat -u tabula-sources.service | grep -c '^running zfs set ')"
}
"#;

/// A service of the guest, running as `nobody`, that writes into its
/// persisted directory (the guest has no D-Bus for `systemd-run`).
const WRITER: &str = "[Unit]\nDescription=A service writing its state\n\n\
    [Service]\nType=oneshot\nUser=nobody\nGroup=nogroup\n\
    ExecStart=/bin/sh -c 'echo kept >/var/lib/sonarr/db'\n";

/// Boot 1: the service writes into its dataset, through the bind mount.
const WRITE: &str = r#"
systemctl start tabula-writer.service
echo media >/var/lib/plex/library
sync
mark "wrote=$(cat /persist/var/lib/sonarr/db)"
"#;

/// Boot 2: the removed entry's dataset and data, looked at read-only.
const PLEX_KEPT: &str = r#"
mkdir -p /run/plex
if mount -t zfs -o ro rpool/safe/persist/var-lib-plex /run/plex; then
  mark "plex-data=$(cat /run/plex/library 2>/dev/null || echo none)"
  umount /run/plex
else
  mark "plex-data=unmountable"
fi
mark "sonarr-data=$(cat /var/lib/sonarr/db 2>/dev/null || echo none)"
"#;

/// Run the scenario (scripted flavour).
pub fn run(env: &Env) -> Result<Outcome> {
    let flavour = Flavour::Scripted;
    let ctx = Ctx::new(env, "zfs-datasets")?;
    let img = ctx.zfs_image("disk.img")?;
    let mut first = Spec::new(
        flavour,
        Fs::Zfs,
        &config("8K", true),
        &format!("{REPORT}{DATASETS}\n{WRITE_ROOT_AND_PERSIST}\n{WRITE}\ndsreport\n"),
    );
    first.root_files.push((
        "/etc/systemd/system/tabula-writer.service".into(),
        Item::Text(WRITER.into(), 0o644),
    ));
    let b1 = ctx.boot("first", &img, &first)?;
    b1.expect_script_ok()?;
    check_report(
        &b1,
        &[
            (
                "boot 1: plex (default name)",
                "ds-var-lib-plex",
                "1048576,lz4,legacy",
            ),
            ("boot 1: sonarr (named)", "ds-sonarr", "16384,lz4,legacy"),
            (
                "boot 1: postgresql",
                "ds-var-lib-postgresql",
                "8192,lz4,legacy",
            ),
            (
                "boot 1: postgresql WAL",
                "ds-var-lib-postgresql-wal",
                "131072,off,legacy",
            ),
            (
                "boot 1: a created parent is never mounted",
                "services-canmount",
                "off",
            ),
            (
                "boot 1: sonarr's dataset mounted",
                "mnt-sonarr",
                "rpool/safe/services/sonarr,zfs",
            ),
            ("boot 1: bind mounts", "bind-sonarr", "yes"),
            ("boot 1: bind mounts", "bind-pg", "yes"),
            (
                "boot 1: the new dataset got the entry's owner and mode",
                "sonarr-stat",
                "nobody:nogroup:750",
            ),
            (
                "boot 1: tabula-sources.service",
                "sources-result",
                "success",
            ),
            (
                "boot 1: tabula-prepare.service",
                "prepare-result",
                "success",
            ),
            ("boot 1: four datasets created", "journal-created", "4"),
            ("boot 1: nothing set after creation", "journal-zfs-set", "0"),
            ("boot 1: the service wrote", "wrote", "kept"),
        ],
    )?;
    let b2 = ctx.boot(
        "changed",
        &img,
        &Spec::new(
            flavour,
            Fs::Zfs,
            &config("16K", false),
            &format!("{REPORT}{DATASETS}\nreport\ndsreport\n{PLEX_KEPT}\n"),
        ),
    )?;
    b2.expect_script_ok()?;
    check_report(&b2, super::ERASED_AND_PERSISTED)?;
    check_report(
        &b2,
        &[
            (
                "boot 2: data written by the service survived",
                "sonarr-data",
                "kept",
            ),
            (
                "boot 2: changed recordsize applied",
                "ds-var-lib-postgresql",
                "16384,lz4,legacy",
            ),
            ("boot 2: the change logged", "journal-set", "1"),
            ("boot 2: nothing created", "journal-created", "0"),
            (
                "boot 2: only the changed property set (lz4, off, 16K, 128K read back as equal)",
                "journal-zfs-set",
                "1",
            ),
            (
                "boot 2: removed entry's dataset untouched",
                "ds-var-lib-plex",
                "1048576,lz4,legacy",
            ),
            (
                "boot 2: removed entry's data untouched",
                "plex-data",
                "media",
            ),
            (
                "boot 2: removed entry's dataset not mounted",
                "mnt-plex",
                "none",
            ),
            (
                "boot 2: tabula-sources.service",
                "sources-result",
                "success",
            ),
        ],
    )?;
    check_eq(
        "stage 1: tabula-rollback exit status",
        b2.get("rollback-exit"),
        Some("0"),
        Some(&b2),
    )?;
    Ok(Outcome::Pass)
}
