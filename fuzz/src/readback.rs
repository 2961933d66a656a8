//! Reading back what the generator wrote, as systemd and the kernel read
//! it: path escapes, `%` specifiers, list words, overlayfs options.

/// Whether `s` is what the generator passes to `path_unit_name`: absolute,
/// no empty, `.` or `..` component, no trailing slash (except `/`).
pub(crate) fn is_normal_absolute(s: &str) -> bool {
    s == "/"
        || (s.starts_with('/')
            && s[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// `systemd-escape --unescape --path`.
pub(crate) fn unescape_path(e: &str) -> Option<String> {
    if e == "-" {
        return Some("/".to_owned());
    }
    let mut bytes = vec![b'/'];
    let b = e.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => bytes.push(b'/'),
            b'\\' => {
                if b.get(i + 1) != Some(&b'x') {
                    return None;
                }
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

/// A unit-file value with `%%` read as `%`; `None` if a lone `%` (a
/// specifier) is left.
pub(crate) fn unpercent(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '%' && chars.next() != Some('%') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// One word of a space-separated list as systemd reads it (`%%` is `%`);
/// `None` unless `w` is exactly one word.
pub(crate) fn read_word(w: &str) -> Option<String> {
    let Some(inner) = w.strip_prefix('"') else {
        let plain = !w.is_empty()
            && !w
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%'));
        return plain.then(|| w.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '"') => out.push(e),
                _ => return None,
            },
            '%' => {
                if chars.next()? != '%' {
                    return None;
                }
                out.push('%');
            }
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// One overlayfs directory option value read back; `None` if an unescaped
/// `:` or `,` would split it.
pub(crate) fn read_overlay_dir(o: &str) -> Option<String> {
    let mut out = String::with_capacity(o.len());
    let mut chars = o.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            ':' | ',' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_used_by_the_properties_undo_the_writers() {
        assert_eq!(
            unescape_path("var-lib\\x2dx").as_deref(),
            Some("/var/lib-x")
        );
        assert_eq!(unescape_path("-").as_deref(), Some("/"));
        assert_eq!(unpercent("a%%b").as_deref(), Some("a%b"));
        assert_eq!(unpercent("a%b"), None);
        assert_eq!(read_word("\"a b\\\"%%\"").as_deref(), Some("a b\"%"));
        assert_eq!(read_word("a b"), None);
        assert_eq!(read_overlay_dir("a\\:b").as_deref(), Some("a:b"));
        assert_eq!(read_overlay_dir("a:b"), None);
        assert!(is_normal_absolute("/a/b") && is_normal_absolute("/"));
        assert!(!is_normal_absolute("/a/") && !is_normal_absolute("/a/../b"));
    }
}
