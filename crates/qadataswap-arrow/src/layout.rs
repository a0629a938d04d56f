//! The segment's byte layout, format version 2 (docs/FORMAT.md is the normative text): constants, the regions'
//! geometry, state and flag values. The control area's words themselves are typed in `control` (`Header`,
//! `SlotDesc`); [`crate::format`] describes their offsets.
//!
//! ```text
//! | header (4096) | reader table (R x 320) | pad to page | slot descriptors (N x 64) | schema area | pad to page |
//! | N x slot data |
//! ```
//! Every offset here is a multiple of 64, so every atomic word is naturally aligned when the mapping is
//! page-aligned. Integers are little-endian; the ABI fingerprint rejects any other machine.

use crate::error::Error;
use qadataswap_sync::lease::{ReaderEntry, MAX_SLOTS};

/// The eight bytes a segment of this library starts with.
pub const MAGIC: [u8; 8] = *b"QADSWAP\0";
/// The format version this build writes (and the only one a writer takes over).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build still reads. Version 2 only gave meaning to bytes that version 1 kept
/// reserved (the writer's role word and PID namespaces), so a version-2 reader reads a version-1 segment unchanged.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Little-endian, 8-byte sequence words, 4-byte futex words, 64-byte alignment.
pub const ABI_FINGERPRINT: u32 = u32::from_le_bytes([1, 8, 4, 64]);
/// Size of the header block.
pub const HEADER_SIZE: usize = 4096;
/// Size of one reader-table entry.
pub const READER_ENTRY_SIZE: usize = 320;
/// Size of one slot descriptor.
pub const SLOT_DESC_SIZE: usize = 64;
/// Alignment of slot starts and of every buffer in a slot.
pub const ALIGN: usize = 64;
/// Most slots a ring can have (one lease counter per slot in each reader entry).
pub const MAX_SLOT_COUNT: usize = MAX_SLOTS;
/// Page size the layout assumes for the data region's start.
pub const PAGE: usize = 4096;

const _: () = assert!(std::mem::size_of::<ReaderEntry>() == READER_ENTRY_SIZE);
const _: () = assert!(std::mem::align_of::<ReaderEntry>() <= ALIGN);

/// Header `state` values.
#[allow(missing_docs)]
pub mod state {
    pub const INITIALISING: u32 = 0;
    pub const READY: u32 = 1;
    pub const CLOSED: u32 = 2;
    pub const FINISHED: u32 = 3;
}

/// Header `flags` bits.
#[allow(missing_docs)]
pub mod flags {
    pub const PERSISTENT: u32 = 1;
    pub const LZ4: u32 = 2;
    pub const ZSTD: u32 = 4;
    /// Every bit a reader knows; any other is refused.
    pub const KNOWN: u32 = PERSISTENT | LZ4 | ZSTD;
}

/// Slot-descriptor `flags` bits.
#[allow(missing_docs)]
pub mod slot_flags {
    pub const COMPRESSED: u32 = 1;
    /// Every bit a reader knows; any other is refused.
    pub const KNOWN: u32 = COMPRESSED;
}

/// FNV-1a 64 of `bytes` (FORMAT.md §10: the schema area's checksum).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub use qadataswap_sync::ring::{pack_published, unpack_published};

pub use crate::mode::Mode;

/// Round `v` up to a multiple of `to` (a power of two); `None` on overflow.
pub fn align_up(v: usize, to: usize) -> Option<usize> {
    debug_assert!(to.is_power_of_two());
    Some(v.checked_add(to - 1)? & !(to - 1))
}

/// Where everything is, derived from the four numbers a creator chooses. Also the validated copy of a header's
/// geometry: every reader recomputes it from the header's numbers and requires the header's offsets to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Snapshot or stream.
    pub mode: Mode,
    /// Slots in the ring.
    pub slot_count: usize,
    /// Bytes per slot (a multiple of 64).
    pub slot_capacity: usize,
    /// Reader-table entries.
    pub reader_capacity: usize,
    /// Bytes of the schema area.
    pub schema_capacity: usize,
    /// Offset of the reader table.
    pub reader_table_offset: usize,
    /// Offset of the slot descriptors.
    pub slot_table_offset: usize,
    /// Offset of the schema area.
    pub schema_offset: usize,
    /// Offset of slot 0's data (page aligned).
    pub data_offset: usize,
    /// Whole segment size.
    pub total_size: usize,
}

impl Geometry {
    /// Compute the layout for a creator's choices. `data_capacity` is split evenly across the slots.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero or too many slots, a slot smaller than 64 bytes, zero readers, or sizes that
    /// overflow.
    pub fn new(
        mode: Mode,
        data_capacity: usize,
        slot_count: usize,
        reader_capacity: usize,
        schema_capacity: usize,
    ) -> Result<Geometry, Error> {
        let bad = |what: String| Error::InvalidConfig { what };
        if slot_count == 0 || slot_count > MAX_SLOT_COUNT {
            return Err(bad(format!(
                "num_buffers must be between 1 and {MAX_SLOT_COUNT}, got {slot_count}"
            )));
        }
        if reader_capacity == 0 || reader_capacity > 4096 {
            return Err(bad(format!(
                "reader capacity must be between 1 and 4096, got {reader_capacity}"
            )));
        }
        let slot_capacity = (data_capacity / slot_count) & !(ALIGN - 1);
        if slot_capacity < 1024 {
            return Err(bad(format!(
                "size {data_capacity} split across {slot_count} slots leaves {slot_capacity} bytes per slot; \
                 give at least {} bytes",
                1024 * slot_count
            )));
        }
        let schema_capacity = align_up(schema_capacity.max(1024), ALIGN)
            .ok_or_else(|| bad("schema capacity overflows".into()))?;
        Self::from_parts(
            mode,
            slot_count,
            slot_capacity,
            reader_capacity,
            schema_capacity,
        )
        .ok_or_else(|| bad(format!("size {data_capacity} overflows the address space")))
    }

    /// The layout implied by the header's numbers (`None` on overflow).
    pub fn from_parts(
        mode: Mode,
        slot_count: usize,
        slot_capacity: usize,
        reader_capacity: usize,
        schema_capacity: usize,
    ) -> Option<Geometry> {
        let reader_table_offset = HEADER_SIZE;
        // The header and the reader table are the only pages a reader writes to; the slot table starts on a new
        // page so that everything from it on can be mapped read-only by readers.
        let slot_table_offset = align_up(
            reader_table_offset.checked_add(reader_capacity.checked_mul(READER_ENTRY_SIZE)?)?,
            PAGE,
        )?;
        let schema_offset =
            slot_table_offset.checked_add(slot_count.checked_mul(SLOT_DESC_SIZE)?)?;
        let data_offset = align_up(schema_offset.checked_add(schema_capacity)?, PAGE)?;
        let total_size = data_offset.checked_add(slot_count.checked_mul(slot_capacity)?)?;
        // Keep every size addressable with isize so pointer arithmetic is defined.
        if total_size > isize::MAX as usize {
            return None;
        }
        Some(Geometry {
            mode,
            slot_count,
            slot_capacity,
            reader_capacity,
            schema_capacity,
            reader_table_offset,
            slot_table_offset,
            schema_offset,
            data_offset,
            total_size,
        })
    }

    /// Offset of slot `i`'s data.
    pub fn slot_offset(&self, i: usize) -> usize {
        self.data_offset + i * self.slot_capacity
    }

    /// Offset of slot `i`'s descriptor.
    pub fn desc_offset(&self, i: usize) -> usize {
        self.slot_table_offset + i * SLOT_DESC_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_puts_every_region_on_a_64_byte_boundary_and_data_on_a_page() {
        let g = Geometry::new(
            Mode::Snapshot,
            3 * 1024 * 1024,
            3,
            64,
            crate::options::DEFAULT_SCHEMA_CAPACITY,
        )
        .unwrap();
        assert_eq!(g.reader_table_offset % ALIGN, 0);
        assert_eq!(g.slot_table_offset % PAGE, 0);
        assert_eq!(g.schema_offset % ALIGN, 0);
        assert_eq!(g.data_offset % PAGE, 0);
        assert_eq!(g.slot_capacity, 1024 * 1024);
        assert_eq!(g.total_size, g.data_offset + 3 * 1024 * 1024);
    }

    #[test]
    fn geometry_refuses_zero_slots_and_too_many_slots() {
        assert!(Geometry::new(Mode::Snapshot, 1 << 20, 0, 8, 1024).is_err());
        assert!(Geometry::new(Mode::Snapshot, 1 << 20, MAX_SLOT_COUNT + 1, 8, 1024).is_err());
        assert!(Geometry::new(Mode::Snapshot, 100, 3, 8, 1024).is_err());
    }
}
