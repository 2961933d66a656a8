//! Owners and modes of what the prepare step creates, corrects or leaves
//! alone, in the system and in the initrd.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{ALICE, CONFIG, USERS, fixture, owner_mode, snapshot, write_with_mode};
use tabula_config::parse;
use tabula_generator::plan::{Stage, plan};
use tabula_generator::prepare::prepare_all;
use tabula_testkit::Need;

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
    write_with_mode(
        &r.join("persist/etc/ssh/ssh_host_ed25519_key"),
        "key\n",
        0o600,
    );
    // The target exists on the erased root with the entry's mode: it
    // follows the source, not the entry.
    fs::create_dir_all(r.join("etc/ssh")).expect("mkdir");
    write_with_mode(&r.join("etc/ssh/ssh_host_rsa_key"), "", 0o644);
    write_with_mode(&r.join("persist/etc/ssh/ssh_host_rsa_key"), "key\n", 0o600);
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
