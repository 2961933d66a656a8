//! `diff --json` (for scripts) and `diff --nix` (a `tabula.persist`
//! snippet for the configuration).

use std::io::Write;

use serde_json::{Value, json};

use super::escape;
use crate::diff::{Change, Class, Entry, Kind, Report};

/// The JSON document: see docs/cli.md.
pub fn json(report: &Report, entries: &[&Entry], out: &mut dyn Write) -> std::io::Result<()> {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let path = e.path();
            let mut v = json!({
                "path": String::from_utf8_lossy(&path),
                "type": e.kind.name(),
                "size": e.size,
                "mtime": e.mtime,
                "change": match e.change { Change::New => "new", Change::Modified => "modified" },
                "class": match e.class { Class::Lost => "lost", Class::Regenerated(_) => "regenerated" },
            });
            if let (Class::Regenerated(why), Some(map)) = (&e.class, v.as_object_mut()) {
                map.insert("reason".into(), json!(why));
            }
            if std::str::from_utf8(&path).is_err() {
                if let Some(map) = v.as_object_mut() {
                    map.insert("path_bytes".into(), json!(path));
                }
            }
            v
        })
        .collect();
    let lost_ones: Vec<&&Entry> = entries.iter().filter(|e| e.class == Class::Lost).collect();
    let doc = json!({
        "filesystem": report.filesystem,
        "method": report.method,
        "lost": { "entries": lost_ones.len(), "bytes": lost_ones.iter().map(|e| e.size).sum::<u64>() },
        "entries": list,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// A `tabula.persist` snippet: the `paths` given, or else the outermost
/// lost entries (a new directory rather than what it holds).
pub fn nix(
    report: &Report,
    selected: &[&Entry],
    paths: &[Vec<u8>],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let picks: Vec<(Vec<u8>, bool)> = if paths.is_empty() {
        let lost: Vec<&&Entry> = selected.iter().filter(|e| e.class == Class::Lost).collect();
        let wholly_lost_dir = |e: &Entry| {
            e.kind == Kind::Directory
                && e.change == Change::New
                && !report
                    .entries
                    .iter()
                    .any(|o| o.class != Class::Lost && crate::diff::is_within(&o.rel, &e.rel))
        };
        let tops: Vec<&Entry> = lost
            .iter()
            .map(|e| **e)
            .filter(|e| wholly_lost_dir(e))
            .collect();
        lost.iter()
            .filter(|e| {
                !tops
                    .iter()
                    .any(|t| t.rel != e.rel && crate::diff::is_within(&e.rel, &t.rel))
            })
            .filter(|e| e.kind != Kind::Directory || wholly_lost_dir(e))
            .map(|e| (e.path(), e.kind == Kind::Directory))
            .collect()
    } else {
        paths
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(b"/").unwrap_or(p);
                let is_dir = report
                    .entries
                    .iter()
                    .any(|e| e.rel == rel && e.kind == Kind::Directory)
                    || report
                        .entries
                        .iter()
                        .any(|e| e.rel.starts_with(rel) && e.rel.get(rel.len()) == Some(&b'/'));
                (p.clone(), is_dir)
            })
            .collect()
    };
    for (path, is_dir) in picks {
        match String::from_utf8(path) {
            Ok(p) if !p.chars().any(char::is_control) => {
                let quoted = format!(
                    "\"{}\"",
                    p.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace("${", "\\${")
                );
                if is_dir {
                    dirs.push(quoted);
                } else {
                    files.push(quoted);
                }
            }
            Ok(p) => skipped.push(escape(p.as_bytes())),
            Err(e) => skipped.push(escape(e.as_bytes())),
        }
    }
    writeln!(out, "tabula.persist.\"{}\" = {{", report.storage)?;
    for (key, list) in [("directories", &dirs), ("files", &files)] {
        if !list.is_empty() {
            writeln!(out, "  {key} = [")?;
            for p in list {
                writeln!(out, "    {p}")?;
            }
            writeln!(out, "  ];")?;
        }
    }
    writeln!(out, "}};")?;
    for s in skipped {
        writeln!(
            out,
            "# not listed: {s} (a control character or bytes that are not UTF-8 cannot be a persisted path)"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::{entry, report};

    #[test]
    fn nix_snippet_for_given_paths_knows_files_from_directories() {
        let r = report(vec![
            entry(b"var/lib/app", Kind::Directory, 0, Class::Lost),
            entry(b"var/lib/app/db", Kind::File, 9, Class::Lost),
            entry(b"etc/quote\"d", Kind::File, 1, Class::Lost),
        ]);
        let all: Vec<&Entry> = r.entries.iter().collect();
        let mut out = Vec::new();
        nix(
            &r,
            &all,
            &[b"/var/lib/app".to_vec(), b"/etc/quote\"d".to_vec()],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "tabula.persist.\"/persist\" = {\n  directories = [\n    \"/var/lib/app\"\n  ];\n  files = [\n    \"/etc/quote\\\"d\"\n  ];\n};\n"
        );
    }
}
