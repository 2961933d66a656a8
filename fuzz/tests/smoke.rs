//! The bounded fuzz smoke run of `cargo test`: every checked-in seed under
//! `corpus/<target>/`, then mutated seeds (byte flips, insertions of tricky
//! pieces, splices), through the same target functions the libFuzzer run
//! uses. `TABULA_FUZZ_SMOKE_RUNS` (default 3000 per target) and
//! `TABULA_TEST_SEED` (printed) replay a run; a failing input is printed
//! and can be added to the corpus as a seed.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]

use std::path::{Path, PathBuf};

use tabula_testkit::Rng;

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"1",
    b"-1",
    b"1e999",
    b"%",
    b"%n",
    b"\\n",
    b"\\u0000",
    b"\\\\",
    b"\n",
    b"/",
    b"..",
    b"\"version\":1,",
    b"\"persist\"",
    b"\"overlays\"",
    b"\"rollback\"",
    b"\xff",
    b"\xc3\xa9",
    b"/sysroot",
    b"=",
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{}: no seeds", dir.display());
    seeds
}

fn mutate(rng: &mut Rng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut data = rng.pick(seeds).1.clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if at < data.len() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at..end);
            }
            2 => {
                let other = &rng.pick(seeds).1;
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                let t = rng.pick(TOKENS);
                data.splice(at..at, t.iter().copied());
            }
        }
    }
    data
}

fn run(target: &str, f: fn(&[u8])) {
    run_with(target, f, None);
}

/// `also` runs on every seed and on every tenth generated input.
fn run_with(target: &str, f: fn(&[u8]), also: Option<fn(&[u8])>) {
    let seeds = corpus(target);
    for (path, data) in &seeds {
        if std::panic::catch_unwind(|| f(data)).is_err()
            || also.is_some_and(|g| std::panic::catch_unwind(|| g(data)).is_err())
        {
            panic!("{target}: the seed {} fails", path.display());
        }
    }
    let runs: usize = std::env::var("TABULA_FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng::from_env(target);
    for i in 0..runs {
        let data = mutate(&mut rng, &seeds);
        let also = also.filter(|_| i % 10 == 0);
        if std::panic::catch_unwind(|| f(&data)).is_err()
            || also.is_some_and(|g| std::panic::catch_unwind(|| g(&data)).is_err())
        {
            panic!(
                "{target}: generated input {i} fails: {:?} (add it under fuzz/corpus/{target}/ to keep it)",
                String::from_utf8_lossy(&data)
            );
        }
    }
    eprintln!(
        "{target}: {} seeds and {runs} generated inputs passed",
        seeds.len()
    );
}

#[test]
fn no_config_text_panics_the_parser_or_yields_units_it_does_not_name() {
    run_with(
        "config",
        tabula_fuzz::config,
        Some(tabula_fuzz::config_load),
    );
}

#[test]
fn escaping_reads_back_exactly_and_fits_systemd() {
    run("escape", tabula_fuzz::escape);
}

#[test]
fn generated_configs_yield_only_the_units_they_name() {
    run("units", tabula_fuzz::units);
}

#[test]
fn every_target_has_a_libfuzzer_entry_point() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("libfuzzer/fuzz_targets");
    for (name, _) in tabula_fuzz::TARGETS {
        let p = dir.join(format!("{name}.rs"));
        assert!(p.is_file(), "{} missing", p.display());
    }
}
