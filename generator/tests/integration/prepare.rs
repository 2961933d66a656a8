//! The prepare step for real, as root, in a temporary root: owners and modes
//! of every created parent, correction of wrong owners and modes, and a
//! non-root user's tree full of planted symlinks (and a directory swapped
//! for a symlink between check and use) that must not make it touch
//! anything outside.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use tabula_config::parse;
use tabula_generator::PrepareError;
use tabula_generator::plan::{Stage, plan};
use tabula_generator::prepare::{Options, prepare_all};
use tabula_testkit::Need;

const ALICE: u32 = 4242;
const USERS: u32 = 4100;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    opts: Options,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("persist")).expect("mkdir");
    fs::create_dir_all(root.join("outside")).expect("mkdir");
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(
        &passwd,
        format!("root:x:0:0::/root:/bin/sh\nalice:x:{ALICE}:{USERS}::/home/alice:/bin/sh\n"),
    )
    .expect("write");
    fs::write(
        &group,
        format!("root:x:0:\nusers:x:{USERS}:\nwheel:x:10:\n"),
    )
    .expect("write");
    let opts = Options {
        root: root.clone(),
        prepared_dir: dir.path().join("run/tabula/prepared"),
        passwd,
        group,
    };
    Fixture {
        _dir: dir,
        root,
        opts,
    }
}

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Everything observable about a tree outside the persisted ones.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32, u64, Option<PathBuf>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).expect("stat");
        let link = fs::read_link(&d).ok();
        out.push((d.clone(), m.uid(), m.gid(), m.mode(), m.len(), link));
        if m.is_dir() {
            for e in fs::read_dir(&d).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

const CONFIG: &str = r#"{
  "version": 1,
  "persist": [ { "storage": "/persist",
    "directories": [ { "path": "/var/log", "ownership": "enforce" },
                     { "path": "/var/lib/private", "mode": "0700" },
                     { "path": "/srv/wheel", "user": 4242, "group": "wheel", "mode": "2770" } ],
    "files": [ { "path": "/etc/ssh/ssh_host_ed25519_key", "mode": "0600" }, "/etc/machine-id" ],
    "users": { "alice": {
      "directories": [ "Documents", { "path": ".ssh", "mode": "0700" }, ".local/share/direnv" ],
      "files": [ ".bash_history", ".config/app/settings.json" ] } } } ]
}"#;

#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn creates_everything_with_owners_and_modes() {
    if tabula_testkit::skip_unless("creates_everything_with_owners_and_modes", &[Need::Root]) {
        return;
    }
    let f = fixture();
    // An existing source with the wrong owner and mode, an existing target
    // likewise, in an entry that enforces them: the entry itself is
    // corrected, its contents are not.
    fs::create_dir_all(f.root.join("persist/var/log/inner")).expect("mkdir");
    rustix::fs::chown(
        f.root.join("persist/var/log"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(1234)),
    )
    .expect("chown");
    fs::set_permissions(
        f.root.join("persist/var/log"),
        fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");
    fs::set_permissions(
        f.root.join("persist/var/log/inner"),
        fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");

    let config = parse(CONFIG, Path::new("test.json")).expect("config");
    let p = plan(&config, Stage::System);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
    assert!(failed.is_empty(), "{failed:?}");

    let r = &f.root;
    let root_dir = (0, 0, 0o755);
    let alice_dir = (ALICE, USERS, 0o755);
    let expect = [
        // system parents and entries
        ("var", root_dir),
        ("var/log", root_dir),
        ("var/lib", root_dir),
        ("var/lib/private", (0, 0, 0o700)),
        ("srv/wheel", (ALICE, 10, 0o2770)),
        ("persist/var", root_dir),
        ("persist/var/log", root_dir),
        ("persist/var/log/inner", (0, 0, 0o777)),
        ("persist/var/lib/private", (0, 0, 0o700)),
        ("persist/srv/wheel", (ALICE, 10, 0o2770)),
        ("etc/ssh", root_dir),
        ("etc/ssh/ssh_host_ed25519_key", (0, 0, 0o600)),
        ("persist/etc/ssh/ssh_host_ed25519_key", (0, 0, 0o600)),
        ("etc/machine-id", (0, 0, 0o644)),
        ("persist/etc/machine-id", (0, 0, 0o644)),
        // the home, its parent and everything below
        ("home", root_dir),
        ("home/alice", (ALICE, USERS, 0o700)),
        ("home/alice/Documents", alice_dir),
        ("home/alice/.ssh", (ALICE, USERS, 0o700)),
        ("home/alice/.local", alice_dir),
        ("home/alice/.local/share", alice_dir),
        ("home/alice/.local/share/direnv", alice_dir),
        ("home/alice/.bash_history", (ALICE, USERS, 0o644)),
        ("home/alice/.config/app", alice_dir),
        (
            "home/alice/.config/app/settings.json",
            (ALICE, USERS, 0o644),
        ),
        ("persist/home", root_dir),
        ("persist/home/alice", (ALICE, USERS, 0o700)),
        ("persist/home/alice/.local/share", alice_dir),
        ("persist/home/alice/.ssh", (ALICE, USERS, 0o700)),
        ("persist/home/alice/.bash_history", (ALICE, USERS, 0o644)),
        ("persist/home/alice/.config", alice_dir),
    ];
    for (path, want) in expect {
        assert_eq!(owner_mode(&r.join(path)), want, "{path}");
    }
    assert_eq!(
        fs::read_to_string(r.join("persist/etc/machine-id")).expect("read"),
        "uninitialized\n"
    );
    assert_eq!(fs::read(r.join("etc/machine-id")).expect("read").len(), 0);
    for b in &p.binds {
        assert!(
            f.opts.prepared_dir.join(&b.unit).exists(),
            "no marker for {}",
            b.unit
        );
    }
    // Idempotent: a second run changes nothing and fails nothing.
    let before = snapshot(r);
    assert!(
        prepare_all(&p, &f.opts, None)
            .expect("the root opens")
            .is_empty()
    );
    assert_eq!(before, snapshot(r));
}

#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn planted_symlinks_touch_nothing_outside() {
    if tabula_testkit::skip_unless("planted_symlinks_touch_nothing_outside", &[Need::Root]) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    let outside = r.join("outside");
    fs::create_dir_all(outside.join("secret-dir")).expect("mkdir");
    fs::write(outside.join("shadow"), "root:secret\n").expect("write");
    fs::create_dir_all(outside.join("etc")).expect("mkdir");
    fs::set_permissions(
        outside.join("secret-dir"),
        fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    fs::set_permissions(outside.join("shadow"), fs::Permissions::from_mode(0o600)).expect("chmod");
    // alice's persisted tree exists and is hers; she planted symlinks in it.
    let home = r.join("persist/home/alice");
    fs::create_dir_all(&home).expect("mkdir");
    fs::create_dir_all(r.join("home/alice")).expect("mkdir");
    for d in [&home, &r.join("home/alice")] {
        rustix::fs::chown(
            d,
            Some(rustix::fs::Uid::from_raw(ALICE)),
            Some(rustix::fs::Gid::from_raw(USERS)),
        )
        .expect("chown");
    }
    symlink(outside.join("secret-dir"), home.join(".ssh")).expect("symlink"); // the entry itself
    symlink(outside.join("etc"), home.join(".local")).expect("symlink"); // a parent
    symlink(outside.join("shadow"), home.join(".bash_history")).expect("symlink"); // a file
    symlink("../../outside/secret-dir", r.join("home/alice/Documents")).expect("symlink"); // a target
    // A hard link to a file that is not hers, in an entry that enforces
    // its owner (one that does not leaves an existing file as it is).
    fs::hard_link(outside.join("shadow"), home.join(".netrc")).expect("link");
    let before = snapshot(&outside);

    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist", "users": { "alice": {
            "directories": [ ".ssh", ".local/share/direnv", "Documents", "Music" ],
            "files": [ ".bash_history", { "path": ".netrc", "ownership": "enforce" } ] } } } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
    let labels: Vec<&str> = failed.iter().map(|(l, _)| l.as_str()).collect();
    eprintln!("{failed:#?}");
    // Everything but Music fails, each with its reason.
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        !labels.iter().any(|l| l.ends_with("directories[3]")),
        "Music failed: {failed:?}"
    );
    for (_, why) in &failed {
        assert!(
            matches!(
                why,
                PrepareError::Symlink { .. } | PrepareError::HardLinked { .. }
            ),
            "unexpected reason: {why}"
        );
    }
    // Failed entries get no marker: their mounts are never attempted.
    let markers: Vec<String> = fs::read_dir(&f.opts.prepared_dir)
        .expect("markers")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(markers, ["home-alice-Music.mount"]);
    assert_eq!(before, snapshot(&outside), "something outside was touched");
}

#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn directory_swapped_for_a_symlink_between_check_and_use() {
    if tabula_testkit::skip_unless(
        "directory_swapped_for_a_symlink_between_check_and_use",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = f.root.clone();
    let outside = r.join("outside");
    fs::create_dir_all(outside.join("target")).expect("mkdir");
    let home = r.join("persist/home/alice");
    fs::create_dir_all(home.join(".config")).expect("mkdir");
    fs::create_dir_all(home.join("Projects")).expect("mkdir");
    for d in [&home, &home.join(".config"), &home.join("Projects")] {
        rustix::fs::chown(
            d,
            Some(rustix::fs::Uid::from_raw(ALICE)),
            Some(rustix::fs::Gid::from_raw(USERS)),
        )
        .expect("chown");
    }
    fs::set_permissions(home.join("Projects"), fs::Permissions::from_mode(0o777)).expect("chmod");
    let before = snapshot(&outside);

    // The moment a directory of alice's has been opened (checked) and before
    // anything is changed through it, it is renamed away and a symlink to
    // the outside takes its place, as a racing user would do.
    let swapped = RefCell::new(Vec::new());
    let hook = |path: &str| {
        for name in [
            "/persist/home/alice/.config",
            "/persist/home/alice/Projects",
        ] {
            if path == name && !swapped.borrow().contains(&name.to_owned()) {
                let real = r.join(name.trim_start_matches('/'));
                fs::rename(&real, real.with_extension("moved")).expect("rename");
                symlink(outside.join("target"), &real).expect("symlink");
                swapped.borrow_mut().push(name.to_owned());
            }
        }
    };
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist", "users": { "alice": {
            "directories": [ ".config/app",
                             { "path": "Projects", "mode": "0700", "ownership": "enforce" } ] } } } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    let failed = prepare_all(&p, &f.opts, Some(&hook)).expect("the root opens");
    assert_eq!(swapped.borrow().len(), 2, "the swap did not happen");
    eprintln!("after the swaps: {failed:?}");
    // Both entries fail: the paths systemd would mount now contain a
    // symlink. No marker, so no mount.
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(_, why)| matches!(why, PrepareError::Symlink { .. })),
        "{failed:?}"
    );
    assert!(
        fs::read_dir(&f.opts.prepared_dir)
            .expect("dir")
            .next()
            .is_none()
    );
    // Whatever happened inside alice's tree, the outside is untouched: the
    // work went on through the descriptors of her real (moved) directories.
    assert_eq!(before, snapshot(&outside), "something outside was touched");
    assert!(
        home.join(".config.moved/app").is_dir(),
        "created through the held descriptor"
    );
    assert_eq!(
        owner_mode(&home.join("Projects.moved")),
        (ALICE, USERS, 0o700)
    );
}

#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn initrd_prepares_in_initrd_entries_under_sysroot() {
    if tabula_testkit::skip_unless(
        "initrd_prepares_in_initrd_entries_under_sysroot",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    fs::create_dir_all(f.root.join("sysroot/persist")).expect("mkdir");
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "directories": [ "/var/log", { "path": "/var/lib/nixos", "inInitrd": true } ],
            "files": [ { "path": "/etc/machine-id", "inInitrd": true, "mode": "0444" },
                       { "path": "/etc/ssh/ssh_host_ed25519_key", "inInitrd": true, "mode": "0600" } ] } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::Initrd);
    assert_eq!(p.binds.len(), 3);
    let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
    assert!(failed.is_empty(), "{failed:?}");
    let r = &f.root;
    assert_eq!(
        fs::read_to_string(r.join("sysroot/persist/etc/machine-id")).expect("read"),
        "uninitialized\n"
    );
    assert_eq!(
        owner_mode(&r.join("sysroot/persist/etc/machine-id")),
        (0, 0, 0o444)
    );
    assert_eq!(owner_mode(&r.join("sysroot/etc/machine-id")), (0, 0, 0o444));
    assert_eq!(
        owner_mode(&r.join("sysroot/etc/ssh/ssh_host_ed25519_key")),
        (0, 0, 0o600)
    );
    assert_eq!(owner_mode(&r.join("sysroot/var/lib/nixos")), (0, 0, 0o755));
    assert!(
        !r.join("sysroot/var/log").exists(),
        "a stage-2 entry was prepared in the initrd"
    );
    assert!(
        !r.join("etc").exists(),
        "something was made outside /sysroot"
    );
    for unit in [
        "sysroot-etc-machine\\x2did.mount",
        "sysroot-etc-ssh-ssh_host_ed25519_key.mount",
        "sysroot-var-lib-nixos.mount",
    ] {
        assert!(f.opts.prepared_dir.join(unit).exists(), "no marker {unit}");
    }
}

/// A persisted file of an enforcing entry that is a hard link to a file
/// elsewhere (a root-owned 0600 key) is never chowned or chmodded, on either side of the mount and
/// whether the owner or only the mode differs: the entry fails, is named,
/// gets no marker, and the other file keeps its owner and mode.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn prepare_never_changes_a_file_reached_through_a_hard_link() {
    if tabula_testkit::skip_unless(
        "prepare_never_changes_a_file_reached_through_a_hard_link",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    let outside = r.join("outside");
    for name in ["key", "other-key", "shadow"] {
        fs::write(outside.join(name), "secret\n").expect("write");
        fs::set_permissions(outside.join(name), fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    fs::create_dir_all(r.join("persist/etc/ssh")).expect("mkdir");
    fs::create_dir_all(r.join("etc")).expect("mkdir");
    // The chmod path: root-owned like the entry wants, only the mode
    // (0644 wanted) differs. On the storage side, and on the target side.
    fs::hard_link(
        outside.join("key"),
        r.join("persist/etc/ssh/ssh_host_ed25519_key"),
    )
    .expect("link");
    fs::hard_link(outside.join("other-key"), r.join("etc/motd")).expect("link");
    // The chown path: alice's entry, a root-owned file.
    let home = r.join("persist/home/alice");
    fs::create_dir_all(&home).expect("mkdir");
    rustix::fs::chown(
        &home,
        Some(rustix::fs::Uid::from_raw(ALICE)),
        Some(rustix::fs::Gid::from_raw(USERS)),
    )
    .expect("chown");
    fs::hard_link(outside.join("shadow"), home.join(".netrc")).expect("link");
    let before = snapshot(&outside);

    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "files": [ { "path": "/etc/ssh/ssh_host_ed25519_key", "ownership": "enforce" },
                       { "path": "/etc/motd", "ownership": "enforce" },
                       { "path": "/etc/plain", "ownership": "enforce" } ],
            "users": { "alice": { "files": [ { "path": ".netrc", "ownership": "enforce" } ] } } } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
    let mut refused: Vec<(&str, &str)> = failed
        .iter()
        .map(|(label, why)| match why {
            PrepareError::HardLinked { path, links } => {
                assert_eq!(*links, 2, "{why}");
                (label.as_str(), path.as_str())
            }
            other => panic!("{label}: expected a hard-link refusal, got {other}"),
        })
        .collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        [
            (
                "persist[0].files[0]",
                "/persist/etc/ssh/ssh_host_ed25519_key"
            ),
            ("persist[0].files[1]", "/etc/motd"),
            (
                "persist[0].users.alice.files[0]",
                "/persist/home/alice/.netrc"
            ),
        ]
    );
    assert_eq!(before, snapshot(&outside), "a file outside was changed");
    for name in ["key", "other-key", "shadow"] {
        assert_eq!(owner_mode(&outside.join(name)), (0, 0, 0o600), "{name}");
    }
    // The entry without a hard link is prepared, and only it is mounted.
    assert_eq!(owner_mode(&r.join("persist/etc/plain")), (0, 0, 0o644));
    let markers: Vec<String> = fs::read_dir(&f.opts.prepared_dir)
        .expect("markers")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(markers, ["etc-plain.mount"]);
}

/// An entry that does not enforce ownership (every entry the impermanence
/// compatibility module writes says `"ownership": "create"`, and it is the
/// default) applies its owner and mode only to what it creates: an SSH host
/// key persisted as a file at 0600 stays 0600 although the entry's mode
/// defaults to 0644, a directory whose owner changed by hand keeps it, and
/// each mount point mirrors its source's owner and mode.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn a_compat_entry_never_changes_the_mode_of_existing_data() {
    if tabula_testkit::skip_unless(
        "a_compat_entry_never_changes_the_mode_of_existing_data",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    fs::create_dir_all(r.join("persist/etc/ssh")).expect("mkdir");
    fs::write(r.join("persist/etc/ssh/ssh_host_ed25519_key"), "key\n").expect("write");
    fs::set_permissions(
        r.join("persist/etc/ssh/ssh_host_ed25519_key"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    // The target exists on the erased root with the entry's mode: it
    // follows the source, not the entry.
    fs::create_dir_all(r.join("etc/ssh")).expect("mkdir");
    fs::write(r.join("etc/ssh/ssh_host_rsa_key"), "").expect("write");
    fs::set_permissions(
        r.join("etc/ssh/ssh_host_rsa_key"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    fs::write(r.join("persist/etc/ssh/ssh_host_rsa_key"), "key\n").expect("write");
    fs::set_permissions(
        r.join("persist/etc/ssh/ssh_host_rsa_key"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    fs::create_dir_all(r.join("persist/var/lib/service")).expect("mkdir");
    rustix::fs::chown(
        r.join("persist/var/lib/service"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(1235)),
    )
    .expect("chown");
    fs::set_permissions(
        r.join("persist/var/lib/service"),
        fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "directories": [ { "path": "/var/lib/service", "mode": "0755", "ownership": "create" },
                             { "path": "/var/lib/new", "user": 4242, "mode": "0701", "ownership": "create" } ],
            "files": [ { "path": "/etc/ssh/ssh_host_ed25519_key", "ownership": "create" },
                       "/etc/ssh/ssh_host_rsa_key" ] } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    for _ in 0..2 {
        let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
        assert!(failed.is_empty(), "{failed:?}");
        for (path, want) in [
            ("persist/etc/ssh/ssh_host_ed25519_key", (0, 0, 0o600)),
            ("etc/ssh/ssh_host_ed25519_key", (0, 0, 0o600)),
            ("persist/etc/ssh/ssh_host_rsa_key", (0, 0, 0o600)),
            ("etc/ssh/ssh_host_rsa_key", (0, 0, 0o600)),
            ("persist/var/lib/service", (1234, 1235, 0o750)),
            ("var/lib/service", (1234, 1235, 0o750)),
            // Created: the entry's owner and mode, on both sides.
            ("persist/var/lib/new", (ALICE, 0, 0o701)),
            ("var/lib/new", (ALICE, 0, 0o701)),
        ] {
            assert_eq!(owner_mode(&r.join(path)), want, "{path}");
        }
    }
    assert_eq!(
        fs::read_to_string(r.join("persist/etc/ssh/ssh_host_ed25519_key")).expect("read"),
        "key\n"
    );
}

/// impermanence's README example, `{ file = "/var/keys/secret_file";
/// parentDirectory.mode = "u=rwx,g=,o="; }`: the missing parent is created
/// 0700 on both sides (the grandparent with the defaults); a parent that
/// exists already keeps its owner and mode.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn a_created_parent_directory_gets_the_entry_s_parent_owner_and_mode() {
    if tabula_testkit::skip_unless(
        "a_created_parent_directory_gets_the_entry_s_parent_owner_and_mode",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    fs::create_dir_all(r.join("persist/srv/existing")).expect("mkdir");
    fs::set_permissions(
        r.join("persist/srv/existing"),
        fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "files": [ { "path": "/var/keys/secret_file", "parentDirectory": { "mode": "0700" } },
                       { "path": "/srv/existing/f", "parentDirectory": { "mode": "0700", "user": 4242 } } ],
            "users": { "alice": { "files": [
              { "path": ".config/app/key", "parentDirectory": { "mode": "0711", "group": "wheel" } } ] } } } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
    assert!(failed.is_empty(), "{failed:?}");
    for (path, want) in [
        ("persist/var", (0, 0, 0o755)),
        ("persist/var/keys", (0, 0, 0o700)),
        ("var/keys", (0, 0, 0o700)),
        ("persist/srv/existing", (0, 0, 0o750)),
        ("srv/existing", (ALICE, 0, 0o700)),
        ("persist/home/alice/.config", (ALICE, USERS, 0o755)),
        ("persist/home/alice/.config/app", (ALICE, 10, 0o711)),
        ("home/alice/.config/app", (ALICE, 10, 0o711)),
    ] {
        assert_eq!(owner_mode(&r.join(path)), want, "{path}");
    }
}

/// `"method": "symlink"`: the persisted copy is created as for a bind
/// mount, and the prepare step puts a symbolic link to it in place (a
/// second run leaves it); a file or another link already there is never
/// replaced, and the entry fails, naming it.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn a_symlinked_file_points_at_its_persisted_copy_and_never_replaces_what_is_there() {
    if tabula_testkit::skip_unless(
        "a_symlinked_file_points_at_its_persisted_copy_and_never_replaces_what_is_there",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    fs::create_dir_all(r.join("etc")).expect("mkdir");
    fs::write(r.join("etc/occupied.conf"), "local\n").expect("write");
    symlink("/outside/shadow", r.join("etc/elsewhere.conf")).expect("symlink");
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "files": [ { "path": "/etc/app.conf", "method": "symlink", "mode": "0640" },
                       { "path": "/etc/occupied.conf", "method": "symlink" },
                       { "path": "/etc/elsewhere.conf", "method": "symlink" } ],
            "users": { "alice": { "files": [ { "path": ".config/app.json", "method": "symlink" } ] } } } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    for _ in 0..2 {
        let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
        let mut labels: Vec<(&str, String)> = failed
            .iter()
            .map(|(l, why)| match why {
                PrepareError::Occupied { path, .. } => (l.as_str(), path.clone()),
                other => panic!("{l}: expected Occupied, got {other}"),
            })
            .collect();
        labels.sort();
        assert_eq!(
            labels,
            [
                ("persist[0].files[1]", "/etc/occupied.conf".to_owned()),
                ("persist[0].files[2]", "/etc/elsewhere.conf".to_owned()),
            ]
        );
        assert_eq!(
            fs::read_link(r.join("etc/app.conf")).expect("a link"),
            Path::new("/persist/etc/app.conf")
        );
        assert_eq!(
            fs::read_link(r.join("home/alice/.config/app.json")).expect("a link"),
            Path::new("/persist/home/alice/.config/app.json")
        );
        assert_eq!(owner_mode(&r.join("persist/etc/app.conf")), (0, 0, 0o640));
        assert_eq!(
            owner_mode(&r.join("persist/home/alice/.config/app.json")),
            (ALICE, USERS, 0o644)
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/occupied.conf")).expect("kept"),
            "local\n"
        );
        assert_eq!(
            fs::read_link(r.join("etc/elsewhere.conf")).expect("kept"),
            Path::new("/outside/shadow")
        );
    }
}

/// impermanence's `"method": "auto"`, decided at each boot: a file whose
/// persisted copy is missing gets a symbolic link to where the copy will be
/// (the copy is not created: the program's first write creates it, in
/// storage); one whose copy exists is bind-mounted (the mount point is an
/// ordinary file). A link already right stays (a second run in the same boot),
/// something already at the path is covered by a bind mount and never
/// replaced, a link elsewhere fails the entry, /etc/machine-id is always
/// bound, and inside an entry of another storage the link is made in that
/// entry's copy.
#[test]
#[ignore = "needs root (chown); dev/test.sh runs it"]
fn an_auto_file_is_linked_while_its_copy_is_missing_and_bind_mounted_once_it_exists() {
    if tabula_testkit::skip_unless(
        "an_auto_file_is_linked_while_its_copy_is_missing_and_bind_mounted_once_it_exists",
        &[Need::Root],
    ) {
        return;
    }
    let f = fixture();
    let r = &f.root;
    fs::create_dir_all(r.join("state")).expect("mkdir");
    fs::create_dir_all(r.join("persist/etc/ssh")).expect("mkdir");
    fs::write(r.join("persist/etc/ssh/ssh_host_ed25519_key"), "key\n").expect("write");
    fs::set_permissions(
        r.join("persist/etc/ssh/ssh_host_ed25519_key"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let config = parse(
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "directories": [ "/var/lib/app" ],
            "files": [ { "path": "/etc/ssh/ssh_host_ed25519_key", "method": "auto" },
                       { "path": "/etc/app/app.json", "method": "auto", "parentDirectory": { "mode": "0700" } },
                       { "path": "/etc/machine-id", "method": "auto" },
                       { "path": "/etc/occupied.conf", "method": "auto" },
                       { "path": "/etc/elsewhere.conf", "method": "auto" },
                       { "path": "/var/lib/app/state.json", "method": "auto" } ],
            "users": { "alice": { "files": [ { "path": ".config/app.json", "method": "auto" } ] } } },
          { "storage": "/state",
            "files": [ { "path": "/var/lib/app/other.json", "method": "auto" } ] } ] }"#,
        Path::new("test.json"),
    )
    .expect("config");
    let p = plan(&config, Stage::System);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let prepare = || {
        let failed = prepare_all(&p, &f.opts, None).expect("the root opens");
        failed
            .iter()
            .map(|(l, why)| match why {
                PrepareError::Occupied { path, .. } => (l.clone(), path.clone()),
                other => panic!("{l}: expected only Occupied, got {other}"),
            })
            .collect::<Vec<_>>()
    };
    // A boot starts from an empty root: only the storages survive.
    let erase_root = || {
        for gone in ["etc", "home", "var"] {
            let _ = fs::remove_dir_all(r.join(gone));
        }
    };
    let link = |path: &str| fs::read_link(r.join(path)).ok();
    let is_file =
        |path: &str| fs::symlink_metadata(r.join(path)).is_ok_and(|m| m.file_type().is_file());

    // First boot, prepared twice (a restart of the prepare step): the same.
    erase_root();
    fs::create_dir_all(r.join("etc")).expect("mkdir");
    fs::write(r.join("etc/occupied.conf"), "local\n").expect("write");
    symlink("/outside/shadow", r.join("etc/elsewhere.conf")).expect("symlink");
    for _ in 0..2 {
        assert_eq!(
            prepare(),
            [(
                "persist[0].files[4]".to_owned(),
                "/etc/elsewhere.conf".to_owned()
            )]
        );
        // The copy exists: a bind mount, its mount point mirroring it.
        assert!(is_file("etc/ssh/ssh_host_ed25519_key"));
        assert_eq!(
            owner_mode(&r.join("etc/ssh/ssh_host_ed25519_key")),
            (0, 0, 0o600)
        );
        assert_eq!(
            fs::read_to_string(r.join("persist/etc/ssh/ssh_host_ed25519_key")).expect("kept"),
            "key\n"
        );
        // Missing: a link, the copy not created, its parent created as asked.
        assert_eq!(
            link("etc/app/app.json"),
            Some("/persist/etc/app/app.json".into())
        );
        assert!(!r.join("persist/etc/app/app.json").exists());
        assert_eq!(owner_mode(&r.join("persist/etc/app")), (0, 0, 0o700));
        assert_eq!(
            link("home/alice/.config/app.json"),
            Some("/persist/home/alice/.config/app.json".into())
        );
        assert!(!r.join("persist/home/alice/.config/app.json").exists());
        assert_eq!(
            owner_mode(&r.join("persist/home/alice/.config")),
            (ALICE, USERS, 0o755)
        );
        // The machine id is never a link: created "uninitialized" and bound.
        assert!(is_file("etc/machine-id"));
        assert_eq!(
            fs::read_to_string(r.join("persist/etc/machine-id")).expect("created"),
            "uninitialized\n"
        );
        // Something at the path is covered by the bind mount, never replaced.
        assert_eq!(
            fs::read_to_string(r.join("etc/occupied.conf")).expect("kept"),
            "local\n"
        );
        assert!(is_file("persist/etc/occupied.conf"));
        assert_eq!(link("etc/elsewhere.conf"), Some("/outside/shadow".into()));
        // Inside a directory of the same storage the mount point is the copy.
        assert!(is_file("persist/var/lib/app/state.json"));
        // Inside one of another storage: the link is in that entry's copy.
        assert_eq!(
            link("persist/var/lib/app/other.json"),
            Some("/state/var/lib/app/other.json".into())
        );
        assert!(!r.join("state/var/lib/app/other.json").exists());
        for unit in [
            "etc-app-app.json.mount",
            "home-alice-.config-app.json.mount",
            "etc-ssh-ssh_host_ed25519_key.mount",
        ] {
            assert!(
                f.opts.prepared_dir.join(unit).exists(),
                "{unit} has a marker"
            );
        }
    }

    // The programs wrote through the links: the copies are in storage.
    fs::write(r.join("persist/etc/app/app.json"), "{}\n").expect("write");
    fs::write(r.join("persist/home/alice/.config/app.json"), "{}\n").expect("write");
    fs::write(r.join("state/var/lib/app/other.json"), "{}\n").expect("write");
    // The same boot, prepared again: the links stay (as impermanence).
    assert_eq!(prepare().len(), 1);
    assert_eq!(
        link("etc/app/app.json"),
        Some("/persist/etc/app/app.json".into())
    );

    // Next boot: each of them is a bind mount of the copy written before.
    erase_root();
    assert_eq!(prepare(), []);
    for path in ["etc/app/app.json", "home/alice/.config/app.json"] {
        assert!(is_file(path), "{path} is a mount point, not a link");
        assert_eq!(
            fs::read(r.join(path)).expect("read").len(),
            0,
            "an empty mount point"
        );
    }
    assert_eq!(
        fs::read_to_string(r.join("persist/etc/app/app.json")).expect("kept"),
        "{}\n"
    );
    assert_eq!(
        owner_mode(&r.join("home/alice/.config/app.json")),
        owner_mode(&r.join("persist/home/alice/.config/app.json"))
    );
    // The link in the other storage's copy persisted with it, and stays.
    assert_eq!(
        link("persist/var/lib/app/other.json"),
        Some("/state/var/lib/app/other.json".into())
    );
}
