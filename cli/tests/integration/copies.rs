//! `tabula restore`, `adopt` and `stray` on real filesystems.

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use crate::common::{Scratch, TestResult, assert_ok, p, sh, tabula, write};
use tabula_testkit::{BTRFS_ON_LOOP, Need, skip_unless};

/// A tree with owners, modes, times, an extended attribute, a hard link,
/// a fifo and symlinks that point out of it.
fn plant_tree(d: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(d.join("sub"))?;
    write(&d.join("data"), b"precious");
    std::fs::hard_link(d.join("data"), d.join("data2"))?;
    write(&d.join("sub/deep"), b"deep");
    symlink("../../../../../../etc/shadow", d.join("escape"))?;
    symlink("/etc/shadow", d.join("absolute"))?;
    sh("mkfifo", &[p(&d.join("fifo"))]);
    sh(
        "setfattr",
        &["-n", "user.tabula", "-v", "hello", p(&d.join("data"))],
    );
    sh("chown", &["1234:5678", p(&d.join("data"))]);
    sh("chmod", &["0640", p(&d.join("data"))]);
    sh("chown", &["-h", "42:43", p(&d.join("escape"))]);
    sh("chown", &["42:43", p(&d.join("sub"))]);
    sh("chmod", &["0750", p(&d.join("sub"))]);
    for f in ["data", "sub/deep", "fifo", "sub", ""] {
        sh(
            "touch",
            &["-h", "-d", "2020-01-02 03:04:05.123456789Z", p(&d.join(f))],
        );
    }
    sh(
        "touch",
        &["-h", "-d", "2019-05-06 07:08:09Z", p(&d.join("escape"))],
    );
    Ok(())
}

/// Every entry of the tree at `d`: path, type, owner, mode, mtime, size,
/// symlink target, user.tabula attribute.
fn describe(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![d.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(d).unwrap().display().to_string();
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let xattr = if m.file_type().is_file() {
                let mut buf = [0u8; 64];
                rustix::fs::lgetxattr(&path, "user.tabula", &mut buf[..])
                    .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let size = if m.file_type().is_dir() { 0 } else { m.size() };
            out.push(format!(
                "{rel} mode={:o} {}:{} mtime={}.{} size={size} nlink={} -> {target} xattr={xattr}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec(),
                if m.file_type().is_dir() { 0 } else { m.nlink() }
            ));
            if m.file_type().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn generation(subvolume: &Path) -> String {
    sh("btrfs", &["subvolume", "show", p(subvolume)])
        .lines()
        .find(|l| l.trim().starts_with("Generation:"))
        .unwrap()
        .to_owned()
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
#[allow(
    clippy::too_many_lines,
    reason = "one story: an old root, then each way restore may and may not copy it"
)]
fn restore_copies_a_tree_from_an_old_root_exactly_and_never_overwrites_unasked() -> TestResult {
    if skip_unless(
        "restore_copies_a_tree_from_an_old_root_exactly_and_never_overwrites_unasked",
        &[
            BTRFS_ON_LOOP,
            &[Need::Program {
                name: "setfattr",
                package: "attr",
            }],
        ]
        .concat(),
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    // noatime: the test's own reads of the old root must not write to it.
    let (dev, top) = sc.btrfs_with_root(",noatime");
    std::fs::create_dir(top.join("@old_roots"))?;
    let old = top.join("@old_roots/2026-11-30T10:00:00Z");
    sh("btrfs", &["-q", "subvolume", "create", p(&old)]);
    plant_tree(&old.join("var/lib/foo"))?;
    symlink("/etc", old.join("var/lib/evil"))?;
    sh("btrfs", &["filesystem", "sync", p(&top)]);
    let before = generation(&old);

    let root = sc.path("root");
    std::fs::create_dir_all(root.join("persist"))?;
    let cfg = sc.path("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"version": 1, "rollback": [{{"type": "btrfs", "device": "{dev}", "subvolume": "@root", "oldRoots": "@old_roots"}}],
        "persist": [{{"storage": "/persist", "directories": ["/var/log"]}}]}}"#
        ),
    )?;
    let run = |extra: &[&str]| {
        let mut args = vec!["--config", p(&cfg), "--root", p(&root), "restore"];
        args.extend_from_slice(extra);
        tabula(&args)
    };

    let out = run(&[
        "/var/lib/foo",
        "--from",
        "2026-11-30T10:00:00Z",
        "--to",
        "place",
        "--dry-run",
    ]);
    assert_ok(&out);
    assert!(!root.join("var").exists(), "a dry run made something");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("would copy file /var/lib/foo/sub/deep\n"),
        "{said}"
    );
    assert!(said.contains("would copy 8 entries (12B)"), "{said}");

    // Back in place, one file: its directories are made, it keeps its times.
    let out = run(&[
        "/var/lib/foo/sub/deep",
        "--from",
        "2026-11-30T10:00:00Z",
        "--to",
        "place",
    ]);
    assert_ok(&out);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("tabula.persist"),
        "in place: no entry to add"
    );
    assert_eq!(
        describe(&root.join("var/lib/foo/sub")),
        describe(&old.join("var/lib/foo/sub"))
    );

    let out = run(&["/var/lib/foo", "--from", "2026-11-30T10:00:00Z"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ok(&out);
    assert!(
        stdout.contains("tabula.persist.\"/persist\".directories = [ \"/var/lib/foo\" ];"),
        "{stdout}"
    );
    assert_eq!(
        describe(&root.join("persist/var/lib/foo")),
        describe(&old.join("var/lib/foo"))
    );
    let (a, b) = (
        std::fs::metadata(root.join("persist/var/lib/foo/data")).unwrap(),
        std::fs::metadata(root.join("persist/var/lib/foo/data2")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "the hard link is one file again");

    let out = run(&["/var/lib/foo", "--from", "2026-11-30T10:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists; tabula does not overwrite"));
    write(&root.join("persist/var/lib/foo/sub/deep"), b"changed since");
    let out = run(&["/var/lib/foo", "--from", "2026-11-30T10:00:00Z", "--force"]);
    assert_ok(&out);
    assert_eq!(
        describe(&root.join("persist/var/lib/foo")),
        describe(&old.join("var/lib/foo"))
    );

    let out = run(&["/var/lib/evil/shadow", "--from", "2026-11-30T10:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never follows a symlink"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["/var/lib/foo", "--from", "1999-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tabula roots"));

    sh("btrfs", &["filesystem", "sync", p(&top)]);
    assert_eq!(generation(&old), before, "the old root was written to");
    Ok(())
}

#[test]
#[ignore = "needs root (mounts, chown); dev/test.sh runs it"]
fn adopt_copies_the_ephemeral_path_into_the_storage_and_stray_finds_the_undeclared() -> TestResult {
    if skip_unless(
        "adopt_copies_the_ephemeral_path_into_the_storage_and_stray_finds_the_undeclared",
        &[
            Need::Root,
            Need::Program {
                name: "setfattr",
                package: "attr",
            },
        ],
    ) {
        return Ok(());
    }
    let mut sc = Scratch::new();
    let root = sc.path("root");
    sc.mount(&["-t", "tmpfs", "tabula-test-root"], &root);
    plant_tree(&root.join("var/lib/app"))?;
    std::fs::create_dir_all(root.join("var/log"))?;
    let cfg = sc.path("config.json");
    std::fs::write(
        &cfg,
        r#"{"version": 1, "persist": [{"storage": "/persist", "directories": ["/var/log"], "files": ["/etc/ssh/ssh_host_ed25519_key"]}]}"#,
    )?;
    let run = |args: &[&str]| {
        let mut all = vec!["--config", p(&cfg), "--root", p(&root)];
        all.extend_from_slice(args);
        tabula(&all)
    };

    let out = run(&["adopt", "/var/lib/app"]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("tabula.persist.\"/persist\".directories = [ \"/var/lib/app\" ];")
    );
    assert_eq!(
        describe(&root.join("persist/var/lib/app")),
        describe(&root.join("var/lib/app"))
    );
    let out = run(&["adopt", "/var/log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already persisted"));

    // The storage: declared entries, the way to them, and strays.
    write(&root.join("persist/var/log/syslog"), b"declared");
    write(
        &root.join("persist/etc/ssh/ssh_host_ed25519_key"),
        b"declared",
    );
    write(&root.join("persist/etc/ssh/old_key"), b"12345");
    let out = run(&["stray", "--json"]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let got: Vec<String> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["path"].as_str().unwrap(),
                s["entries"],
                s["bytes"]
            )
        })
        .collect();
    // The adopted tree is a stray until its entry is added: 8 entries,
    // 8 + 8 (hard link counted per name) + 4 bytes.
    assert_eq!(
        got,
        ["/persist/var/lib 9 20", "/persist/etc/ssh/old_key 1 5"]
    );
    let out = run(&["stray"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().nth(1).unwrap().ends_with("/persist/var/lib"),
        "{text}"
    );
    Ok(())
}
