//! Options shared by writers and readers, and their builders.
//!
//! # Validation levels
//!
//! What a reader checks before it hands out a frame (`docs/VALIDATION.md` has the long form and the measured
//! costs; `cargo xtask bench` re-measures them with `examples/validation_bench.rs`).
//!
//! **Always, at every level** (metadata is never trusted): the header is copied out word by word once and checked
//! (magic, format version, ABI fingerprint, structure sizes, mode, counts, every region offset recomputed and
//! compared, file at least as long as the layout, so no SIGBUS); a slot's descriptor is copied once under the lease
//! (frame number, `len <= slot capacity`, row count equal to what the frame decodes to); every IPC message's
//! prefix and flatbuffer metadata are copied into private memory and verified (depth and table limits) before
//! use; the schema's nesting (at most 64) and type parameters are checked; and for every record or dictionary
//! batch, before arrow-ipc sees it, every field node and buffer it will take must exist, lie inside the body, be
//! long enough for the node's length and type (validity, offsets, values, views, union type ids and offsets,
//! dictionary keys) and be aligned for the type, variadic counts must match, child arrays must be long enough,
//! dictionary ids must be defined with the right value type, and every column must have the batch's row count.
//! After decoding, Arrow's layout validation runs on every array. Nothing read from shared memory is read
//! twice for a decision. A last-resort `catch_unwind` around decoding remains, counted by
//! [`crate::decode::caught_panics`]; the fuzz targets require it to stay at zero.
//!
//! | level | adds | guarantees | cost |
//! |---|---|---|---|
//! | [`Validation::Trusted`] (default) | nothing | no panic, no read outside the mapping *while decoding*; body contents (offsets, UTF-8, views, dictionary keys, union ids, run ends) are trusted: the segment is 0600, of our uid, written by this library | O(columns), zero-copy |
//! | [`Validation::Full`] | Arrow's full validation of every array | corruption at rest is an error, so any later access is in bounds; a writer changing bytes *after* the check is not caught | O(rows) for variable-size and dictionary types, zero-copy |
//! | [`crate::SnapshotReader::read_copied`] | copy every buffer to private memory, then full validation of the copy | safe against a live hostile writer: what was validated is what you hold; no lease held | a full copy + O(rows) |
//!
//! Compressed bodies are always decompressed into private memory and fully validated, whatever the level.

use std::time::Duration;

/// Default schema-area capacity.
pub const DEFAULT_SCHEMA_CAPACITY: usize = 64 * 1024;
/// Default number of reader-table entries.
pub const DEFAULT_READER_CAPACITY: usize = 64;

/// How much a reader checks the body buffers of a frame (the control area and every message's metadata are always
/// copied out and checked, whatever the level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validation {
    /// Default. Metadata checked: every buffer lies inside its slot and is large enough for the lengths and types
    /// the metadata declares (O(columns)). Body *contents* (offsets, UTF-8, dictionary keys, view lengths) are
    /// trusted: the segment is 0600, owned by the reader's uid and written by this library under the commit
    /// protocol.
    #[default]
    Trusted,
    /// Everything in [`Validation::Trusted`] plus Arrow's full data validation (offsets monotonic and in bounds,
    /// UTF-8, views, dictionary keys): catches corruption at rest, costs O(rows) for variable-size types.
    Full,
}

/// Body compression (Arrow IPC buffer compression). Compressed frames are decompressed into private memory on read:
/// they are never zero-copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// Everything a writer can be configured with.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Total data capacity in bytes, split across `num_buffers` slots (the control area comes on top).
    pub size: usize,
    /// Slots in the ring (default 3).
    pub num_buffers: usize,
    /// Reader-table entries (default 64).
    pub reader_capacity: usize,
    /// Schema-area bytes (default 64 KiB).
    pub schema_capacity: usize,
    /// File mode of the segment (default 0o600).
    pub mode: u32,
    /// Keep the segment after the writer closes (default false: a clean close unlinks it).
    pub persistent: bool,
    /// Spin iterations before parking when the writer waits (default 1000).
    pub spin: u32,
    /// How long the writer waits for a leased slot (or a lagging stream reader) before giving up (default 5 s).
    pub lease_timeout: Duration,
    /// Optional body compression (default none).
    pub compression: Option<Compression>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            size: 64 * 1024 * 1024,
            num_buffers: 3,
            reader_capacity: DEFAULT_READER_CAPACITY,
            schema_capacity: DEFAULT_SCHEMA_CAPACITY,
            mode: 0o600,
            persistent: false,
            spin: 1000,
            lease_timeout: Duration::from_secs(5),
            compression: None,
        }
    }
}

/// Everything a reader can be configured with.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// Default timeout of blocking reads (`None`: wait until something arrives or the writer goes away).
    pub timeout: Option<Duration>,
    /// How long opening waits for the segment to be created (a reader started before its writer: the name is
    /// watched with inotify, no polling), or for a version-1 segment still being initialised. Default 5 s, the
    /// configuration's `sync.timeout_ms`; zero fails at once.
    pub open_timeout: Duration,
    /// Spin iterations before parking (default 1000).
    pub spin: u32,
    /// Body validation level.
    pub validation: Validation,
    /// Accept a segment whose mode lets group/others in (default false).
    pub allow_shared_mode: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            timeout: None,
            open_timeout: Duration::from_secs(5),
            spin: 1000,
            validation: Validation::Trusted,
            allow_shared_mode: false,
        }
    }
}
