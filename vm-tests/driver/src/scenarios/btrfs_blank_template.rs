//! btrfs-blank-template: with `blank` set the new root is a writable
//! snapshot of it (here a populated template), not an empty subvolume; the
//! template itself never changes.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_report, tree_digest};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::{Env, Result, ensure, sh};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", "blank": "@blank",
      "oldRoots": "@old_roots", "keep": { "days": 30, "min": 1, "max": null } }
  ]
}"#;

const SCRIPT: &str = r#"
mark "from-blank=$(cat /from-blank 2>/dev/null || echo missing) root-file=$([ -e /tabula-written-on-root ] && echo present || echo absent)"
echo erased >/tabula-written-on-root
echo changed >/from-blank
sync
"#;

/// Run the scenario (systemd flavour).
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "btrfs-blank-template")?;
    let os = env.cache.join("os-usr/share/tabula-harness/skeleton");
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))?;
        subvol(&m.p("@blank"))?;
        sh::bash(
            r#"cp -a "$1/." "$2/" && echo template >"$2/from-blank""#,
            &[&os, &m.p("@blank")],
        )?;
        Ok(())
    })?;
    let blank_before = tree_digest(&Mount::btrfs(&img)?.p("@blank"))?;
    let spec = Spec::new(Flavour::Systemd, Fs::Btrfs, CONFIG, SCRIPT);
    let b1 = ctx.boot("write", &img, &spec)?;
    b1.expect_script_ok()?;
    check_report(
        &b1,
        &[
            (
                "boot 1: activation (the snapshot of @blank already has /etc)",
                "activate",
                "kept",
            ),
            ("boot 1: /from-blank", "from-blank", "template"),
        ],
    )?;
    let b2 = ctx.boot("check", &img, &spec)?;
    b2.expect_script_ok()?;
    check_report(
        &b2,
        &[
            (
                "boot 2: /from-blank (changed in boot 1)",
                "from-blank",
                "template",
            ),
            ("boot 2: file written to / in boot 1", "root-file", "absent"),
        ],
    )?;
    let m = Mount::btrfs(&img)?;
    ensure!(
        tree_digest(&m.p("@blank"))? == blank_before,
        "@blank changed across two boots"
    );
    Ok(Outcome::Pass)
}
