//! zfs-torn-clone: the state a power cut inside `zfs clone -o
//! tabula:role=new-root ...` leaves, built on real ZFS, and what the next
//! boot does with it.
//!
//! The rollback recognises "an unmarked clone of `<root>@<snapshot>` with
//! nothing written to it" as a torn first step and destroys it; that rests
//! on real ZFS reporting `written=0` for a fresh clone, which this scenario
//! observes (the values are printed). Three cases, one disk, each set up
//! from an initrd shell (busybox), then one rotation boot:
//!
//! 1. `zfs clone <root>@blank <root>.tabula-new` without the mark: the
//!    rollback destroys that clone and rotates; exactly one root (promoted,
//!    empty), the previous root kept under oldRoots with its file, the old
//!    root that was there before untouched, every other dataset and snapshot
//!    still there (same GUIDs), `rpool/safe/persist` unchanged.
//! 2. an unmarked clone of `@blank` that holds data: refused, exit 1, every
//!    dataset and snapshot exactly as before (names and GUIDs), its data
//!    still there, the root not rolled back.
//! 3. an unmarked clone with nothing written to it but of another snapshot:
//!    refused the same way.

use crate::harness::{Ctx, Fs, Mode, Outcome, Spec, check_eq, check_report, is_timestamp_name};
use crate::initrd::Flavour;
use crate::qemu::Boot;
use crate::{Env, Result, bail, ensure};
use std::collections::BTreeMap;
use std::time::Duration;

mod guest;

use guest::{CONFIG, FUNCS, INSPECT1_SETUP2, INSPECT2_SETUP3, INSPECT3, SETUP_TORN};

const ROOT: &str = "rpool/local/root";
const TEMP: &str = "rpool/local/root.tabula-new";
/// An old root that exists before the first case (a plain dataset with a
/// file, named like an old root).
const OLD: &str = "rpool/local/old_roots/2020-01-01T00:00:00Z";

type Guids = BTreeMap<String, String>;

fn guids(b: &Boot, key: &str) -> Result<Guids> {
    let Some(v) = b.get(key) else {
        bail!("no {key} report; {}", b.describe());
    };
    let m: Guids = v
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(n, g)| (n.to_owned(), g.to_owned()))
        .collect();
    ensure!(
        m.contains_key(ROOT),
        "{key}: no {ROOT} in {m:?}; {}",
        b.describe()
    );
    Ok(m)
}

fn script_boot(ctx: &Ctx, img: &std::path::Path, label: &str, script: &str) -> Result<Boot> {
    let mut spec = Spec::new(
        Flavour::Scripted,
        Fs::Zfs,
        CONFIG,
        &format!("{FUNCS}{script}"),
    );
    spec.mode = Mode::InitrdScript;
    spec.timeout = Duration::from_secs(180);
    let b = ctx.boot(label, img, &spec)?;
    check_eq(
        &format!("{label}: initrd script"),
        b.get("script-exit"),
        Some("0"),
        Some(&b),
    )?;
    Ok(b)
}

fn rotate_boot(ctx: &Ctx, img: &std::path::Path, label: &str) -> Result<Boot> {
    let mut spec = Spec::new(Flavour::Scripted, Fs::Zfs, CONFIG, "");
    spec.mode = Mode::RotateOnly;
    spec.timeout = Duration::from_secs(180);
    ctx.boot(label, img, &spec)
}

/// A refused case: exit 1 with the refusal in the log, then every dataset
/// and snapshot exactly as the set-up left it.
fn check_refused(case: &str, r: &Boot, before: &Guids, after: &Boot) -> Result<()> {
    check_eq(
        &format!("{case}: tabula-rollback exit status"),
        r.get("rollback-exit"),
        Some("1"),
        Some(r),
    )?;
    ensure!(
        r.log.contains("was not made by tabula"),
        "{case}: no refusal naming the unmarked {TEMP} in the log; {}",
        r.describe()
    );
    check_eq(
        &format!("{case}: datasets and snapshots (name=guid) after the refusal"),
        &guids(after, "state")?,
        before,
        Some(after),
    )?;
    check_eq(
        &format!("{case}: the root was not rolled back"),
        after.get("root-has-file"),
        Some("yes"),
        Some(after),
    )
}

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "zfs-torn-clone")?;
    let img = ctx.zfs_image("disk.img")?;

    // Case 1: the torn clone.
    let s1 = script_boot(&ctx, &img, "setup-torn", SETUP_TORN)?;
    let fresh = s1.get("written-fresh").unwrap_or("?").to_owned();
    let reimported = s1.get("written-reimported").unwrap_or("?").to_owned();
    eprintln!(
        "zfs-torn-clone: observed on real ZFS: `written` of a fresh unmarked clone of {ROOT}@blank = {fresh} \
         (after zpool sync), {reimported} (after export and import)"
    );
    check_eq(
        "case 1: the clone carries no tabula:role (a torn `zfs clone -o`)",
        s1.get("temp-mark"),
        Some("-"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: the clone's origin",
        s1.get("temp-origin"),
        Some("rpool/local/root@blank"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: the clone was never mounted",
        s1.get("temp-mounted"),
        Some("no"),
        Some(&s1),
    )?;
    check_eq(
        "case 1: `written` of a fresh clone, as the next boot sees it",
        reimported.as_str(),
        "0",
        Some(&s1),
    )?;
    let before = guids(&s1, "setup")?;
    let persist = s1.get("persist").unwrap_or_default().to_owned();
    ensure!(
        persist.len() == 32,
        "no persist checksum; {}",
        s1.describe()
    );

    let r1 = rotate_boot(&ctx, &img, "rotate-torn")?;
    check_eq(
        "case 1: tabula-rollback exit status",
        r1.get("rollback-exit"),
        Some("0"),
        Some(&r1),
    )?;
    ensure!(
        r1.log
            .contains("is an unmarked clone of rpool/local/root@blank with nothing written to it"),
        "case 1: the rollback did not say it recognised the torn clone; {}",
        r1.describe()
    );
    let i1 = script_boot(&ctx, &img, "inspect-torn-setup-data", INSPECT1_SETUP2)?;
    let after = guids(&i1, "state")?;
    ensure!(
        !after.contains_key(TEMP),
        "case 1: {TEMP} is still there: {after:?}"
    );
    // Everything that existed keeps its GUID, except the clone (destroyed);
    // the previous root's GUID is now an old root's.
    let clone_guid = &before[TEMP];
    for (name, guid) in before.iter().filter(|(n, _)| *n != TEMP) {
        ensure!(
            after.values().any(|g| g == guid),
            "case 1: {name} (guid {guid}) was destroyed; after: {after:?}"
        );
    }
    ensure!(
        !after.values().any(|g| g == clone_guid),
        "case 1: the torn clone (guid {clone_guid}) is still there: {after:?}"
    );
    ensure!(
        after.contains_key("rpool/local/root@blank"),
        "case 1: rpool/local/root@blank missing: {after:?}"
    );
    check_eq(
        "case 1: the old root that was there before",
        after.get(OLD),
        before.get(OLD),
        Some(&i1),
    )?;
    let old: Vec<&String> = after
        .keys()
        .filter(|n| n.starts_with("rpool/local/old_roots/") && !n.contains('@'))
        .collect();
    check_eq("case 1: number of old roots", old.len(), 2, Some(&i1))?;
    let archived = old
        .iter()
        .find(|n| n.as_str() != OLD)
        .map(|n| n.as_str())
        .unwrap_or_default();
    ensure!(
        is_timestamp_name(archived.rsplit('/').next().unwrap_or_default()),
        "case 1: the archived root has no timestamp name: {archived}"
    );
    check_eq(
        "case 1: the archived root is the previous root (same guid)",
        after.get(archived),
        before.get(ROOT),
        Some(&i1),
    )?;
    check_report(
        &i1,
        &[
            ("case 1: the new root holds nothing", "root-has-file", "no"),
            ("case 1: the old root's file", "old-kept", "yes"),
            ("case 1: new root promoted (no origin)", "origin", "-"),
        ],
    )?;
    check_eq(
        "case 1: old roots holding the previous root's file",
        i1.get("old-with-file"),
        Some(archived),
        Some(&i1),
    )?;
    check_eq(
        "case 1: rpool/safe/persist",
        i1.get("persist"),
        Some(persist.as_str()),
        Some(&i1),
    )?;
    eprintln!(
        "zfs-torn-clone: case 1 (unmarked clone, written=0): destroyed, root rotated to {archived}, \
         {OLD} and every other dataset kept, persist unchanged"
    );

    // Case 2: an unmarked clone of @blank holding data.
    eprintln!(
        "zfs-torn-clone: observed: `written` of an unmarked clone mounted and unmounted without writing = {}, \
         after writing one file = {}",
        i1.get("written-mounted").unwrap_or("?"),
        i1.get("written-data").unwrap_or("?"),
    );
    ensure!(
        i1.get("written-data").is_some_and(|w| w != "0"),
        "case 2: the clone holding a file reports written=0: the recognition would destroy user data; {}",
        i1.describe()
    );
    let before2 = guids(&i1, "setup")?;
    let r2 = rotate_boot(&ctx, &img, "rotate-data")?;
    let i2 = script_boot(&ctx, &img, "inspect-data-setup-other", INSPECT2_SETUP3)?;
    check_refused("case 2 (unmarked clone holding data)", &r2, &before2, &i2)?;
    check_eq(
        "case 2: the clone's data",
        i2.get("temp-has-data"),
        Some("yes"),
        Some(&i2),
    )?;
    check_eq(
        "case 2: rpool/safe/persist",
        i2.get("persist"),
        Some(persist.as_str()),
        Some(&i2),
    )?;
    eprintln!("zfs-torn-clone: case 2 (unmarked clone holding data): refused, nothing changed");

    // Case 3: an unmarked clone of another snapshot, nothing written.
    eprintln!(
        "zfs-torn-clone: observed: `written` of a fresh unmarked clone of {ROOT}@other (a populated snapshot; mounted: {}) = {}",
        i2.get("other-mounted").unwrap_or("?"),
        i2.get("written-other").unwrap_or("?")
    );
    let before3 = guids(&i2, "setup")?;
    let r3 = rotate_boot(&ctx, &img, "rotate-other")?;
    let i3 = script_boot(&ctx, &img, "inspect-other", INSPECT3)?;
    check_refused(
        "case 3 (unmarked clone of another snapshot)",
        &r3,
        &before3,
        &i3,
    )?;
    check_eq(
        "case 3: rpool/safe/persist",
        i3.get("persist"),
        Some(persist.as_str()),
        Some(&i3),
    )?;
    eprintln!(
        "zfs-torn-clone: case 3 (unmarked clone of another snapshot): refused, nothing changed"
    );
    eprintln!(
        "zfs-torn-clone: observed: `written` of fresh never-mounted clones (-o mountpoint=legacy): of the populated @other = {} ({} after export and import), of the empty @blank = {} ({})",
        i3.get("observe-other").unwrap_or("?"),
        i3.get("observe-other-reimported").unwrap_or("?"),
        i3.get("observe-blank").unwrap_or("?"),
        i3.get("observe-blank-reimported").unwrap_or("?"),
    );
    Ok(Outcome::Pass)
}
