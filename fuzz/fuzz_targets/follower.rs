//! Stream followers: arbitrary stream-mode segment files followed by `StreamFollower` through every chunk, skip
//! and end (both validation levels), then one blocking call with a zero timeout.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qadataswap_stream::fuzzing::follower_bytes(data);
});
