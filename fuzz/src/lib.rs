//! Fuzz targets for what turns untrusted text into actions: the
//! configuration parser (as both binaries call it), systemd unit-name
//! escaping, and the units the generator writes.
//!
//! Each target is a plain function of bytes that panics when a property
//! fails, so that one definition serves two drivers:
//!
//! * `libfuzzer/` (cargo-fuzz, nightly): the long runs, `fuzz/run.sh`;
//! * `tests/smoke.rs` (stable, inside `cargo test`): the checked-in seeds
//!   under `corpus/<target>/` plus a bounded number of mutated inputs.
//!
//! The properties: nothing panics, and no input leads to an action the
//! configuration does not name. For units that means: every mount unit
//! mounts a path the configuration lists, from where the configuration says
//! (storage + path), under the name systemd derives from its `Where=`; every
//! line of every file is a known section or directive (no directive can be
//! injected through a value); `%` is never a specifier; every output path
//! stays inside the output directory.
//!
//! The targets are thin on purpose: they call the public functions
//! (`tabula_config::parse`/`load`, `tabula_generator::{plan, render}` and
//! `tabula_generator::escape`), so they follow a refactoring of what is
//! behind them.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};
use tabula_config::Config;
use tabula_generator::escape::{
    overlay_dir, path_unit_name, unit_value, unit_value_problem, unit_word,
};
use tabula_generator::plan::SYSROOT;
use tabula_generator::{Context, Node, Stage, Tree, plan, render};

/// A fuzz target: bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// The targets by name, as `corpus/<name>/` and `libfuzzer/fuzz_targets/<name>.rs`.
pub const TARGETS: &[(&str, Target)] = &[("config", config), ("escape", escape), ("units", units)];

/// How the file is named in errors; any name works.
const FILE: &str = "/etc/tabula/config.json";
/// The generator's own path, as the prepare service's `ExecStart=` gets it.
const EXE: &str = "/run/current-system/sw/bin/tabula-generator";

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

/// Target `config`: any bytes as the configuration text (invalid UTF-8
/// replaced, so that every input reaches the parser). The parser either
/// refuses with an error naming the file, or accepts a configuration whose
/// units (both stages) keep every property of [`check_units`].
pub fn config(data: &[u8]) {
    check_parsed(&String::from_utf8_lossy(data));
}

/// The same bytes through `tabula_config::load`, as both binaries read
/// their file: the same outcome as [`tabula_config::parse`] of the text, and
/// a refusal naming the file when the bytes are not UTF-8. Writes a scratch
/// file in the temporary directory, so the smoke run uses it, not the
/// libFuzzer loop.
pub fn config_load(data: &[u8]) {
    let file = std::env::temp_dir().join(format!("tabula-fuzz-{}.json", std::process::id()));
    if let Err(e) = std::fs::write(&file, data) {
        panic!("{}: {e}", file.display());
    }
    let loaded = tabula_config::load(&file);
    let _ = std::fs::remove_file(&file);
    match std::str::from_utf8(data) {
        Ok(text) => {
            let parsed = tabula_config::parse(text, &file);
            assert_eq!(loaded, parsed, "load and parse disagree on {text:?}");
            if let Ok(config) = loaded {
                check_units(&config);
            }
        }
        Err(_) => match loaded {
            Ok(_) => panic!("load accepted a file that is not UTF-8"),
            Err(e) => assert!(
                e.to_string().starts_with(&file.display().to_string()),
                "the error does not name the file: {e}"
            ),
        },
    }
}

fn check_parsed(text: &str) {
    match tabula_config::parse(text, Path::new(FILE)) {
        Ok(config) => {
            // What was accepted is JSON with the version this build knows.
            let doc: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => panic!("parse accepted text that is not JSON ({e}): {text:?}"),
            };
            assert_eq!(
                doc.get("version").and_then(Value::as_u64),
                Some(tabula_config::VERSION),
                "parse accepted another version: {text:?}"
            );
            check_units(&config);
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with(FILE) && shown.len() > FILE.len() + 2,
                "an error that does not name the file or says nothing: {shown:?}"
            );
        }
    }
}

/// Target `escape`: any bytes as a path or value. systemd's path escaping
/// is reversible and only uses the characters unit names allow; unit names
/// fit in 255 bytes; values and list words read back as exactly the input,
/// with no specifier, line break or continuation; overlay directories read
/// back as one directory.
pub fn escape(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    let name = path_unit_name(s, "mount");
    assert!(
        name.len() <= 255,
        "path_unit_name({s:?}) is {} bytes",
        name.len()
    );
    let Some(stem) = name.strip_suffix(".mount") else {
        panic!("path_unit_name({s:?}) = {name:?} does not end in .mount");
    };
    assert!(
        stem.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-\\".contains(&b)),
        "path_unit_name({s:?}) = {name:?} has a character unit names do not allow"
    );
    assert!(
        !stem.starts_with('.'),
        "path_unit_name({s:?}) = {name:?} starts with a dot"
    );
    // A name too long for a unit is cut to 232 bytes and given `_` and 16
    // hex digits of its hash (systemd's unit_name_hash_long); any other
    // name is the whole escaped path and reads back.
    let hashed = stem.len() == 249
        && stem.as_bytes()[232] == b'_'
        && stem[233..].bytes().all(|b| b.is_ascii_hexdigit());
    if is_normal_absolute(s) && !hashed {
        assert_eq!(
            unescape_path(stem).as_deref(),
            Some(s),
            "path_unit_name({s:?}) = {name:?} does not read back"
        );
    }

    if unit_value_problem(s).is_none() {
        let v = unit_value(s);
        assert!(
            !v.chars().any(char::is_control),
            "unit_value({s:?}) = {v:?} has a control character"
        );
        assert!(
            !v.ends_with('\\'),
            "unit_value({s:?}) ends with a backslash"
        );
        assert_eq!(v.trim(), v, "unit_value({s:?}) would lose whitespace");
        assert_eq!(
            unpercent(&v).as_deref(),
            Some(s),
            "unit_value({s:?}) = {v:?}"
        );
    }

    if !s.chars().any(char::is_control) {
        let w = unit_word(s);
        assert_eq!(
            read_word(&w).as_deref(),
            Some(s),
            "unit_word({s:?}) = {w:?} does not read back as one word"
        );
    }

    let o = overlay_dir(s);
    assert_eq!(
        read_overlay_dir(&o).as_deref(),
        Some(s),
        "overlay_dir({s:?}) = {o:?} does not read back as one directory"
    );
}

/// Target `units`: the bytes choose a configuration built from tricky path
/// pieces (specifiers, newlines, directives, `..`, `/sysroot`, long names,
/// backslashes, quotes, separators): valid JSON, so that the generator's
/// own checks and units are reached far more often than from raw text.
pub fn units(data: &[u8]) {
    let doc = build_config(&mut Bytes(data));
    let text = doc.to_string();
    check_parsed(&text);
}

/// Every property of the units for `config`, in both stages.
pub fn check_units(config: &Config) {
    for stage in [Stage::System, Stage::Initrd] {
        let plan = plan(config, stage);
        let ctx = Context {
            stage,
            config_path: FILE,
            exe: EXE,
        };
        let tree = render(&plan, &ctx);
        check_tree(config, stage, &tree);
    }
}

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
fn check_tree(config: &Config, stage: Stage, tree: &Tree) {
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

/// Whether `s` is what the generator passes to `path_unit_name`: absolute,
/// no empty, `.` or `..` component, no trailing slash (except `/`).
fn is_normal_absolute(s: &str) -> bool {
    s == "/"
        || (s.starts_with('/')
            && s[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// `systemd-escape --unescape --path`.
fn unescape_path(e: &str) -> Option<String> {
    if e == "-" {
        return Some("/".to_owned());
    }
    let mut bytes = vec![b'/'];
    let b = e.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => bytes.push(b'/'),
            b'\\' => {
                if b.get(i + 1) != Some(&b'x') {
                    return None;
                }
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

/// A unit-file value with `%%` read as `%`; `None` if a lone `%` (a
/// specifier) is left.
fn unpercent(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '%' && chars.next() != Some('%') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// One word of a space-separated list as systemd reads it (`%%` is `%`);
/// `None` unless `w` is exactly one word.
fn read_word(w: &str) -> Option<String> {
    let Some(inner) = w.strip_prefix('"') else {
        let plain = !w.is_empty()
            && !w
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%'));
        return plain.then(|| w.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '"') => out.push(e),
                _ => return None,
            },
            '%' => {
                if chars.next()? != '%' {
                    return None;
                }
                out.push('%');
            }
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// One overlayfs directory option value read back; `None` if an unescaped
/// `:` or `,` would split it.
fn read_overlay_dir(o: &str) -> Option<String> {
    let mut out = String::with_capacity(o.len());
    let mut chars = o.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            ':' | ',' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The fuzzer's bytes, read as choices; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.below(items.len())]
    }
}

/// Pieces paths are made of: ordinary names and everything that has broken
/// escaping or unit files somewhere.
const PIECES: &[&str] = &[
    "/",
    "/",
    "/",
    "var",
    "lib",
    "etc",
    "machine-id",
    "home",
    "alice",
    ".ssh",
    "nix",
    "store",
    ".",
    "..",
    "%",
    "%n",
    "%%",
    "\\",
    "\\x2d",
    "-",
    "\n",
    "\nWhere=/etc",
    "\n[Mount]\nWhat=/",
    " ",
    "\t",
    "\r",
    ":",
    ",",
    "\"",
    "'",
    "=",
    ";",
    "$",
    "*",
    "~",
    "@",
    "#",
    "[Unit]",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{200b}",
    "é",
    "/sysroot",
    "/persist",
    "/mnt/nix-ssd",
    "upper",
    "work",
    "x2d",
    "a.mount",
    "..mount",
    "//",
    "/./",
    "/../",
];

/// Components of well-formed paths, some with characters that need
/// escaping in unit names, unit values or overlayfs options.
const NAMES: &[&str] = &[
    "var",
    "lib",
    "log",
    "etc",
    "machine-id",
    "home",
    "alice",
    ".ssh",
    "nix",
    "store",
    "a b",
    "%n",
    "x%%y",
    "a:b",
    "a,b",
    "back\\slash",
    "quo\"te",
    "é",
    "-",
    "x2d",
    "a.mount",
    "..x",
    "sysroot",
    "persist",
    "upper",
    "work",
];

/// Mostly a well-formed path (so that the generator's units are reached),
/// sometimes anything the pieces make.
fn path(b: &mut Bytes<'_>, absolute: bool) -> String {
    let mut out = String::new();
    if absolute || b.below(8) != 0 {
        out.push('/');
    }
    if b.below(4) != 0 {
        for i in 0..=b.below(3) {
            if i > 0 {
                out.push('/');
            }
            out.push_str(b.pick(NAMES));
        }
        return out;
    }
    for _ in 0..b.below(7) {
        match b.below(24) {
            0 => out.push_str(&"a".repeat(1 + b.below(255) + usize::from(b.byte()))),
            _ => out.push_str(b.pick(PIECES)),
        }
    }
    out
}

fn id(b: &mut Bytes<'_>) -> Value {
    match b.below(4) {
        0 => json!(b.byte()),
        1 => json!("root"),
        2 => json!(path(b, false)),
        _ => json!("alice"),
    }
}

fn entry(b: &mut Bytes<'_>, relative: bool) -> Value {
    let p = if relative {
        path(b, false).trim_start_matches('/').to_owned()
    } else {
        path(b, true)
    };
    if b.below(3) == 0 {
        return json!(p);
    }
    let mut m = Map::new();
    m.insert("path".into(), json!(p));
    if b.flag() {
        m.insert("user".into(), id(b));
    }
    if b.flag() {
        m.insert("group".into(), id(b));
    }
    if b.flag() {
        let modes = [
            "0755", "0700", "0644", "7777", "17777", "+755", "755", "07", "08",
        ];
        m.insert("mode".into(), json!(b.pick(&modes)));
    }
    if b.flag() {
        m.insert("inInitrd".into(), json!(true));
    }
    Value::Object(m)
}

fn list(b: &mut Bytes<'_>, max: usize, item: impl Fn(&mut Bytes<'_>) -> Value) -> Value {
    Value::Array((0..b.below(max + 1)).map(|_| item(b)).collect())
}

fn options(b: &mut Bytes<'_>) -> Value {
    let opts = [
        "noatime",
        "ro",
        "x-gvfs-hide",
        "a,b",
        "",
        "%n",
        "\\",
        "\"",
        "a b",
        "nodev\n",
    ];
    list(b, 2, |b| json!(b.pick(&opts)))
}

fn build_config(b: &mut Bytes<'_>) -> Value {
    let persist = list(b, 3, |b| {
        let mut m = Map::new();
        m.insert("storage".into(), json!(path(b, true)));
        if b.flag() {
            m.insert("hideMounts".into(), json!(b.flag()));
        }
        if b.flag() {
            m.insert("mountOptions".into(), options(b));
        }
        m.insert("directories".into(), list(b, 4, |b| entry(b, false)));
        m.insert("files".into(), list(b, 3, |b| entry(b, false)));
        if b.flag() {
            let mut users = Map::new();
            for _ in 0..b.below(3) {
                let name = b
                    .pick(&["alice", "bob", "root", "a/b", "%n", ""])
                    .to_owned();
                let mut u = Map::new();
                if b.flag() {
                    u.insert("home".into(), json!(path(b, true)));
                }
                u.insert("directories".into(), list(b, 3, |b| entry(b, true)));
                u.insert("files".into(), list(b, 2, |b| entry(b, true)));
                users.insert(name, Value::Object(u));
            }
            m.insert("users".into(), Value::Object(users));
        }
        Value::Object(m)
    });
    let overlays = list(b, 2, |b| {
        let mut m = Map::new();
        m.insert("where".into(), json!(path(b, true)));
        m.insert("lower".into(), list(b, 3, |b| json!(path(b, true))));
        m.insert("upper".into(), json!(path(b, true)));
        m.insert("work".into(), json!(path(b, true)));
        if b.flag() {
            m.insert("whenMounted".into(), json!(path(b, true)));
        }
        let units = [
            "nix-daemon.service",
            "nix-daemon.socket",
            "../x.service",
            "a.service\nWants=b.service",
            "%n.service",
            "x",
            "local-fs.target",
            "b\\x2d.mount",
        ];
        m.insert("before".into(), list(b, 2, |b| json!(b.pick(&units))));
        m.insert("required".into(), json!(b.flag()));
        if b.flag() {
            m.insert("mountOptions".into(), options(b));
        }
        Value::Object(m)
    });
    json!({ "version": 1, "persist": persist, "overlays": overlays })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_used_by_the_properties_undo_the_writers() {
        assert_eq!(
            unescape_path("var-lib\\x2dx").as_deref(),
            Some("/var/lib-x")
        );
        assert_eq!(unescape_path("-").as_deref(), Some("/"));
        assert_eq!(unpercent("a%%b").as_deref(), Some("a%b"));
        assert_eq!(unpercent("a%b"), None);
        assert_eq!(read_word("\"a b\\\"%%\"").as_deref(), Some("a b\"%"));
        assert_eq!(read_word("a b"), None);
        assert_eq!(read_overlay_dir("a\\:b").as_deref(), Some("a:b"));
        assert_eq!(read_overlay_dir("a:b"), None);
        assert!(is_normal_absolute("/a/b") && is_normal_absolute("/"));
        assert!(!is_normal_absolute("/a/") && !is_normal_absolute("/a/../b"));
    }

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
