//! Errors of the Polars adapter.

use polars_core::error::PolarsError;

use crate::ffi::FfiError;

/// Everything that can go wrong sharing a Polars frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shared-memory / Arrow layer failed (segment, lease, timeout, writer gone, corruption).
    #[error(transparent)]
    Arrow(#[from] qadataswap_arrow::Error),

    /// The stream layer failed (readers behind, ring held, chunks lost, writer gone...).
    #[error(transparent)]
    Stream(#[from] qadataswap_stream::Error),

    /// The zero-copy bridge between Arrow and Polars refused a column.
    #[error(transparent)]
    Ffi(#[from] FfiError),

    /// Polars failed while producing the frame to write (e.g. collecting a lazy frame).
    #[error("polars failed to produce the frame to write: {source}; fix the query or the frame")]
    Polars {
        /// The Polars error.
        #[source]
        source: PolarsError,
    },

    /// The thread waiting for an asynchronous read ended without an answer (it panicked).
    #[error(
        "the waiter thread of an asynchronous read on '{name}' ended without a result; this is a \
         bug, please report it (the blocking `read` works meanwhile)"
    )]
    WaiterLost {
        /// Segment name.
        name: String,
    },

    /// The process's reactor thread (which wakes asynchronous reads), or an asynchronous open's
    /// thread, could not be started.
    #[error(
        "cannot start a thread for an asynchronous read or open on '{name}': {source}; the process \
         is out of threads or memory (reads share one reactor thread per process)"
    )]
    Spawn {
        /// Segment name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
