//! What every tabula binary does the same way: where its log lines go
//! ([`log`]), what its exit status means ([`Exit`]), and how it reads the
//! octal escapes of the kernel's and ZFS's output ([`escape`]).
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]
// The error types name every failure; an `# Errors` section on each function
// returning one would repeat them.
#![allow(clippy::missing_errors_doc)]

pub mod escape;
pub mod log;

use std::process::ExitCode;

/// The exit status of every tabula program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done (or nothing to do).
    Ok,
    /// 1: a runtime failure (a device, a directory, a system call); the
    /// configuration itself was usable.
    Failure,
    /// 2: bad usage or a configuration error, found before anything was
    /// changed because of it.
    Usage,
}

impl Exit {
    /// The number the process exits with.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::Failure.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
    }
}
