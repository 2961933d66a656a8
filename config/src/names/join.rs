//! Putting names together (`join`, `join_name`) and comparing them
//! component-wise (`is_within`).

/// `base` + `/` + `rel`, for absolute paths: `join("/home/a", ".ssh")` is
/// `/home/a/.ssh`, `join("/", "x")` is `/x`. A leading `/` of `rel` is
/// dropped, so `join("/persist", "/var/log")` is `/persist/var/log`.
#[must_use]
pub fn join(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    let rel = rel.trim_start_matches('/');
    let mut out = String::with_capacity(base.len() + 1 + rel.len());
    out.push_str(base);
    out.push('/');
    out.push_str(rel);
    out
}

/// `parent` + `/` + `name` for names relative to a filesystem's top level or
/// a pool (subvolumes, datasets): an empty `parent` is the top level, so
/// `join_name("", "@root")` is `@root`, `join_name("@old", "x")` is `@old/x`.
#[must_use]
pub fn join_name(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        let mut out = String::with_capacity(parent.len() + 1 + name.len());
        out.push_str(parent);
        out.push('/');
        out.push_str(name);
        out
    }
}

/// Whether `inner` is `outer` or lies below it, component-wise
/// (`/a/bc` is not inside `/a/b`).
#[must_use]
pub fn is_within(inner: &str, outer: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    match inner.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || outer.is_empty(),
        None => false,
    }
}
