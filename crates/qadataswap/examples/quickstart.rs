//! The Rust quick start, with the writer and the reader in two processes: run without arguments,
//! it writes a frame, starts itself again as the reader (`quickstart reader <name>`), and waits
//! for it.
//!
//! `cargo run -p qadataswap --example quickstart`

use std::process::Command;
use std::time::Duration;

use qadataswap::polars_core::prelude::*;
use qadataswap::SharedDataFrame;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn writer() -> Result<()> {
    let name = format!("mydata-{}", std::process::id());
    let df = DataFrame::new(
        4,
        vec![
            Column::new("symbol".into(), ["AAPL", "MSFT", "NVDA", "AMZN"]),
            Column::new("price".into(), [227.5f64, 415.25, 131.0, 201.75]),
            Column::new("volume".into(), [1_200i64, 800, 2_500, 950]),
        ],
    )?;

    let mut writer = SharedDataFrame::create_writer(&name, 100 * 1024 * 1024)?;
    writer.write(&df)?;
    println!(
        "[writer pid {}] wrote {} rows to '{name}'",
        std::process::id(),
        df.height()
    );

    let status = Command::new(std::env::current_exe()?)
        .args(["reader", &name])
        .status()?;
    writer.close()?;
    if !status.success() {
        return Err(format!("the reader process failed: {status}").into());
    }
    println!("[writer] done");
    Ok(())
}

fn reader(name: &str) -> Result<()> {
    let reader = SharedDataFrame::reader(name)
        .timeout(Some(Duration::from_secs(10)))
        .open()?;
    let df = reader.read()?;
    println!("[reader pid {}] read:", std::process::id());
    println!("{}", df);
    let stats = reader.stats();
    println!(
        "[reader] zero-copy buffers: {}, copies: {}",
        stats.arrow.zero_copy_buffers, stats.arrow.copies
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        None | Some("writer") => writer(),
        Some("reader") => match args.get(2) {
            Some(name) => reader(name),
            None => Err("usage: quickstart reader <segment name>".into()),
        },
        Some(other) => {
            Err(format!("unknown role `{other}`: use `writer` (default) or `reader <name>`").into())
        }
    }
}
