//! The `zfs` program, run with argument vectors (never a shell), as the
//! rollback runs it: what the sources step asks of it.

use std::collections::HashMap;
use std::process::Command;

use log::{info, warn};
use tabula_config::sources::{is_create_only, zfs_size_bytes};

pub struct Zfs<'a> {
    /// `zfs`, looked up in `PATH`, or a path.
    pub command: &'a str,
}

fn shown(args: &[&str]) -> String {
    let mut s = String::from("zfs");
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// A failed run: its output, for the one message.
struct Failed {
    text: String,
    stderr: String,
}

impl Zfs<'_> {
    fn run(&self, args: &[&str]) -> Result<String, Failed> {
        let out = Command::new(self.command)
            .args(args)
            .env("ZFS_COLOR", "0")
            .output()
            .map_err(|e| Failed {
                text: format!(
                    "cannot run {:?}: {e}; is ZFS installed (tabula-sources.service looks in its PATH)?",
                    self.command
                ),
                stderr: String::new(),
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " ");
        Err(Failed {
            text: format!("`{}` failed ({}): {stderr}", shown(args), out.status),
            stderr,
        })
    }

    fn act(&self, args: &[&str]) -> Result<(), String> {
        info!("running {}", shown(args));
        self.run(args).map(drop).map_err(|f| f.text)
    }

    /// Whether `dataset` exists; `Err` when `zfs` cannot say (a missing
    /// pool is "does not exist" too, and shows when creating).
    fn exists(&self, dataset: &str) -> Result<bool, String> {
        match self.run(&["list", "-H", "-o", "name", dataset]) {
            Ok(_) => Ok(true),
            Err(f) if f.stderr.contains("does not exist") => Ok(false),
            Err(f) => Err(f.text),
        }
    }

    /// Creates `dataset` with `mountpoint=legacy` and `properties` when it
    /// is missing (its missing parents first, `canmount=off`, so that they
    /// are never mounted over anything), or corrects the properties of the
    /// existing one. `Ok(true)`: created now.
    pub fn ensure(&self, dataset: &str, properties: &[(String, String)]) -> Result<bool, String> {
        if self.exists(dataset)? {
            self.correct(dataset, properties)?;
            return Ok(false);
        }
        let pool = dataset.split('/').next().unwrap_or(dataset);
        if !self.exists(pool)? {
            return Err(format!(
                "the pool {pool} of {dataset} is not imported (zpool import {pool}?)"
            ));
        }
        let mut parent = pool.to_owned();
        let parts: Vec<&str> = dataset.split('/').collect();
        for part in &parts[1..parts.len() - 1] {
            parent.push('/');
            parent.push_str(part);
            if !self.exists(&parent)? {
                self.act(&["create", "-o", "canmount=off", &parent])?;
            }
        }
        let options: Vec<String> = std::iter::once("mountpoint=legacy".to_owned())
            .chain(properties.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let mut args = vec!["create"];
        for o in &options {
            args.push("-o");
            args.push(o);
        }
        args.push(dataset);
        self.act(&args)?;
        info!("created the dataset {dataset} ({})", options.join(", "));
        Ok(true)
    }

    /// Sets every property of `properties` that `dataset` does not have,
    /// logging each; refuses a dataset that tabula cannot mount.
    pub fn correct(&self, dataset: &str, properties: &[(String, String)]) -> Result<(), String> {
        let mut names = String::from("mountpoint,canmount");
        for (k, _) in properties {
            names.push(',');
            names.push_str(k);
        }
        let out = self
            .run(&["get", "-H", "-p", "-o", "property,value", &names, dataset])
            .map_err(|f| f.text)?;
        let current: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('\t')).collect();
        match current.get("mountpoint") {
            Some(&"legacy") => {}
            other => {
                return Err(format!(
                    "the dataset {dataset} has mountpoint={}; tabula mounts it itself and only with mountpoint=legacy: check that nothing uses it there, then zfs set mountpoint=legacy {dataset}",
                    other.unwrap_or(&"?")
                ));
            }
        }
        if current.get("canmount") == Some(&"off") {
            return Err(format!(
                "the dataset {dataset} has canmount=off and cannot be mounted: zfs set canmount=on {dataset}"
            ));
        }
        for (k, v) in properties {
            let now = current.get(k.as_str()).copied().unwrap_or("-");
            let same = match zfs_size_bytes(k, v) {
                Some(bytes) => now.parse::<u64>() == Ok(bytes),
                None => now == v,
            };
            if same {
                continue;
            }
            if is_create_only(k) {
                warn!(
                    "{dataset}: {k} is {now}, the configuration says {v}; ZFS sets {k} only when a dataset is created, so it is left as it is"
                );
                continue;
            }
            self.act(&["set", &format!("{k}={v}"), dataset])?;
            info!("{dataset}: {k} was {now}, set to {v} as the configuration says");
        }
        Ok(())
    }
}
