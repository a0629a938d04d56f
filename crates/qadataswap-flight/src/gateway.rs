//! The Flight service over this host's segments: `ListFlights`, `GetFlightInfo`, `GetSchema`, `DoGet`, `DoPut`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use arrow_ipc::MessageHeader;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use qadataswap_arrow::listing::{self, State};
use qadataswap_arrow::{Frame, Mode, NewerPoll, SnapshotReader, SnapshotWriter};
use qadataswap_stream::{SharedDataStream, StartAt, StreamReader};
use qadataswap_sync::reactor::Registration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::error::{arrow_status, join_status, stream_status};
use crate::ticket::{DescriptorSpec, OnGap, Snapshot, SpecError, TicketSpec};
use crate::wire;

/// Limits of one gateway.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `DoGet` and `DoPut` calls running at once; more are refused with `ResourceExhausted`.
    pub max_streams: usize,
    /// The largest gRPC message sent or received, bytes. A frame's record batch bigger than this is refused with
    /// `ResourceExhausted` naming both sizes.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_streams: 64,
            max_message_bytes: 1 << 30,
        }
    }
}

/// What the gateway counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayStats {
    /// Frames (snapshot frames and stream chunks) sent by `DoGet`.
    pub frames_sent: u64,
    /// Of those, frames whose bodies were sent straight from the mapping.
    pub zero_copy_frames: u64,
    /// Of those, frames that had to be re-encoded (compressed segments, decoded into private memory): one copy.
    pub reencoded_frames: u64,
    /// Frames written by `DoPut`.
    pub frames_put: u64,
}

#[derive(Debug, Default)]
struct Counters {
    frames_sent: AtomicU64,
    zero_copy_frames: AtomicU64,
    reencoded_frames: AtomicU64,
    frames_put: AtomicU64,
}

/// The Flight service. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone, Debug)]
pub struct Gateway {
    limits: Limits,
    streams: Arc<Semaphore>,
    counters: Arc<Counters>,
    readers: Arc<Readers>,
}

/// Snapshot readers kept open between calls. Opening a reader maps the segment, and the first read of each page
/// of that mapping faults it in (and closing unmaps it again): per call, on a 16 MB frame, that cost as much as
/// sending it. A kept reader is reused while its segment's name still refers to the file it maps, and closed after
/// [`KEEP_IDLE_READER`] without a call, so that an idle gateway does not keep segments "in use" (`qadataswap rm`).
#[derive(Debug, Default)]
struct Readers(std::sync::Mutex<HashMap<String, (Arc<SnapshotReader>, Instant)>>);

/// Readers kept at most; past that the map is emptied (their segments reopen on the next call).
const MAX_KEPT_READERS: usize = 256;

/// How long a kept reader stays open without a call.
pub(crate) const KEEP_IDLE_READER: Duration = Duration::from_secs(10);

impl Readers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<SnapshotReader>, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, name: &str) -> Option<Arc<SnapshotReader>> {
        let mut map = self.lock();
        let (r, used) = map.get_mut(name)?;
        if r.names_same_file().unwrap_or(false) {
            *used = Instant::now();
            return Some(Arc::clone(r));
        }
        map.remove(name);
        None
    }

    fn put(&self, name: &str, reader: &Arc<SnapshotReader>) {
        let mut map = self.lock();
        if map.len() >= MAX_KEPT_READERS {
            map.clear();
        }
        map.insert(name.to_owned(), (Arc::clone(reader), Instant::now()));
    }

    /// Close the readers idle for longer than `idle` (a call still using one keeps it open until it ends).
    fn evict(&self, idle: Duration) {
        self.lock().retain(|_, (_, used)| used.elapsed() < idle);
    }
}

type Stream<T> = BoxStream<'static, Result<T, Status>>;

fn spec_status(e: SpecError) -> Status {
    Status::invalid_argument(e.0)
}

impl Gateway {
    /// A gateway with these limits.
    pub fn new(limits: Limits) -> Gateway {
        Gateway {
            streams: Arc::new(Semaphore::new(limits.max_streams.max(1))),
            limits,
            counters: Arc::default(),
            readers: Arc::default(),
        }
    }

    /// Close the snapshot readers no call used for [`KEEP_IDLE_READER`]; the server calls it every few seconds.
    pub(crate) fn evict_idle_readers(&self) {
        self.readers.evict(KEEP_IDLE_READER);
    }

    /// What it counted so far.
    pub fn stats(&self) -> GatewayStats {
        let c = &self.counters;
        GatewayStats {
            frames_sent: c.frames_sent.load(Ordering::Relaxed),
            zero_copy_frames: c.zero_copy_frames.load(Ordering::Relaxed),
            reencoded_frames: c.reencoded_frames.load(Ordering::Relaxed),
            frames_put: c.frames_put.load(Ordering::Relaxed),
        }
    }

    /// A `DoGet`'s messages: the flight a ticket names, one frame read at a time as the messages are taken.
    pub(crate) async fn flight(&self, ticket: Ticket) -> Result<Stream<FlightData>, Status> {
        let spec = TicketSpec::parse(&ticket.ticket).map_err(spec_status)?;
        let permit = self.permit()?;
        let st = servable(spec.name.clone()).await?;
        let mode = st.mode().ok_or_else(|| {
            Status::unavailable(format!("segment '{}' has no mode yet", spec.name))
        })?;
        let source = open_source(&spec, &st, mode, &self.readers).await?;
        let slots = st
            .inspection
            .as_ref()
            .map_or(2, |i| i.header.slot_count as usize);
        let flight = Flight {
            source,
            in_flight: Arc::new(Semaphore::new(slots.saturating_sub(1).max(1))),
            name: spec.name.clone(),
            schema: None,
            limits: self.limits.clone(),
            counters: Arc::clone(&self.counters),
            failed: false,
            _permit: permit,
        };
        let messages = futures::stream::unfold(flight, Flight::step)
            .map(|r| match r {
                Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).left_stream(),
                Err(e) => futures::stream::iter([Err(e)]).right_stream(),
            })
            .flatten();
        Ok(messages.boxed())
    }

    fn permit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this gateway already runs {} DoGet/DoPut streams (its --max-streams); retry later, or start it \
                 with a higher --max-streams",
                self.limits.max_streams
            ))
        })
    }
}

/// Look at `name` as `qadataswap ls` does and refuse what must not be served.
async fn servable(name: String) -> Result<listing::Status, Status> {
    let st = tokio::task::spawn_blocking(move || listing::classify(&name, None))
        .await
        .map_err(join_status)?
        .map_err(|e| match e {
            qadataswap_arrow::Error::Shm(qadataswap_shm::ShmError::NotFound { name }) => {
                Status::not_found(format!(
                    "segment '{name}' does not exist on this host; ListFlights lists the segments served here"
                ))
            }
            e => arrow_status(&e),
        })?;
    let why = || st.reason.clone().unwrap_or_default();
    match st.state {
        State::Foreign => Err(Status::permission_denied(format!(
            "segment '{}' is not served: {}; a gateway serves only its own user's segments of this library",
            st.name,
            why()
        ))),
        State::Incompatible | State::Corrupt => Err(Status::failed_precondition(format!(
            "segment '{}' cannot be read: {}",
            st.name,
            why()
        ))),
        State::Initialising => Err(Status::unavailable(format!(
            "segment '{}' is still being created; retry in a moment",
            st.name
        ))),
        _ => Ok(st),
    }
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Snapshot => "snapshot",
        Mode::Stream => "stream",
    }
}

/// The `FlightInfo` of a segment: its schema (empty before the first write), rows and bytes of its newest frame
/// (snapshots; `-1` for streams), one endpoint whose ticket is the name, and `app_metadata` describing the segment
/// (docs/FLIGHT.md).
fn info_of(st: &listing::Status) -> Option<FlightInfo> {
    let i = st.inspection.as_ref()?;
    let body = i.body.as_ref()?;
    let mode = i.header.mode?;
    let schema = match &body.schema {
        Ok(Some(s)) => Arc::clone(s),
        _ => Arc::new(Schema::empty()),
    };
    let published = body.slots.iter().find(|s| s.published);
    let (rows, bytes) = match (mode, published) {
        (Mode::Snapshot, Some(p)) => (
            i64::try_from(p.rows).unwrap_or(-1),
            i64::try_from(p.len).unwrap_or(-1),
        ),
        (Mode::Snapshot, None) => (0, 0),
        (Mode::Stream, _) => (-1, -1),
    };
    let meta = format!(
        "mode={};state={};last_seq={};slots={};slot_capacity={};size={}",
        mode_str(mode),
        st.state.as_str(),
        st.last_seq().unwrap_or(0),
        i.header.slot_count,
        i.header.slot_capacity,
        st.size,
    );
    let info = FlightInfo::new()
        .try_with_schema(&schema)
        .ok()?
        .with_descriptor(FlightDescriptor::new_path(vec![st.name.clone()]))
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(st.name.clone())))
        .with_total_records(rows)
        .with_total_bytes(bytes)
        .with_ordered(true)
        .with_app_metadata(meta);
    Some(info)
}

/// A future for the first frame of `reader` newer than `newer_than`: woken by the process's reactor when the
/// writer publishes (no thread per call). Holds no lease while pending.
struct Newer<'a> {
    reader: &'a SnapshotReader,
    newer_than: u64,
    registration: Option<Registration>,
}

impl Future for Newer<'_> {
    type Output = Result<Frame, qadataswap_arrow::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.registration = None;
        match this
            .reader
            .poll_newer_or_register(this.newer_than, cx.waker())
        {
            NewerPoll::Ready(r) => Poll::Ready(r),
            NewerPoll::Registered(r) => {
                this.registration = Some(r);
                Poll::Pending
            }
            NewerPoll::NoReactor(e) => Poll::Ready(Err(qadataswap_arrow::Error::InvalidConfig {
                what: format!("cannot start the reactor thread: {e}"),
            })),
        }
    }
}

/// Where `DoGet` takes its frames from.
enum Source {
    Snapshot {
        reader: Arc<SnapshotReader>,
        how: Snapshot,
        timeout: Option<Duration>,
        /// The sequence the next frame must be newer than (`None`: not yet known).
        newer_than: Option<u64>,
        /// The frame published when the call arrived (what `next` must be newer than).
        published: u64,
        done: bool,
    },
    Stream {
        reader: StreamReader,
        from: u64,
    },
}

impl Source {
    /// The next frame to send; `Ok(None)` at the end.
    async fn next(&mut self) -> Result<Option<Frame>, Status> {
        match self {
            Source::Snapshot {
                reader,
                how,
                timeout,
                newer_than,
                published,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                let first = newer_than.is_none();
                let after = *newer_than.get_or_insert_with(|| match how {
                    Snapshot::Next => *published,
                    _ => 0,
                });
                let wait = Newer {
                    reader,
                    newer_than: after,
                    registration: None,
                };
                let got = match (first, *timeout) {
                    (true, Some(t)) => match tokio::time::timeout(t, wait).await {
                        Ok(r) => r,
                        Err(_) => {
                            return Err(Status::deadline_exceeded(format!(
                                "no {} frame was published in '{}' within {t:?}; ask with timeout=SECONDS in the \
                                 ticket to wait longer",
                                if *how == Snapshot::Next { "new" } else { "" },
                                reader.name()
                            )))
                        }
                    },
                    _ => wait.await,
                };
                match got {
                    Ok(f) => {
                        *newer_than = Some(f.seq());
                        if *how != Snapshot::Follow {
                            *done = true;
                        }
                        Ok(Some(f))
                    }
                    // Following: the writer's clean close is the end of the flight.
                    Err(qadataswap_arrow::Error::WriterClosed { .. }) if !first => Ok(None),
                    Err(e) => Err(arrow_status(&e)),
                }
            }
            Source::Stream { reader, from } => loop {
                match reader.next_chunk_async().await {
                    Ok(Some(c)) if c.seq() < *from => continue,
                    Ok(Some(c)) => return Ok(Some(c.frame().clone())),
                    Ok(None) => return Ok(None),
                    // Reported once by the first read: where the reader starts was already checked.
                    Err(qadataswap_stream::Error::JoinedLate { .. }) => continue,
                    Err(e) => return Err(stream_status(&e)),
                }
            },
        }
    }
}

/// `seq=N;batch=I/K`: which frame (or chunk) a record batch belongs to, and its place in it (docs/FLIGHT.md).
fn batch_metadata(seq: u64, i: usize, k: usize) -> Bytes {
    Bytes::from(format!("seq={seq};batch={i}/{k}"))
}

/// A frame as Flight messages: the Schema message first (only for the flight's first frame), then dictionaries and
/// record batches, each batch with its `seq`/`batch` metadata.
fn frame_messages(
    frame: &Frame,
    permit: &wire::InFlight,
    with_schema: bool,
    limits: &Limits,
    counters: &Counters,
    name: &str,
) -> Result<Vec<FlightData>, Status> {
    let seq = frame.seq();
    let too_big = |len: usize| {
        Status::resource_exhausted(format!(
            "frame {seq} of '{name}' holds a {len}-byte message, over the gateway's message limit of {} bytes; \
             start the gateway with a larger --max-message-mb, or write smaller batches",
            limits.max_message_bytes
        ))
    };
    let mut out = Vec::new();
    if let Some(encoded) = frame.encoded() {
        let msgs = wire::messages(encoded, permit).map_err(|e| {
            Status::data_loss(format!(
                "frame {seq} of '{name}' is not a valid IPC stream: {e}"
            ))
        })?;
        let k = msgs
            .iter()
            .filter(|m| m.kind == MessageHeader::RecordBatch)
            .count();
        let mut i = 0;
        for m in msgs {
            if m.header.len().saturating_add(m.body.len()) > limits.max_message_bytes {
                return Err(too_big(m.header.len() + m.body.len()));
            }
            match m.kind {
                MessageHeader::Schema if with_schema => out.push(m.into_flight(Bytes::new())),
                MessageHeader::DictionaryBatch => out.push(m.into_flight(Bytes::new())),
                MessageHeader::RecordBatch => {
                    i += 1;
                    out.push(m.into_flight(batch_metadata(seq, i, k)));
                }
                _ => {}
            }
        }
        counters.zero_copy_frames.fetch_add(1, Ordering::Relaxed);
    } else {
        // Decoded into private memory (a compressed segment): encode again, one copy, counted.
        let all = arrow_flight::utils::batches_to_flight_data(frame.schema(), frame.batches())
            .map_err(|e| Status::internal(format!("cannot encode frame {seq} of '{name}': {e}")))?;
        let k = frame.batches().len();
        let mut i = 0;
        for (n, mut fd) in all.into_iter().enumerate() {
            if fd.data_header.len().saturating_add(fd.data_body.len()) > limits.max_message_bytes {
                return Err(too_big(fd.data_header.len() + fd.data_body.len()));
            }
            if n == 0 {
                if with_schema {
                    out.push(fd);
                }
                continue;
            }
            let is_batch = arrow_ipc::root_as_message(&fd.data_header)
                .map(|m| m.header_type() == MessageHeader::RecordBatch)
                .unwrap_or(false);
            if is_batch {
                i += 1;
                fd.app_metadata = batch_metadata(seq, i, k);
            }
            out.push(fd);
        }
        counters.reencoded_frames.fetch_add(1, Ordering::Relaxed);
    }
    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
    Ok(out)
}

/// The state of one `DoGet` flight.
struct Flight {
    source: Source,
    /// Frames in flight: read from the ring and not yet written to the socket by HTTP/2, which holds their
    /// slices (and leases) until then. At most `slots - 1`, as for a local reader keeping chunks alive: the next
    /// frame is read only when a permit comes back, so a slow client holds its place instead of failing.
    in_flight: Arc<Semaphore>,
    name: String,
    schema: Option<SchemaRef>,
    limits: Limits,
    counters: Arc<Counters>,
    failed: bool,
    _permit: OwnedSemaphorePermit,
}

impl Flight {
    /// The next frame's messages; `None` at the end. One frame at a time: the next is only read once gRPC has
    /// taken every message of this one, so a slow client holds the ring like a slow local reader.
    async fn step(mut self) -> Option<(Result<Vec<FlightData>, Status>, Flight)> {
        if self.failed {
            return None;
        }
        let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
            return None;
        };
        let permit = Some(Arc::new(permit));
        let r = match self.source.next().await {
            Ok(Some(frame)) => self.messages(&frame, &permit),
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        self.failed = r.is_err();
        Some((r, self))
    }

    fn messages(
        &mut self,
        frame: &Frame,
        permit: &wire::InFlight,
    ) -> Result<Vec<FlightData>, Status> {
        let with_schema = match &self.schema {
            None => {
                self.schema = Some(Arc::clone(frame.schema()));
                true
            }
            Some(s) if s == frame.schema() => false,
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "the schema of '{}' changed at frame {}; a Flight stream carries one schema: call DoGet \
                     again to read on with the new one",
                    self.name,
                    frame.seq()
                )))
            }
        };
        frame_messages(
            frame,
            permit,
            with_schema,
            &self.limits,
            &self.counters,
            &self.name,
        )
    }
}

async fn open_source(
    spec: &TicketSpec,
    st: &listing::Status,
    mode: Mode,
    readers: &Readers,
) -> Result<Source, Status> {
    let name = spec.name.clone();
    match mode {
        Mode::Snapshot => {
            let reader = match readers.get(&name) {
                Some(r) => r,
                None => {
                    let opened = tokio::task::spawn_blocking(move || {
                        SnapshotReader::builder(&name)
                            .open_timeout(Duration::ZERO)
                            .timeout(None)
                            .open()
                    })
                    .await
                    .map_err(join_status)?
                    .map_err(|e| arrow_status(&e))?;
                    let r = Arc::new(opened);
                    readers.put(&spec.name, &r);
                    r
                }
            };
            Ok(Source::Snapshot {
                reader,
                how: spec.snapshot,
                timeout: spec.timeout,
                newer_than: None,
                published: st.last_seq().unwrap_or(0),
                done: false,
            })
        }
        Mode::Stream => {
            let reader = tokio::task::spawn_blocking(move || {
                SharedDataStream::reader(&name)
                    .open_timeout(Some(Duration::ZERO))
                    .timeout(None)
                    .start_at(StartAt::Oldest)
                    .open()
            })
            .await
            .map_err(join_status)?
            .map_err(|e| stream_status(&e))?;
            let oldest = reader.cursor();
            let from = spec.from.unwrap_or(oldest);
            if from < oldest && spec.on_gap == OnGap::Fail {
                return Err(Status::data_loss(format!(
                    "chunks {from} to {} of '{}' are no longer in the ring (the oldest it holds is {oldest}); ask \
                     from={oldest}, or add gap=skip, to continue after the gap",
                    oldest - 1,
                    spec.name
                )));
            }
            Ok(Source::Stream { reader, from })
        }
    }
}

/// Group decoded record batches into frames by their `seq`/`batch` metadata (one batch per frame without it).
#[derive(Debug, Default)]
pub(crate) struct Grouper {
    pending: Vec<RecordBatch>,
}

/// One frame as received: its batches and, when the sender said, its sequence number.
#[derive(Debug)]
pub(crate) struct Received {
    pub seq: Option<u64>,
    pub batches: Vec<RecordBatch>,
}

/// Parse `seq=N;batch=I/K`.
pub(crate) fn parse_batch_metadata(meta: &[u8]) -> Option<(u64, usize, usize)> {
    let text = std::str::from_utf8(meta).ok()?;
    let mut seq = None;
    let mut pos = None;
    for part in text.split(';') {
        match part.split_once('=') {
            Some(("seq", v)) => seq = v.parse().ok(),
            Some(("batch", v)) => {
                let (i, k) = v.split_once('/')?;
                pos = Some((i.parse().ok()?, k.parse().ok()?));
            }
            _ => {}
        }
    }
    let (i, k) = pos?;
    Some((seq?, i, k))
}

impl Grouper {
    /// Add a batch; a frame when it completes one.
    pub fn push(&mut self, batch: RecordBatch, meta: &[u8]) -> Option<Received> {
        match parse_batch_metadata(meta) {
            Some((seq, i, k)) if k > 1 => {
                if i == 1 {
                    self.pending.clear();
                }
                self.pending.push(batch);
                (i >= k).then(|| Received {
                    seq: Some(seq),
                    batches: std::mem::take(&mut self.pending),
                })
            }
            parsed => Some(Received {
                seq: parsed.map(|p| p.0),
                batches: vec![batch],
            }),
        }
    }
}

fn flight_error_status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        e => Status::invalid_argument(format!("cannot decode the uploaded stream: {e}")),
    }
}

/// The writing end of a `DoPut` or a relay.
pub(crate) enum Sink {
    Snapshot(SnapshotWriter),
    Stream(qadataswap_stream::StreamWriter),
}

/// Create (or take over) segment `name` for writing: `size` bytes of data and `slots` slots, else the
/// configuration's. `persistent` snapshots keep their name after the writer closes.
pub(crate) fn create_sink(
    name: &str,
    mode: Mode,
    size: Option<usize>,
    slots: Option<usize>,
    persistent: bool,
) -> Result<Sink, Status> {
    match mode {
        Mode::Snapshot => {
            let mut b = SnapshotWriter::builder(name).persistent(persistent);
            if let Some(s) = size {
                b = b.size(s);
            }
            if let Some(n) = slots {
                b = b.slots(n);
            }
            b.create().map(Sink::Snapshot).map_err(|e| arrow_status(&e))
        }
        Mode::Stream => {
            let mut b = SharedDataStream::writer(name);
            if let Some(s) = size {
                b = b.size(s);
            }
            if let Some(n) = slots {
                b = b.slots(n);
            }
            b.create().map(Sink::Stream).map_err(|e| stream_status(&e))
        }
    }
}

impl Sink {
    pub(crate) fn write(&mut self, batches: &[RecordBatch]) -> Result<(), Status> {
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let schema = first.schema();
        match self {
            Sink::Snapshot(w) => w
                .write_frame(&schema, batches)
                .map(drop)
                .map_err(|e| arrow_status(&e)),
            Sink::Stream(w) => w
                .write_frame(&schema, batches)
                .map(drop)
                .map_err(|e| stream_status(&e)),
        }
    }

    pub(crate) fn finish(self) -> Result<(), Status> {
        match self {
            Sink::Snapshot(w) => w.close().map_err(|e| arrow_status(&e)),
            Sink::Stream(mut w) => w.finish().map_err(|e| stream_status(&e)),
        }
    }
}

#[tonic::async_trait]
impl FlightService for Gateway {
    type HandshakeStream = Stream<HandshakeResponse>;
    type ListFlightsStream = Stream<FlightInfo>;
    type DoGetStream = Stream<FlightData>;
    type DoPutStream = Stream<PutResult>;
    type DoActionStream = Stream<arrow_flight::Result>;
    type ListActionsStream = Stream<ActionType>;
    type DoExchangeStream = Stream<FlightData>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        // Authentication is a bearer token on every call (the header `authorization: Bearer <token>`), checked
        // before this method runs: there is nothing to exchange.
        Ok(Response::new(futures::stream::empty().boxed()))
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let prefix = String::from_utf8(request.into_inner().expression.to_vec()).map_err(|_| {
            Status::invalid_argument("the criteria's expression is a name prefix: UTF-8 text")
        })?;
        let all = tokio::task::spawn_blocking(move || listing::list_all(&prefix))
            .await
            .map_err(join_status)?
            .map_err(|e| arrow_status(&e))?;
        let infos: Vec<Result<FlightInfo, Status>> = all
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    State::Live | State::Closed | State::WriterDead | State::Stale
                )
            })
            .filter_map(info_of)
            .map(Ok)
            .collect();
        Ok(Response::new(futures::stream::iter(infos).boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let d = request.into_inner();
        let spec = DescriptorSpec::parse(&d.path, &d.cmd).map_err(spec_status)?;
        let st = servable(spec.name.clone()).await?;
        let info = info_of(&st).ok_or_else(|| {
            Status::unavailable(format!(
                "segment '{}' has no readable header yet",
                spec.name
            ))
        })?;
        Ok(Response::new(info))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "PollFlightInfo is not offered: every segment is ready at once; use GetFlightInfo",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let info = self.get_flight_info(request).await?.into_inner();
        Ok(Response::new(SchemaResult {
            schema: info.schema,
        }))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        // What tonic would run; the server routes DoGet to `response::get` instead (bodies without a copy).
        Ok(Response::new(self.flight(request.into_inner()).await?))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let permit = self.permit()?;
        let mut input = request.into_inner();
        let first = input.message().await?.ok_or_else(|| {
            Status::invalid_argument("DoPut sent no message; the first must carry a descriptor")
        })?;
        let d = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument(
                "the first DoPut message carries no descriptor: name the segment with a path descriptor [NAME] \
                 or a command NAME?mode=snapshot|stream&size_mb=N",
            )
        })?;
        let spec = DescriptorSpec::parse(&d.path, &d.cmd).map_err(spec_status)?;
        let mode = match servable(spec.name.clone()).await {
            Ok(st) => {
                let mode = st.mode().unwrap_or(Mode::Snapshot);
                match spec.stream {
                    Some(true) if mode != Mode::Stream => {
                        return Err(Status::failed_precondition(format!(
                            "segment '{}' exists as a snapshot segment, not a stream",
                            spec.name
                        )))
                    }
                    Some(false) if mode != Mode::Snapshot => {
                        return Err(Status::failed_precondition(format!(
                            "segment '{}' exists as a stream, not a snapshot segment",
                            spec.name
                        )))
                    }
                    _ => mode,
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                if spec.stream == Some(true) {
                    Mode::Stream
                } else {
                    Mode::Snapshot
                }
            }
            Err(s) => return Err(s),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RecordBatch>>(1);
        let counters = Arc::clone(&self.counters);
        let writer = tokio::task::spawn_blocking(move || -> Result<u64, Status> {
            let _permit = permit;
            let size = spec.size_mb.map(|mb| mb.saturating_mul(1 << 20));
            let mut sink = create_sink(&spec.name, mode, size, spec.slots, true)?;
            let mut n = 0u64;
            while let Some(batches) = rx.blocking_recv() {
                sink.write(&batches)?;
                counters.frames_put.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            sink.finish()?;
            Ok(n)
        });
        let data = futures::stream::once(async move { Ok(first) })
            .chain(input)
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let mut decoder = FlightDataDecoder::new(data);
        let mut grouper = Grouper::default();
        let mut upload: Result<(), Status> = Ok(());
        while let Some(item) = decoder.next().await {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    upload = Err(flight_error_status(e));
                    break;
                }
            };
            if let DecodedPayload::RecordBatch(b) = item.payload {
                if let Some(frame) = grouper.push(b, &item.inner.app_metadata) {
                    if tx.send(frame.batches).await.is_err() {
                        // The writer stopped: its error says why.
                        break;
                    }
                }
            }
        }
        drop(tx);
        let written = writer.await.map_err(join_status)?;
        upload?;
        let n = written?;
        let result = PutResult {
            app_metadata: Bytes::from(format!("frames={n}")),
        };
        Ok(Response::new(futures::stream::iter([Ok(result)]).boxed()))
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented(
            "this gateway offers no actions: ListFlights, GetFlightInfo, GetSchema, DoGet and DoPut",
        ))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(futures::stream::empty().boxed()))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "DoExchange is not offered: read with DoGet, write with DoPut",
        ))
    }
}
