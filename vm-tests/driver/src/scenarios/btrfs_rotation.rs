//! btrfs-rotation (both flavours): write to / and to persisted paths, reboot;
//! / is clean, persisted data keeps its owners and modes, and the previous
//! root, with the file written to it, sits under `@old_roots`.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report, is_timestamp_name, ls};
use crate::initrd::Flavour;
use crate::{Context, Env, Result, bail, ensure};

/// The config of the Btrfs scenarios (`@root` rotated into `@old_roots`).
pub const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root",
      "oldRoots": "@old_roots", "keep": { "days": 30, "min": 1, "max": null } }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/log",
        { "path": "/var/lib/tabula-test", "user": "nobody", "group": "nogroup", "mode": "0750" } ],
      "files": [ { "path": "/etc/tabula-test.conf", "mode": "0600" } ] }
  ]
}"#;

/// Stage-2 checks common to both boots; `$1` is the boot number.
pub const REPORT: &str = r#"
report() {
  mark "root-file=$([ -e /tabula-written-on-root ] && echo present || echo absent)"
  mark "persist-mounted=$(mountpoint -q /var/lib/tabula-test && echo yes || echo no) file-mounted=$(mountpoint -q /etc/tabula-test.conf && echo yes || echo no)"
  mark "dir-stat=$(st /var/lib/tabula-test) file-stat=$(st /etc/tabula-test.conf) data-stat=$(st /var/lib/tabula-test/data)"
  mark "data=$(cat /var/lib/tabula-test/data 2>/dev/null || echo none) secret=$(cat /etc/tabula-test.conf 2>/dev/null | head -c 20 || echo none)"
  mark "rollback-log-lines=$(dmesg | grep -c 'tabula-rollback\[')"
  # systemd initrd: did tabula-rollback.service finish before /sysroot was mounted?
  local j; j=$(journalctl -b -o cat 2>/dev/null)
  local a b
  a=$(grep -n -m1 'Finished.*tabula: roll back the root filesystem' <<<"$j" | cut -d: -f1)
  b=$(grep -n -m1 'Mounted.*sysroot' <<<"$j" | cut -d: -f1)
  mark "unit-finished-line=${a:-none} sysroot-mounted-line=${b:-none}"
}
"#;

/// Run the scenario in one flavour.
pub fn run(env: &Env, flavour: Flavour) -> Result<Outcome> {
    let ctx = Ctx::new(env, &format!("btrfs-rotation-{}", flavour.name()))?;
    let img = ctx.btrfs_image("disk.img", |m| {
        crate::image::subvol(&m.p("@root"))?;
        crate::image::subvol(&m.p("@persist"))?;
        crate::image::subvol(&m.p("@old_roots"))?;
        Ok(())
    })?;

    let boot1 = format!(
        "{REPORT}\nset -e\nreport\necho erased >/tabula-written-on-root\n\
         echo kept >/var/lib/tabula-test/data\nchown nobody:nogroup /var/lib/tabula-test/data\n\
         chmod 0640 /var/lib/tabula-test/data\necho secret >/etc/tabula-test.conf\nsync\n"
    );
    let b1 = ctx.boot(
        "write",
        &img,
        &Spec::new(flavour, Fs::Btrfs, CONFIG, &boot1),
    )?;
    b1.expect_script_ok()?;
    check_report(
        &b1,
        &[
            (
                "boot 1: persisted directory mounted",
                "persist-mounted",
                "yes",
            ),
            ("boot 1: persisted file mounted", "file-mounted", "yes"),
            (
                "boot 1: persisted directory owner:group:mode",
                "dir-stat",
                "nobody:nogroup:750",
            ),
            (
                "boot 1: persisted file owner:group:mode",
                "file-stat",
                "root:root:600",
            ),
        ],
    )?;

    let boot2 = format!("{REPORT}\nreport\n");
    let b2 = ctx.boot(
        "check",
        &img,
        &Spec::new(flavour, Fs::Btrfs, CONFIG, &boot2),
    )?;
    b2.expect_script_ok()?;
    check_report(&b2, super::ERASED_AND_PERSISTED)?;
    check_eq(
        "boot 2: persisted file owner:group:mode",
        b2.get("file-stat"),
        Some("root:root:600"),
        Some(&b2),
    )?;
    ensure!(
        b2.get("rollback-log-lines").is_some_and(|n| n != "0"),
        "boot 2: no tabula-rollback line in the kernel log; {}",
        b2.describe()
    );
    for b in [&b1, &b2] {
        match flavour {
            Flavour::Scripted => check_eq(
                "stage 1: tabula-rollback exit status",
                b.get("rollback-exit"),
                Some("0"),
                Some(b),
            )?,
            Flavour::Systemd => check_unit_order(b)?,
        }
    }

    // The disk, from the host.
    let m = crate::image::Mount::btrfs(&img)?;
    check_eq(
        "top level of the disk",
        ls(&m.dir)?,
        vec![
            "@old_roots".into(),
            "@persist".into(),
            "@root".into(),
            "@usr".into(),
        ],
        None::<&crate::qemu::Boot>,
    )?;
    ensure!(
        !m.p("@root/tabula-written-on-root").exists(),
        "@root still holds the file written before the reboot"
    );
    let old = ls(&m.p("@old_roots"))?;
    ensure!(
        old.iter().all(|n| is_timestamp_name(n)),
        "@old_roots holds unexpected names: {old:?}"
    );
    check_eq(
        "number of old roots after two rotations",
        old.len(),
        2,
        None,
    )?;
    let with_file: Vec<&String> = old
        .iter()
        .filter(|n| {
            std::fs::read_to_string(m.p(&format!("@old_roots/{n}/tabula-written-on-root")))
                .is_ok_and(|s| s == "erased\n")
        })
        .collect();
    check_eq(
        "old roots holding the file written in boot 1",
        with_file.len(),
        1,
        None,
    )?;
    let data = m.p("@persist/var/lib/tabula-test/data");
    let s = std::fs::read_to_string(&data).ctx(data.display())?;
    check_eq(
        "@persist/var/lib/tabula-test/data",
        s.as_str(),
        "kept\n",
        None,
    )?;
    Ok(Outcome::Pass)
}

/// systemd initrd: tabula-rollback.service finished before /sysroot was
/// mounted (journal line order, from the REPORT markers).
pub fn check_unit_order(b: &crate::qemu::Boot) -> Result<()> {
    let (Some(Ok(a)), Some(Ok(s))) = (
        b.get("unit-finished-line").map(str::parse::<u32>),
        b.get("sysroot-mounted-line").map(str::parse::<u32>),
    ) else {
        bail!(
            "systemd initrd: tabula-rollback.service did not finish or /sysroot was not mounted; {}",
            b.describe()
        );
    };
    ensure!(
        a < s,
        "systemd initrd: tabula-rollback.service finished after /sysroot was mounted; {}",
        b.describe()
    );
    Ok(())
}
