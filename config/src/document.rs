//! The whole file: how it is read, and what it holds once read.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::targets::{RollbackTarget, check_distinct_targets, parse_target};
use crate::{ConfigError, Overlay, Persist, VERSION, dup, entries};

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub rollback: Vec<RollbackTarget>,
    pub persist: Vec<Persist>,
    pub overlays: Vec<Overlay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[allow(dead_code)]
    version: Value,
    #[serde(default)]
    rollback: Vec<Value>,
    #[serde(default)]
    persist: Vec<Persist>,
    #[serde(default)]
    overlays: Vec<Overlay>,
}

/// Reads and parses the file at `file`; see [`parse`].
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_owned(),
        field: String::new(),
        message: format!("cannot read the configuration: {e}; expected the JSON file written by tabula's NixOS module"),
    })?;
    parse(&text, file)
}

/// Everything the file at `path` alone decides, as one error per problem:
/// the document (syntax, version, keys, types, every rollback target) and
/// every persisted entry and overlay. Empty means valid: a boot would refuse
/// nothing of it without looking at a disk. Reads the file and nothing else.
#[must_use]
pub fn check_file(path: &Path) -> Vec<ConfigError> {
    match load(path) {
        Err(e) => vec![e],
        Ok(config) => entries::check_entries(&config)
            .all_problems()
            .map(|p| ConfigError {
                file: path.to_owned(),
                field: p.label.clone(),
                message: format!("{:?} {}; {}", p.value, p.message, p.skipped),
            })
            .collect(),
    }
}

/// Parses and checks a configuration document; `file` only names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let err = |field: &str, message: String| ConfigError {
        file: file.to_owned(),
        field: field.to_owned(),
        message,
    };
    match dup::find_duplicate(text) {
        Err(e) => return Err(err("", format!("is not valid JSON: {e}"))),
        Ok(Some(d)) => {
            return Err(err(
                &d.path,
                format!(
                    "the key {:?} appears twice in one object; JSON readers disagree on which one wins, so expected each key once: remove one",
                    d.key
                ),
            ));
        }
        Ok(None) => {}
    }
    let doc: Value =
        serde_json::from_str(text).map_err(|e| err("", format!("is not valid JSON: {e}")))?;
    let Value::Object(top) = &doc else {
        return Err(err(
            "",
            format!("the document is {}, expected a JSON object", kind(&doc)),
        ));
    };
    match top.get("version") {
        None => {
            return Err(err(
                "version",
                format!(
                    "is missing; expected `\"version\": {VERSION}` (this is tabula's configuration format version)"
                ),
            ));
        }
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(err(
                "version",
                format!(
                    "is {v}; this tabula understands only version {VERSION}: regenerate the file with the matching NixOS module"
                ),
            ));
        }
    }
    let raw: RawConfig = serde_path_to_error::deserialize(doc)
        .map_err(|e| err(&e.path().to_string(), e.inner().to_string()))?;
    let rollback = raw
        .rollback
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_target(v, &format!("rollback[{i}]")).map_err(|(f, m)| err(&f, m)))
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct_targets(&rollback).map_err(|(f, m)| err(&f, m))?;
    Ok(Config {
        rollback,
        persist: raw.persist,
        overlays: raw.overlays,
    })
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
