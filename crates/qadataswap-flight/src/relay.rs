//! The relay: mirror a remote segment, read through its host's gateway, into a local segment of the same mode.
//!
//! A snapshot is followed (every frame the gateway sends is written as the local newest frame); a stream is read
//! chunk by chunk and written in order. The relay reconnects with backoff (100 ms doubling to 5 s) and resumes a
//! stream at the first chunk it did not get (`from=N` in the ticket): no duplicate, and no silent gap: chunks the
//! remote ring no longer holds end the relay with an error naming them, unless gaps are allowed, in which case
//! each gap is reported and the relay reads on from the oldest chunk still there. The local writer is the relay
//! process (`qadataswap ls` shows its pid), and every schema it writes carries [`RELAY_SOURCE_KEY`] naming the
//! remote segment; local back-pressure (a slow local reader) reaches the remote ring.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use qadataswap_arrow::Mode;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::auth::Token;
use crate::error::Error;
use crate::gateway::{create_sink, Grouper};
use crate::ticket::{OnGap, Snapshot, TicketSpec};

/// A remote segment: `flight://HOST:PORT/NAME`, or `flights://HOST:PORT/NAME` over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightUrl {
    /// TLS (`flights://`).
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The remote segment's name.
    pub name: String,
}

impl FromStr for FlightUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<FlightUrl, String> {
        let usage = || {
            format!("{s:?} is not a segment URL: expected flight://HOST:PORT/NAME or flights://HOST:PORT/NAME")
        };
        let (tls, rest) = if let Some(r) = s.strip_prefix("flight://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("flights://") {
            (true, r)
        } else if let Some(r) = s
            .strip_prefix("grpc://")
            .or_else(|| s.strip_prefix("grpc+tcp://"))
        {
            (false, r)
        } else if let Some(r) = s.strip_prefix("grpc+tls://") {
            (true, r)
        } else {
            return Err(usage());
        };
        let (hostport, name) = rest.split_once('/').ok_or_else(usage)?;
        let (host, port) = hostport.rsplit_once(':').ok_or_else(usage)?;
        let port: u16 = port.parse().map_err(|_| usage())?;
        if host.is_empty() {
            return Err(usage());
        }
        let name = qadataswap_shm::SegmentName::new(name)
            .map_err(|e| format!("{s:?}: bad segment name: {e}"))?
            .as_str()
            .to_owned();
        Ok(FlightUrl {
            tls,
            host: host.to_owned(),
            port,
            name,
        })
    }
}

impl std::fmt::Display for FlightUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "flights" } else { "flight" };
        write!(f, "{scheme}://{}:{}/{}", self.host, self.port, self.name)
    }
}

/// Everything a relay is started with.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// The remote segment.
    pub url: FlightUrl,
    /// The local segment to write.
    pub local: String,
    /// The remote gateway's bearer token.
    pub token: Option<Token>,
    /// PEM file of the certificate authority that signed the gateway's certificate (`flights://`).
    pub tls_ca: Option<PathBuf>,
    /// The local segment's data size in bytes; default: the remote segment's.
    pub size: Option<usize>,
    /// Report gaps in a stream and read on, instead of ending with an error.
    pub allow_gaps: bool,
    /// Give up when no frame arrived for this long while disconnected; `None`: retry forever.
    pub give_up_after: Option<Duration>,
    /// The largest gRPC message accepted, bytes.
    pub max_message_bytes: usize,
}

impl RelayOptions {
    /// Relay `url` into `local`: no token, no TLS, the remote size, gaps are errors, retry forever.
    pub fn new(url: FlightUrl, local: &str) -> RelayOptions {
        RelayOptions {
            url,
            local: local.to_owned(),
            token: None,
            tls_ca: None,
            size: None,
            allow_gaps: false,
            give_up_after: None,
            max_message_bytes: 1 << 30,
        }
    }
}

/// How a relay ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEnd {
    /// The remote stream ended cleanly; the local stream was finished after `chunks` chunks.
    StreamFinished {
        /// Chunks relayed.
        chunks: u64,
    },
    /// The remote snapshot writer closed; the local writer was closed after `frames` frames.
    WriterClosed {
        /// Frames relayed.
        frames: u64,
    },
}

type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a session ended.
enum Fail {
    /// Worth reconnecting; `progressed`: frames arrived in this session.
    Retry { why: String, progressed: bool },
    /// The relay cannot go on.
    Fatal(String),
}

/// The local writer, on a thread of its own (writes block on local back-pressure). Dropped without
/// [`Local::finish`] (an error, a signal), it closes the local segment without ending the stream, so that local
/// readers see the writer close rather than a clean end; the drop waits for that.
struct Local {
    tx: Option<tokio::sync::mpsc::Sender<Vec<RecordBatch>>>,
    finishing: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Local {
    fn start(
        name: &str,
        source: &FlightUrl,
        mode: Mode,
        size: usize,
        slots: usize,
        log: Log,
    ) -> Local {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RecordBatch>>(1);
        let source = source.to_string();
        let name = name.to_owned();
        let finishing = Arc::new(AtomicBool::new(false));
        let finish = Arc::clone(&finishing);
        let thread = std::thread::spawn(move || -> Result<(), String> {
            let mut sink = create_sink(&name, mode, Some(size), Some(slots), false)
                .map_err(|s| s.message().to_owned())?;
            while let Some(batches) = rx.blocking_recv() {
                let batches = mark(batches, &source);
                let mut waiting = false;
                loop {
                    match sink.write(&batches) {
                        Ok(()) => break,
                        // No local reader yet, or a slow one: hold the frame (and so the remote ring) and retry,
                        // unless the relay is stopping.
                        Err(s) if s.code() == Code::Unavailable && !rx.is_closed() => {
                            if !waiting {
                                log(&format!(
                                    "relay: waiting for local readers of '{name}': {}",
                                    s.message()
                                ));
                                waiting = true;
                            }
                        }
                        Err(s) => return Err(s.message().to_owned()),
                    }
                }
            }
            if finish.load(Ordering::Acquire) {
                sink.finish().map_err(|s| s.message().to_owned())
            } else {
                drop(sink);
                Ok(())
            }
        });
        Local {
            tx: Some(tx),
            finishing,
            thread: Some(thread),
        }
    }

    async fn send(&self, batches: Vec<RecordBatch>) -> bool {
        match &self.tx {
            Some(tx) => tx.send(batches).await.is_ok(),
            None => false,
        }
    }

    /// Close the channel and wait for the thread's answer.
    async fn join(mut self, finish: bool) -> Result<(), String> {
        self.finishing.store(finish, Ordering::Release);
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(r)) => r,
            _ => Err("the local writer thread failed (a bug)".into()),
        }
    }

    /// The local writer's own error after it stopped.
    async fn error(self) -> String {
        match self.join(false).await {
            Err(e) => e,
            Ok(()) => "the local writer stopped".into(),
        }
    }

    /// Finish the local segment (stream end, or close).
    async fn finish(self) -> Result<(), String> {
        self.join(true).await
    }
}

/// The schema-metadata key with which the relay marks what it writes: the remote segment's URL. A reader (or
/// `qadataswap inspect`) sees from the schema that the segment's writer is a relay, and of what.
pub const RELAY_SOURCE_KEY: &str = "qadataswap.relay.source";

/// The batches with [`RELAY_SOURCE_KEY`] in their schema's metadata (no data copied).
fn mark(batches: Vec<RecordBatch>, source: &str) -> Vec<RecordBatch> {
    batches
        .into_iter()
        .map(|b| {
            let schema = b.schema();
            if schema.metadata().get(RELAY_SOURCE_KEY).map(String::as_str) == Some(source) {
                return b;
            }
            let mut meta = schema.metadata().clone();
            meta.insert(RELAY_SOURCE_KEY.to_owned(), source.to_owned());
            let marked = Arc::new(schema.as_ref().clone().with_metadata(meta));
            b.clone().with_schema(marked).unwrap_or(b)
        })
        .collect()
}

impl Drop for Local {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct RelayState {
    /// Stream: the next remote chunk wanted.
    next_seq: Option<u64>,
    local: Option<Local>,
    frames: u64,
    mode: Option<Mode>,
}

fn request<T>(opts: &RelayOptions, msg: T) -> Result<Request<T>, Fail> {
    let mut req = Request::new(msg);
    if let Some(t) = &opts.token {
        let v = t
            .header()
            .parse()
            .map_err(|_| Fail::Fatal("the token is not a valid header value".into()))?;
        req.metadata_mut().insert("authorization", v);
    }
    Ok(req)
}

fn status_fail(s: &Status, progressed: bool) -> Fail {
    let why = format!("{:?}: {}", s.code(), s.message());
    match s.code() {
        Code::Unauthenticated
        | Code::PermissionDenied
        | Code::InvalidArgument
        | Code::DataLoss
        | Code::Unimplemented => Fail::Fatal(why),
        _ => Fail::Retry { why, progressed },
    }
}

async fn connect(opts: &RelayOptions) -> Result<Channel, Fail> {
    let u = &opts.url;
    let scheme = if u.tls { "https" } else { "http" };
    let retry = |why: String| Fail::Retry {
        why,
        progressed: false,
    };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{}:{}", u.host, u.port))
        .map_err(|e| Fail::Fatal(format!("bad address: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // HTTP/2's default 64 KiB windows cost a round trip per 64 KiB of a large frame; these let a 16 MB frame
        // arrive in one go (local back-pressure still holds the gateway: the relay stops reading when it waits).
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20));
    if u.tls {
        let ca = opts.tls_ca.as_ref().ok_or_else(|| {
            Fail::Fatal("flights:// needs the certificate authority's PEM file (--tls-ca)".into())
        })?;
        let pem = std::fs::read(ca)
            .map_err(|e| Fail::Fatal(format!("cannot read {}: {e}", ca.display())))?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pem))
            .domain_name(u.host.clone());
        ep = ep
            .tls_config(tls)
            .map_err(|e| Fail::Fatal(format!("TLS: {e}")))?;
    }
    ep.connect()
        .await
        .map_err(|e| retry(format!("cannot connect to {u}: {e}")))
}

fn meta_field(meta: &[u8], key: &str) -> Option<String> {
    std::str::from_utf8(meta).ok()?.split(';').find_map(|p| {
        p.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    })
}

async fn session(opts: &RelayOptions, st: &mut RelayState, log: &Log) -> Result<RelayEnd, Fail> {
    let channel = connect(opts).await?;
    let mut client = FlightServiceClient::new(channel)
        .max_decoding_message_size(opts.max_message_bytes)
        .max_encoding_message_size(opts.max_message_bytes);
    let name = opts.url.name.clone();
    let info = client
        .get_flight_info(request(
            opts,
            FlightDescriptor::new_path(vec![name.clone()]),
        )?)
        .await
        .map_err(|s| status_fail(&s, false))?
        .into_inner();
    let mode = match meta_field(&info.app_metadata, "mode").as_deref() {
        Some("stream") => Mode::Stream,
        Some("snapshot") => Mode::Snapshot,
        _ => {
            return Err(Fail::Fatal(format!(
                "{} is not a QADataSwap gateway's segment (its FlightInfo says no mode)",
                opts.url
            )))
        }
    };
    if st.mode.is_some_and(|m| m != mode) {
        return Err(Fail::Fatal(format!(
            "the remote segment changed mode (now a {mode:?} segment); restart the relay"
        )));
    }
    st.mode = Some(mode);
    let number = |k: &str| meta_field(&info.app_metadata, k).and_then(|v| v.parse::<usize>().ok());
    let slots = number("slots").unwrap_or(3).max(1);
    let size = opts.size.unwrap_or_else(|| {
        number("slot_capacity")
            .unwrap_or(1 << 20)
            .saturating_mul(slots)
    });
    let spec = TicketSpec {
        name: name.clone(),
        snapshot: Snapshot::Follow,
        from: if mode == Mode::Stream {
            st.next_seq
        } else {
            None
        },
        on_gap: if opts.allow_gaps {
            OnGap::Skip
        } else {
            OnGap::Fail
        },
        timeout: None,
    };
    let response = client
        .do_get(request(opts, Ticket::new(spec.to_text()))?)
        .await
        .map_err(|s| status_fail(&s, false))?;
    let data = response
        .into_inner()
        .map_err(|s| FlightError::Tonic(Box::new(s)));
    let mut decoder = FlightDataDecoder::new(data);
    let mut grouper = Grouper::default();
    let mut progressed = false;
    while let Some(item) = decoder.next().await {
        let item = item.map_err(|e| match e {
            FlightError::Tonic(s) => status_fail(&s, progressed),
            e => Fail::Retry {
                why: format!("the gateway sent something undecodable: {e}"),
                progressed,
            },
        })?;
        let DecodedPayload::RecordBatch(batch) = item.payload else {
            continue;
        };
        let Some(frame) = grouper.push(batch, &item.inner.app_metadata) else {
            continue;
        };
        if mode == Mode::Stream {
            if let (Some(want), Some(seq)) = (st.next_seq, frame.seq) {
                if seq < want {
                    continue; // already relayed
                }
                if seq > want {
                    let gap = format!(
                        "chunks {want} to {} of {} were lost while disconnected (the remote ring no longer held them)",
                        seq - 1,
                        opts.url
                    );
                    if !opts.allow_gaps {
                        return Err(Fail::Fatal(gap));
                    }
                    log(&format!("relay: {gap}; reading on from chunk {seq}"));
                }
            }
            st.next_seq = frame.seq.map(|s| s + 1);
        }
        let local = st.local.get_or_insert_with(|| {
            Local::start(&opts.local, &opts.url, mode, size, slots, Arc::clone(log))
        });
        if !local.send(frame.batches).await {
            let Some(l) = st.local.take() else {
                return Err(Fail::Fatal("the local writer stopped".into()));
            };
            return Err(Fail::Fatal(format!(
                "writing '{}': {}",
                opts.local,
                l.error().await
            )));
        }
        st.frames += 1;
        progressed = true;
    }
    Ok(match mode {
        Mode::Stream => RelayEnd::StreamFinished { chunks: st.frames },
        Mode::Snapshot => RelayEnd::WriterClosed { frames: st.frames },
    })
}

/// Run a relay until the remote stream ends or its snapshot writer closes (blocks the calling thread, on a
/// runtime of its own). `log` gets one line per event worth telling (reconnects, gaps, waiting for readers).
///
/// # Errors
/// [`Error::Relay`]: a refused token, a gap (without `allow_gaps`), a local write error, or giving up.
pub fn relay(
    opts: RelayOptions,
    log: impl Fn(&str) + Send + Sync + 'static,
) -> Result<RelayEnd, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?
        .block_on(async {
            let url = opts.url.to_string();
            let local = opts.local.clone();
            tokio::select! {
                r = relay_async(opts, Arc::new(log)) => r,
                // Dropping the relay's future drops the local writer: its readers see the writer close, and the
                // segment goes as a closed writer's does (not left stale).
                () = crate::server::shutdown_signal() => Err(Error::Relay {
                    url,
                    local,
                    why: "stopped by a signal".into(),
                }),
            }
        })
}

async fn relay_async(opts: RelayOptions, log: Log) -> Result<RelayEnd, Error> {
    let fail = |why: String| Error::Relay {
        url: opts.url.to_string(),
        local: opts.local.clone(),
        why,
    };
    let mut st = RelayState {
        next_seq: None,
        local: None,
        frames: 0,
        mode: None,
    };
    let mut backoff = Duration::from_millis(100);
    let mut down_since: Option<Instant> = None;
    loop {
        match session(&opts, &mut st, &log).await {
            Ok(end) => {
                if let Some(l) = st.local.take() {
                    l.finish().await.map_err(fail)?;
                }
                return Ok(end);
            }
            Err(Fail::Fatal(why)) => {
                if let Some(l) = st.local.take() {
                    // Stop writing; the local readers see the writer close.
                    let _ = l.join(false).await;
                }
                return Err(fail(why));
            }
            Err(Fail::Retry { why, progressed }) => {
                if progressed {
                    backoff = Duration::from_millis(100);
                    down_since = None;
                }
                let since = *down_since.get_or_insert_with(Instant::now);
                if let Some(limit) = opts.give_up_after {
                    if since.elapsed() >= limit {
                        return Err(fail(format!(
                            "gave up after {limit:?} without a frame: {why}"
                        )));
                    }
                }
                log(&format!("relay: {why}; reconnecting in {backoff:?}"));
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_and_segment_and_bad_ones_say_the_form() {
        let u: FlightUrl = "flight://127.0.0.1:8815/prices".parse().unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.name.as_str()),
            (false, "127.0.0.1", 8815, "prices")
        );
        assert_eq!(u.to_string(), "flight://127.0.0.1:8815/prices");
        assert!("flights://h:1/x".parse::<FlightUrl>().unwrap().tls);
        let e = "http://h:1/x".parse::<FlightUrl>().unwrap_err();
        assert!(e.contains("flight://HOST:PORT/NAME"), "{e}");
        assert!("flight://h/x".parse::<FlightUrl>().is_err());
        assert!("flight://h:1/../x".parse::<FlightUrl>().is_err());
    }
}
