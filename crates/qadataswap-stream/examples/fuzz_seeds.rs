//! Writes the fuzz targets' seed inputs (real segments and frames of every Arrow type) for `cargo xtask fuzz`:
//! `DIR/segment/seed-N` and `DIR/frame/seed-N`.
//!
//! ```text
//! cargo run -p qadataswap-stream --example fuzz_seeds -- DIR
//! ```

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/fuzz-corpus".into()),
    );
    for target in ["segment", "frame"] {
        let out = dir.join(target);
        std::fs::create_dir_all(&out)?;
        let seeds = qadataswap_stream::fuzzing::seeds(target);
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i}")), seed)?;
        }
        let sizes: Vec<usize> = seeds.iter().map(Vec::len).collect();
        println!(
            "{target}: {} seeds in {} (bytes: {sizes:?})",
            seeds.len(),
            out.display()
        );
    }
    Ok(())
}
