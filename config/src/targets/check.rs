//! Reading one rollback target and checking its fields, alone and against
//! each other.

use serde::de;
use serde_json::Value;

use super::RollbackTarget;
use crate::document::kind;
use crate::names;

pub(crate) type FieldError = (String, String);

pub(crate) fn parse_target(value: Value, at: &str) -> Result<RollbackTarget, FieldError> {
    let Value::Object(mut map) = value else {
        return Err((
            at.to_owned(),
            format!("is {}, expected an object with a \"type\"", kind(&value)),
        ));
    };
    let ty = map.remove("type");
    let value = Value::Object(map);
    let target = match ty.as_ref().and_then(Value::as_str) {
        Some("btrfs") => RollbackTarget::Btrfs(typed(value, at)?),
        Some("zfs") => RollbackTarget::Zfs(typed(value, at)?),
        _ => {
            let shown = ty.map_or_else(|| "missing".to_owned(), |t| t.to_string());
            return Err((
                format!("{at}.type"),
                format!("is {shown}; expected \"btrfs\" or \"zfs\""),
            ));
        }
    };
    check_target(&target, at)?;
    Ok(target)
}

fn typed<T: de::DeserializeOwned>(value: Value, at: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let field = if inner == "." || inner.is_empty() {
            at.to_owned()
        } else {
            format!("{at}.{inner}")
        };
        (field, e.inner().to_string())
    })
}

fn field_check(
    at: &str,
    key: &str,
    value: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<(), FieldError> {
    check(value).map_err(|why| (format!("{at}.{key}"), format!("{value:?} {why}")))
}

fn check_target(target: &RollbackTarget, at: &str) -> Result<(), FieldError> {
    match target {
        RollbackTarget::Btrfs(b) => {
            field_check(at, "device", &b.device, names::check_absolute_path)?;
            if b.device == "/" {
                return Err((
                    format!("{at}.device"),
                    "\"/\" is not a device; expected a path such as \"/dev/disk/by-label/nixos\""
                        .to_owned(),
                ));
            }
            for (i, opt) in b.mount_options.iter().enumerate() {
                field_check(
                    at,
                    &format!("mountOptions[{i}]"),
                    opt,
                    names::check_btrfs_mount_option,
                )?;
            }
            field_check(at, "subvolume", &b.subvolume, names::check_root_subvolume)?;
            if let Some(blank) = &b.blank {
                field_check(at, "blank", blank, names::check_subvolume)?;
            }
            if let Some(old) = &b.old_roots {
                field_check(at, "oldRoots", old, names::check_subvolume)?;
            }
            let named = [
                ("subvolume", Some(&b.subvolume)),
                ("blank", b.blank.as_ref()),
                ("oldRoots", b.old_roots.as_ref()),
            ];
            for (ka, a) in named {
                for (kb, b) in named {
                    if let (Some(a), Some(b)) = (a, b) {
                        if ka != kb && names::is_within(a, b) {
                            return Err((
                                format!("{at}.{ka}"),
                                format!(
                                    "{a:?} is {} `{kb}` ({b:?}); expected separate subvolumes",
                                    if a == b { "the same as" } else { "inside" }
                                ),
                            ));
                        }
                    }
                }
            }
            if b.wait_seconds > 3600 {
                return Err((
                    format!("{at}.waitSeconds"),
                    format!(
                        "{} is more than an hour; expected at most 3600",
                        b.wait_seconds
                    ),
                ));
            }
        }
        RollbackTarget::Zfs(z) => {
            field_check(at, "dataset", &z.dataset, names::check_root_dataset)?;
            field_check(at, "snapshot", &z.snapshot, names::check_snapshot)?;
            if let Some(old) = &z.old_roots {
                field_check(at, "oldRoots", old, names::check_zfs_old_roots)?;
                if old.split('/').next() != Some(z.pool()) {
                    return Err((
                        format!("{at}.oldRoots"),
                        format!(
                            "{old:?} is not in the pool {:?}; expected a dataset in the same pool, such as \"{}/local/old_roots\"",
                            z.pool(),
                            z.pool()
                        ),
                    ));
                }
                if names::is_within(old, &z.dataset) || names::is_within(&z.dataset, old) {
                    return Err((
                        format!("{at}.oldRoots"),
                        format!(
                            "{old:?} and the dataset {:?} contain one another; expected separate datasets",
                            z.dataset
                        ),
                    ));
                }
            }
            field_check(at, "zfsCommand", &z.zfs_command, names::check_zfs_command)?;
        }
    }
    let keep = match target {
        RollbackTarget::Btrfs(b) => b.keep,
        RollbackTarget::Zfs(z) => z.keep,
    };
    if let (Some(max), min) = (keep.max, keep.min) {
        if max < min {
            return Err((
                format!("{at}.keep.max"),
                format!(
                    "{max} is below keep.min ({min}); min wins, so set max to at least {min} or to null"
                ),
            ));
        }
    }
    Ok(())
}
