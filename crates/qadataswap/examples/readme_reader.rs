//! reader.rs (process B)
use qadataswap::{SharedDataFrame, SharedDataStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reader = SharedDataFrame::create_reader("mydata-rs")?; // waits for the writer to create it
    let df = reader.read()?; // a polars DataFrame over shared memory, no copy
    println!("{:?}", df.shape());

    let mut rows = 0;
    let mut stream = SharedDataStream::create_reader("bigdata-rs")?;
    for chunk in stream.iter_chunks() {
        rows += chunk?.height(); // each chunk a DataFrame, zero-copy
    }
    println!("{rows}");
    Ok(())
}
