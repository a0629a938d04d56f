//! `qadataswap serve` as a separate process, read by Rust's own `arrow-flight` client over loopback: the listing,
//! a snapshot, a stream followed chunk by chunk to its end, and a client without the token refused.
#![cfg(feature = "flight")]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_flight::{FlightClient, Ticket};
use futures::TryStreamExt;

const TOKEN: &str = "rust-test-token";

/// The gateway process, killed when the test ends however it ends.
struct Gateway {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Start `qadataswap serve` on a free loopback port and wait for its `listening on` line (no sleeping).
fn gateway() -> Gateway {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("qads-flight-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qadataswap"))
        .args(["serve", "--bind", "127.0.0.1:0", "--token-file"])
        .arg(&token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("serve said {line:?}"));
    Gateway {
        child,
        port,
        _dir: TempDir(dir),
    }
}

async fn client(port: u16, token: Option<&str>) -> FlightClient {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FlightClient::new(channel);
    if let Some(t) = token {
        c.add_header("authorization", &format!("Bearer {t}"))
            .unwrap();
    }
    c
}

fn batch(values: impl IntoIterator<Item = i64>) -> RecordBatch {
    let col: ArrayRef = Arc::new(Int64Array::from_iter_values(values));
    RecordBatch::try_from_iter([("v", col)]).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_rust_flight_client_lists_gets_a_snapshot_and_follows_a_stream_to_its_end() {
    let g = gateway();
    let snap = format!("qads-flight-rs-{}", std::process::id());
    let stream = format!("{snap}-s");
    let mut w = qadataswap_arrow::SnapshotWriter::create(&snap, 1 << 20).unwrap();
    w.write(&batch(0..100)).unwrap();
    let mut sw = qadataswap_stream::SharedDataStream::create_writer(&stream, 1 << 20).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 1..=20 {
            sw.write_chunk(&batch([i; 10])).unwrap();
        }
        sw.finish().unwrap();
    });
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = client(g.port, Some(TOKEN)).await;
            let listed: Vec<_> = c
                .list_flights(bytes::Bytes::from(snap.clone()))
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let info = listed
                .iter()
                .find(|i| i.flight_descriptor.as_ref().unwrap().path == [snap.clone()])
                .unwrap();
            assert_eq!(info.total_records, 100);

            let got: Vec<RecordBatch> = c
                .do_get(Ticket::new(snap.clone()))
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(got, [batch(0..100)]);

            let chunks: Vec<RecordBatch> = c
                .do_get(Ticket::new(stream.clone()))
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let firsts: Vec<i64> = chunks
                .iter()
                .map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                        .value(0)
                })
                .collect();
            assert_eq!(firsts, (1..=20).collect::<Vec<_>>());
        })
        .await
        .expect("watchdog: the flight test took over 60 s");
    });
    writer.join().unwrap();
    w.close().unwrap();
}

#[test]
fn a_client_without_the_token_is_refused_with_unauthenticated() {
    let g = gateway();
    runtime().block_on(async {
        for token in [None, Some("wrong")] {
            let mut c = client(g.port, token).await;
            let Err(e) = c.do_get(Ticket::new("anything")).await else {
                panic!("a call without the right token was accepted");
            };
            match e {
                arrow_flight::error::FlightError::Tonic(s) => {
                    assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s}")
                }
                e => panic!("{e}"),
            }
        }
    });
}
