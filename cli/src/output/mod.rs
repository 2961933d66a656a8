//! The three forms of `diff`'s answer: a tree for people, JSON for
//! scripts, a `tabula.persist` snippet for the configuration.
//!
//! Names are bytes. The human forms escape them so that every line is one
//! entry: `\\` for a backslash, `\n`, `\t`, `\r`, and `\xNN` for other
//! control characters, for bytes that are not UTF-8 and for a leading
//! space. JSON gives `path`
//! (with U+FFFD for bytes that are not UTF-8) and, only when the path is
//! not UTF-8, `path_bytes`: the exact bytes as a list of numbers.
//!
//! [`print`] picks the form; [`tree`] and [`json`] (with the `--nix`
//! snippet) write them.

use std::collections::BTreeSet;
use std::io::Write;

use crate::diff::{Class, Entry, Kind, Report, is_within};
use crate::{DiffArgs, Env};

mod json;
mod tree;

pub use json::{json, nix};
pub use tree::tree;

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
                        hex(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            hex(&mut out, *b);
        }
    }
    out
}

/// Appends `\xNN`.
fn hex(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(char::from(DIGITS[usize::from(b >> 4)]));
    out.push(char::from(DIGITS[usize::from(b & 0xf)]));
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
#[allow(
    clippy::cast_precision_loss,
    reason = "a size shown with one decimal needs no more than f64's 52 bits"
)]
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

/// Prints the report as `args` asks.
pub fn print(
    report: &Report,
    args: &DiffArgs,
    env: &Env,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let selected: Vec<&Entry> = report
        .entries
        .iter()
        .filter(|e| args.all || e.class == Class::Lost)
        .filter(|e| {
            args.paths.is_empty()
                || args
                    .paths
                    .iter()
                    .any(|p| is_within(&e.path(), p.strip_suffix(b"/").unwrap_or(p)))
        })
        .collect();
    if args.json {
        json(report, &selected, out)
    } else if args.nix {
        nix(report, &selected, &args.paths, out)
    } else {
        // A new directory that holds something not lost, or is not lost
        // itself (the boot makes it again, empty), is shown open.
        let mut open = BTreeSet::new();
        for e in report.entries.iter().filter(|e| e.class != Class::Lost) {
            if e.kind == Kind::Directory {
                open.insert(e.rel.clone());
            }
            let mut rel = e.rel.as_slice();
            while let Some(pos) = rel.iter().rposition(|&b| b == b'/') {
                rel = &rel[..pos];
                open.insert(rel.to_vec());
            }
        }
        tree(&selected, args.expand, &open, env.color, out)?;
        let lost: Vec<&&Entry> = selected.iter().filter(|e| e.class == Class::Lost).collect();
        let regenerated = report
            .entries
            .iter()
            .filter(|e| e.class != Class::Lost)
            .count();
        writeln!(
            out,
            "\n{} lost, {} ({}: {})",
            lost.len(),
            human_size(lost.iter().map(|e| e.size).sum()),
            report.filesystem,
            report.method
        )?;
        if !args.all && regenerated > 0 {
            writeln!(
                out,
                "{regenerated} regenerated entries not shown (--all shows them)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diff::Change;

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

    pub(crate) fn entry(rel: &[u8], kind: Kind, size: u64, class: Class) -> Entry {
        Entry {
            rel: rel.to_vec(),
            kind,
            size,
            mtime: 1_796_083_200,
            change: Change::New,
            class,
        }
    }

    pub(crate) fn report(entries: Vec<Entry>) -> Report {
        Report {
            filesystem: "tmpfs",
            method: String::new(),
            entries,
            storage: "/persist".to_owned(),
        }
    }

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1023), "1023B");
        assert_eq!(human_size(1536), "1.5K");
        assert_eq!(human_size(3 << 20), "3.0M");
    }
}
