//! A metadata-only corruption of a real segment: a dictionary column's key-buffer offset moved
//! to other bytes inside the body. The keys then index far past the dictionary; every reader
//! must refuse the frame (`CorruptFrame`) at every validation level, before Polars (or Arrow C++)
//! sees it; Polars' dictionary import panicked on it ("assertion failed: i < self.len()").

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter, Validation};
use qadataswap_polars::SharedDataFrame;

/// Rows: chosen so that the keys' byte length (4 * ROWS) is a number found nowhere else.
const ROWS: usize = 1237;

/// Removes the segment at the end of the test, whatever happened.
struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// Offsets in the file of the two `Buffer { offset: i64, length: 4 * ROWS }` entries of the
/// record batch's metadata: the `big` values, then the `d` keys.
fn buffer_entries(file: &[u8]) -> Vec<(usize, i64)> {
    let length = (4 * ROWS) as i64;
    (0..file.len().saturating_sub(16))
        .step_by(8)
        .filter_map(|at| {
            let offset = i64::from_le_bytes(file[at..at + 8].try_into().unwrap());
            let len = i64::from_le_bytes(file[at + 8..at + 16].try_into().unwrap());
            (len == length && (0..1 << 20).contains(&offset)).then_some((at, offset))
        })
        .collect()
}

#[test]
fn a_dictionary_key_buffer_moved_onto_other_bytes_is_refused_by_every_reader_not_a_panic() {
    let name = format!("qads-dictkeys-{}", std::process::id());
    let _unlink = Unlink(name.clone());
    let schema = Arc::new(Schema::new(vec![
        Field::new("big", DataType::Int32, false),
        Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
    ]));
    // `big` holds values that are valid i32s but far outside the 2-entry dictionary.
    let big = Int32Array::from(vec![1_000_000; ROWS]);
    let keys = Int32Array::from((0..ROWS as i32).map(|i| i % 2).collect::<Vec<_>>());
    let dictionary =
        DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(vec!["a", "b"])))
            .unwrap();
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(big), Arc::new(dictionary)]).unwrap();
    let mut writer = SnapshotWriter::builder(&name)
        .size(4 << 20)
        .persistent(true)
        .create()
        .unwrap();
    writer.write_frame(&schema, &[batch]).unwrap();

    // Before the corruption every reader reads it.
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    assert_eq!(reader.read().unwrap().height(), ROWS);
    drop(reader);

    // Point the keys' buffer at the `big` values: only the metadata changes.
    let path = format!("/dev/shm/{name}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let entries = buffer_entries(&bytes);
    assert_eq!(
        entries.len(),
        2,
        "expected the big values and the d keys: {entries:?}"
    );
    let (keys_at, _) = entries[1];
    let (_, big_offset) = entries[0];
    file.write_all_at(&big_offset.to_le_bytes(), keys_at as u64)
        .unwrap();

    for validation in [Validation::Trusted, Validation::Full] {
        let arrow = SnapshotReader::builder(&name)
            .validation(validation)
            .open()
            .unwrap();
        let err = arrow.try_read().unwrap_err();
        assert!(
            matches!(err, qadataswap_arrow::Error::CorruptFrame { .. }),
            "{validation:?}: {err}"
        );
    }
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let err = reader.read().unwrap_err();
    assert!(
        matches!(
            err,
            qadataswap_polars::Error::Arrow(qadataswap_arrow::Error::CorruptFrame { .. })
        ),
        "{err}"
    );
    // Refused by the layout check (the keys now start inside `big`'s buffer), or by the key check naming the column.
    let text = err.to_string();
    assert!(
        text.contains("moved onto another buffer") || text.contains("\"d\""),
        "{err}"
    );
    assert_eq!(qadataswap_arrow::decode::caught_panics(), 0);
}

#[test]
fn a_dictionary_key_out_of_range_in_the_body_is_refused_at_every_level_naming_the_column() {
    // A body corruption this time: one key of the dictionary column set past the dictionary's 2 entries. Bodies are
    // trusted at the default level, except dictionary keys: Polars and Arrow C++ index dictionaries with them
    // unchecked.
    let name = format!("qads-dictkeys-body-{}", std::process::id());
    let _unlink = Unlink(name.clone());
    let keys = Int32Array::from((0..ROWS as i32).map(|i| i % 2).collect::<Vec<_>>());
    let dictionary =
        DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(vec!["a", "b"])))
            .unwrap();
    let batch = RecordBatch::try_from_iter([("d", Arc::new(dictionary) as _)]).unwrap();
    let mut writer = SnapshotWriter::builder(&name)
        .size(4 << 20)
        .persistent(true)
        .create()
        .unwrap();
    writer.write(&batch).unwrap();
    let path = format!("/dev/shm/{name}");
    let bytes = std::fs::read(&path).unwrap();
    // The keys buffer: the first run of 16 alternating 0/1 i32s.
    let pattern: Vec<u8> = (0..16i32).flat_map(|i| (i % 2).to_le_bytes()).collect();
    let at = bytes
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .expect("the keys buffer");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&7i32.to_le_bytes(), at as u64)
        .unwrap();
    for validation in [Validation::Trusted, Validation::Full] {
        let r = SnapshotReader::builder(&name)
            .validation(validation)
            .open()
            .unwrap();
        match r.try_read() {
            Err(e @ qadataswap_arrow::Error::CorruptFrame { .. }) => {
                // Trusted: our key check names the column; Full: Arrow's validation says it first.
                assert!(
                    validation == Validation::Full || e.to_string().contains("\"d\""),
                    "{validation:?}: {e}"
                )
            }
            other => panic!("{validation:?}: expected CorruptFrame, got {other:?}"),
        }
    }
    assert_eq!(qadataswap_arrow::decode::caught_panics(), 0);
}
