//! The CLI's errors and the exit code each one maps to.

use std::fmt;

/// Exit codes a script can rely on. Usage errors (2) come from clap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// Any other error (I/O, corrupt data, a failed bench...).
    Error = 1,
    /// Bad command line (printed by clap).
    Usage = 2,
    /// No segment of that name.
    NotFound = 3,
    /// Refused: someone still uses the segment, or dead processes are still registered (see `--force`).
    InUse = 4,
    /// Not ours: a foreign segment (other magic, other owner, not a regular file), an incompatible format version,
    /// or a corrupt header.
    Foreign = 5,
    /// Nothing to read: no frame was ever published, or none arrived before `--timeout`.
    NoData = 6,
}

/// A pid list for messages: `123, 456`.
pub struct Pids<'a>(pub &'a [u32]);

impl fmt::Display for Pids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No such segment.
    #[error("segment '{name}' does not exist; `qadataswap ls` lists the segments on this machine")]
    NotFound {
        /// Segment name.
        name: String,
    },
    /// A live process uses the segment.
    #[error(
        "segment '{name}' is in use by live process(es) {pids} ({who}); it was left alone: stop them first \
         (`--force` never removes a segment that a live process uses)",
        pids = Pids(pids)
    )]
    InUse {
        /// Segment name.
        name: String,
        /// The live pids.
        pids: Vec<u32>,
        /// What they are, e.g. `writer 12, reader 34`.
        who: String,
    },
    /// Only dead processes are registered, and `--force` was not given.
    #[error(
        "segment '{name}' is still registered to process(es) {pids} that look dead ({who}); run \
         `qadataswap gc`, or `qadataswap rm --force {name}` if you are sure they are gone \
         (a process in another pid namespace looks dead from here)",
        pids = Pids(pids)
    )]
    DeadButRegistered {
        /// Segment name.
        name: String,
        /// The dead pids.
        pids: Vec<u32>,
        /// What they were.
        who: String,
    },
    /// Not a segment of this library (or of another user).
    #[error("segment '{name}' is foreign ({reason}); it was left untouched: remove it by hand if you know it is yours")]
    Foreign {
        /// Segment name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Made by another format version, or its header is corrupt.
    #[error("segment '{name}' is {reason}; nothing was changed: use the matching qadataswap version, or `qadataswap rm --force {name}` to remove it")]
    Incompatible {
        /// Segment name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Nothing to read.
    #[error("segment '{name}' has no frame to show: {why}")]
    NoData {
        /// Segment name.
        name: String,
        /// Why.
        why: String,
    },
    /// From the Arrow layer.
    #[error(transparent)]
    Arrow(#[from] qadataswap_arrow::Error),
    /// From the shared-memory layer.
    #[error(transparent)]
    Shm(#[from] qadataswap_shm::ShmError),
    /// Writing output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// Printing a table failed.
    #[error("cannot format the data: {0}")]
    Format(#[from] arrow_schema::ArrowError),
    /// JSON output failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// This build has no Flight support (the `flight` feature was off: the Python wheel's tool).
    #[cfg(not(feature = "flight"))]
    #[error(
        "`qadataswap {command}` is not in this build of the tool (the Python wheel ships it without Arrow Flight, \
         to keep the wheel small and quick to build); the standalone tool has it: `cargo install --path \
         crates/qadataswap-cli` from a clone of the repository (Flight is on by default there)"
    )]
    NoFlight {
        /// `serve` or `relay`.
        command: &'static str,
    },
    /// The Flight gateway or relay failed.
    #[cfg(feature = "flight")]
    #[error(transparent)]
    Flight(#[from] qadataswap_flight::Error),
    /// A bad option value.
    #[cfg(feature = "flight")]
    #[error("{what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// A bench helper process failed.
    #[error("bench: {what}")]
    Bench {
        /// What happened.
        what: String,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        use qadataswap_arrow::Error as A;
        use qadataswap_shm::ShmError as S;
        let shm = |e: &S| match e {
            S::NotFound { .. } => ExitCode::NotFound,
            S::ForeignOwner { .. } | S::NotARegularFile { .. } => ExitCode::Foreign,
            _ => ExitCode::Error,
        };
        match self {
            CliError::NotFound { .. } => ExitCode::NotFound,
            CliError::InUse { .. } | CliError::DeadButRegistered { .. } => ExitCode::InUse,
            CliError::Foreign { .. } | CliError::Incompatible { .. } => ExitCode::Foreign,
            CliError::NoData { .. } => ExitCode::NoData,
            CliError::Shm(e) => shm(e),
            CliError::Arrow(A::Shm(e)) => shm(e),
            CliError::Arrow(A::NotCreated { .. }) => ExitCode::NotFound,
            CliError::Arrow(
                A::Foreign { .. } | A::VersionMismatch { .. } | A::CorruptHeader { .. },
            ) => ExitCode::Foreign,
            CliError::Arrow(
                A::WriterAlive { .. }
                | A::WriterUnjudgeable { .. }
                | A::InUse { .. }
                | A::DeadButRegistered { .. },
            ) => ExitCode::InUse,
            CliError::Arrow(A::NotOurs { .. } | A::Unverifiable { .. }) => ExitCode::Foreign,
            _ => ExitCode::Error,
        }
    }
}

/// Result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
