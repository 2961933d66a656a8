//! Nothing that reaches a unit file can inject a directive. Random hostile
//! paths, options, user names and unit names (newlines, carriage returns,
//! `[Service]`, `%` specifiers, quotes, backslashes, whitespace at the ends,
//! unicode line separators) go through the generator; every file it emits
//! must consist only of known sections and known keys, one per line, and
//! every `What=`/`Where=` must read back as exactly the configured path.

use std::collections::BTreeSet;
use std::path::Path;

use tabula_generator::plan::{Stage, plan};
use tabula_generator::{Context, Node, render};
use tabula_testkit::Rng;

const EVIL: &[&str] = &[
    "a",
    "b",
    "/",
    "/",
    "/",
    "\n",
    "\r",
    "\nExecStart=/bin/sh",
    "[Service]",
    "]",
    "[",
    "%i",
    "%%",
    "%",
    "\"",
    "'",
    "\\",
    "\\\n",
    " ",
    "\t",
    "\u{2028}",
    "\u{85}",
    "=",
    ";",
    "#",
    "$HOME",
    ":",
    ",",
    "..",
    ".",
    "é",
    "\0",
    "-",
    "x-systemd.requires=evil.service",
];

fn evil(rng: &mut Rng, absolute: bool) -> String {
    let n = 1 + rng.below(6);
    let mut s: String = if absolute {
        "/".to_owned()
    } else {
        String::new()
    };
    for _ in 0..n {
        s.push_str(rng.pick::<&str>(EVIL));
    }
    s
}

const KEYS: &[&str] = &[
    "Description",
    "Documentation",
    "SourcePath",
    "DefaultDependencies",
    "Conflicts",
    "Before",
    "After",
    "Wants",
    "RequiresMountsFor",
    "AssertPathExists",
    "ConditionPathIsMountPoint",
    "ConditionFirstBoot",
    "What",
    "Where",
    "Type",
    "Options",
    "RemainAfterExit",
    "ExecStart",
];

fn unescape(v: &str) -> String {
    v.replace("%%", "%")
}

#[test]
fn no_directive_can_be_injected() {
    let mut rng = Rng::new(0x1dea_5eed_0bad_f00d);
    let mut emitted_units = 0;
    let mut accepted_paths = 0;
    for round in 0..3000 {
        let dirs: Vec<String> = (0..4)
            .map(|_| {
                let absolute = rng.below(8) != 0;
                evil(&mut rng, absolute)
            })
            .collect();
        let rels: Vec<String> = (0..2)
            .map(|_| evil(&mut rng, false).trim_start_matches('/').to_owned())
            .collect();
        let config = serde_json::json!({
            "version": 1,
            "persist": [ {
                "storage": if round % 5 == 0 { evil(&mut rng, true) } else { "/persist".to_owned() },
                "mountOptions": if round % 7 == 0 { vec![evil(&mut rng, false)] } else { vec![] },
                "directories": dirs,
                "files": [ evil(&mut rng, true) ],
                "users": { "alice": { "directories": rels } }
            } ],
            "overlays": [ {
                "where": evil(&mut rng, true),
                "lower": [ evil(&mut rng, true), evil(&mut rng, true) ],
                "upper": evil(&mut rng, true), "work": evil(&mut rng, true),
                "whenMounted": if round % 2 == 0 { Some(evil(&mut rng, true)) } else { None },
                "before": [ if round % 3 == 0 { evil(&mut rng, false) } else { "nix-daemon.service".to_owned() } ]
            } ]
        });
        let Ok(config) = tabula_config::parse(&config.to_string(), Path::new("fuzz.json")) else {
            continue;
        };
        for stage in [Stage::System, Stage::Initrd] {
            let p = plan(&config, stage);
            let ctx = Context {
                stage,
                config_path: "/etc/tabula/config.json",
                exe: "/usr/lib/tabula/tabula-generator",
            };
            let tree = render(&p, &ctx);
            let mut wheres = BTreeSet::new();
            for (name, node) in &tree {
                let comps: Vec<&str> = name.split('/').collect();
                assert!(
                    comps.len() <= 2
                        && comps.iter().all(|c| !matches!(*c, "" | "." | ".."))
                        && !name.contains(|c: char| c.is_control()),
                    "bad file name {name:?}"
                );
                let Node::File(text) = node else { continue };
                emitted_units += 1;
                for line in text.lines() {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if line.starts_with('[') {
                        assert!(
                            ["[Unit]", "[Mount]", "[Service]"].contains(&line),
                            "injected section {line:?} in {name}:\n{text}"
                        );
                        continue;
                    }
                    let (key, value) = line
                        .split_once('=')
                        .unwrap_or_else(|| panic!("line without key in {name}: {line:?}\n{text}"));
                    assert!(
                        KEYS.contains(&key),
                        "unknown key {key:?} in {name}:\n{text}"
                    );
                    assert!(!value.ends_with('\\'), "continuation in {name}: {line:?}");
                    assert_eq!(value.trim(), value, "edge whitespace in {name}: {line:?}");
                    // Every % is doubled: no specifier survives.
                    assert!(
                        value.replace("%%", "").find('%').is_none(),
                        "specifier in {name}: {line:?}"
                    );
                    if key == "Where" {
                        wheres.insert(unescape(value));
                    }
                }
            }
            for b in &p.binds {
                assert!(
                    wheres.contains(&b.target),
                    "{} not emitted as Where",
                    b.target
                );
                accepted_paths += 1;
            }
            for o in &p.overlays {
                assert!(wheres.contains(&o.config.where_));
            }
        }
    }
    eprintln!(
        "{emitted_units} emitted files checked, {accepted_paths} hostile-but-valid paths emitted verbatim"
    );
    assert!(
        emitted_units > 1000 && accepted_paths > 500,
        "fuzz too weak: {emitted_units} {accepted_paths}"
    );
}
