//! Decoding a slot's IPC stream into record batches whose buffers point into the slot.
//!
//! Every message's prefix and flatbuffer metadata is copied into private memory and verified before use (no double
//! fetch); every buffer range the metadata names is checked against the frame's bounds before arrow-ipc slices it.
//! Bodies stay in shared memory.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_data::{ArrayData, UnsafeFlag};
use arrow_ipc::reader::{read_dictionary_impl, RecordBatchDecoder};
use arrow_ipc::{MessageHeader, MetadataVersion};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, UnionMode};

use crate::arrow_layout::{self, Buf, Children};
use crate::options::Validation;

/// Largest flatbuffer metadata accepted for one message.
const MAX_METADATA: usize = 64 << 20;

/// Deepest type nesting accepted (the flatbuffer verifier's own table depth limit of 64 already bounds it; this
/// keeps every recursion below independent of that default).
const MAX_NESTING: usize = 64;

/// Largest node length accepted (rows of one array): far above anything a slot can hold, low enough that every
/// size computed from it fits in a u64 without overflow even times 32 bytes.
const MAX_NODE_LEN: u64 = 1 << 48;

/// Largest uncompressed length a compressed buffer may declare. arrow-ipc allocates the declared length before it
/// decompresses (an allocation failure aborts the process, it does not panic); 4 GiB is the largest buffer of any
/// type but the `Large*` ones (32-bit offsets and view offsets).
const MAX_DECOMPRESSED: i64 = 1 << 32;

/// How often the last-resort `catch_unwind` in [`decode_frame`] fired in this process. The checks in this module
/// are meant to make it unnecessary: the fuzz targets and tests require it to stay at zero.
static CAUGHT_PANICS: AtomicU64 = AtomicU64::new(0);

/// Number of panics `decode_frame` caught in this process (0 unless a check is missing).
pub fn caught_panics() -> u64 {
    CAUGHT_PANICS.load(Ordering::Relaxed)
}

/// Why a frame could not be decoded (turned into [`crate::Error::CorruptFrame`] by the caller).
#[derive(Debug)]
pub(crate) struct DecodeError(pub String);

impl From<ArrowError> for DecodeError {
    fn from(e: ArrowError) -> Self {
        DecodeError(e.to_string())
    }
}

/// What a reader keeps from one frame to the next (`None` until its first frame).
pub type SchemaCache = Option<DecodeCache>;

/// How many verified metadata copies a [`DecodeCache`] keeps (a stream of uniform chunks needs two: the schema
/// message and the record batch message).
const VERIFIED_KEPT: usize = 4;

/// A reader's decoding state across frames: the decoded schema keyed by the writer's schema version, and private
/// copies of recently verified message metadata. Consecutive frames of a stream usually carry byte-identical
/// metadata (same schema, same row count, same buffer layout): a message whose metadata bytes equal a kept copy
/// uses that copy and skips the flatbuffer verification. The comparison reads each shared byte once and only the
/// private copy is used afterwards, so this is exactly as safe as verifying a fresh copy.
///
/// Opaque: readers pass `&mut None` to their first decode and keep what it becomes.
#[derive(Default)]
pub struct DecodeCache {
    schema: Option<(u64, SchemaRef)>,
    verified: Vec<Buffer>,
    evict: usize,
}

impl std::fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeCache")
            .field("schema_cached", &self.schema.is_some())
            .field("verified_buffers", &self.verified.len())
            .finish_non_exhaustive()
    }
}

impl DecodeCache {
    /// A kept verified copy equal to `bytes`, or a verified private copy of `bytes` (then kept).
    fn verified_copy(&mut self, bytes: &[u8]) -> Result<Buffer, DecodeError> {
        if let Some(m) = self.verified.iter().find(|m| m.as_slice() == bytes) {
            return Ok(m.clone());
        }
        let mut copy = MutableBuffer::new(bytes.len());
        copy.extend_from_slice(bytes);
        let meta: Buffer = copy.into();
        // The verifier bounds table depth (64) and count, so nothing below recurses or allocates without limit.
        let opts = flatbuffers::VerifierOptions {
            max_depth: MAX_NESTING,
            max_tables: 1_000_000,
            max_apparent_size: 1 << 31,
            ignore_missing_null_terminator: false,
        };
        arrow_ipc::root_as_message_with_opts(&opts, meta.as_slice())
            .map_err(|e| DecodeError(format!("message metadata is not a valid flatbuffer: {e}")))?;
        if self.verified.len() < VERIFIED_KEPT {
            self.verified.push(meta.clone());
        } else {
            self.verified[self.evict] = meta.clone();
            self.evict = (self.evict + 1) % VERIFIED_KEPT;
        }
        Ok(meta)
    }
}

/// One message's verified metadata (private copy) and the range of its body inside the frame.
struct Message {
    meta: Buffer,
    body_start: usize,
    body_len: usize,
}

impl Message {
    fn fb(&self) -> arrow_ipc::Message<'_> {
        // SAFETY: `meta` is a private, immutable copy that passed the flatbuffer verifier (`verified_copy`, the
        // only source of `Message::meta`), so every offset the generated accessors follow lies inside it.
        unsafe { arrow_ipc::root_as_message_unchecked(self.meta.as_slice()) }
    }
}

/// Read the message starting at `pos` of `frame`. `Ok(None)` at the end-of-stream marker.
fn next_message(
    frame: &Buffer,
    pos: usize,
    cache: &mut DecodeCache,
) -> Result<Option<(Message, usize)>, DecodeError> {
    let bytes = frame.as_slice();
    let prefix = pos
        .checked_add(8)
        .and_then(|end| bytes.get(pos..end))
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
    let src = meta_start
        .checked_add(meta_len)
        .and_then(|end| bytes.get(meta_start..end))
        .ok_or_else(|| {
            DecodeError(format!(
                "metadata of {meta_len} bytes at byte {meta_start} runs past the frame"
            ))
        })?;
    let msg = Message {
        meta: cache.verified_copy(src)?,
        body_start: meta_start + meta_len,
        body_len: 0,
    };
    let body_len = msg.fb().bodyLength();
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

/// Check that every buffer a batch names lies inside its body, and that the counts are sane.
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
    // Writers lay the buffers of a body out one after another (FORMAT.md §6; the loan API may leave gaps): a buffer
    // that starts before the previous one ends had its offset moved onto another buffer's bytes, which would make
    // Arrow, Polars or Arrow C++ read them as offsets, views or keys without any check. O(buffers).
    let mut end_of_previous = 0u64;
    for (i, b) in buffers.iter().enumerate() {
        let (o, l) = (b.offset() as u64, b.length() as u64);
        if l > 0 && o < end_of_previous {
            return Err(DecodeError(format!(
                "buffer {i} starts at byte {o} of its body, inside the buffer before it (which ends at \
                 {end_of_previous}): its offset was moved onto another buffer's bytes"
            )));
        }
        if l > 0 {
            end_of_previous = o + l;
        }
    }
    if batch.length() < 0 || batch.length() as u64 > MAX_NODE_LEN {
        return Err(DecodeError(format!(
            "row count {} out of 0..={MAX_NODE_LEN}",
            batch.length()
        )));
    }
    let nodes = batch
        .nodes()
        .ok_or_else(|| DecodeError("record batch without field nodes".into()))?;
    for n in nodes.iter() {
        if n.length() < 0
            || n.length() as u64 > MAX_NODE_LEN
            || n.null_count() < 0
            || n.null_count() > n.length()
        {
            return Err(DecodeError(format!(
                "bad field node (length {}, nulls {})",
                n.length(),
                n.null_count()
            )));
        }
    }
    Ok(())
}

/// Check the types a schema declares before anything is decoded against it: nesting depth, and parameters that
/// Arrow would otherwise turn into huge sizes or index tables with (negative widths, decimal precisions; the
/// refusals of [`arrow_layout::of`]).
fn check_schema(schema: &Schema) -> Result<(), DecodeError> {
    fn walk(dt: &DataType, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_NESTING {
            return Err(DecodeError(format!(
                "schema nests types deeper than {MAX_NESTING} levels"
            )));
        }
        let layout = arrow_layout::of(dt);
        if let Some(r) = layout.refusal {
            return Err(DecodeError(format!("schema declares {r}")));
        }
        layout.children.types().try_for_each(|c| walk(c, depth + 1))
    }
    schema
        .fields()
        .iter()
        .try_for_each(|f| walk(f.data_type(), 0))
}

/// Walks a batch's field nodes and buffers in exactly the order arrow-ipc consumes them, checking each against the
/// schema before arrow-ipc sees it: arrow-ipc slices buffers, indexes buffer lists and builds typed views without
/// checking (and builds arrays without validation at [`Validation::Trusted`]), so every node and buffer it will
/// take must exist, be long enough for the node's length and type, and be aligned for the type.
struct LayoutWalk<'a> {
    nodes: Vec<arrow_ipc::FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
    next_node: usize,
    next_buffer: usize,
    variadic: Vec<i64>,
    next_variadic: usize,
    /// Absolute address of the body's first byte (for alignment).
    body_addr: usize,
    /// The body (a private copy when compressed).
    body: Buffer,
    version: MetadataVersion,
    dictionaries: &'a HashMap<i64, ArrayRef>,
    /// Compressed bodies: buffer lengths are compressed sizes, so only their presence and prefix are checked here
    /// (the decompressed arrays are private copies and always fully validated).
    compressed: bool,
    /// The codec of a compressed body.
    codec: Option<arrow_ipc::CompressionType>,
}

impl<'a> LayoutWalk<'a> {
    fn new(
        batch: &arrow_ipc::RecordBatch<'_>,
        body: &Buffer,
        version: MetadataVersion,
        dictionaries: &'a HashMap<i64, ArrayRef>,
    ) -> Result<Self, DecodeError> {
        // Private copies of the (already copied and verified) vectors: indexing them below is plain Vec access.
        let nodes = batch
            .nodes()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let buffers = batch
            .buffers()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let variadic = batch
            .variadicBufferCounts()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        Ok(LayoutWalk {
            nodes,
            buffers,
            next_node: 0,
            next_buffer: 0,
            variadic,
            next_variadic: 0,
            body_addr: body.as_ptr() as usize,
            body: body.clone(),
            version,
            dictionaries,
            compressed: batch.compression().is_some(),
            codec: batch.compression().map(|c| c.codec()),
        })
    }

    /// The next node as (length, null count); both were range-checked by `check_buffers`.
    fn node(&mut self, field: &Field) -> Result<(u64, u64), DecodeError> {
        let n = self.nodes.get(self.next_node).ok_or_else(|| {
            DecodeError(format!(
                "field {:?} has no field node (the batch lists {})",
                field.name(),
                self.nodes.len()
            ))
        })?;
        self.next_node += 1;
        Ok((n.length() as u64, n.null_count() as u64))
    }

    /// The next buffer, holding elements of `elem` bytes: at least `need` bytes, a whole number of elements (Arrow
    /// views buffers as `&[T]` and asserts that), its address a multiple of `align`.
    fn buffer(
        &mut self,
        field: &Field,
        what: &str,
        need: u64,
        elem: usize,
        align: usize,
    ) -> Result<(), DecodeError> {
        let i = self.next_buffer;
        let b = self.buffers.get(i).ok_or_else(|| {
            DecodeError(format!(
                "field {:?} has no {what} buffer (the batch lists {})",
                field.name(),
                self.buffers.len()
            ))
        })?;
        self.next_buffer += 1;
        let (offset, len) = (b.offset() as u64, b.length() as u64);
        if self.compressed {
            // An 8-byte uncompressed-length prefix, then the codec's bytes. An empty buffer stands for an empty one.
            if len == 0 {
                if need > 0 {
                    return Err(DecodeError(format!(
                        "compressed {what} buffer {i} of field {:?} is empty, its length and type need {need} bytes",
                        field.name()
                    )));
                }
                return Ok(());
            }
            let prefix = usize::try_from(offset)
                .ok()
                .filter(|_| len >= 8)
                .and_then(|o| self.body.as_slice().get(o..o.checked_add(8)?))
                .ok_or_else(|| {
                    DecodeError(format!(
                        "compressed {what} buffer {i} of field {:?} is shorter than its 8-byte length prefix",
                        field.name()
                    ))
                })?;
            let mut p = [0u8; 8];
            p.copy_from_slice(prefix);
            // -1: stored uncompressed; 0: empty; else the length arrow-ipc allocates before decompressing.
            let declared = i64::from_le_bytes(p);
            if !(-1..=MAX_DECOMPRESSED).contains(&declared) {
                return Err(DecodeError(format!(
                    "compressed {what} buffer {i} of field {:?} declares {declared} uncompressed bytes \
                     (out of -1..={MAX_DECOMPRESSED})",
                    field.name()
                )));
            }
            // arrow-ipc slices union type ids and offsets to the node's length without checking, and Arrow's
            // validation views buffers as `&[T]` (asserting a whole number of elements): the same checks as for an
            // uncompressed buffer, on the length the prefix declares.
            let out_len = if declared == -1 {
                len - 8
            } else {
                declared as u64
            };
            if out_len < need {
                return Err(DecodeError(format!(
                    "compressed {what} buffer {i} of field {:?} declares {out_len} bytes, its length and type \
                     need {need}",
                    field.name()
                )));
            }
            if elem > 1 && !out_len.is_multiple_of(elem as u64) {
                return Err(DecodeError(format!(
                    "compressed {what} buffer {i} of field {:?} holds {out_len} bytes, not a whole number of \
                     {elem}-byte elements",
                    field.name()
                )));
            }
            if declared > 0 {
                // arrow-ipc keeps whatever the codec produced, up to the declared length, and slices it by the
                // declared length later: the codec must produce exactly that many bytes.
                let data = usize::try_from(offset)
                    .ok()
                    .and_then(|o| {
                        self.body
                            .as_slice()
                            .get(o.checked_add(8)?..o.checked_add(len as usize)?)
                    })
                    .ok_or_else(|| {
                        DecodeError(format!(
                            "compressed {what} buffer {i} of field {:?} lies outside the body",
                            field.name()
                        ))
                    })?;
                let produced = decompressed_len(self.codec, data, out_len);
                if produced != Some(out_len) {
                    return Err(DecodeError(format!(
                        "compressed {what} buffer {i} of field {:?} declares {out_len} uncompressed bytes but \
                         decompresses to {}",
                        field.name(),
                        produced.map_or("an error".to_owned(), |n| format!("{n} bytes"))
                    )));
                }
            }
            return Ok(());
        }
        if len < need {
            return Err(DecodeError(format!(
                "{what} buffer {i} of field {:?} has {len} bytes, its length and type need {need}",
                field.name()
            )));
        }
        if elem > 1 && !len.is_multiple_of(elem as u64) {
            return Err(DecodeError(format!(
                "{what} buffer {i} of field {:?} has {len} bytes, not a whole number of {elem}-byte elements",
                field.name()
            )));
        }
        let addr = (self.body_addr as u64).wrapping_add(offset);
        if align > 1 && addr % align as u64 != 0 {
            return Err(DecodeError(format!(
                "{what} buffer {i} of field {:?} is not {align}-byte aligned",
                field.name()
            )));
        }
        Ok(())
    }

    fn validity(&mut self, field: &Field, len: u64, nulls: u64) -> Result<(), DecodeError> {
        let need = if nulls > 0 { len.div_ceil(8) } else { 0 };
        self.buffer(field, "validity", need, 1, 1)
    }

    /// The next variadic buffer count, for the view column `field`: it must leave room for the column's validity
    /// and views buffers among the buffers left.
    fn variadic_count(&mut self, field: &Field) -> Result<usize, DecodeError> {
        let count = self
            .variadic
            .get(self.next_variadic)
            .copied()
            .ok_or_else(|| {
                DecodeError(format!(
                    "no variadic buffer count for view column {:?}",
                    field.name()
                ))
            })?;
        self.next_variadic += 1;
        let left = self.buffers.len().saturating_sub(self.next_buffer);
        usize::try_from(count)
            .ok()
            .filter(|c| c.checked_add(2).is_some_and(|t| t <= left))
            .ok_or_else(|| {
                DecodeError(format!(
                    "variadic buffer count {count} of view column {:?} with {left} buffers left",
                    field.name()
                ))
            })
    }

    /// Walk one field (and its children) as [`arrow_layout::of`] lays its type out; returns its node's length.
    fn field(&mut self, field: &Field, depth: usize) -> Result<u64, DecodeError> {
        if depth > MAX_NESTING {
            return Err(DecodeError(format!("nesting deeper than {MAX_NESTING}")));
        }
        let mul = |a: u64, b: u64| {
            a.checked_mul(b)
                .ok_or_else(|| DecodeError(format!("size of field {:?} overflows", field.name())))
        };
        let layout = arrow_layout::of(field.data_type());
        let (len, nulls) = self.node(field)?;
        if layout.all_null && len != nulls {
            return Err(DecodeError(format!(
                "null column {:?} has {nulls} nulls for {len} rows",
                field.name()
            )));
        }
        let variadic = if layout.variadic() {
            self.variadic_count(field)?
        } else {
            0
        };
        for b in layout.buffers() {
            match *b {
                Buf::Validity => self.validity(field, len, nulls)?,
                Buf::UnionValidityBeforeV5 => {
                    if self.version < MetadataVersion::V5 {
                        self.buffer(field, "validity", 0, 1, 1)?;
                    }
                }
                Buf::Bits => self.buffer(field, "values", len.div_ceil(8), 1, 1)?,
                Buf::Fixed {
                    what,
                    width,
                    elem,
                    align,
                } => self.buffer(field, what, mul(len, width as u64)?, elem, align)?,
                Buf::Offsets(o) => {
                    let w = o.bytes();
                    let need = if len > 0 { mul(len + 1, w as u64)? } else { 0 };
                    self.buffer(field, "offsets", need, w, w)?;
                }
                Buf::Data => self.buffer(field, "data", 0, 1, 1)?,
                Buf::VariadicData => {
                    for _ in 0..variadic {
                        self.buffer(field, "view data", 0, 1, 1)?;
                    }
                }
            }
        }
        match layout.children {
            Children::None => {}
            Children::ByOffsets(child) | Children::ByViews(child) => {
                self.field(child, depth + 1)?;
            }
            Children::Repeated(child, size) => {
                let child_len = self.field(child, depth + 1)?;
                let need = mul(len, size as u64)?;
                if child_len < need {
                    return Err(DecodeError(format!(
                        "fixed-size list {:?} of {len} x {size} has {child_len} child values",
                        field.name()
                    )));
                }
            }
            Children::Struct(children) => {
                for child in children.iter() {
                    let child_len = self.field(child, depth + 1)?;
                    if child_len < len {
                        return Err(DecodeError(format!(
                            "struct {:?} has {len} rows but its child {:?} has {child_len}",
                            field.name(),
                            child.name()
                        )));
                    }
                }
            }
            Children::Union(children, mode) => {
                for (_, child) in children.iter() {
                    let child_len = self.field(child, depth + 1)?;
                    if mode == UnionMode::Sparse && child_len < len {
                        return Err(DecodeError(format!(
                            "sparse union {:?} has {len} rows but its child {:?} has {child_len}",
                            field.name(),
                            child.name()
                        )));
                    }
                }
            }
            Children::RunEnd(run_ends, values) => {
                let r = self.field(run_ends, depth + 1)?;
                let v = self.field(values, depth + 1)?;
                if r != v {
                    return Err(DecodeError(format!(
                        "run-end encoded {:?} has {r} run ends but {v} values",
                        field.name()
                    )));
                }
            }
            Children::Dictionary(value_type) => {
                #[allow(deprecated)]
                let id = field.dict_id();
                let values = id.and_then(|id| self.dictionaries.get(&id));
                if let Some(v) = values {
                    if v.data_type() != value_type {
                        return Err(DecodeError(format!(
                            "dictionary column {:?} of {value_type} values refers to dictionary id {id:?} of {} \
                             values",
                            field.name(),
                            v.data_type()
                        )));
                    }
                }
                if values.is_none() && len > nulls {
                    return Err(DecodeError(format!(
                        "dictionary column {:?} refers to dictionary id {id:?}, which no dictionary batch of the \
                         frame defined",
                        field.name()
                    )));
                }
            }
        }
        Ok(len)
    }

    /// Walk every top-level field; each column must have the batch's row count, and every variadic count must be
    /// used.
    fn batch(mut self, fields: &[&Field], rows: u64) -> Result<(), DecodeError> {
        for f in fields {
            let len = self.field(f, 0)?;
            if len != rows {
                return Err(DecodeError(format!(
                    "column {:?} has {len} rows, the batch {rows}",
                    f.name()
                )));
            }
        }
        if self.next_variadic != self.variadic.len() {
            return Err(DecodeError(format!(
                "the batch declares {} variadic buffer counts but its view columns use {}",
                self.variadic.len(),
                self.next_variadic
            )));
        }
        Ok(())
    }
}

/// Layout validation of one decoded array, recursively (buffer sizes against lengths and types; O(columns)).
fn validate_layout(data: &ArrayData) -> Result<(), DecodeError> {
    data.validate().map_err(DecodeError::from)?;
    for child in data.child_data() {
        validate_layout(child)?;
    }
    Ok(())
}

/// Whether a dictionary is anywhere in `dt` (children, map entries, union members and run-end values included).
pub fn has_dictionary(dt: &DataType) -> bool {
    matches!(dt, DataType::Dictionary(_, _))
        || arrow_layout::of(dt).children.types().any(has_dictionary)
}

/// Every key of every dictionary in `data` (at any depth) indexes its dictionary: the one part of a dictionary
/// column's *body* that Polars and Arrow C++ trust blindly (an out-of-range key made Polars' import panic, and
/// can make Arrow C++ read out of bounds). A key buffer reached through a moved buffer offset holds whatever bytes
/// it points at, so this runs at [`Validation::Trusted`] too; only frames with dictionaries pay for it, one pass
/// over their keys. Null slots may hold any key (the Arrow format says so), and are not checked.
fn check_dictionary_keys(data: &ArrayData, column: &str) -> Result<(), DecodeError> {
    if let DataType::Dictionary(_, _) = data.data_type() {
        data.validate_values().map_err(|e| {
            DecodeError(format!(
                "dictionary column {column:?} has a key outside its dictionary: {e}"
            ))
        })?;
    }
    for child in data.child_data() {
        check_dictionary_keys(child, column)?;
    }
    Ok(())
}

/// Decode the frame (an IPC stream: schema, dictionaries, record batches, end marker).
///
/// `frame` is the slot's bytes (`desc.len` long) as a buffer whose owner holds the lease.
/// `counts` tallies the decoded arrays' buffers inside and outside its range (the mapping: zero-copy or not), in
/// the same pass over the columns as the layout checks.
pub(crate) fn decode_frame(
    frame: &Buffer,
    schema_version: u64,
    cache: &mut SchemaCache,
    validation: Validation,
    counts: &mut BufferCounts,
) -> Result<(SchemaRef, Vec<RecordBatch>), DecodeError> {
    // arrow-ipc can still panic on some malformed metadata the checks above do not foresee; a panic here must not
    // take the reader down.
    match catch_unwind(AssertUnwindSafe(|| {
        decode_inner(frame, schema_version, cache, validation, counts)
    })) {
        Ok(r) => r,
        Err(_) => {
            CAUGHT_PANICS.fetch_add(1, Ordering::Relaxed);
            Err(DecodeError(
                "arrow-ipc rejected the frame's metadata (panicked while decoding)".into(),
            ))
        }
    }
}

fn decode_inner(
    frame: &Buffer,
    schema_version: u64,
    cache: &mut SchemaCache,
    validation: Validation,
    counts: &mut BufferCounts,
) -> Result<(SchemaRef, Vec<RecordBatch>), DecodeError> {
    let cache = cache.get_or_insert_with(DecodeCache::default);
    let (first, mut pos) =
        next_message(frame, 0, cache)?.ok_or_else(|| DecodeError("frame is empty".into()))?;
    let fb = first.fb();
    if fb.header_type() != MessageHeader::Schema {
        return Err(DecodeError(format!(
            "first message is {:?}, not a Schema",
            fb.header_type()
        )));
    }
    let schema = match &cache.schema {
        Some((v, s)) if *v == schema_version && schema_version != 0 => Arc::clone(s),
        _ => {
            let s = fb
                .header_as_schema()
                .ok_or_else(|| DecodeError("schema message without schema".into()))?;
            let s = arrow_ipc::convert::try_fb_to_schema(s)?;
            check_schema(&s)?;
            let s = Arc::new(s);
            cache.schema = Some((schema_version, Arc::clone(&s)));
            s
        }
    };
    let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
    let mut dictionaries: HashMap<i64, ArrayRef> = HashMap::new();
    let mut batches = Vec::new();
    while let Some((msg, next)) = next_message(frame, pos, cache)? {
        pos = next;
        let fb = msg.fb();
        let version = fb.version();
        if version != MetadataVersion::V5 && version != MetadataVersion::V4 {
            return Err(DecodeError(format!(
                "unsupported IPC metadata version {version:?}"
            )));
        }
        let mut body = frame.slice_with_length(msg.body_start, msg.body_len);
        let compressed = fb
            .header_as_record_batch()
            .or_else(|| fb.header_as_dictionary_batch().and_then(|d| d.data()))
            .is_some_and(|b| b.compression().is_some());
        if compressed {
            // Compressed bodies are never zero-copy: copy the body once, so that the length prefixes checked by
            // LayoutWalk are the ones arrow-ipc reads (no double fetch of shared memory).
            body = Buffer::from_slice_ref(body.as_slice());
        }
        match fb.header_type() {
            MessageHeader::DictionaryBatch => {
                let d = fb
                    .header_as_dictionary_batch()
                    .ok_or_else(|| DecodeError("empty dictionary batch".into()))?;
                let data = d
                    .data()
                    .ok_or_else(|| DecodeError("dictionary batch without data".into()))?;
                check_buffers(&data, msg.body_len)?;
                #[allow(deprecated)]
                let users = schema.fields_with_dict_id(d.id());
                let value_type = match users.first().map(|f| f.data_type()) {
                    Some(DataType::Dictionary(_, v)) => v.as_ref().clone(),
                    _ => {
                        return Err(DecodeError(format!(
                        "dictionary batch for id {}, which no dictionary field of the schema uses",
                        d.id()
                    )))
                    }
                };
                // arrow-ipc decodes the values as a one-column batch of this field.
                let value_field = Field::new("", value_type, true);
                LayoutWalk::new(&data, &body, version, &dictionaries)?
                    .batch(&[&value_field], data.length() as u64)?;
                read_dictionary_impl(
                    &body,
                    d,
                    &schema,
                    &mut dictionaries,
                    &version,
                    // Decompressed buffers are private copies aligned only to 8: arrow-ipc realigns them (a copy of
                    // a copy); uncompressed bodies must be aligned in place (zero-copy, checked by LayoutWalk).
                    data.compression().is_none(),
                    skip_flag(validation, data.compression().is_some()),
                )?;
            }
            MessageHeader::RecordBatch => {
                let b = fb
                    .header_as_record_batch()
                    .ok_or_else(|| DecodeError("empty record batch".into()))?;
                check_buffers(&b, msg.body_len)?;
                LayoutWalk::new(&b, &body, version, &dictionaries)?
                    .batch(&fields, b.length() as u64)?;
                let skip = skip_flag(validation, b.compression().is_some());
                let trusted = skip.get();
                let batch = RecordBatchDecoder::try_new(
                    &body,
                    b,
                    Arc::clone(&schema),
                    &dictionaries,
                    &version,
                )?
                .with_require_alignment(b.compression().is_none())
                .with_skip_validation(skip)
                .read_record_batch()?;
                // One `to_data` per column (it clones the array's buffer list) for both the checks and the count.
                for (c, field) in batch.columns().iter().zip(schema.fields()) {
                    let data = c.to_data();
                    if trusted {
                        validate_layout(&data)?;
                        if has_dictionary(field.data_type()) {
                            check_dictionary_keys(&data, field.name())?;
                        }
                    }
                    counts.add(&data);
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

/// How many bytes `data` decompresses to with `codec`, reading at most `limit + 1` (so a bomb costs at most the
/// declared size); `None` if it does not decompress.
fn decompressed_len(
    codec: Option<arrow_ipc::CompressionType>,
    data: &[u8],
    limit: u64,
) -> Option<u64> {
    use std::io::Read;
    let mut sink = std::io::sink();
    match codec? {
        arrow_ipc::CompressionType::LZ4_FRAME => {
            let decoder = lz4_flex::frame::FrameDecoder::new(data);
            std::io::copy(&mut decoder.take(limit.saturating_add(1)), &mut sink).ok()
        }
        arrow_ipc::CompressionType::ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(data).ok()?;
            std::io::copy(&mut decoder.take(limit.saturating_add(1)), &mut sink).ok()
        }
        _ => None,
    }
}

/// arrow-ipc's skip-validation flag for one message: set only at [`Validation::Trusted`] for uncompressed bodies
/// (decompressed buffers are private copies of unknown size: Arrow validates them in full).
fn skip_flag(validation: Validation, compressed: bool) -> UnsafeFlag {
    let mut skip = UnsafeFlag::new();
    if validation == Validation::Trusted && !compressed {
        // SAFETY: under the documented Trusted level the body contents are trusted (0600 segment of our own uid,
        // written by this library under the commit protocol). Metadata is still checked: buffer ranges, counts,
        // sizes and alignment by `check_buffers` and `LayoutWalk` before arrow-ipc runs, and every decoded array's
        // layout by `validate_layout` after.
        unsafe { skip.set(true) };
    }
    skip
}

/// Buffers of decoded arrays that lie inside `[start, end)` (the mapping: zero-copy) and those that do not (copies).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BufferCounts {
    start: usize,
    end: usize,
    pub(crate) inside: u64,
    pub(crate) outside: u64,
}

impl BufferCounts {
    /// Counts against `[start, end)`.
    pub(crate) fn within(start: usize, end: usize) -> BufferCounts {
        BufferCounts {
            start,
            end,
            ..BufferCounts::default()
        }
    }

    /// Adds the non-empty buffers of `d` and of its children, dictionary values included.
    fn add(&mut self, d: &ArrayData) {
        let mut see = |ptr: usize, len: usize| {
            if len == 0 {
                return;
            }
            if ptr >= self.start && ptr + len <= self.end {
                self.inside += 1;
            } else {
                self.outside += 1;
            }
        };
        for b in d.buffers() {
            see(b.as_ptr() as usize, b.len());
        }
        if let Some(n) = d.nulls() {
            see(n.buffer().as_ptr() as usize, n.buffer().len());
        }
        for c in d.child_data() {
            self.add(c);
        }
    }
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

#[cfg(test)]
mod tests {
    //! Hand-built hostile metadata: each case is something arrow-ipc would slice, index or view without checking.
    use super::*;
    use crate::arrow_layout::tests::{every_type, item};
    use arrow_array::{Int32Array, Int64Array, RunArray, StringArray, StringViewArray};
    use arrow_ipc::{FieldNode, MessageBuilder, RecordBatchBuilder};
    use arrow_schema::{UnionFields, UnionMode};

    /// The IPC stream bytes of `schema`'s Schema message only (no end marker).
    fn schema_message(schema: &Schema) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, schema).unwrap();
            w.flush().unwrap();
        }
        out
    }

    /// One encapsulated RecordBatch message whose body starts 64-aligned when the message starts at `pos`.
    fn batch_message(
        pos: usize,
        rows: i64,
        nodes: &[(i64, i64)],
        buffers: &[(i64, i64)],
        variadic: Option<&[i64]>,
        body: &[u8],
    ) -> Vec<u8> {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let nodes: Vec<FieldNode> = nodes.iter().map(|&(l, n)| FieldNode::new(l, n)).collect();
        let nodes = fbb.create_vector(&nodes);
        let bufs: Vec<arrow_ipc::Buffer> = buffers
            .iter()
            .map(|&(o, l)| arrow_ipc::Buffer::new(o, l))
            .collect();
        let bufs = fbb.create_vector(&bufs);
        let variadic = variadic.map(|v| fbb.create_vector(v));
        let mut rb = RecordBatchBuilder::new(&mut fbb);
        rb.add_length(rows);
        rb.add_nodes(nodes);
        rb.add_buffers(bufs);
        if let Some(v) = variadic {
            rb.add_variadicBufferCounts(v);
        }
        let rb = rb.finish();
        let mut mb = MessageBuilder::new(&mut fbb);
        mb.add_version(MetadataVersion::V5);
        mb.add_header_type(MessageHeader::RecordBatch);
        mb.add_header(rb.as_union_value());
        mb.add_bodyLength(body.len() as i64);
        let m = mb.finish();
        fbb.finish(m, None);
        let meta = fbb.finished_data();
        let body_start = (pos + 8 + meta.len()).next_multiple_of(64);
        let meta_len = body_start - pos - 8;
        let mut out = vec![0xFF, 0xFF, 0xFF, 0xFF];
        out.extend_from_slice(&(meta_len as i32).to_le_bytes());
        out.extend_from_slice(meta);
        out.resize(8 + meta_len, 0);
        out.extend_from_slice(body);
        out
    }

    fn frame(
        schema: &Schema,
        rows: i64,
        nodes: &[(i64, i64)],
        buffers: &[(i64, i64)],
        variadic: Option<&[i64]>,
        body: &[u8],
    ) -> Buffer {
        let mut bytes = schema_message(schema);
        let m = batch_message(bytes.len(), rows, nodes, buffers, variadic, body);
        bytes.extend_from_slice(&m);
        bytes.extend_from_slice(&crate::onecopy::EOS);
        let mut b = MutableBuffer::new(bytes.len());
        b.extend_from_slice(&bytes);
        b.into()
    }

    /// Decoding fails cleanly at both levels, and no panic needed catching.
    fn assert_rejected(f: &Buffer, why: &str) {
        for v in [Validation::Trusted, Validation::Full] {
            let before = caught_panics();
            let r = decode_frame(f, 0, &mut None, v, &mut BufferCounts::default());
            assert!(r.is_err(), "{why}: {v:?} accepted the frame");
            assert_eq!(
                caught_panics(),
                before,
                "{why}: {v:?} needed catch_unwind: {:?}",
                r.err()
            );
        }
    }

    fn int64_schema() -> Schema {
        Schema::new(vec![Field::new("x", DataType::Int64, true)])
    }

    #[test]
    fn a_valid_hand_built_frame_decodes_at_both_levels() {
        let body: Vec<u8> = (0..4i64).flat_map(|v| v.to_le_bytes()).collect();
        let f = frame(
            &int64_schema(),
            4,
            &[(4, 0)],
            &[(0, 0), (0, 32)],
            None,
            &body,
        );
        for v in [Validation::Trusted, Validation::Full] {
            let (_, batches) =
                decode_frame(&f, 0, &mut None, v, &mut BufferCounts::default()).unwrap();
            let col = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert_eq!(col.values().as_ref(), &[0, 1, 2, 3]);
        }
    }

    #[test]
    fn a_values_buffer_shorter_than_the_node_length_is_rejected() {
        let f = frame(
            &int64_schema(),
            4,
            &[(4, 0)],
            &[(0, 0), (0, 16)],
            None,
            &[0; 32],
        );
        assert_rejected(&f, "short values");
    }

    #[test]
    fn a_misaligned_values_buffer_is_rejected_not_a_panic() {
        let f = frame(
            &int64_schema(),
            2,
            &[(2, 0)],
            &[(0, 0), (4, 16)],
            None,
            &[0; 32],
        );
        assert_rejected(&f, "misaligned int64");
    }

    #[test]
    fn a_values_buffer_that_is_not_a_whole_number_of_elements_is_rejected() {
        // Found by the fuzzers: Arrow's validation views the buffer as `&[i64]` and asserts on a ragged tail.
        let f = frame(
            &int64_schema(),
            4,
            &[(4, 0)],
            &[(0, 0), (0, 33)],
            None,
            &[0; 64],
        );
        assert_rejected(&f, "ragged values");
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let f = frame(
            &schema,
            1,
            &[(1, 0)],
            &[(0, 0), (0, 9), (64, 0)],
            None,
            &[0; 64],
        );
        assert_rejected(&f, "ragged offsets");
    }

    #[test]
    fn huge_node_lengths_and_row_counts_are_rejected() {
        let f = frame(
            &int64_schema(),
            1 << 60,
            &[(1 << 60, 0)],
            &[(0, 0), (0, 32)],
            None,
            &[0; 32],
        );
        assert_rejected(&f, "huge length");
        let f = frame(
            &int64_schema(),
            1 << 40,
            &[(1 << 40, 0)],
            &[(0, 0), (0, 32)],
            None,
            &[0; 32],
        );
        assert_rejected(&f, "length far beyond the body");
    }

    #[test]
    fn missing_nodes_and_buffers_are_rejected() {
        assert_rejected(
            &frame(&int64_schema(), 1, &[], &[(0, 0), (0, 8)], None, &[0; 8]),
            "no node",
        );
        assert_rejected(
            &frame(&int64_schema(), 1, &[(1, 0)], &[(0, 0)], None, &[0; 8]),
            "one buffer",
        );
    }

    #[test]
    fn a_column_length_other_than_the_batch_row_count_is_rejected() {
        let f = frame(
            &int64_schema(),
            3,
            &[(2, 0)],
            &[(0, 0), (0, 16)],
            None,
            &[0; 16],
        );
        assert_rejected(&f, "column shorter than the batch");
    }

    #[test]
    fn union_type_ids_shorter_than_the_node_length_are_rejected() {
        let fields = UnionFields::try_new(
            [0, 1],
            [
                Field::new("a", DataType::Int8, true),
                Field::new("b", DataType::Int8, true),
            ],
        )
        .unwrap();
        for mode in [UnionMode::Sparse, UnionMode::Dense] {
            let schema = Schema::new(vec![Field::new(
                "u",
                DataType::Union(fields.clone(), mode),
                false,
            )]);
            let mut buffers = vec![(0, 2)]; // type ids: 2 bytes for 8 rows
            if mode == UnionMode::Dense {
                buffers.push((64, 32));
            }
            let child_len = if mode == UnionMode::Sparse { 8 } else { 1 };
            buffers.extend([(0, 0), (128, 8), (0, 0), (128, 8)]);
            let f = frame(
                &schema,
                8,
                &[(8, 0), (child_len, 0), (child_len, 0)],
                &buffers,
                None,
                &[0; 192],
            );
            assert_rejected(&f, "short type ids");
        }
    }

    #[test]
    fn dense_union_offsets_that_are_short_or_misaligned_are_rejected() {
        let fields = UnionFields::try_new([0], [Field::new("a", DataType::Int8, true)]).unwrap();
        let schema = Schema::new(vec![Field::new(
            "u",
            DataType::Union(fields, UnionMode::Dense),
            false,
        )]);
        let short = frame(
            &schema,
            4,
            &[(4, 0), (1, 0)],
            &[(0, 4), (64, 8), (0, 0), (128, 1)],
            None,
            &[0; 192],
        );
        assert_rejected(&short, "short dense offsets");
        let misaligned = frame(
            &schema,
            4,
            &[(4, 0), (1, 0)],
            &[(0, 4), (66, 16), (0, 0), (128, 1)],
            None,
            &[0; 192],
        );
        assert_rejected(&misaligned, "misaligned dense offsets");
    }

    #[test]
    fn bad_variadic_buffer_counts_are_rejected() {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8View, true)]);
        let views = (0, 32);
        for (counts, why) in [
            (None, "missing"),
            (Some(&[-1i64][..]), "negative"),
            (Some(&[1 << 40][..]), "huge"),
            (Some(&[5][..]), "more than the buffers"),
            (Some(&[0, 0][..]), "more counts than view columns"),
        ] {
            let f = frame(&schema, 2, &[(2, 0)], &[(0, 0), views], counts, &[0; 64]);
            assert_rejected(&f, why);
        }
        // A long view (length > 12) pointing at a data buffer that does not exist: contents, caught by Full only,
        // but a view buffer shorter than 16 bytes per row is metadata and caught at both levels.
        let f = frame(
            &schema,
            2,
            &[(2, 0)],
            &[(0, 0), (0, 16)],
            Some(&[0]),
            &[0; 64],
        );
        assert_rejected(&f, "short views");
        let a = StringViewArray::from(vec!["x"]);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn a_dictionary_column_without_its_dictionary_batch_is_rejected() {
        let dt = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Schema::new(vec![Field::new("d", dt, true)]);
        let f = frame(&schema, 2, &[(2, 0)], &[(0, 0), (0, 8)], None, &[0; 64]);
        assert_rejected(&f, "unknown dictionary id");
    }

    #[test]
    fn fixed_size_lists_and_structs_with_too_few_child_values_are_rejected() {
        let fsl = DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Int8, true)), 4);
        let schema = Schema::new(vec![Field::new("l", fsl, true)]);
        let f = frame(
            &schema,
            2,
            &[(2, 0), (3, 0)],
            &[(0, 0), (0, 0), (0, 8)],
            None,
            &[0; 64],
        );
        assert_rejected(&f, "fixed-size list child too short");
        let st = DataType::Struct(vec![Field::new("a", DataType::Int8, true)].into());
        let schema = Schema::new(vec![Field::new("s", st, true)]);
        let f = frame(
            &schema,
            4,
            &[(4, 0), (1, 0)],
            &[(0, 0), (0, 0), (0, 8)],
            None,
            &[0; 64],
        );
        assert_rejected(&f, "struct child too short");
    }

    #[test]
    fn a_struct_validity_bitmap_shorter_than_its_rows_is_rejected() {
        let st = DataType::Struct(vec![Field::new("a", DataType::Int8, true)].into());
        let schema = Schema::new(vec![Field::new("s", st, true)]);
        let f = frame(
            &schema,
            64,
            &[(64, 3), (64, 0)],
            &[(0, 1), (0, 0), (0, 64)],
            None,
            &[0; 64],
        );
        assert_rejected(&f, "short struct validity");
    }

    #[test]
    fn a_type_nested_deeper_than_the_limit_is_rejected() {
        let mut dt = DataType::Int8;
        for _ in 0..200 {
            dt = DataType::List(Arc::new(Field::new("item", dt, true)));
        }
        let schema = Schema::new(vec![Field::new("deep", dt, true)]);
        let f = frame(&schema, 0, &[], &[], None, &[]);
        assert_rejected(&f, "nesting bomb");
    }

    #[test]
    fn truncated_frames_and_bad_prefixes_are_rejected() {
        let body: Vec<u8> = (0..4i64).flat_map(|v| v.to_le_bytes()).collect();
        let good = frame(
            &int64_schema(),
            4,
            &[(4, 0)],
            &[(0, 0), (0, 32)],
            None,
            &body,
        );
        for cut in [0, 3, 8, 20, good.len() / 2, good.len() - 9] {
            let f = good.slice_with_length(0, cut);
            let r = decode_frame(
                &f,
                0,
                &mut None,
                Validation::Trusted,
                &mut BufferCounts::default(),
            );
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        let mut bytes = good.as_slice().to_vec();
        bytes[4..8].copy_from_slice(&(-8i32).to_le_bytes());
        assert_rejected(&Buffer::from_vec(bytes.clone()), "negative metadata length");
        bytes[4..8].copy_from_slice(&i32::MAX.to_le_bytes());
        assert_rejected(&Buffer::from_vec(bytes.clone()), "huge metadata length");
        bytes[0] = 0;
        assert_rejected(&Buffer::from_vec(bytes), "no continuation marker");
    }

    fn schema_of(dt: DataType) -> Schema {
        Schema::new(vec![Field::new("c", dt, true)])
    }

    #[test]
    fn every_type_parameter_the_table_refuses_is_refused_at_any_depth_and_every_valid_type_passes()
    {
        let refused = [
            (DataType::FixedSizeBinary(-1), "fixed-size binary width -1"),
            (
                DataType::FixedSizeList(item(DataType::Int8), -2),
                "fixed-size list size -2",
            ),
            (
                DataType::Decimal32(10, 0),
                "decimal precision 10 / scale 0 (precision 1..=9)",
            ),
            (DataType::Decimal64(0, 0), "decimal precision 0"),
            (DataType::Decimal128(5, 6), "decimal precision 5 / scale 6"),
            (DataType::Decimal256(77, 0), "(precision 1..=76)"),
            (
                DataType::Map(item(DataType::Int32), false),
                "map entries of type Int32 (a struct of key and value is required)",
            ),
            (
                DataType::RunEndEncoded(
                    Arc::new(Field::new("run_ends", DataType::Int8, false)),
                    item(DataType::Utf8),
                ),
                "run ends of type Int8",
            ),
            (
                DataType::Dictionary(Box::new(DataType::Utf8), Box::new(DataType::Utf8)),
                "dictionary keys of type Utf8",
            ),
        ];
        for (dt, why) in refused {
            for outer in [
                dt.clone(),
                DataType::LargeList(item(dt.clone())),
                DataType::Union(
                    UnionFields::try_new([3], [Field::new("u", dt.clone(), true)]).unwrap(),
                    UnionMode::Dense,
                ),
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(dt.clone())),
            ] {
                let err = check_schema(&schema_of(outer.clone()))
                    .expect_err(&format!("{outer} accepted"));
                assert!(
                    err.0.starts_with("schema declares ") && err.0.contains(why),
                    "{outer}: {}",
                    err.0
                );
            }
        }
        for dt in every_type() {
            assert!(check_schema(&schema_of(dt.clone())).is_ok(), "{dt}");
        }
    }

    #[test]
    fn a_run_end_column_written_by_arrow_ipc_decodes() {
        let run: ArrayRef = Arc::new(
            RunArray::try_new(
                &Int32Array::from(vec![2, 5]),
                &StringArray::from(vec![Some("a"), None]),
            )
            .unwrap(),
        );
        let schema = Arc::new(schema_of(run.data_type().clone()));
        let batch = RecordBatch::try_new(schema, vec![run]).unwrap();
        let mut bytes = Vec::new();
        {
            let mut w =
                arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        }
        let mut frame = MutableBuffer::new(bytes.len());
        frame.extend_from_slice(&bytes);
        let frame: Buffer = frame.into();
        for v in [Validation::Trusted, Validation::Full] {
            let (_, batches) =
                decode_frame(&frame, 0, &mut None, v, &mut BufferCounts::default()).unwrap();
            assert_eq!(batches, std::slice::from_ref(&batch));
        }
    }
}
