//! nested-and-symlink: persisted entries inside others, a symlinked file
//! replaced by rename, and a file whose copy is missing (`"method": "auto"`).
//!
//! - `/var/lib` in `/persist` and `/var/lib/nixos` in `/state`; alice's
//!   `.config` and `.config/fcitx5` in `/persist` (listed inner first, as
//!   real configurations do): mounted outer first (the inner mount is on top
//!   of the outer one, its write lands in its own storage, nothing under the
//!   outer copy), and each write is back after the reboot.
//! - `/etc/renamed.conf` with `"method": "symlink"`: `sed -i --follow-symlinks`
//!   writes a new file and renames it over the file the link points at, as
//!   editors that resolve links do; the link stays, the new content is in
//!   storage and comes back.
//! - `/etc/auto.conf` with `"method": "auto"` and no copy in storage: the
//!   first boot puts a link to the missing copy in place (its mount unit is
//!   skipped by its condition), and a write through it creates the copy in
//!   storage; the second boot bind-mounts that copy.

use crate::harness::{Ctx, Fs, Outcome, Spec, check_report};
use crate::image::subvol;
use crate::initrd::{Flavour, Item};
use crate::{Context, Env, Result};

const CONFIG: &str = r#"{
  "version": 1,
  "rollback": [
    { "type": "btrfs", "device": "/dev/vda", "subvolume": "@root", "oldRoots": "@old_roots" }
  ],
  "persist": [
    { "storage": "/persist",
      "directories": [ "/var/lib" ],
      "files": [ { "path": "/etc/renamed.conf", "method": "symlink" },
                 { "path": "/etc/auto.conf", "method": "auto" } ],
      "users": { "alice": { "home": "/home/alice",
        "directories": [ ".config/fcitx5", ".config" ] } } },
    { "storage": "/state",
      "directories": [ "/var/lib/nixos" ] }
  ]
}"#;

const FSTAB: &str = "/dev/vda /persist btrfs subvol=@persist 0 0\n\
/dev/vda /state btrfs subvol=@state 0 0\n";

const REPORT: &str = r#"
mp() { mountpoint -q "$1" && echo yes || echo no; }
src() { findmnt -no FSROOT "$1" 2>/dev/null | tail -n1; }
mark "lib-mounted=$(mp /var/lib) nixos-mounted=$(mp /var/lib/nixos) config-mounted=$(mp /home/alice/.config) fcitx-mounted=$(mp /home/alice/.config/fcitx5)"
mark "lib-src=$(src /var/lib) nixos-src=$(src /var/lib/nixos) config-src=$(src /home/alice/.config) fcitx-src=$(src /home/alice/.config/fcitx5)"
# outer first: the inner mount's parent mount is the outer one
parent_of() { findmnt -no TARGET --target "$(dirname "$1")"; }
mark "nixos-over=$(parent_of /var/lib/nixos) fcitx-over=$(parent_of /home/alice/.config/fcitx5)"
mark "renamed-link=$(readlink /etc/renamed.conf || echo none) renamed=$(cat /etc/renamed.conf 2>/dev/null || echo missing)"
mark "auto-link=$(readlink /etc/auto.conf || echo none) auto-mounted=$(mp /etc/auto.conf) auto=$(cat /etc/auto.conf 2>/dev/null || echo missing)"
u='etc-auto.conf.mount'
mark "auto-unit=$(systemctl show -p ActiveState --value $u) auto-cond=$(systemctl show -p ConditionResult --value $u)"
mark "outer-file=$(cat /var/lib/outer 2>/dev/null || echo missing) inner-file=$(cat /var/lib/nixos/inner 2>/dev/null || echo missing)"
mark "cfg-file=$(cat /home/alice/.config/outer 2>/dev/null || echo missing) fcitx-file=$(cat /home/alice/.config/fcitx5/inner 2>/dev/null || echo missing)"
mark "failed-units=$(systemctl list-units --failed --no-legend --plain | wc -l)"
"#;

const WRITE: &str = r#"
echo lib >/var/lib/outer
echo nixos >/var/lib/nixos/inner
setpriv --reuid=alice --regid=alice --clear-groups sh -c 'echo cfg >/home/alice/.config/outer && echo fx >/home/alice/.config/fcitx5/inner'
sed -i --follow-symlinks 's/old/new/' /etc/renamed.conf
echo first >/etc/auto.conf
sync
# where each write landed: its own storage, nothing in the outer one. The
# outer copy is looked at through a mount of its own: /persist is a peer of
# the /var/lib bind mount, so the inner mount propagates to it and would show.
mkdir -p /run/outer && mount -o subvol=@persist /dev/vda /run/outer
mark "in-persist-lib=$(cat /persist/var/lib/outer 2>/dev/null || echo missing) in-state-nixos=$(cat /state/var/lib/nixos/inner 2>/dev/null || echo missing) under-outer=$(ls -A /run/outer/var/lib/nixos 2>/dev/null | wc -l) outer-mount-point=$([ -d /run/outer/var/lib/nixos ] && echo yes || echo no)"
umount /run/outer
mark "in-persist-cfg=$(cat /persist/home/alice/.config/outer 2>/dev/null || echo missing) in-persist-fcitx=$(cat /persist/home/alice/.config/fcitx5/inner 2>/dev/null || echo missing)"
mark "renamed-after=$(readlink /etc/renamed.conf || echo none) in-persist-renamed=$(cat /persist/etc/renamed.conf 2>/dev/null || echo missing)"
mark "in-persist-auto=$(cat /persist/etc/auto.conf 2>/dev/null || echo missing)"
"#;

/// Run the scenario.
pub fn run(env: &Env) -> Result<Outcome> {
    let ctx = Ctx::new(env, "nested-and-symlink")?;
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@state"))?;
        subvol(&m.p("@old_roots"))?;
        // the symlinked file's copy, as a previous boot left it
        std::fs::create_dir_all(m.p("@persist/etc")).ctx("mkdir @persist/etc")?;
        std::fs::write(m.p("@persist/etc/renamed.conf"), "old\n").ctx("write renamed.conf")
    })?;
    let skel = env.cache.join("os-usr/share/tabula-harness/skeleton/etc");
    let read = |f: &str| std::fs::read_to_string(skel.join(f)).ctx(skel.join(f).display());
    let mut spec = Spec::new(Flavour::Scripted, Fs::Btrfs, CONFIG, "");
    spec.root_files = vec![
        (
            "/etc/passwd".into(),
            Item::Text(
                read("passwd")? + "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
                0o644,
            ),
        ),
        (
            "/etc/group".into(),
            Item::Text(read("group")? + "alice:x:1000:\n", 0o644),
        ),
        ("/etc/fstab".into(), Item::Text(FSTAB.into(), 0o644)),
    ];
    spec.script = format!("{REPORT}\n{WRITE}");
    let b1 = ctx.boot("first", &img, &spec)?;
    b1.expect_script_ok()?;
    REPORT.clone_into(&mut spec.script);
    let b2 = ctx.boot("second", &img, &spec)?;
    b2.expect_script_ok()?;

    for (n, b) in [(1, &b1), (2, &b2)] {
        let row = |what: &str| format!("boot {n}: {what}");
        let rows: Vec<(String, &str, &str)> = vec![
            (row("/var/lib mounted"), "lib-mounted", "yes"),
            (row("/var/lib/nixos mounted"), "nixos-mounted", "yes"),
            (row(".config mounted"), "config-mounted", "yes"),
            (row(".config/fcitx5 mounted"), "fcitx-mounted", "yes"),
            (
                row("/var/lib/nixos is mounted on top of /var/lib"),
                "nixos-over",
                "/var/lib",
            ),
            (
                row(".config/fcitx5 is mounted on top of .config"),
                "fcitx-over",
                "/home/alice/.config",
            ),
            (
                row("/var/lib/nixos from @state"),
                "nixos-src",
                "/@state/var/lib/nixos",
            ),
            (
                row("/var/lib from @persist"),
                "lib-src",
                "/@persist/var/lib",
            ),
            (
                row(".config/fcitx5 from @persist"),
                "fcitx-src",
                "/@persist/home/alice/.config/fcitx5",
            ),
            (
                row("/etc/renamed.conf is the link to its copy"),
                "renamed-link",
                "/persist/etc/renamed.conf",
            ),
            (row("no unit failed"), "failed-units", "0"),
        ];
        for (what, key, want) in &rows {
            check_report(b, &[(what.as_str(), key, want)])?;
        }
    }
    check_report(
        &b1,
        &[
            ("boot 1: the symlinked file's content", "renamed", "old"),
            (
                "boot 1: /etc/auto.conf, its copy missing, is a link to it",
                "auto-link",
                "/persist/etc/auto.conf",
            ),
            ("boot 1: /etc/auto.conf not mounted", "auto-mounted", "no"),
            (
                "boot 1: etc-auto.conf.mount skipped by its condition",
                "auto-cond",
                "no",
            ),
            ("boot 1: etc-auto.conf.mount state", "auto-unit", "inactive"),
            (
                "boot 1: /var/lib write in @persist",
                "in-persist-lib",
                "lib",
            ),
            (
                "boot 1: /var/lib/nixos write in @state",
                "in-state-nixos",
                "nixos",
            ),
            (
                "boot 1: the inner mount point made in the outer copy",
                "outer-mount-point",
                "yes",
            ),
            (
                "boot 1: entries in @persist's /var/lib/nixos (the mount point)",
                "under-outer",
                "0",
            ),
            ("boot 1: .config write in @persist", "in-persist-cfg", "cfg"),
            (
                "boot 1: .config/fcitx5 write in @persist",
                "in-persist-fcitx",
                "fx",
            ),
            (
                "boot 1: /etc/renamed.conf after the rename",
                "renamed-after",
                "/persist/etc/renamed.conf",
            ),
            (
                "boot 1: the renamed file's content in storage",
                "in-persist-renamed",
                "new",
            ),
            (
                "boot 1: the write through the link created the copy",
                "in-persist-auto",
                "first",
            ),
        ],
    )?;
    check_report(
        &b2,
        &[
            ("boot 2: /var/lib write back", "outer-file", "lib"),
            ("boot 2: /var/lib/nixos write back", "inner-file", "nixos"),
            ("boot 2: .config write back", "cfg-file", "cfg"),
            ("boot 2: .config/fcitx5 write back", "fcitx-file", "fx"),
            ("boot 2: the renamed file's new content", "renamed", "new"),
            (
                "boot 2: /etc/auto.conf, its copy there, is no link",
                "auto-link",
                "none",
            ),
            ("boot 2: /etc/auto.conf bind-mounted", "auto-mounted", "yes"),
            ("boot 2: etc-auto.conf.mount state", "auto-unit", "active"),
            ("boot 2: /etc/auto.conf content", "auto", "first"),
        ],
    )?;
    Ok(Outcome::Pass)
}
