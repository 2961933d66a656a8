//! The three forms of `diff`'s answer: a tree for people, JSON for
//! scripts, a `tabula.persist` snippet for the configuration.
//!
//! Names are bytes. The human forms escape them so that every line is one
//! entry: `\\` for a backslash, `\n`, `\t`, `\r`, and `\xNN` for other
//! control characters, for bytes that are not UTF-8 and for a leading
//! space. JSON gives `path`
//! (with U+FFFD for bytes that are not UTF-8) and, only when the path is
//! not UTF-8, `path_bytes`: the exact bytes as a list of numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::{Value, json};

use crate::diff::{Change, Class, Entry, Kind, Report};

/// `bytes` for a terminal: see the module documentation.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    // A leading space would read as indentation in the tree.
    let bytes = match bytes.strip_prefix(b" ") {
        Some(rest) => {
            out.push_str("\\x20");
            rest
        }
        None => bytes,
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Undoes [`escape`].
pub fn unescape(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'\\')) => (out.push(b'\\'), i += 2).1,
            (b'\\', Some(b'n')) => (out.push(b'\n'), i += 2).1,
            (b'\\', Some(b't')) => (out.push(b'\t'), i += 2).1,
            (b'\\', Some(b'r')) => (out.push(b'\r'), i += 2).1,
            (b'\\', Some(b'x')) => {
                let v = text
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(v.unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => (out.push(c), i += 1).1,
        }
    }
    out
}

/// `1.5K`, `3.0M`: binary units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

#[derive(Default)]
struct Node {
    /// The entry at this path, if the path is an entry (not only a group).
    entry: Option<usize>,
    children: BTreeMap<Vec<u8>, Node>,
    count: u64,
    size: u64,
    newest: i64,
}

impl Node {
    fn add(&mut self, parts: &[&[u8]], index: usize, e: &Entry) {
        self.count += 1;
        self.size += e.size;
        self.newest = self.newest.max(e.mtime);
        match parts.split_first() {
            None => self.entry = Some(index),
            Some((first, rest)) => self
                .children
                .entry(first.to_vec())
                .or_default()
                .add(rest, index, e),
        }
    }
}

/// The tree: one line per directory group and per entry, largest first.
/// Columns: total size, number of entries at or under the path, newest
/// modification time (UTC), then the name, indented by depth; directories
/// end in `/`. A new directory shows as one line, unless `expand`, or it is
/// in `open` (it holds something that is not lost, worth seeing).
pub fn tree(
    entries: &[&Entry],
    expand: bool,
    open: &BTreeSet<Vec<u8>>,
    color: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let fold = Fold { expand, open };
    let mut root = Node {
        newest: i64::MIN,
        ..Node::default()
    };
    for (i, e) in entries.iter().enumerate() {
        let parts: Vec<&[u8]> = e.rel.split(|&b| b == b'/').collect();
        root.add(&parts, i, e);
    }
    if entries.is_empty() {
        return writeln!(
            out,
            "nothing: the next boot erases nothing that is not made again"
        );
    }
    writeln!(
        out,
        "{:>8}  {:>7}  {:<20}  path",
        "size", "entries", "newest (UTC)"
    )?;
    line(out, &root, entries, b"/", 0, color)?;
    print_children(out, &root, entries, 1, &fold, color)
}

/// Which new directories the tree shows as one line.
struct Fold<'a> {
    expand: bool,
    open: &'a BTreeSet<Vec<u8>>,
}

fn print_children(
    out: &mut dyn Write,
    node: &Node,
    entries: &[&Entry],
    depth: usize,
    fold: &Fold<'_>,
    color: bool,
) -> std::io::Result<()> {
    let mut kids: Vec<(&Vec<u8>, &Node)> = node.children.iter().collect();
    kids.sort_by(|a, b| {
        b.1.size
            .cmp(&a.1.size)
            .then(b.1.count.cmp(&a.1.count))
            .then(a.0.cmp(b.0))
    });
    for (name, child) in kids {
        let is_dir = !child.children.is_empty()
            || child
                .entry
                .is_some_and(|i| entries[i].kind == Kind::Directory);
        let mut shown = name.clone();
        if is_dir {
            shown.push(b'/');
        }
        line(out, child, entries, &shown, depth, color)?;
        let collapsed = !fold.expand
            && child.entry.is_some_and(|i| {
                entries[i].change == Change::New
                    && entries[i].kind == Kind::Directory
                    && !fold.open.contains(&entries[i].rel)
            });
        if !collapsed {
            print_children(out, child, entries, depth + 1, fold, color)?;
        }
    }
    Ok(())
}

fn line(
    out: &mut dyn Write,
    node: &Node,
    entries: &[&Entry],
    name: &[u8],
    depth: usize,
    color: bool,
) -> std::io::Result<()> {
    let why = node.entry.and_then(|i| match &entries[i].class {
        Class::Regenerated(why) => Some(why.as_str()),
        Class::Lost => None,
    });
    let regen = why.is_some();
    let size = format!("{:>8}", human_size(node.size));
    let (bold, dim, reset) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let name = escape(name);
    let newest = tabula_rollback::keep::timestamp_name(node.newest);
    let mark = why.map_or_else(String::new, |why| format!(" (regenerated: {why})"));
    if regen {
        writeln!(
            out,
            "{dim}{size}  {:>7}  {newest:<20}  {}{name}{mark}{reset}",
            node.count,
            "  ".repeat(depth)
        )
    } else {
        writeln!(
            out,
            "{bold}{size}{reset}  {:>7}  {newest:<20}  {}{name}",
            node.count,
            "  ".repeat(depth)
        )
    }
}

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
    let lost: Vec<&&Entry> = entries.iter().filter(|e| e.class == Class::Lost).collect();
    let doc = json!({
        "filesystem": report.filesystem,
        "method": report.method,
        "lost": { "entries": lost.len(), "bytes": lost.iter().map(|e| e.size).sum::<u64>() },
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
                    dirs.push(quoted)
                } else {
                    files.push(quoted)
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

    #[test]
    fn escaped_names_round_trip_and_stay_on_one_line() {
        for name in [
            &b"plain"[..],
            b"new\nline",
            b"tab\there",
            b"back\\slash",
            b"\xff\xfe bad",
            b"caf\xc3\xa9",
            b"\x7f\x01",
            b" lead",
        ] {
            let shown = escape(name);
            assert!(!shown.contains('\n'), "{shown}");
            assert_eq!(unescape(&shown), name, "{shown}");
        }
        assert_eq!(escape("café".as_bytes()), "café");
    }

    fn entry(rel: &[u8], kind: Kind, size: u64, class: Class) -> Entry {
        Entry {
            rel: rel.to_vec(),
            kind,
            size,
            mtime: 1_796_083_200,
            change: Change::New,
            class,
        }
    }

    fn report(entries: Vec<Entry>) -> Report {
        Report {
            filesystem: "tmpfs",
            method: String::new(),
            entries,
            storage: "/persist".to_owned(),
        }
    }

    #[test]
    fn colour_only_when_asked_and_regenerated_lines_are_marked() {
        let r = report(vec![
            entry(
                b"etc/hosts",
                Kind::Symlink,
                0,
                Class::Regenerated("store link".into()),
            ),
            entry(b"etc/x", Kind::File, 5, Class::Lost),
        ]);
        let all: Vec<&Entry> = r.entries.iter().collect();
        let mut plain = Vec::new();
        tree(&all, false, &BTreeSet::new(), false, &mut plain).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        assert!(!plain.contains('\x1b'));
        assert!(
            plain.contains("      hosts (regenerated: store link)\n"),
            "{plain}"
        );
        let mut coloured = Vec::new();
        tree(&all, false, &BTreeSet::new(), true, &mut coloured).unwrap();
        assert!(String::from_utf8(coloured).unwrap().contains("\x1b[1m"));
        assert!(crate::color_wanted(true, None) && crate::color_wanted(true, Some("")));
        assert!(!crate::color_wanted(true, Some("1")) && !crate::color_wanted(false, None));
    }

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

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1023), "1023B");
        assert_eq!(human_size(1536), "1.5K");
        assert_eq!(human_size(3 << 20), "3.0M");
    }
}
