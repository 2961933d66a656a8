//! systemd's names for paths, and values that are safe to write into a unit
//! file.
//!
//! [`path_unit_name`] is `unit_name_from_path()` of systemd's
//! `src/basic/unit-name.c`: the name PID 1 expects for the mount unit of a
//! path. It equals `systemd-escape --path --suffix=mount PATH` whenever that
//! name fits in 255 bytes; longer names are truncated and given a SipHash-2-4
//! of the full name, as PID 1 does (since systemd 243), so that the unit
//! still matches its `Where=`.

use std::fmt::Write as _;

/// Longest unit name systemd accepts, plus one (`UNIT_NAME_MAX`).
const UNIT_NAME_MAX: usize = 256;

/// `LONG_UNIT_NAME_HASH_KEY` of systemd's `unit-name.c`.
const LONG_NAME_HASH_KEY: [u8; 16] = [
    0xec, 0xf2, 0x37, 0xfb, 0x58, 0x32, 0x4a, 0x32, 0x84, 0x9f, 0x06, 0x9b, 0x0d, 0x21, 0xeb, 0x9a,
];

/// Appends `systemd-escape --path PATH` for a normalised absolute path (the
/// caller checks that): `/` is `-`, the slashes around are dropped, inner
/// slashes become `-`, and every byte that is not an ASCII letter, digit,
/// `:`, `_` or a non-leading `.` becomes `\xNN`.
fn push_escaped_path(out: &mut String, path: &str) {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        out.push('-');
        return;
    }
    for (i, &b) in trimmed.as_bytes().iter().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i > 0 => out.push('.'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' => out.push(char::from(b)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

/// The name of the unit of type `suffix` (`"mount"`) for `path`, exactly as
/// systemd derives it, including the hashed form of over-long names.
#[must_use]
pub fn path_unit_name(path: &str, suffix: &str) -> String {
    let mut name = String::with_capacity(path.len() + suffix.len() + 16);
    push_escaped_path(&mut name, path);
    name.push('.');
    name.push_str(suffix);
    if name.len() < UNIT_NAME_MAX {
        return name;
    }
    // systemd's siphash24_string() hashes the terminating NUL too.
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    let hash = siphash24(&bytes, &LONG_NAME_HASH_KEY);
    // The hash is stored little-endian and printed byte by byte.
    let mut hex = String::with_capacity(16);
    for b in hash.to_le_bytes() {
        let _ = write!(hex, "{b:02x}");
    }
    let keep = UNIT_NAME_MAX - 1 - suffix.len() - hex.len() - 2;
    // The escaped name is ASCII, so any byte offset is a char boundary.
    format!("{}_{hex}.{suffix}", &name[..keep])
}

/// SipHash-2-4 with a 128-bit key, as systemd's `siphash24()`.
#[must_use]
pub fn siphash24(data: &[u8], key: &[u8; 16]) -> u64 {
    /// One `SipRound`.
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    // The length modulo 256: its lowest byte.
    last[7] = data.len().to_le_bytes()[0];
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The rule for values written into unit files lives with the other
/// rules of the configuration contract.
pub use tabula_config::entries::unit_value_problem;

/// `s` as a unit-file value: `%` doubled so that no specifier is expanded.
/// The caller has checked [`unit_value_problem`].
#[must_use]
pub fn unit_value(s: &str) -> String {
    s.replace('%', "%%")
}

/// `s` as one word of a space-separated list setting such as
/// `RequiresMountsFor=`: double-quoted, with `\` and `"` escaped, `%`
/// doubled.
#[must_use]
pub fn unit_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.:+@=,".contains(&b));
    if plain {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as one lower, upper or work directory in overlayfs options: `\`,
/// `:` and `,` are backslash-escaped, as the kernel's overlayfs parser wants.
#[must_use]
pub fn overlay_dir(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names() {
        assert_eq!(path_unit_name("/", "mount"), "-.mount");
        assert_eq!(path_unit_name("/var/log", "mount"), "var-log.mount");
        assert_eq!(
            path_unit_name("/etc/machine-id", "mount"),
            "etc-machine\\x2did.mount"
        );
        assert_eq!(
            path_unit_name("/home/alice/.ssh", "mount"),
            "home-alice-.ssh.mount"
        );
        assert_eq!(path_unit_name("/.a", "mount"), "\\x2ea.mount");
        assert_eq!(
            path_unit_name("/ä b\\c", "mount"),
            "\\xc3\\xa4\\x20b\\x5cc.mount"
        );
    }

    #[test]
    fn siphash_reference_vector() {
        // The reference vector of the SipHash paper: key 00..0f, message
        // 00..0e (15 bytes).
        let key: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(&msg, &key), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&[], &key), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn long_names_are_hashed_to_255_bytes() {
        let short = format!("/{}", "a".repeat(249));
        assert_eq!(path_unit_name(&short, "mount").len(), 255);
        assert!(!path_unit_name(&short, "mount").contains('_'));
        let long = format!("/{}", "a".repeat(250));
        let name = path_unit_name(&long, "mount");
        assert_eq!(name.len(), 255);
        assert!(name.starts_with(&"a".repeat(232)));
        assert_eq!(&name[232..233], "_");
        assert!(name.ends_with(".mount"));
    }

    #[test]
    fn words_and_values() {
        assert_eq!(unit_word("/persist"), "/persist");
        assert_eq!(unit_word("/a b"), "\"/a b\"");
        assert_eq!(unit_word("/a\"b\\%"), "\"/a\\\"b\\\\%%\"");
        assert_eq!(unit_value("/50%"), "/50%%");
        assert!(unit_value_problem("/a\nb").is_some());
        assert!(unit_value_problem("/a ").is_some());
        assert!(unit_value_problem("/a\\").is_some());
        assert!(unit_value_problem("/a b\\c").is_none());
        assert_eq!(overlay_dir("/a:b,c\\d"), "/a\\:b\\,c\\\\d");
    }
}
