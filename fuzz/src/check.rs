//! The properties of the rendered units: every mount is one the
//! configuration names, every line a known section or directive, every
//! value reads back as written, every output path stays inside.

use std::collections::BTreeSet;

use tabula_config::Config;
use tabula_generator::escape::path_unit_name;
use tabula_generator::plan::SYSROOT;
use tabula_generator::{Node, Stage, Tree};

use crate::readback::unpercent;

/// Sections a generated file may have.
const SECTIONS: &[&str] = &["[Unit]", "[Service]", "[Mount]"];

/// Directives a generated file may set. A directive the generator starts
/// to emit is added here on purpose, never by accident.
const DIRECTIVES: &[&str] = &[
    "Description",
    "Documentation",
    "SourcePath",
    "DefaultDependencies",
    "Conflicts",
    "Before",
    "After",
    "Wants",
    "Requires",
    "RequiresMountsFor",
    "AssertPathExists",
    "ConditionFirstBoot",
    "ConditionPathIsMountPoint",
    "Type",
    "RemainAfterExit",
    "ExecStart",
    "What",
    "Where",
    "Options",
];

fn join(base: &str, rel: &str) -> String {
    format!("{}/{rel}", base.trim_end_matches('/'))
}

fn prefixed(stage: Stage, path: &str) -> String {
    match stage {
        Stage::Initrd => join(SYSROOT, path.trim_start_matches('/')),
        Stage::System => path.to_owned(),
    }
}

/// (Where, What) of every bind mount the configuration names.
fn named_binds(config: &Config, stage: Stage) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for p in &config.persist {
        let mut add = |path: String| {
            let source = join(&p.storage, path.trim_start_matches('/'));
            out.insert((prefixed(stage, &path), prefixed(stage, &source)));
        };
        for e in p.directories.iter().chain(&p.files) {
            add(e.0.path.clone());
        }
        for (name, user) in &p.users {
            let home = user.home.clone().unwrap_or_else(|| format!("/home/{name}"));
            for e in user.directories.iter().chain(&user.files) {
                add(join(&home, &e.0.path));
            }
        }
    }
    out
}

/// Checks one rendered tree; panics naming the file and the line.
#[allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "systemd's unit and directory suffixes are lower case: `.MOUNT` is no unit"
)]
pub(crate) fn check_tree(config: &Config, stage: Stage, tree: &Tree) {
    let binds = named_binds(config, stage);
    let overlays: BTreeSet<&str> = config.overlays.iter().map(|o| o.where_.as_str()).collect();
    let befores: BTreeSet<&str> = config
        .overlays
        .iter()
        .flat_map(|o| o.before.iter().map(String::as_str))
        .chain(["local-fs.target"])
        .collect();
    for (key, node) in tree {
        let parts: Vec<&str> = key.split('/').collect();
        assert!(
            !key.starts_with('/')
                && parts.len() <= 2
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\0')),
            "an output path that leaves the output directory or nests: {key:?}"
        );
        if let [dir, _] = parts[..] {
            assert!(
                dir.ends_with(".d") || dir.ends_with(".wants") || dir.ends_with(".requires"),
                "an output directory that is no drop-in or dependency directory: {key:?}"
            );
        }
        match node {
            Node::Symlink(to) => {
                let [dir, unit] = parts[..] else {
                    panic!("a symlink at the top of the output directory: {key:?}");
                };
                assert_eq!(*to, format!("../{unit}"), "symlink {key:?}");
                assert!(
                    tree.contains_key(unit),
                    "symlink {key:?} to a unit that is not written"
                );
                let wanted_by = dir
                    .strip_suffix(".wants")
                    .or_else(|| dir.strip_suffix(".requires"))
                    .unwrap_or(dir);
                assert!(
                    befores.contains(wanted_by),
                    "{key:?}: a dependency of a unit the configuration does not name"
                );
            }
            Node::File(content) => check_file(key, content, stage, &binds, &overlays),
        }
    }
}

#[allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "systemd's unit suffixes are lower case: `.MOUNT` is no unit"
)]
fn check_file(
    key: &str,
    content: &str,
    stage: Stage,
    binds: &BTreeSet<(String, String)>,
    overlays: &BTreeSet<&str>,
) {
    let mut section = None;
    let mut mount: Vec<(&str, &str)> = Vec::new();
    for line in content.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        assert!(
            !line.chars().any(char::is_control),
            "{key}: a control character in {line:?}"
        );
        if line.starts_with('[') {
            assert!(SECTIONS.contains(&line), "{key}: unknown section {line:?}");
            section = Some(line);
            continue;
        }
        let Some((directive, value)) = line.split_once('=') else {
            panic!("{key}: a line that is no directive: {line:?}");
        };
        assert!(section.is_some(), "{key}: {line:?} before any section");
        assert!(
            DIRECTIVES.contains(&directive),
            "{key}: a directive the generator does not write: {line:?}"
        );
        assert!(
            !value.ends_with('\\'),
            "{key}: {line:?} continues onto the next line"
        );
        if section == Some("[Mount]") {
            mount.push((directive, value));
        }
    }
    if key.contains('/') || !key.ends_with(".mount") {
        assert!(
            mount.is_empty(),
            "{key}: a [Mount] section in a non-mount file"
        );
        return;
    }
    let one = |d: &str| -> String {
        let values: Vec<&str> = mount.iter().filter(|(k, _)| *k == d).map(|x| x.1).collect();
        let [v] = values[..] else {
            panic!("{key}: {d}= appears {} times", values.len());
        };
        match unpercent(v) {
            Some(v) => v,
            None => panic!("{key}: {d}={v:?} has a specifier"),
        }
    };
    let (what, where_, kind) = (one("What"), one("Where"), one("Type"));
    let options = one("Options");
    assert_eq!(
        key,
        path_unit_name(&where_, "mount"),
        "{key}: the name systemd derives from Where={where_:?} differs"
    );
    if kind == "overlay" {
        assert_eq!(stage, Stage::System, "{key}: an overlay in the initrd");
        assert_eq!(what, "overlay", "{key}");
        assert!(
            overlays.contains(where_.as_str()),
            "{key}: an overlay on {where_:?}, which the configuration does not name"
        );
    } else {
        assert_eq!(kind, "none", "{key}: Type={kind:?}");
        assert!(
            options == "bind" || options.starts_with("bind,"),
            "{key}: Options={options:?}"
        );
        assert!(
            binds.contains(&(where_.clone(), what.clone())),
            "{key}: mounts {what:?} on {where_:?}, which the configuration does not name"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::FILE;

    #[test]
    #[should_panic(expected = "which the configuration does not name")]
    fn a_mount_of_a_path_the_configuration_does_not_name_is_caught() {
        let config = tabula_config::parse(
            r#"{"version": 1, "persist": [{"storage": "/persist", "directories": ["/var/log"]}]}"#,
            Path::new(FILE),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut tree = Tree::new();
        tree.insert(
            "etc.mount".into(),
            Node::File("[Mount]\nWhat=/persist/etc\nWhere=/etc\nType=none\nOptions=bind\n".into()),
        );
        check_tree(&config, Stage::System, &tree);
    }

    #[test]
    #[should_panic(expected = "a directive the generator does not write")]
    fn an_injected_directive_is_caught() {
        let config = tabula_config::parse(r#"{"version": 1}"#, Path::new(FILE))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tree = Tree::new();
        tree.insert(
            "x.service".into(),
            Node::File("[Unit]\nDescription=a\nExecStartPre=/bin/rm -rf /\n".into()),
        );
        check_tree(&config, Stage::System, &tree);
    }
}
