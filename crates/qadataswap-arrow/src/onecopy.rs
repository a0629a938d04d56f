//! The one-copy frame encoder: lays every IPC message out itself and copies each buffer exactly once, straight into
//! the claimed slot.
//!
//! The slot bytes are the same Arrow IPC stream arrow-ipc's `StreamWriter` produces (docs/FORMAT.md §6): the schema
//! message (encoded by arrow-ipc's public helper), then for each batch its dictionary batches and its record batch,
//! then the end-of-stream marker. The flatbuffer metadata is built with arrow-ipc's generated types, mirroring
//! arrow-ipc's own choices (which buffers a sliced array keeps, where offsets are rebased, how bitmaps are shifted),
//! so an unsliced frame is byte-for-byte what `StreamWriter` writes.
//!
//! Two passes per message: `plan` walks the arrays and records, for each buffer, where its bytes come from and how
//! long they are (no data is touched); the metadata then follows from the plan, and `write_body` copies each buffer
//! into its 64-aligned place in the body, transforming it on the way where it must (a bitmap not starting on a
//! byte boundary is shifted, offsets not starting at zero are rebased). No intermediate buffer holds any body byte.
//!
//! Types it does not lay out itself (run-end encoded) make [`encode_frame`] report [`Unsupported`]; the caller then
//! encodes that frame with arrow-ipc and counts the copy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::{bit_util, Buffer};
use arrow_data::ArrayData;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef, UnionMode};
use flatbuffers::FlatBufferBuilder;

use crate::arrow_layout::{self, Buf, Children, Offset, Support};
use crate::layout::ALIGN;

const CONTINUATION: [u8; 4] = [0xFF; 4];

/// Round `n` up to a multiple of [`ALIGN`].
pub(crate) fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// A `Write` over a slot's memory that never writes past the capacity but keeps counting, so an oversized frame
/// reports exactly how many bytes it needed.
pub(crate) struct SlotCursor {
    ptr: *mut u8,
    cap: usize,
    pos: usize,
}

impl SlotCursor {
    /// # Safety
    /// `ptr..ptr+cap` must be writable memory owned by the caller for the cursor's lifetime, with no reader
    /// allowed to look at it (a claimed slot).
    pub(crate) unsafe fn new(ptr: *mut u8, cap: usize) -> SlotCursor {
        SlotCursor { ptr, cap, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The slot's start and capacity (the cursor must not have been written to).
    pub(crate) fn into_raw(self) -> (*mut u8, usize) {
        debug_assert_eq!(self.pos, 0);
        (self.ptr, self.cap)
    }
}

impl io::Write for SlotCursor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos.saturating_add(buf.len());
        if end <= self.cap {
            // SAFETY: pos + len <= cap, so the destination lies inside the claimed slot (constructor contract);
            // the source is a separate Rust slice, so the ranges do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.add(self.pos), buf.len())
            };
        }
        self.pos = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A type this encoder does not lay out itself.
#[derive(Debug)]
struct Unsupported(DataType);

/// Where one body buffer's bytes come from.
#[derive(Clone, Copy, Debug)]
enum Src<'a> {
    /// Copied as is.
    Bytes(&'a [u8]),
    /// `len` bits starting at bit `offset` of `bytes`, shifted down to bit 0; bits past `len` are zero.
    Bits {
        bytes: &'a [u8],
        offset: usize,
        len: usize,
    },
    /// `i32` offsets, each minus the first.
    Rebase32(&'a [i32]),
    /// `i64` offsets, each minus the first.
    Rebase64(&'a [i64]),
    /// A single zero offset of this many bytes (an empty list or string array).
    ZeroOffset(usize),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match *self {
            Src::Bytes(b) => b.len(),
            Src::Bits { len, .. } => bit_util::ceil(len, 8),
            Src::Rebase32(o) => o.len() * 4,
            Src::Rebase64(o) => o.len() * 8,
            Src::ZeroOffset(n) => n,
        }
    }

    /// Write the buffer into `dst` (exactly `self.len()` bytes).
    fn write(&self, dst: &mut [u8]) {
        match *self {
            Src::Bytes(b) => dst.copy_from_slice(b),
            Src::Bits { bytes, offset, len } => write_shifted_bits(dst, bytes, offset, len),
            Src::Rebase32(o) => {
                let base = o.first().copied().unwrap_or(0);
                for (d, v) in dst.chunks_exact_mut(4).zip(o) {
                    d.copy_from_slice(&v.wrapping_sub(base).to_le_bytes());
                }
            }
            Src::Rebase64(o) => {
                let base = o.first().copied().unwrap_or(0);
                for (d, v) in dst.chunks_exact_mut(8).zip(o) {
                    d.copy_from_slice(&v.wrapping_sub(base).to_le_bytes());
                }
            }
            Src::ZeroOffset(_) => dst.fill(0),
        }
    }
}

/// `len` bits of `src` from bit `offset` (not a multiple of 8) into `dst`, starting at bit 0; trailing bits zero.
fn write_shifted_bits(dst: &mut [u8], src: &[u8], offset: usize, len: usize) {
    let first = offset / 8;
    let shift = (offset % 8) as u32;
    let src = &src[first..];
    for (i, d) in dst.iter_mut().enumerate() {
        let lo = src.get(i).copied().unwrap_or(0) >> shift;
        let hi = if shift == 0 {
            0
        } else {
            src.get(i + 1).copied().unwrap_or(0) << (8 - shift)
        };
        *d = lo | hi;
    }
    let rem = len % 8;
    if rem != 0 {
        if let Some(last) = dst.last_mut() {
            *last &= (1u8 << rem) - 1;
        }
    }
}

/// The bytes of a bitmap slice, as arrow's `Buffer::bit_slice` would give them.
fn bits(bytes: &[u8], offset: usize, len: usize) -> Src<'_> {
    if offset.is_multiple_of(8) {
        let start = offset / 8;
        Src::Bytes(&bytes[start..start + bit_util::ceil(len, 8)])
    } else {
        Src::Bits { bytes, offset, len }
    }
}

/// One message body: its field nodes, buffer entries, and where each buffer's bytes come from.
#[derive(Default)]
struct Body<'a> {
    nodes: Vec<arrow_ipc::FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
    srcs: Vec<Src<'a>>,
    variadic: Vec<i64>,
    len: usize,
}

impl<'a> Body<'a> {
    /// Room for `columns` top-level columns of flat types (three buffers each at most) without growing: a small
    /// frame's `write()` otherwise spent a tenth of its instructions reallocating these lists.
    fn with_columns(columns: usize) -> Body<'a> {
        Body {
            nodes: Vec::with_capacity(columns),
            buffers: Vec::with_capacity(3 * columns),
            srcs: Vec::with_capacity(3 * columns),
            variadic: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, src: Src<'a>) {
        let n = src.len();
        self.buffers
            .push(arrow_ipc::Buffer::new(self.len as i64, n as i64));
        self.srcs.push(src);
        self.len += align(n);
    }

    fn empty(&mut self) {
        self.push(Src::Bytes(&[]));
    }

    /// Plan the column `data` viewed at `extra..extra + len` (on top of its own offset), as arrow-ipc's
    /// `write_array_data` would encode `data.slice(extra, len)`, with the buffers and children
    /// [`arrow_layout::of`] gives its type. Also records the variadic buffer count of each view array, in the order
    /// arrow-ipc does (depth-first, dictionary values apart).
    fn plan(&mut self, data: &'a ArrayData, extra: usize, len: usize) -> Result<(), Unsupported> {
        let dt = data.data_type();
        let layout = arrow_layout::of(dt);
        if layout.support != Support::OneCopy {
            return Err(Unsupported(dt.clone()));
        }
        let eo = data.offset() + extra;
        let whole = extra == 0 && len == data.len();
        let null_count = match data.nulls() {
            _ if layout.all_null => len,
            None => 0,
            Some(_) if whole => data.null_count(),
            Some(n) => len - n.inner().slice(extra, len).count_set_bits(),
        };
        self.nodes
            .push(arrow_ipc::FieldNode::new(len as i64, null_count as i64));
        // The buffers after the validity bitmap, in IPC order (arrow-rs keeps the bitmap apart).
        let mut own = data.buffers().iter();
        let next = |own: &mut std::slice::Iter<'a, Buffer>| {
            own.next().ok_or_else(|| Unsupported(dt.clone()))
        };
        // The value range the last offsets bound.
        let mut range = (0, 0);
        for b in layout.buffers() {
            match *b {
                Buf::Validity => match data.nulls() {
                    Some(n) if null_count > 0 => {
                        self.push(bits(n.buffer().as_slice(), n.offset() + extra, len))
                    }
                    _ => self.empty(),
                },
                // This encoder writes metadata V5.
                Buf::UnionValidityBeforeV5 => {}
                Buf::Bits => self.push(bits(next(&mut own)?.as_slice(), eo, len)),
                Buf::Fixed { width, .. } => {
                    self.push(truncated(next(&mut own)?.as_slice(), eo, len, width))
                }
                Buf::Offsets(Offset::I32) => range = self.offsets32(next(&mut own)?, eo, len),
                Buf::Offsets(Offset::I64) => range = self.offsets64(next(&mut own)?, eo, len),
                Buf::Data => self.push(Src::Bytes(&next(&mut own)?.as_slice()[range.0..range.1])),
                Buf::VariadicData => {
                    let count = own.len();
                    for b in own.by_ref() {
                        self.push(Src::Bytes(b.as_slice()));
                    }
                    self.variadic.push(count as i64);
                }
            }
        }
        let children = data.child_data();
        let first = || children.first().ok_or_else(|| Unsupported(dt.clone()));
        match layout.children {
            Children::None | Children::Dictionary(_) => {}
            Children::ByOffsets(_) => self.plan(first()?, range.0, range.1 - range.0)?,
            Children::ByViews(_) => {
                let child = first()?;
                let n = if len == 0 { 0 } else { child.len() };
                self.plan(child, 0, n)?;
            }
            Children::Repeated(_, size) => self.plan(first()?, eo * size, len * size)?,
            Children::Struct(_) => {
                for c in children {
                    self.plan(c, extra, len)?;
                }
            }
            Children::Union(_, UnionMode::Sparse) => {
                for c in children {
                    self.plan(c, eo, len)?;
                }
            }
            Children::Union(_, UnionMode::Dense) => {
                for c in children {
                    self.plan(c, 0, c.len())?;
                }
            }
            Children::RunEnd(_, _) => return Err(Unsupported(dt.clone())),
        }
        Ok(())
    }

    /// Push the offsets of a byte or list array (rebased when they do not start at zero); returns the value range.
    fn offsets32(&mut self, offsets: &'a Buffer, eo: usize, len: usize) -> (usize, usize) {
        if len == 0 {
            self.push(Src::ZeroOffset(4));
            return (0, 0);
        }
        let all = offsets.typed_data::<i32>();
        let o = &all[eo..eo + len + 1];
        let (start, end) = (o[0] as usize, o[len] as usize);
        if start == 0 {
            self.push(Src::Bytes(&offsets.as_slice()[eo * 4..(eo + len + 1) * 4]));
        } else {
            self.push(Src::Rebase32(o));
        }
        (start, end)
    }

    fn offsets64(&mut self, offsets: &'a Buffer, eo: usize, len: usize) -> (usize, usize) {
        if len == 0 {
            self.push(Src::ZeroOffset(8));
            return (0, 0);
        }
        let all = offsets.typed_data::<i64>();
        let o = &all[eo..eo + len + 1];
        let (start, end) = (o[0] as usize, o[len] as usize);
        if start == 0 {
            self.push(Src::Bytes(&offsets.as_slice()[eo * 8..(eo + len + 1) * 8]));
        } else {
            self.push(Src::Rebase64(o));
        }
        (start, end)
    }

    /// The record batch table of this body, in the builder (not finished).
    fn record_batch<'f>(
        &self,
        fbb: &mut FlatBufferBuilder<'f>,
        rows: usize,
    ) -> flatbuffers::WIPOffset<arrow_ipc::RecordBatch<'f>> {
        let buffers = fbb.create_vector(&self.buffers);
        let nodes = fbb.create_vector(&self.nodes);
        let variadic = (!self.variadic.is_empty()).then(|| fbb.create_vector(&self.variadic));
        let mut b = arrow_ipc::RecordBatchBuilder::new(fbb);
        b.add_length(rows as i64);
        b.add_nodes(nodes);
        b.add_buffers(buffers);
        if let Some(v) = variadic {
            b.add_variadicBufferCounts(v);
        }
        b.finish()
    }
}

/// The fixed-width buffer `buf`, cut to `eo..eo+len` elements as arrow-ipc's `get_or_truncate_buffer` does.
fn truncated(buf: &[u8], eo: usize, len: usize, width: usize) -> Src<'_> {
    let min_len = len * width;
    if eo != 0 || min_len < buf.len() {
        let start = eo * width;
        let n = min_len.min(buf.len() - start);
        Src::Bytes(&buf[start..start + n])
    } else {
        Src::Bytes(buf)
    }
}

/// A dictionary to send before a record batch.
struct DictToSend<'a> {
    id: i64,
    values: &'a ArrayData,
}

/// Walk a column depth-first as arrow-ipc assigns dictionary ids; queue the dictionaries that are new or differ
/// from the one last sent under that id in this frame.
fn collect_dicts<'a>(
    data: &'a ArrayData,
    ids: &mut std::slice::Iter<'_, i64>,
    sent: &mut HashMap<i64, &'a ArrayData>,
    out: &mut Vec<DictToSend<'a>>,
) -> Result<(), ArrowError> {
    match data.data_type() {
        DataType::Dictionary(_, _) => {
            let values = &data.child_data()[0];
            collect_children(values, ids, sent, out)?;
            let id = *ids.next().ok_or_else(|| {
                ArrowError::IpcError("dictionary id sequence shorter than the schema's".into())
            })?;
            let same = sent
                .get(&id)
                .is_some_and(|old| ArrayData::ptr_eq(old, values) || **old == *values);
            if !same {
                sent.insert(id, values);
                out.push(DictToSend { id, values });
            }
            Ok(())
        }
        _ => collect_children(data, ids, sent, out),
    }
}

fn collect_children<'a>(
    data: &'a ArrayData,
    ids: &mut std::slice::Iter<'_, i64>,
    sent: &mut HashMap<i64, &'a ArrayData>,
    out: &mut Vec<DictToSend<'a>>,
) -> Result<(), ArrowError> {
    match data.data_type() {
        DataType::Map(_, _) => {
            // arrow-ipc walks the entries' keys then values.
            if let Some(entries) = data.child_data().first() {
                for c in entries.child_data() {
                    collect_dicts(c, ids, sent, out)?;
                }
            }
        }
        DataType::Struct(_)
        | DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Union(_, _) => {
            for c in data.child_data() {
                collect_dicts(c, ids, sent, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The first type of `schema` this encoder does not lay out itself (the caller then falls back to arrow-ipc).
pub(crate) fn unsupported_type(schema: &Schema) -> Option<DataType> {
    schema
        .fields()
        .iter()
        .find_map(|f| has_unsupported(f.data_type()))
}

fn has_unsupported(dt: &DataType) -> Option<DataType> {
    let layout = arrow_layout::of(dt);
    if layout.support != Support::OneCopy {
        return Some(dt.clone());
    }
    layout.children.types().find_map(has_unsupported)
}

/// The slot being written: writes past the capacity are skipped but counted.
struct Out {
    ptr: *mut u8,
    cap: usize,
    pos: usize,
}

impl Out {
    /// The `n` bytes at the current position, or `None` when they would pass the capacity.
    fn take(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.pos;
        self.pos += n;
        if self.pos <= self.cap {
            // SAFETY: start + n <= cap, so the range lies in the claimed slot (`SlotCursor::new`'s contract), which
            // nothing else reads or writes until commit; each call hands out a disjoint range and the previous one
            // is no longer used.
            Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), n) })
        } else {
            None
        }
    }

    /// Write one encapsulated message: prefix, metadata, padding to [`ALIGN`], then the body.
    fn message(&mut self, meta: &[u8], body: Option<&Body<'_>>) {
        if let Some(h) = self.take(align(meta.len() + 8)) {
            write_message_header(h, meta);
        }
        if let Some(body) = body {
            if let Some(dst) = self.take(body.len) {
                write_body(dst, body);
            }
        }
    }
}

/// Copy each planned buffer into its place in `dst` (the whole body) and zero the padding after it.
fn write_body(dst: &mut [u8], body: &Body<'_>) {
    for (b, src) in body.buffers.iter().zip(&body.srcs) {
        let start = b.offset() as usize;
        let n = b.length() as usize;
        let padded = align(n);
        let (data, pad) = dst[start..start + padded].split_at_mut(n);
        src.write(data);
        pad.fill(0);
    }
}

/// Whether two schemas encode to the same IPC Schema message: the same `Arc`, or equal *and* with the same
/// `dict_is_ordered` flags (arrow-schema's `Field` equality ignores that flag, the IPC encoding does not).
pub(crate) fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    fn ordered_flags(fields: &arrow_schema::Fields, out: &mut Vec<Option<bool>>) {
        for f in fields {
            out.push(f.dict_is_ordered());
            type_flags(f.data_type(), out);
        }
    }
    fn type_flags(t: &DataType, out: &mut Vec<Option<bool>>) {
        match t {
            DataType::Struct(fs) => ordered_flags(fs, out),
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::LargeListView(f)
            | DataType::FixedSizeList(f, _)
            | DataType::Map(f, _) => {
                out.push(f.dict_is_ordered());
                type_flags(f.data_type(), out);
            }
            DataType::Union(fs, _) => {
                for (_, f) in fs.iter() {
                    out.push(f.dict_is_ordered());
                    type_flags(f.data_type(), out);
                }
            }
            DataType::Dictionary(_, v) => type_flags(v, out),
            DataType::RunEndEncoded(r, v) => {
                type_flags(r.data_type(), out);
                out.push(v.dict_is_ordered());
                type_flags(v.data_type(), out);
            }
            _ => {}
        }
    }
    if Arc::ptr_eq(a, b) {
        return true;
    }
    if a != b {
        return false;
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    ordered_flags(a.fields(), &mut fa);
    ordered_flags(b.fields(), &mut fb);
    fa == fb
}

/// What the one-copy encoder needs from a schema, computed once per schema rather than once per frame (a stream of
/// small chunks would otherwise re-encode the same schema flatbuffer for every chunk).
pub(crate) struct EncodedSchema {
    schema: SchemaRef,
    /// The Schema message's flatbuffer (not yet framed), as arrow-ipc encodes it.
    message: Vec<u8>,
    /// Dictionary ids in the order arrow-ipc assigns them (depth-first over the fields).
    dict_ids: Vec<i64>,
    /// The first type the one-copy encoder does not lay out itself (then arrow-ipc writes the frame).
    pub(crate) unsupported: Option<DataType>,
    /// The builder of each frame's message headers, reset and reused: a fresh one zero-fills its buffer, which was
    /// a quarter of a small frame's `write()` (callgrind, `cargo xtask bench`'s e2e-profile).
    scratch: FlatBufferBuilder<'static>,
}

impl std::fmt::Debug for EncodedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedSchema")
            .field("schema", &self.schema)
            .field("dict_ids", &self.dict_ids)
            .field("unsupported", &self.unsupported)
            .finish_non_exhaustive()
    }
}

impl EncodedSchema {
    /// `cache` if it holds `schema` (the same `Arc`, or an equal schema), else a fresh encoding stored in `cache`.
    pub(crate) fn cached<'c>(
        cache: &'c mut Option<EncodedSchema>,
        schema: &SchemaRef,
    ) -> Result<&'c mut EncodedSchema, ArrowError> {
        let hit = cache
            .as_ref()
            .is_some_and(|c| same_schema(&c.schema, schema));
        if !hit {
            let opts = IpcWriteOptions::try_new(ALIGN, false, arrow_ipc::MetadataVersion::V5)?;
            let mut tracker = DictionaryTracker::new(false);
            let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
                schema,
                &mut tracker,
                &opts,
            );
            return Ok(cache.insert(EncodedSchema {
                schema: Arc::clone(schema),
                message: encoded.ipc_message,
                dict_ids: tracker.dict_id().to_vec(),
                unsupported: unsupported_type(schema),
                scratch: FlatBufferBuilder::with_capacity(4096),
            }));
        }
        cache
            .as_mut()
            .ok_or_else(|| ArrowError::IpcError("the schema cache lost its entry".into()))
    }
}

/// Encode `batches` (all of `schema`) into the cursor's slot as an Arrow IPC stream, copying each body buffer once.
/// Returns the bytes the frame takes (possibly more than the capacity: then only what fits was written).
/// The caller checks [`unsupported_type`] first.
pub(crate) fn encode_frame(
    cursor: SlotCursor,
    schema: &mut EncodedSchema,
    batches: &[RecordBatch],
) -> Result<usize, ArrowError> {
    let (ptr, cap) = cursor.into_raw();
    let EncodedSchema {
        message: schema_message,
        dict_ids,
        scratch: fbb,
        ..
    } = schema;
    let datas: Vec<Vec<ArrayData>> = batches
        .iter()
        .map(|b| b.columns().iter().map(|c| c.to_data()).collect())
        .collect();
    // Plan every message first (metadata is small; bodies are only planned), so that a frame too large for the
    // slot is refused before any byte of the slot changes.
    // The Schema message is borrowed from the per-schema cache; batch metadata is built per frame.
    let mut messages: Vec<(Cow<'_, [u8]>, Option<Body<'_>>)> =
        vec![(Cow::Borrowed(schema_message.as_slice()), None)];
    let mut sent: HashMap<i64, &ArrayData> = HashMap::new();
    for (batch, cols) in batches.iter().zip(&datas) {
        let mut dicts = Vec::new();
        let mut ids = dict_ids.iter();
        for c in cols {
            collect_dicts(c, &mut ids, &mut sent, &mut dicts)?;
        }
        for d in &dicts {
            let mut body = Body::with_columns(1);
            body.plan(d.values, 0, d.values.len())
                .map_err(mismatched_data)?;
            fbb.reset();
            let rb = body.record_batch(fbb, d.values.len());
            let mut db = arrow_ipc::DictionaryBatchBuilder::new(fbb);
            db.add_id(d.id);
            db.add_data(rb);
            db.add_isDelta(false);
            let db = db.finish();
            finish_message(
                fbb,
                arrow_ipc::MessageHeader::DictionaryBatch,
                db.as_union_value(),
                body.len,
            );
            messages.push((Cow::Owned(fbb.finished_data().to_vec()), Some(body)));
        }
        let mut body = Body::with_columns(cols.len());
        for c in cols {
            body.plan(c, 0, c.len()).map_err(mismatched_data)?;
        }
        fbb.reset();
        let rb = body.record_batch(fbb, batch.num_rows());
        finish_message(
            fbb,
            arrow_ipc::MessageHeader::RecordBatch,
            rb.as_union_value(),
            body.len,
        );
        messages.push((Cow::Owned(fbb.finished_data().to_vec()), Some(body)));
    }
    let total = messages
        .iter()
        .map(|(meta, body)| align(meta.len() + 8) + body.as_ref().map_or(0, |b| b.len))
        .sum::<usize>()
        + EOS.len();
    if total > cap {
        return Ok(total);
    }
    let mut out = Out { ptr, cap, pos: 0 };
    for (meta, body) in &messages {
        out.message(meta, body.as_ref());
    }
    if let Some(eos) = out.take(EOS.len()) {
        eos.copy_from_slice(&EOS);
    }
    debug_assert_eq!(out.pos, total);
    Ok(total)
}

/// Wrap a finished header table in a V5 `Message` and finish the builder.
fn finish_message(
    fbb: &mut FlatBufferBuilder<'_>,
    kind: arrow_ipc::MessageHeader,
    header: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
    body_len: usize,
) {
    let mut m = arrow_ipc::MessageBuilder::new(fbb);
    m.add_version(arrow_ipc::MetadataVersion::V5);
    m.add_header_type(kind);
    m.add_bodyLength(body_len as i64);
    m.add_header(header);
    let root = m.finish();
    fbb.finish(root, None);
}

/// The schema check covers every nested type, so an unsupported type can only come from data that does not match
/// its schema.
fn mismatched_data(u: Unsupported) -> ArrowError {
    ArrowError::InvalidArgumentError(format!(
        "column data of type {:?} does not match the frame's schema",
        u.0
    ))
}

/// Metadata of a loaned record batch (see `crate::loan`): one message header for `nodes` / `buffers`.
pub(crate) fn record_batch_message(
    fbb: &mut FlatBufferBuilder<'_>,
    rows: usize,
    nodes: &[arrow_ipc::FieldNode],
    buffers: &[arrow_ipc::Buffer],
    body_len: usize,
) {
    let body = Body {
        nodes: nodes.to_vec(),
        buffers: buffers.to_vec(),
        srcs: Vec::new(),
        variadic: Vec::new(),
        len: body_len,
    };
    fbb.reset();
    let rb = body.record_batch(fbb, rows);
    finish_message(
        fbb,
        arrow_ipc::MessageHeader::RecordBatch,
        rb.as_union_value(),
        body_len,
    );
}

/// The schema message's flatbuffer, as arrow-ipc encodes it.
pub(crate) fn schema_metadata(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let opts = IpcWriteOptions::try_new(ALIGN, false, arrow_ipc::MetadataVersion::V5)?;
    let mut tracker = DictionaryTracker::new(false);
    Ok(IpcDataGenerator::default()
        .schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &opts)
        .ipc_message)
}

/// Write one encapsulated message header (prefix, metadata, zero padding) at the start of `dst`; returns its length.
/// `dst` must hold at least `align(meta.len() + 8)` bytes.
pub(crate) fn write_message_header(dst: &mut [u8], meta: &[u8]) -> usize {
    let header = align(meta.len() + 8);
    dst[..4].copy_from_slice(&CONTINUATION);
    dst[4..8].copy_from_slice(&((header - 8) as i32).to_le_bytes());
    dst[8..8 + meta.len()].copy_from_slice(meta);
    dst[8 + meta.len()..header].fill(0);
    header
}

/// The end-of-stream marker.
pub(crate) const EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

#[cfg(test)]
mod tests {
    use arrow_array::{Array, ArrayRef, Int32Array, RunArray, StringArray};
    use arrow_schema::Field;

    use super::*;
    use crate::arrow_layout::tests::{every_type, item};

    fn schema_of(dt: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("c", dt, true)]))
    }

    #[test]
    fn types_the_table_leaves_to_arrow_ipc_are_found_at_any_depth_and_refused_by_the_plan() {
        let ree = DataType::RunEndEncoded(
            Arc::new(Field::new("run_ends", DataType::Int32, false)),
            item(DataType::Utf8),
        );
        let unsupported: Vec<DataType> = every_type()
            .into_iter()
            .filter(|t| arrow_layout::of(t).support != Support::OneCopy)
            .collect();
        assert_eq!(unsupported, std::slice::from_ref(&ree));
        for dt in [
            ree.clone(),
            DataType::List(item(ree.clone())),
            DataType::Struct(vec![Field::new("r", ree.clone(), true)].into()),
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(ree.clone())),
        ] {
            assert_eq!(
                unsupported_type(&schema_of(dt.clone())),
                Some(ree.clone()),
                "{dt}"
            );
        }
        for dt in every_type()
            .into_iter()
            .filter(|t| arrow_layout::of(t).support == Support::OneCopy)
        {
            assert_eq!(unsupported_type(&schema_of(dt.clone())), None, "{dt}");
        }
        let run: ArrayRef = Arc::new(
            RunArray::try_new(
                &Int32Array::from(vec![2, 5]),
                &StringArray::from(vec![Some("a"), None]),
            )
            .unwrap(),
        );
        let data = run.to_data();
        let mut body = Body::default();
        assert!(body.plan(&data, 0, data.len()).is_err());
    }
}
