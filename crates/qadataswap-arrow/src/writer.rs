//! The writer side: create or take over a segment, encode frames into free slots, commit and publish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use qadataswap_shm::{
    Access, CreateOptions, OpenOptions, Protection, Segment, SegmentName, ShmError,
};
use qadataswap_sync::futex;
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};
use qadataswap_sync::process::ProcessIdentity;

use crate::encode::{self, SlotCursor};
use crate::error::{Error, Result};
use crate::layout::{
    self, desc, flags, off, pack_published, state, unpack_published, Geometry, Mode, HEADER_SIZE,
};
use crate::options::WriterOptions;
use crate::segment::{now_ns, wait_initialised, HeaderCopy, Shared};
use crate::stats::{Stats, StatsCounters};

/// What a committed write produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteInfo {
    /// The frame's sequence number (1, 2, ...; continues across writer takeovers).
    pub seq: u64,
    /// The slot it went to.
    pub slot: usize,
    /// Bytes of the encoded frame.
    pub bytes: usize,
    /// Rows over all batches.
    pub rows: usize,
}

/// The writing end of a segment, shared by the snapshot writer and the stream crate.
pub struct RawWriter {
    pub(crate) shared: Arc<Shared>,
    me: ProcessIdentity,
    pub(crate) opts: WriterOptions,
    pub(crate) schema_version: u64,
    pub(crate) last_schema: Option<SchemaRef>,
    /// The one-copy encoder's per-schema work (Schema message, dictionary ids), kept across frames.
    encoded_schema: Option<crate::onecopy::EncodedSchema>,
    pub(crate) stats: StatsCounters,
    closed: bool,
}

impl RawWriter {
    /// Create the segment `name` (or take over one whose writer is dead) in `mode`.
    ///
    /// # Errors
    /// Name, permission and space errors from the shm layer; [`Error::WriterAlive`] if a live writer owns the
    /// name; [`Error::Foreign`] / [`Error::VersionMismatch`] for a segment that is not ours to take.
    pub fn create(name: &str, mode: Mode, opts: WriterOptions) -> Result<RawWriter> {
        let seg_name = SegmentName::new(name)?;
        let geo = Geometry::new(
            mode,
            opts.size,
            opts.num_buffers,
            opts.reader_capacity,
            opts.schema_capacity,
        )?;
        let me = ProcessIdentity::current();
        // Two attempts: the second after removing a half-initialised segment whose creator died.
        for _ in 0..3 {
            match Segment::create(
                &seg_name,
                geo.total_size,
                &CreateOptions {
                    mode: opts.mode,
                    populate: true,
                },
            ) {
                Ok(segment) => return Self::initialise(seg_name, segment, geo, me, opts),
                Err(ShmError::AlreadyExists { .. }) => {
                    match Self::take_over(&seg_name, mode, &geo, me, &opts)? {
                        Some(w) => return Ok(w),
                        None => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::InvalidConfig {
            what: format!("segment '{name}' keeps appearing while being recreated; another process races this writer"),
        })
    }

    fn initialise(
        name: SegmentName,
        segment: Segment,
        geo: Geometry,
        me: ProcessIdentity,
        opts: WriterOptions,
    ) -> Result<RawWriter> {
        let map = match segment.map(0, geo.total_size, Protection::ReadWrite, true) {
            Ok(m) => m,
            Err(e) => {
                let _ = qadataswap_shm::unlink(&name);
                return Err(e.into());
            }
        };
        let shared = Arc::new(Shared {
            name: name.as_str().to_owned(),
            segment,
            map,
            geo,
        });
        let s = &shared;
        let mut hflags = 0;
        if opts.persistent {
            hflags |= flags::PERSISTENT;
        }
        match opts.compression {
            Some(crate::options::Compression::Lz4) => hflags |= flags::LZ4,
            Some(crate::options::Compression::Zstd) => hflags |= flags::ZSTD,
            None => {}
        }
        // The file is fresh (zeroed): state is INITIALISING until the last store below.
        s.header_u32(off::CREATOR_PID)
            .store(me.pid, Ordering::Relaxed);
        s.header_u64(off::CREATOR_START_TIME)
            .store(me.start_time, Ordering::Relaxed);
        s.header_u64(off::MAGIC)
            .store(u64::from_le_bytes(layout::MAGIC), Ordering::Relaxed);
        s.header_u32(off::FORMAT_VERSION)
            .store(layout::FORMAT_VERSION, Ordering::Relaxed);
        s.header_u32(off::ABI)
            .store(layout::ABI_FINGERPRINT, Ordering::Relaxed);
        s.header_u32(off::HEADER_SIZE)
            .store(HEADER_SIZE as u32, Ordering::Relaxed);
        s.header_u32(off::FLAGS).store(hflags, Ordering::Relaxed);
        s.header_u64(off::TOTAL_SIZE)
            .store(geo.total_size as u64, Ordering::Relaxed);
        s.header_u32(off::MODE)
            .store(geo.mode.to_u32(), Ordering::Relaxed);
        s.header_u32(off::SLOT_COUNT)
            .store(geo.slot_count as u32, Ordering::Relaxed);
        s.header_u64(off::SLOT_CAPACITY)
            .store(geo.slot_capacity as u64, Ordering::Relaxed);
        s.header_u32(off::READER_CAPACITY)
            .store(geo.reader_capacity as u32, Ordering::Relaxed);
        s.header_u32(off::SCHEMA_CAPACITY)
            .store(geo.schema_capacity as u32, Ordering::Relaxed);
        s.header_u64(off::CREATED_NS)
            .store(now_ns(), Ordering::Relaxed);
        s.header_u64(off::READER_TABLE_OFFSET)
            .store(geo.reader_table_offset as u64, Ordering::Relaxed);
        s.header_u32(off::READER_ENTRY_SIZE)
            .store(layout::READER_ENTRY_SIZE as u32, Ordering::Relaxed);
        s.header_u32(off::MAX_SLOTS)
            .store(layout::MAX_SLOT_COUNT as u32, Ordering::Relaxed);
        s.header_u64(off::SLOT_TABLE_OFFSET)
            .store(geo.slot_table_offset as u64, Ordering::Relaxed);
        s.header_u32(off::SLOT_DESC_SIZE)
            .store(layout::SLOT_DESC_SIZE as u32, Ordering::Relaxed);
        s.header_u64(off::SCHEMA_OFFSET)
            .store(geo.schema_offset as u64, Ordering::Relaxed);
        s.header_u64(off::DATA_OFFSET)
            .store(geo.data_offset as u64, Ordering::Relaxed);
        s.header_u32(off::WRITER_PID)
            .store(me.pid, Ordering::Relaxed);
        s.header_u64(off::WRITER_START_TIME)
            .store(me.start_time, Ordering::Relaxed);
        s.header_u64(off::GENERATION).store(1, Ordering::Relaxed);
        s.set_state(state::READY);
        Ok(RawWriter {
            shared,
            me,
            opts,
            schema_version: 0,
            last_schema: None,
            encoded_schema: None,
            stats: StatsCounters::default(),
            closed: false,
        })
    }

    /// An existing segment: take it over if its writer is gone, refuse if it is alive or not ours.
    /// `Ok(None)` means it was a dead creator's half-initialised segment and was removed: create again.
    fn take_over(
        name: &SegmentName,
        mode: Mode,
        wanted: &Geometry,
        me: ProcessIdentity,
        opts: &WriterOptions,
    ) -> Result<Option<RawWriter>> {
        let segment = Segment::open(name, Access::ReadWrite, &OpenOptions::default())?;
        segment.require_len(HEADER_SIZE)?;
        let head = segment.map(0, HEADER_SIZE, Protection::ReadWrite, false)?;
        if let Err(Error::NotInitialised { creator_pid, .. }) =
            wait_initialised(&head, name.as_str(), Duration::from_millis(200))
        {
            let copy = HeaderCopy::read(&head);
            let creator = ProcessIdentity {
                pid: creator_pid,
                start_time: copy.u64(off::CREATOR_START_TIME),
            };
            if creator_pid != 0 && creator.is_alive() {
                return Err(Error::WriterAlive {
                    name: name.as_str().to_owned(),
                    pid: creator_pid,
                });
            }
            // Creator died during initialisation: nobody can be attached (readers wait for READY); reclaim.
            drop(head);
            qadataswap_shm::unlink(name)?;
            return Ok(None);
        }
        let copy = HeaderCopy::read(&head);
        let geo = copy.validate(name.as_str())?;
        drop(head);
        if geo.mode != mode {
            return Err(Error::WrongMode {
                name: name.as_str().to_owned(),
                found: geo.mode,
                expected: mode,
            });
        }
        segment.require_len(geo.total_size)?;
        let map = segment.map(0, geo.total_size, Protection::ReadWrite, true)?;
        let shared = Arc::new(Shared {
            name: name.as_str().to_owned(),
            segment,
            map,
            geo,
        });
        // Claim the writer role: only if the recorded writer is absent or dead.
        let pid_word = shared.header_u32(off::WRITER_PID);
        loop {
            let current = shared.writer_identity();
            if let Some(w) = current {
                if w.pid == me.pid && w.start_time == me.start_time {
                    return Err(Error::WriterAlive {
                        name: name.as_str().to_owned(),
                        pid: w.pid,
                    });
                }
                if w.is_alive() {
                    return Err(Error::WriterAlive {
                        name: name.as_str().to_owned(),
                        pid: w.pid,
                    });
                }
            }
            let old = current.map_or(0, |w| w.pid);
            if pid_word
                .compare_exchange(old, me.pid, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
        }
        shared
            .header_u64(off::WRITER_START_TIME)
            .store(me.start_time, Ordering::Release);
        shared
            .header_u64(off::GENERATION)
            .fetch_add(1, Ordering::AcqRel);
        if geo != *wanted {
            // Keep the existing geometry: readers may be attached. Say so only through `geometry()`.
        }
        // A write the dead writer left half done keeps an odd sequence: mark such slots empty.
        for slot in 0..geo.slot_count {
            let seq = shared.slot_seq(slot);
            if seq.load() % 2 == 1 {
                seq.commit(0);
            }
        }
        let lt = shared.lease_table();
        lt.reclaim_dead();
        let mut opts = opts.clone();
        opts.persistent = copy.u32(off::FLAGS) & flags::PERSISTENT != 0 || opts.persistent;
        shared.set_state(state::READY);
        Ok(Some(RawWriter {
            shared,
            me,
            opts,
            schema_version: copy.u64(off::SCHEMA_VERSION),
            last_schema: None,
            encoded_schema: None,
            stats: StatsCounters::default(),
            closed: false,
        }))
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        &self.opts
    }

    /// The writer generation (bumped each time a new writer takes the segment over).
    pub fn generation(&self) -> u64 {
        self.shared
            .header_u64(off::GENERATION)
            .load(Ordering::Acquire)
    }

    /// Counters of this writer.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    pub(crate) fn check_owner(&self) -> Result<()> {
        let pid = qadataswap_sync::process::current_pid();
        if pid != self.me.pid {
            return Err(Error::Forked {
                what: "writer",
                name: self.shared.name.clone(),
                owner_pid: self.me.pid,
                pid,
            });
        }
        Ok(())
    }

    /// Check a frame's (or a stream chunk's) batches against one schema.
    pub(crate) fn check_frame(schema: &Schema, batches: &[RecordBatch]) -> Result<()> {
        for (i, b) in batches.iter().enumerate() {
            if b.schema_ref().fields() != schema.fields() {
                return Err(Error::InvalidFrame {
                    what: format!(
                        "batch {i} has schema {:?}, the frame's is {:?}; a frame has one schema",
                        b.schema(),
                        schema
                    ),
                });
            }
        }
        Ok(())
    }

    /// Wait until `pick` finds a slot, parking on the release futex between attempts and reclaiming dead readers.
    pub(crate) fn wait_for_slot(
        &self,
        mut pick: impl FnMut(&Shared) -> Option<usize>,
    ) -> Result<usize> {
        if let Some(s) = pick(&self.shared) {
            return Ok(s);
        }
        self.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let wait = WaitOptions {
            spin: SpinBudget(self.opts.spin),
            deadline: Some(start + self.opts.lease_timeout),
            slice: Duration::from_millis(50),
        };
        let shared = &self.shared;
        let r = shared
            .release_notifier()
            .wait_until(&wait, || -> Result<Option<usize>, Error> {
                if let Some(s) = pick(shared) {
                    return Ok(Some(s));
                }
                shared.lease_table().reclaim_dead();
                Ok(pick(shared))
            });
        match r {
            Ok(s) => Ok(s),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(WaitError::TimedOut { waited }) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                let lt = shared.lease_table();
                let holders = (0..shared.geo.slot_count)
                    .map(|s| {
                        let h = lt.holders(s);
                        let who: Vec<String> =
                            h.iter().map(|(pid, n)| format!("pid {pid} x{n}")).collect();
                        format!("slot {s}: [{}]", who.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(Error::AllSlotsLeased {
                    name: shared.name.clone(),
                    waited,
                    holders,
                })
            }
            Err(_) => Err(Error::Timeout {
                name: shared.name.clone(),
                what: "waiting for a free slot",
                waited: start.elapsed(),
            }),
        }
    }

    /// Claim `slot` for frame `seq`, encode the frame into it and commit. On any error the slot is restored and
    /// nothing becomes visible. Does not publish (the caller decides how: snapshot word or stream head).
    pub(crate) fn write_slot(
        &mut self,
        slot: usize,
        seq: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<WriteInfo> {
        let claim = self.claim_slot(slot, seq)?;
        let shared = Arc::clone(&self.shared);
        let cap = shared.geo.slot_capacity;
        // SAFETY: the slot is claimed (odd sequence, no lease): no reader looks at its bytes until commit, and
        // slot_ptr(slot)..+cap lies inside the writable mapping.
        let cursor = unsafe { SlotCursor::new(shared.slot_ptr(slot), cap) };
        let encoded = match encode::encode_frame(
            cursor,
            schema,
            batches,
            self.opts.compression,
            &mut self.encoded_schema,
        ) {
            Ok(e) if e.len <= cap => e,
            Ok(e) => {
                // The one-copy encoder refuses before writing; arrow-ipc's may have written up to the capacity.
                self.abort_slot(claim, e.copies > 0 || self.opts.compression.is_some());
                return Err(Error::SlotTooSmall {
                    name: shared.name.clone(),
                    needed: e.len,
                    capacity: cap,
                });
            }
            Err(e) => {
                self.abort_slot(claim, true);
                return Err(Error::Arrow(e));
            }
        };
        self.commit_slot(
            claim,
            crate::claim::Committed {
                schema,
                len: encoded.len,
                rows: batches.iter().map(|b| b.num_rows()).sum(),
                batches: batches.len(),
                compressed: self.opts.compression.is_some(),
                copies: encoded.copies,
            },
        )
    }

    /// Store the schema message in the header's schema area under its seqlock and bump the schema version.
    pub(crate) fn publish_schema(&mut self, schema: &SchemaRef) -> Result<()> {
        let shared = &self.shared;
        let msg = encode::schema_message(schema);
        if msg.len() > shared.geo.schema_capacity {
            return Err(Error::SchemaTooLarge {
                name: shared.name.clone(),
                needed: msg.len(),
                capacity: shared.geo.schema_capacity,
            });
        }
        let word = qadataswap_sync::seqlock::SeqWord::new(shared.header_u64(off::SCHEMA_SEQ));
        let cur = word.load();
        let cur = cur + (cur & 1);
        word.begin_write(cur + 1);
        // SAFETY: the schema area (schema_capacity bytes, checked above) belongs to the writer; readers copy it
        // only under the seqlock and discard copies taken while the word was odd or changed.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), shared.schema_ptr(), msg.len()) };
        self.schema_version += 1;
        shared
            .header_u64(off::SCHEMA_VERSION)
            .store(self.schema_version, Ordering::Relaxed);
        shared
            .header_u64(off::SCHEMA_LEN)
            .store(msg.len() as u64, Ordering::Relaxed);
        word.commit(cur + 2);
        self.last_schema = Some(Arc::clone(schema));
        Ok(())
    }

    /// Close: mark the segment `final_state`, wake everyone, and unlink it unless persistent.
    pub(crate) fn close_with(&mut self, final_state: u32) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if qadataswap_sync::process::current_pid() != self.me.pid {
            // Inherited through fork: the parent owns the segment.
            return Ok(());
        }
        let s = &self.shared;
        s.set_state(final_state);
        let _ = s.header_u32(off::WRITER_PID).compare_exchange(
            self.me.pid,
            0,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        futex::wake(s.header_u32(off::STATE), u32::MAX);
        if !self.opts.persistent {
            if let Some(name) = s.segment.name() {
                match qadataswap_shm::unlink(name) {
                    Ok(()) | Err(ShmError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

impl Drop for RawWriter {
    fn drop(&mut self) {
        let _ = self.close_with(state::CLOSED);
    }
}

/// The snapshot writer's slot choice: not the published slot (unless there is only one), no lease, oldest frame
/// first.
pub(crate) fn pick_snapshot_slot(s: &Shared) -> Option<usize> {
    let n = s.geo.slot_count;
    let published =
        unpack_published(s.header_u64(off::PUBLISHED).load(Ordering::Acquire)).map(|(_, sl)| sl);
    let lt = s.lease_table();
    (0..n)
        .filter(|&i| n == 1 || Some(i) != published)
        .filter(|&i| lt.leases_on(i) == 0)
        .min_by_key(|&i| s.desc_u64(i, desc::FRAME_SEQ).load(Ordering::Relaxed))
}

/// Writes snapshots: each `write` publishes a new newest frame.
///
/// `Send` but not shared: one thread writes at a time (`&mut self`).
pub struct SnapshotWriter {
    pub(crate) raw: RawWriter,
    pub(crate) next_seq: u64,
}

impl SnapshotWriter {
    /// Create a snapshot segment of `size` bytes of data capacity (split across 3 slots).
    ///
    /// # Errors
    /// See [`RawWriter::create`].
    pub fn create(name: &str, size: usize) -> Result<SnapshotWriter> {
        Self::builder(name).size(size).create()
    }

    /// A builder for everything optional.
    pub fn builder(name: &str) -> WriterBuilder {
        WriterBuilder {
            name: name.to_owned(),
            opts: WriterOptions::default(),
        }
    }

    fn from_raw(raw: RawWriter) -> SnapshotWriter {
        let published = raw
            .shared
            .header_u64(off::PUBLISHED)
            .load(Ordering::Acquire);
        let next_seq = unpack_published(published).map_or(1, |(s, _)| s + 1);
        SnapshotWriter { raw, next_seq }
    }

    /// Publish one record batch as the newest frame.
    ///
    /// # Errors
    /// [`Error::SlotTooSmall`], [`Error::AllSlotsLeased`] after the lease timeout, Arrow encoding errors.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<WriteInfo> {
        self.write_frame(batch.schema_ref(), std::slice::from_ref(batch))
    }

    /// Publish several record batches of one schema as one frame (not rechunked).
    ///
    /// # Errors
    /// As [`SnapshotWriter::write`], plus [`Error::InvalidFrame`] when a batch's schema differs.
    pub fn write_frame(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<WriteInfo> {
        self.raw.check_owner()?;
        RawWriter::check_frame(schema, batches)?;
        let info = loop {
            let slot = self.raw.wait_for_slot(pick_snapshot_slot)?;
            match self.raw.write_slot(slot, self.next_seq, schema, batches) {
                Err(Error::AllSlotsLeased { waited, .. }) if waited.is_zero() => continue,
                other => break other?,
            }
        };
        self.publish(&info);
        Ok(info)
    }

    /// Make a committed frame the newest: one release store of the published word, a wake only if a reader
    /// sleeps. Shared by `write_frame` and the loan's commit.
    pub(crate) fn publish(&mut self, info: &WriteInfo) {
        let shared = &self.raw.shared;
        shared
            .header_u64(off::PUBLISHED)
            .store(pack_published(info.seq, info.slot), Ordering::Release);
        shared.notifier().notify();
        self.next_seq += 1;
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.raw.shared.name
    }

    /// Counters of this writer.
    pub fn stats(&self) -> Stats {
        self.raw.stats()
    }

    /// The layout in force (after a takeover it is the existing segment's).
    pub fn geometry(&self) -> &Geometry {
        &self.raw.shared.geo
    }

    /// The writer generation.
    pub fn generation(&self) -> u64 {
        self.raw.generation()
    }

    /// The sequence number the next write will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segment (for address checks and the CLI).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.raw.shared
    }

    /// Close cleanly: readers finish what they hold and then get [`Error::WriterClosed`]; the name is unlinked
    /// unless the segment was made persistent. Dropping the writer does the same.
    ///
    /// # Errors
    /// An unlink failure.
    pub fn close(mut self) -> Result<()> {
        self.raw.close_with(state::CLOSED)
    }
}

/// Builder for writers (`SnapshotWriter::builder(name).size(..).slots(..).create()`).
#[derive(Clone, Debug)]
pub struct WriterBuilder {
    name: String,
    opts: WriterOptions,
}

impl WriterBuilder {
    /// Total data capacity in bytes (split across the slots).
    pub fn size(mut self, bytes: usize) -> Self {
        self.opts.size = bytes;
        self
    }
    /// Number of slots (`num_buffers`, default 3).
    pub fn slots(mut self, n: usize) -> Self {
        self.opts.num_buffers = n;
        self
    }
    /// Reader-table capacity (default 64).
    pub fn reader_capacity(mut self, n: usize) -> Self {
        self.opts.reader_capacity = n;
        self
    }
    /// Schema-area capacity in bytes (default 64 KiB).
    pub fn schema_capacity(mut self, n: usize) -> Self {
        self.opts.schema_capacity = n;
        self
    }
    /// File permissions (default 0o600).
    pub fn permissions(mut self, mode: u32) -> Self {
        self.opts.mode = mode;
        self
    }
    /// Keep the segment after the writer closes.
    pub fn persistent(mut self, yes: bool) -> Self {
        self.opts.persistent = yes;
        self
    }
    /// Spin iterations before parking.
    pub fn spin(mut self, n: u32) -> Self {
        self.opts.spin = n;
        self
    }
    /// How long to wait for a leased slot.
    pub fn lease_timeout(mut self, d: Duration) -> Self {
        self.opts.lease_timeout = d;
        self
    }
    /// Body compression (frames then cost a copy to read).
    pub fn compression(mut self, c: Option<crate::options::Compression>) -> Self {
        self.opts.compression = c;
        self
    }
    /// All options at once.
    pub fn options(mut self, opts: WriterOptions) -> Self {
        self.opts = opts;
        self
    }
    /// The options so far.
    pub fn current(&self) -> &WriterOptions {
        &self.opts
    }
    /// Create the snapshot writer.
    ///
    /// # Errors
    /// See [`RawWriter::create`].
    pub fn create(self) -> Result<SnapshotWriter> {
        Ok(SnapshotWriter::from_raw(RawWriter::create(
            &self.name,
            Mode::Snapshot,
            self.opts,
        )?))
    }
    /// Create a raw writer in `mode` (used by the stream crate).
    ///
    /// # Errors
    /// See [`RawWriter::create`].
    pub fn create_raw(self, mode: Mode) -> Result<RawWriter> {
        RawWriter::create(&self.name, mode, self.opts)
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<SnapshotWriter>();
    let _ = AtomicU64::new(0);
}
