//! The demo: boot the Btrfs scenario twice and say, in plain words, what was
//! erased, what persisted and where the old root went; the machine itself
//! answers with `tabula diff` (boot 1: what the next boot will erase) and
//! `tabula roots` (boot 2: the old roots and what the keep policy does).

use crate::harness::{Ctx, Fs, Spec, ls};
use crate::image::{Mount, subvol};
use crate::initrd::Flavour;
use crate::initrd::Item;
use crate::scenarios::btrfs_rotation::CONFIG;
use crate::{Context, Env, Result, ensure};

const BOOT1: &str = r#"
set -e
mark "boot1-files=$(ls / | paste -sd' ' | tr ' ' '+')"
echo "a note written to the root filesystem during boot 1" >/demo-note.txt
echo "data written during boot 1 to a persisted directory" >/var/lib/tabula-test/notes.txt
chown nobody:nogroup /var/lib/tabula-test/notes.txt; chmod 0640 /var/lib/tabula-test/notes.txt
echo "a secret in a persisted file" >/etc/tabula-test.conf
sync
NO_COLOR=1 /opt/tabula/bin/tabula diff 2>&1 | sed 's/^/@@DIFF /'
"#;

const BOOT2: &str = r#"
mark "note=$([ -e /demo-note.txt ] && echo present || echo absent)"
mark "notes-stat=$(st /var/lib/tabula-test/notes.txt)"
mark "conf-stat=$(st /etc/tabula-test.conf)"
mark "notes-mount=$(findmnt -no SOURCE /var/lib/tabula-test | tr ' ' '+')"
echo "--- boot 2: cat /var/lib/tabula-test/notes.txt"; cat /var/lib/tabula-test/notes.txt
NO_COLOR=1 /opt/tabula/bin/tabula roots 2>&1 | sed 's/^/@@ROOTS /'
"#;

/// Where the demo's guest finds the `tabula` command (copied there at every
/// boot, as a NixOS system has it in its profile).
const TABULA_BIN: &str = "/opt/tabula/bin/tabula";

/// The lines the guest printed with `prefix` (`tabula`'s output).
fn printed<'a>(log: &'a str, prefix: &str) -> Vec<&'a str> {
    log.lines()
        .filter_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .collect()
}

fn say(s: &str) {
    println!("{s}");
}

/// Run the demo; prints the story on stdout.
#[allow(
    clippy::too_many_lines,
    reason = "the demo is one story told in order, boot by boot, as a scenario is"
)]
pub fn run(env: &Env, flavour: Flavour) -> Result<()> {
    let ctx = Ctx::new(env, "demo")?;
    say("tabula demo: a Debian system whose root is a Btrfs subvolume (@root) rolled back by");
    say(&format!(
        "tabula-rollback at every boot ({} initrd), with /persist (@persist) mounted back",
        flavour.name()
    ));
    say(
        "by tabula-generator. Config: /var/lib/tabula-test (nobody:nogroup 0750) and /etc/tabula-test.conf (0600) persist.\n",
    );
    let img = ctx.btrfs_image("disk.img", |m| {
        subvol(&m.p("@root"))?;
        subvol(&m.p("@persist"))?;
        subvol(&m.p("@old_roots"))
    })?;
    let cli = env
        .repo
        .join("target/x86_64-unknown-linux-musl/release/tabula");
    ensure!(
        cli.is_file(),
        "{} missing: build it with cargo build --release --target x86_64-unknown-linux-musl -p tabula-cli (vm-tests/demo.sh does)",
        cli.display()
    );
    let spec = |script: &str| {
        let mut s = Spec::new(flavour, Fs::Btrfs, CONFIG, script);
        s.root_files
            .push((TABULA_BIN.into(), Item::Copy(cli.clone(), 0o755)));
        s
    };
    say("boot 1: booting (QEMU, TCG; about 20 s)...");
    let b1 = ctx.boot("boot1", &img, &spec(BOOT1))?;
    b1.expect_script_ok()?;
    say(&format!(
        "boot 1: up in {:.0} s. Wrote /demo-note.txt on the root, /var/lib/tabula-test/notes.txt and /etc/tabula-test.conf (persisted). Powering off.",
        b1.secs
    ));
    let old_before = ls(&Mount::btrfs(&img)?.p("@old_roots"))?;
    say("boot 2: booting...");
    let diff = printed(&b1.log, "@@DIFF ");
    ensure!(
        diff.iter().any(|l| l.contains("demo-note.txt")),
        "tabula diff in boot 1 does not list /demo-note.txt: {diff:?}; {}",
        b1.describe()
    );
    say(
        "boot 1: `tabula diff` on the machine, before powering off (what the next boot will erase; what\n  systemd-tmpfiles makes at every boot, /var, /tmp and the like, is regenerated and not listed; the\n  rest of this Debian guest's skeleton is copied onto the empty root by the harness, not by NixOS's\n  activation, so it shows as lost; /demo-note.txt is the file that matters):",
    );
    for line in &diff {
        say(&format!("  | {line}"));
    }
    let b2 = ctx.boot("boot2", &img, &spec(BOOT2))?;
    b2.expect_script_ok()?;
    say(&format!("boot 2: up in {:.0} s.\n", b2.secs));

    let m = Mount::btrfs(&img)?;
    let old_after = ls(&m.p("@old_roots"))?;
    let newest: Vec<&String> = old_after
        .iter()
        .filter(|n| !old_before.contains(n))
        .collect();
    ensure!(
        newest.len() == 1,
        "expected one new old root, found {newest:?}"
    );
    let old = newest[0];
    let note = std::fs::read_to_string(m.p(&format!("@old_roots/{old}/demo-note.txt")))
        .ctx(format!("@old_roots/{old}/demo-note.txt"))?;
    ensure!(
        b2.get("note") == Some("absent"),
        "/demo-note.txt survived the reboot: the root was not rolled back; {}",
        b2.describe()
    );
    say("What was erased:");
    say(
        "  /demo-note.txt, written to / during boot 1, is GONE after the reboot: the root is a fresh, empty subvolume.",
    );
    say("What persisted:");
    say(&format!(
        "  /var/lib/tabula-test/notes.txt is still there, owner:group:mode {} (bind-mounted from {}).",
        b2.get("notes-stat").unwrap_or("?"),
        b2.get("notes-mount").unwrap_or("?").replace('+', " ")
    ));
    say(&format!(
        "  /etc/tabula-test.conf is still there, owner:group:mode {}.",
        b2.get("conf-stat").unwrap_or("?")
    ));
    say("Where the old root went:");
    say(&format!(
        "  the root of boot 1 was moved to the subvolume @old_roots/{old} (named after its creation time, UTC);"
    ));
    say(&format!(
        "  it still holds demo-note.txt: \"{}\".",
        note.trim()
    ));
    say(&format!(
        "  @old_roots now holds {} old root(s); once the system is up, tabula-prune.service prunes those older than 30 days (keep.days), the newest always kept (the initrd only swaps).",
        old_after.len()
    ));
    let roots = printed(&b2.log, "@@ROOTS ");
    ensure!(
        roots.iter().any(|l| l.contains(old.as_str())),
        "tabula roots in boot 2 does not list @old_roots/{old}: {roots:?}; {}",
        b2.describe()
    );
    say(
        "`tabula roots` on the machine in boot 2 (the old roots, and what the keep policy does next):",
    );
    for line in &roots {
        say(&format!("  | {line}"));
    }
    say(&format!(
        "\nConsole logs: {} and {}",
        b1.log_path.display(),
        b2.log_path.display()
    ));
    Ok(())
}
