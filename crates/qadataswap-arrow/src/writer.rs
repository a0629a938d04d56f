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
use qadataswap_sync::owner::{Holder, Refused, Taken};
use qadataswap_sync::process::{pid_namespace, Liveness, ProcessIdentity};

use qadataswap_sync::ring::{StreamRing, WriterSide};

use crate::claim::{Claim, Claimed, Committed};
use crate::control::{Header, HeaderInit};
use crate::encode::{self, SlotCursor};
use crate::error::{Error, Result};
use crate::layout::{self, flags, state, unpack_published, Geometry, Mode, HEADER_SIZE};
use crate::options::WriterOptions;
use crate::segment::{now_ns, HeaderCopy, Shared};
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

impl std::fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWriter")
            .field("name", &self.shared.name)
            .field("options", &self.opts)
            .finish_non_exhaustive()
    }
}

impl RawWriter {
    /// Create the segment `name` (or take over one whose writer is dead) in `mode`.
    ///
    /// A new segment is built in full under a private name and then published under `name` atomically and only if
    /// the name is still free, so no other process ever acts on a half-built segment; of several processes creating
    /// the same name at once exactly one wins, the others find its live writer. An existing segment is taken over
    /// only from a writer known to be dead, by one compare-and-swap of its role word.
    ///
    /// # Errors
    /// Name, permission and space errors from the shm layer; [`Error::WriterAlive`] if a live writer owns the
    /// name; [`Error::WriterUnjudgeable`] if its writer runs in another PID namespace; [`Error::Foreign`] /
    /// [`Error::VersionMismatch`] for a segment that is not ours to take.
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
        // Whatever dead creators left behind is nobody's: clear it before adding to /dev/shm.
        crate::status::sweep_leftovers();
        for _ in 0..3 {
            match Self::take_over(&seg_name, mode, me, &opts) {
                Err(Error::Shm(ShmError::NotFound { .. })) => {}
                Err(Error::NotInitialised { creator_pid, .. }) => {
                    // A version-1 creator published it before building it: remove it if the creator is dead (it is
                    // provably ours and unused), then create.
                    match crate::status::remove(name, false) {
                        Ok(_) | Err(Error::Shm(ShmError::NotFound { .. })) => continue,
                        Err(Error::InUse { .. }) => {
                            return Err(Error::WriterAlive {
                                name: name.to_owned(),
                                pid: creator_pid,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                other => return other,
            }
            match Self::create_fresh(&seg_name, geo, me, &opts) {
                // Another creator published the name first: take over (or find its live writer).
                Err(Error::Shm(ShmError::AlreadyExists { .. })) => continue,
                other => return other,
            }
        }
        Err(Error::InvalidConfig {
            what: format!(
                "segment '{name}' keeps appearing and disappearing while being created; another process removes and \
                 re-creates it in a loop"
            ),
        })
    }

    /// Build a new segment privately, then publish it as `name`. [`Error::Shm`] with `AlreadyExists` if another
    /// process published the name first (ours is removed).
    fn create_fresh(
        name: &SegmentName,
        geo: Geometry,
        me: ProcessIdentity,
        opts: &WriterOptions,
    ) -> Result<RawWriter> {
        let pidns = pid_namespace();
        let segment = Segment::create_private(
            name,
            &Header::identity_bytes(me, pidns),
            geo.total_size,
            &CreateOptions {
                mode: opts.mode,
                populate: true,
            },
        )?;
        // On any error below, dropping `segment` removes the private name.
        let map = segment.map(0, geo.total_size, Protection::ReadWrite, true)?;
        let mut shared = Shared {
            name: name.as_str().to_owned(),
            segment,
            map,
            geo,
        };
        Self::initialise(&shared, geo, me, pidns, opts);
        shared.segment.publish(name)?;
        Ok(RawWriter {
            shared: Arc::new(shared),
            me,
            opts: opts.clone(),
            schema_version: 0,
            last_schema: None,
            encoded_schema: None,
            stats: StatsCounters::default(),
            closed: false,
        })
    }

    /// Write every header field of a fresh (zeroed past its identity) segment, ending with `state = READY`.
    fn initialise(
        s: &Shared,
        geo: Geometry,
        me: ProcessIdentity,
        pidns: u64,
        opts: &WriterOptions,
    ) {
        let mut hflags = 0;
        if opts.persistent {
            hflags |= flags::PERSISTENT;
        }
        match opts.compression {
            Some(crate::options::Compression::Lz4) => hflags |= flags::LZ4,
            Some(crate::options::Compression::Zstd) => hflags |= flags::ZSTD,
            None => {}
        }
        // Magic, version, ABI and the creator were written before the file grew; state is INITIALISING until
        // `set_state` below (nobody else can open the file before it is published anyway).
        s.header().initialise(&HeaderInit {
            geo,
            flags: hflags,
            created_ns: now_ns(),
            writer_claim: Holder::of(me, pidns).map(|h| h.pack()),
            writer: me,
            writer_pidns: pidns,
        });
        s.set_state(state::READY);
    }

    /// An existing segment: take it over if its writer is gone, refuse if it is alive or not ours.
    /// [`Error::Shm`] with `NotFound` when there is no segment of that name.
    fn take_over(
        name: &SegmentName,
        mode: Mode,
        me: ProcessIdentity,
        opts: &WriterOptions,
    ) -> Result<RawWriter> {
        let segment = Segment::open(name, Access::ReadWrite, &OpenOptions::default())?;
        let foreign = || Error::Foreign {
            name: name.as_str().to_owned(),
        };
        if segment.len() < HEADER_SIZE {
            return Err(foreign());
        }
        let head = segment.map(0, HEADER_SIZE, Protection::ReadOnly, false)?;
        let copy = HeaderCopy::read(&head);
        drop(head);
        // Segments are published only once built, so a public name without our magic is someone else's file, never
        // a half-built segment of ours: leave it alone.
        if copy.magic() != layout::MAGIC {
            return Err(foreign());
        }
        if copy.state() == state::INITIALISING {
            return Err(Error::NotInitialised {
                name: name.as_str().to_owned(),
                creator_pid: copy.creator_pid(),
                waited: Duration::ZERO,
            });
        }
        let geo = copy.validate(name.as_str())?;
        if copy.version() != layout::FORMAT_VERSION {
            // Readable, but a writer of this version would mix two protocols: refuse to take it over.
            return Err(Error::VersionMismatch {
                name: name.as_str().to_owned(),
                found: copy.version(),
                expected: layout::FORMAT_VERSION,
                found_abi: copy.abi(),
                expected_abi: layout::ABI_FINGERPRINT,
            });
        }
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
        // Claim the writer role: one compare-and-swap from a holder judged dead (or none), so a live writer is
        // never displaced whatever the interleaving with other claimers.
        let pidns = pid_namespace();
        let previous = match shared.writer_role().try_take(me, pidns) {
            Ok(Taken::Fresh) => 0,
            Ok(Taken::FromDead(h)) => h.pack(),
            Err(Refused::Held(h, Liveness::Unknown)) => {
                return Err(Error::WriterUnjudgeable {
                    name: name.as_str().to_owned(),
                    pid: h.pid,
                })
            }
            Err(Refused::Held(h, _)) => {
                return Err(Error::WriterAlive {
                    name: name.as_str().to_owned(),
                    pid: h.pid,
                })
            }
            Err(Refused::InvalidPid) => {
                return Err(Error::InvalidConfig {
                    what: format!("pid {} does not fit a Linux pid", me.pid),
                })
            }
        };
        // The role is ours, but is this segment still the one under the name? A writer closing cleanly (or a
        // remover) unlinks the name *before* it gives the role up, so a role taken after that belongs to a file
        // nobody can open any more: give it back and create the name afresh instead of writing into an orphan.
        if !matches!(
            qadataswap_shm::names_same_file(name, &shared.segment),
            Ok(true)
        ) {
            if let Some(mine) = Holder::of(me, pidns) {
                shared.writer_role().give_back(mine, previous);
            }
            return Err(Error::Shm(ShmError::NotFound {
                name: name.as_str().to_owned(),
            }));
        }
        // The informational words follow.
        shared.header().record_new_writer(me, pidns);
        // A write the dead writer left half done keeps an odd sequence: mark such slots empty.
        for slot in 0..geo.slot_count {
            let seq = shared.slot_seq(slot);
            if seq.load() % 2 == 1 {
                seq.commit(0);
            }
        }
        crate::reader::reclaim_dead_readers(&shared);
        let mut opts = opts.clone();
        opts.persistent = copy.flags() & flags::PERSISTENT != 0 || opts.persistent;
        shared.set_state(state::READY);
        Ok(RawWriter {
            shared,
            me,
            opts,
            schema_version: copy.schema_version(),
            last_schema: None,
            encoded_schema: None,
            stats: StatsCounters::default(),
            closed: false,
        })
    }

    /// Claim `slot` for frame `seq` (see `claim::claim_slot`).
    pub(crate) fn claim_slot(&self, slot: usize, seq: u64) -> Result<Claimed> {
        crate::claim::claim_slot(&self.shared, slot, seq)
    }

    /// Commit a claimed slot whose bytes are written: schema area if the schema changed, then the claim's commit
    /// (descriptor, even sequence, counters), then this writer's stats. Does not publish. On error the slot is given
    /// up (marked empty).
    pub(crate) fn commit_slot(&mut self, mut claim: Claim, c: Committed<'_>) -> Result<WriteInfo> {
        claim.touch();
        if self
            .last_schema
            .as_ref()
            .is_none_or(|s| !crate::onecopy::same_schema(s, c.schema))
        {
            // On error the claim is dropped here: the slot is marked empty.
            self.publish_schema(c.schema)?;
        }
        let (slot, seq) = (claim.slot, claim.seq);
        claim.commit(self.schema_version, &c);
        self.stats.frames_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(c.len as u64, Ordering::Relaxed);
        self.stats.copies.fetch_add(c.copies, Ordering::Relaxed);
        Ok(WriteInfo {
            seq,
            slot,
            bytes: c.len,
            rows: c.rows,
        })
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
        self.shared.generation()
    }

    /// Counters of this writer.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// A stream writer's end: store `stream_end = end` and the state `finished` (readers drain and see the end);
    /// the name stays until [`RawWriter::close_finished`].
    pub fn finish_stream(&self, end: u64) {
        self.shared.stream_ring_writer().finish(end);
        self.shared.set_state(state::FINISHED);
    }

    /// Close a finished stream (state `finished`): see `close_with`.
    ///
    /// # Errors
    /// An unlink failure other than the name being gone or replaced.
    pub fn close_finished(&mut self) -> Result<()> {
        self.close_with(state::FINISHED)
    }

    /// The stream ring, its writer's side: only the holder of the writer role stores into its words.
    pub fn stream_ring(&self) -> StreamRing<'_, WriterSide> {
        self.shared.stream_ring_writer()
    }

    /// The live counters behind [`RawWriter::stats`] (for the stream writer built on this one).
    pub fn counters(&self) -> &StatsCounters {
        &self.stats
    }

    /// [`Error::Forked`] unless called by the process that created this writer.
    ///
    /// # Errors
    /// [`Error::Forked`].
    pub fn check_owner(&self) -> Result<()> {
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
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] naming the batch whose schema differs.
    pub fn check_frame(schema: &Schema, batches: &[RecordBatch]) -> Result<()> {
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
            deadline: start.checked_add(self.opts.lease_timeout),
            slice: Duration::from_millis(50),
        };
        let shared = &self.shared;
        let r = shared
            .release_notifier()
            .wait_until(&wait, || -> Result<Option<usize>, Error> {
                if let Some(s) = pick(shared) {
                    return Ok(Some(s));
                }
                crate::reader::reclaim_dead_readers(shared);
                Ok(pick(shared))
            });
        match r {
            Ok(s) => Ok(s),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(WaitError::TimedOut { waited }) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                let lt = shared.lease_table();
                let mine = pid_namespace();
                let holders = (0..shared.geo.slot_count)
                    .map(|s| {
                        let who: Vec<String> = lt
                            .registered_entries()
                            .filter_map(|(_, e)| Some((e.owner()?, e.lease_count(s))))
                            .filter(|(_, n)| *n > 0)
                            .map(|(o, n)| {
                                // A holder this process cannot judge is never reclaimed: say why it waits.
                                let elsewhere = o.pidns != 0 && mine != 0 && o.pidns != mine;
                                let note = if elsewhere {
                                    " in another PID namespace, not reclaimable from here"
                                } else {
                                    ""
                                };
                                format!("pid {}{note} x{n}", o.identity.pid)
                            })
                            .collect();
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
    /// nothing becomes visible. Does not publish (the caller decides how: snapshot word or stream head). `None`: a
    /// reader leased the slot between the caller's check and the claim (pick a slot again).
    ///
    /// # Errors
    /// [`Error::SlotTooSmall`], [`Error::SchemaTooLarge`], [`Error::Protocol`], Arrow encoding errors.
    pub fn write_slot(
        &mut self,
        slot: usize,
        seq: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<Option<WriteInfo>> {
        let mut claim = match self.claim_slot(slot, seq)? {
            Claimed::Won(c) => c,
            Claimed::Raced => return Ok(None),
        };
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
                // Either way the claim is dropped on return: the slot is given up.
                if e.copies > 0 || self.opts.compression.is_some() {
                    claim.touch();
                }
                return Err(Error::SlotTooSmall {
                    name: shared.name.clone(),
                    needed: e.len,
                    capacity: cap,
                });
            }
            Err(e) => {
                claim.touch();
                return Err(Error::Arrow(e));
            }
        };
        self.commit_slot(
            claim,
            Committed {
                schema,
                len: encoded.len,
                rows: batches.iter().map(|b| b.num_rows()).sum(),
                batches: batches.len(),
                compressed: self.opts.compression.is_some(),
                copies: encoded.copies,
            },
        )
        .map(Some)
    }

    /// Store the schema message in the schema area ([`crate::schema_area::publish`]) and bump the schema version.
    pub(crate) fn publish_schema(&mut self, schema: &SchemaRef) -> Result<()> {
        crate::schema_area::publish(&self.shared, schema, self.schema_version + 1)?;
        self.schema_version += 1;
        self.last_schema = Some(Arc::clone(schema));
        Ok(())
    }

    /// Close: unlink the name unless persistent (only if it still names this very segment), then mark the segment
    /// `final_state`, wake everyone, and give up the writer role.
    ///
    /// The name goes first, while this writer still holds the role: nobody can take the segment over in between
    /// and lose its name to this close. A name that another process re-created since is left alone.
    ///
    /// # Errors
    /// An unlink failure other than the name being gone or replaced.
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
        let still_ours = s.writer_role().holder().is_some_and(|h| h.is(self.me));
        let mut unlinked = Ok(());
        if !self.opts.persistent && still_ours {
            if let Some(name) = s.segment.name() {
                unlinked = match qadataswap_shm::unlink_if_same(name, &s.segment) {
                    Ok(()) | Err(ShmError::NotFound { .. } | ShmError::Replaced { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
        }
        if still_ours {
            s.set_state(final_state);
            s.header().clear_writer_pid(self.me.pid);
            s.writer_role().release(self.me);
            futex::wake(s.header().state_word(), u32::MAX);
        }
        unlinked
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
    qadataswap_sync::ring::pick_snapshot_slot(
        s.geo.slot_count,
        s.header().published(),
        s.lease_table(),
        |i| s.desc(i).frame_seq(),
    )
}

/// Writes snapshots: each `write` publishes a new newest frame.
///
/// `Send` but not shared: one thread writes at a time (`&mut self`).
pub struct SnapshotWriter {
    pub(crate) raw: RawWriter,
    pub(crate) next_seq: u64,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("name", &self.name())
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl SnapshotWriter {
    /// Create a snapshot segment of `size` bytes of data capacity (split across 3 slots).
    ///
    /// # Errors
    /// See [`RawWriter::create`].
    pub fn create(name: &str, size: usize) -> Result<SnapshotWriter> {
        Self::builder(name).size(size).create()
    }

    /// A builder for everything optional. What is not set on it comes from the configuration
    /// ([`Config::load`](crate::config::Config::load): `qadataswap.yaml`, `QADATASWAP_*` variables, defaults).
    pub fn builder(name: &str) -> WriterBuilder {
        WriterBuilder {
            name: name.to_owned(),
            opts: WriterOptions::default(),
            config: ConfigSource::Load(None),
            set: Explicit::default(),
        }
    }

    fn from_raw(raw: RawWriter) -> SnapshotWriter {
        let published = raw.shared.header().published();
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
            if let Some(info) = self.raw.write_slot(slot, self.next_seq, schema, batches)? {
                break info;
            }
        };
        self.publish(&info);
        Ok(info)
    }

    /// Make a committed frame the newest: one release store of the published word, a wake only if a reader
    /// sleeps. Shared by `write_frame` and the loan's commit.
    pub(crate) fn publish(&mut self, info: &WriteInfo) {
        let shared = &self.raw.shared;
        shared.header().publish(info.seq, info.slot);
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

/// Where a builder's unset options come from.
#[derive(Clone, Debug)]
enum ConfigSource {
    /// [`Config::load_with`](crate::config::Config::load_with) this explicit file (or the usual search) at create.
    Load(Option<std::path::PathBuf>),
    /// This configuration.
    Given(crate::config::Config),
    /// None: every option was given ([`WriterBuilder::options`]).
    Ignored,
}

/// Which of the options the configuration covers were set on the builder (and so win over it).
#[derive(Clone, Copy, Debug, Default)]
struct Explicit {
    size: bool,
    slots: bool,
    lease_timeout: bool,
    compression: bool,
}

/// Builder for writers (`SnapshotWriter::builder(name).size(..).slots(..).create()`).
///
/// Options not set here come from the configuration (`qadataswap.yaml`: `memory.size_mb`, `memory.num_buffers`,
/// `compression.*`, and `sync.timeout_ms x (retry_count + 1)` as the lease timeout), loaded at
/// [`create`](Self::create); [`options`](Self::options) sets everything and skips the configuration.
#[derive(Clone, Debug)]
pub struct WriterBuilder {
    name: String,
    opts: WriterOptions,
    config: ConfigSource,
    set: Explicit,
}

impl WriterBuilder {
    /// Total data capacity in bytes (split across the slots).
    pub fn size(mut self, bytes: usize) -> Self {
        self.opts.size = bytes;
        self.set.size = true;
        self
    }
    /// Number of slots (`num_buffers`, default 3).
    pub fn slots(mut self, n: usize) -> Self {
        self.opts.num_buffers = n;
        self.set.slots = true;
        self
    }
    /// Take unset options from this configuration file (which must exist) instead of the usual search
    /// (`$QADATASWAP_CONFIG`, then `./qadataswap.yaml`).
    pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config = ConfigSource::Load(Some(path.into()));
        self
    }
    /// Take unset options from this configuration (no file is read).
    pub fn config(mut self, cfg: crate::config::Config) -> Self {
        self.config = ConfigSource::Given(cfg);
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
        self.set.lease_timeout = true;
        self
    }
    /// Body compression (frames then cost a copy to read).
    pub fn compression(mut self, c: Option<crate::options::Compression>) -> Self {
        self.opts.compression = c;
        self.set.compression = true;
        self
    }
    /// All options at once (the configuration is then not consulted).
    pub fn options(mut self, opts: WriterOptions) -> Self {
        self.opts = opts;
        self.config = ConfigSource::Ignored;
        self
    }
    /// The options set so far (before the configuration fills the unset ones: see [`resolve`](Self::resolve)).
    pub fn current(&self) -> &WriterOptions {
        &self.opts
    }
    /// The options [`create`](Self::create) would use: the configuration's, overridden by what was set here.
    ///
    /// # Errors
    /// [`Error::Config`]: the configuration file or a `QADATASWAP_*` variable is unreadable or wrong (the message
    /// names it).
    pub fn resolve(&self) -> Result<WriterOptions> {
        let cfg = match &self.config {
            ConfigSource::Ignored => return Ok(self.opts.clone()),
            ConfigSource::Given(c) => c.clone(),
            ConfigSource::Load(file) => crate::config::Config::load_with(file.as_deref())?,
        };
        let base = cfg.writer_options();
        let mut o = self.opts.clone();
        if !self.set.size {
            o.size = base.size;
        }
        if !self.set.slots {
            o.num_buffers = base.num_buffers;
        }
        if !self.set.lease_timeout {
            o.lease_timeout = base.lease_timeout;
        }
        if !self.set.compression {
            o.compression = base.compression;
        }
        Ok(o)
    }
    /// Create the snapshot writer.
    ///
    /// # Errors
    /// [`Error::Config`], and see [`RawWriter::create`].
    pub fn create(self) -> Result<SnapshotWriter> {
        let opts = self.resolve()?;
        Ok(SnapshotWriter::from_raw(RawWriter::create(
            &self.name,
            Mode::Snapshot,
            opts,
        )?))
    }
    /// Create a raw writer in `mode` (used by the stream crate).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_raw(self, mode: Mode) -> Result<RawWriter> {
        let opts = self.resolve()?;
        RawWriter::create(&self.name, mode, opts)
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<SnapshotWriter>();
    let _ = AtomicU64::new(0);
}
