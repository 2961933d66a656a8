//! Configurations built from the fuzzer's bytes: valid JSON made of tricky
//! path pieces, so that the generator's own checks and units are reached
//! far more often than from raw text.

use serde_json::{Map, Value, json};

/// The fuzzer's bytes, read as choices; zeros once exhausted.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.below(items.len())]
    }
}

/// Pieces paths are made of: ordinary names and everything that has broken
/// escaping or unit files somewhere.
const PIECES: &[&str] = &[
    "/",
    "/",
    "/",
    "var",
    "lib",
    "etc",
    "machine-id",
    "home",
    "alice",
    ".ssh",
    "nix",
    "store",
    ".",
    "..",
    "%",
    "%n",
    "%%",
    "\\",
    "\\x2d",
    "-",
    "\n",
    "\nWhere=/etc",
    "\n[Mount]\nWhat=/",
    " ",
    "\t",
    "\r",
    ":",
    ",",
    "\"",
    "'",
    "=",
    ";",
    "$",
    "*",
    "~",
    "@",
    "#",
    "[Unit]",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{200b}",
    "é",
    "/sysroot",
    "/persist",
    "/mnt/nix-ssd",
    "upper",
    "work",
    "x2d",
    "a.mount",
    "..mount",
    "//",
    "/./",
    "/../",
];

/// Components of well-formed paths, some with characters that need
/// escaping in unit names, unit values or overlayfs options.
const NAMES: &[&str] = &[
    "var",
    "lib",
    "log",
    "etc",
    "machine-id",
    "home",
    "alice",
    ".ssh",
    "nix",
    "store",
    "a b",
    "%n",
    "x%%y",
    "a:b",
    "a,b",
    "back\\slash",
    "quo\"te",
    "é",
    "-",
    "x2d",
    "a.mount",
    "..x",
    "sysroot",
    "persist",
    "upper",
    "work",
];

/// Mostly a well-formed path (so that the generator's units are reached),
/// sometimes anything the pieces make.
fn path(b: &mut Bytes<'_>, absolute: bool) -> String {
    let mut out = String::new();
    if absolute || b.below(8) != 0 {
        out.push('/');
    }
    if b.below(4) != 0 {
        for i in 0..=b.below(3) {
            if i > 0 {
                out.push('/');
            }
            out.push_str(b.pick(NAMES));
        }
        return out;
    }
    for _ in 0..b.below(7) {
        match b.below(24) {
            0 => out.push_str(&"a".repeat(1 + b.below(255) + usize::from(b.byte()))),
            _ => out.push_str(b.pick(PIECES)),
        }
    }
    out
}

fn id(b: &mut Bytes<'_>) -> Value {
    match b.below(4) {
        0 => json!(b.byte()),
        1 => json!("root"),
        2 => json!(path(b, false)),
        _ => json!("alice"),
    }
}

fn entry(b: &mut Bytes<'_>, relative: bool) -> Value {
    let p = if relative {
        path(b, false).trim_start_matches('/').to_owned()
    } else {
        path(b, true)
    };
    if b.below(3) == 0 {
        return json!(p);
    }
    let mut m = Map::new();
    m.insert("path".into(), json!(p));
    if b.flag() {
        m.insert("user".into(), id(b));
    }
    if b.flag() {
        m.insert("group".into(), id(b));
    }
    if b.flag() {
        let modes = [
            "0755", "0700", "0644", "7777", "17777", "+755", "755", "07", "08",
        ];
        m.insert("mode".into(), json!(b.pick(&modes)));
    }
    if b.flag() {
        m.insert("inInitrd".into(), json!(true));
    }
    Value::Object(m)
}

fn list(b: &mut Bytes<'_>, max: usize, item: impl Fn(&mut Bytes<'_>) -> Value) -> Value {
    Value::Array((0..b.below(max + 1)).map(|_| item(b)).collect())
}

fn options(b: &mut Bytes<'_>) -> Value {
    let opts = [
        "noatime",
        "ro",
        "x-gvfs-hide",
        "a,b",
        "",
        "%n",
        "\\",
        "\"",
        "a b",
        "nodev\n",
    ];
    list(b, 2, |b| json!(b.pick(&opts)))
}

pub(crate) fn build_config(b: &mut Bytes<'_>) -> Value {
    let persist = list(b, 3, |b| {
        let mut m = Map::new();
        m.insert("storage".into(), json!(path(b, true)));
        if b.flag() {
            m.insert("hideMounts".into(), json!(b.flag()));
        }
        if b.flag() {
            m.insert("mountOptions".into(), options(b));
        }
        m.insert("directories".into(), list(b, 4, |b| entry(b, false)));
        m.insert("files".into(), list(b, 3, |b| entry(b, false)));
        if b.flag() {
            let mut users = Map::new();
            for _ in 0..b.below(3) {
                let name = b
                    .pick(&["alice", "bob", "root", "a/b", "%n", ""])
                    .to_owned();
                let mut u = Map::new();
                if b.flag() {
                    u.insert("home".into(), json!(path(b, true)));
                }
                u.insert("directories".into(), list(b, 3, |b| entry(b, true)));
                u.insert("files".into(), list(b, 2, |b| entry(b, true)));
                users.insert(name, Value::Object(u));
            }
            m.insert("users".into(), Value::Object(users));
        }
        Value::Object(m)
    });
    let overlays = list(b, 2, |b| {
        let mut m = Map::new();
        m.insert("where".into(), json!(path(b, true)));
        m.insert("lower".into(), list(b, 3, |b| json!(path(b, true))));
        m.insert("upper".into(), json!(path(b, true)));
        m.insert("work".into(), json!(path(b, true)));
        if b.flag() {
            m.insert("whenMounted".into(), json!(path(b, true)));
        }
        let units = [
            "nix-daemon.service",
            "nix-daemon.socket",
            "../x.service",
            "a.service\nWants=b.service",
            "%n.service",
            "x",
            "local-fs.target",
            "b\\x2d.mount",
        ];
        m.insert("before".into(), list(b, 2, |b| json!(b.pick(&units))));
        m.insert("required".into(), json!(b.flag()));
        if b.flag() {
            m.insert("mountOptions".into(), options(b));
        }
        Value::Object(m)
    });
    json!({ "version": 1, "persist": persist, "overlays": overlays })
}
