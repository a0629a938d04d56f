//! The schema area (docs/FORMAT.md §10): the writer's schema as an Arrow IPC schema message, rewritten under the
//! `schema_seq` seqlock when the schema changes, with its length and (format version 2) FNV-1a 64 checksum in the
//! header. Readers copy it out under the seqlock and never trust it unchecked.

use std::sync::Arc;
use std::time::Duration;

use arrow_schema::SchemaRef;

use crate::encode;
use crate::error::{Error, Result};
use crate::layout;
use crate::segment::Shared;

/// Write `schema`'s message into the area under its seqlock, recording `version`, its length and checksum.
///
/// # Errors
/// [`Error::SchemaTooLarge`] when the message does not fit the area.
pub(crate) fn publish(shared: &Shared, schema: &SchemaRef, version: u64) -> Result<()> {
    let msg = encode::schema_message(schema);
    let capacity = shared.geometry().schema_capacity;
    if msg.len() > capacity {
        return Err(Error::SchemaTooLarge {
            name: shared.name().to_owned(),
            needed: msg.len(),
            capacity,
        });
    }
    let word = shared.header().schema_seq();
    let cur = word.load();
    let cur = cur + (cur & 1);
    word.begin_write(cur + 1);
    // SAFETY: the schema area (schema_capacity bytes, checked above) belongs to the writer; readers copy it only under
    // the seqlock and discard copies taken while the word was odd or changed.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), shared.schema_ptr(), msg.len()) };
    shared
        .header()
        .store_schema(version, msg.len() as u64, layout::fnv1a64(&msg));
    word.commit(cur + 2);
    Ok(())
}

/// Copy the schema area out under its seqlock, check its checksum (version 2) and decode it; `None` before the
/// first schema.
///
/// # Errors
/// [`Error::CorruptHeader`] for a checksum or decoding failure, [`Error::Timeout`] if the writer rewrote the area
/// throughout 1000 tries.
pub fn read(s: &Shared) -> Result<Option<SchemaRef>> {
    let header = s.header();
    let word = header.schema_seq();
    for _ in 0..1000 {
        let copied = word.read_consistent(|| {
            let len = header.schema_len() as usize;
            if len == 0 || len > s.geometry().schema_capacity {
                return None;
            }
            let mut v = vec![0u8; len];
            // SAFETY: len <= schema_capacity, so the source range lies inside the schema area of the mapping; a
            // concurrent writer may change the bytes, and the seqlock check discards such a copy.
            unsafe { std::ptr::copy_nonoverlapping(s.schema_ptr(), v.as_mut_ptr(), len) };
            let checksum = header.schema_checksum();
            Some((v, checksum))
        });
        match copied {
            Some((_, None)) => return Ok(None),
            Some((_, Some((bytes, checksum)))) => {
                let corrupt = |what: String| Error::CorruptHeader {
                    name: s.name().to_owned(),
                    what,
                };
                if bytes.len() < 8 {
                    return Err(corrupt("schema area too short".into()));
                }
                // Version 2 checksums the area, so a flipped byte is an error, not another valid schema.
                let version = header.format_version();
                if version >= 2 && layout::fnv1a64(&bytes) != checksum {
                    return Err(corrupt(format!(
                        "the schema area's checksum {:#018x} does not match its bytes",
                        checksum
                    )));
                }
                let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes)
                    .map_err(|e| corrupt(format!("schema area does not decode: {e}")))?;
                return Ok(Some(Arc::new(schema)));
            }
            None => std::thread::yield_now(),
        }
    }
    Err(Error::Timeout {
        name: s.name().to_owned(),
        what: "reading the schema area",
        waited: Duration::ZERO,
    })
}
