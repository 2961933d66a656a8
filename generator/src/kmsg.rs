//! A small `log` backend that writes to `/dev/kmsg`, where a generator's
//! messages belong (the journal is not running yet), and to stderr when
//! `/dev/kmsg` cannot be opened (tests, a shell).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

#[derive(Debug)]
struct Kmsg {
    file: Option<Mutex<File>>,
    tag: &'static str,
}

impl log::Log for Kmsg {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = match record.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 5,
            log::Level::Debug => 6,
            log::Level::Trace => 7,
        };
        // One record is one line: a newline inside would forge another.
        let text = record.args().to_string().replace(['\n', '\r'], " ");
        match &self.file {
            Some(file) => {
                let line = format!("<{priority}>{}[{}]: {text}\n", self.tag, std::process::id());
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            // journald reads the `<N>` prefix as the priority.
            None => eprintln!("<{priority}>{text}"),
        }
    }

    fn flush(&self) {}
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// `/dev/kmsg`, or stderr when it cannot be opened.
    Kmsg,
    /// stderr, each line prefixed `<N>` (a service's output goes to the journal).
    Stderr,
}

/// Installs the logger. `TABULA_LOG=stderr` sends the generator's lines to
/// stderr too (tests, running it by hand).
pub fn init(tag: &'static str, sink: Sink, level: log::LevelFilter) {
    let forced = std::env::var_os("TABULA_LOG").is_some_and(|v| v == "stderr");
    let file = if sink == Sink::Stderr || forced {
        None
    } else {
        OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok()
            .map(Mutex::new)
    };
    if log::set_boxed_logger(Box::new(Kmsg { file, tag })).is_ok() {
        log::set_max_level(level);
    }
}
