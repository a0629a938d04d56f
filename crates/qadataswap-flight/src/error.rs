//! The gateway's and the relay's errors, and the Flight status code each library error becomes.

use std::path::PathBuf;

use tonic::{Code, Status};

/// Starting or running a gateway or a relay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}; pick another port (0 chooses a free one)")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token file is missing, empty, or readable by others.
    #[error("token file {}: {why}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        why: String,
    },
    /// A certificate or key could not be read or used.
    #[error("TLS: {why}")]
    Tls {
        /// What is wrong.
        why: String,
    },
    /// A bad option value.
    #[error("{what}")]
    Invalid {
        /// What is wrong and what is accepted.
        what: String,
    },
    /// The gRPC server failed.
    #[error("the Flight server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The relay gave up or met an error it cannot retry.
    #[error("relay {url} -> '{local}': {why}")]
    Relay {
        /// The remote segment's URL.
        url: String,
        /// The local segment.
        local: String,
        /// What happened.
        why: String,
    },
}

/// The status for an error of the Arrow layer: the library's message (which says what to do) with the code that
/// fits it.
pub(crate) fn arrow_status(e: &qadataswap_arrow::Error) -> Status {
    use qadataswap_arrow::Error as A;
    use qadataswap_shm::ShmError as S;
    let code = match e {
        A::Shm(S::NotFound { .. }) | A::NotCreated { .. } => Code::NotFound,
        A::Shm(S::ForeignOwner { .. } | S::NotARegularFile { .. })
        | A::Foreign { .. }
        | A::NotOurs { .. } => Code::PermissionDenied,
        A::VersionMismatch { .. } | A::WrongMode { .. } => Code::FailedPrecondition,
        A::CorruptHeader { .. } | A::CorruptFrame { .. } | A::Protocol { .. } => Code::DataLoss,
        A::WriterAlive { .. } | A::WriterUnjudgeable { .. } | A::InUse { .. } => {
            Code::FailedPrecondition
        }
        A::WriterClosed { .. } | A::WriterDied { .. } => Code::Aborted,
        A::Timeout { .. } => Code::DeadlineExceeded,
        A::AllSlotsLeased { .. } | A::TooManyReaders { .. } => Code::Unavailable,
        A::SlotTooSmall { .. } | A::SchemaTooLarge { .. } => Code::ResourceExhausted,
        A::InvalidFrame { .. } | A::InvalidConfig { .. } | A::Arrow(_) => Code::InvalidArgument,
        _ => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// The status for an error of the stream layer.
pub(crate) fn stream_status(e: &qadataswap_stream::Error) -> Status {
    use qadataswap_stream::Error as E;
    let code = match e {
        E::Arrow(a) => return arrow_status(a),
        E::ReadersBehind { .. } | E::NoReaders { .. } => Code::Unavailable,
        E::JoinedLate { .. } | E::ChunksLost { .. } => Code::DataLoss,
        E::WriterDied { .. } | E::WriterClosed { .. } => Code::Aborted,
        E::Timeout { .. } => Code::DeadlineExceeded,
        E::Finished { .. } => Code::FailedPrecondition,
        _ => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// A blocking task of the gateway ended without an answer (it panicked): a bug, reported, not propagated.
pub(crate) fn join_status(e: tokio::task::JoinError) -> Status {
    Status::internal(format!(
        "a worker of the gateway failed ({e}); this is a bug, please report it"
    ))
}
