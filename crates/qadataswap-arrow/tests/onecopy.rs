//! The one-copy writer's slot bytes are the Arrow IPC stream arrow-ipc's own `StreamWriter` writes (byte for byte),
//! decode identically with arrow-ipc and pyarrow, and cost no hidden copy; loans commit in place or never show.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, RunArray,
    StringArray,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use proptest::prelude::*;
use qadataswap_arrow::golden::{all_types_batch, numeric_batch, GoldenOptions};
use qadataswap_arrow::{Error, SnapshotReader, SnapshotWriter, WriteInfo};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(tag: &str) -> String {
    format!(
        "qads-oc-{}-{}-{}",
        std::process::id(),
        tag,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn golden(rows: usize, seed: u64, nulls: bool) -> RecordBatch {
    all_types_batch(GoldenOptions { rows, seed, nulls })
}

/// What arrow-ipc's own `StreamWriter` writes for the frame (the format's options: V5, 64-byte alignment).
fn arrow_ipc_stream(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<u8> {
    let opts = IpcWriteOptions::try_new(64, false, arrow_ipc::MetadataVersion::V5).unwrap();
    let mut w = StreamWriter::try_new_with_options(Vec::new(), schema, opts).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    w.into_inner().unwrap()
}

/// A private copy of the committed slot's bytes.
fn slot_bytes(w: &SnapshotWriter, info: &WriteInfo) -> Vec<u8> {
    assert!(info.bytes <= w.geometry().slot_capacity);
    // SAFETY: the slot was just committed by this writer and no other write happens while we copy; the range lies
    // inside the slot (checked above), which lies inside the writer's mapping.
    unsafe { std::slice::from_raw_parts(w.shared().slot_ptr(info.slot), info.bytes) }.to_vec()
}

fn decode_with_arrow_ipc(bytes: &[u8]) -> Vec<RecordBatch> {
    StreamReader::try_new(Cursor::new(bytes), None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The header types of the stream's messages, in order (`Schema`, `DictionaryBatch`, `RecordBatch`...).
fn message_kinds(bytes: &[u8]) -> Vec<arrow_ipc::MessageHeader> {
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        assert_eq!(&bytes[pos..pos + 4], &[0xFF; 4], "continuation at {pos}");
        let len = i32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if len == 0 {
            assert_eq!(pos + 8, bytes.len(), "end-of-stream marker ends the frame");
            return out;
        }
        assert_eq!((pos + 8 + len) % 64, 0, "message metadata padded to 64");
        let m = arrow_ipc::root_as_message(&bytes[pos + 8..pos + 8 + len]).unwrap();
        out.push(m.header_type());
        if let Some(rb) = m
            .header_as_record_batch()
            .or_else(|| m.header_as_dictionary_batch().and_then(|d| d.data()))
        {
            for b in rb.buffers().unwrap() {
                assert_eq!(b.offset() % 64, 0, "buffer 64-aligned in the body");
            }
        }
        pos += 8 + len + m.bodyLength() as usize;
    }
}

fn venv_python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    p.exists().then_some(p)
}

/// pyarrow reads both streams to equal tables with the same batch boundaries.
fn assert_pyarrow_reads_the_same(tag: &str, ours: &[u8], theirs: &[u8]) {
    let Some(python) = venv_python() else {
        println!("skipping the pyarrow check: no .venv at the repository root (cargo xtask test creates it)");
        return;
    };
    let dir = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("slot.arrows"), dir.join("arrow-ipc.arrows"));
    std::fs::write(&a, ours).unwrap();
    std::fs::write(&b, theirs).unwrap();
    let script = r#"
import sys, pyarrow as pa
def read(p):
    with open(p, 'rb') as f:
        r = pa.ipc.open_stream(pa.py_buffer(f.read()))
        return r.schema, list(r)
sa, ba = read(sys.argv[1])
sb, bb = read(sys.argv[2])
assert sa.equals(sb, check_metadata=True), (sa, sb)
assert len(ba) == len(bb), (len(ba), len(bb))
for x, y in zip(ba, bb):
    x.validate(full=True)
    assert x.equals(y), (x, y)
assert pa.Table.from_batches(ba, sa).equals(pa.Table.from_batches(bb, sb))
print('pyarrow ok', len(ba), 'batches', sum(b.num_rows for b in ba), 'rows')
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!("{tag}: {}", String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success(),
        "pyarrow disagrees for {tag}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write the frame, then check: bytes equal arrow-ipc's, arrow-ipc and the leased reader decode the input back,
/// pyarrow reads the same as arrow-ipc's stream, and no copy was counted.
fn check_frame(tag: &str, batches: &[RecordBatch]) -> Vec<u8> {
    let schema = batches[0].schema();
    let name = unique(tag);
    let mut w = SnapshotWriter::create(&name, 16 << 20).unwrap();
    let info = w.write_frame(&schema, batches).unwrap();
    let ours = slot_bytes(&w, &info);
    let theirs = arrow_ipc_stream(&schema, batches);
    assert!(
        ours == theirs,
        "{tag}: slot bytes ({}) differ from arrow-ipc's stream ({}) first at byte {:?}",
        ours.len(),
        theirs.len(),
        ours.iter().zip(&theirs).position(|(a, b)| a != b)
    );
    let decoded = decode_with_arrow_ipc(&ours);
    assert_eq!(decoded.len(), batches.len());
    for (d, b) in decoded.iter().zip(batches) {
        assert_eq!(d, b, "{tag}: arrow-ipc decodes the slot back to the input");
    }
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    for (d, b) in f.batches().iter().zip(batches) {
        d.columns()
            .iter()
            .for_each(|c| c.to_data().validate_full().unwrap());
        assert_eq!(
            d, b,
            "{tag}: the leased reader decodes the slot back to the input"
        );
    }
    assert_eq!(
        w.stats().copies,
        0,
        "{tag}: the one-copy path made a hidden copy"
    );
    assert_pyarrow_reads_the_same(tag, &ours, &theirs);
    ours
}

#[test]
fn every_golden_type_with_nulls_is_byte_identical_to_arrow_ipc_and_decodes_everywhere() {
    check_frame("nulls", &[golden(300, 1, true)]);
}

#[test]
fn every_golden_type_without_nulls_is_byte_identical_to_arrow_ipc() {
    check_frame("nonulls", &[golden(129, 2, false)]);
}

#[test]
fn sliced_inputs_with_unaligned_bitmaps_and_rebased_offsets_are_laid_out_in_one_pass() {
    let b = golden(300, 3, true);
    // Offset 3: bitmaps start mid-byte, string and list offsets do not start at zero.
    check_frame("slice3", &[b.slice(3, 101)]);
    // Offset 16: byte-aligned bitmaps, rebased offsets.
    check_frame("slice16", &[b.slice(16, 77)]);
    // A slice reaching the end, and one of a single row.
    check_frame("slice_end", &[b.slice(291, 9)]);
    check_frame("slice_one", &[b.slice(150, 1)]);
}

#[test]
fn several_batches_per_frame_keep_their_boundaries_and_share_identical_dictionaries() {
    let a = golden(200, 4, true);
    // Two slices of one batch share their dictionaries: each is sent once, before the first record batch.
    let bytes = check_frame(
        "shared_dict",
        &[a.slice(0, 100), a.slice(100, 100), a.clone()],
    );
    let kinds = message_kinds(&bytes);
    use arrow_ipc::MessageHeader as H;
    let dicts = kinds.iter().filter(|k| **k == H::DictionaryBatch).count();
    assert_eq!(
        dicts, 2,
        "two dictionary columns, each sent once: {kinds:?}"
    );
    assert_eq!(kinds[0], H::Schema);
    assert_eq!(kinds[1], H::DictionaryBatch);
    assert_eq!(kinds[2], H::DictionaryBatch);
    // A batch with different dictionary values replaces them before its record batch.
    let other = golden(50, 5, false);
    let other = RecordBatch::try_new(a.schema(), other.columns().to_vec()).unwrap();
    let bytes = check_frame("replaced_dict", &[a.clone(), other]);
    let kinds = message_kinds(&bytes);
    let rb = kinds.iter().filter(|k| **k == H::RecordBatch).count();
    assert_eq!(rb, 2);
    assert!(
        kinds.iter().filter(|k| **k == H::DictionaryBatch).count() >= 3,
        "replacement dictionaries are sent: {kinds:?}"
    );
}

#[test]
fn empty_and_numeric_frames_are_byte_identical_to_arrow_ipc() {
    check_frame("empty", &[golden(0, 6, true)]);
    check_frame("numeric", &[numeric_batch(10_000, 4)]);
    let b = golden(64, 7, true);
    check_frame("with_empty", &[b.slice(0, 0), b.clone(), b.slice(64, 0)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_slice_of_the_golden_batch_is_byte_identical_to_arrow_ipc(
        rows in 1usize..120, seed in 0u64..1000, nulls in any::<bool>(), a in 0usize..120, b in 0usize..120,
    ) {
        let batch = golden(rows, seed, nulls);
        let start = a % rows;
        let len = b % (rows - start + 1);
        let sliced = batch.slice(start, len);
        let schema = batch.schema();
        let name = unique("prop");
        let mut w = SnapshotWriter::create(&name, 4 << 20).unwrap();
        let info = w.write_frame(&schema, &[sliced.clone(), batch.clone()]).unwrap();
        let ours = slot_bytes(&w, &info);
        prop_assert!(ours == arrow_ipc_stream(&schema, &[sliced.clone(), batch.clone()]));
        let decoded = decode_with_arrow_ipc(&ours);
        prop_assert_eq!(&decoded[0], &sliced);
        prop_assert_eq!(w.stats().copies, 0);
    }
}

#[test]
fn run_end_encoded_columns_fall_back_to_arrow_ipc_and_count_the_copy() {
    let run_ends = Int32Array::from(vec![2, 5, 6]);
    let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
    let ree: ArrayRef = Arc::new(RunArray::<Int32Type>::try_new(&run_ends, &values).unwrap());
    let batch = RecordBatch::try_from_iter([("ree", ree)]).unwrap();
    let name = unique("ree");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&batch).unwrap();
    assert_eq!(w.stats().copies, 1, "the fallback frame is counted");
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().batches()[0], batch);
    w.write(&golden(10, 1, true)).unwrap();
    assert_eq!(w.stats().copies, 1, "only the fallback frame counts");
}

#[test]
fn a_frame_too_large_for_the_slot_is_refused_and_the_published_frame_stays_readable() {
    let name = unique("big");
    let mut w = SnapshotWriter::builder(&name)
        .size(3 << 20)
        .slots(3)
        .create()
        .unwrap();
    let small = numeric_batch(100, 2);
    w.write(&small).unwrap();
    let err = w.write(&numeric_batch(200_000, 4)).unwrap_err();
    assert!(matches!(err, Error::SlotTooSmall { .. }), "{err}");
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().batches()[0], small);
}

fn loan_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
    ]))
}

#[test]
fn a_committed_loan_is_read_back_zero_copy_with_its_nulls() {
    let name = unique("loan");
    let mut w = SnapshotWriter::create(&name, 4 << 20).unwrap();
    let schema = loan_schema();
    let rows = 1001;
    let mut loan = w.loan(&schema, rows).unwrap();
    for (i, v) in loan
        .column_mut::<Int64Type>(0)
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        *v = i as i64 * 3;
    }
    for (i, v) in loan
        .column_mut::<Float64Type>(1)
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        *v = i as f64 / 2.0;
    }
    let valid = loan.validity_mut(1).unwrap();
    for r in (0..rows).filter(|r| r % 7 == 0) {
        valid[r / 8] &= !(1 << (r % 8));
    }
    let flags = loan.bytes_mut(2).unwrap();
    for (i, byte) in flags.iter_mut().enumerate() {
        *byte = if i % 2 == 0 { 0b0101_0101 } else { 0xFF };
    }
    for (i, v) in loan
        .column_mut::<TimestampNanosecondType>(3)
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        *v = 1_700_000_000_000_000_000 + i as i64;
    }
    let info = loan.commit().unwrap();
    assert_eq!(info.rows, rows);
    assert_eq!(w.stats().copies, 0);

    let expected = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|i| i * 3),
            )),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| (i % 7 != 0).then_some(i as f64 / 2.0)),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| {
                let byte = if (i / 8) % 2 == 0 {
                    0b0101_0101u8
                } else {
                    0xFF
                };
                Some(byte & (1 << (i % 8)) != 0)
            }))),
            Arc::new(
                arrow_array::TimestampNanosecondArray::from_iter_values(
                    (0..rows as i64).map(|i| 1_700_000_000_000_000_000 + i),
                )
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches()[0], expected);
    assert_eq!(f.batches()[0].column(1).null_count(), rows.div_ceil(7));
    assert_eq!(r.stats().copies, 0);
    // The loan's slot is a standard stream: arrow-ipc and pyarrow read it like arrow-ipc's own.
    let ours = slot_bytes(&w, &info);
    assert_eq!(decode_with_arrow_ipc(&ours), vec![expected.clone()]);
    let _ = message_kinds(&ours);
    assert_pyarrow_reads_the_same("loan", &ours, &arrow_ipc_stream(&schema, &[expected]));
}

#[test]
fn an_aborted_or_dropped_loan_never_becomes_visible() {
    let name = unique("abort");
    let mut w = SnapshotWriter::builder(&name)
        .size(3 << 20)
        .lease_timeout(Duration::from_secs(5))
        .create()
        .unwrap();
    let first = numeric_batch(10, 2);
    w.write(&first).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let schema = first.schema();
    for round in 0..4 {
        let mut loan = w.loan(&schema, 10).unwrap();
        loan.column_mut::<Int64Type>(0).unwrap().fill(-1);
        loan.column_mut::<Float64Type>(1).unwrap().fill(-1.0);
        if round % 2 == 0 {
            loan.abort();
        } else {
            drop(loan);
        }
        let f = r
            .try_read()
            .unwrap()
            .expect("the first frame stays published");
        assert_eq!(f.seq(), 1, "round {round}: no new frame");
        assert_eq!(f.batches()[0], first);
    }
    assert_eq!(w.next_seq(), 2);
    // The writer goes on normally; the next frame gets the next number.
    let info = w.write(&numeric_batch(5, 2)).unwrap();
    assert_eq!(info.seq, 2);
    assert_eq!(r.read().unwrap().seq(), 2);
}

#[test]
fn a_loan_refuses_variable_width_columns_and_mismatched_types() {
    let name = unique("refuse");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    assert!(matches!(
        w.loan(&schema, 10),
        Err(Error::InvalidFrame { .. })
    ));
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false)]));
    let mut loan = w.loan(&schema, 10).unwrap();
    assert!(matches!(
        loan.column_mut::<Float64Type>(0),
        Err(Error::InvalidFrame { .. })
    ));
    assert!(matches!(
        loan.column_mut::<Int64Type>(1),
        Err(Error::InvalidFrame { .. })
    ));
    assert!(matches!(
        loan.validity_mut(0),
        Err(Error::InvalidFrame { .. })
    ));
    loan.abort();
    let huge = w.loan(&schema, 1 << 30);
    assert!(matches!(huge, Err(Error::SlotTooSmall { .. })));
}
