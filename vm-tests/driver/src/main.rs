//! `tabula-vm`: run the QEMU boot scenarios.
//!
//!   tabula-vm list                 names and what each proves
//!   tabula-vm run [NAME...]        run all (or the named) scenarios
//!   tabula-vm run --set default|extended   run one of the two sets
//!   tabula-vm prepare              build initrds and base images only
//!   tabula-vm demo [scripted|systemd]  boot the Btrfs demo twice, tell the story

#![warn(clippy::pedantic)]

use std::process::ExitCode;
use std::time::Instant;
use tabula_vm_tests::harness::Outcome;
use tabula_vm_tests::{Env, image, initrd, scenarios};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("run", &[][..]),
    };
    match cmd {
        "list" => {
            for s in scenarios::all() {
                let set = if scenarios::is_extended(s.name) {
                    "extended"
                } else {
                    "default"
                };
                println!("{:28} {set:8} {}", s.name, s.proves);
            }
            ExitCode::SUCCESS
        }
        "prepare" => match prepare() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tabula-vm: {e}");
                ExitCode::FAILURE
            }
        },
        "run" => run(rest),
        "demo" => {
            let flavour = match rest.first().map(String::as_str) {
                Some("scripted") => initrd::Flavour::Scripted,
                None | Some("systemd") => initrd::Flavour::Systemd,
                Some(other) => {
                    eprintln!("tabula-vm demo: unknown flavour {other:?} (scripted or systemd)");
                    return ExitCode::from(2);
                }
            };
            match Env::discover().and_then(|env| tabula_vm_tests::demo::run(&env, flavour)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tabula-vm demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: tabula-vm list | prepare | run [--set default|extended] [SCENARIO...] | demo [scripted|systemd]"
            );
            ExitCode::from(2)
        }
    }
}

fn prepare() -> tabula_vm_tests::Result<()> {
    let env = Env::discover()?;
    for f in initrd::Flavour::ALL {
        initrd::base(&env, f)?;
    }
    image::btrfs_base(&env)?;
    if env.zfs {
        image::zfs_base(&env)?;
    }
    Ok(())
}

fn run(names: &[String]) -> ExitCode {
    let env = match Env::discover() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tabula-vm: {e}");
            return ExitCode::from(2);
        }
    };
    let all = scenarios::all();
    let mut set = None;
    let mut names = names;
    if let [flag, value, rest @ ..] = names {
        if flag == "--set" {
            match value.as_str() {
                "default" => set = Some(false),
                "extended" => set = Some(true),
                other => {
                    eprintln!("tabula-vm: unknown set {other:?} (default or extended)");
                    return ExitCode::from(2);
                }
            }
            names = rest;
        }
    }
    for n in names {
        if !all.iter().any(|s| s.name == n) {
            eprintln!("tabula-vm: unknown scenario {n:?} (see `tabula-vm list`)");
            return ExitCode::from(2);
        }
    }
    let selected: Vec<_> = all
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .filter(|s| set.is_none_or(|extended| scenarios::is_extended(s.name) == extended))
        .collect();
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    let mut lines = Vec::new();
    for s in &selected {
        eprintln!("\n=== {} ({})", s.name, s.proves);
        let t = Instant::now();
        let r = if s.zfs && !env.zfs {
            Ok(Outcome::Skip(
                "ZFS modules not built (vm-tests/setup.sh --no-zfs was used)".into(),
            ))
        } else {
            (s.run)(&env)
        };
        let secs = t.elapsed().as_secs_f64();
        let line = match r {
            Ok(Outcome::Pass) => {
                pass += 1;
                format!("PASS  {:28} {secs:6.1} s", s.name)
            }
            Ok(Outcome::Skip(why)) => {
                skip += 1;
                eprintln!("!!! SKIPPED {}: {why}", s.name);
                format!("SKIP  {:28} {secs:6.1} s  {why}", s.name)
            }
            Err(e) => {
                fail += 1;
                eprintln!("!!! FAILED {}: {e}", s.name);
                format!("FAIL  {:28} {secs:6.1} s  {e}", s.name)
            }
        };
        eprintln!("{line}");
        lines.push(line);
    }
    println!("\nVM scenarios (console logs in {}):", env.logs.display());
    for l in &lines {
        println!("{}", l.lines().next().unwrap_or_default());
    }
    if skip > 0 {
        println!("{pass} passed, {fail} failed, {skip} skipped");
    } else {
        println!("{pass} passed, {fail} failed");
    }
    if fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
