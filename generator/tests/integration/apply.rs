//! The emitted units applied for real: the generator binary writes units for
//! paths under a temporary directory, the prepare step runs, and every
//! mount unit's What/Where/Type/Options is mounted as systemd would
//! (`mount -t TYPE -o OPTIONS WHAT WHERE`) inside a private mount namespace
//! (`unshare -m`). Then: the binds land (a file written through the target
//! is in the persisted copy, a persisted file is the target's inode), and
//! the overlay with `:`, `,` and `\` in its directories shows all layers.
//!
//! Over 400 lines in one file: four tests on one namespace harness, the
//! first (every kind of unit mounted) 200 lines on its own.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tabula_generator::plan::{Plan, Stage, plan};
use tabula_generator::prepare::{Options, prepare_all};
use tabula_testkit::Need;

/// Root, `unshare` and `mount`.
const NEEDS: &[Need] = &[
    Need::Root,
    Need::Program {
        name: "unshare",
        package: "util-linux",
    },
    Need::Program {
        name: "mount",
        package: "mount",
    },
];

/// `Key=value` lines of a unit file, with `%%` undone.
fn settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%%", "%")))
        .collect()
}

fn get<'a>(s: &'a [(String, String)], key: &str) -> &'a str {
    s.iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| panic!("no {key}= in unit"), |(_, v)| v.as_str())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs the generator binary on `config` into `dir/units`, reading the
/// configuration under its own root in `dir` (the configured paths are the
/// real ones), then the prepare step as its unit would, with the markers
/// and a passwd file in `dir`. Returns the units' directory and the plan.
fn generate_and_prepare(dir: &Path, config: &str) -> (PathBuf, Plan) {
    let gen_root = dir.join("generator-root");
    let config_path = gen_root.join("etc/tabula/config.json");
    fs::create_dir_all(gen_root.join("etc/tabula")).expect("mkdir");
    fs::write(&config_path, config).expect("write");
    let units = dir.join("units");
    fs::create_dir(&units).expect("mkdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tabula-generator"))
        .arg(&units)
        .env(tabula_generator::ROOT_VARIABLE, &gen_root)
        .output()
        .expect("run generator");
    assert!(
        out.status.success(),
        "generator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = tabula_config::load(&config_path).expect("config");
    let p = plan(&parsed, Stage::System);
    let passwd = dir.join("passwd");
    fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").expect("write");
    let opts = Options {
        root: "/".into(),
        prepared_dir: dir.join("prepared"),
        passwd: passwd.clone(),
        group: passwd,
    };
    let failed = prepare_all(&p, &opts, None).expect("the root opens");
    assert!(failed.is_empty(), "{failed:?}");
    (units, p)
}

#[test]
#[ignore = "needs root and unshare; dev/test.sh runs it"]
fn emitted_mounts_land_in_a_private_namespace() {
    if tabula_testkit::skip_unless("emitted_mounts_land_in_a_private_namespace", NEEDS) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    for l in ["l:1", "l,2", "l\\3", "up per", "wo%rk", "persist"] {
        fs::create_dir_all(dir.path().join(l)).expect("mkdir");
    }
    fs::write(dir.path().join("l:1/a"), "a").expect("write");
    fs::write(dir.path().join("l,2/b"), "b").expect("write");
    fs::write(dir.path().join("l\\3/c"), "c").expect("write");
    fs::create_dir_all(
        dir.path()
            .join("persist")
            .join(t.trim_start_matches('/'))
            .join("root/etc"),
    )
    .expect("mkdir");
    let persisted_key = dir
        .path()
        .join("persist")
        .join(t.trim_start_matches('/'))
        .join("root/etc/key");
    fs::write(&persisted_key, "secret").expect("write");
    let config = format!(
        r#"{{ "version": 1,
  "persist": [ {{ "storage": "{t}/persist", "hideMounts": true, "mountOptions": ["nodev"],
    "directories": [ "{t}/root/var/lib/app", "{t}/root/srv/with space", "{t}/root/srv/50%" ],
    "files": [ "{t}/root/etc/key" ],
    "users": {{ "root": {{ "home": "{t}/root/home/admin", "directories": [ "Documents" ] }} }} }} ],
  "overlays": [ {{ "where": "{t}/root/merged", "lower": ["{t}/l:1", "{t}/l,2", "{t}/l\\3"],
    "upper": "{t}/up per", "work": "{t}/wo%rk" }} ] }}"#
    );
    let (units, _) = generate_and_prepare(dir.path(), &config);
    // The markers of the prepare step, as generate_and_prepare put them.
    let prepared_dir = dir.path().join("prepared");

    let mut mounts = Vec::new();
    let mut checked_by_systemd = 0;
    for e in fs::read_dir(&units).expect("units") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".mount") || e.file_type().expect("type").is_symlink() {
            continue;
        }
        let s = settings(&fs::read_to_string(e.path()).expect("read"));
        if get(&s, "Type") == "none" {
            let marker = get(&s, "AssertPathExists")
                .rsplit('/')
                .next()
                .expect("marker");
            assert!(prepared_dir.join(marker).exists(), "no marker for {name}");
            // And systemd reads the assertion, as written, as that very file
            // (no unescaping of `\x2d`, `%%` undone): only the directory is
            // swapped for the test's.
            let raw = fs::read_to_string(e.path()).expect("read");
            let line = raw
                .lines()
                .find(|l| l.starts_with("AssertPathExists="))
                .expect("assert line")
                .replacen(
                    tabula_generator::units::PREPARED_DIR,
                    &prepared_dir.to_string_lossy(),
                    1,
                );
            if let Ok(o) = Command::new("systemd-analyze")
                .args(["condition", &line])
                .output()
            {
                assert!(
                    o.status.success(),
                    "systemd does not find the marker of {name}: {}",
                    String::from_utf8_lossy(&o.stdout)
                );
                checked_by_systemd += 1;
            }
        }
        mounts.push((
            get(&s, "Where").to_owned(),
            get(&s, "What").to_owned(),
            get(&s, "Type").to_owned(),
            get(&s, "Options").to_owned(),
        ));
    }
    mounts.sort();
    assert_eq!(mounts.len(), 6, "{mounts:?}");
    if checked_by_systemd == 0 {
        eprintln!(
            "NOT CHECKED LOUDLY: systemd-analyze is missing; the markers were not checked against systemd's reading of AssertPathExists="
        );
    }
    let mut script = String::from("set -e\n");
    for (wh, what, ty, opts) in &mounts {
        // systemd creates a missing mount point (DirectoryMode=0755).
        writeln!(script, "[ -e {0} ] || mkdir -p -- {0}", shell_quote(wh)).unwrap();
        writeln!(
            script,
            "mount -t {} -o {} -- {} {}",
            shell_quote(ty),
            shell_quote(opts),
            shell_quote(what),
            shell_quote(wh)
        )
        .unwrap();
    }
    write!(
        script,
        "echo through-the-mount > {t}/root/var/lib/app/written\n\
         echo spaced > {}\n\
         echo doc > {t}/root/home/admin/Documents/doc\n\
         echo pct > {t}/root/srv/50%/p\n\
         cat {t}/root/etc/key; echo\n\
         ls {}\n\
         findmnt -rno TARGET,OPTIONS | grep -F {} | sort\n",
        shell_quote(&format!("{t}/root/srv/with space/f")),
        shell_quote(&format!("{t}/root/merged")),
        shell_quote(&t),
    )
    .unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mounting failed:\n{script}\n{stderr}");
    eprintln!("{stdout}");
    assert!(
        stdout.contains("secret"),
        "the persisted file is not at the target: {stdout}"
    );
    for layer in ["a", "b", "c"] {
        assert!(
            stdout.lines().any(|l| l == layer),
            "overlay lacks {layer}: {stdout}"
        );
    }
    assert!(
        stdout.contains("x-gvfs-hide") || stdout.contains("nodev"),
        "{stdout}"
    );
    // Outside the namespace: the writes went to the persisted copies, and
    // the targets on the "erased root" stayed empty.
    let persist = dir.path().join("persist").join(t.trim_start_matches('/'));
    assert_eq!(
        fs::read_to_string(persist.join("root/var/lib/app/written")).expect("persisted"),
        "through-the-mount\n"
    );
    assert!(persist.join("root/srv/with space/f").exists());
    assert!(persist.join("root/home/admin/Documents/doc").exists());
    assert!(persist.join("root/srv/50%/p").exists());
    assert!(!Path::new(&format!("{t}/root/var/lib/app/written")).exists());
    // The mount point systemd would create exists, empty: the overlay was
    // only in the namespace.
    assert_eq!(
        fs::read_dir(format!("{t}/root/merged"))
            .expect("dir")
            .count(),
        0
    );
}

/// `tabula-generator prepare` itself, as the service runs it, under its
/// root (`TABULA_GENERATOR_ROOT`), in a private mount namespace: an entry
/// whose target is already a mount point (as when the initrd mounted it) is
/// left alone and still gets its marker; the others are prepared; the exit
/// status and the journal lines say what happened.
#[test]
#[ignore = "needs root and unshare; dev/test.sh runs it"]
fn prepare_subcommand_leaves_mounted_targets_alone() {
    if tabula_testkit::skip_unless("prepare_subcommand_leaves_mounted_targets_alone", NEEDS) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    for d in ["persist", "elsewhere", "etc/tabula"] {
        fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    fs::write(
        dir.path().join("elsewhere/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .expect("write");
    fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
    fs::write(dir.path().join("etc/group"), "root:x:0:\n").expect("write");
    fs::write(dir.path().join("etc/machine-id"), "").expect("write");
    fs::write(
        dir.path().join("etc/tabula/config.json"),
        r#"{ "version": 1, "persist": [ { "storage": "/persist",
            "files": [ { "path": "/etc/machine-id", "inInitrd": true } ],
            "directories": [ "/var/lib/app" ] } ] }"#,
    )
    .expect("write");
    let exe = env!("CARGO_BIN_EXE_tabula-generator");
    let script = format!(
        "set -e\n\
         mount --bind {t}/elsewhere/machine-id {t}/etc/machine-id\n\
         TABULA_GENERATOR_ROOT={t} {exe} prepare; echo \"exit=$?\"\n\
         ls {t}/run/tabula/prepared\n"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("exit=0"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("/etc/machine-id is already mounted"),
        "{stderr}"
    );
    assert!(stdout.contains("etc-machine\\x2did.mount"), "{stdout}");
    assert!(stdout.contains("var-lib-app.mount"), "{stdout}");
    // The already-mounted entry was not prepared: no persisted copy made.
    assert!(!dir.path().join("persist/etc/machine-id").exists());
    assert!(dir.path().join("persist/var/lib/app").is_dir());
    assert!(dir.path().join("var/lib/app").is_dir());
}

/// Nested entries, as real configurations write them: `/var/lib` in one
/// storage and `/var/lib/nixos` in another, and a user's `.config` and
/// `.config/fcitx5` in one storage. The prepare step places each inner
/// mount point where the outer mount puts it (no `mkdir` by the mounting
/// side: a missing mount point fails this test), the units are mounted
/// outer first as systemd orders them (a mount unit after the mount units
/// of its parent paths), and each write lands in its own storage.
#[test]
#[ignore = "needs root and unshare; dev/test.sh runs it"]
fn nested_entries_are_mounted_outer_first_and_each_lands_in_its_storage() {
    if tabula_testkit::skip_unless(
        "nested_entries_are_mounted_outer_first_and_each_lands_in_its_storage",
        NEEDS,
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    for s in ["persist", "state"] {
        fs::create_dir_all(dir.path().join(s)).expect("mkdir");
    }
    let config = format!(
        r#"{{ "version": 1, "persist": [
  {{ "storage": "{t}/persist", "directories": [ "{t}/root/var/lib" ],
     "users": {{ "root": {{ "home": "{t}/root/home/admin", "directories": [ ".config/fcitx5", ".config" ] }} }} }},
  {{ "storage": "{t}/state", "directories": [ {{ "path": "{t}/root/var/lib/nixos", "mode": "0700" }} ] }} ] }}"#
    );
    let (units, p) = generate_and_prepare(dir.path(), &config);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    // The inner mount point of the other storage's entry is inside the
    // outer entry's persisted copy, with the source's mode.
    let state_nixos = format!("{t}/persist{t}/root/var/lib/nixos");
    let meta = fs::metadata(&state_nixos).expect("inner mount point prepared");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o700
    );

    let mut mounts = Vec::new();
    for e in fs::read_dir(&units).expect("units") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".mount") || e.file_type().expect("type").is_symlink() {
            continue;
        }
        let s = settings(&fs::read_to_string(e.path()).expect("read"));
        mounts.push((
            get(&s, "Where").to_owned(),
            get(&s, "What").to_owned(),
            get(&s, "Options").to_owned(),
        ));
    }
    // systemd's order: a path's mount after its parents' (by path).
    mounts.sort();
    assert_eq!(mounts.len(), 4, "{mounts:?}");
    let mut script = String::from("set -e\n");
    for (wh, what, o) in &mounts {
        write!(script,
            "[ -d {0} ] || {{ echo missing mount point {0} >&2; exit 1; }}\nmount -o {1} -- {2} {0}\n",
            shell_quote(wh),
            shell_quote(o),
            shell_quote(what),
        ).unwrap();
    }
    write!(
        script,
        "echo outer > {t}/root/var/lib/outer\n\
         echo inner > {t}/root/var/lib/nixos/inner\n\
         echo im > {t}/root/home/admin/.config/fcitx5/profile\n\
         echo cfg > {t}/root/home/admin/.config/app\n"
    )
    .unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert!(
        out.status.success(),
        "mounting failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (file, want) in [
        (format!("{t}/persist{t}/root/var/lib/outer"), "outer\n"),
        (format!("{t}/state{t}/root/var/lib/nixos/inner"), "inner\n"),
        (
            format!("{t}/persist{t}/root/home/admin/.config/fcitx5/profile"),
            "im\n",
        ),
        (
            format!("{t}/persist{t}/root/home/admin/.config/app"),
            "cfg\n",
        ),
    ] {
        assert_eq!(fs::read_to_string(&file).expect(&file), want, "{file}");
    }
    // The inner storage's data is not in the outer's copy, and nothing
    // reached the erased root.
    assert!(!Path::new(&format!("{state_nixos}/inner")).exists());
    assert!(!Path::new(&format!("{t}/root/var/lib/outer")).exists());
    assert!(!Path::new(&format!("{t}/root/var/lib/nixos/inner")).exists());
}

/// The scripted initrd mounts a persisted `/etc/machine-id` from stage 1
/// (the NixOS module's postMountCommands), without `inInitrd`: the
/// generator finds it mounted and does not warn that PID 1 read an erased
/// id; with nothing mounted there, it does.
#[test]
#[ignore = "needs root and unshare; dev/test.sh runs it"]
fn a_machine_id_mounted_before_stage_2_is_not_warned_about() {
    if tabula_testkit::skip_unless(
        "a_machine_id_mounted_before_stage_2_is_not_warned_about",
        NEEDS,
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    for d in ["persist/etc", "etc/tabula", "out"] {
        fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    fs::write(dir.path().join("persist/etc/machine-id"), "uninitialized\n").expect("write");
    fs::write(dir.path().join("etc/machine-id"), "").expect("write");
    fs::write(
        dir.path().join("etc/tabula/config.json"),
        r#"{ "version": 1, "persist": [ { "storage": "/persist", "files": [ "/etc/machine-id" ] } ] }"#,
    )
    .expect("write");
    let exe = env!("CARGO_BIN_EXE_tabula-generator");
    let warning = r#"/etc/machine-id is persisted without "inInitrd": true"#;
    for mounted in [false, true] {
        let mount = if mounted {
            format!("mount --bind {t}/persist/etc/machine-id {t}/etc/machine-id\n")
        } else {
            String::new()
        };
        let script = format!("set -e\n{mount}TABULA_GENERATOR_ROOT={t} {exe} {t}/out\n");
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .expect("unshare");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains(warning),
            !mounted,
            "mounted: {mounted}\n{stderr}"
        );
    }
}
