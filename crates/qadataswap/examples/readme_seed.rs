//! The seed's Rust lines, as the README prints them, compiled in place (`tests/readme.rs` checks that this file
//! holds them exactly). Run: `cargo run -p qadataswap --example readme_seed`.

use qadataswap::polars_core::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let df = DataFrame::new(1, vec![Column::new("x".into(), [1i64])])?;
    seed_lines(df)
}

/// The README's lines.
fn seed_lines(df: DataFrame) -> Result<(), Box<dyn std::error::Error>> {
    // README begin
    use qadataswap::SharedDataFrame;

    let mut writer = SharedDataFrame::create_writer("mydata", 100 * 1024 * 1024)?;
    writer.write(&df)?;

    let reader = SharedDataFrame::create_reader("mydata")?;
    let df = reader.read()?;
    println!("{}", df);
    // README end
    Ok(())
}
