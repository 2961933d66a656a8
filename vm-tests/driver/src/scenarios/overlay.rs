//! overlay-present / overlay-absent: an overlay whose upper layer lives on a
//! second disk (the "SSD"). Present: the overlay is mounted and writes land
//! on the SSD. Absent (disk detached): the boot succeeds on the lower layer
//! alone and the journal says why in one line. The absent case is the
//! dangerous one: the erased root itself holds `/mnt/nix-ssd/upper` and
//! `/mnt/nix-ssd/work` (with a file in the upper directory), so an overlay
//! that ignored its condition would mount with its upper layer on the root
//! and be erased at the next boot; nothing may be mounted from them.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report};
use crate::image::subvol;
use crate::initrd::{Flavour, Item};
use crate::qemu::Boot;
use crate::{Env, Result, ensure, sh};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", "oldRoots": "@old_roots" }
  ],
  "overlays": [
    { "where": "/usr/local/store", "lower": [ "/usr/local/store" ],
      "upper": "/mnt/nix-ssd/upper", "work": "/mnt/nix-ssd/work",
      "whenMounted": "/mnt/nix-ssd", "before": [], "required": false }
  ]
}"#;

/// The SSD: a Btrfs image mounted (nofail) at /mnt/nix-ssd. udev under TCG
/// can take several seconds to announce it: a generous device timeout when
/// it is attached, a short one when it is not (the wait is all it costs).
fn fstab(timeout_s: u32) -> String {
    format!(
        "/dev/vda /persist btrfs subvol=@persist 0 0\n\
         /dev/vdb /mnt/nix-ssd btrfs nofail,x-systemd.device-timeout={timeout_s}s 0 0\n"
    )
}

const SCRIPT: &str = r#"
mark "store-fstype=$(findmnt -no FSTYPE /usr/local/store)"
mark "lower-file=$(cat /usr/local/store/from-lower 2>/dev/null || echo missing)"
echo written >/usr/local/store/written-at-runtime
mark "upper-file=$([ -e /mnt/nix-ssd/upper/written-at-runtime ] && echo on-ssd || echo not-on-ssd)"
mark "root-upper-present=$([ -e /mnt/nix-ssd/upper/from-erased-root ] && echo yes || echo no)"
mark "ssd-mounted=$(mountpoint -q /mnt/nix-ssd && echo yes || echo no)"
mark "root-upper-visible=$([ -e /usr/local/store/from-erased-root ] && echo yes || echo no)"
mark "overlay-mounts=$(findmnt -rn -t overlay -o TARGET | paste -sd, -)"
mark "skip-lines=$(journalctl -b -o cat | grep -c 'was skipped because of an unmet condition check (ConditionPathIsMountPoint=/mnt/nix-ssd)')"
journalctl -b -o cat | grep 'ConditionPathIsMountPoint=/mnt/nix-ssd' || true
"#;

fn boot(env: &Env, present: bool) -> Result<(Boot, std::path::PathBuf)> {
    let ctx = Ctx::new(
        env,
        if present {
            "overlay-present"
        } else {
            "overlay-absent"
        },
    )?;
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))?;
        sh::bash(
            r#"mkdir -p "$1/@usr/local/store" && echo lower >"$1/@usr/local/store/from-lower""#,
            &[&m.dir],
        )?;
        Ok(())
    })?;
    let mut spec = Spec::new(Flavour::Systemd, Fs::Btrfs, CONFIG, SCRIPT);
    spec.root_files.push((
        "/etc/fstab".into(),
        Item::Text(fstab(if present { 90 } else { 5 }), 0o644),
    ));
    let ssd = ctx.dir.join("ssd.img");
    if !present {
        // The upper and work directories on the erased root itself, as a
        // blank template or an activation script could leave them.
        spec.root_files.push((
            "/mnt/nix-ssd/upper/from-erased-root".into(),
            Item::Text("upper on the root\n".into(), 0o644),
        ));
        spec.root_files.push((
            "/mnt/nix-ssd/work/.keep".into(),
            Item::Text(String::new(), 0o644),
        ));
    }
    if present {
        sh::run("truncate", &["-s", "512M", &ssd.display().to_string()])?;
        sh::run(
            "mkfs.btrfs",
            &["-q", "-L", "ssd", &ssd.display().to_string()],
        )?;
        let m = crate::image::Mount::btrfs(&ssd)?;
        sh::bash(r#"mkdir -p "$1/upper" "$1/work""#, &[&m.dir])?;
        drop(m);
        spec.extra_disks.push(ssd.clone());
    }
    let b = ctx.boot(
        if present { "with-ssd" } else { "without-ssd" },
        &img,
        &spec,
    )?;
    b.expect_script_ok()?;
    Ok((b, ssd))
}

/// The SSD attached.
pub fn run_present(env: &Env) -> Result<Outcome> {
    let (b, ssd) = boot(env, true)?;
    check_eq(
        "/usr/local/store filesystem type",
        b.get("store-fstype"),
        Some("overlay"),
        Some(&b),
    )?;
    check_eq(
        "the lower layer through the overlay",
        b.get("lower-file"),
        Some("lower"),
        Some(&b),
    )?;
    check_eq(
        "a write to the overlay",
        b.get("upper-file"),
        Some("on-ssd"),
        Some(&b),
    )?;
    let m = crate::image::Mount::btrfs(&ssd)?;
    ensure!(
        m.p("upper/written-at-runtime").is_file(),
        "the SSD image has no upper/written-at-runtime after the boot"
    );
    Ok(Outcome::Pass)
}

/// The SSD detached, its upper and work directories on the erased root.
pub fn run_absent(env: &Env) -> Result<Outcome> {
    let (b, _) = boot(env, false)?;
    check_report(
        &b,
        &[
            (
                "/usr/local/store filesystem type (no overlay)",
                "store-fstype",
                "",
            ),
            ("the lower layer alone", "lower-file", "lower"),
            (
                "the upper directory on the erased root, with its file (the dangerous state)",
                "root-upper-present",
                "yes",
            ),
            ("/mnt/nix-ssd a mount point", "ssd-mounted", "no"),
            ("overlay mounts anywhere", "overlay-mounts", ""),
            (
                "the upper directory on the erased root seen through /usr/local/store",
                "root-upper-visible",
                "no",
            ),
            (
                "a write to /usr/local/store landing in the upper directory on the erased root",
                "upper-file",
                "not-on-ssd",
            ),
            (
                "journal lines saying why the overlay was skipped",
                "skip-lines",
                "1",
            ),
        ],
    )?;
    Ok(Outcome::Pass)
}
