//! Render `nixos-module/rollback-unit.json`, the single definition of the
//! systemd-initrd unit that runs tabula-rollback, into unit-file text, with
//! the per-target dependencies the NixOS module adds the same way.

use crate::{Context, Result, bail};
use serde_json::Value;
use std::fmt::Write as _;

/// What a rollback target waits for in the initrd.
#[derive(Debug, Clone)]
pub enum Needs {
    /// A Btrfs device: After= and Wants= its `.device` unit.
    Device(String),
    /// A ZFS pool: After= and Wants= `zfs-import-<pool>.service`.
    Pool(String),
}

impl Needs {
    /// The unit name this dependency refers to.
    pub fn unit(&self) -> Result<String> {
        match self {
            Needs::Device(dev) => escape_path_unit(dev, "device"),
            Needs::Pool(pool) => Ok(format!("zfs-import-{pool}.service")),
        }
    }
}

/// `systemd-escape --path --suffix=SUFFIX PATH` (the host's, the reference).
pub fn escape_path_unit(path: &str, suffix: &str) -> Result<String> {
    let out = crate::sh::run(
        "systemd-escape",
        &["--path", &format!("--suffix={suffix}"), path],
    )?;
    Ok(out.trim().to_owned())
}

/// The rendered unit plus the `[Install]` links it asks for.
#[derive(Debug)]
pub struct Rendered {
    /// Unit file text.
    pub text: String,
    /// `(target, kind)` pairs from `[Install]`: `("initrd.target", "wants")`.
    pub install: Vec<(String, &'static str)>,
}

/// Render the JSON unit definition. `exec` replaces `@tabulaRollback@`.
pub fn render(json: &str, exec: &str, needs: &[Needs]) -> Result<Rendered> {
    let v: Value = serde_json::from_str(json).ctx("nixos-module/rollback-unit.json")?;
    let Some(obj) = v.as_object() else {
        bail!("nixos-module/rollback-unit.json: expected an object");
    };
    let mut text = String::new();
    let mut install = Vec::new();
    let extra: Vec<String> = needs.iter().map(Needs::unit).collect::<Result<_>>()?;
    // systemd's conventional section order; the JSON map is sorted.
    let mut sections: Vec<&String> = obj.keys().filter(|k| !k.starts_with('_')).collect();
    let rank = |s: &str| {
        ["Unit", "Service", "Install"]
            .iter()
            .position(|x| *x == s)
            .unwrap_or(3)
    };
    sections.sort_by_key(|s| rank(s));
    for section in sections {
        let body = &obj[section.as_str()];
        let Some(body) = body.as_object() else {
            bail!("rollback-unit.json: section {section} is not an object");
        };
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = writeln!(text, "[{section}]");
        for (key, val) in body {
            let mut words: Vec<String> = match val {
                Value::String(s) => vec![s.replace("@tabulaRollback@", exec)],
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        crate::Error(format!(
                            "rollback-unit.json: {section}.{key}: list of strings expected"
                        ))
                    })?,
                other => bail!("rollback-unit.json: {section}.{key}: unsupported value {other}"),
            };
            // Wants=, never Requires= (rollback-unit.json's _comment): a
            // device that never appears fails only its own target.
            if section == "Unit" && (key == "After" || key == "Wants") {
                words.extend(extra.iter().cloned());
            }
            if section == "Install" {
                let kind = match key.as_str() {
                    "WantedBy" => "wants",
                    "RequiredBy" => "requires",
                    _ => bail!("rollback-unit.json: Install.{key} unsupported"),
                };
                install.extend(words.iter().map(|t| (t.clone(), kind)));
            }
            let _ = writeln!(text, "{key}={}", words.join(" "));
        }
        if section == "Unit" && !body.contains_key("Wants") && !extra.is_empty() {
            let _ = writeln!(text, "Wants={}", extra.join(" "));
        }
    }
    Ok(Rendered { text, install })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_repository_unit_with_pool_dependency() -> Result<()> {
        let json = include_str!("../../../nixos-module/rollback-unit.json");
        let r = render(
            json,
            "/usr/bin/tabula-rollback",
            &[Needs::Pool("rpool".into())],
        )?;
        assert!(r.text.contains("[Unit]\n"));
        assert!(r.text.contains("DefaultDependencies=no\n"));
        assert!(r.text.contains("Before=sysroot.mount"));
        let words = |key: &str| -> Vec<String> {
            r.text
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split(' ').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        assert!(words("After=").contains(&"local-fs-pre.target".to_owned()));
        assert!(words("After=").contains(&"zfs-import-rpool.service".to_owned()));
        assert!(words("Wants=").contains(&"zfs-import-rpool.service".to_owned()));
        assert!(words("Wants=").contains(&"local-fs-pre.target".to_owned()));
        assert!(
            r.text
                .contains("ExecStart=/usr/bin/tabula-rollback --config /etc/tabula/config.json\n")
        );
        assert!(!r.text.contains("_comment"));
        assert_eq!(r.install, vec![("initrd.target".to_owned(), "wants")]);
        Ok(())
    }

    #[test]
    fn a_missing_second_disk_cannot_fail_the_unit_by_dependency() -> Result<()> {
        let json = include_str!("../../../nixos-module/rollback-unit.json");
        let r = render(
            json,
            "/usr/bin/tabula-rollback",
            &[
                Needs::Device("/dev/vda".into()),
                Needs::Device("/dev/vdb".into()),
            ],
        )?;
        for dev in ["dev-vda.device", "dev-vdb.device"] {
            let has = |key: &str| {
                r.text
                    .lines()
                    .filter_map(|l| l.strip_prefix(key))
                    .any(|v| v.split(' ').any(|w| w == dev))
            };
            assert!(has("After="), "not ordered after {dev}:\n{}", r.text);
            assert!(has("Wants="), "does not pull in {dev}:\n{}", r.text);
            assert!(
                !has("Requires=") && !has("BindsTo=") && !has("Requisite="),
                "a missing {dev} would fail the whole unit:\n{}",
                r.text
            );
        }
        Ok(())
    }
}
