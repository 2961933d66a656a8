//! The octal escapes the kernel and ZFS write into the text they print.

/// Decodes octal escapes: a backslash followed by exactly `digits` octal
/// digits stands for one byte (`\040` for a space in `/proc/self/mountinfo`,
/// with 3 digits; `\0040` in `zfs diff` output, with 4). Anything else is
/// kept as it is; a value above 255 becomes `?`.
#[must_use]
pub fn unescape_octal(field: &[u8], digits: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 1 + digits)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 1 + digits;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
