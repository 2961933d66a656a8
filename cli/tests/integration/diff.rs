//! `tabula diff` on real Btrfs and tmpfs roots: a planted set of changes
//! (created, modified, renamed, deleted, hard-linked, special files, odd
//! names, persisted paths, what NixOS and systemd-tmpfiles make again), and
//! the output in every form must be exactly that set.

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use crate::common::{Scratch, TestResult, join, p, sh, tabula, write};
use crate::diff_check::{check_outputs, truth};
use tabula_testkit::{BTRFS_ON_LOOP, Need, skip_unless};

/// The changes every root gets, relative to the root directory `r`, made
/// through the running system's view (persisted paths are bind mounts).
fn plant_common(r: &Path) -> std::io::Result<()> {
    write(&r.join("etc/new.conf"), &[b'x'; 100]);
    std::fs::create_dir_all(r.join("var/lib/app/sub"))?;
    write(&r.join("var/lib/app/db"), &vec![7u8; 1 << 20]);
    write(&r.join("var/lib/app/a"), b"a");
    std::fs::hard_link(r.join("var/lib/app/a"), r.join("var/lib/app/a-link"))?;
    write(&r.join("var/lib/app/sub/x"), b"x");
    std::fs::create_dir_all(r.join("srv"))?;
    sh("mkfifo", &[p(&r.join("srv/fifo"))]);
    sh("mknod", &[p(&r.join("srv/null")), "c", "1", "3"]);
    let _sock = std::os::unix::net::UnixListener::bind(r.join("srv/sock"))?;
    write(&join(r, b"srv/a\nb"), b"newline");
    write(&join(r, b"srv/\xff\xfe"), b"not utf-8");
    symlink("/usr/share/doc.txt", r.join("srv/link-elsewhere"))?;
    // What NixOS makes at every boot.
    symlink(
        "/nix/store/0000000000000000000000000000000-etc/etc",
        r.join("etc/static"),
    )?;
    symlink("/etc/static/hosts", r.join("etc/hosts"))?;
    std::fs::create_dir_all(r.join("bin"))?;
    symlink(
        "/nix/store/0000000000000000000000000000000-bash/bin/sh",
        r.join("bin/sh"),
    )?;
    write(&r.join("etc/.clean"), b"sudoers\n");
    write(&r.join("etc/sudoers"), b"root ALL=(ALL) ALL\n");
    write(&r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
    // A new directory with a lost file and a store link: the tree shows it
    // open, not as one line.
    write(&r.join("opt/tool/conf"), b"setting");
    symlink(
        "/nix/store/0000000000000000000000000000000-tool/bin",
        r.join("opt/tool/bin"),
    )?;
    // systemd-tmpfiles' configuration, linked into the store as NixOS
    // links it (through /etc/static), and one written by hand on the root
    // (lost itself, so its line makes nothing at the next boot).
    write(
        &r.join("nix/store/0000000000000000000000000000000-etc/etc/tmpfiles.d/tabula.conf"),
        b"# what systemd-tmpfiles makes at every boot\n\
d /var/lib/tabula-regen 0755 root root -\n\
d /var/cache/tabula/deep 0755 - - -\n\
f /etc/tabula-regen.conf 0644 root root - hello\n\
L /etc/tabula-link - - - - /some/where\n\
d /etc/tabula-not-a-dir 0755 - - -\n\
d /home/%u/ignored\n",
    );
    std::fs::create_dir_all(r.join("etc/tmpfiles.d"))?;
    symlink(
        "/etc/static/tmpfiles.d/tabula.conf",
        r.join("etc/tmpfiles.d/tabula.conf"),
    )?;
    write(
        &r.join("etc/tmpfiles.d/lost.conf"),
        b"d /srv/from-a-lost-file\n",
    );
    std::fs::create_dir_all(r.join("srv/from-a-lost-file"))?;
    // /run/tmpfiles.d (on another filesystem, so it stays): its lost.conf is
    // not hidden by the lost file of that name in /etc/tmpfiles.d, its
    // tabula.conf is hidden by the one linked there.
    write(
        &r.join("run/tmpfiles.d/lost.conf"),
        b"d /var/lib/from-run 0755 - - -\n",
    );
    write(
        &r.join("run/tmpfiles.d/tabula.conf"),
        b"d /var/lib/hidden-by-etc 0755 - - -\n",
    );
    std::fs::create_dir_all(r.join("var/lib/from-run"))?;
    std::fs::create_dir_all(r.join("var/lib/hidden-by-etc"))?;
    write(&r.join("var/lib/tabula-regen/state"), b"state");
    std::fs::create_dir_all(r.join("var/cache/tabula/deep"))?;
    write(&r.join("etc/tabula-regen.conf"), b"edited");
    symlink("/some/where", r.join("etc/tabula-link"))?;
    write(
        &r.join("etc/tabula-not-a-dir"),
        b"a file, not the directory",
    );
    // Persisted: written through the bind mounts, into the storage.
    write(&r.join("var/log/new.log"), b"log");
    write(&r.join("var/lib/bluetooth/adapter"), b"bt");
    write(
        &r.join("etc/machine-id"),
        b"0123456789abcdef0123456789abcdef\n",
    );
    // Under another mount: not the root's.
    write(&r.join("boot/kernel"), b"kernel");
    Ok(())
}

const COMMON_LOST: &[&[u8]] = &[
    b"/etc/new.conf",
    b"/var/lib/app",
    b"/var/lib/app/db",
    b"/var/lib/app/a",
    b"/var/lib/app/a-link",
    b"/var/lib/app/sub",
    b"/var/lib/app/sub/x",
    b"/srv",
    b"/srv/fifo",
    b"/srv/null",
    b"/srv/sock",
    b"/srv/a\nb",
    b"/srv/\xff\xfe",
    b"/srv/link-elsewhere",
    b"/opt",
    b"/opt/tool",
    b"/opt/tool/conf",
    b"/etc/tmpfiles.d",
    b"/etc/tmpfiles.d/lost.conf",
    b"/srv/from-a-lost-file",
    b"/var/lib/tabula-regen/state",
    b"/etc/tabula-not-a-dir",
    b"/var/lib/hidden-by-etc",
];
const COMMON_REGENERATED: &[&[u8]] = &[
    b"/etc/static",
    b"/etc/hosts",
    b"/bin",
    b"/bin/sh",
    b"/etc/.clean",
    b"/etc/sudoers",
    b"/etc/passwd",
    b"/boot",
    b"/var/lib",
    b"/opt/tool/bin",
    b"/nix",
    b"/etc/tmpfiles.d/tabula.conf",
    b"/var/lib/tabula-regen",
    b"/var/cache",
    b"/var/cache/tabula",
    b"/var/cache/tabula/deep",
    b"/etc/tabula-regen.conf",
    b"/etc/tabula-link",
    b"/run",
    b"/var/lib/from-run",
];

/// Makes the mount points and the persisted bind mounts on root `r`, from
/// storage `s`.
fn persist_mounts(sc: &mut Scratch, r: &Path, s: &Path) {
    for d in ["var/log", "var/lib/bluetooth"] {
        std::fs::create_dir_all(s.join(d)).unwrap();
        std::fs::create_dir_all(r.join(d)).unwrap();
        sc.mount(&["--bind", p(&s.join(d))], &r.join(d));
    }
    write(&s.join("var/log/old.log"), b"old log");
    write(&s.join("etc/machine-id"), b"");
    write(&r.join("etc/machine-id"), b"");
    sc.mount(
        &["--bind", p(&s.join("etc/machine-id"))],
        &r.join("etc/machine-id"),
    );
    sc.mount(&["-t", "tmpfs", "boot"], &r.join("boot"));
    sc.mount(&["-t", "tmpfs", "nix"], &r.join("nix"));
    sc.mount(&["-t", "tmpfs", "run"], &r.join("run"));
}

pub fn config(sc: &Scratch, rollback: &str) -> std::path::PathBuf {
    let path = sc.path("config.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"version": 1, "rollback": [{rollback}],
               "persist": [{{"storage": "/persist", "directories": ["/var/log", "/var/lib/bluetooth"], "files": ["/etc/machine-id"]}}]}}"#
        ),
    )
    .unwrap();
    path
}

fn paths(list: &[&[u8]]) -> BTreeSet<Vec<u8>> {
    list.iter().map(|p| p.to_vec()).collect()
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn btrfs_diff_from_blank_lists_exactly_what_the_next_boot_erases() -> TestResult {
    if skip_unless(
        "btrfs_diff_from_blank_lists_exactly_what_the_next_boot_erases",
        BTRFS_ON_LOOP,
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    let dev = sc.btrfs(256);
    let top = sc.path("top");
    sc.mount(&["-o", "subvolid=5", &dev], &top);
    sh(
        "btrfs",
        &["-q", "subvolume", "create", p(&top.join("@blank"))],
    );
    let b = top.join("@blank");
    for f in [
        "etc/keep",
        "etc/mod-me",
        "etc/del-me",
        "etc/rename-me",
        "usr/share/doc.txt",
    ] {
        write(&b.join(f), f.as_bytes());
    }
    for d in ["var/log", "home"] {
        std::fs::create_dir_all(b.join(d))?;
    }
    sh(
        "btrfs",
        &["-q", "subvolume", "snapshot", p(&b), p(&top.join("@root"))],
    );
    sh("btrfs", &["property", "set", "-ts", p(&b), "ro", "true"]);
    std::fs::create_dir_all(top.join("persist"))?;
    let r = sc.path("root");
    sc.mount(&["-o", "subvol=@root", &dev], &r);
    persist_mounts(&mut sc, &r, &top.join("persist"));

    plant_common(&r)?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(r.join("etc/mod-me"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b" more"))?;
    std::fs::rename(r.join("etc/rename-me"), r.join("etc/renamed"))?;
    std::fs::remove_file(r.join("etc/del-me"))?;
    std::fs::hard_link(r.join("etc/keep"), r.join("etc/keep-link"))?;
    std::fs::set_permissions(r.join("usr/share"), std::fs::Permissions::from_mode(0o700))?;
    sh(
        "btrfs",
        &["-q", "subvolume", "create", p(&r.join("var/lib/machines"))],
    );
    write(&r.join("var/lib/machines/img"), b"image");

    let cfg = config(
        &sc,
        &format!(
            r#"{{"type": "btrfs", "device": "{dev}", "subvolume": "@root", "blank": "@blank", "oldRoots": "@old_roots"}}"#
        ),
    );
    let lost = [
        COMMON_LOST,
        &[
            b"/etc/mod-me",
            b"/etc/renamed",
            b"/etc/keep-link",
            b"/usr/share",
            b"/var/lib/machines",
            b"/var/lib/machines/img",
        ],
    ]
    .concat();
    let truth = truth(&lost, COMMON_REGENERATED);
    let new_dirs = paths(&[b"/var/lib/app", b"/srv", b"/var/lib/machines"]);
    let nix = "tabula.persist.\"/persist\" = {\n  directories = [\n    \"/srv\"\n    \"/var/lib/app\"\n    \"/var/lib/hidden-by-etc\"\n    \"/var/lib/machines\"\n  ];\n  files = [\n    \"/etc/keep-link\"\n    \"/etc/mod-me\"\n    \"/etc/new.conf\"\n    \"/etc/renamed\"\n    \"/etc/tabula-not-a-dir\"\n    \"/etc/tmpfiles.d/lost.conf\"\n    \"/opt/tool/conf\"\n    \"/var/lib/tabula-regen/state\"\n  ];\n};\n";
    check_outputs(&cfg, &r, &truth, &new_dirs, Some(nix));

    let out = tabula(&["--config", p(&cfg), "--root", p(&r), "diff", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        doc["method"].as_str().unwrap().starts_with("tree search"),
        "{}",
        doc["method"]
    );
    Ok(())
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn btrfs_diff_without_blank_lists_everything_but_persisted_and_regenerated() -> TestResult {
    if skip_unless(
        "btrfs_diff_without_blank_lists_everything_but_persisted_and_regenerated",
        BTRFS_ON_LOOP,
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    let (dev, top) = sc.btrfs_with_root("");
    std::fs::create_dir_all(top.join("persist"))?;
    let r = sc.path("root");
    sc.mount(&["-o", "subvol=@root", &dev], &r);
    persist_mounts(&mut sc, &r, &top.join("persist"));
    plant_common(&r)?;
    let cfg = config(
        &sc,
        &format!(
            r#"{{"type": "btrfs", "device": "{dev}", "subvolume": "@root", "oldRoots": null}}"#
        ),
    );
    // Made by this test before the changes; new on an empty root, and
    // holding persisted paths: made again at boot.
    let truth = truth(
        COMMON_LOST,
        &[COMMON_REGENERATED, &[b"/etc", b"/var"]].concat(),
    );
    check_outputs(&cfg, &r, &truth, &paths(&[b"/var/lib/app", b"/srv"]), None);
    Ok(())
}

#[test]
#[ignore = "needs root (mounts); dev/test.sh runs it"]
fn tmpfs_diff_lists_one_filesystem_without_its_mounts() -> TestResult {
    if skip_unless(
        "tmpfs_diff_lists_one_filesystem_without_its_mounts",
        &[Need::Root],
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    let r = sc.path("root");
    sc.mount(&["-t", "tmpfs", "tabula-test-root"], &r);
    let storage = sc.path("persist");
    persist_mounts(&mut sc, &r, &storage);
    plant_common(&r)?;
    let cfg = config(&sc, "");
    let truth = truth(
        COMMON_LOST,
        &[COMMON_REGENERATED, &[b"/etc", b"/var"]].concat(),
    );
    check_outputs(&cfg, &r, &truth, &paths(&[b"/var/lib/app", b"/srv"]), None);
    Ok(())
}
