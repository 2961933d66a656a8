//! cli-zfs: the `tabula` command on a ZFS keep-previous machine, after real
//! boots. Boot 1: `tabula diff --json` before and after planting files on
//! `/` and under persisted paths (`--all`: the regenerated entries too);
//! what appears between the two answers is
//! exactly the planted ephemeral files (from `zfs diff` against `@blank`,
//! names with a newline and a byte that is not UTF-8 decoded), a store link
//! among them classified regenerated, persisted paths never listed; what
//! the guest's systemd-tmpfiles configuration makes (`/var/lib/systemd`,
//! `/var/cache`, `/tmp`) is regenerated, the reason naming the line and its
//! file. Boot 2:
//! `tabula roots --json` lists the root of boot 1, archived; `tabula restore
//! --dry-run` changes nothing; `restore --to storage` (the tree) and `--to
//! place` (a file) copy with owner, mode, timestamps and extended
//! attributes; the old root is not modified by them (GUID, `written` since
//! a snapshot taken before, `referenced`, and a digest of its whole tree,
//! equal before and after) and no mount is left behind.
//!
//! Observed on ZFS 2.1: the first mount of a dataset that was a running
//! root writes 8 KiB to it (`written` since a snapshot goes from 0 to
//! 8192, `referenced` unchanged): ZFS finishes the dataset's intent log at
//! mount time, read-only mounts included. The scenario mounts the old root
//! once with `mount -o ro` (for the digest) before it measures, prints the
//! three measures, and asserts that tabula's restores change nothing.

use std::collections::BTreeMap;

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::initrd::{Flavour, Item};
use crate::qemu::Boot;
use crate::{Context, Env, Result, bail, ensure};

mod guest;

use guest::{BOOT1, BOOT2, HELPERS};

/// The zfs-keep-previous machine.
const CONFIG: &str = crate::scenarios::zfs_keep_previous::CONFIG;

/// Where the guest has the `tabula` command (as the demo puts it).
const TABULA_BIN: &str = "/opt/tabula/bin/tabula";

/// The lines the guest printed with `prefix`, joined.
fn printed(boot: &Boot, prefix: &str) -> String {
    boot.log
        .lines()
        .filter_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `tabula diff --json` answer printed by the guest: path bytes → class.
fn diff_entries(boot: &Boot, prefix: &str) -> Result<BTreeMap<Vec<u8>, String>> {
    let text = printed(boot, prefix);
    let doc: serde_json::Value =
        serde_json::from_str(&text).ctx(format!("{prefix}: tabula diff --json output"))?;
    check_eq(
        &format!("{prefix}filesystem and method"),
        (doc["filesystem"].as_str(), doc["method"].as_str()),
        (Some("zfs"), Some("zfs diff rpool/local/root@blank")),
        Some(boot),
    )?;
    let mut out = BTreeMap::new();
    for e in doc["entries"].as_array().into_iter().flatten() {
        let path: Vec<u8> = match e.get("path_bytes").and_then(|b| b.as_array()) {
            Some(bytes) => bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()).unwrap_or(0))
                .collect(),
            None => e["path"].as_str().unwrap_or_default().as_bytes().to_vec(),
        };
        out.insert(
            path,
            format!(
                "{} {} {} {}",
                e["class"].as_str().unwrap_or("?"),
                e["type"].as_str().unwrap_or("?"),
                e["size"],
                e["change"].as_str().unwrap_or("?")
            ),
        );
    }
    Ok(out)
}

fn show(map: &BTreeMap<Vec<u8>, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{v} {:?}", String::from_utf8_lossy(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What boot 1 plants on the ephemeral root, as `diff --json` must list
/// it: class, type, size, change.
fn planted() -> BTreeMap<Vec<u8>, String> {
    [
        (&b"/etc/planted.conf"[..], "lost file 5 new"),
        (b"/srv/planted", "lost directory 0 new"),
        (b"/srv/planted/file", "lost file 13 new"),
        (b"/srv/planted/store-link", "regenerated symlink 0 new"),
        (b"/srv/planted/sub", "lost directory 0 new"),
        (b"/srv/planted/sub/new\nline", "lost file 1 new"),
        (b"/srv/planted/sub/\xffname", "lost file 1 new"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_vec(), c.to_owned()))
    .collect()
}

/// The persisted paths of [`CONFIG`]: never listed.
const PERSISTED: &[&[u8]] = &[
    b"/var/log",
    b"/var/lib/tabula-test",
    b"/etc/tabula-test.conf",
];

/// What the guest's systemd-tmpfiles configuration makes, with the reason
/// `diff` must give: Debian's `/usr/lib/tmpfiles.d`, read from the running
/// system.
const TMPFILES_REASONS: &[(&str, &str)] = &[
    (
        "/var/lib/systemd",
        "made by systemd-tmpfiles at every boot: `d /var/lib/systemd 0755 root root -` in /usr/lib/tmpfiles.d/systemd.conf",
    ),
    (
        "/var/cache",
        "made by systemd-tmpfiles at every boot: `d /var/cache 0755 - - -` in /usr/lib/tmpfiles.d/var.conf",
    ),
    (
        "/tmp",
        "made by systemd-tmpfiles at every boot: `D /tmp 1777 root root -` in /usr/lib/tmpfiles.d/tmp.conf",
    ),
];

fn check_boot1(b1: &Boot) -> Result<()> {
    let doc: serde_json::Value =
        serde_json::from_str(&printed(b1, "@@AFTER ")).ctx("@@AFTER: tabula diff --json output")?;
    for (path, reason) in TMPFILES_REASONS {
        let entry = doc["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["path"] == *path);
        check_eq(
            &format!("boot 1: class and reason of {path}"),
            entry.map(|e| (e["class"].as_str(), e["reason"].as_str())),
            Some((Some("regenerated"), Some(*reason))),
            Some(b1),
        )?;
    }
    let before = diff_entries(b1, "@@BEFORE ")?;
    let after = diff_entries(b1, "@@AFTER ")?;
    let appeared: BTreeMap<Vec<u8>, String> = after
        .iter()
        .filter(|(p, _)| !before.contains_key(*p))
        .map(|(p, c)| (p.clone(), c.clone()))
        .collect();
    check_eq(
        "boot 1: what tabula diff --json lists after planting and not before",
        show(&appeared),
        show(&planted()),
        Some(b1),
    )?;
    let gone: Vec<String> = before
        .iter()
        .filter(|(p, c)| after.get(*p).map(|a| a.split(' ').next()) != Some(c.split(' ').next()))
        .map(|(p, c)| format!("{c} {:?}", String::from_utf8_lossy(p)))
        .collect();
    ensure!(
        gone.is_empty(),
        "boot 1: entries listed before planting that are gone or changed class after: {gone:?}; {}",
        b1.describe()
    );
    for list in [&before, &after] {
        let persisted: Vec<String> = list
            .keys()
            .filter(|p| {
                PERSISTED.iter().any(|d| {
                    p.as_slice() == *d || (p.starts_with(d) && p.get(d.len()) == Some(&b'/'))
                })
            })
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        ensure!(
            persisted.is_empty(),
            "boot 1: tabula diff lists persisted paths: {persisted:?}; {}",
            b1.describe()
        );
    }
    Ok(())
}

fn check_boot2(b1: &Boot, b2: &Boot) -> Result<()> {
    let roots: serde_json::Value = serde_json::from_str(&printed(b2, "@@ROOTS "))
        .ctx("@@ROOTS: tabula roots --json output")?;
    let list: Vec<(String, String)> = roots
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["location"].as_str().unwrap_or_default().to_owned(),
                r["next_boot"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let old = b2.get("old-root").unwrap_or_default();
    ensure!(
        is_timestamp_name(old) && list.len() == 2,
        "boot 2: tabula roots --json lists {list:?}; expected the two archived roots, newest (boot 1's) first with a timestamp name; {}",
        b2.describe()
    );
    check_eq(
        "boot 2: the newest old root tabula roots lists",
        list[0].clone(),
        (format!("rpool/local/old_roots/{old}"), "keep".to_owned()),
        Some(b2),
    )?;
    let planted = b1.get("planted-meta").unwrap_or("none");
    check_eq(
        "boot 1: planted file uid:gid:mode:size:mtime:atime",
        planted,
        "65534:65534:640:13:1700000000:1700000100",
        Some(b1),
    )?;
    let dry = printed(b2, "@@DRY ");
    ensure!(
        dry.contains("would copy"),
        "boot 2: restore --dry-run printed {dry:?}; {}",
        b2.describe()
    );
    check_report(
        b2,
        &[
            (
                "boot 2: --dry-run made nothing in the storage",
                "dry-storage",
                "absent",
            ),
            (
                "boot 2: --dry-run made nothing in place",
                "dry-place",
                "absent",
            ),
            (
                "boot 2: restored into the storage: the directory's mode",
                "storage-dir-mode",
                "755",
            ),
            (
                "boot 2: restored into the storage: uid:gid:mode:size:mtime:atime",
                "storage-meta",
                planted,
            ),
            (
                "boot 2: restored in place: uid:gid:mode:size:mtime:atime",
                "place-meta",
                planted,
            ),
            (
                "boot 2: restored into the storage: the file's extended attribute",
                "storage-xattr",
                "kept-xattr",
            ),
            (
                "boot 2: restored in place: the file's extended attribute",
                "place-xattr",
                "kept-xattr",
            ),
            (
                "boot 2: restored into the storage: the directory's extended attribute",
                "storage-dir-xattr",
                "dir-xattr",
            ),
            (
                "boot 2: restored into the storage: content",
                "storage-data",
                "planted+data",
            ),
            (
                "boot 2: restored in place: content",
                "place-data",
                "planted+data",
            ),
            (
                "boot 2: restored into the storage: the name with a newline",
                "storage-newline",
                "present",
            ),
            (
                "boot 2: restored into the storage: the name with byte 0xff",
                "storage-byte",
                "present",
            ),
            (
                "boot 2: restored into the storage: the symlink, as a symlink",
                "storage-link",
                "/nix/store/00000000000000000000000000000000-bash/bin/sh",
            ),
            ("boot 2: the old root is not mounted", "old-mounted", "no"),
            (
                "boot 2: no mount of an old root in the mount table",
                "old-in-mountinfo",
                "0",
            ),
        ],
    )?;
    let (snapshot, before, after) = (
        b2.get("old-props-snapshot").unwrap_or_default(),
        b2.get("old-props-before").unwrap_or_default(),
        b2.get("old-props-after").unwrap_or_default(),
    );
    if before != after || after.split(',').count() != 4 {
        bail!(
            "boot 2: the old root changed: guid,written,written@tabula-check,referenced {before:?} before the restores, {after:?} after (expected equal); {}",
            b2.describe()
        );
    }
    // ENTRIES:HASH, of a tree that holds at least the planted files.
    let digest = b2.get("old-digest-before");
    let entries: u64 = digest
        .and_then(|d| d.split_once(':'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    ensure!(
        entries > 7 && digest == b2.get("old-digest-after"),
        "boot 2: the old root's tree changed: digest {digest:?} before the restores, {:?} after; {}",
        b2.get("old-digest-after"),
        b2.describe()
    );
    println!(
        "cli-zfs: observed: guid,written,written@tabula-check,referenced of the old root right after the snapshot {snapshot}, after one plain `mount -o ro` {before}, after tabula's three restores {after}"
    );
    Ok(())
}

/// Run the scenario (scripted flavour).
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "cli-zfs")?;
    let cli = env
        .repo
        .join("target/x86_64-unknown-linux-musl/release/tabula");
    ensure!(
        cli.is_file(),
        "{} missing: build it with cargo build --release --target x86_64-unknown-linux-musl -p tabula-cli (vm-tests/run.sh does)",
        cli.display()
    );
    let spec = |script: &str| {
        let mut s = Spec::new(
            Flavour::Scripted,
            Fs::Zfs,
            CONFIG,
            &format!("{HELPERS}{script}"),
        );
        s.root_files
            .push((TABULA_BIN.into(), Item::Copy(cli.clone(), 0o755)));
        s
    };
    let img = ctx.zfs_image("disk.img")?;
    let b1 = ctx.boot("plant", &img, &spec(BOOT1))?;
    b1.expect_script_ok()?;
    check_boot1(&b1)?;
    let b2 = ctx.boot("restore", &img, &spec(BOOT2))?;
    b2.expect_script_ok()?;
    check_boot2(&b1, &b2)?;
    Ok(Outcome::Pass)
}
