#![allow(clippy::expect_used)] // a benchmark that cannot set up must stop loudly
//! tabula-generator against systemd-fstab-generator on the same work: 1,000
//! and 10,000 persisted directories as bind mounts. Each generator runs as a
//! process into a fresh output directory, as systemd runs it; the figures
//! are wall-clock times per run (median and minimum of several runs).
//!
//!     cargo bench -p tabula-generator --bench vs_fstab_generator
//!
//! `TABULA_BENCH_EXE` points at another tabula-generator (e.g. the static
//! musl release build); `TABULA_BENCH_RUNS` sets the number of runs.
//! This prints figures; it asserts nothing about time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FSTAB_GENERATOR: &str = "/lib/systemd/system-generators/systemd-fstab-generator";

/// systemd gives generators directories on a tmpfs (/run); so do we.
fn out_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

fn time_runs(runs: usize, mut run: impl FnMut(&Path)) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let out = tempfile::tempdir_in(out_base()).expect("tempdir");
        let start = Instant::now();
        run(out.path());
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[0])
}

fn count_units(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".mount"))
                .count()
        })
        .unwrap_or(0)
}

fn main() {
    let exe = std::env::var_os("TABULA_BENCH_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tabula-generator")));
    let runs: usize = std::env::var("TABULA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let fstab_gen = Path::new(FSTAB_GENERATOR);
    if !fstab_gen.exists() {
        eprintln!(
            "NOTE LOUDLY: {FSTAB_GENERATOR} is missing (apt-get install systemd); only tabula is timed"
        );
    }
    println!("tabula-generator: {}", exe.display());
    println!("runs per figure: {runs} (median / min wall-clock per run, process start included)");
    println!("output directories under {}", out_base().display());
    println!();
    println!(
        "{:>8}  {:>22}  {:>22}  {:>8}",
        "paths", "tabula-generator", "systemd-fstab-generator", "speed-up"
    );
    for n in [1_000usize, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs: Vec<String> = (0..n).map(|i| format!("/var/lib/bench/d{i:05}")).collect();
        let config = serde_json::json!({
            "version": 1,
            "persist": [ { "storage": "/persist", "directories": dirs } ]
        });
        // The generator's root: only its configuration is there.
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc/tabula")).expect("mkdir");
        fs::write(root.join("etc/tabula/config.json"), config.to_string()).expect("write");
        let fstab: String = dirs
            .iter()
            .map(|d| {
                format!("/persist{d} {d} none bind,x-systemd.requires-mounts-for=/persist 0 0\n")
            })
            .collect();
        let fstab_path = dir.path().join("fstab");
        fs::write(&fstab_path, fstab).expect("write");

        let mut tabula_units = 0;
        let (t_med, t_min) = time_runs(runs, |out| {
            let st = Command::new(&exe)
                .arg(out)
                .env("TABULA_GENERATOR_ROOT", &root)
                .stderr(Stdio::null())
                .status()
                .expect("run tabula-generator");
            assert!(st.success(), "tabula-generator failed");
            tabula_units = count_units(out);
        });
        assert_eq!(tabula_units, n, "tabula emitted {tabula_units} mount units");
        let fstab_figures = fstab_gen.exists().then(|| {
            let mut units = 0;
            let figures = time_runs(runs, |out| {
                let st = Command::new(fstab_gen)
                    .arg(out)
                    .env("SYSTEMD_FSTAB", &fstab_path)
                    .env("SYSTEMD_PROC_CMDLINE", "")
                    .env("SYSTEMD_LOG_LEVEL", "err")
                    .stderr(Stdio::null())
                    .status()
                    .expect("run systemd-fstab-generator");
                assert!(st.success(), "systemd-fstab-generator failed");
                units = count_units(out);
            });
            assert_eq!(units, n, "fstab-generator emitted {units} mount units");
            figures
        });
        // The floor: creating n files of a unit's size in-process, no
        // process start, no parsing, no formatting.
        let (floor, _) = time_runs(runs, |out| {
            let body = "x".repeat(640);
            for i in 0..n {
                fs::write(out.join(format!("u{i}.mount")), &body).expect("write");
            }
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{n:>8}  floor: creating {n} files of 640 bytes in-process takes {:.2} ms here",
            ms(floor)
        );
        match fstab_figures {
            Some((f_med, f_min)) => println!(
                "{n:>8}  {:>9.2} / {:>7.2} ms  {:>10.2} / {:>7.2} ms  {:>7.1}x",
                ms(t_med),
                ms(t_min),
                ms(f_med),
                ms(f_min),
                ms(f_med) / ms(t_med)
            ),
            None => println!(
                "{n:>8}  {:>9.2} / {:>7.2} ms  {:>22}",
                ms(t_med),
                ms(t_min),
                "n/a"
            ),
        }
    }
}
