//! The one error type of xtask: every variant says what failed and what to do about it.

use std::fmt;
use std::io;
use std::process::ExitStatus;

/// Everything that can stop an xtask command.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The command line was not understood.
    Usage {
        /// What was wrong with it.
        message: String,
    },
    /// A program could not be started at all (not installed, not on PATH, not executable).
    Spawn {
        /// The command line, as printed before it ran.
        command: String,
        /// Why the operating system refused.
        source: io::Error,
    },
    /// A program ran and exited unsuccessfully.
    Failed {
        /// The command line, as printed before it ran.
        command: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// Reading or writing a file or directory failed.
    Io {
        /// What xtask was doing, e.g. "writing target/bench/report.md".
        action: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A tool ran but its answer made no sense (e.g. python printed no include dir).
    Unexpected {
        /// What was expected and what came instead.
        message: String,
    },
    /// A test or bench step failed; `source` says how.
    Step {
        /// The step's name as shown in the summary table.
        step: String,
        /// What went wrong inside it.
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error with what xtask was doing at the time.
    pub fn io(action: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message } => write!(f, "{message} (run `cargo xtask help` for usage)"),
            Error::Spawn { command, source } => write!(
                f,
                "could not start `{command}`: {source}; is the program installed and on PATH?"
            ),
            Error::Failed { command, status } => {
                write!(f, "`{command}` failed ({status}); its output is above")
            }
            Error::Io { action, source } => write!(f, "{action}: {source}"),
            Error::Unexpected { message } => f.write_str(message),
            Error::Step { step, source } => write!(f, "step `{step}` failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Step { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// xtask's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
