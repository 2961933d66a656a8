//! persist-files-and-homes (systemd initrd): persisted files are created and
//! bind-mounted (never symlinks); a user's home and every parent created
//! under it belong to the user; `/etc/machine-id` is persisted with
//! `inInitrd` (mounted by the generator in the initrd, from /persist mounted
//! there) and stays the same across reboots.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_eq, check_report};
use crate::image::subvol;
use crate::initrd::{Flavour, Item};
use crate::{Context, Env, Result, ensure};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", "oldRoots": "@old_roots" }
  ],
  "persist": [
    { "storage": "/persist",
      "files": [ { "path": "/etc/machine-id", "inInitrd": true } ],
      "users": { "alice": { "home": "/home/alice",
        "directories": [ "Documents", { "path": ".ssh", "mode": "0700" }, ".local/share/app" ],
        "files": [ ".bash_history" ] } } }
  ]
}"#;

const REPORT: &str = r#"
mark "machine-id=$(cat /etc/machine-id) mid-mounted=$(mountpoint -q /etc/machine-id && echo yes || echo no)"
mark "home=$(st /home/alice) docs=$(st /home/alice/Documents) ssh=$(st /home/alice/.ssh) local=$(st /home/alice/.local) share=$(st /home/alice/.local/share) app=$(st /home/alice/.local/share/app)"
mark "hist=$(st /home/alice/.bash_history) hist-symlink=$([ -L /home/alice/.bash_history ] && echo yes || echo no) hist-mounted=$(mountpoint -q /home/alice/.bash_history && echo yes || echo no)"
mark "doc=$(cat /home/alice/Documents/doc 2>/dev/null || echo missing) histline=$(head -n1 /home/alice/.bash_history 2>/dev/null | tr ' ' _)"
u=systemd-machine-id-commit.service
mark "commit=$(systemctl show -p ActiveState --value $u) commit-cond=$(systemctl show -p ConditionResult --value $u) commit-result=$(systemctl show -p Result --value $u) commit-ran=$([ "$(systemctl show -p ExecMainStartTimestampMonotonic --value $u)" -gt 0 ] 2>/dev/null && echo yes || echo no)"
mark "persisted-mid=$(cat /persist/etc/machine-id 2>/dev/null | head -c 40 || echo missing) mid-fstype=$(findmnt -no FSTYPE /etc/machine-id | paste -sd, -)"
mark "commit-tmpfs-error=$(journalctl -b -o cat | grep -c 'not on a temporary file system')"
"#;

const WRITE: &str = r#"
setpriv --reuid=alice --regid=alice --clear-groups sh -c 'echo mine >/home/alice/Documents/doc && echo ls_-la >>/home/alice/.bash_history'
mark "wrote=$(cat /home/alice/Documents/doc 2>/dev/null || echo failed)"
sync
"#;

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "persist-files-and-homes")?;
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))
    })?;
    let skel = env.cache.join("os-usr/share/tabula-harness/skeleton/etc");
    let read = |f: &str| std::fs::read_to_string(skel.join(f)).ctx(skel.join(f).display());
    let mut spec = Spec::new(Flavour::Systemd, Fs::Btrfs, CONFIG, "");
    spec.root_files.push((
        "/etc/passwd".into(),
        Item::Text(
            read("passwd")? + "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
            0o644,
        ),
    ));
    spec.root_files.push((
        "/etc/group".into(),
        Item::Text(read("group")? + "alice:x:1000:\n", 0o644),
    ));
    // /persist is needed for boot: mounted in the initrd, like NixOS's
    // neededForBoot, so the generator's inInitrd mounts find it.
    let initrd_fstab = "/dev/vda /sysroot/persist btrfs subvol=@persist 0 0\n";
    let mut extra = vec![(
        "/etc/fstab".to_owned(),
        Item::Text(initrd_fstab.into(), 0o644),
    )];
    Env::require_bin(&env.generator)?;
    extra.push((
        "/etc/systemd/system-generators/tabula-generator".into(),
        Item::Copy(env.generator.clone(), 0o755),
    ));
    spec.initrd_files = extra;

    spec.script = format!("{REPORT}\n{WRITE}");
    let b1 = ctx.boot("first", &img, &spec)?;
    b1.expect_script_ok()?;
    check_eq(
        "boot 1: alice writes in her home",
        b1.get("wrote"),
        Some("mine"),
        Some(&b1),
    )?;
    REPORT.clone_into(&mut spec.script);
    let b2 = ctx.boot("second", &img, &spec)?;
    b2.expect_script_ok()?;
    let mid = b1.get("machine-id").unwrap_or_default();
    ensure!(
        mid.len() == 32 && mid.chars().all(|c| c.is_ascii_hexdigit()),
        "boot 1: /etc/machine-id is {mid:?}; {}",
        b1.describe()
    );
    check_eq(
        "machine-id across reboots",
        b2.get("machine-id"),
        Some(mid),
        Some(&b2),
    )?;
    for b in [&b1, &b2] {
        check_eq(
            "/etc/machine-id bind-mounted",
            b.get("mid-mounted"),
            Some("yes"),
            Some(b),
        )?;
        check_eq("home", b.get("home"), Some("alice:alice:700"), Some(b))?;
        check_eq("Documents", b.get("docs"), Some("alice:alice:755"), Some(b))?;
        check_eq(".ssh", b.get("ssh"), Some("alice:alice:700"), Some(b))?;
        check_eq(
            ".local (a created parent)",
            b.get("local"),
            Some("alice:alice:755"),
            Some(b),
        )?;
        check_eq(
            ".local/share (a created parent)",
            b.get("share"),
            Some("alice:alice:755"),
            Some(b),
        )?;
        check_eq(
            ".local/share/app",
            b.get("app"),
            Some("alice:alice:755"),
            Some(b),
        )?;
        check_eq(
            ".bash_history",
            b.get("hist"),
            Some("alice:alice:644"),
            Some(b),
        )?;
        check_eq(
            ".bash_history is a symlink",
            b.get("hist-symlink"),
            Some("no"),
            Some(b),
        )?;
        check_eq(
            ".bash_history bind-mounted",
            b.get("hist-mounted"),
            Some("yes"),
            Some(b),
        )?;
    }
    // The id PID 1 generated on the first boot is committed through the
    // bind mount into the persisted copy by systemd-machine-id-commit, which
    // runs on the first boot only (the generator's ConditionFirstBoot=yes
    // drop-in) and never fails with "not on a temporary file system".
    check_report(
        &b1,
        &[
            (
                "boot 1: systemd-machine-id-commit conditions",
                "commit-cond",
                "yes",
            ),
            ("boot 1: systemd-machine-id-commit ran", "commit-ran", "yes"),
            (
                "boot 1: systemd-machine-id-commit result",
                "commit-result",
                "success",
            ),
            (
                "boot 1: the persisted copy holds the id",
                "persisted-mid",
                mid,
            ),
            (
                "boot 1: \"not on a temporary file system\" in the journal",
                "commit-tmpfs-error",
                "0",
            ),
        ],
    )?;
    check_report(
        &b2,
        &[
            (
                "boot 2: systemd-machine-id-commit conditions (not a first boot)",
                "commit-cond",
                "no",
            ),
            ("boot 2: systemd-machine-id-commit ran", "commit-ran", "no"),
            (
                "boot 2: systemd-machine-id-commit result",
                "commit-result",
                "success",
            ),
            (
                "boot 2: the persisted copy holds the id",
                "persisted-mid",
                mid,
            ),
            (
                "boot 2: \"not on a temporary file system\" in the journal",
                "commit-tmpfs-error",
                "0",
            ),
            ("boot 2: Documents/doc", "doc", "mine"),
            ("boot 2: .bash_history", "histline", "ls_-la"),
        ],
    )?;
    Ok(Outcome::Pass)
}
