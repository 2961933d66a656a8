use super::*;

#[test]
fn absolute_paths() {
    for ok in ["/", "/var/log", "/home/alice/.ssh", "/with space/é"] {
        assert_eq!(check_absolute_path(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "var/log",
        "/var//log",
        "/var/log/",
        "/var/./log",
        "/var/../etc",
        "/a\nb",
        "/a\0b",
        "/a\tb",
    ] {
        assert!(check_absolute_path(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn relative_paths() {
    assert_eq!(check_relative_path(".ssh"), Ok(()));
    assert_eq!(check_relative_path("a/b c"), Ok(()));
    for bad in ["", "/abs", "a/../b", "..", "a/", "a\nb"] {
        assert!(check_relative_path(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn subvolumes() {
    for ok in ["@root", "root", "nixos/root", "@old_roots", "a.b"] {
        assert_eq!(check_subvolume(ok), Ok(()), "{ok}");
    }
    for bad in [
        "", "/@root", "..", "@root/..", "a//b", "a/", "./a", "a\nb", "a\0b",
    ] {
        assert!(check_subvolume(bad).is_err(), "{bad:?} accepted");
    }
    assert!(check_subvolume(&"x".repeat(256)).is_err());
}

#[test]
fn datasets_and_snapshots() {
    for ok in ["rpool/local/root", "tank", "rpool/a_b-c.d:e"] {
        assert_eq!(check_dataset(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "/rpool",
        "rpool/",
        "rpool//x",
        "rpool/x@blank",
        "rpool/../x",
        "rpool/a b",
        "1pool",
        "rpool/x\n",
    ] {
        assert!(check_dataset(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(check_snapshot("blank"), Ok(()));
    for bad in ["", "a/b", "@blank", "bl ank", ".."] {
        assert!(check_snapshot(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn joins_put_exactly_one_slash_between_the_parts() {
    assert_eq!(join("/home/a", ".ssh"), "/home/a/.ssh");
    assert_eq!(join("/", "x"), "/x");
    assert_eq!(join("/persist", "/var/log"), "/persist/var/log");
    assert_eq!(join("/persist/", "var"), "/persist/var");
    assert_eq!(join_name("", "@root"), "@root");
    assert_eq!(join_name("@old", "x"), "@old/x");
    assert_eq!(
        join_name("rpool/old", "2026-11-21T00:00:00Z"),
        "rpool/old/2026-11-21T00:00:00Z"
    );
}

#[test]
fn within() {
    assert!(is_within("/a/b", "/a"));
    assert!(is_within("/a", "/a"));
    assert!(!is_within("/ab", "/a"));
    assert!(is_within("/anything", "/"));
    assert!(is_within("@old/x", "@old"));
    assert!(!is_within("@old_roots", "@old"));
}
