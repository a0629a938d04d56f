//! Encoding a frame into a slot as an Arrow IPC stream (schema, dictionaries, record batches, end-of-stream).

use arrow_array::RecordBatch;
use arrow_ipc::writer::{IpcDataGenerator, IpcWriteOptions, StreamWriter};
use arrow_schema::{Schema, SchemaRef};

use crate::layout::ALIGN;
use crate::onecopy::EncodedSchema;
// The cursor lives with the one-copy encoder, below this module (which only dispatches to it or to arrow-ipc).
pub(crate) use crate::onecopy::SlotCursor;
use crate::options::Compression;

/// IPC options of this format: metadata V5, 64-byte alignment, optional compression.
pub(crate) fn write_options(
    compression: Option<Compression>,
) -> Result<IpcWriteOptions, arrow_schema::ArrowError> {
    let opts = IpcWriteOptions::try_new(ALIGN, false, arrow_ipc::MetadataVersion::V5)?;
    opts.try_with_compression(compression.map(|c| match c {
        Compression::Lz4 => arrow_ipc::CompressionType::LZ4_FRAME,
        Compression::Zstd => arrow_ipc::CompressionType::ZSTD,
    }))
}

/// A frame written into a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// Bytes the frame takes (may exceed the slot's capacity: then nothing past it was written).
    pub len: usize,
    /// Extra copies of the body made on the way (0 on the one-copy path).
    pub copies: u64,
}

/// Encode `batches` (all of schema `schema`) into `cursor`.
///
/// Uncompressed frames go through the one-copy encoder ([`crate::onecopy`]): each body buffer is copied once,
/// straight into the slot. Compressed frames, and frames holding a type the one-copy encoder does not lay out
/// (run-end encoded), go through arrow-ipc's `StreamWriter`; the latter count one copy (arrow-ipc materialises
/// sliced and re-encoded buffers before writing them).
pub(crate) fn encode_frame(
    cursor: SlotCursor,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    compression: Option<Compression>,
    cache: &mut Option<EncodedSchema>,
) -> Result<Encoded, arrow_schema::ArrowError> {
    if compression.is_some() {
        let len = encode_frame_arrow_ipc(cursor, schema, batches, write_options(compression)?)?;
        return Ok(Encoded { len, copies: 0 });
    }
    let encoded = EncodedSchema::cached(cache, schema)?;
    if encoded.unsupported.is_some() {
        let len = encode_frame_arrow_ipc(cursor, schema, batches, write_options(None)?)?;
        return Ok(Encoded { len, copies: 1 });
    }
    let len = crate::onecopy::encode_frame(cursor, encoded, batches)?;
    Ok(Encoded { len, copies: 0 })
}

/// Encode `batches` with arrow-ipc's `StreamWriter` into `cursor` (compressed frames, and the fallback). Returns the
/// number of bytes the frame takes (which may exceed the cursor's capacity: then nothing past the capacity was
/// written and the caller reports the size).
pub(crate) fn encode_frame_arrow_ipc(
    cursor: SlotCursor,
    schema: &Schema,
    batches: &[RecordBatch],
    opts: IpcWriteOptions,
) -> Result<usize, arrow_schema::ArrowError> {
    let mut w = StreamWriter::try_new_with_options(cursor, schema, opts)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    let cursor = w.into_inner()?;
    Ok(cursor.position())
}

/// The schema as one encapsulated IPC message (continuation marker, length, flatbuffer, padding), as stored in the
/// header's schema area.
pub(crate) fn schema_message(schema: &Schema) -> Vec<u8> {
    let opts = IpcWriteOptions::default();
    let gen = IpcDataGenerator::default();
    let mut tracker = arrow_ipc::writer::DictionaryTracker::new(false);
    let encoded = gen.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &opts);
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = arrow_ipc::writer::write_message(&mut out, encoded, &opts);
    out
}
