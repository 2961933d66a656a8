//! The one `log` backend of every tabula program.
//!
//! A generator and the initrd's rollback run before the journal does, so
//! their lines go to the kernel log, where `dmesg` shows them at once and
//! journald picks them up later:
//!
//! ```text
//! <30>tabula-rollback[412]: moved @root to @old_roots/2026-11-21T23:56:00Z
//! ```
//!
//! The number is the syslog facility `daemon` plus the severity (error 3,
//! warning 4, info 6, debug and trace 7); journald reads it back as the
//! priority, and the word before `[pid]` as the identifier.
//!
//! One behaviour for every program:
//!
//! * **One record per line.** Control characters (a newline would forge a
//!   second record) become spaces; a message over [`MAX_MESSAGE`] bytes
//!   loses its middle, not its end, which says what to do (the kernel keeps
//!   at most 2048 bytes of a record).
//! * **The kernel log is opened anew for every line.** The kernel limits
//!   writes per open file (`printk.devkmsg=ratelimit`, the default: a burst
//!   of 10 lines per 5 s, the rest dropped), so a file held open loses
//!   lines when a configuration has many bad entries or a rotation prunes
//!   many old roots.
//! * **stderr is the fallback**: when the kernel log cannot be written (no
//!   `/dev/kmsg` in a container, not root), or when the program is a
//!   service ([`Target::Stderr`]), lines go to stderr as `<6>message`,
//!   the form journald reads from a service's output.
//! * **A person sees the lines**: when stderr is a terminal (decided once,
//!   when the logger is installed), every line is also printed there as
//!   `tabula-rollback: error: message`.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// `LOG_DAEMON`, the syslog facility of every record.
pub const FACILITY: u8 = 3 << 3;

/// The longest message kept, in bytes (`PRINTK_MESSAGE_MAX` is 2048; the
/// rest is room for the prefix).
pub const MAX_MESSAGE: usize = 1900;

/// The kernel log.
pub const KMSG: &str = "/dev/kmsg";

/// Where a program's lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The kernel log at this path (normally [`KMSG`]), opened for each
    /// line; stderr when it cannot be written.
    Kmsg(PathBuf),
    /// stderr only (a service, whose output the journal reads).
    Stderr,
}

/// The syslog severity of a level.
#[must_use]
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// How much of the end of an over-long message is kept: the end says what
/// to do, the middle is usually a long value.
pub const KEPT_END: usize = 400;

/// `message` on one line: control characters replaced by spaces; a message
/// over [`MAX_MESSAGE`] bytes loses its middle (replaced by `…`), keeping
/// its beginning and its last [`KEPT_END`] bytes, at character boundaries.
#[must_use]
pub fn one_line(message: &str) -> String {
    let scrubbed: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if scrubbed.len() <= MAX_MESSAGE {
        return scrubbed;
    }
    let ellipsis = '…'.len_utf8();
    let mut head = MAX_MESSAGE - KEPT_END - ellipsis;
    while !scrubbed.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = scrubbed.len() - KEPT_END;
    while !scrubbed.is_char_boundary(tail) {
        tail += 1;
    }
    let mut out = String::with_capacity(MAX_MESSAGE);
    out.push_str(&scrubbed[..head]);
    out.push('…');
    out.push_str(&scrubbed[tail..]);
    out
}

/// One kernel log record: `<facility+severity>ident[pid]: message\n`.
#[must_use]
pub fn kmsg_record(ident: &str, pid: u32, level: Level, message: &str) -> String {
    format!(
        "<{}>{ident}[{pid}]: {}\n",
        FACILITY | severity(level),
        one_line(message)
    )
}

/// One line for a journal reading stderr: `<severity>message\n`
/// (sd-daemon(3); journald adds the identifier itself).
#[must_use]
pub fn journal_line(level: Level, message: &str) -> String {
    format!("<{}>{}\n", severity(level), one_line(message))
}

/// One line for a person at a terminal: `ident: error: message\n`.
#[must_use]
pub fn terminal_line(ident: &str, level: Level, message: &str) -> String {
    let kind = match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        _ => "",
    };
    format!("{ident}: {kind}{}\n", one_line(message))
}

#[derive(Debug)]
struct Route {
    ident: &'static str,
    target: Target,
}

/// The logger; [`init`] installs one for the process, tests build their own
/// with [`Logger::new`].
pub struct Logger {
    route: Mutex<Route>,
    /// Whether stderr is a terminal: asked once, not for every line.
    terminal: bool,
    stderr: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("route", &self.route)
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

impl Logger {
    /// A logger for the program `ident` writing to `target`, with `stderr`
    /// as its standard error, which `terminal` says is a terminal.
    #[must_use]
    pub fn new(
        ident: &'static str,
        target: Target,
        terminal: bool,
        stderr: Box<dyn Write + Send>,
    ) -> Logger {
        Logger {
            route: Mutex::new(Route { ident, target }),
            terminal,
            stderr: Mutex::new(stderr),
        }
    }

    /// Sends later lines as `ident` to `target`.
    pub fn route(&self, ident: &'static str, target: Target) {
        *self.route.lock().unwrap_or_else(PoisonError::into_inner) = Route { ident, target };
    }

    /// Logs one message (what [`Log::log`] does with a record).
    pub fn line(&self, level: Level, message: &str) {
        let (ident, target) = {
            let route = self.route.lock().unwrap_or_else(PoisonError::into_inner);
            (route.ident, route.target.clone())
        };
        if let Target::Kmsg(path) = &target {
            let record = kmsg_record(ident, std::process::id(), level, message);
            // Opened for this line only: see the module documentation.
            let written = OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(record.as_bytes()));
            if written.is_ok() && !self.terminal {
                return;
            }
        }
        let line = if self.terminal {
            terminal_line(ident, level, message)
        } else {
            journal_line(level, message)
        };
        let mut stderr = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = stderr.write_all(line.as_bytes());
        let _ = stderr.flush();
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.line(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the process's logger for the program `ident` (at level info),
/// or, when one is installed already, sends its later lines as `ident` to
/// `target`.
pub fn init(ident: &'static str, target: Target) {
    let logger = LOGGER.get_or_init(|| {
        let terminal = std::io::stderr().is_terminal();
        Logger::new(ident, target.clone(), terminal, Box::new(std::io::stderr()))
    });
    logger.route(ident, target);
    if log::set_logger(logger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_record_carries_the_daemon_facility_and_the_severity() {
        assert_eq!(
            kmsg_record("tabula-rollback", 412, Level::Info, "moved @root"),
            "<30>tabula-rollback[412]: moved @root\n"
        );
        assert!(kmsg_record("t", 1, Level::Error, "x").starts_with("<27>t[1]: "));
        assert!(kmsg_record("t", 1, Level::Warn, "x").starts_with("<28>"));
        assert!(kmsg_record("t", 1, Level::Debug, "x").starts_with("<31>"));
        assert!(kmsg_record("t", 1, Level::Trace, "x").starts_with("<31>"));
        assert_eq!(journal_line(Level::Error, "bad"), "<3>bad\n");
        assert_eq!(journal_line(Level::Info, "ok"), "<6>ok\n");
        assert_eq!(
            terminal_line("tabula-generator", Level::Error, "bad"),
            "tabula-generator: error: bad\n"
        );
        assert_eq!(
            terminal_line("tabula-generator", Level::Warn, "odd"),
            "tabula-generator: warning: odd\n"
        );
        assert_eq!(
            terminal_line("tabula-generator", Level::Info, "ok"),
            "tabula-generator: ok\n"
        );
    }

    #[test]
    fn a_message_cannot_forge_a_second_record() {
        assert_eq!(
            kmsg_record("t", 1, Level::Error, "a\nb\rc\td\u{0}e\u{1b}[0m\u{85}f"),
            "<27>t[1]: a b c d e [0m f\n"
        );
        assert_eq!(journal_line(Level::Info, "a\n<3>b"), "<6>a <3>b\n");
        assert_eq!(
            terminal_line("t", Level::Info, "a\nt: error: b"),
            "t: a t: error: b\n"
        );
    }

    #[test]
    fn a_long_message_keeps_its_beginning_and_its_end_within_the_cap() {
        let exact = "x".repeat(MAX_MESSAGE);
        assert_eq!(one_line(&exact), exact, "a message of the cap is whole");
        let message = format!("entry ({}): is too long; do this", "v".repeat(5000));
        let cut = one_line(&message);
        assert_eq!(cut.len(), MAX_MESSAGE);
        assert!(cut.starts_with("entry (vvv"), "{cut}");
        assert!(cut.ends_with("vvv): is too long; do this"), "{cut}");
        assert_eq!(cut.matches('…').count(), 1);
        assert_eq!(cut.split('…').nth(1).map(str::len), Some(KEPT_END));
        // Multi-byte characters are never split, and the cap holds.
        for wide in ["é", "日", "🦀"] {
            let cut = one_line(&wide.repeat(MAX_MESSAGE));
            assert!(cut.len() <= MAX_MESSAGE, "{wide}: {}", cut.len());
            assert!(cut.len() > MAX_MESSAGE - 8, "{wide}: {}", cut.len());
            assert!(cut.contains('…'));
        }
        let record = kmsg_record("tabula-rollback", u32::MAX, Level::Info, &message);
        assert!(record.len() < 2048, "{} bytes", record.len());
        assert!(record.ends_with("do this\n"));
    }

    /// A shared buffer standing in for stderr.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    fn test_logger(target: Target, terminal: bool) -> (Logger, Buffer) {
        let buffer = Buffer::default();
        let logger = Logger::new("tabula-test", target, terminal, Box::new(buffer.clone()));
        (logger, buffer)
    }

    #[test]
    fn lines_go_to_the_kernel_log_and_not_to_a_stderr_that_is_no_terminal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap_or_else(|e| panic!("write: {e}"));
        let (logger, stderr) = test_logger(Target::Kmsg(kmsg.clone()), false);
        logger.line(Level::Error, "first");
        logger.line(Level::Info, "second");
        let pid = std::process::id();
        assert_eq!(
            std::fs::read_to_string(&kmsg).unwrap_or_default(),
            format!("<27>tabula-test[{pid}]: first\n<30>tabula-test[{pid}]: second\n")
        );
        assert_eq!(stderr.text(), "");
    }

    #[test]
    fn the_kernel_log_is_opened_for_each_line_so_that_a_new_file_gets_the_next() {
        // A logger that held the kernel log open would keep writing to the
        // replaced (unlinked) file.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap_or_else(|e| panic!("write: {e}"));
        let (logger, _) = test_logger(Target::Kmsg(kmsg.clone()), false);
        logger.line(Level::Info, "one");
        std::fs::remove_file(&kmsg).unwrap_or_else(|e| panic!("remove: {e}"));
        std::fs::write(&kmsg, "").unwrap_or_else(|e| panic!("write: {e}"));
        logger.line(Level::Info, "two");
        let text = std::fs::read_to_string(&kmsg).unwrap_or_default();
        assert!(text.ends_with(": two\n") && !text.contains("one"), "{text}");
    }

    #[test]
    fn a_terminal_sees_every_line_as_well() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap_or_else(|e| panic!("write: {e}"));
        let (logger, stderr) = test_logger(Target::Kmsg(kmsg.clone()), true);
        logger.line(Level::Warn, "careful");
        assert!(
            std::fs::read_to_string(&kmsg)
                .unwrap_or_default()
                .ends_with("]: careful\n")
        );
        assert_eq!(stderr.text(), "tabula-test: warning: careful\n");
    }

    #[test]
    fn without_a_kernel_log_lines_go_to_stderr_for_the_journal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let (logger, stderr) = test_logger(Target::Kmsg(dir.path().join("missing/kmsg")), false);
        logger.line(Level::Error, "no kernel log");
        assert_eq!(stderr.text(), "<3>no kernel log\n");
        let (logger, stderr) = test_logger(Target::Stderr, false);
        logger.line(Level::Info, "a service");
        logger.route("tabula-other", Target::Stderr);
        logger.line(Level::Warn, "still\none line");
        assert_eq!(stderr.text(), "<6>a service\n<4>still one line\n");
        let (logger, stderr) = test_logger(Target::Stderr, true);
        logger.route("tabula-other", Target::Stderr);
        logger.line(Level::Error, "by hand");
        assert_eq!(stderr.text(), "tabula-other: error: by hand\n");
    }
}
