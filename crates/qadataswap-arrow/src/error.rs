//! Errors of the Arrow layer. Each message says what happened and what to do about it.

use std::time::Duration;

/// Everything that can go wrong writing or reading a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shared-memory layer refused (name, permissions, owner, size...).
    #[error(transparent)]
    Shm(#[from] qadataswap_shm::ShmError),

    /// The segment was made by an incompatible version of the format or on another ABI.
    #[error(
        "segment '{name}' has format version {found} (ABI {found_abi:#010x}) but this build reads version {expected} \
         (ABI {expected_abi:#010x}); use a matching qadataswap version on both sides, or recreate the segment"
    )]
    VersionMismatch {
        /// Segment name.
        name: String,
        /// Version found in the header.
        found: u32,
        /// Version this build speaks.
        expected: u32,
        /// ABI fingerprint found.
        found_abi: u32,
        /// ABI fingerprint expected.
        expected_abi: u32,
    },

    /// The segment does not start with this library's magic bytes: it belongs to someone else.
    #[error(
        "segment '{name}' is not a qadataswap segment (bad magic bytes); it was left untouched: \
         check the name, or remove it by hand if you know it is yours"
    )]
    Foreign {
        /// Segment name.
        name: String,
    },

    /// The header describes an impossible layout (corrupt or hostile segment).
    #[error(
        "segment '{name}' has a corrupt header: {what}; recreate the segment (the writer owns it)"
    )]
    CorruptHeader {
        /// Segment name.
        name: String,
        /// What was wrong.
        what: String,
    },

    /// A frame's metadata or layout in a slot is invalid (corrupt or hostile segment).
    #[error("frame {frame_seq} in slot {slot} of '{name}' is corrupt: {what}; the writer may be broken or hostile")]
    CorruptFrame {
        /// Segment name.
        name: String,
        /// Slot index.
        slot: usize,
        /// Frame sequence number.
        frame_seq: u64,
        /// What was wrong.
        what: String,
    },

    /// The creator has not finished initialising the segment (or died while doing so).
    #[error(
        "segment '{name}' is not initialised after {waited:?}: its creator (pid {creator_pid}) is still setting it \
         up or died while doing so; retry, or remove it with `qadataswap rm {name}` if the creator is dead"
    )]
    NotInitialised {
        /// Segment name.
        name: String,
        /// The creator's pid from the header.
        creator_pid: u32,
        /// How long we waited.
        waited: Duration,
    },

    /// The segment did not appear within the open timeout: no writer created it (yet).
    #[error(
        "segment '{name}' does not exist, and it did not appear within {waited:?}: start the writer, check the name \
         (`qadataswap ls` lists the segments), or give the reader a longer open timeout"
    )]
    NotCreated {
        /// The name waited for.
        name: String,
        /// How long the reader waited for it.
        waited: Duration,
    },

    /// Another live writer owns the segment.
    #[error(
        "segment '{name}' already has a live writer (pid {pid}); only one writer per name: stop it first, \
         or open this segment as a reader"
    )]
    WriterAlive {
        /// Segment name.
        name: String,
        /// The live writer's pid.
        pid: u32,
    },

    /// The segment's writer runs in another PID namespace (another container), so this process cannot tell whether
    /// it is alive; it is never displaced on a guess.
    #[error(
        "segment '{name}' has a writer (pid {pid} in another PID namespace) whose liveness this process cannot \
         check; it was not displaced: stop that writer, or run both sides in one PID namespace (e.g. docker \
         --pid=host, or the same pod with shareProcessNamespace)"
    )]
    WriterUnjudgeable {
        /// Segment name.
        name: String,
        /// The writer's pid, in its own namespace.
        pid: u32,
    },

    /// A segment is not removed because processes use it.
    #[error(
        "segment '{name}' is in use by {who}; it was not removed: stop them first (a reader closes with its \
         handle; a writer with close())"
    )]
    InUse {
        /// Segment name.
        name: String,
        /// The live (or unjudgeable) pids.
        pids: Vec<u32>,
        /// Who, e.g. "writer 12, reader 40".
        who: String,
    },

    /// A segment is not removed without `force` because dead processes are still registered in it.
    #[error(
        "segment '{name}' still names {who}, which are gone; nobody uses it any more: remove it with \
         `qadataswap rm --force {name}` (or force=True)"
    )]
    DeadButRegistered {
        /// Segment name.
        name: String,
        /// The dead pids.
        pids: Vec<u32>,
        /// Who, e.g. "reader 40".
        who: String,
    },

    /// A file that is not this library's segment, or not this user's: never removed.
    #[error("'{name}' in /dev/shm is not ours ({why}); it was left untouched")]
    NotOurs {
        /// The file's name.
        name: String,
        /// Why it is not ours.
        why: String,
    },

    /// A segment whose header cannot be trusted (another version, or corrupt): not removed without `force`.
    #[error(
        "segment '{name}' cannot be checked ({why}), so nobody can tell whether it is in use; it was not removed: \
         remove it with `qadataswap rm --force {name}` once you know its processes are gone"
    )]
    Unverifiable {
        /// Segment name.
        name: String,
        /// What is wrong.
        why: String,
    },

    /// The writer closed the segment cleanly; nothing newer will come.
    #[error("the writer of '{name}' closed it; no newer frame will be published")]
    WriterClosed {
        /// Segment name.
        name: String,
    },

    /// The writer process died without closing.
    #[error(
        "the writer of '{name}' (pid {pid}) died without closing; a new writer can take the segment over with \
         create_writer, or remove it with `qadataswap rm {name}`"
    )]
    WriterDied {
        /// Segment name.
        name: String,
        /// The dead writer's pid.
        pid: u32,
    },

    /// A blocking call reached its timeout.
    #[error("timed out after {waited:?} {what} on '{name}'; raise the timeout or check the other side is running")]
    Timeout {
        /// Segment name.
        name: String,
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        waited: Duration,
    },

    /// Every slot is leased by readers and none came free in time.
    #[error(
        "no free slot in '{name}' after {waited:?}: readers hold leases on every slot ({holders}); \
         drop old frames sooner (or copy them out with to_owned), or create the segment with more slots"
    )]
    AllSlotsLeased {
        /// Segment name.
        name: String,
        /// How long the writer waited.
        waited: Duration,
        /// Who holds what, for people.
        holders: String,
    },

    /// The frame does not fit in a slot.
    #[error(
        "frame needs {needed} bytes but a slot of '{name}' holds {capacity}: create the segment with a larger size \
         (size / num_buffers >= {needed}), or fewer num_buffers"
    )]
    SlotTooSmall {
        /// Segment name.
        name: String,
        /// Bytes the encoded frame needs.
        needed: usize,
        /// Bytes per slot.
        capacity: usize,
    },

    /// The schema does not fit the schema area.
    #[error(
        "the schema needs {needed} bytes but the schema area of '{name}' holds {capacity}: create the segment with \
         a larger schema_capacity"
    )]
    SchemaTooLarge {
        /// Segment name.
        name: String,
        /// Bytes the schema needs.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },

    /// The reader table has no free entry.
    #[error(
        "segment '{name}' already has {capacity} readers attached (its reader table is full); close readers you \
         do not need or create the segment with a larger reader capacity"
    )]
    TooManyReaders {
        /// Segment name.
        name: String,
        /// Table capacity.
        capacity: usize,
    },

    /// The object was inherited across `fork()`; it only works in the process that made it.
    #[error(
        "this {what} of '{name}' was created in process {owner_pid} and inherited by fork into process {pid}; \
         open a new one in this process instead"
    )]
    Forked {
        /// "reader" or "writer".
        what: &'static str,
        /// Segment name.
        name: String,
        /// Pid that created the object.
        owner_pid: u32,
        /// Current pid.
        pid: u32,
    },

    /// The segment is in the other mode (snapshot vs stream).
    #[error("segment '{name}' is a {found:?} segment, not a {expected:?} one; open it with the matching API")]
    WrongMode {
        /// Segment name.
        name: String,
        /// Mode found.
        found: crate::mode::Mode,
        /// Mode asked for.
        expected: crate::mode::Mode,
    },

    /// `qadataswap.yaml` (or a `QADATASWAP_*` variable) could not be read or holds a bad key or value; the
    /// message names the file (or variable) and the key.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// The segment's shared words are in a state the protocol never produces (a frame number past the format's
    /// range, a lease table no reader could have left): a corrupt or hostile segment.
    #[error(
        "segment '{name}': {what}; the protocol never produces this state (a corrupt or hostile segment): remove it \
         with `qadataswap rm {name}` and let the writer create it again"
    )]
    Protocol {
        /// The segment.
        name: String,
        /// What was found.
        what: String,
    },

    /// A configuration value is out of range.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What is wrong and what would be right.
        what: String,
    },

    /// The frame cannot be written (empty, mixed schemas...).
    #[error("cannot write this frame: {what}")]
    InvalidFrame {
        /// What is wrong.
        what: String,
    },

    /// Arrow itself refused (type not supported by IPC, validation failure...).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
