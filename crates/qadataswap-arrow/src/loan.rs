//! Loans: a producer builds a frame's buffers in place, inside a claimed slot, and commits (zero copies).
//!
//! [`SnapshotWriter::loan`] claims a free slot and lays out one record batch of `rows` rows for the schema (every
//! column fixed-width: primitives, decimals, temporal, intervals, booleans, fixed-size binary). The producer fills
//! each column through [`Loan::column_mut`] (typed) or [`Loan::bytes_mut`] (raw), optionally its validity through
//! [`Loan::validity_mut`], then [`Loan::commit`]s: the metadata is written around the buffers and the frame is
//! published like any other. A loan that is aborted or dropped never becomes visible. The slot bytes are the same
//! standard Arrow IPC stream `write` produces (docs/FORMAT.md §6).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use arrow_array::types::{Float64Type, Int64Type};
//! use arrow_schema::{DataType, Field, Schema};
//! use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
//!
//! let name = format!("qads-loan-doc-{}", std::process::id());
//! let mut writer = SnapshotWriter::create(&name, 1 << 20)?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("price", DataType::Float64, true),
//! ]));
//! let mut loan = writer.loan(&schema, 4)?;
//! loan.column_mut::<Int64Type>(0)?.copy_from_slice(&[1, 2, 3, 4]);
//! loan.column_mut::<Float64Type>(1)?.copy_from_slice(&[1.5, 2.5, 0.0, 4.5]);
//! loan.validity_mut(1)?[0] = 0b1011; // row 2 is null
//! loan.commit()?;
//! assert_eq!(writer.stats().copies, 0);
//!
//! let reader = SnapshotReader::open(&name)?;
//! let frame = reader.read()?;
//! assert_eq!(frame.num_rows(), 4);
//! assert_eq!(frame.batches()[0].column(1).null_count(), 1);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use arrow_array::ArrowPrimitiveType;
use arrow_buffer::bit_util;
use arrow_data::{layout, BufferSpec};
use arrow_schema::{DataType, SchemaRef};
use flatbuffers::FlatBufferBuilder;

use crate::claim::{Claim, Claimed, Committed};
use crate::error::{Error, Result};
use crate::onecopy::{self, align};
use crate::segment::Shared;
use crate::writer::{pick_snapshot_slot, SnapshotWriter, WriteInfo};

/// One loaned column's place in the body (offsets from the body's start).
#[derive(Clone, Copy, Debug)]
struct Column {
    /// Reserved validity bitmap (nullable fields only): offset, bytes.
    validity: Option<(usize, usize)>,
    /// Whether the producer asked for the validity bitmap (else the frame says "no nulls").
    validity_used: bool,
    values: usize,
    values_len: usize,
    /// Bytes per value; 0 for a bit-packed boolean column.
    width: usize,
}

/// A slot on loan: the producer writes the buffers in place, then commits or aborts. See the [module docs](self).
///
/// The buffers' initial contents are unspecified (whatever the slot held before): write every value.
#[must_use = "a loan that is dropped is aborted: call commit()"]
pub struct Loan<'w> {
    writer: &'w mut SnapshotWriter,
    /// The claimed slot (`claim.slot`, kept for the accessors).
    slot: usize,
    /// The claim; `None` only once committed. Dropping the loan drops it, which gives the slot up.
    claim: Option<Claim>,
    schema: SchemaRef,
    rows: usize,
    shared: Arc<Shared>,
    schema_meta: Vec<u8>,
    /// Bytes of the record batch message's metadata (fixed by the layout: only struct values change at commit).
    batch_meta_len: usize,
    body_start: usize,
    body_len: usize,
    columns: Vec<Column>,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("segment", &self.writer.name())
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Bytes per value of a loanable type; 0 for booleans (bit-packed). `None`: not loanable.
fn value_width(dt: &DataType) -> Option<usize> {
    if matches!(dt, DataType::Dictionary(_, _)) {
        return None;
    }
    let l = layout(dt);
    if !l.variadic && l.buffers.len() == 1 {
        match l.buffers[0] {
            BufferSpec::FixedWidth { byte_width, .. } => Some(byte_width),
            BufferSpec::BitMap => Some(0),
            _ => None,
        }
    } else {
        None
    }
}

/// Arrow IPC field nodes and buffer entries of a loan's batch.
fn batch_metadata(
    fbb: &mut FlatBufferBuilder<'_>,
    rows: usize,
    columns: &[Column],
    null_counts: &[usize],
    body_len: usize,
) {
    let mut nodes = Vec::with_capacity(columns.len());
    let mut buffers = Vec::with_capacity(columns.len() * 2);
    for (c, nulls) in columns.iter().zip(null_counts) {
        nodes.push(arrow_ipc::FieldNode::new(rows as i64, *nulls as i64));
        let (voff, vlen) = c.validity.unwrap_or((c.values, 0));
        let vlen = if c.validity_used && *nulls > 0 {
            vlen
        } else {
            0
        };
        buffers.push(arrow_ipc::Buffer::new(voff as i64, vlen as i64));
        buffers.push(arrow_ipc::Buffer::new(c.values as i64, c.values_len as i64));
    }
    onecopy::record_batch_message(fbb, rows, &nodes, &buffers, body_len);
}

/// Set bits among the first `rows` bits of `bits`.
fn count_ones(bits: &[u8], rows: usize) -> usize {
    let full = rows / 8;
    let mut n: usize = bits[..full].iter().map(|b| b.count_ones() as usize).sum();
    if !rows.is_multiple_of(8) {
        n += (bits[full] & ((1u8 << (rows % 8)) - 1)).count_ones() as usize;
    }
    n
}

impl SnapshotWriter {
    /// Loan a free slot laid out for one record batch of `rows` rows of `schema`, to be filled in place and
    /// committed (zero copies). Every field must be fixed-width (primitive, decimal, temporal, interval, boolean,
    /// fixed-size binary); nullable fields get a validity bitmap the producer may fill.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for a field that is not fixed-width, [`Error::SlotTooSmall`],
    /// [`Error::AllSlotsLeased`] after the lease timeout, [`Error::Forked`].
    pub fn loan(&mut self, schema: &SchemaRef, rows: usize) -> Result<Loan<'_>> {
        self.raw.check_owner()?;
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut body_len = 0usize;
        for f in schema.fields() {
            let width = value_width(f.data_type()).ok_or_else(|| Error::InvalidFrame {
                what: format!(
                    "field '{}' has type {}; a loan lays out fixed-width columns only (use write() for others)",
                    f.name(),
                    f.data_type()
                ),
            })?;
            let bitmap = bit_util::ceil(rows, 8);
            let validity = f.is_nullable().then(|| {
                let at = body_len;
                body_len += align(bitmap);
                (at, bitmap)
            });
            let values_len = if width == 0 {
                bitmap
            } else {
                rows.checked_mul(width).ok_or_else(|| Error::InvalidFrame {
                    what: format!(
                        "{rows} rows of field '{}' overflow the address space",
                        f.name()
                    ),
                })?
            };
            columns.push(Column {
                validity,
                validity_used: false,
                values: body_len,
                values_len,
                width,
            });
            body_len += align(values_len);
        }
        let schema_meta = onecopy::schema_metadata(schema)?;
        let mut fbb = FlatBufferBuilder::with_capacity(1024);
        let full = vec![rows; columns.len()];
        batch_metadata(&mut fbb, rows, &columns, &full, body_len);
        let batch_meta_len = fbb.finished_data().len();
        let body_start = align(schema_meta.len() + 8) + align(batch_meta_len + 8);
        let total = body_start + body_len + onecopy::EOS.len();
        let shared = Arc::clone(&self.raw.shared);
        let cap = shared.geo.slot_capacity;
        if total > cap {
            return Err(Error::SlotTooSmall {
                name: shared.name.clone(),
                needed: total,
                capacity: cap,
            });
        }
        let mut claim = loop {
            let slot = self.raw.wait_for_slot(pick_snapshot_slot)?;
            if let Claimed::Won(c) = self.raw.claim_slot(slot, self.next_seq)? {
                break c;
            }
        };
        // The caller writes into the slot from now on: an abandoned loan leaves it empty.
        claim.touch();
        Ok(Loan {
            writer: self,
            slot: claim.slot,
            claim: Some(claim),
            schema: Arc::clone(schema),
            rows,
            shared,
            schema_meta,
            batch_meta_len,
            body_start,
            body_len,
            columns,
        })
    }
}

impl Loan<'_> {
    /// Rows of the loaned batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The schema of the loaned batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The slot this loan writes.
    pub fn slot(&self) -> usize {
        self.slot
    }

    fn column(&self, i: usize) -> Result<Column> {
        self.columns
            .get(i)
            .copied()
            .ok_or_else(|| Error::InvalidFrame {
                what: format!(
                    "column {i} does not exist; the loan has {} columns",
                    self.columns.len()
                ),
            })
    }

    /// `len` bytes at `at` of the body.
    fn body_mut(&mut self, at: usize, len: usize) -> &mut [u8] {
        debug_assert!(at + len <= self.body_len);
        // SAFETY: the slot is claimed by this loan (odd sequence, no lease) until commit/abort, and the layout was
        // checked against the slot capacity in `loan`: body_start + at + len lies inside the slot. The returned
        // slice borrows `self` mutably, so no two slices handed out by the loan are alive at once. Shared memory is
        // initialised (zero-filled at creation, then written), so every byte is a valid u8.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.shared.slot_ptr(self.slot).add(self.body_start + at),
                len,
            )
        }
    }

    /// Column `i`'s values, typed: `T`'s physical type must be the field's (`Int64Type` for Int64, `Float64Type`
    /// for Float64, `TimestampNanosecondType` for any nanosecond timestamp...).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for a column that does not exist or whose type differs from `T`.
    pub fn column_mut<T: ArrowPrimitiveType>(&mut self, i: usize) -> Result<&mut [T::Native]> {
        let c = self.column(i)?;
        let dt = self.schema.field(i).data_type();
        let same = std::mem::discriminant(dt) == std::mem::discriminant(&T::DATA_TYPE)
            && c.width == std::mem::size_of::<T::Native>();
        if !same {
            return Err(Error::InvalidFrame {
                what: format!(
                    "column {i} is {dt}, not {}; ask for the matching arrow type",
                    T::DATA_TYPE
                ),
            });
        }
        let rows = self.rows;
        let bytes = self.body_mut(c.values, c.values_len);
        // SAFETY: the values start 64-aligned (slot starts are page aligned, body buffers 64-aligned), which is
        // enough for any native type; `rows * size_of::<T::Native>()` bytes were laid out for them; every native
        // arrow type is plain old data, valid for any bit pattern.
        Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T::Native>(), rows) })
    }

    /// Column `i`'s values as raw bytes (little endian; a boolean column is a bitmap, bit `r` is row `r`).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for a column that does not exist.
    pub fn bytes_mut(&mut self, i: usize) -> Result<&mut [u8]> {
        let c = self.column(i)?;
        Ok(self.body_mut(c.values, c.values_len))
    }

    /// Column `i`'s validity bitmap (bit `r` set: row `r` is valid), all valid on the first call. Only nullable
    /// fields have one; columns whose bitmap is never asked for have no nulls.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for a column that does not exist or whose field is not nullable.
    pub fn validity_mut(&mut self, i: usize) -> Result<&mut [u8]> {
        let c = self.column(i)?;
        let (at, len) = c.validity.ok_or_else(|| Error::InvalidFrame {
            what: format!(
                "field '{}' is not nullable, so it has no validity bitmap; declare it nullable",
                self.schema.field(i).name()
            ),
        })?;
        let first = !c.validity_used;
        self.columns[i].validity_used = true;
        let bits = self.body_mut(at, len);
        if first {
            bits.fill(0xFF);
        }
        Ok(bits)
    }

    /// Write the metadata around the buffers, commit and publish the frame.
    ///
    /// # Errors
    /// Schema-area errors ([`Error::SchemaTooLarge`]); the loan is then aborted.
    pub fn commit(mut self) -> Result<WriteInfo> {
        let rows = self.rows;
        let columns = self.columns.clone();
        let mut null_counts = Vec::with_capacity(columns.len());
        for c in &columns {
            let nulls = match c.validity {
                Some((at, len)) if c.validity_used => {
                    let bits = self.body_mut(at, len);
                    rows - count_ones(bits, rows)
                }
                _ => 0,
            };
            null_counts.push(nulls);
        }
        let mut fbb = FlatBufferBuilder::with_capacity(1024);
        batch_metadata(&mut fbb, rows, &columns, &null_counts, self.body_len);
        let meta = fbb.finished_data();
        if meta.len() != self.batch_meta_len {
            // Returning drops the loan and its claim: the slot is given up.
            return Err(Error::InvalidFrame {
                what: format!(
                    "loan metadata changed size ({} -> {} bytes); this is a bug, please report it",
                    self.batch_meta_len,
                    meta.len()
                ),
            });
        }
        let slot_len = self.body_start + self.body_len + onecopy::EOS.len();
        // SAFETY: the slot is claimed by this loan and `slot_len` bytes fit in it (checked in `loan`); no slice
        // handed out by the loan is alive (`commit` takes the loan by value).
        let slot =
            unsafe { std::slice::from_raw_parts_mut(self.shared.slot_ptr(self.slot), slot_len) };
        let h = onecopy::write_message_header(slot, &self.schema_meta);
        onecopy::write_message_header(&mut slot[h..self.body_start], meta);
        let body = &mut slot[self.body_start..self.body_start + self.body_len];
        for (c, nulls) in columns.iter().zip(&null_counts) {
            if let Some((at, len)) = c.validity {
                if !(c.validity_used && *nulls > 0) {
                    body[at..at + align(len)].fill(0);
                } else {
                    body[at + len..at + align(len)].fill(0);
                }
            }
            body[c.values + c.values_len..c.values + align(c.values_len)].fill(0);
        }
        slot[self.body_start + self.body_len..].copy_from_slice(&onecopy::EOS);
        let schema = Arc::clone(&self.schema);
        let claim = self.claim.take().ok_or_else(|| Error::InvalidFrame {
            what: "the loan was already committed; this is a bug, please report it".into(),
        })?;
        let info = self.writer.raw.commit_slot(
            claim,
            Committed {
                schema: &schema,
                len: slot_len,
                rows,
                batches: 1,
                compressed: false,
                copies: 0,
            },
        )?;
        self.writer.publish(&info);
        Ok(info)
    }

    /// Give the slot back: nothing becomes visible. Dropping the loan does the same.
    pub fn abort(self) {
        // Dropping the loan drops its claim, which gives the slot up.
    }
}
