//! The builder every unit file and drop-in is written with, one line at a
//! time, each value escaped by the rule of its kind.

use super::{Context, DOCUMENTATION, HEADER, Node};
use crate::escape::{unit_value, unit_word};

/// One unit file or drop-in, written line by line in the order it reads:
///
/// ```text
/// UnitFile::new()          # the two-line header
///     .blank()             #
///     .section("Unit")     # [Unit]
///     .set("Before", ..)   # Before=...
/// ```
///
/// Every value goes through the one escaping rule of its kind: [`set`]
/// doubles `%` (no specifier is expanded; the plan has refused control
/// characters, edge whitespace and trailing backslashes), [`words`] quotes
/// each word of a space-separated path list ([`unit_word`]).
///
/// [`set`]: UnitFile::set
/// [`words`]: UnitFile::words
pub(crate) struct UnitFile(String);

impl UnitFile {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push_str(HEADER);
        UnitFile(out)
    }

    pub(crate) fn blank(&mut self) -> &mut Self {
        self.0.push('\n');
        self
    }

    pub(crate) fn comment(&mut self, line: &str) -> &mut Self {
        self.0.push_str("# ");
        self.0.push_str(line);
        self.0.push('\n');
        self
    }

    pub(crate) fn section(&mut self, name: &str) -> &mut Self {
        self.0.push('[');
        self.0.push_str(name);
        self.0.push_str("]\n");
        self
    }

    /// `key=` the concatenation of `parts`, each with `%` doubled.
    pub(crate) fn set_parts(&mut self, key: &str, parts: &[&str]) -> &mut Self {
        self.0.push_str(key);
        self.0.push('=');
        for part in parts {
            push_value(&mut self.0, part);
        }
        self.0.push('\n');
        self
    }

    /// `key=value`, `%` doubled.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.set_parts(key, &[value])
    }

    /// `key=a b c`: names (units), separated by spaces, `%` doubled.
    pub(crate) fn list<S: AsRef<str>>(&mut self, key: &str, items: &[S]) -> &mut Self {
        self.joined(key, items.iter().map(AsRef::as_ref), ' ')
    }

    /// `key=` the `items` separated by `separator`, each with `%` doubled.
    pub(crate) fn joined<'a>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = &'a str>,
        separator: char,
    ) -> &mut Self {
        self.0.push_str(key);
        self.0.push('=');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.0.push(separator);
            }
            push_value(&mut self.0, item);
        }
        self.0.push('\n');
        self
    }

    /// `key="a" b`: paths or arguments, each quoted as needed.
    pub(crate) fn words<S: AsRef<str>>(&mut self, key: &str, words: &[S]) -> &mut Self {
        self.0.push_str(key);
        self.0.push('=');
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                self.0.push(' ');
            }
            self.0.push_str(&unit_word(word.as_ref()));
        }
        self.0.push('\n');
        self
    }

    /// `key=` each chunk of at most `per_line` items, as [`Self::list`].
    pub(crate) fn list_lines<S: AsRef<str>>(
        &mut self,
        key: &str,
        items: &[S],
        per_line: usize,
    ) -> &mut Self {
        for chunk in items.chunks(per_line) {
            self.list(key, chunk);
        }
        self
    }

    /// `key=` each chunk of at most `per_line` items, as [`Self::words`].
    pub(crate) fn words_lines<S: AsRef<str>>(
        &mut self,
        key: &str,
        items: &[S],
        per_line: usize,
    ) -> &mut Self {
        for chunk in items.chunks(per_line) {
            self.words(key, chunk);
        }
        self
    }

    /// `Documentation=` and `SourcePath=`, which every file has.
    pub(crate) fn origin(&mut self, ctx: &Context<'_>) -> &mut Self {
        self.set("Documentation", DOCUMENTATION)
            .set("SourcePath", ctx.config_path)
    }

    pub(crate) fn finish(&mut self) -> Node {
        Node::File(std::mem::take(&mut self.0))
    }
}

/// Appends `s` as a unit-file value (see [`unit_value`]) without an
/// intermediate string: this runs once per setting per mount at every boot.
pub(super) fn push_value(out: &mut String, s: &str) {
    if s.contains('%') {
        out.push_str(&unit_value(s));
    } else {
        out.push_str(s);
    }
}
