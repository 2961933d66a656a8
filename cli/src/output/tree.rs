//! The tree of `diff`'s human answer: one line per directory group and
//! per entry, largest first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use super::{escape, human_size};
use crate::diff::{Change, Class, Entry, Kind};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::{entry, report};

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
}
