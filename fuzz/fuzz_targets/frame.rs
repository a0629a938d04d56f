//! R10: arbitrary frame bytes (schema, dictionary and record batch messages) in a slot of a valid segment.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qadataswap_arrow::fuzzing::frame_bytes(data);
});
