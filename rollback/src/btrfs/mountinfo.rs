//! Reading `/proc/self/mountinfo`.

/// Undoes the octal escapes of `/proc/self/mountinfo` (`\\040` for a space).
pub(super) fn unescape_mountinfo(field: &str) -> String {
    String::from_utf8_lossy(&tabula_runtime::escape::unescape_octal(field.as_bytes(), 3))
        .into_owned()
}
