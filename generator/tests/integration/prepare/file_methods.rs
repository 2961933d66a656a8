//! File entries placed as a symbolic link (`"method": "symlink"`) or,
//! with `"method": "auto"`, as a link or a bind mount.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::{ALICE, USERS, fixture, owner_mode, write_with_mode};
use tabula_config::parse;
use tabula_generator::PrepareError;
use tabula_generator::plan::{Stage, plan};
use tabula_generator::prepare::prepare_all;
use tabula_testkit::Need;

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
    write_with_mode(
        &r.join("persist/etc/ssh/ssh_host_ed25519_key"),
        "key\n",
        0o600,
    );
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
