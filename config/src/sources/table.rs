//! The value table of `config/sources.json`: which ZFS properties a
//! directory's own dataset may set and what each takes, and the Btrfs
//! compression values; read once, and the checks of one value against it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::TABLE_JSON;

/// One rule of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub(super) enum Rule {
    Enum {
        values: Vec<String>,
        #[serde(default, rename = "createOnly")]
        create_only: bool,
    },
    BlockSize {
        min: u64,
        max: u64,
        zero: bool,
    },
    Quantity,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ZfsTable {
    pub(super) properties: BTreeMap<String, Rule>,
    quantity_suffixes: BTreeMap<String, u64>,
    quantity_max_bytes: u64,
    pub(super) refused: BTreeMap<String, String>,
    user_property: UserPropertyRule,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserPropertyRule {
    name_max_bytes: usize,
    value_max_bytes: usize,
}

#[derive(Debug, Deserialize)]
struct BtrfsTable {
    compression: Rule,
}

impl Default for BtrfsTable {
    fn default() -> Self {
        BtrfsTable {
            compression: Rule::Enum {
                values: Vec::new(),
                create_only: false,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Table {
    pub(super) zfs: ZfsTable,
    btrfs: BtrfsTable,
}

pub(super) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is part of the source tree and a test parses it; were it
        // broken, the empty table refuses every value instead of panicking.
        serde_json::from_str(TABLE_JSON).unwrap_or_default()
    })
}

/// Whether ZFS takes `name` only when a dataset is created
/// (`casesensitivity`, `normalization`, `utf8only`): a difference found
/// later is reported, not corrected.
#[must_use]
pub fn is_create_only(name: &str) -> bool {
    matches!(
        table().zfs.properties.get(name),
        Some(Rule::Enum {
            create_only: true,
            ..
        })
    )
}

fn block_size_text(v: u64) -> String {
    if v >= 1 << 20 && v % (1 << 20) == 0 {
        format!("{}M", v >> 20)
    } else if v >= 1 << 10 && v % (1 << 10) == 0 {
        format!("{}K", v >> 10)
    } else {
        v.to_string()
    }
}

fn enum_text(values: &[String]) -> String {
    let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("one of {}", shown.join(", "))
}

/// Splits `123K` into (123, "K"); digits only, at most `max_digits`.
fn number_and_suffix(s: &str, max_digits: usize) -> Option<(u64, String)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > max_digits {
        return None;
    }
    let n = s[..digits].parse().ok()?;
    Some((n, s[digits..].to_ascii_uppercase()))
}

fn check_rule(rule: &Rule, value: &str) -> Result<(), String> {
    match rule {
        Rule::Enum { values, .. } => {
            if values.iter().any(|v| v == value) {
                Ok(())
            } else {
                Err(format!("expected {}", enum_text(values)))
            }
        }
        Rule::BlockSize { min, max, zero } => {
            let expected = || {
                format!(
                    "expected a power of two from {} to {}, in bytes or with K or M (\"{}\", \"16K\", \"1M\"){}",
                    block_size_text(*min),
                    block_size_text(*max),
                    min,
                    if *zero { ", or \"0\"" } else { "" }
                )
            };
            let (n, suffix) = number_and_suffix(value, 9).ok_or_else(expected)?;
            let unit: u64 = match suffix.as_str() {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                _ => return Err(expected()),
            };
            let bytes = n.checked_mul(unit).ok_or_else(expected)?;
            if (*zero && bytes == 0) || (bytes.is_power_of_two() && (*min..=*max).contains(&bytes))
            {
                Ok(())
            } else {
                Err(expected())
            }
        }
        Rule::Quantity => {
            let t = &table().zfs;
            let expected = || {
                format!(
                    "expected \"none\" or a size in bytes, optionally with K, M, G, T, P or E (\"10G\"), of at most {} bytes",
                    t.quantity_max_bytes
                )
            };
            if value == "none" {
                return Ok(());
            }
            let (n, suffix) = number_and_suffix(value, 18).ok_or_else(expected)?;
            let unit = *t.quantity_suffixes.get(&suffix).ok_or_else(expected)?;
            if n <= t.quantity_max_bytes / unit {
                Ok(())
            } else {
                Err(expected())
            }
        }
    }
}

fn is_user_property_name(name: &str) -> bool {
    name.contains(':')
        && name.len() <= table().zfs.user_property.name_max_bytes
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.:".contains(&b))
}

/// Checks one ZFS property; `Err` says what is wrong and what is allowed.
pub fn check_zfs_property(name: &str, value: &str) -> Result<(), String> {
    let t = &table().zfs;
    if let Some(why) = t.refused.get(name) {
        return Err(format!("cannot be set here: {why}"));
    }
    if let Some(rule) = t.properties.get(name) {
        return check_rule(rule, value).map_err(|why| format!("is {value:?}; {why}"));
    }
    if is_user_property_name(name) {
        let max = t.user_property.value_max_bytes;
        if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
            return Err(format!(
                "is {value:?}; a user property's value is expected non-empty, at most {max} bytes, without control characters"
            ));
        }
        return Ok(());
    }
    let known: Vec<&str> = t.properties.keys().map(String::as_str).collect();
    Err(format!(
        "is not a ZFS property tabula sets; expected one of {}, or a user property such as \"com.example:backup\" (lowercase, with a ':')",
        known.join(", ")
    ))
}

/// The number of bytes a size property's value stands for (`"8K"` →
/// 8192, `"none"` → 0), as `zfs get -p` prints it; `None` for a property
/// that is not a size, or a value that is not one. Comparing these, not the
/// strings, tells whether a dataset already has the configured value.
#[must_use]
pub fn zfs_size_bytes(name: &str, value: &str) -> Option<u64> {
    let t = &table().zfs;
    match t.properties.get(name)? {
        Rule::Enum { .. } => None,
        Rule::BlockSize { .. } => {
            let (n, suffix) = number_and_suffix(value, 9)?;
            match suffix.as_str() {
                "" => Some(n),
                "K" => n.checked_mul(1 << 10),
                "M" => n.checked_mul(1 << 20),
                _ => None,
            }
        }
        Rule::Quantity => {
            if value == "none" {
                return Some(0);
            }
            let (n, suffix) = number_and_suffix(value, 18)?;
            n.checked_mul(*t.quantity_suffixes.get(&suffix)?)
        }
    }
}

/// Checks a Btrfs `compression` value (`None` is always fine).
pub fn check_btrfs_compression(value: &str) -> Result<(), String> {
    check_rule(&table().btrfs.compression, value).map_err(|why| format!("is {value:?}; {why}"))
}
