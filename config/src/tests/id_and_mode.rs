//! Owners and modes as JSON values, and the error text of a bad one.

use super::*;

#[test]
fn ids_accept_names_and_numbers() -> TestResult {
    let doc = r#"{"version": 1, "persist": [{"storage": "/p", "files": [
        {"path": "/a", "user": 1000, "group": "100"}, {"path": "/b", "user": "alice", "group": "users"}]}]}"#;
    let c = parse_str(doc)?;
    let files = &c.persist[0].files;
    assert_eq!(files[0].0.user, Some(Id::Numeric(1000)));
    assert_eq!(files[0].0.group, Some(Id::Numeric(100)));
    assert_eq!(files[1].0.user, Some(Id::Name("alice".into())));
    assert!(parse_str(r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "user": 4294967295}]}]}"#).is_err());
    assert!(parse_str(r#"{"version": 1, "persist": [{"storage": "/p", "files": [{"path": "/a", "user": -1}]}]}"#).is_err());
    Ok(())
}

fn entry_error(entry: &str) -> String {
    refused(&format!(
        r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{entry}]}}]}}"#
    ))
}

#[test]
fn mode_strings_are_three_or_four_octal_digits_and_nothing_else() -> TestResult {
    for bad in ["+755", "7", "75", "07555", "0758", "-755", "0x75", " 755"] {
        let e = entry_error(&format!(r#"{{"path": "/a", "mode": "{bad}"}}"#));
        assert!(
            e.contains(&format!(
                "{bad:?} is not a mode; expected 3 or 4 octal digits as a string, such as \"0755\""
            )),
            "{e}"
        );
    }
    let mode = |m: &str| {
        let doc = format!(
            r#"{{"version": 1, "persist": [{{"storage": "/p", "files": [{{"path": "/a", "mode": "{m}"}}]}}]}}"#
        );
        parse_str(&doc).map(|c| c.persist[0].files[0].0.mode)
    };
    assert_eq!(mode("755")?, Some(Mode(0o755)));
    assert_eq!(mode("0700")?, Some(Mode(0o700)));
    assert_eq!(mode("7777")?, Some(Mode(0o7777)));
    assert_eq!(mode("000")?, Some(Mode(0)));
    assert_eq!(Mode(0o755).to_string(), "0755");
    assert_eq!(Mode(0o7).to_string(), "0007");
    assert_eq!(Mode(0o4750).to_string(), "4750");
    Ok(())
}

#[test]
fn error_text_names_the_value_and_what_is_expected() {
    assert_eq!(Id::Name("alice".into()).to_string(), "alice");
    assert_eq!(Id::Numeric(1000).to_string(), "1000");
    let e = entry_error(r#"{"path": "/a", "user": true}"#);
    assert!(
        e.contains("persist[0].files[0].user: invalid type: boolean `true`, expected a user or group name, or a numeric id"),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "group": "a:b"}"#);
    assert!(
        e.contains(r#"persist[0].files[0].group: "a:b" is not a valid user or group name; expected 1 to 256 bytes"#),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": "4294967295"}"#);
    assert!(
        e.contains("4294967295 is out of range for a user or group id"),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": "99999999999999999999"}"#);
    assert!(
        e.contains(r#""99999999999999999999" is out of range"#),
        "{e}"
    );
    let e = entry_error(r#"{"path": "/a", "user": 4294967295}"#);
    assert!(
        e.contains("4294967295 is out of range for a user or group id"),
        "{e}"
    );
    let e = entry_error("7");
    assert!(
        e.contains("persist[0].files[0]: invalid type: integer `7`, expected a path string or an object with `path`"),
        "{e}"
    );
    let whole = ConfigError {
        file: "/x.json".into(),
        field: String::new(),
        message: "m".into(),
    };
    assert_eq!(whole.to_string(), "/x.json: m");
    let field = ConfigError {
        field: "a.b".into(),
        ..whole
    };
    assert_eq!(field.to_string(), "/x.json: a.b: m");
    assert!(refused("[]").contains("the document is a list, expected a JSON object"));
    assert!(refused("{}").contains("version: is missing"));
}
