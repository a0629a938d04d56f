//! The reader side: attach, lease the newest committed slot, decode it without copying.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;
use qadataswap_shm::{Access, FileId, OpenOptions, Protection, Segment, SegmentName};
use qadataswap_sync::lease::{LeaseError, ReaderEntry, ENTRY_INHERITED};
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};
use qadataswap_sync::process::{pid_namespace, ProcessIdentity};

use crate::decode::{self, SchemaCache};
use crate::error::{Error, Result};
use crate::layout::{self, state, unpack_published, Mode, HEADER_SIZE};
use crate::options::{ReaderOptions, Validation};
use crate::segment::{wait_initialised, HeaderCopy, Shared};
use crate::stats::{Stats, StatsCounters};

/// A reader's attachment: the mapping and its own reader-table entry. Shared (through `Arc`) by the reader handle
/// and every lease, so the mapping outlives every buffer that points into it.
pub struct Attachment {
    shared: Arc<Shared>,
    /// The process that opened it: the only one whose reader may use it ([`Attachment::check_owner`]).
    pid: u32,
    /// The reader entry holding this process's leases, and that process: the opener's, or in a `fork()` child that
    /// inherited frames, the entry registered for it (see [`crate::fork`]).
    lease_entry: AtomicUsize,
    lease_pid: AtomicU32,
    /// Leases held by this process's frames, per slot (what a fork child inherits).
    local: Box<[AtomicU32]>,
    /// Between the fork handlers: the entry registered for the child, or [`NO_HANDOFF`].
    handoff: AtomicUsize,
    /// The segment file, for the reclaimer's "does this fork child still map it" check.
    file: Option<FileId>,
}

const NO_HANDOFF: usize = usize::MAX;

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.shared.name)
            .field("pid", &self.pid)
            .field("entry", &self.lease_entry.load(Ordering::Relaxed))
            .finish()
    }
}

/// Open `name`, waiting up to `timeout` for it to be created (a reader started before its writer): see
/// [`qadataswap_shm::wait_for_name`]. A timeout of zero fails at once.
fn open_when_created(name: &SegmentName, opts: &OpenOptions, timeout: Duration) -> Result<Segment> {
    let start = Instant::now();
    loop {
        match Segment::open(name, Access::ReadWrite, opts) {
            Err(qadataswap_shm::ShmError::NotFound { .. }) => {
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() || !qadataswap_shm::wait_for_name(name, left, &|| false)? {
                    if timeout.is_zero() {
                        // No wait asked for: the plain "does not exist", as before.
                        return Err(qadataswap_shm::ShmError::NotFound {
                            name: name.as_str().to_owned(),
                        }
                        .into());
                    }
                    return Err(Error::NotCreated {
                        name: name.as_str().to_owned(),
                        waited: start.elapsed(),
                    });
                }
                // It appeared (or was renamed into place): open it now. If it vanished again meanwhile, wait on.
            }
            other => return Ok(other?),
        }
    }
}

/// Frees dead readers' entries in `s` (and those of fork children that no longer map it): what the writer and
/// registration do before waiting for leases.
pub fn reclaim_dead_readers(s: &Shared) -> Vec<ProcessIdentity> {
    let file = s.segment.file_id().ok();
    s.lease_table()
        .reclaim_dead_where(|owner| crate::fork::still_maps(owner, file))
}

impl Attachment {
    /// Open `name` (which must be in `mode`) and register in its reader table.
    ///
    /// # Errors
    /// Shm errors (not found, permissions, owner), [`Error::NotInitialised`], [`Error::Foreign`],
    /// [`Error::VersionMismatch`], [`Error::CorruptHeader`], [`Error::WrongMode`], [`Error::TooManyReaders`].
    pub fn open(name: &str, mode: Mode, opts: &ReaderOptions) -> Result<Arc<Attachment>> {
        let seg_name = SegmentName::new(name)?;
        let oopts = OpenOptions {
            allow_shared_mode: opts.allow_shared_mode,
            ..OpenOptions::default()
        };
        let segment = open_when_created(&seg_name, &oopts, opts.open_timeout)?;
        segment.require_len(HEADER_SIZE)?;
        let head = segment.map(0, HEADER_SIZE, Protection::ReadOnly, false)?;
        wait_initialised(&head, name, opts.open_timeout)?;
        let geo = HeaderCopy::read(&head).validate(name)?;
        drop(head);
        if geo.mode != mode {
            return Err(Error::WrongMode {
                name: name.to_owned(),
                found: geo.mode,
                expected: mode,
            });
        }
        segment.require_len(geo.total_size)?;
        let map = segment.map(0, geo.total_size, Protection::ReadWrite, true)?;
        // Readers write only the header page (waiter words) and the reader table.
        map.protect(
            geo.slot_table_offset,
            geo.total_size - geo.slot_table_offset,
            Protection::ReadOnly,
        )?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            segment,
            map,
            geo,
        });
        let file = shared.segment.file_id().ok();
        let entry = match shared.lease_table().register_with(
            ProcessIdentity::current(),
            pid_namespace(),
            0,
            &[],
            |owner| crate::fork::still_maps(owner, file),
        ) {
            Ok(i) => i,
            Err(LeaseError::TableFull { capacity }) => {
                return Err(Error::TooManyReaders {
                    name: name.to_owned(),
                    capacity,
                })
            }
            Err(e) => {
                return Err(Error::Protocol {
                    name: name.to_owned(),
                    what: e.to_string(),
                })
            }
        };
        let slots = shared.geo.slot_count;
        let att = Arc::new(Attachment {
            shared,
            pid: std::process::id(),
            lease_entry: AtomicUsize::new(entry),
            lease_pid: AtomicU32::new(std::process::id()),
            local: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            handoff: AtomicUsize::new(NO_HANDOFF),
            file,
        });
        crate::fork::register(&att);
        Ok(att)
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This reader's entry in the table.
    pub fn entry(&self) -> &ReaderEntry {
        &self.shared.entries()[self.lease_entry.load(Ordering::Acquire)]
    }

    /// Refuse to work in a forked child.
    pub fn check_owner(&self) -> Result<()> {
        let pid = qadataswap_sync::process::current_pid();
        if pid != self.pid {
            return Err(Error::Forked {
                what: "reader",
                name: self.shared.name.clone(),
                owner_pid: self.pid,
                pid,
            });
        }
        Ok(())
    }

    /// Why a blocking wait cannot succeed any more, if it cannot: the writer closed or died, or the state word holds
    /// a value no writer stores.
    pub fn writer_gone(&self) -> Option<Error> {
        let s = &self.shared;
        match s.state() {
            state::CLOSED | state::FINISHED => {
                return Some(Error::WriterClosed {
                    name: s.name.clone(),
                })
            }
            st if st > state::FINISHED => {
                return Some(Error::CorruptHeader {
                    name: s.name.clone(),
                    what: format!("unknown state {st}"),
                })
            }
            _ => {}
        }
        match s.writer_liveness() {
            Some((pid, qadataswap_sync::process::Liveness::Dead)) => Some(Error::WriterDied {
                name: s.name.clone(),
                pid,
            }),
            _ => None,
        }
    }

    /// Lease `slot` if its commit word is `2 * frame_seq`, copy its descriptor and wrap its bytes in a buffer that
    /// holds the lease. `Ok(None)` if the slot no longer holds that frame.
    pub fn lease_frame(
        self: &Arc<Self>,
        slot: usize,
        frame_seq: u64,
    ) -> Result<Option<LeasedFrame>> {
        let s = &self.shared;
        if slot >= s.geo.slot_count {
            return Err(Error::CorruptHeader {
                name: s.name.clone(),
                what: format!("published slot {slot} is out of 0..{}", s.geo.slot_count),
            });
        }
        let expected = qadataswap_sync::ring::committed(frame_seq);
        {
            // Taken and counted together, so that a fork never copies this frame without its lease.
            let _gate = crate::fork::LeaseGate::enter();
            if !self.entry().try_lease(slot, &s.slot_seq(slot), expected) {
                return Ok(None);
            }
            if let Some(n) = self.local.get(slot) {
                n.fetch_add(1, Ordering::AcqRel);
            }
        }
        let lease = Arc::new(Lease {
            att: Arc::clone(self),
            slot,
        });
        // With the lease held and the commit word verified, the descriptor is stable: copy it once.
        let live = s.desc(slot);
        let d = SlotDesc {
            frame_seq: live.frame_seq(),
            schema_version: live.schema_version(),
            len: live.len(),
            rows: live.num_rows(),
            write_ns: live.write_ns(),
            flags: live.flags(),
        };
        let corrupt = |what: String| Error::CorruptFrame {
            name: s.name.clone(),
            slot,
            frame_seq,
            what,
        };
        if d.frame_seq != frame_seq {
            return Err(corrupt(format!("descriptor says frame {}", d.frame_seq)));
        }
        if d.flags & !layout::slot_flags::KNOWN != 0 {
            return Err(corrupt(format!(
                "unknown slot flag bits {:#x}",
                d.flags & !layout::slot_flags::KNOWN
            )));
        }
        let len = usize::try_from(d.len)
            .ok()
            .filter(|&l| l >= 8 && l <= s.geo.slot_capacity)
            .ok_or_else(|| {
                corrupt(format!(
                    "length {} outside 8..={}",
                    d.len, s.geo.slot_capacity
                ))
            })?;
        let ptr = NonNull::new(s.slot_ptr(slot)).ok_or_else(|| corrupt("null slot".into()))?;
        // SAFETY: ptr..ptr+len lies inside the mapping (len <= slot_capacity, slot < slot_count, geometry
        // validated); the owner `lease` keeps the mapping alive (Attachment -> Shared -> Mapping) and keeps the
        // writer from reusing the slot, so the bytes stay valid and unchanged for as long as any Buffer exists.
        let buffer = unsafe { Buffer::from_custom_allocation(ptr, len, lease) };
        Ok(Some(LeasedFrame {
            buffer,
            slot,
            desc: d,
        }))
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The opener's entry, or in a fork child the entry it took over; another process's copy touches nothing.
        if qadataswap_sync::process::current_pid() == self.lease_pid.load(Ordering::Acquire) {
            self.entry().unregister();
        }
    }
}

impl crate::fork::ForkHandoff for Attachment {
    /// Fork *prepare* handler: register an entry in this process's name holding the leases its frames hold, for
    /// the child to take over.
    fn prepare_handoff(&self, me: ProcessIdentity, pidns: u64) {
        self.handoff.store(NO_HANDOFF, Ordering::Relaxed);
        if self.lease_pid.load(Ordering::Relaxed) != me.pid {
            return; // a copy inherited from an ancestor: its frames are not this process's
        }
        let held: Vec<(usize, u32)> = self
            .local
            .iter()
            .enumerate()
            .map(|(slot, n)| (slot, n.load(Ordering::Acquire)))
            .filter(|&(_, n)| n > 0)
            .collect();
        if held.is_empty() {
            return;
        }
        let file = self.file;
        if let Ok(i) =
            self.shared
                .lease_table()
                .register_with(me, pidns, ENTRY_INHERITED, &held, |owner| {
                    crate::fork::still_maps(owner, file)
                })
        {
            self.handoff.store(i, Ordering::Relaxed);
        }
    }

    /// Fork *parent* handler: the entry now belongs to the child.
    fn forget_handoff(&self) {
        self.handoff.store(NO_HANDOFF, Ordering::Relaxed);
    }

    /// Fork *child* handler: take over the entry registered for us; our frames release their leases there.
    fn complete_handoff(&self, me: ProcessIdentity) {
        let i = self.handoff.swap(NO_HANDOFF, Ordering::Relaxed);
        if i == NO_HANDOFF {
            return;
        }
        let Some(e) = self.shared.entries().get(i) else {
            return;
        };
        let Some(parent) = e.identity() else { return };
        if e.hand_over(parent, me) {
            self.lease_entry.store(i, Ordering::Release);
            self.lease_pid.store(me.pid, Ordering::Release);
        }
    }
}

/// The lease on one slot, owned by every buffer decoded from it.
struct Lease {
    att: Arc<Attachment>,
    slot: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if qadataswap_sync::process::current_pid() == self.att.lease_pid.load(Ordering::Acquire) {
            let (s, entry) = (&self.att.shared, self.att.entry());
            if let Some(n) = self.att.local.get(self.slot) {
                let _ = n.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
            }
            entry.release(self.slot);
            s.lease_released(entry);
        }
    }
}

/// A private copy of a slot descriptor.
#[derive(Clone, Copy, Debug)]
pub struct SlotDesc {
    /// Frame sequence number.
    pub frame_seq: u64,
    /// Schema version the frame was written with.
    pub schema_version: u64,
    /// Bytes of the frame.
    pub len: u64,
    /// Rows over all batches.
    pub rows: u64,
    /// Commit time, ns since the UNIX epoch.
    pub write_ns: u64,
    /// Slot flags.
    pub flags: u32,
}

/// A leased slot, not yet decoded.
pub struct LeasedFrame {
    buffer: Buffer,
    slot: usize,
    desc: SlotDesc,
}

impl std::fmt::Debug for LeasedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedFrame")
            .field("slot", &self.slot)
            .field("bytes", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl LeasedFrame {
    /// Decode into a [`Frame`] (zero-copy for uncompressed, aligned frames).
    ///
    /// # Errors
    /// [`Error::CorruptFrame`] when the metadata fails a check.
    pub fn decode(
        self,
        att: &Attachment,
        cache: &mut SchemaCache,
        validation: Validation,
        stats: &StatsCounters,
    ) -> Result<Frame> {
        let s = &att.shared;
        let start = s.map.as_ptr() as usize;
        let mut counts = decode::BufferCounts::within(start, start + s.map.len());
        let (schema, batches) = decode::decode_frame(
            &self.buffer,
            self.desc.schema_version,
            cache,
            validation,
            &mut counts,
        )
        .map_err(|e| Error::CorruptFrame {
            name: s.name.clone(),
            slot: self.slot,
            frame_seq: self.desc.frame_seq,
            what: e.0,
        })?;
        // The descriptor's row count is metadata too: it must agree with what the frame decoded to.
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows != self.desc.rows {
            return Err(Error::CorruptFrame {
                name: s.name.clone(),
                slot: self.slot,
                frame_seq: self.desc.frame_seq,
                what: format!(
                    "descriptor says {} rows, the frame holds {rows}",
                    self.desc.rows
                ),
            });
        }
        let (inside, outside) = (counts.inside, counts.outside);
        stats.frames_read.fetch_add(1, Ordering::Relaxed);
        stats.bytes_read.fetch_add(self.desc.len, Ordering::Relaxed);
        stats.zero_copy_buffers.fetch_add(inside, Ordering::Relaxed);
        stats.copies.fetch_add(outside, Ordering::Relaxed);
        // The slot's bytes ride along only when the batches point into them (then they hold the same lease anyway):
        // a frame decoded into private memory (compressed) must not keep its slot leased.
        let encoded = (outside == 0).then_some(EncodedBytes(self.buffer));
        Ok(Frame {
            encoded,
            seq: self.desc.frame_seq,
            schema,
            batches,
            rows: self.desc.rows as usize,
            bytes: self.desc.len as usize,
            write_ns: self.desc.write_ns,
        })
    }
}

/// A frame's slot bytes; `Debug` shows their length, not the (possibly huge) contents.
#[derive(Clone)]
struct EncodedBytes(Buffer);

impl std::fmt::Debug for EncodedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// One frame as read: its batches' buffers point into shared memory and hold a lease on the slot until the last of
/// them is dropped.
#[derive(Clone, Debug)]
pub struct Frame {
    encoded: Option<EncodedBytes>,
    seq: u64,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    write_ns: u64,
}

impl Frame {
    /// The frame's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    /// The record batches, as written (not rechunked).
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }
    /// Take the batches.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }
    /// Rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.rows
    }
    /// Encoded size in the slot.
    pub fn num_bytes(&self) -> usize {
        self.bytes
    }
    /// When the writer committed it (ns since the UNIX epoch).
    pub fn write_time_ns(&self) -> u64 {
        self.write_ns
    }
    /// The frame's bytes as they lie in the slot: a complete Arrow IPC stream (Schema message, dictionaries,
    /// record batches, end marker; docs/FORMAT.md §6), zero-copy, holding the slot's lease like the batches do.
    /// What a gateway sends on without re-encoding. `None` when the batches were decoded into private memory
    /// (compressed frames) or copied ([`Frame::to_owned`]): those hold no lease on the slot.
    pub fn encoded(&self) -> Option<&Buffer> {
        self.encoded.as_ref().map(|e| &e.0)
    }
    /// A deep copy in private memory: holds no lease.
    ///
    /// # Errors
    /// Arrow errors while copying.
    pub fn to_owned(&self) -> Result<Frame> {
        let batches = self
            .batches
            .iter()
            .map(|b| {
                let cols = b
                    .columns()
                    .iter()
                    .map(|c| deep_copy(c.as_ref()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                RecordBatch::try_new_with_options(
                    b.schema(),
                    cols,
                    &arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Frame {
            batches,
            encoded: None,
            ..self.clone()
        })
    }
}

/// Copy every buffer of an array (children, dictionaries and null bitmaps included) into fresh memory, then run
/// Arrow's full validation on the private copy (so a hostile writer cannot change what was validated).
fn deep_copy(
    a: &dyn arrow_array::Array,
) -> std::result::Result<arrow_array::ArrayRef, arrow_schema::ArrowError> {
    Ok(arrow_array::make_array(deep_copy_data(&a.to_data())?))
}

fn deep_copy_data(
    d: &arrow_data::ArrayData,
) -> std::result::Result<arrow_data::ArrayData, arrow_schema::ArrowError> {
    let buffers = d
        .buffers()
        .iter()
        .map(|b| Buffer::from_slice_ref(b.as_slice()))
        .collect::<Vec<_>>();
    let children = d
        .child_data()
        .iter()
        .map(deep_copy_data)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let nulls = d.nulls().map(|n| {
        let bits = Buffer::from_slice_ref(n.buffer().as_slice());
        arrow_buffer::NullBuffer::new(arrow_buffer::BooleanBuffer::new(bits, n.offset(), n.len()))
    });
    arrow_data::ArrayDataBuilder::new(d.data_type().clone())
        .len(d.len())
        .offset(d.offset())
        .buffers(buffers)
        .child_data(children)
        .nulls(nulls)
        .build()
}

/// What one [`SnapshotReader::poll_newer_or_register`] found.
#[derive(Debug)]
pub enum NewerPoll {
    /// A frame newer than asked for, or the error that ends the wait.
    Ready(Result<Frame>),
    /// None yet: the waker is registered and is woken when the writer publishes (keep this until then).
    Registered(qadataswap_sync::reactor::Registration),
    /// None yet, and the reactor thread could not be started.
    NoReactor(std::io::Error),
}

/// Reads snapshots: the newest committed frame, or the next newer one.
///
/// `Send + Sync`: one reader may be shared by threads; each call takes its own lease.
pub struct SnapshotReader {
    att: Arc<Attachment>,
    opts: ReaderOptions,
    last_seq: AtomicU64,
    cache: Mutex<SchemaCache>,
    stats: StatsCounters,
}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("name", &self.name())
            .field("last_seq", &self.last_seq())
            .field("options", &self.opts)
            .finish_non_exhaustive()
    }
}

impl SnapshotReader {
    /// Attach to the snapshot segment `name`.
    ///
    /// # Errors
    /// See [`Attachment::open`].
    pub fn open(name: &str) -> Result<SnapshotReader> {
        Self::builder(name).open()
    }

    /// A builder for everything optional.
    pub fn builder(name: &str) -> ReaderBuilder {
        ReaderBuilder {
            name: name.to_owned(),
            opts: ReaderOptions::default(),
            config: Some(None),
            open_timeout_set: false,
        }
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.att.shared.name
    }

    /// The attachment (mapping, entry), for address checks.
    pub fn attachment(&self) -> &Arc<Attachment> {
        &self.att
    }

    /// Counters of this reader.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// The sequence number of the last frame this reader returned (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    /// The newest committed frame, if any, without blocking.
    ///
    /// # Errors
    /// Corruption and fork errors.
    pub fn try_read(&self) -> Result<Option<Frame>> {
        self.att.check_owner()?;
        self.try_newest(0, self.opts.validation)
    }

    fn try_newest(&self, newer_than: u64, validation: Validation) -> Result<Option<Frame>> {
        let s = &self.att.shared;
        let published = s.header().published_word();
        let mut last_word = u64::MAX;
        loop {
            let word = published.load(Ordering::Acquire);
            let Some((seq, slot)) = unpack_published(word) else {
                return Ok(None);
            };
            if seq <= newer_than {
                return Ok(None);
            }
            if word == last_word {
                // The published slot is being rewritten (only possible with one slot): not available right now.
                return Ok(None);
            }
            last_word = word;
            match self.att.lease_frame(slot, seq)? {
                Some(leased) => {
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    let frame = leased.decode(&self.att, &mut cache, validation, &self.stats)?;
                    self.last_seq.fetch_max(frame.seq, Ordering::Relaxed);
                    self.att.entry().touch();
                    return Ok(Some(frame));
                }
                None => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether the segment's name still refers to the file this reader maps: a writer that closes a non-persistent
    /// segment unlinks the name, and a later writer creates a new file under it. What a long-lived reader kept
    /// for many calls (the Flight gateway's) checks before it is reused.
    ///
    /// # Errors
    /// [`Error::Shm`] if the name cannot be looked at.
    pub fn names_same_file(&self) -> Result<bool> {
        let s = &self.att.shared;
        let name = SegmentName::any(&s.name)?;
        Ok(qadataswap_shm::names_same_file(&name, &s.segment)?)
    }

    /// Without blocking: a frame newer than `newer_than` (0: the newest) if there is one, else why none can come
    /// any more (the writer closed or died: [`Error::WriterClosed`] / [`Error::WriterDied`], after a frame it
    /// published just before is delivered), else `Ok(None)`. What an async reader polls between wake-ups (see
    /// `qadataswap_sync::reactor`); reads `/proc` once when nothing is there.
    ///
    /// # Errors
    /// As above, and corruption and fork errors.
    pub fn poll_newer(&self, newer_than: u64) -> Result<Option<Frame>> {
        self.att.check_owner()?;
        let validation = self.opts.validation;
        if let Some(f) = self.try_newest(newer_than, validation)? {
            return Ok(Some(f));
        }
        match self.att.writer_gone() {
            Some(e) => match self.try_newest(newer_than, validation)? {
                Some(f) => Ok(Some(f)),
                None => Err(e),
            },
            None => Ok(None),
        }
    }

    /// One poll of an async read: a frame newer than `newer_than` (or the error that ends the wait, as
    /// [`poll_newer`](Self::poll_newer)), else `waker` registered with the process's reactor
    /// (`qadataswap_sync::reactor`), which wakes it when the writer publishes. The publish word is read before
    /// looking, so a publish in between wakes the waker at once. Holds no lease while pending; dropping the
    /// registration withdraws it. What every async snapshot read (Polars' `read_async`, the Flight gateway) polls.
    pub fn poll_newer_or_register(&self, newer_than: u64, waker: &std::task::Waker) -> NewerPoll {
        let shared = Arc::clone(self.att.shared());
        let seq = shared.notifier().sequence();
        match self.poll_newer(newer_than) {
            Ok(Some(f)) => return NewerPoll::Ready(Ok(f)),
            Ok(None) => {}
            Err(e) => return NewerPoll::Ready(Err(e)),
        }
        match qadataswap_sync::reactor::wake_on_change(&shared, Shared::notifier, seq, waker) {
            Ok(r) => NewerPoll::Registered(r),
            Err(e) => NewerPoll::NoReactor(e),
        }
    }

    /// Wait for a frame newer than `newer_than`, up to `timeout`.
    fn wait_newer(
        &self,
        newer_than: u64,
        timeout: Option<Duration>,
        validation: Validation,
    ) -> Result<Frame> {
        self.att.check_owner()?;
        if let Some(f) = self.try_newest(newer_than, validation)? {
            return Ok(f);
        }
        let start = Instant::now();
        let wait = WaitOptions {
            spin: SpinBudget(self.opts.spin),
            // A timeout too long to add to the clock is "forever".
            deadline: timeout.and_then(|t| start.checked_add(t)),
            slice: Duration::from_millis(100),
        };
        let mut last_check = Instant::now();
        let r = self
            .att
            .shared
            .notifier()
            .wait_until(&wait, || -> Result<Option<Frame>> {
                if let Some(f) = self.try_newest(newer_than, validation)? {
                    return Ok(Some(f));
                }
                if last_check.elapsed() >= Duration::from_millis(20) {
                    last_check = Instant::now();
                    if let Some(e) = self.att.writer_gone() {
                        // A frame published just before the close is still delivered.
                        return match self.try_newest(newer_than, validation)? {
                            Some(f) => Ok(Some(f)),
                            None => Err(e),
                        };
                    }
                }
                Ok(None)
            });
        match r {
            Ok(f) => Ok(f),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(WaitError::TimedOut { waited }) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Error::Timeout {
                    name: self.name().to_owned(),
                    what: "waiting for a frame",
                    waited,
                })
            }
            Err(_) => Err(Error::Timeout {
                name: self.name().to_owned(),
                what: "waiting for a frame",
                waited: start.elapsed(),
            }),
        }
    }

    /// The newest committed frame; blocks (up to the reader's default timeout) only until a first one exists.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::WriterClosed`] / [`Error::WriterDied`] if none was ever published, corruption.
    pub fn read(&self) -> Result<Frame> {
        self.wait_newer(0, self.opts.timeout, self.opts.validation)
    }

    /// As [`SnapshotReader::read`] with an explicit timeout.
    ///
    /// # Errors
    /// As [`SnapshotReader::read`].
    pub fn read_timeout(&self, timeout: Duration) -> Result<Frame> {
        self.wait_newer(0, Some(timeout), self.opts.validation)
    }

    /// The newest frame strictly newer than the last one this reader returned, waiting up to `timeout`
    /// (`None`: the reader's default).
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::WriterClosed`], [`Error::WriterDied`], corruption.
    pub fn read_next(&self, timeout: Option<Duration>) -> Result<Frame> {
        self.wait_newer(
            self.last_seq(),
            timeout.or(self.opts.timeout),
            self.opts.validation,
        )
    }

    /// The newest frame with full validation and copied into private memory: for producers that are not trusted.
    ///
    /// # Errors
    /// As [`SnapshotReader::read`], plus validation failures as [`Error::CorruptFrame`].
    pub fn read_copied(&self) -> Result<Frame> {
        // Metadata is checked while decoding; the bodies are then copied and fully validated in private memory,
        // so a writer changing bytes after the check cannot affect the result.
        let f = self.wait_newer(0, self.opts.timeout, Validation::Trusted)?;
        let owned = f.to_owned()?;
        drop(f);
        let n: u64 = owned.batches.iter().map(|b| b.columns().len() as u64).sum();
        self.stats.copies.fetch_add(n, Ordering::Relaxed);
        Ok(owned)
    }

    /// The first snapshot for which `predicate` holds, waiting up to `timeout`. Evaluates the newest frame at each
    /// publish (frames published in between may be skipped); never polls.
    ///
    /// # Errors
    /// [`Error::Timeout`] if no frame satisfied it in time; as [`SnapshotReader::read_next`].
    pub fn wait_for_condition(
        &self,
        mut predicate: impl FnMut(&Frame) -> bool,
        timeout: Option<Duration>,
    ) -> Result<Frame> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut f = self.wait_newer(0, remaining(), self.opts.validation)?;
        loop {
            if predicate(&f) {
                return Ok(f);
            }
            let seq = f.seq;
            drop(f);
            f = self.wait_newer(seq, remaining(), self.opts.validation)?;
        }
    }

    /// The schema of the newest frame, from the header's schema area (`None` before the first write).
    ///
    /// # Errors
    /// [`Error::CorruptHeader`] if the schema area does not decode.
    pub fn schema(&self) -> Result<Option<SchemaRef>> {
        crate::schema_area::read(&self.att.shared)
    }
}

/// Builder for readers. The open timeout, if not set here, is the configuration's `sync.timeout_ms`
/// (`qadataswap.yaml`, `QADATASWAP_*` variables: see [`Config`](crate::config::Config)), loaded at
/// [`open`](Self::open); [`options`](Self::options) sets everything and skips the configuration.
#[derive(Clone, Debug)]
pub struct ReaderBuilder {
    name: String,
    opts: ReaderOptions,
    /// `Some(file)`: load the configuration (from `file` if given) for what was not set; `None`: do not.
    config: Option<Option<std::path::PathBuf>>,
    open_timeout_set: bool,
}

impl ReaderBuilder {
    /// Default timeout of blocking reads.
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.opts.timeout = t;
        self
    }
    /// How long to wait for the segment to be created (or finish initialising).
    pub fn open_timeout(mut self, t: Duration) -> Self {
        self.opts.open_timeout = t;
        self.open_timeout_set = true;
        self
    }
    /// Take unset options from this configuration file (which must exist) instead of the usual search.
    pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config = Some(Some(path.into()));
        self
    }
    /// Spin iterations before parking.
    pub fn spin(mut self, n: u32) -> Self {
        self.opts.spin = n;
        self
    }
    /// Body validation level.
    pub fn validation(mut self, v: Validation) -> Self {
        self.opts.validation = v;
        self
    }
    /// Accept group/other permission bits on the segment.
    pub fn allow_shared_mode(mut self, yes: bool) -> Self {
        self.opts.allow_shared_mode = yes;
        self
    }
    /// All options at once (the configuration is then not consulted).
    pub fn options(mut self, opts: ReaderOptions) -> Self {
        self.opts = opts;
        self.config = None;
        self
    }
    /// The options set so far (before the configuration fills the unset ones).
    pub fn current(&self) -> &ReaderOptions {
        &self.opts
    }
    /// Wait until the segment's name exists (the writer created it), up to the open timeout, asking `cancelled`
    /// at least every 100 ms; `Ok(true)` once it exists, `Ok(false)` if the time ran out or `cancelled` said so.
    /// What an async open runs on a thread of its own (an inotify watch, no polling); [`open`](Self::open) after
    /// it does not wait again.
    ///
    /// # Errors
    /// [`Error::Config`], an invalid name, and `/dev/shm` that cannot be watched.
    pub fn wait_for_writer(&self, cancelled: &dyn Fn() -> bool) -> Result<bool> {
        let timeout = self.resolve()?.open_timeout;
        let name = SegmentName::new(&self.name)?;
        Ok(qadataswap_shm::wait_for_name(&name, timeout, cancelled)?)
    }

    /// The options [`open`](Self::open) uses: those set here, the open timeout from the configuration unless set.
    ///
    /// # Errors
    /// [`Error::Config`]: a bad configuration file or variable (named).
    pub fn resolve(&self) -> Result<ReaderOptions> {
        let mut opts = self.opts.clone();
        if let Some(file) = &self.config {
            let cfg = crate::config::Config::load_with(file.as_deref())?;
            if !self.open_timeout_set {
                opts.open_timeout = cfg.timeout();
            }
        }
        Ok(opts)
    }

    /// Attach.
    ///
    /// # Errors
    /// [`Error::Config`] (a bad configuration file or variable, named), and see [`Attachment::open`].
    pub fn open(self) -> Result<SnapshotReader> {
        let opts = self.resolve()?;
        let att = Attachment::open(&self.name, Mode::Snapshot, &opts)?;
        Ok(SnapshotReader {
            att,
            opts,
            last_seq: AtomicU64::new(0),
            cache: Mutex::new(None),
            stats: StatsCounters::default(),
        })
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<SnapshotReader>();
    is::<Frame>();
    let _ = layout::MAGIC;
}
