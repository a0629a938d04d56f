//! Status codes, the per-thread error message and the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use qadataswap_arrow::Error;

/// What a `qds_*` function returns (`qds_status` in C). Keep in sync with `qadataswap.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QdsStatus {
    /// Success.
    Ok = 0,
    /// Not an error: a non-blocking call found nothing (no frame published yet).
    NoFrame = 1,
    /// A null pointer, an invalid name or an out-of-range option.
    InvalidArgument = 2,
    /// No segment of that name exists.
    NotFound = 3,
    /// A segment of that name already exists and is not ours to take over.
    AlreadyExists = 4,
    /// The segment belongs to another user or has unsafe permissions.
    PermissionDenied = 5,
    /// Another live writer owns the segment.
    WriterAlive = 6,
    /// A blocking call reached its timeout.
    Timeout = 7,
    /// The writer closed the segment cleanly; nothing newer will come.
    WriterClosed = 8,
    /// The writer died without closing.
    WriterDied = 9,
    /// Readers hold leases on every slot and none came free in time.
    AllSlotsLeased = 10,
    /// The frame does not fit in a slot.
    SlotTooSmall = 11,
    /// The schema does not fit the schema area.
    SchemaTooLarge = 12,
    /// The reader table is full.
    TooManyReaders = 13,
    /// The segment was made by an incompatible format version.
    VersionMismatch = 14,
    /// The segment or a frame in it is corrupt, or it is not a qadataswap segment.
    Corrupt = 15,
    /// The segment is a stream, not a snapshot segment (or the reverse).
    WrongMode = 16,
    /// The handle was inherited across `fork()`.
    Forked = 17,
    /// The segment's creator has not finished initialising it.
    NotInitialised = 18,
    /// Arrow refused the data (unsupported type, invalid C Data Interface struct...).
    Arrow = 19,
    /// The handle was already closed.
    Closed = 20,
    /// A bug: a panic was caught at the boundary.
    Panic = 21,
    /// An operating-system error.
    Io = 22,
    /// Anything else.
    Other = 23,
    /// Not an error: the stream was finished and every chunk was read.
    EndOfStream = 24,
    /// A stream write waited through every attempt for the slowest reader, which did not move.
    ReadersBehind = 25,
    /// A stream reader still holds the chunk whose slot its next chunk needs.
    RingHeld = 26,
    /// Chunks this stream reader had not read are gone (its entry was reclaimed).
    ChunksLost = 27,
    /// A write on a stream writer after `finish`.
    Finished = 28,
    /// Not removed: a live process uses the segment, or dead ones are still registered (see `force`).
    InUse = 29,
    /// Not removed: not this library's segment, another user's, or its header cannot be checked.
    NotOurs = 30,
    /// A stream's first write waited for `min_readers` readers and none came; nothing was written.
    NoReaders = 31,
    /// This stream reader attached late: the first chunks are gone (reported once; the next read goes on).
    ChunksMissed = 32,
}

/// A failed call: its status and the message for `qds_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: QdsStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: QdsStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(QdsStatus::InvalidArgument, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        use qadataswap_arrow::error::Error as E;
        use qadataswap_shm::ShmError as S;
        let status = match &e {
            E::Shm(s) => match s {
                S::InvalidName { .. } | S::TooSmall { .. } | S::TooLarge { .. } => {
                    QdsStatus::InvalidArgument
                }
                S::NotFound { .. } => QdsStatus::NotFound,
                S::AlreadyExists { .. } => QdsStatus::AlreadyExists,
                S::PermissionDenied { .. } | S::ForeignOwner { .. } | S::InsecureMode { .. } => {
                    QdsStatus::PermissionDenied
                }
                S::NotARegularFile { .. } | S::InvalidRange { .. } => QdsStatus::Corrupt,
                S::Io { .. } => QdsStatus::Io,
                _ => QdsStatus::Other,
            },
            E::VersionMismatch { .. } => QdsStatus::VersionMismatch,
            E::Foreign { .. }
            | E::CorruptHeader { .. }
            | E::CorruptFrame { .. }
            | E::Protocol { .. } => QdsStatus::Corrupt,
            E::NotInitialised { .. } => QdsStatus::NotInitialised,
            E::WriterAlive { .. } | E::WriterUnjudgeable { .. } => QdsStatus::WriterAlive,
            E::NotCreated { .. } => QdsStatus::NotFound,
            E::InUse { .. } | E::DeadButRegistered { .. } => QdsStatus::InUse,
            E::NotOurs { .. } | E::Unverifiable { .. } => QdsStatus::NotOurs,
            E::WriterClosed { .. } => QdsStatus::WriterClosed,
            E::WriterDied { .. } => QdsStatus::WriterDied,
            E::Timeout { .. } => QdsStatus::Timeout,
            E::AllSlotsLeased { .. } => QdsStatus::AllSlotsLeased,
            E::SlotTooSmall { .. } => QdsStatus::SlotTooSmall,
            E::SchemaTooLarge { .. } => QdsStatus::SchemaTooLarge,
            E::TooManyReaders { .. } => QdsStatus::TooManyReaders,
            E::Forked { .. } => QdsStatus::Forked,
            E::WrongMode { .. } => QdsStatus::WrongMode,
            E::InvalidConfig { .. } | E::InvalidFrame { .. } | E::Config(_) => {
                QdsStatus::InvalidArgument
            }
            E::Arrow(_) => QdsStatus::Arrow,
            _ => QdsStatus::Other,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<qadataswap_stream::Error> for Failure {
    fn from(e: qadataswap_stream::Error) -> Failure {
        use qadataswap_stream::Error as E;
        let e = match e {
            E::Arrow(inner) => return Failure::from(inner),
            other => other,
        };
        let status = match &e {
            E::Config(_) => QdsStatus::InvalidArgument,
            E::ReadersBehind { .. } => QdsStatus::ReadersBehind,
            E::RingHeld { .. } => QdsStatus::RingHeld,
            E::ChunksLost { .. } => QdsStatus::ChunksLost,
            E::WriterDied { .. } => QdsStatus::WriterDied,
            E::WriterClosed { .. } => QdsStatus::WriterClosed,
            E::Timeout { .. } => QdsStatus::Timeout,
            E::Finished { .. } => QdsStatus::Finished,
            E::NoReaders { .. } => QdsStatus::NoReaders,
            E::JoinedLate { .. } => QdsStatus::ChunksMissed,
            _ => QdsStatus::Other,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<qadataswap_handle::Closed> for Failure {
    fn from(c: qadataswap_handle::Closed) -> Failure {
        Failure::new(QdsStatus::Closed, c.to_string())
    }
}

impl From<arrow_schema::ArrowError> for Failure {
    fn from(e: arrow_schema::ArrowError) -> Failure {
        Failure::new(QdsStatus::Arrow, format!("arrow: {e}"))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Store `message` as this thread's last error (interior NULs become spaces).
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = c);
}

/// Run one entry point: turn `Err` and panics into a status and this thread's message.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> QdsStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => QdsStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            set_last_error(&format!(
                "internal error (a panic was caught at the C boundary): {what}; please report it"
            ));
            QdsStatus::Panic
        }
    }
}

/// The message of the last failed call on this thread (`""` if none failed yet). The pointer stays valid until the
/// next failing call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn qds_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|cell| cell.borrow().as_ptr()))
        .unwrap_or(c"internal error reading the last error message".as_ptr())
}

/// A static name of a status code (`"QDS_ERR_TIMEOUT"`...), or `"QDS_UNKNOWN"`.
#[no_mangle]
pub extern "C" fn qds_status_string(status: i32) -> *const c_char {
    let s: &std::ffi::CStr = match status {
        0 => c"QDS_OK",
        1 => c"QDS_NO_FRAME",
        2 => c"QDS_ERR_INVALID_ARGUMENT",
        3 => c"QDS_ERR_NOT_FOUND",
        4 => c"QDS_ERR_ALREADY_EXISTS",
        5 => c"QDS_ERR_PERMISSION_DENIED",
        6 => c"QDS_ERR_WRITER_ALIVE",
        7 => c"QDS_ERR_TIMEOUT",
        8 => c"QDS_ERR_WRITER_CLOSED",
        9 => c"QDS_ERR_WRITER_DIED",
        10 => c"QDS_ERR_ALL_SLOTS_LEASED",
        11 => c"QDS_ERR_SLOT_TOO_SMALL",
        12 => c"QDS_ERR_SCHEMA_TOO_LARGE",
        13 => c"QDS_ERR_TOO_MANY_READERS",
        14 => c"QDS_ERR_VERSION_MISMATCH",
        15 => c"QDS_ERR_CORRUPT",
        16 => c"QDS_ERR_WRONG_MODE",
        17 => c"QDS_ERR_FORKED",
        18 => c"QDS_ERR_NOT_INITIALISED",
        19 => c"QDS_ERR_ARROW",
        20 => c"QDS_ERR_CLOSED",
        21 => c"QDS_ERR_PANIC",
        22 => c"QDS_ERR_IO",
        23 => c"QDS_ERR_OTHER",
        24 => c"QDS_END_OF_STREAM",
        25 => c"QDS_ERR_READERS_BEHIND",
        26 => c"QDS_ERR_RING_HELD",
        27 => c"QDS_ERR_CHUNKS_LOST",
        28 => c"QDS_ERR_FINISHED",
        29 => c"QDS_ERR_IN_USE",
        30 => c"QDS_ERR_NOT_OURS",
        31 => c"QDS_ERR_NO_READERS",
        32 => c"QDS_ERR_CHUNKS_MISSED",
        _ => c"QDS_UNKNOWN",
    };
    s.as_ptr()
}
