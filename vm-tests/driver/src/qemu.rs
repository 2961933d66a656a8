//! Booting QEMU (TCG only) and reading its serial console.
//!
//! Every boot runs with `-no-reboot` and `panic=-1`, so a guest panic or
//! reboot ends QEMU; a deadline kills QEMU by its PID. The guest speaks in
//! lines `@@TABULA key=value ...`; everything else is kept as the console
//! log, which is saved for every boot (and named in the error of a failed one).

use crate::env::Env;
use crate::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The marker prefix of guest output.
pub const MARK: &str = "@@TABULA ";

/// One VM boot.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Name of this boot (log file name).
    pub name: String,
    /// The initramfs.
    pub initrd: PathBuf,
    /// Kernel command line after the harness's own parameters.
    pub append: String,
    /// Raw disk images, in order (vda, vdb, ...).
    pub disks: Vec<PathBuf>,
    /// Script run by the guest (stage 2, or the initrd in script mode).
    pub script: Option<String>,
    /// Wall-clock limit; QEMU is killed after it.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub mem_mb: u32,
    /// Where the guest's real-time clock starts (`-rtc base=`); `None`: the
    /// host's time.
    pub rtc_base: Option<String>,
}

/// How QEMU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// QEMU exited by itself (guest power-off, reboot or panic).
    Exited(Option<i32>),
    /// Killed on purpose by the hook (crash injection).
    Killed,
    /// Killed because the deadline passed.
    TimedOut,
}

/// What a boot produced.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The console log.
    pub log: String,
    /// Marker lines, without the prefix.
    pub marks: Vec<String>,
    /// How it ended.
    pub end: End,
    /// Wall-clock seconds from spawn to end.
    pub secs: f64,
    /// Where the log was saved.
    pub log_path: PathBuf,
}

impl Boot {
    /// The value of the first `key=value` marker word with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.marks.iter().find_map(|m| {
            m.split_whitespace()
                .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        })
    }

    /// Every value of `key=value` marker words with this key, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.marks
            .iter()
            .flat_map(|m| m.split_whitespace())
            .filter_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .collect()
    }

    /// Whether a marker starts with `word`.
    pub fn has(&self, word: &str) -> bool {
        self.marks
            .iter()
            .any(|m| m.split_whitespace().next() == Some(word))
    }

    /// The stage-1 rollback's own log lines that delete something
    /// (`delete subvolume ...`, `running zfs destroy ...`): the lines of the
    /// first `tabula-rollback[pid]` in the console (stage 1 runs before the
    /// pruning unit of stage 2, which logs under another pid).
    pub fn stage1_deletions(&self) -> Vec<&str> {
        let Some(pid) = self.log.lines().find_map(|l| {
            let rest = &l[l.find("tabula-rollback[")? + "tabula-rollback[".len()..];
            Some(&rest[..rest.find(']')?])
        }) else {
            return Vec::new();
        };
        let tag = format!("tabula-rollback[{pid}]:");
        self.log
            .lines()
            .filter(|l| {
                l.contains(&tag) && (l.contains("delete subvolume") || l.contains("destroy"))
            })
            .collect()
    }

    /// Fail unless stage 1 deleted nothing (the common case: pruning is
    /// the job of the unit after boot), and unless the console shows the
    /// stage-1 rollback at all.
    pub fn expect_stage1_deleted_nothing(&self) -> Result<()> {
        if !self.log.contains("tabula-rollback[") {
            bail!(
                "no tabula-rollback log line in the console; {}",
                self.describe()
            );
        }
        let d = self.stage1_deletions();
        if !d.is_empty() {
            bail!(
                "stage 1 deleted something in the common case:\n{}\n{}",
                d.join("\n"),
                self.describe()
            );
        }
        Ok(())
    }

    /// Fail unless the pruning unit ran to success in this boot (the guest
    /// script called `wait_prune`).
    pub fn expect_pruned(&self) -> Result<()> {
        if self.get("prune-result") != Some("success") || self.get("prune-status") != Some("0") {
            bail!(
                "tabula-prune.service did not succeed: prune-result={:?} prune-status={:?}; {}",
                self.get("prune-result"),
                self.get("prune-status"),
                self.describe()
            );
        }
        Ok(())
    }

    /// A uniform description for errors: how it ended and where the log is.
    pub fn describe(&self) -> String {
        format!(
            "boot ended {:?} after {:.1} s; console log: {}",
            self.end,
            self.secs,
            self.log_path.display()
        )
    }

    /// Fail unless the guest script ran to the end with status 0 and the
    /// guest powered off by itself.
    pub fn expect_script_ok(&self) -> Result<()> {
        if self.get("script-exit") != Some("0") || !matches!(self.end, End::Exited(_)) {
            let tail: Vec<&str> = self.log.lines().rev().take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "the guest script did not finish cleanly (script-exit={:?}); {}\n--- last console lines:\n{}",
                self.get("script-exit"),
                self.describe(),
                tail.join("\n")
            );
        }
        Ok(())
    }
}

/// What the line hook asks for.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// Go on.
    Continue,
    /// Kill QEMU (SIGKILL, a power cut) after this delay.
    KillAfter(Duration),
}

/// Boot and wait for the end; `hook` sees every console line.
#[allow(
    clippy::too_many_lines,
    reason = "one QEMU run in order: its command line (a third of it), the console loop with kill and timeout, the log; splitting out the command line is the natural next step"
)]
pub fn boot(env: &Env, vm: &Vm, hook: &mut dyn FnMut(&str) -> Hook) -> Result<Boot> {
    let mut args: Vec<String> = vec![
        "-machine".into(),
        "q35".into(),
        "-accel".into(),
        "tcg,thread=multi".into(),
        "-cpu".into(),
        "max".into(),
        "-smp".into(),
        "2".into(),
        "-m".into(),
        vm.mem_mb.to_string(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-serial".into(),
        "stdio".into(),
        "-no-reboot".into(),
        "-kernel".into(),
        env.vmlinuz.display().to_string(),
        "-initrd".into(),
        vm.initrd.display().to_string(),
        "-append".into(),
        // no_timer_check: under TCG on a loaded host the kernel's IO-APIC
        // timer check can fail and panic ("IO-APIC + timer doesn't work!")
        // before anything of the scenario ran.
        format!("console=ttyS0 panic=-1 no_timer_check {}", vm.append),
    ];
    if let Some(base) = &vm.rtc_base {
        args.push("-rtc".into());
        args.push(format!("base={base}"));
    }
    for d in &vm.disks {
        args.push("-drive".into());
        args.push(format!(
            "file={},format=raw,if=virtio,cache=unsafe",
            d.display()
        ));
    }
    if let Some(s) = &vm.script {
        let p = env.work.join(format!("{}.script.sh", vm.name));
        std::fs::write(&p, s).ctx(p.display())?;
        args.push("-fw_cfg".into());
        args.push(format!("name=opt/tabula/script,file={}", p.display()));
    }
    let t0 = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ctx("qemu-system-x86_64 (run vm-tests/setup.sh)")?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<String>();
    let Some(stdout) = child.stdout.take() else {
        bail!("qemu: no stdout pipe");
    };
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take();
    let deadline = t0 + vm.timeout;
    let mut kill_at: Option<Instant> = None;
    let mut log = String::new();
    let mut marks = Vec::new();
    let mut end = None;
    loop {
        let now = Instant::now();
        let limit = kill_at.map_or(deadline, |k| k.min(deadline));
        if now >= limit {
            let _ = child.kill(); // SIGKILL to this QEMU's PID only
            end = Some(if kill_at.is_some_and(|k| k <= deadline) {
                End::Killed
            } else {
                End::TimedOut
            });
            break;
        }
        match rx.recv_timeout(limit - now) {
            Ok(line) => {
                if let Some(i) = line.find(MARK) {
                    marks.push(line[i + MARK.len()..].trim().to_owned());
                }
                // The hook sees every line; only its first kill request counts.
                if let Hook::KillAfter(d) = hook(&line) {
                    if kill_at.is_none() {
                        kill_at = Some(Instant::now() + d);
                    }
                }
                log.push_str(&line);
                log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().ctx(format!("waiting for qemu pid {pid}"))?;
    let _ = reader.join();
    let mut err = String::new();
    if let Some(e) = stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    if !err.trim().is_empty() {
        log.push_str("\n--- qemu stderr:\n");
        log.push_str(&err);
    }
    let end = end.unwrap_or(End::Exited(status.code()));
    let log_path = env.logs.join(format!("{}.log", vm.name));
    std::fs::write(&log_path, &log).ctx(log_path.display())?;
    if let End::Exited(Some(c)) = end {
        if c != 0 {
            bail!(
                "qemu exited with status {c}: {}; console log: {}",
                err.trim(),
                log_path.display()
            );
        }
    }
    Ok(Boot {
        log,
        marks,
        end,
        secs: t0.elapsed().as_secs_f64(),
        log_path,
    })
}

/// Copy a disk image (sparse, reflinked where the filesystem can).
pub fn copy_image(from: &Path, to: &Path) -> Result<()> {
    crate::sh::run(
        "cp",
        &[
            "--sparse=always",
            "--reflink=auto",
            &from.display().to_string(),
            &to.display().to_string(),
        ],
    )?;
    Ok(())
}
