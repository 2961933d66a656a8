//! Planted symlinks, a directory swapped for one between check and use,
//! hard links: nothing outside the persisted tree is ever touched.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::{ALICE, USERS, fixture, owner_mode, snapshot, write_with_mode};
use tabula_config::parse;
use tabula_generator::PrepareError;
use tabula_generator::plan::{Stage, plan};
use tabula_generator::prepare::prepare_all;
use tabula_testkit::Need;

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
        write_with_mode(&outside.join(name), "secret\n", 0o600);
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
