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
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]
// A property that does not hold panics: that is how a fuzz target reports.
#![allow(clippy::missing_panics_doc)]

mod check;
mod generate;
mod readback;

use std::path::Path;

use serde_json::Value;
use tabula_config::Config;
use tabula_generator::escape::{
    overlay_dir, path_unit_name, unit_value, unit_value_problem, unit_word,
};
use tabula_generator::{Context, Stage, plan, render};

use check::check_tree;
use generate::{Bytes, build_config};
use readback::{is_normal_absolute, read_overlay_dir, read_word, unescape_path, unpercent};

/// A fuzz target: bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// The targets by name, as `corpus/<name>/` and `libfuzzer/fuzz_targets/<name>.rs`.
pub const TARGETS: &[(&str, Target)] = &[("config", config), ("escape", escape), ("units", units)];

/// How the file is named in errors; any name works.
const FILE: &str = "/etc/tabula/config.json";
/// The generator's own path, as the prepare service's `ExecStart=` gets it.
const EXE: &str = "/run/current-system/sw/bin/tabula-generator";

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
