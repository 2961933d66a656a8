//! The persisted entries: each bad one named, every good one kept with
//! its defaults.

use super::*;

#[test]
fn every_bad_entry_is_named_and_every_good_one_is_kept_with_its_defaults() -> TestResult {
    let e = entries_of(
        r#"{"version": 1, "persist": [
        {"storage": "/persist", "hideMounts": true, "mountOptions": ["noexec"],
         "directories": ["/var/log", "var/rel", "/var/log", "/etc/ok/sub", "/persist/x", "/",
                         {"path": "/srv", "user": 5, "group": "wheel", "mode": "0700", "inInitrd": true}],
         "files": ["/etc/ok", "/var/log"],
         "users": {"alice": {"directories": ["/abs", "docs"], "files": [".x"]},
                   "bob": {"home": "/", "files": ["y"]},
                   "carol": {"home": "rel"},
                   "-dave": {"files": ["z"]}}},
        {"storage": "/", "directories": ["/a"]},
        {"storage": "/p2", "mountOptions": ["a,b"], "directories": ["/b"]},
        {"storage": "/p3", "directories": ["/mnt", "/p2/in", "/var/log"]},
        {"storage": "/mnt/data"}]}"#,
    )?;
    let lines = problem_lines(&e);
    let want = [
        r#"persist[0].directories[1] ("var/rel"): is not absolute"#,
        r#"persist[0].directories[5] ("/"): is the root itself"#,
        r#"persist[0].users.alice.directories[0] ("/abs"): is absolute; expected a path relative to the home directory; this entry is skipped, the others are still mounted"#,
        r#"persist[0].users.bob.home ("/"): is the root; expected a home directory such as "/home/alice"; none of this user's entries is mounted, the others are"#,
        r#"persist[0].users.carol.home ("rel"): is not absolute"#,
        r#"persist[0].users.-dave ("-dave"): is not a valid user or group name"#,
        r#"persist[1].storage ("/"): is the root itself; expected the mount point of persistent storage, such as "/persist"; none of this storage's entries is mounted, the other storages are"#,
        r#"persist[2].mountOptions[0] ("a,b"): is not a single mount option"#,
        r#"persist[0].directories[2] ("/var/log"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[0].files[1] ("/var/log"): is listed as a file and, in persist[0].directories[0], as a directory; a path is one or the other"#,
        r#"persist[3].directories[2] ("/var/log"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[0].directories[3] ("/etc/ok/sub"): is inside "/etc/ok", persisted by persist[0].files[0] as a file; a file has no paths inside it"#,
        r#"persist[3].directories[0] ("/mnt"): contains the storage "/mnt/data"; mounting over it would hide persisted data"#,
        r#"persist[3].directories[1] ("/p2/in"): is inside the storage "/p2" of another entry; it is persistent already"#,
        r#"persist[0].directories[4] ("/persist/x"): is inside the storage "/persist" itself"#,
    ];
    assert_problems_are(&lines, &want);
    let kept: Vec<(&str, &str)> = e
        .persisted
        .iter()
        .map(|p| (p.label.as_str(), p.path.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("persist[0].files[0]", "/etc/ok"),
            ("persist[0].users.alice.files[0]", "/home/alice/.x"),
            ("persist[0].users.alice.directories[1]", "/home/alice/docs"),
            ("persist[0].directories[6]", "/srv"),
            ("persist[0].directories[0]", "/var/log"),
        ]
    );
    let by_label = |l: &str| {
        e.persisted
            .iter()
            .find(|p| p.label == l)
            .unwrap_or_else(|| panic!("{l} not kept"))
    };
    let log = by_label("persist[0].directories[0]");
    assert_eq!(log.kind, entries::Kind::Directory);
    assert_eq!(
        (log.source.as_str(), log.storage.as_str()),
        ("/persist/var/log", "/persist")
    );
    assert_eq!(log.user, Id::Name("root".into()));
    assert_eq!(log.group, entries::Group::Id(Id::Name("root".into())));
    assert_eq!(
        (log.mode, log.in_initrd, log.home.is_none()),
        (0o755, false, true)
    );
    assert_eq!(&*log.options, ["x-gvfs-hide", "noexec"]);
    let ok = by_label("persist[0].files[0]");
    assert_eq!((ok.kind, ok.mode), (entries::Kind::File, 0o644));
    let srv = by_label("persist[0].directories[6]");
    assert_eq!(
        (srv.user.clone(), srv.group.clone(), srv.mode, srv.in_initrd),
        (
            Id::Numeric(5),
            entries::Group::Id(Id::Name("wheel".into())),
            0o700,
            true
        )
    );
    let x = by_label("persist[0].users.alice.files[0]");
    assert_eq!(x.user, Id::Name("alice".into()));
    assert_eq!(x.group, entries::Group::PrimaryOf(Id::Name("alice".into())));
    assert_eq!(
        x.home,
        Some(entries::Home {
            user: Id::Name("alice".into()),
            path: "/home/alice".into()
        })
    );
    assert_eq!(x.source, "/persist/home/alice/.x");
    assert_eq!(entries::Kind::File.noun(), "file");
    assert_eq!(entries::Kind::Directory.noun(), "directory");
    assert_eq!(
        entries::Group::PrimaryOf(Id::Numeric(7)).to_string(),
        "the primary group of 7"
    );
    assert_eq!(entries::Group::Id(Id::Numeric(7)).to_string(), "7");
    Ok(())
}

#[test]
fn an_initrd_entry_must_fit_below_sysroot() -> TestResult {
    let fits = format!("/b{}", "/aaaaaaa".repeat(511)); // 4090 bytes
    let doc = |in_initrd: bool| {
        format!(
            r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{{"path": "{fits}", "inInitrd": {in_initrd}}}]}}]}}"#
        )
    };
    // Stage 2 mounts it at its own path, storage copy 4092 bytes: fine.
    assert!(problem_lines(&entries_of(&doc(false))?).is_empty());
    // In the initrd, /sysroot + the path is 4098 bytes.
    let lines = problem_lines(&entries_of(&doc(true))?);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("is 4098 bytes long")
            && lines[0].contains("counting the /sysroot prefix"),
        "{lines:?}"
    );
    // The persisted copy alone can be what is too long.
    let path = format!("/b{}", "/aaaaaaa".repeat(511));
    let doc = format!(
        r#"{{"version": 1, "persist": [{{"storage": "/persist/deep", "files": ["{path}"]}}]}}"#
    );
    let lines = problem_lines(&entries_of(&doc)?);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("is where its persisted copy would be, and is 4103 bytes long"),
        "{lines:?}"
    );
    Ok(())
}

#[test]
fn an_entry_applies_its_owner_and_mode_only_to_what_it_creates_unless_it_enforces_them()
-> TestResult {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "directories": ["/a", {"path": "/b", "ownership": "create"},
                          {"path": "/c", "ownership": "enforce"}]}]}"#,
    )?;
    let got: Vec<(&str, Ownership)> = by_path(&e, |p| p.ownership);
    assert_eq!(
        got,
        [
            ("/a", Ownership::Create),
            ("/b", Ownership::Create),
            ("/c", Ownership::Enforce)
        ]
    );
    let err = parse_str(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "files": [{"path": "/etc/x", "ownership": "always"}]}]}"#,
    )
    .map(|_| ())
    .expect_err("an unknown ownership is refused");
    let line = err.to_string();
    assert!(
        line.contains("ownership") && line.contains("always") && line.contains("enforce"),
        "{line}"
    );
    Ok(())
}

#[test]
fn nested_entries_are_kept_outer_first_and_only_true_conflicts_are_refused() -> TestResult {
    let e = entries_of(
        r#"{"version": 1, "persist": [
        {"storage": "/persist",
         "directories": ["/var/lib", {"path": "/srv/boot/early", "inInitrd": true}, "/srv/boot"],
         "files": ["/etc/app.conf"],
         "users": {"alice": {"directories": [".config/fcitx5", ".config"]}}},
        {"storage": "/state",
         "directories": ["/var/lib/nixos", "/var/lib/nixos/inner", "/etc/app.conf/x",
                         {"path": "/var/lib", "mode": "0700"}]}]}"#,
    )?;
    let lines = problem_lines(&e);
    let want = [
        r#"persist[0].directories[1] ("/srv/boot/early"): has inInitrd but is inside "/srv/boot", persisted by persist[0].directories[2] without it: that mount comes later, in stage 2, and would hide this one; give both inInitrd or neither"#,
        r#"persist[1].directories[3] ("/var/lib"): is listed twice; the first, persist[0].directories[0], is kept"#,
        r#"persist[1].directories[2] ("/etc/app.conf/x"): is inside "/etc/app.conf", persisted by persist[0].files[0] as a file"#,
    ];
    assert_problems_are(&lines, &want);
    let kept: Vec<(&str, Option<&str>)> = by_path(&e, |p| p.outer_storage.as_deref());
    assert_eq!(
        kept,
        [
            ("/etc/app.conf", None),
            ("/home/alice/.config", None),
            ("/home/alice/.config/fcitx5", Some("/persist")),
            ("/srv/boot", None),
            ("/var/lib", None),
            ("/var/lib/nixos", Some("/persist")),
            ("/var/lib/nixos/inner", Some("/state")),
        ]
    );
    Ok(())
}

#[test]
fn an_entry_s_mount_options_follow_its_storage_s_and_a_bad_one_skips_only_that_entry() -> TestResult
{
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist", "hideMounts": true,
           "mountOptions": ["nodev"],
           "directories": [{"path": "/a", "mountOptions": ["x-gvfs-trash", "x-gvfs-hide"]},
                           "/b", {"path": "/c", "mountOptions": ["a,b"]}],
           "files": [{"path": "/etc/f", "mountOptions": ["ro"]}]}]}"#,
    )?;
    let got: Vec<(&str, Vec<&str>)> = e
        .persisted
        .iter()
        .map(|p| {
            (
                p.path.as_str(),
                p.options.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", vec!["x-gvfs-hide", "nodev", "x-gvfs-trash"]),
            ("/b", vec!["x-gvfs-hide", "nodev"]),
            ("/etc/f", vec!["x-gvfs-hide", "nodev", "ro"]),
        ]
    );
    assert_eq!(
        problem_lines(&e),
        [
            r#"persist[0].directories[2].mountOptions[0] ("a,b"): is not a single mount option; expected one option per list item, without commas or spaces, such as "noatime"; this entry is skipped, the others are still mounted"#
        ]
    );
    Ok(())
}

#[test]
fn a_parent_directory_takes_the_defaults_of_created_parents_for_what_it_leaves_unset() -> TestResult
{
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "files": [{"path": "/var/keys/secret", "parentDirectory": {"mode": "0700"}}, "/etc/plain"],
           "users": {"alice": {"files": [{"path": ".config/app/key",
                                          "parentDirectory": {"group": "wheel"}}]}}}]}"#,
    )?;
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    let parent_of = |path: &str| {
        e.persisted
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("{path} not kept"))
            .parent
            .clone()
    };
    assert_eq!(
        parent_of("/var/keys/secret"),
        Some(entries::Parent {
            user: Id::Name("root".into()),
            group: entries::Group::Id(Id::Name("root".into())),
            mode: 0o700
        })
    );
    assert_eq!(parent_of("/etc/plain"), None);
    assert_eq!(
        parent_of("/home/alice/.config/app/key"),
        Some(entries::Parent {
            user: Id::Name("alice".into()),
            group: entries::Group::Id(Id::Name("wheel".into())),
            mode: 0o755
        })
    );
    let err = parse_str(
        r#"{"version": 1, "persist": [{"storage": "/p",
           "files": [{"path": "/x/y", "parentDirectory": {"mode": "0700", "recursive": true}}]}]}"#,
    )
    .map(|_| ())
    .expect_err("an unknown key in parentDirectory is refused");
    assert!(err.to_string().contains("recursive"), "{err}");
    Ok(())
}

#[test]
fn a_symlink_is_for_files_other_than_the_machine_id_and_outside_the_initrd() -> TestResult {
    let e = entries_of(
        r#"{"version": 1, "persist": [{"storage": "/persist",
           "directories": [{"path": "/var/lib/app", "method": "symlink"}],
           "files": [{"path": "/etc/app.json", "method": "symlink"},
                     {"path": "/etc/machine-id", "method": "symlink"},
                     {"path": "/etc/early", "method": "symlink", "inInitrd": true},
                     {"path": "/etc/bound", "method": "bind"}]}]}"#,
    )?;
    let kept: Vec<(&str, Method)> = by_path(&e, |p| p.method);
    assert_eq!(
        kept,
        [
            ("/etc/app.json", Method::Symlink),
            ("/etc/bound", Method::Bind)
        ]
    );
    let lines = problem_lines(&e);
    for w in [
        r#"persist[0].directories[0] ("/var/lib/app"): is a directory, and "method": "symlink" is for files"#,
        r#"persist[0].files[1] ("/etc/machine-id"): cannot be a symlink"#,
        r#"persist[0].files[2] ("/etc/early"): has both "method": "symlink" and inInitrd"#,
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w}\nin\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), 3, "{}", lines.join("\n"));
    Ok(())
}
