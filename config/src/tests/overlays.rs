//! The overlays: each bad one named, the good ones kept.

use super::*;

#[test]
fn every_bad_overlay_is_named_and_the_good_ones_are_kept_in_mount_point_order() -> TestResult {
    let ov = |fields: &str| {
        format!(r#"{{"lower": ["/l"], "upper": "/u/up", "work": "/u/wk", {fields}}}"#)
    };
    let doc = format!(
        r#"{{"version": 1, "persist": [{{"storage": "/persist", "directories": ["/var/lib"]}}],
        "overlays": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]}}"#,
        ov(r#""where": "/z""#),
        ov(r#""where": "rel""#),
        r#"{"where": "/e", "lower": [], "upper": "/u/up", "work": "/u/wk"}"#,
        ov(r#""where": "/""#),
        r#"{"where": "/n", "lower": ["/l"], "upper": "/u", "work": "/u/wk"}"#,
        r#"{"where": "/i", "lower": ["/l"], "upper": "/i/up", "work": "/u/wk"}"#,
        ov(r#""where": "/o", "mountOptions": ["a b"]"#),
        ov(r#""where": "/o2", "mountOptions": ["upperdir=/x"]"#),
        ov(r#""where": "/b", "before": ["nounit"]"#),
        ov(r#""where": "/z""#),
        ov(r#""where": "/var""#),
        ov(
            r#""where": "/a", "whenMounted": "/mnt/ssd", "mountOptions": ["index=off"], "before": ["x.service"]"#
        ),
    );
    let e = entries_of(&doc)?;
    let lines: Vec<String> = e.overlay_problems.iter().map(ToString::to_string).collect();
    let want = [
        r#"overlays[1].where ("rel"): is not absolute"#,
        r#"overlays[2].lower ("[]"): is empty; expected at least one lower directory; this overlay is skipped, the others are still mounted"#,
        r#"overlays[3].where ("/"): is the root; an overlay on / belongs in the initrd"#,
        r#"overlays[4].work ("/u/wk"): and upper "/u" contain one another"#,
        r#"overlays[5].upper ("/i/up"): or work lies inside the mount point "/i""#,
        r#"overlays[6].mountOptions[0] ("a b"): is not a single mount option"#,
        r#"overlays[7].mountOptions[0] ("upperdir=/x"): sets a directory that tabula sets"#,
        r#"overlays[8].before[0] ("nounit"): "nounit" is not a unit name"#,
        r#"overlays[9].where ("/z"): is already the mount point of overlays[0]; the first is kept"#,
        r#"overlays[10].where ("/var"): overlaps the persisted path "/var/lib" (persist[0].directories[0])"#,
    ];
    for (got, w) in lines.iter().zip(want) {
        assert!(got.starts_with(w), "got {got}\nwant {w}");
    }
    assert_eq!(lines.len(), want.len(), "{}", lines.join("\n"));
    assert!(e.problems.is_empty());
    let kept: Vec<(&str, &str)> = e
        .overlays
        .iter()
        .map(|o| (o.label.as_str(), o.config.where_.as_str()))
        .collect();
    assert_eq!(kept, [("overlays[11]", "/a"), ("overlays[0]", "/z")]);
    Ok(())
}
