//! A `log` backend that writes each record to the kernel log, so that it is
//! in `dmesg` at once and in the journal after boot:
//!
//! ```text
//! <30>tabula-rollback[412]: moved @root to @old_roots/2026-11-21T23:56:00Z
//! ```
//!
//! The priority is the syslog facility `daemon` plus the level (error 3,
//! warning 4, info 6, debug 7), which journald reads back as the message's
//! priority and `tabula-rollback` as its identifier.
//!
//! `/dev/kmsg` is opened anew for every line: the kernel rate-limits writes
//! per open file (10 lines per 5 s unless `printk.devkmsg=on`), and a
//! rotation that prunes 40 old roots must not lose the lines that say so.
//! When the kernel log cannot be written (no `/dev/kmsg` in a container, not
//! root) the line goes to stderr instead; when stderr is a terminal (someone
//! runs the program by hand) it goes there as well.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

const IDENT: &str = "tabula-rollback";
/// `LOG_DAEMON`.
const FACILITY: u8 = 3 << 3;
/// The kernel keeps at most this much of one record (`PRINTK_MESSAGE_MAX`
/// is 2048, minus room for the prefix).
const MAX_LINE: usize = 1900;

#[derive(Debug)]
struct KmsgLogger {
    /// `None`: stderr only.
    kmsg: Mutex<Option<PathBuf>>,
}

static LOGGER: OnceLock<KmsgLogger> = OnceLock::new();

/// Installs the logger (once per process) and points it at `kmsg`, or at
/// stderr when `kmsg` is `None`. Later calls only change where lines go.
pub fn init(kmsg: Option<PathBuf>) {
    let logger = LOGGER.get_or_init(|| KmsgLogger {
        kmsg: Mutex::new(None),
    });
    *logger.kmsg.lock().unwrap_or_else(|e| e.into_inner()) = kmsg;
    if log::set_logger(logger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// The syslog priority of a level.
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One kernel log record: `<prio>tabula-rollback[pid]: message\n`, on one
/// line, cut at [`MAX_LINE`] bytes.
pub fn format_line(level: Level, pid: u32, message: &str) -> String {
    let mut line = format!("<{}>{IDENT}[{pid}]: ", FACILITY | severity(level));
    for c in message.chars() {
        if line.len() >= MAX_LINE {
            line.push('…');
            break;
        }
        line.push(if c.is_control() { ' ' } else { c });
    }
    line.push('\n');
    line
}

impl Log for KmsgLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let kmsg = self.kmsg.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(path) = kmsg {
            let line = format_line(record.level(), std::process::id(), &message);
            let written = OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if written.is_ok() && !std::io::stderr().is_terminal() {
                return;
            }
        }
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        let _ = writeln!(std::io::stderr().lock(), "{IDENT}: {level}{message}");
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        assert_eq!(
            format_line(Level::Info, 412, "moved @root"),
            "<30>tabula-rollback[412]: moved @root\n"
        );
        assert_eq!(
            format_line(Level::Error, 1, "a\nb"),
            "<27>tabula-rollback[1]: a b\n"
        );
        assert!(format_line(Level::Warn, 1, "x").starts_with("<28>"));
        let long = format_line(Level::Info, 1, &"x".repeat(5000));
        assert!(long.len() < MAX_LINE + 8 && long.ends_with("…\n"));
    }
}
