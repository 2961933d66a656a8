//! `tabula diff` and `tabula roots` on real filesystems: a planted set of
//! changes, and the output (human and JSON) must be exactly that set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::{Scratch, assert_ok, join, p, sh, tabula, tabula_at, write};
use tabula_testkit::{BTRFS_ON_LOOP, Need, skip_unless};

/// The truth: absolute path → "lost" or "regenerated".
type Truth = BTreeMap<Vec<u8>, &'static str>;

fn json_entries(stdout: &[u8]) -> Truth {
    let doc: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    let mut got = Truth::new();
    for e in doc["entries"].as_array().unwrap() {
        let path: Vec<u8> = match e.get("path_bytes") {
            Some(bytes) => bytes
                .as_array()
                .unwrap()
                .iter()
                .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                .collect(),
            None => e["path"].as_str().unwrap().as_bytes().to_vec(),
        };
        let class = if e["class"] == "lost" {
            "lost"
        } else {
            "regenerated"
        };
        assert!(got.insert(path, class).is_none(), "listed twice: {e}");
    }
    got
}

/// The tree's lines as absolute path → (entries column, the reason when
/// the line is marked regenerated).
fn parse_tree(stdout: &[u8]) -> BTreeMap<Vec<u8>, (u64, Option<String>)> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut got = BTreeMap::new();
    // The tree ends at the first empty line (a summary follows).
    for line in text.lines().skip(1).take_while(|l| !l.is_empty()) {
        let count: u64 = line[10..17].trim().parse().unwrap();
        let shown = &line[41..];
        let depth = (shown.len() - shown.trim_start_matches(' ').len()) / 2;
        let name = shown.trim_start_matches(' ');
        let (name, why) = match name.split_once(" (regenerated: ") {
            Some((n, why)) => (n, Some(why.strip_suffix(')').unwrap_or(why).to_owned())),
            None => (name, None),
        };
        let name = name.strip_suffix('/').unwrap_or(name);
        stack.truncate(depth);
        let path = if depth == 0 {
            b"/".to_vec()
        } else {
            let mut p = stack.last().cloned().unwrap_or_default();
            if p != b"/" {
                p.push(b'/');
            }
            p.extend(tabula_cli::output::unescape(name));
            p
        };
        stack.push(path.clone());
        got.insert(path, (count, why));
    }
    got
}

/// The tree's lines as (absolute path, entries column).
fn tree_lines(stdout: &[u8]) -> BTreeMap<Vec<u8>, u64> {
    parse_tree(stdout)
        .into_iter()
        .map(|(path, (count, _))| (path, count))
        .collect()
}

/// The tree's regenerated lines as (absolute path, reason).
fn regenerated_lines(stdout: &[u8]) -> BTreeMap<Vec<u8>, String> {
    parse_tree(stdout)
        .into_iter()
        .filter_map(|(path, (_, why))| why.map(|w| (path, w)))
        .collect()
}

/// The entries systemd-tmpfiles makes say so, naming the line and the
/// file, in JSON and in the human --all tree alike.
fn check_tmpfiles_reasons(cfg: &str, rt: &str, all_tree: &[u8]) {
    let out = tabula(&["--config", cfg, "--root", rt, "diff", "--json", "--all"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = |path: &str| -> String {
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .and_then(|e| e["reason"].as_str())
            .unwrap_or_else(|| panic!("no reason for {path}"))
            .to_owned()
    };
    let file = "/etc/tmpfiles.d/tabula.conf";
    for (path, says) in [
        (
            "/var/lib/tabula-regen",
            "made by systemd-tmpfiles at every boot: `d /var/lib/tabula-regen 0755 root root -`",
        ),
        (
            "/var/cache",
            "made by systemd-tmpfiles on the way to /var/cache/tabula/deep: `d /var/cache/tabula/deep 0755 - - -`",
        ),
        (
            "/etc/tabula-regen.conf",
            "made by systemd-tmpfiles at every boot: `f /etc/tabula-regen.conf 0644 root root - hello`",
        ),
        (
            "/etc/tabula-link",
            "made by systemd-tmpfiles at every boot: `L /etc/tabula-link - - - - /some/where`",
        ),
    ] {
        let why = reason(path);
        assert_eq!(why, format!("{says} in {file}"), "{path}");
        let human = regenerated_lines(all_tree);
        assert_eq!(
            human.get(path.as_bytes()),
            Some(&why),
            "the --all line of {path}"
        );
    }
}

fn within(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/" || path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

/// What the tree must show for `lost`: every lost path and its ancestors,
/// each with the number of lost paths at or under it, except inside the
/// directories in `collapsed`.
fn expected_tree(
    lost: &BTreeSet<Vec<u8>>,
    collapsed: &BTreeSet<Vec<u8>>,
) -> BTreeMap<Vec<u8>, u64> {
    let mut nodes = BTreeSet::new();
    nodes.insert(b"/".to_vec());
    for path in lost {
        for (i, _) in path
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == b'/' && *i > 0)
        {
            nodes.insert(path[..i].to_vec());
        }
        nodes.insert(path.clone());
    }
    nodes
        .into_iter()
        .filter(|n| !collapsed.iter().any(|c| c != n && within(n, c)))
        .map(|n| {
            let count = lost.iter().filter(|l| within(l, &n)).count() as u64;
            (n, count)
        })
        .collect()
}

fn check_outputs(
    config: &Path,
    root: &Path,
    truth: &Truth,
    new_dirs: &BTreeSet<Vec<u8>>,
    nix: Option<&str>,
) {
    let cfg = p(config);
    let rt = p(root);
    let out = tabula(&["--config", cfg, "--root", rt, "diff", "--json", "--all"]);
    assert_ok(&out);
    let got = json_entries(&out.stdout);
    let show = |t: &Truth| {
        t.iter()
            .map(|(k, v)| format!("{v:12} {}", tabula_cli::output::escape(k)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(show(&got), show(truth), "--json --all");

    let out = tabula(&["--config", cfg, "--root", rt, "diff", "--json"]);
    let lost: Truth = truth
        .iter()
        .filter(|(_, c)| **c == "lost")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(show(&json_entries(&out.stdout)), show(&lost), "--json");

    let out = tabula(&[
        "--config",
        cfg,
        "--root",
        rt,
        "diff",
        "--json",
        "/var/lib/app/",
    ]);
    let under: Truth = lost
        .iter()
        .filter(|(k, _)| within(k, b"/var/lib/app"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        show(&json_entries(&out.stdout)),
        show(&under),
        "diff --json /var/lib/app/"
    );

    let lost_paths: BTreeSet<Vec<u8>> = lost.keys().cloned().collect();
    let show_tree = |t: &BTreeMap<Vec<u8>, u64>| {
        t.iter()
            .map(|(k, v)| format!("{v:5} {}", tabula_cli::output::escape(k)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let out = tabula(&["--config", cfg, "--root", rt, "diff", "--expand"]);
    assert_eq!(out.status.code(), Some(0));
    let human = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        show_tree(&tree_lines(&out.stdout)),
        show_tree(&expected_tree(&lost_paths, &BTreeSet::new())),
        "--expand:\n{human}"
    );
    assert!(
        !human.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let out = tabula(&["--config", cfg, "--root", rt, "diff"]);
    let human = String::from_utf8_lossy(&out.stdout).into_owned();
    let regenerated = truth.len() - lost.len();
    assert!(
        human.contains(&format!("\n\n{} lost, ", lost.len())),
        "{human}"
    );
    assert!(
        human.contains(&format!("\n{regenerated} regenerated entries not shown")),
        "{human}"
    );
    assert_eq!(
        show_tree(&tree_lines(&out.stdout)),
        show_tree(&expected_tree(&lost_paths, new_dirs)),
        "default:\n{human}"
    );

    // --all: every entry, the regenerated ones marked with their reason.
    let out = tabula(&["--config", cfg, "--root", rt, "diff", "--all", "--expand"]);
    assert_ok(&out);
    let human = String::from_utf8_lossy(&out.stdout).into_owned();
    let all_paths: BTreeSet<Vec<u8>> = truth.keys().cloned().collect();
    assert_eq!(
        show_tree(&tree_lines(&out.stdout)),
        show_tree(&expected_tree(&all_paths, &BTreeSet::new())),
        "--all --expand:\n{human}"
    );
    let marked: BTreeSet<Vec<u8>> = regenerated_lines(&out.stdout).into_keys().collect();
    let want: BTreeSet<Vec<u8>> = truth
        .iter()
        .filter(|(_, c)| **c == "regenerated")
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(marked, want, "--all marks:\n{human}");
    check_tmpfiles_reasons(cfg, rt, &out.stdout);

    if let Some(nix) = nix {
        let out = tabula(&["--config", cfg, "--root", rt, "diff", "--nix"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), nix);
    }
}

fn truth(lost: &[&[u8]], regenerated: &[&[u8]]) -> Truth {
    let mut t = Truth::new();
    for l in lost {
        t.insert(l.to_vec(), "lost");
    }
    for r in regenerated {
        t.insert(r.to_vec(), "regenerated");
    }
    t
}

/// The changes every root gets, relative to the root directory `r`, made
/// through the running system's view (persisted paths are bind mounts).
fn plant_common(r: &Path) {
    write(&r.join("etc/new.conf"), &[b'x'; 100]);
    std::fs::create_dir_all(r.join("var/lib/app/sub")).unwrap();
    write(&r.join("var/lib/app/db"), &vec![7u8; 1 << 20]);
    write(&r.join("var/lib/app/a"), b"a");
    std::fs::hard_link(r.join("var/lib/app/a"), r.join("var/lib/app/a-link")).unwrap();
    write(&r.join("var/lib/app/sub/x"), b"x");
    std::fs::create_dir_all(r.join("srv")).unwrap();
    sh("mkfifo", &[p(&r.join("srv/fifo"))]);
    sh("mknod", &[p(&r.join("srv/null")), "c", "1", "3"]);
    let _sock = std::os::unix::net::UnixListener::bind(r.join("srv/sock")).unwrap();
    write(&join(r, b"srv/a\nb"), b"newline");
    write(&join(r, b"srv/\xff\xfe"), b"not utf-8");
    symlink("/usr/share/doc.txt", r.join("srv/link-elsewhere")).unwrap();
    // What NixOS makes at every boot.
    symlink(
        "/nix/store/0000000000000000000000000000000-etc/etc",
        r.join("etc/static"),
    )
    .unwrap();
    symlink("/etc/static/hosts", r.join("etc/hosts")).unwrap();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    symlink(
        "/nix/store/0000000000000000000000000000000-bash/bin/sh",
        r.join("bin/sh"),
    )
    .unwrap();
    write(&r.join("etc/.clean"), b"sudoers\n");
    write(&r.join("etc/sudoers"), b"root ALL=(ALL) ALL\n");
    write(&r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
    // A new directory with a lost file and a store link: the tree shows it
    // open, not as one line.
    write(&r.join("opt/tool/conf"), b"setting");
    symlink(
        "/nix/store/0000000000000000000000000000000-tool/bin",
        r.join("opt/tool/bin"),
    )
    .unwrap();
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
    std::fs::create_dir_all(r.join("etc/tmpfiles.d")).unwrap();
    symlink(
        "/etc/static/tmpfiles.d/tabula.conf",
        r.join("etc/tmpfiles.d/tabula.conf"),
    )
    .unwrap();
    write(
        &r.join("etc/tmpfiles.d/lost.conf"),
        b"d /srv/from-a-lost-file\n",
    );
    std::fs::create_dir_all(r.join("srv/from-a-lost-file")).unwrap();
    write(&r.join("var/lib/tabula-regen/state"), b"state");
    std::fs::create_dir_all(r.join("var/cache/tabula/deep")).unwrap();
    write(&r.join("etc/tabula-regen.conf"), b"edited");
    symlink("/some/where", r.join("etc/tabula-link")).unwrap();
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
}

fn config(sc: &Scratch, rollback: &str) -> std::path::PathBuf {
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
fn btrfs_diff_from_blank_lists_exactly_what_the_next_boot_erases() {
    if skip_unless(
        "btrfs_diff_from_blank_lists_exactly_what_the_next_boot_erases",
        BTRFS_ON_LOOP,
    ) {
        return;
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
        std::fs::create_dir_all(b.join(d)).unwrap();
    }
    sh(
        "btrfs",
        &["-q", "subvolume", "snapshot", p(&b), p(&top.join("@root"))],
    );
    sh("btrfs", &["property", "set", "-ts", p(&b), "ro", "true"]);
    std::fs::create_dir_all(top.join("persist")).unwrap();
    let r = sc.path("root");
    sc.mount(&["-o", "subvol=@root", &dev], &r);
    persist_mounts(&mut sc, &r, &top.join("persist"));

    plant_common(&r);
    std::fs::OpenOptions::new()
        .append(true)
        .open(r.join("etc/mod-me"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b" more"))
        .unwrap();
    std::fs::rename(r.join("etc/rename-me"), r.join("etc/renamed")).unwrap();
    std::fs::remove_file(r.join("etc/del-me")).unwrap();
    std::fs::hard_link(r.join("etc/keep"), r.join("etc/keep-link")).unwrap();
    std::fs::set_permissions(r.join("usr/share"), std::fs::Permissions::from_mode(0o700)).unwrap();
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
    let nix = "tabula.persist.\"/persist\" = {\n  directories = [\n    \"/srv\"\n    \"/var/lib/app\"\n    \"/var/lib/machines\"\n  ];\n  files = [\n    \"/etc/keep-link\"\n    \"/etc/mod-me\"\n    \"/etc/new.conf\"\n    \"/etc/renamed\"\n    \"/etc/tabula-not-a-dir\"\n    \"/etc/tmpfiles.d/lost.conf\"\n    \"/opt/tool/conf\"\n    \"/var/lib/tabula-regen/state\"\n  ];\n};\n";
    check_outputs(&cfg, &r, &truth, &new_dirs, Some(nix));

    let out = tabula(&["--config", p(&cfg), "--root", p(&r), "diff", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["method"].as_str().unwrap().starts_with("tree search"),
        "{}",
        doc["method"]
    );
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn btrfs_diff_without_blank_lists_everything_but_persisted_and_regenerated() {
    if skip_unless(
        "btrfs_diff_without_blank_lists_everything_but_persisted_and_regenerated",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let mut sc = Scratch::new();
    let dev = sc.btrfs(256);
    let top = sc.path("top");
    sc.mount(&["-o", "subvolid=5", &dev], &top);
    sh(
        "btrfs",
        &["-q", "subvolume", "create", p(&top.join("@root"))],
    );
    std::fs::create_dir_all(top.join("persist")).unwrap();
    let r = sc.path("root");
    sc.mount(&["-o", "subvol=@root", &dev], &r);
    persist_mounts(&mut sc, &r, &top.join("persist"));
    plant_common(&r);
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
}

#[test]
#[ignore = "needs root (mounts); dev/test.sh runs it"]
fn tmpfs_diff_lists_one_filesystem_without_its_mounts() {
    if skip_unless(
        "tmpfs_diff_lists_one_filesystem_without_its_mounts",
        &[Need::Root],
    ) {
        return;
    }
    let mut sc = Scratch::new();
    let r = sc.path("root");
    sc.mount(&["-t", "tmpfs", "tabula-test-root"], &r);
    let storage = sc.path("persist");
    persist_mounts(&mut sc, &r, &storage);
    plant_common(&r);
    let cfg = config(&sc, "");
    let truth = truth(
        COMMON_LOST,
        &[COMMON_REGENERATED, &[b"/etc", b"/var"]].concat(),
    );
    check_outputs(&cfg, &r, &truth, &paths(&[b"/var/lib/app", b"/srv"]), None);
}

#[test]
#[ignore = "needs root and loop devices; dev/test.sh runs it"]
fn btrfs_roots_shows_each_old_root_with_what_the_keep_policy_does_next_boot() {
    if skip_unless(
        "btrfs_roots_shows_each_old_root_with_what_the_keep_policy_does_next_boot",
        BTRFS_ON_LOOP,
    ) {
        return;
    }
    let mut sc = Scratch::new();
    let dev = sc.btrfs(256);
    let top = sc.path("top");
    sc.mount(&["-o", "subvolid=5", &dev], &top);
    sh(
        "btrfs",
        &["-q", "subvolume", "create", p(&top.join("@root"))],
    );
    std::fs::create_dir_all(top.join("@old_roots/not-a-subvolume")).unwrap();
    // Archived in the order of their names (the clock was right); the
    // rollback ranks them by creation transaction, and so does the list.
    for name in [
        "2026-09-01T10:00:00Z",
        "2026-10-01T10:00:00Z",
        "2026-11-30T10:00:00Z",
        "2026-11-30T10:00:00Z.1",
        "before-upgrade",
    ] {
        sh(
            "btrfs",
            &[
                "-q",
                "subvolume",
                "create",
                p(&top.join("@old_roots").join(name)),
            ],
        );
    }
    let cfg = config(
        &sc,
        &format!(
            r#"{{"type": "btrfs", "device": "{dev}", "subvolume": "@root", "oldRoots": "@old_roots", "keep": {{"days": 30, "min": 1, "max": 3}}}}"#
        ),
    );
    let out = tabula_at("1796083200", &["--config", p(&cfg), "roots"]); // 2026-12-01T00:00:00Z
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim_end).collect();
    // The pinned one shows its creation time (now, in the real clock), so
    // only its fate and place are compared.
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| !l.ends_with("before-upgrade"))
            .copied()
            .collect::<Vec<_>>(),
        [
            "2026-11-30T10:00:00Z    kept                      @old_roots/2026-11-30T10:00:00Z.1",
            "2026-11-30T10:00:00Z    kept                      @old_roots/2026-11-30T10:00:00Z",
            "2026-10-01T10:00:00Z    pruned at the next boot   @old_roots/2026-10-01T10:00:00Z",
            "2026-09-01T10:00:00Z    pruned at the next boot   @old_roots/2026-09-01T10:00:00Z",
        ]
    );
    assert!(
        lines.iter().any(
            |l| l.contains("pinned (never pruned)") && l.ends_with("@old_roots/before-upgrade")
        ),
        "{text}"
    );
}
