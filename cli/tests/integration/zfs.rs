//! `tabula diff` and `tabula roots` on ZFS, against a fake `zfs` that
//! answers what a real one prints (a `/bin/sh` script of shell builtins:
//! no other program, so it runs in a build sandbox too).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::common::{TestResult, assert_ok, p, tabula, tabula_at, write};

/// A fake `zfs` in `dir` answering `diff`, `get mountpoint` and `list`
/// with the given texts; it appends each argument vector to `dir/log`.
fn fake_zfs(dir: &Path, diff: &str, list: &str) -> PathBuf {
    assert!(!diff.contains('\'') && !list.contains('\''));
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\ncase \"$1\" in\n  diff) printf '%s' '{diff}' ;;\n  get) printf 'legacy\\n' ;;\n  list) printf '%s' '{list}' ;;\n  *) printf 'fake zfs: unknown command\\n' >&2; exit 2 ;;\nesac\n",
        log = dir.join("log").display()
    );
    let path = dir.join("zfs");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn config(dir: &Path, zfs: &Path, keep: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"version": 1,
                "rollback": [{{"type": "zfs", "dataset": "rpool/local/root", "oldRoots": "rpool/local/old", "zfsCommand": "{}", "keep": {keep}}}],
                "persist": [{{"storage": "/persist", "directories": ["/var/lib/bluetooth"]}}]}}"#,
            zfs.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn zfs_diff_lists_what_zfs_diff_reports_minus_persisted_and_regenerated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let r = |rel: &str| root.join(rel);
    write(&r("etc/new.conf"), b"new");
    write(&r("etc/hostname"), b"changed");
    write(&r("var/renamed"), b"moved");
    write(&r("srv/a b/\u{e9}"), b"x");
    std::fs::create_dir_all(r("var/lib/bluetooth"))?;
    symlink("/etc/static/hosts", r("etc/hosts"))?;
    let rt = root.display().to_string();
    let diff = format!(
        "+\tF\t{rt}/etc/new.conf\nM\t/\t{rt}/etc\nM\tF\t{rt}/etc/hostname\n-\tF\t{rt}/etc/gone\nR\tF\t{rt}/var/old\t{rt}/var/renamed\n\
+\t/\t{rt}/srv\n+\t/\t{rt}/srv/a\\0040b\n+\tF\t{rt}/srv/a\\0040b/\\0303\\0251\n+\t/\t{rt}/var/lib/bluetooth\n+\t@\t{rt}/etc/hosts\n"
    );
    let zfs = fake_zfs(dir.path(), &diff, "");
    let cfg = config(dir.path(), &zfs, "{}");
    let out = tabula(&[
        "--config",
        p(&cfg),
        "--root",
        &rt,
        "diff",
        "--json",
        "--all",
    ]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let got: Vec<String> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["class"].as_str().unwrap(),
                e["change"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "lost modified /etc/hostname",
            "regenerated new /etc/hosts",
            "lost new /etc/new.conf",
            "lost new /srv",
            "lost new /srv/a b",
            "lost new /srv/a b/\u{e9}",
            "lost new /var/renamed",
        ]
    );
    let log = std::fs::read_to_string(dir.path().join("log"))?;
    assert!(
        log.starts_with("diff -H -F rpool/local/root@blank rpool/local/root\n"),
        "{log}"
    );
    Ok(())
}

#[test]
fn zfs_roots_follow_the_rollbacks_keep_policy() -> TestResult {
    let dir = tempfile::tempdir()?;
    // The names' clock was wrong once: the root named 2026-09-01 was
    // archived after the one named 2026-10-01 (createtxg 300 > 200). The
    // keep policy ranks by createtxg, and so does the list.
    let list = "rpool/local/old\t1700000000\t5\n\
rpool/local/old/2026-11-30T10:00:00Z\t1796032800\t400\n\
rpool/local/old/2026-10-01T10:00:00Z\t1790848800\t200\n\
rpool/local/old/2026-09-01T10:00:00Z\t1788256800\t300\n\
rpool/local/old/before-upgrade\t1780000000\t100\n";
    let zfs = fake_zfs(dir.path(), "", list);
    let cfg = config(dir.path(), &zfs, r#"{"days": 30, "min": 1}"#);
    let out = tabula_at("1796083200", &["--config", p(&cfg), "roots", "--json"]); // 2026-12-01T00:00:00Z
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let got: Vec<String> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} pinned={}",
                r["location"].as_str().unwrap(),
                r["next_boot"].as_str().unwrap(),
                r["pinned"]
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "rpool/local/old/2026-11-30T10:00:00Z keep pinned=false",
            "rpool/local/old/2026-09-01T10:00:00Z prune pinned=false",
            "rpool/local/old/2026-10-01T10:00:00Z prune pinned=false",
            "rpool/local/old/before-upgrade keep pinned=true",
        ]
    );
    let log = std::fs::read_to_string(dir.path().join("log"))?;
    assert_eq!(
        log,
        "list -H -p -o name,creation,createtxg -t filesystem,volume -d 1 rpool/local/old\n"
    );
    Ok(())
}

#[test]
fn a_failing_zfs_is_a_runtime_error_naming_the_command() -> TestResult {
    let dir = tempfile::tempdir()?;
    let zfs = dir.path().join("no-such-zfs");
    let cfg = config(dir.path(), &zfs, "{}");
    let out = tabula(&["--config", p(&cfg), "--root", p(dir.path()), "diff"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-zfs diff -H -F rpool/local/root@blank") && err.contains("zfsCommand"),
        "{err}"
    );
    let out = tabula(&["--config", "/nonexistent/config.json", "diff"]);
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}
