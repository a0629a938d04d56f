//! A frame's slot bytes as Flight messages, without copying the bodies.
//!
//! A slot holds a standard Arrow IPC stream (docs/FORMAT.md §6): encapsulated messages, each a continuation marker,
//! a metadata length, the flatbuffer `Message` and its body. A Flight `FlightData` is the same message split in two
//! fields (`data_header`: the flatbuffer, `data_body`: the body), so the gateway slices both out of the mapping:
//! each slice holds the frame's lease until gRPC has copied it into its framing and dropped it. Nothing in the
//! slot is trusted: every length is checked against the frame and the flatbuffer is verified.

use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_flight::FlightData;
use arrow_ipc::MessageHeader;
use bytes::Bytes;

/// One message of a frame.
#[derive(Debug)]
pub(crate) struct Message {
    /// What it carries.
    pub kind: MessageHeader,
    /// The flatbuffer `Message`, as Flight's `data_header`.
    pub header: Bytes,
    /// The body, as Flight's `data_body`.
    pub body: Bytes,
}

impl Message {
    /// As a Flight message, with `app_metadata`.
    pub fn into_flight(self, app_metadata: Bytes) -> FlightData {
        FlightData {
            flight_descriptor: None,
            data_header: self.header,
            data_body: self.body,
            app_metadata,
        }
    }
}

/// What every slice of one frame holds besides the bytes: a permit that counts the frame as in flight until
/// HTTP/2 has written (and dropped) its last slice.
pub(crate) type InFlight = Option<Arc<tokio::sync::OwnedSemaphorePermit>>;

/// A slice of a leased slot, owned by `Bytes`: dropping the last one releases the lease (and the permit).
struct Slice {
    bytes: Buffer,
    _permit: InFlight,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

fn slice(frame: &Buffer, at: usize, len: usize, permit: &InFlight) -> Bytes {
    if len == 0 {
        return Bytes::new();
    }
    Bytes::from_owner(Slice {
        bytes: frame.slice_with_length(at, len),
        _permit: permit.clone(),
    })
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(w.try_into().ok()?))
}

/// Split a frame's IPC stream into its messages (the end marker ends it). A bad length or flatbuffer is an error
/// naming the offset.
pub(crate) fn messages(frame: &Buffer, permit: &InFlight) -> Result<Vec<Message>, String> {
    let bytes = frame.as_slice();
    let mut at = 0usize;
    let mut out = Vec::new();
    loop {
        let Some(word) = read_u32(bytes, at) else {
            // A stream that ends without its end marker: the messages so far are complete.
            return Ok(out);
        };
        let (meta_len, meta_at) = if word == 0xFFFF_FFFF {
            let len =
                read_u32(bytes, at + 4).ok_or_else(|| format!("truncated length at byte {at}"))?;
            (len, at + 8)
        } else {
            (word, at + 4)
        };
        if meta_len == 0 {
            return Ok(out);
        }
        let meta_len = usize::try_from(meta_len).map_err(|_| format!("length at byte {at}"))?;
        if meta_len > i32::MAX as usize {
            return Err(format!("negative metadata length at byte {at}"));
        }
        let meta_end = meta_at
            .checked_add(meta_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("metadata at byte {meta_at} runs past the frame"))?;
        let meta = bytes
            .get(meta_at..meta_end)
            .ok_or_else(|| format!("metadata at byte {meta_at} runs past the frame"))?;
        let msg =
            arrow_ipc::root_as_message(meta).map_err(|e| format!("message at byte {at}: {e}"))?;
        let body_len = usize::try_from(msg.bodyLength())
            .map_err(|_| format!("negative body length at byte {at}"))?;
        let body_end = meta_end
            .checked_add(body_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("body of the message at byte {at} runs past the frame"))?;
        out.push(Message {
            kind: msg.header_type(),
            header: slice(frame, meta_at, meta_len, permit),
            body: slice(frame, meta_end, body_len, permit),
        });
        at = body_end;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_ipc::writer::StreamWriter;

    use super::*;

    fn stream(n: i64) -> Vec<u8> {
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let batch = RecordBatch::try_from_iter([("x", col)]).unwrap();
        let mut w = StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn an_ipc_stream_splits_into_schema_and_batches_that_point_into_it() {
        let buf = Buffer::from_vec(stream(1000));
        let msgs = messages(&buf, &None).unwrap();
        let kinds: Vec<_> = msgs.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MessageHeader::Schema,
                MessageHeader::RecordBatch,
                MessageHeader::RecordBatch
            ]
        );
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        assert!(range.contains(&(msgs[1].body.as_ptr() as usize)));
        assert_eq!(msgs[1].body.len(), 8000);
    }

    #[test]
    fn the_bodies_of_a_read_frame_are_slices_of_the_segments_mapping() {
        // What the gateway sends: the messages of a frame read from a real segment point into its mapping.
        use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
        let name = format!("qads-flight-wire-{}", std::process::id());
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        let batch = RecordBatch::try_from_iter([("x", col)]).unwrap();
        let mut w = SnapshotWriter::builder(&name)
            .size(1 << 20)
            .create()
            .unwrap();
        w.write(&batch).unwrap();
        let r = SnapshotReader::open(&name).unwrap();
        let frame = r.read().unwrap();
        let msgs = messages(frame.encoded().unwrap(), &None).unwrap();
        let map = r.attachment().shared().mapping();
        let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
        let body = &msgs[1].body;
        assert_eq!(
            (msgs[1].kind, body.len()),
            (MessageHeader::RecordBatch, 80_000)
        );
        assert!(range.contains(&(body.as_ptr() as usize)));
        assert!(range.contains(&(body.as_ptr() as usize + body.len() - 1)));
        drop((msgs, frame, r));
        w.close().unwrap();
    }

    #[test]
    fn a_truncated_or_garbled_stream_is_an_error_not_a_panic() {
        let good = stream(10);
        for cut in 0..good.len() {
            let _ = messages(&Buffer::from_vec(good[..cut].to_vec()), &None);
        }
        let mut bad = good.clone();
        bad[4] = 0xff;
        bad[5] = 0xff;
        assert!(messages(&Buffer::from_vec(bad), &None).is_err());
    }
}
