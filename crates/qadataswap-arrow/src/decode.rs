//! Decoding a slot's IPC stream into record batches whose buffers point into the slot.
//!
//! Every message's prefix and flatbuffer metadata is copied into private memory and verified before use (no double
//! fetch); every buffer range the metadata names is checked against the frame's bounds before arrow-ipc slices it.
//! Bodies stay in shared memory.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_data::{ArrayData, UnsafeFlag};
use arrow_ipc::reader::{read_dictionary_impl, RecordBatchDecoder};
use arrow_ipc::{MessageHeader, MetadataVersion};
use arrow_schema::{ArrowError, SchemaRef};

use crate::options::Validation;

/// Largest flatbuffer metadata accepted for one message.
const MAX_METADATA: usize = 64 << 20;

/// Why a frame could not be decoded (turned into [`crate::Error::CorruptFrame`] by the caller).
#[derive(Debug)]
pub(crate) struct DecodeError(pub String);

impl From<ArrowError> for DecodeError {
    fn from(e: ArrowError) -> Self {
        DecodeError(e.to_string())
    }
}

/// A cached schema keyed by the writer's schema version.
pub(crate) type SchemaCache = Option<(u64, SchemaRef)>;

/// One message's verified metadata (private copy) and the range of its body inside the frame.
struct Message {
    meta: Buffer,
    body_start: usize,
    body_len: usize,
}

impl Message {
    fn fb(&self) -> Result<arrow_ipc::Message<'_>, DecodeError> {
        arrow_ipc::root_as_message(self.meta.as_slice())
            .map_err(|e| DecodeError(format!("message metadata is not a valid flatbuffer: {e}")))
    }
}

/// Read the message starting at `pos` of `frame`. `Ok(None)` at the end-of-stream marker.
fn next_message(frame: &Buffer, pos: usize) -> Result<Option<(Message, usize)>, DecodeError> {
    let bytes = frame.as_slice();
    let prefix = bytes
        .get(pos..pos + 8)
        .ok_or_else(|| DecodeError(format!("truncated message prefix at byte {pos}")))?;
    let mut p = [0u8; 8];
    p.copy_from_slice(prefix);
    let marker = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    if marker != 0xFFFF_FFFF {
        return Err(DecodeError(format!(
            "missing continuation marker at byte {pos} (found {marker:#x})"
        )));
    }
    let meta_len = i32::from_le_bytes([p[4], p[5], p[6], p[7]]);
    if meta_len == 0 {
        return Ok(None);
    }
    let meta_len = usize::try_from(meta_len)
        .ok()
        .filter(|&l| l <= MAX_METADATA && l % 8 == 0)
        .ok_or_else(|| DecodeError(format!("bad metadata length {meta_len} at byte {pos}")))?;
    let meta_start = pos + 8;
    let src = bytes
        .get(meta_start..meta_start + meta_len)
        .ok_or_else(|| {
            DecodeError(format!(
                "metadata of {meta_len} bytes at byte {meta_start} runs past the frame"
            ))
        })?;
    let mut copy = MutableBuffer::new(meta_len);
    copy.extend_from_slice(src);
    let msg = Message {
        meta: copy.into(),
        body_start: meta_start + meta_len,
        body_len: 0,
    };
    let body_len = msg.fb()?.bodyLength();
    let body_len = usize::try_from(body_len)
        .map_err(|_| DecodeError(format!("negative body length {body_len}")))?;
    let end = msg
        .body_start
        .checked_add(body_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            DecodeError(format!(
                "body of {body_len} bytes at byte {} runs past the frame",
                msg.body_start
            ))
        })?;
    Ok(Some((Message { body_len, ..msg }, end)))
}

/// Check that every buffer a batch names lies inside its body.
fn check_buffers(batch: &arrow_ipc::RecordBatch<'_>, body_len: usize) -> Result<(), DecodeError> {
    let buffers = batch
        .buffers()
        .ok_or_else(|| DecodeError("record batch without buffer list".into()))?;
    for (i, b) in buffers.iter().enumerate() {
        let (o, l) = (b.offset(), b.length());
        let ok = o >= 0
            && l >= 0
            && (o as u64)
                .checked_add(l as u64)
                .is_some_and(|e| e <= body_len as u64);
        if !ok {
            return Err(DecodeError(format!(
                "buffer {i} (offset {o}, length {l}) lies outside its {body_len}-byte body"
            )));
        }
    }
    if batch.length() < 0 {
        return Err(DecodeError(format!(
            "negative row count {}",
            batch.length()
        )));
    }
    if let Some(nodes) = batch.nodes() {
        for n in nodes.iter() {
            if n.length() < 0 || n.null_count() < 0 || n.null_count() > n.length() {
                return Err(DecodeError(format!(
                    "bad field node (length {}, nulls {})",
                    n.length(),
                    n.null_count()
                )));
            }
        }
    }
    Ok(())
}

/// Layout validation of one decoded array, recursively (buffer sizes against lengths and types; O(columns)).
fn validate_layout(data: &ArrayData) -> Result<(), DecodeError> {
    data.validate().map_err(DecodeError::from)?;
    for child in data.child_data() {
        validate_layout(child)?;
    }
    Ok(())
}

/// Decode the frame (an IPC stream: schema, dictionaries, record batches, end marker).
///
/// `frame` is the slot's bytes (`desc.len` long) as a buffer whose owner holds the lease.
pub(crate) fn decode_frame(
    frame: &Buffer,
    schema_version: u64,
    cache: &mut SchemaCache,
    validation: Validation,
) -> Result<(SchemaRef, Vec<RecordBatch>), DecodeError> {
    // arrow-ipc can still panic on some malformed metadata the checks above do not foresee; a panic here must not
    // take the reader down.
    match catch_unwind(AssertUnwindSafe(|| {
        decode_inner(frame, schema_version, cache, validation)
    })) {
        Ok(r) => r,
        Err(_) => Err(DecodeError(
            "arrow-ipc rejected the frame's metadata (panicked while decoding)".into(),
        )),
    }
}

fn decode_inner(
    frame: &Buffer,
    schema_version: u64,
    cache: &mut SchemaCache,
    validation: Validation,
) -> Result<(SchemaRef, Vec<RecordBatch>), DecodeError> {
    let (first, mut pos) =
        next_message(frame, 0)?.ok_or_else(|| DecodeError("frame is empty".into()))?;
    let fb = first.fb()?;
    if fb.header_type() != MessageHeader::Schema {
        return Err(DecodeError(format!(
            "first message is {:?}, not a Schema",
            fb.header_type()
        )));
    }
    let schema = match cache {
        Some((v, s)) if *v == schema_version && schema_version != 0 => Arc::clone(s),
        _ => {
            let s = fb
                .header_as_schema()
                .ok_or_else(|| DecodeError("schema message without schema".into()))?;
            let s = Arc::new(arrow_ipc::convert::try_fb_to_schema(s)?);
            *cache = Some((schema_version, Arc::clone(&s)));
            s
        }
    };
    let mut skip = UnsafeFlag::new();
    if validation == Validation::Trusted {
        // SAFETY: under the documented Trusted level the body contents are trusted (0600 segment of our own uid,
        // written by this library under the commit protocol). Metadata is still checked: buffer ranges above,
        // and buffer sizes against lengths and types by `validate_layout` on every decoded array below.
        unsafe { skip.set(true) };
    }
    let mut dictionaries: HashMap<i64, ArrayRef> = HashMap::new();
    let mut batches = Vec::new();
    while let Some((msg, next)) = next_message(frame, pos)? {
        pos = next;
        let fb = msg.fb()?;
        let version = fb.version();
        if version != MetadataVersion::V5 && version != MetadataVersion::V4 {
            return Err(DecodeError(format!(
                "unsupported IPC metadata version {version:?}"
            )));
        }
        let body = frame.slice_with_length(msg.body_start, msg.body_len);
        match fb.header_type() {
            MessageHeader::DictionaryBatch => {
                let d = fb
                    .header_as_dictionary_batch()
                    .ok_or_else(|| DecodeError("empty dictionary batch".into()))?;
                let data = d
                    .data()
                    .ok_or_else(|| DecodeError("dictionary batch without data".into()))?;
                check_buffers(&data, msg.body_len)?;
                read_dictionary_impl(
                    &body,
                    d,
                    &schema,
                    &mut dictionaries,
                    &version,
                    true,
                    skip.clone(),
                )?;
            }
            MessageHeader::RecordBatch => {
                let b = fb
                    .header_as_record_batch()
                    .ok_or_else(|| DecodeError("empty record batch".into()))?;
                check_buffers(&b, msg.body_len)?;
                let batch = RecordBatchDecoder::try_new(
                    &body,
                    b,
                    Arc::clone(&schema),
                    &dictionaries,
                    &version,
                )?
                .with_require_alignment(true)
                .with_skip_validation(skip.clone())
                .read_record_batch()?;
                if validation == Validation::Trusted {
                    for c in batch.columns() {
                        validate_layout(&c.to_data())?;
                    }
                }
                batches.push(batch);
            }
            other => {
                return Err(DecodeError(format!(
                    "unexpected {other:?} message inside a frame"
                )))
            }
        }
    }
    Ok((schema, batches))
}

/// Count buffers of `batches` that lie inside `[start, end)` and those that do not (copies).
pub(crate) fn count_buffers(batches: &[RecordBatch], start: usize, end: usize) -> (u64, u64) {
    fn walk(d: &ArrayData, start: usize, end: usize, inside: &mut u64, outside: &mut u64) {
        let mut see = |ptr: usize, len: usize| {
            if len == 0 {
                return;
            }
            if ptr >= start && ptr + len <= end {
                *inside += 1;
            } else {
                *outside += 1;
            }
        };
        for b in d.buffers() {
            see(b.as_ptr() as usize, b.len());
        }
        if let Some(n) = d.nulls() {
            see(n.buffer().as_ptr() as usize, n.buffer().len());
        }
        for c in d.child_data() {
            walk(c, start, end, inside, outside);
        }
    }
    let (mut inside, mut outside) = (0, 0);
    for b in batches {
        for c in b.columns() {
            walk(&c.to_data(), start, end, &mut inside, &mut outside);
        }
    }
    (inside, outside)
}

/// Every buffer of `array` (recursively, with null bitmaps), as (address, length): for zero-copy tests.
pub fn buffer_ranges(array: &dyn Array) -> Vec<(usize, usize)> {
    fn walk(d: &ArrayData, out: &mut Vec<(usize, usize)>) {
        for b in d.buffers() {
            out.push((b.as_ptr() as usize, b.len()));
        }
        if let Some(n) = d.nulls() {
            out.push((n.buffer().as_ptr() as usize, n.buffer().len()));
        }
        for c in d.child_data() {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(&array.to_data(), &mut out);
    out
}
