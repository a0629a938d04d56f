//! docs/FORMAT.md is exact enough to write a reader from: a Python script using only `struct`, `mmap` and pyarrow
//! (tests/python/format_doc.py, no qadataswap code) decodes the newest frame and compares it with the expected table.

use std::path::PathBuf;
use std::process::Command;

use qadataswap_arrow::golden::{all_types_batch, GoldenOptions};
use qadataswap_arrow::SnapshotWriter;

fn venv_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join(".venv/bin/python");
    py.exists().then_some(py)
}

#[test]
fn pyarrow_decodes_the_newest_frame_using_only_the_format_document() {
    let Some(python) = venv_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            ".venv is missing under CI: `cargo xtask test` creates it"
        );
        eprintln!("SKIPPED: no .venv (run `cargo xtask setup`)");
        return;
    };
    let name = format!("qads-fmtdoc-{}", std::process::id());
    let mut w = SnapshotWriter::create(&name, 16 << 20).unwrap();
    // Two frames, so the newest is not in slot 0; the last has two batches.
    w.write(&all_types_batch(GoldenOptions {
        rows: 50,
        seed: 1,
        nulls: true,
    }))
    .unwrap();
    let b1 = all_types_batch(GoldenOptions {
        rows: 40,
        seed: 2,
        nulls: true,
    });
    let b2 = all_types_batch(GoldenOptions {
        rows: 30,
        seed: 3,
        nulls: false,
    });
    w.write_frame(&b1.schema(), &[b1.clone(), b2.clone()])
        .unwrap();

    let expected = std::env::temp_dir().join(format!("{name}.arrow"));
    {
        let f = std::fs::File::create(&expected).unwrap();
        let mut fw = arrow_ipc::writer::StreamWriter::try_new(f, &b1.schema()).unwrap();
        fw.write(&b1).unwrap();
        fw.write(&b2).unwrap();
        fw.finish().unwrap();
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/format_doc.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&name)
        .arg(&expected)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&expected);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python reader failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "OK 2 70");
}
