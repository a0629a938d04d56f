//! The Polars `SharedDataStream`: every frame written is read once, in order, zero-copy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use polars_core::frame::DataFrame;
use polars_core::prelude::Column;
use qadataswap_polars::SharedDataStream;

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "qads-pls-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn frame(x: i64) -> DataFrame {
    DataFrame::new(
        2,
        vec![
            Column::new("x".into(), [x, x + 1]),
            Column::new("s".into(), ["a string longer than twelve bytes", "b"]),
        ],
    )
    .unwrap()
}

#[test]
fn every_frame_written_is_read_once_in_order_without_a_copy() {
    let name = unique("order");
    let mut writer = SharedDataStream::writer(&name)
        .size(1 << 20)
        .timeout(Some(Duration::from_secs(30)))
        .create()
        .unwrap();
    let mut reader = SharedDataStream::reader(&name)
        .timeout(Some(Duration::from_secs(30)))
        .open()
        .unwrap();
    let producer = std::thread::spawn(move || {
        for x in 0..10 {
            writer.write_chunk(frame(x * 10)).unwrap();
        }
        writer.finish().unwrap();
        writer
    });
    let mut seen = Vec::new();
    for df in reader.iter_chunks() {
        let df = df.unwrap();
        assert!(df.equals_missing(&frame(seen.len() as i64 * 10)));
        seen.push(df.height());
    }
    assert_eq!(seen.len(), 10);
    assert!(reader.is_finished());
    assert_eq!(reader.stats().copies, 0);
    assert_eq!(reader.polars_copied_columns(), 0);
    drop(producer.join().unwrap());
}
