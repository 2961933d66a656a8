//! What `tabula diff` must print for a planted truth, in each form: the
//! JSON entries, the tree (default, `--expand`, `--all`) and its counts,
//! the reasons of what systemd-tmpfiles makes, the `--nix` snippet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::{assert_ok, p, tabula};

/// The truth: absolute path → "lost" or "regenerated".
pub type Truth = BTreeMap<Vec<u8>, &'static str>;

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
    for (path, says, file) in [
        (
            "/var/lib/tabula-regen",
            "made by systemd-tmpfiles at every boot: `d /var/lib/tabula-regen 0755 root root -`",
            "/etc/tmpfiles.d/tabula.conf",
        ),
        (
            "/var/lib/from-run",
            "made by systemd-tmpfiles at every boot: `d /var/lib/from-run 0755 - - -`",
            "/run/tmpfiles.d/lost.conf",
        ),
        (
            "/var/cache",
            "made by systemd-tmpfiles on the way to /var/cache/tabula/deep: `d /var/cache/tabula/deep 0755 - - -`",
            "/etc/tmpfiles.d/tabula.conf",
        ),
        (
            "/etc/tabula-regen.conf",
            "made by systemd-tmpfiles at every boot: `f /etc/tabula-regen.conf 0644 root root - hello`",
            "/etc/tmpfiles.d/tabula.conf",
        ),
        (
            "/etc/tabula-link",
            "made by systemd-tmpfiles at every boot: `L /etc/tabula-link - - - - /some/where`",
            "/etc/tmpfiles.d/tabula.conf",
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

pub fn check_outputs(
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

pub fn truth(lost: &[&[u8]], regenerated: &[&[u8]]) -> Truth {
    let mut t = Truth::new();
    for l in lost {
        t.insert(l.to_vec(), "lost");
    }
    for r in regenerated {
        t.insert(r.to_vec(), "regenerated");
    }
    t
}
