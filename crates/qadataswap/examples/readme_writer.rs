//! writer.rs (process A)
use qadataswap::polars_core::prelude::*;
use qadataswap::{SharedDataFrame, SharedDataStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let df = DataFrame::new(
        3,
        vec![
            Column::new("symbol".into(), ["AAPL", "MSFT", "NVDA"]),
            Column::new("price".into(), [227.5f64, 415.25, 131.0]),
        ],
    )?;
    let mut writer = SharedDataFrame::create_writer("mydata-rs", 100 * 1024 * 1024)?;
    writer.write(&df)?;

    // Ordered, lossless, back-pressured: the first chunk waits for a reader.
    let mut stream = SharedDataStream::create_writer("bigdata-rs", 16 * 1024 * 1024)?;
    for i in 0..10i64 {
        stream.write_chunk(&df!("chunk" => vec![i; 1000])?)?;
    }
    stream.finish()?; // keeps the stream until its readers have read the end
    writer.close()?;
    Ok(())
}
