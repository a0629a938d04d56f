//! R9: arbitrary segment files (header, reader table, descriptors, schema area, slots) opened and read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qadataswap_stream::fuzzing::segment_bytes(data);
});
