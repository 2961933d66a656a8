//! Names the running system resolves: users and groups, systemd units.

/// A user or group name: not empty, at most 256 bytes, not starting with
/// `-`, without `:`, `/`, `,`, spaces or control characters.
pub fn check_user_name(s: &str) -> Result<(), String> {
    let valid = !s.is_empty()
        && s.len() <= 256
        && !s.starts_with('-')
        && !s
            .chars()
            .any(|c| c.is_control() || matches!(c, ':' | '/' | ' ' | ','));
    if valid {
        Ok(())
    } else {
        Err("is not a valid user or group name; expected 1 to 256 bytes, not starting with `-`, without `:`, `/`, `,`, spaces or control characters".to_owned())
    }
}

/// A unit name for `before`: `nix-daemon.service`.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    let valid = name.len() < 256
        && name.contains('.')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err("is not a unit name; expected a name such as \"nix-daemon.service\"".to_owned())
    }
}
