//! Stream readers: arbitrary stream-mode segment files read chunk by chunk by `StreamReaderCore` (both validation
//! levels, chunks kept alive at `Full`), then one blocking call whose deadline has passed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qadataswap_stream::fuzzing::stream_bytes(data);
});
